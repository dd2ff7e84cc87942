//! How a submission is started: the default launch contract (`<bin> server --port <PORT>`,
//! `<bin> client --host <HOST> --port <PORT> [--name <NAME>]`) or an instructor's template such
//! as `python3 server.py --port {port}`, and the options around it ([`LaunchOptions`]: lines
//! typed on the client's stdin first, a terminal on its stdin, the roles graded).
//!
//! Templates are split shell-style and substituted per token, so a value can never inject an
//! argument and no shell is ever spawned. Placeholders: `{bin}` (the submission), `{dir}` (its
//! folder), `{host}`, `{port}`, `{name}` (the scenario's name for the client, else
//! [`DEFAULT_CLIENT_NAME`]). Guarantees: a [`Submission`] was checked to exist and be
//! startable, and a template was checked to name only known placeholders; a template without
//! `{port}` (a program that hard-codes its port) is accepted and says so
//! ([`CommandTemplate::takes_port`]). Errors name the template as the caller says (`--server
//! template`, or a `classchat.toml`'s file, line and key).
//!
//! A [`BuildCommand`] (`build = "make"` in `classchat.toml`, `--build`) is split the same way and
//! knows one placeholder, `{dir}` (the copy of the submission it runs in; see
//! `engine::build`); its words holding `*`, `?` or `[` are patterns expanded in that folder
//! without a shell (sorted; one that matches nothing is an error naming it, like bash's
//! `failglob`; one that is absolute or climbs out with `..` is refused when parsed, so a
//! pattern lists only the submission's own files). [`find_executable`] is the rule that picks
//! the program the launch contract starts in a folder.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::spec::Role;

/// A problem with the submission or a template (a usage error: exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The submission lies inside a folder hidden from student code.
    #[error(
        "submission {submission} lies inside {}, which student programs must not see (the task files or the reports): move it out, or choose another --out / --tasks-dir",
        .folder.display()
    )]
    InsideProtected {
        /// The submission as given.
        submission: String,
        /// The protected folder.
        folder: PathBuf,
    },
    /// The submission is the grader itself or one of its bundled reference binaries.
    #[error(
        "submission {0} is the grader's own binary or a bundled reference solution, not a student's program"
    )]
    IsGrader(String),
    /// The path does not exist.
    #[error("submission {0} does not exist")]
    Missing(String),
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
        "submission {submission} has Windows line endings (CRLF): its `#!` line asks for the interpreter {interpreter:?}, which does not exist; convert the file with `dos2unix {submission}` or `sed -i 's/\\r$//' {submission}`"
    )]
    CrlfShebang {
        /// The submission as given.
        submission: String,
        /// The interpreter asked for, carriage return included.
        interpreter: String,
    },
    /// A script whose `#!` line names an interpreter that is not installed.
    #[error("submission {submission} cannot start: its `#!` line asks for {interpreter}, {why}")]
    NoInterpreter {
        /// The submission as given.
        submission: String,
        /// The interpreter, quoted (or "no interpreter").
        interpreter: String,
        /// Why it cannot run, and what to do.
        why: &'static str,
    },
    /// The file (or the grader itself, for the bundled reference) cannot be read.
    #[error("cannot read submission {submission}")]
    Unreadable {
        /// The submission as given.
        submission: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A template could not be split.
    #[error("{what} {template:?} cannot be split into words: {reason}")]
    Unparsable {
        /// Which template, as the message names it (`--server template`, or the file, line and
        /// key of a `classchat.toml`).
        what: String,
        /// The template.
        template: String,
        /// Why.
        reason: String,
    },
    /// A template uses an unknown placeholder.
    #[error("{what} {template:?} uses unknown placeholder {placeholder}: known are {known}")]
    UnknownPlaceholder {
        /// Which template or line, as the message names it.
        what: String,
        /// The template.
        template: String,
        /// The placeholder.
        placeholder: String,
        /// The placeholders it may use.
        known: &'static str,
    },
    /// A pattern (`*.c`) of a build command matches no file in the submission folder.
    #[error(
        "build command {template:?}: the pattern {pattern:?} matches no file in the submission folder (patterns are expanded without a shell, as with bash's failglob: check the file names and extensions)"
    )]
    BuildNoMatch {
        /// The command.
        template: String,
        /// The pattern.
        pattern: String,
    },
    /// A pattern of a build command that could name files outside the submission folder, or is
    /// not a valid pattern.
    #[error("build command {template:?}: the pattern {pattern:?} {why}")]
    BuildBadPattern {
        /// The command.
        template: String,
        /// The pattern.
        pattern: String,
        /// What is wrong.
        why: String,
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
    /// A `stdin_prelude` entry holding a line break.
    #[error(
        "{what} {line:?} holds a line break: write each line as its own entry, e.g. [\"{{host}}\", \"{{name}}\"]"
    )]
    PreludeLineBreak {
        /// Which entry.
        what: String,
        /// The entry.
        line: String,
    },
    /// `roles` / `--role` leaves no scenario of the task.
    #[error(
        "task {task} has no scenario for the role(s) {}: grade another role",
        .roles.iter().map(|r| role_word(*r)).collect::<Vec<_>>().join(", ")
    )]
    NoScenarioForRoles {
        /// The task.
        task: u32,
        /// The roles asked for.
        roles: Vec<Role>,
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
    let abs = std::fs::canonicalize(path).map_err(|e| LaunchError::Unreadable {
        submission: given.to_string(),
        source: e.into(),
    })?;
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
        .map_err(|e| LaunchError::Unreadable {
            submission: given.to_string(),
            source: e.into(),
        })?;
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
        return Err(LaunchError::CrlfShebang {
            submission: given.into(),
            interpreter: asked.into(),
        });
    }
    let missing = |interpreter: String, why: &'static str| {
        Err(LaunchError::NoInterpreter {
            submission: given.into(),
            interpreter,
            why,
        })
    };
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

