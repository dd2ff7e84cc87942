//! How a submission is started: the default launch contract (`<bin> server --port <PORT>`,
//! `<bin> client --host <HOST> --port <PORT> [--name <NAME>]`) or an instructor's template such
//! as `python3 server.py --port {port}`.
//!
//! Templates are split shell-style and substituted per token, so a value can never inject an
//! argument and no shell is ever spawned. Placeholders: `{bin}` (the submission), `{dir}` (its
//! folder), `{host}`, `{port}`, `{name}`. Guarantees: a [`Submission`] was checked to exist and be
//! startable, and a template was checked to name only known placeholders and to contain `{port}`.
//!
//! A [`BuildCommand`] (`build = "make"` in `classchat.toml`, `--build`) is split the same way and
//! knows one placeholder, `{dir}` (the copy of the submission it runs in; see
//! `engine::build`). [`find_executable`] is the rule that picks the program the launch contract
//! starts in a folder.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::spec::Role;

/// A problem with the submission or a template (a usage error: exit status 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    /// The submission lies inside a folder hidden from student code.
    #[error(
        "submission {submission} lies inside {folder}, which student programs must not see (the task files or the reports): move it out, or choose another --out / --tasks-dir"
    )]
    InsideProtected {
        /// The submission as given.
        submission: String,
        /// The protected folder.
        folder: String,
    },
    /// The submission is the grader itself or one of its bundled reference binaries.
    #[error(
        "submission {0} is the grader's own binary or a bundled reference solution, not a student's program"
    )]
    IsGrader(String),
    /// The path does not exist.
    #[error("submission {0} does not exist")]
    Missing(String),
    /// A directory was given without templates to start it.
    #[error(
        "submission {0} is a directory: give the executable itself, or say how to start it with --server/--client templates"
    )]
    Directory(String),
    /// Not executable.
    #[error("submission {0} is not executable: run `chmod +x {0}`")]
    NotExecutable(String),
    /// A script without `#!`.
    #[error(
        "submission {0} is neither a compiled program nor a script with a `#!` line: add e.g. `#!/usr/bin/env python3` as its first line"
    )]
    NoShebang(String),
    /// A script whose `#!` line ends in a carriage return (saved with Windows line endings).
    #[error(
        "submission {0} has Windows line endings (CRLF): its `#!` line asks for the interpreter {1:?}, which does not exist; convert the file with `dos2unix {0}` or `sed -i 's/\\r$//' {0}`"
    )]
    CrlfShebang(String, String),
    /// A script whose `#!` line names an interpreter that is not installed.
    #[error("submission {0} cannot start: its `#!` line asks for {1}, {2}")]
    NoInterpreter(String, String, String),
    /// The file cannot be read.
    #[error("cannot read submission {0}: {1}")]
    Unreadable(String, String),
    /// A template could not be split.
    #[error("--{role} template {template:?} cannot be split into words: {reason}")]
    Unparsable {
        /// Which template.
        role: &'static str,
        /// The template.
        template: String,
        /// Why.
        reason: String,
    },
    /// A template uses an unknown placeholder.
    #[error(
        "--{role} template {template:?} uses unknown placeholder {placeholder}: known are {{bin}}, {{dir}}, {{host}}, {{port}}, {{name}}"
    )]
    UnknownPlaceholder {
        /// Which template.
        role: &'static str,
        /// The template.
        template: String,
        /// The placeholder.
        placeholder: String,
    },
    /// A template without `{port}`.
    #[error("--{role} template {template:?} has no {{port}}: the program must be told its port")]
    NoPort {
        /// Which template.
        role: &'static str,
        /// The template.
        template: String,
    },
    /// A build command could not be split.
    #[error("build command {template:?} cannot be split into words: {reason}")]
    BuildUnparsable {
        /// The command.
        template: String,
        /// Why.
        reason: String,
    },
    /// An empty build command.
    #[error("the build command is empty: name a program to run, e.g. `make`")]
    BuildEmpty,
    /// A build command uses a placeholder other than `{dir}`.
    #[error(
        "build command {template:?} uses unknown placeholder {placeholder}: a build command knows only {{dir}} (the copy of the submission it runs in)"
    )]
    BuildUnknownPlaceholder {
        /// The command.
        template: String,
        /// The placeholder.
        placeholder: String,
    },
    /// A build was asked for a submission that is a single file.
    #[error(
        "submission {0} is a file, but a build runs in a copy of a submission folder: give the folder that holds the sources"
    )]
    BuildNeedsFolder(String),
}

