//! What a student's program can see of the grader: only an allow-listed environment (no CI
//! secrets), a fresh HOME and working directory.

use std::process::Command;

use grader::verdict::Status;

use crate::support::{fixture, grader_bin};

#[test]
fn environment_is_scrubbed_and_home_is_fresh() {
    let out = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let o = Command::new(grader_bin())
        .args(["run", "--task", "1", "--seed", "1", "-v", "--out"])
        .arg(out.path())
        .arg(fixture(1, "prints_environment.py"))
        .env("TMPDIR", tmp.path())
        .env("GITHUB_TOKEN", "ghp_secret_token_value")
        .env("AWS_SECRET_ACCESS_KEY", "aws-secret-value")
        .env("CLASSCHAT_PORT", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let text =
        std::fs::read_to_string(out.path().join("prints_environment.py/task1.toml")).unwrap();
    let report = grader::report::toml::parse(&text).unwrap();
    let refused = report
        .scenarios
        .iter()
        .find(|s| s.name == "client reports a refused connection")
        .unwrap();
    assert_eq!(refused.status, Status::Failed);
    let dump = refused
        .stderr_tail
        .clone()
        .expect("the client's environment dump");
    assert!(
        !dump.contains("secret"),
        "a secret reached student code:\n{dump}"
    );
    let names: Vec<&str> = dump
        .lines()
        .filter_map(|l| l.strip_prefix("ENV "))
        .filter_map(|kv| kv.split_once('=').map(|(k, _)| k))
        .collect();
    let allowed = [
        "PATH",
        "HOME",
        "LANG",
        "TERM",
        "PYTHONUNBUFFERED",
        "CLASSCHAT_HOST",
        "CLASSCHAT_PORT",
        "CLASSCHAT_NAME",
    ];
    // What starts the interpreter may add variables of its own: a shell sets PWD/SHLVL/_,
    // pyenv's shim (which `#!/usr/bin/env python3` finds on some machines) sets PYENV_*, and
    // Python's UTF-8 mode sets LC_CTYPE. Everything else must come from the allow-list.
    let added_by_launcher = |n: &str| {
        ["PWD", "OLDPWD", "SHLVL", "_", "LC_CTYPE"].contains(&n)
            || n.starts_with("PYENV_")
            || n.starts_with("_PYENV_")
    };
    for n in &names {
        assert!(
            allowed.contains(n) || added_by_launcher(n),
            "unexpected variable {n} in:\n{dump}"
        );
    }
    assert!(names.contains(&"PYTHONUNBUFFERED"), "{dump}");
    // The grader's own CLASSCHAT_PORT=1 is not passed through: the scenario's port is.
    assert!(!dump.contains("CLASSCHAT_PORT=1\n"), "{dump}");
    let tmp = std::fs::canonicalize(tmp.path())
        .unwrap()
        .display()
        .to_string();
    assert!(
        dump.contains(&format!("ENV HOME={tmp}/grader-home-")),
        "HOME is not a fresh folder:\n{dump}"
    );
    assert!(
        dump.contains(&format!("CWD {tmp}/grader-cwd-")),
        "the working folder is not fresh:\n{dump}"
    );
    // Every server scenario passed: the probe's server is correct.
    assert!(
        report
            .scenarios
            .iter()
            .filter(|s| s.role == grader::spec::Role::Server)
            .all(|s| s.status == Status::Passed)
    );
}