/// How to start one role of a submission: a launch command (`--server`/`--client`, a
/// `classchat.toml` entry, or the built-in launch contract) split into words, with its
/// placeholders (`{port}`, `{host}`, ...) filled in per scenario. Not the message placeholders of
/// the scenario language, which are [`crate::spec::template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTemplate {
    tokens: Vec<String>,
    /// True for the built-in contract (which adds `--name` when a name is given).
    builtin: bool,
}

const PLACEHOLDERS: [&str; 5] = ["bin", "dir", "host", "port", "name"];
/// The placeholders of a template, as error messages list them.
const KNOWN_TEMPLATE: &str = "{bin}, {dir}, {host}, {port}, {name}";
/// The placeholders of a `stdin_prelude` line.
const PRELUDE_PLACEHOLDERS: [&str; 3] = ["host", "port", "name"];

/// The name `{name}` stands for when the scenario gives its client none (Task 1 and 2 clients
/// have no name in the protocol, but a client may still ask for one on stdin).
pub const DEFAULT_CLIENT_NAME: &str = "student";

/// Checks that `tokens` use only `allowed` placeholders.
fn check_placeholders(
    tokens: &[String],
    allowed: &[&str],
    known: &'static str,
    text: &str,
    what: &str,
) -> Result<(), LaunchError> {
    match tokens
        .iter()
        .flat_map(|t| placeholders(t))
        .find(|n| !allowed.contains(n))
    {
        Some(name) => Err(LaunchError::UnknownPlaceholder {
            what: what.to_string(),
            template: text.to_string(),
            placeholder: shown_placeholder(name),
            known,
        }),
        None => Ok(()),
    }
}

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

impl CommandTemplate {
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

