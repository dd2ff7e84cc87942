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
    let mut head = [0u8; 4];
    let n = std::fs::File::open(&abs)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| LaunchError::Unreadable(given.to_string(), e.to_string()))?;
    if !(head[..n].starts_with(b"#!") || head[..n].starts_with(b"\x7fELF")) {
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