/// A checked submission.
#[derive(Debug, Clone)]
pub struct Submission {
    /// Absolute path (file or folder).
    pub path: PathBuf,
    /// The path as the user gave it.
    pub given: String,
    /// Name used for the report folder: the file or folder name.
    pub name: String,
    /// The folder holding it (or itself, for a folder).
    pub dir: PathBuf,
    /// True when the path is a folder.
    pub is_dir: bool,
    /// The working folder of its processes: the folder itself for a folder (or the copy a
    /// build ran in); `None` for a file (each process gets a fresh temporary one).
    pub work_dir: Option<PathBuf>,
}

/// Checks a submission path. A folder is accepted (templates must then say how to start it).
pub fn check_submission(given: &str) -> Result<Submission, LaunchError> {
    let path = Path::new(given);
    let meta = std::fs::metadata(path).map_err(|_| LaunchError::Missing(given.to_string()))?;
    let abs = std::fs::canonicalize(path)
        .map_err(|e| LaunchError::Unreadable(given.to_string(), e.to_string()))?;
    let name = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "submission".to_string());
    if meta.is_dir() {
        return Ok(Submission {
            dir: abs.clone(),
            work_dir: Some(abs.clone()),
            path: abs,
            given: given.to_string(),
            name,
            is_dir: true,
        });
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(LaunchError::NotExecutable(given.to_string()));
    }
    let mut head = [0u8; 512];
    let n = std::fs::File::open(&abs)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| LaunchError::Unreadable(given.to_string(), e.to_string()))?;
    let head = &head[..n];
    if head.starts_with(b"#!") {
        check_interpreter(given, head)?;
    } else if !head.starts_with(b"\x7fELF") {
        return Err(LaunchError::NoShebang(given.to_string()));
    }
    Ok(Submission {
        dir: abs
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf),
        path: abs,
        given: given.to_string(),
        name,
        is_dir: false,
        work_dir: None,
    })
}

/// What a folder offers the launch contract (see [`find_executable`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executables {
    /// The program to start: the one named `submission`, else the only one.
    One(PathBuf),
    /// No executable file.
    None,
    /// Several executable files and none named `submission` (their file names, sorted).
    Several(Vec<String>),
}

/// The launch contract's rule for a folder: the executable file named `submission` in it, else
/// its only executable file (directly in it, not hidden).
pub fn find_executable(dir: &Path) -> std::io::Result<Executables> {
    let named = dir.join("submission");
    if is_executable(&named) {
        return Ok(Executables::One(named));
    }
    let mut exes: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
                && is_executable(p)
        })
        .collect();
    exes.sort();
    Ok(match exes.len() {
        0 => Executables::None,
        1 => Executables::One(exes.remove(0)),
        _ => Executables::Several(
            exes.iter()
                .filter_map(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .collect(),
        ),
    })
}

/// Checks that the interpreter a script's `#!` line names can be started: no carriage return
/// at its end (a file saved with Windows line endings), an absolute interpreter that exists,
/// and for `#!/usr/bin/env NAME` a `NAME` found on `PATH`.
fn check_interpreter(given: &str, head: &[u8]) -> Result<(), LaunchError> {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line.strip_prefix(b"#!").unwrap_or(line));
    let words: Vec<&str> = line.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
    if line.ends_with('\r') {
        let asked = words.last().copied().unwrap_or_default();
        return Err(LaunchError::CrlfShebang(given.into(), asked.into()));
    }
    let missing =
        |what: String, why: &str| Err(LaunchError::NoInterpreter(given.into(), what, why.into()));
    let Some(interpreter) = words.first() else {
        return missing("no interpreter".into(), "so it cannot run");
    };
    if !is_executable(Path::new(interpreter)) {
        return missing(
            format!("`{interpreter}`"),
            "which is not installed here (fix the path in the `#!` line)",
        );
    }
    if interpreter.ends_with("/env") {
        // `env [-S] [VAR=value ...] NAME`: NAME is looked up on PATH.
        let name = words[1..]
            .iter()
            .find(|w| !w.starts_with('-') && !w.contains('='));
        if let Some(name) = name.filter(|n| !n.contains('/'))
            && !on_path(name)
        {
            return missing(
                format!("`{name}`"),
                "which is not on this machine's PATH (install it, or name an interpreter that exists, e.g. `#!/usr/bin/env python3`)",
            );
        }
    }
    Ok(())
}