    /// [`CommandTemplate::argv`] with a scenario's extra arguments (`start_client` `args`): in the launch
    /// contract right after the role word, so a single-message client reads as a lab writes it
    /// (`<bin> client "Hello" --host H --port P`, which argparse with an optional positional
    /// also parses); at the end of an instructor's template.
    pub fn argv_with(
        &self,
        sub: &Submission,
        host: &str,
        port: u16,
        name: Option<&str>,
        extra: &[String],
    ) -> Vec<String> {
        let mut argv = self.argv(sub, host, port, name);
        let at = if self.builtin {
            self.tokens
                .iter()
                .position(|t| t == "client" || t == "server")
                .map_or(argv.len(), |i| i + 1)
        } else {
            argv.len()
        };
        argv.splice(at..at, extra.iter().cloned());
        argv
    }

    /// Whether this template starts the reference solution built into the grader.
    pub fn runs_bundled_reference(&self) -> bool {
        self.builtin && self.tokens.get(1).is_some_and(|t| t == "reference")
    }

    /// Parses an instructor's template given on the command line (`--server`, `--client`).
    pub fn parse(role: Role, text: &str) -> Result<Self, LaunchError> {
        Self::parse_as(role, text, format!("--{} template", role_word(role)))
    }

    /// Parses a template; errors name it as `what` (`--server template`, or a file, line and
    /// key). A template without `{port}` is accepted: the program takes no port (it hard-codes
    /// one); [`CommandTemplate::takes_port`] tells, and the grading says so in a note.
    pub fn parse_as(_role: Role, text: &str, what: String) -> Result<Self, LaunchError> {
        let tokens = shell_words::split(text).map_err(|e| LaunchError::Unparsable {
            what: what.clone(),
            template: text.to_string(),
            reason: e.to_string(),
        })?;
        check_placeholders(&tokens, &PLACEHOLDERS, KNOWN_TEMPLATE, text, &what)?;
        Ok(Self {
            tokens,
            builtin: false,
        })
    }

    /// The template as words joined shell-style (for messages).
    pub fn text(&self) -> String {
        shell_words::join(&self.tokens)
    }

    /// Whether the program is told its port (`{port}` in the template, or the launch contract).
    pub fn takes_port(&self) -> bool {
        self.builtin || self.tokens.iter().any(|t| t.contains("{port}"))
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
                    .replace("{name}", name.unwrap_or(DEFAULT_CLIENT_NAME))
            })
            .collect();
        if let (true, Some(n)) = (self.builtin, name) {
            argv.push("--name".into());
            argv.push(n.into());
        }
        argv
    }
}

/// A build command: `make`, `javac -d . Server.java Client.java`, `sh build.sh`,
/// `cc -o server *.c`. Split shell-style like a template, never given to a shell; `{dir}` (the
/// folder the build runs in) is its only placeholder. A word holding `*`, `?` or `[` is a
/// pattern, expanded in the build folder without a shell ([`BuildCommand::argv`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildCommand {
    text: String,
    tokens: Vec<String>,
}

