//! How a submission is started: the default launch contract (`<bin> server --port <PORT>`,
//! `<bin> client --host <HOST> --port <PORT> [--name <NAME>]`) or an instructor's template such
//! as `python3 server.py --port {port}`.
//!
//! Templates are split shell-style and substituted per token, so a value can never inject an
//! argument and no shell is ever spawned. Placeholders: `{bin}` (the submission), `{dir}` (its
//! folder), `{host}`, `{port}`, `{name}`. Guarantees: a [`Submission`] was checked to exist and be
//! startable, and a template was checked to name only known placeholders and to contain `{port}`.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::spec::Role;

/// A problem with the submission or a template (a usage error: exit status 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
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
fn is_executable(path: &Path) -> bool {
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
        for token in &tokens {
            let mut rest = token.as_str();
            while let Some(start) = rest.find('{') {
                let Some(len) = rest[start..].find('}') else {
                    break;
                };
                let name = &rest[start + 1..start + len];
                if !PLACEHOLDERS.contains(&name) {
                    return Err(LaunchError::UnknownPlaceholder {
                        role: role_name,
                        template: text.to_string(),
                        placeholder: format!("{{{name}}}"),
                    });
                }
                has_port |= name == "port";
                rest = &rest[start + len + 1..];
            }
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
        assert!(matches!(
            Template::parse(Role::Server, "x"),
            Err(LaunchError::NoPort { .. })
        ));
    }
}
