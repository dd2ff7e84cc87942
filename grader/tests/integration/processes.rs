//! Process hygiene: nothing a grading started survives it, even when the grader is interrupted
//! in the middle of a grading.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{assert_no_leftovers, fixture, grader_bin};

/// How often the test looks at /proc while waiting (bounded by a deadline).
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// Live processes whose working directory is inside `tmp`.
fn students_in(tmp: &Path) -> usize {
    let tmp = std::fs::canonicalize(tmp).unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| std::fs::read_link(e.path().join("cwd")).is_ok_and(|c| c.starts_with(&tmp)))
        .count()
}

#[test]
fn sigterm_mid_grading_ends_every_student_process() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut child = Command::new(grader_bin())
        .args(["run", "--task", "1", "--seed", "1", "--out"])
        .arg(out.path())
        .arg(fixture(1, "ignores_exit.py"))
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded) until the grading has student processes running, then interrupt it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while students_in(tmp.path()) == 0 {
        assert!(Instant::now() < deadline, "no student process ever started");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the grading ended before it could be interrupted"
        );
        // Polling /proc: no event tells us another process's children started.
        std::thread::sleep(POLL_INTERVAL);
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("interrupted by SIGTERM"));
    assert_no_leftovers(tmp.path());
    assert!(
        !out.path().join("ignores_exit.py/task1.toml").exists(),
        "no report for an interrupted grading"
    );
}