/// Whether a word of a build command is a pattern (shell-style glob).
fn is_pattern(word: &str) -> bool {
    word.contains(['*', '?', '['])
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
        let command = Self {
            text: text.to_string(),
            tokens,
        };
        // Patterns are checked now (a usage error before any grading), matched at build time.
        for word in command.tokens.iter().skip(1).filter(|w| is_pattern(w)) {
            command.pattern_in(word, Path::new("/"))?;
        }
        Ok(command)
    }

    /// The command as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The absolute pattern a word stands for inside `dir`: relative to it (after `{dir}` is
    /// substituted), never climbing out with `..` nor naming another folder, so a pattern can
    /// only list the submission's own files.
    fn pattern_in(&self, word: &str, dir: &Path) -> Result<PathBuf, LaunchError> {
        let bad = |why: &str| LaunchError::BuildBadPattern {
            template: self.text.clone(),
            pattern: word.to_string(),
            why: why.to_string(),
        };
        let rel = match word.strip_prefix("{dir}") {
            Some(rest) => rest.trim_start_matches('/'),
            None if word.starts_with('/') => {
                return Err(bad(
                    "is absolute: a pattern names files of the submission folder, relative to it (e.g. *.c or src/*.c)",
                ));
            }
            None => word,
        };
        if rel.contains("{dir}")
            || Path::new(rel)
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(bad(
                "leaves the submission folder: a pattern names files inside it, without `..` (e.g. *.c or src/*.c)",
            ));
        }
        glob::Pattern::new(rel).map_err(|e| bad(&format!("is not a valid pattern: {e}")))?;
        Ok(dir.join(rel))
    }

    /// Program and arguments in the build folder `dir`: `{dir}` substituted per word, and each
    /// pattern word (`*.c`) replaced by the files it matches there, sorted, relative to `dir`
    /// as written (`{dir}/*.c` gives absolute paths); hidden files only for a pattern that
    /// starts with a dot. A pattern that matches nothing is an error naming it (bash's
    /// `failglob`), never passed on literally. The program word itself is never expanded.
    pub fn argv(&self, dir: &Path) -> Result<Vec<String>, LaunchError> {
        let dir_text = dir.display().to_string();
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        let mut argv = Vec::with_capacity(self.tokens.len());
        for (i, word) in self.tokens.iter().enumerate() {
            if i == 0 || !is_pattern(word) {
                argv.push(word.replace("{dir}", &dir_text));
                continue;
            }
            let pattern = self.pattern_in(word, dir)?;
            let absolute = word.starts_with("{dir}");
            let paths = glob::glob_with(&pattern.display().to_string(), options).map_err(|e| {
                LaunchError::BuildBadPattern {
                    template: self.text.clone(),
                    pattern: word.clone(),
                    why: format!("is not a valid pattern: {e}"),
                }
            })?;
            let mut matched: Vec<String> = paths
                .filter_map(Result::ok)
                .filter_map(|p| {
                    if absolute {
                        Some(p.display().to_string())
                    } else {
                        p.strip_prefix(dir).ok().map(|r| r.display().to_string())
                    }
                })
                .collect();
            if matched.is_empty() {
                return Err(LaunchError::BuildNoMatch {
                    template: self.text.clone(),
                    pattern: word.clone(),
                });
            }
            matched.sort();
            argv.extend(matched);
        }
        Ok(argv)
    }
}

/// What a student's client gets as its stdin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientStdin {
    /// A pipe (the default): what most programs expect when they are not run by hand.
    #[default]
    Pipe,
    /// The pseudo-terminal its stdout already is: `isatty(0)` holds, Java's `System.console()`
    /// is not null; lines are read one at a time, nothing typed is echoed, end of input is
    /// Ctrl-D.
    Terminal,
}

impl ClientStdin {
    /// The word `classchat.toml` and `--client-stdin` use.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientStdin::Pipe => "pipe",
            ClientStdin::Terminal => "terminal",
        }
    }
}

/// How a submission's programs are started beyond their templates: lines typed on the
/// client's stdin first, what its stdin is, and which roles are graded. The default is what
/// the grader always did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaunchOptions {
    /// Lines typed on the client's stdin right after it starts, before the scenario's own
    /// `type` steps (checked by [`check_prelude_line`]; placeholders `{host}` `{port}`
    /// `{name}`, see [`prelude_line`]).
    pub stdin_prelude: Vec<String>,
    /// The client's stdin: a pipe or a terminal.
    pub client_stdin: ClientStdin,
    /// Grade only these roles (`roles = ["server"]`, `--role server`): the other role's
    /// scenarios are not run and not part of the maximum. `None`: every role the task has.
    pub roles: Option<Vec<Role>>,
}

/// Checks a `stdin_prelude` line: placeholders `{host}`, `{port}`, `{name}` only, no line
/// break (each entry is one line). `what` names it in errors.
pub fn check_prelude_line(line: &str, what: &str) -> Result<(), LaunchError> {
    if line.contains(['\n', '\r']) {
        return Err(LaunchError::PreludeLineBreak {
            what: what.to_string(),
            line: line.to_string(),
        });
    }
    check_placeholders(
        &[line.to_string()],
        &PRELUDE_PLACEHOLDERS,
        "{host}, {port}, {name}",
        line,
        what,
    )
}