/// True if `path` is a file with an execute bit.
pub fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// True if an executable `name` is in one of the folders of `PATH`.
fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| is_executable(&d.join(name))))
}

/// A parsed launch template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    tokens: Vec<String>,
    /// True for the built-in contract (which adds `--name` when a name is given).
    builtin: bool,
}

const PLACEHOLDERS: [&str; 5] = ["bin", "dir", "host", "port", "name"];

/// An unknown placeholder as an error message shows it: `{{port}}` (task files' escaping habit)
/// is told that placeholders take one pair of braces.
fn shown_placeholder(name: &str) -> String {
    let inner = name.trim_start_matches('{');
    if inner != name && PLACEHOLDERS.contains(&inner) {
        format!("{{{name}}}}} (placeholders take one pair of braces: {{{inner}}})")
    } else {
        format!("{{{name}}}")
    }
}

/// The names of the `{...}` placeholders in a token, in order.
fn placeholders(token: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = token;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        names.push(&rest[start + 1..start + len]);
        rest = &rest[start + len + 1..];
    }
    names
}

impl Template {
    /// The default contract for a role.
    pub fn default_for(role: Role) -> Self {
        let text = match role {
            Role::Server => "{bin} server --port {port}",
            Role::Client => "{bin} client --host {host} --port {port}",
        };
        Self {
            tokens: text.split(' ').map(String::from).collect(),
            builtin: true,
        }
    }

    /// Starts the reference solution built into the grader binary (`{bin}` is the grader).
    pub fn bundled_reference(role: Role, task: u32) -> Self {
        let tail = match role {
            Role::Server => "server --port {port}",
            Role::Client => "client --host {host} --port {port}",
        };
        Self {
            tokens: format!("{{bin}} reference --task {task} {tail}")
                .split(' ')
                .map(String::from)
                .collect(),
            builtin: true,
        }
    }

    /// Whether this template starts the reference solution built into the grader.
    pub fn runs_bundled_reference(&self) -> bool {
        self.builtin && self.tokens.get(1).is_some_and(|t| t == "reference")
    }

    /// Parses an instructor's template.
    pub fn parse(role: Role, text: &str) -> Result<Self, LaunchError> {
        let role_name = match role {
            Role::Server => "server",
            Role::Client => "client",
        };
        let tokens = shell_words::split(text).map_err(|e| LaunchError::Unparsable {
            role: role_name,
            template: text.to_string(),
            reason: e.to_string(),
        })?;
        let mut has_port = false;
        for name in tokens.iter().flat_map(|t| placeholders(t)) {
            if !PLACEHOLDERS.contains(&name) {
                return Err(LaunchError::UnknownPlaceholder {
                    role: role_name,
                    template: text.to_string(),
                    placeholder: shown_placeholder(name),
                });
            }
            has_port |= name == "port";
        }
        if !has_port {
            return Err(LaunchError::NoPort {
                role: role_name,
                template: text.to_string(),
            });
        }
        Ok(Self {
            tokens,
            builtin: false,
        })
    }

    /// Whether this template needs `{bin}` to be an executable file.
    pub fn uses_bin(&self) -> bool {
        self.tokens.iter().any(|t| t.contains("{bin}"))
    }

    /// Substitutes the values, token by token.
    pub fn argv(&self, sub: &Submission, host: &str, port: u16, name: Option<&str>) -> Vec<String> {
        let bin = sub.path.display().to_string();
        let dir = sub.dir.display().to_string();
        let port = port.to_string();
        let mut argv: Vec<String> = self
            .tokens
            .iter()
            .map(|t| {
                t.replace("{bin}", &bin)
                    .replace("{dir}", &dir)
                    .replace("{host}", host)
                    .replace("{port}", &port)
                    .replace("{name}", name.unwrap_or(""))
            })
            .collect();
        if let (true, Some(n)) = (self.builtin, name) {
            argv.push("--name".into());
            argv.push(n.into());
        }
        argv
    }
}

