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

/// Student code cannot read the task files (hidden scenarios' expected values) or the reports:
/// inside its mount namespace an empty folder covers both. Needs root (the mount namespace);
/// skips, saying so, without it.
#[test]
fn task_files_and_reports_are_out_of_student_codes_sight() {
    if !nix::unistd::geteuid().is_root() {
        grader::test_skips::skipped("", "the file-system confinement needs root");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let tasks = work.path().join("tasks");
    std::fs::create_dir(&tasks).unwrap();
    std::fs::copy(
        crate::support::root().join("tasks/task1.toml"),
        tasks.join("task1.toml"),
    )
    .unwrap();
    let out = work.path().join("reports");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("someone-elses-record.toml"), "score = 30\n").unwrap();
    // no_ack.py, but its server refuses to start when it can see either folder's files.
    let original = std::fs::read_to_string(fixture(1, "no_ack.py")).unwrap();
    let check = format!(
        "import os as _os\nif _os.path.exists({:?}) or _os.path.exists({:?}):\n    raise SystemExit(7)\n",
        tasks.join("task1.toml").display().to_string(),
        out.join("someone-elses-record.toml").display().to_string()
    );
    let script = original.replacen("import os\n", &format!("{check}import os\n"), 1);
    assert_ne!(script, original, "the check was inserted");
    let sub = work.path().join("peeks.py");
    std::fs::write(&sub, script).unwrap();
    std::fs::set_permissions(&sub, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let o = Command::new(grader_bin())
        .args(["run", "--task", "1", "--seed", "1", "--tasks-dir"])
        .arg(&tasks)
        .arg("--out")
        .arg(&out)
        .arg(&sub)
        .output()
        .unwrap();
    let record = std::fs::read_to_string(out.join("peeks.py/task1.toml")).unwrap_or_else(|_| {
        panic!(
            "no record: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    let report = grader::report::toml::parse(&record).unwrap();
    // Exactly no_ack's verdict: it could see neither folder, so it ran as no_ack does.
    assert_eq!(report.score, 27.0, "{record}");
}