/// A `stdin_prelude` line as typed: `{host}`, `{port}` and `{name}` substituted (`{name}` is
/// the scenario's name for the client, else [`DEFAULT_CLIENT_NAME`]).
pub fn prelude_line(line: &str, host: &str, port: u16, name: Option<&str>) -> String {
    line.replace("{host}", host)
        .replace("{port}", &port.to_string())
        .replace("{name}", name.unwrap_or(DEFAULT_CLIENT_NAME))
}

/// `server` or `client`.
pub fn role_word(role: Role) -> &'static str {
    match role {
        Role::Server => "server",
        Role::Client => "client",
    }
}

/// Parses a `--role` / `roles` word.
pub fn parse_role(word: &str) -> Result<Role, String> {
    match word.trim().to_ascii_lowercase().as_str() {
        "server" => Ok(Role::Server),
        "client" => Ok(Role::Client),
        _ => Err(format!("{word:?} is not a role: write server or client")),
    }
}

/// The task's scenarios of the graded `roles` only, and a note saying what was left out
/// (`None` when nothing was). An error when no scenario is left.
pub fn only_roles(
    spec: &crate::spec::TaskSpec,
    roles: Option<&[Role]>,
) -> Result<(crate::spec::TaskSpec, Option<crate::note::Note>), LaunchError> {
    let Some(roles) = roles else {
        return Ok((spec.clone(), None));
    };
    let mut kept = spec.clone();
    kept.scenarios.retain(|s| roles.contains(&s.role));
    if kept.scenarios.is_empty() {
        return Err(LaunchError::NoScenarioForRoles {
            task: spec.task,
            roles: roles.to_vec(),
        });
    }
    let left: Vec<&crate::spec::Scenario> = spec
        .scenarios
        .iter()
        .filter(|s| !roles.contains(&s.role))
        .collect();
    if left.is_empty() {
        return Ok((kept, None));
    }
    let mut left_out: Vec<Role> = left.iter().map(|s| s.role).collect();
    left_out.dedup();
    let note = crate::note::Note::RolesNotGraded {
        graded: roles.to_vec(),
        left_out,
        scenarios: left.len(),
        points: left.iter().map(|s| s.points).sum(),
    };
    Ok((kept, Some(note)))
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
        let t = CommandTemplate::default_for(Role::Client);
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
    fn extra_arguments_follow_the_role_word_or_end_a_template() {
        let extra = ["Hello there".to_string()];
        let t = CommandTemplate::default_for(Role::Client);
        assert_eq!(
            t.argv_with(&sub(), "h", 5, None, &extra),
            [
                "/s/bin",
                "client",
                "Hello there",
                "--host",
                "h",
                "--port",
                "5"
            ]
        );
        let r = CommandTemplate::bundled_reference(Role::Client, 16);
        assert_eq!(
            r.argv_with(&sub(), "h", 5, None, &extra)[..5],
            ["{bin}", "reference", "--task", "16", "client"].map(|w| {
                if w == "{bin}" {
                    "/s/bin".to_string()
                } else {
                    w.to_string()
                }
            })
        );
        assert_eq!(r.argv_with(&sub(), "h", 5, None, &extra)[5], "Hello there");
        let custom = CommandTemplate::parse(Role::Client, "python3 c.py {host} {port}").unwrap();
        assert_eq!(
            custom.argv_with(&sub(), "h", 5, None, &extra),
            ["python3", "c.py", "h", "5", "Hello there"]
        );
    }

    #[test]
    fn templates_substitute_per_token() {
        let t =
            CommandTemplate::parse(Role::Server, "python3 'my server.py' --port {port}").unwrap();
        assert_eq!(
            t.argv(&sub(), "h", 7, None),
            ["python3", "my server.py", "--port", "7"]
        );
        assert!(matches!(
            CommandTemplate::parse(Role::Server, "x {prot}"),
            Err(LaunchError::UnknownPlaceholder { .. })
        ));
        let doubled = CommandTemplate::parse(Role::Server, "s --port {{port}}").unwrap_err();
        assert!(
            doubled.to_string().contains("one pair of braces: {port}"),
            "{doubled}"
        );
        // A program that takes no port (it hard-codes one) is accepted, and known for it.
        let fixed = CommandTemplate::parse(Role::Server, "python3 server.py").unwrap();
        assert!(!fixed.takes_port());
        assert!(
            CommandTemplate::parse(Role::Server, "s --port {port}")
                .unwrap()
                .takes_port()
        );
        assert!(CommandTemplate::default_for(Role::Client).takes_port());
    }

    #[test]
    fn build_commands_know_only_dir() {
        let b = BuildCommand::parse("cc -O2 -o '{dir}/my chat' chat.c").unwrap();
        assert_eq!(
            b.argv(Path::new("/tmp/x")).unwrap(),
            ["cc", "-O2", "-o", "/tmp/x/my chat", "chat.c"]
        );
        assert_eq!(b.text(), "cc -O2 -o '{dir}/my chat' chat.c");
        let e = BuildCommand::parse("make -C {bin}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "build command \"make -C {bin}\" uses unknown placeholder {bin}: a build command knows only {dir} (the copy of the submission it runs in)"
        );
        assert!(matches!(
            BuildCommand::parse("  "),
            Err(LaunchError::BuildEmpty)
        ));
        assert!(matches!(
            BuildCommand::parse("make 'x"),
            Err(LaunchError::BuildUnparsable { .. })
        ));
    }

    #[test]
    fn build_patterns_expand_in_the_folder_without_a_shell() {
        let d = tempfile::tempdir().unwrap();
        for f in ["b.c", "a.c", ".hidden.c", "notes.txt", "src/x.c"] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        let b = BuildCommand::parse("cc -o server *.c src/*.c").unwrap();
        assert_eq!(
            b.argv(d.path()).unwrap(),
            ["cc", "-o", "server", "a.c", "b.c", "src/x.c"]
        );
        // `{dir}/` patterns give absolute paths; a word without a pattern is left alone.
        let b = BuildCommand::parse("javac -d . {dir}/*.txt plain").unwrap();
        let dir = d.path().display().to_string();
        assert_eq!(
            b.argv(d.path()).unwrap(),
            ["javac", "-d", ".", &format!("{dir}/notes.txt"), "plain"]
        );
        // A pattern that matches nothing is an error naming it (bash's failglob).
        let e = BuildCommand::parse("javac *.java")
            .unwrap()
            .argv(d.path())
            .unwrap_err();
        assert!(
            matches!(
                &e,
                LaunchError::BuildNoMatch { template, pattern }
                    if template == "javac *.java" && pattern == "*.java"
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("\"*.java\" matches no file"), "{e}");
        // Patterns never look outside the submission folder.
        for bad in ["cat /etc/*", "cat ../*.c", "cat src/../../*"] {
            let e = BuildCommand::parse(bad).unwrap_err();
            assert!(
                matches!(e, LaunchError::BuildBadPattern { .. }),
                "{bad}: {e}"
            );
        }
        assert!(matches!(
            BuildCommand::parse("cc [.c"),
            Err(LaunchError::BuildBadPattern { .. })
        ));
    }

    #[test]
    fn prelude_lines_know_host_port_and_name() {
        check_prelude_line("{host}", "line").unwrap();
        check_prelude_line("name: {name} at {port}", "line").unwrap();
        let e = check_prelude_line("{bin}", "--stdin-prelude line").unwrap_err();
        assert_eq!(
            e.to_string(),
            "--stdin-prelude line \"{bin}\" uses unknown placeholder {bin}: known are {host}, {port}, {name}"
        );
        assert!(matches!(
            check_prelude_line("a\nb", "line"),
            Err(LaunchError::PreludeLineBreak { .. })
        ));
        assert_eq!(
            prelude_line("{host}:{port} {name}", "127.0.0.1", 9, None),
            format!("127.0.0.1:9 {DEFAULT_CLIENT_NAME}")
        );
        assert_eq!(prelude_line("{name}", "h", 9, Some("alice")), "alice");
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