/// A build command: `make`, `javac -d . Server.java Client.java`, `sh build.sh`. Split
/// shell-style like a template, never given to a shell; `{dir}` (the folder the build runs in)
/// is its only placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildCommand {
    text: String,
    tokens: Vec<String>,
}

impl BuildCommand {
    /// Parses a build command.
    pub fn parse(text: &str) -> Result<Self, LaunchError> {
        let tokens = shell_words::split(text).map_err(|e| LaunchError::BuildUnparsable {
            template: text.to_string(),
            reason: e.to_string(),
        })?;
        if tokens.is_empty() {
            return Err(LaunchError::BuildEmpty);
        }
        if let Some(name) = tokens
            .iter()
            .flat_map(|t| placeholders(t))
            .find(|n| *n != "dir")
        {
            return Err(LaunchError::BuildUnknownPlaceholder {
                template: text.to_string(),
                placeholder: shown_placeholder(name),
            });
        }
        Ok(Self {
            text: text.to_string(),
            tokens,
        })
    }

    /// The command as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Program and arguments, `{dir}` substituted per token.
    pub fn argv(&self, dir: &Path) -> Vec<String> {
        let dir = dir.display().to_string();
        self.tokens
            .iter()
            .map(|t| t.replace("{dir}", &dir))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub() -> Submission {
        Submission {
            path: "/s/bin".into(),
            given: "bin".into(),
            name: "bin".into(),
            dir: "/s".into(),
            is_dir: false,
            work_dir: None,
        }
    }

    #[test]
    fn default_contract() {
        let t = Template::default_for(Role::Client);
        assert_eq!(
            t.argv(&sub(), "127.0.0.1", 5, Some("al ice")),
            [
                "/s/bin",
                "client",
                "--host",
                "127.0.0.1",
                "--port",
                "5",
                "--name",
                "al ice"
            ]
        );
    }

    #[test]
    fn templates_substitute_per_token() {
        let t = Template::parse(Role::Server, "python3 'my server.py' --port {port}").unwrap();
        assert_eq!(
            t.argv(&sub(), "h", 7, None),
            ["python3", "my server.py", "--port", "7"]
        );
        assert!(matches!(
            Template::parse(Role::Server, "x {prot}"),
            Err(LaunchError::UnknownPlaceholder { .. })
        ));
        let doubled = Template::parse(Role::Server, "s --port {{port}}").unwrap_err();
        assert!(
            doubled.to_string().contains("one pair of braces: {port}"),
            "{doubled}"
        );
        assert!(matches!(
            Template::parse(Role::Server, "x"),
            Err(LaunchError::NoPort { .. })
        ));
    }

    #[test]
    fn build_commands_know_only_dir() {
        let b = BuildCommand::parse("cc -O2 -o '{dir}/my chat' chat.c").unwrap();
        assert_eq!(
            b.argv(Path::new("/tmp/x")),
            ["cc", "-O2", "-o", "/tmp/x/my chat", "chat.c"]
        );
        assert_eq!(b.text(), "cc -O2 -o '{dir}/my chat' chat.c");
        let e = BuildCommand::parse("make -C {bin}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "build command \"make -C {bin}\" uses unknown placeholder {bin}: a build command knows only {dir} (the copy of the submission it runs in)"
        );
        assert_eq!(BuildCommand::parse("  "), Err(LaunchError::BuildEmpty));
        assert!(matches!(
            BuildCommand::parse("make 'x"),
            Err(LaunchError::BuildUnparsable { .. })
        ));
    }

    #[test]
    fn the_launch_contract_picks_submission_or_the_only_executable() {
        let d = tempfile::tempdir().unwrap();
        let exe = |name: &str| {
            let p = d.path().join(name);
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        std::fs::write(d.path().join("notes.txt"), "x").unwrap();
        assert_eq!(find_executable(d.path()).unwrap(), Executables::None);
        exe("b");
        exe(".hidden");
        assert_eq!(
            find_executable(d.path()).unwrap(),
            Executables::One(d.path().join("b"))
        );
        exe("a");
        assert_eq!(
            find_executable(d.path()).unwrap(),
            Executables::Several(vec!["a".into(), "b".into()])
        );
        exe("submission");
        assert_eq!(
            find_executable(d.path()).unwrap(),
            Executables::One(d.path().join("submission"))
        );
    }
}
