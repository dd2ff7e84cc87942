//! Process hygiene: nothing a grading started survives it, even when the grader is interrupted
//! in the middle of a grading, killed outright after its guard, or killed while a copy of its
//! guard's pipe is held elsewhere.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use grader::process::grader_id::GraderId;
use grader::process::watchdog::pidfd_open;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{
    assert_leftovers_vanish, assert_no_leftovers, fixture, grader_bin, hostile, leftovers,
    live_guards_of,
};

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

/// Ctrl-C in a batch printed "finished submissions keep their reports; rerun to resume" and then
/// "error: ... no report written": one message now says what is true of both kinds.
#[test]
fn sigint_in_a_batch_says_one_true_thing() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let tasks = work.path().join("tasks");
    std::fs::create_dir_all(&tasks).unwrap();
    std::fs::write(tasks.join("task1.toml"), WAITS_LONG).unwrap();
    let class = work.path().join("class");
    crate::support::copy_fixture(1, "no_ack.py", &class.join("alice.py"));
    let out = work.path().join("out");
    let child = Command::new(grader_bin())
        .args(["batch", "--task", "1", "--no-progress", "--tasks-dir"])
        .arg(&tasks)
        .arg("--out")
        .arg(&out)
        .arg(&class)
        .env("TMPDIR", tmp.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut grading = Grading(child, tmp.path().to_path_buf());
    let deadline = Instant::now() + Duration::from_secs(60);
    while students_in(tmp.path()) == 0 {
        assert!(Instant::now() < deadline, "no student process ever started");
        assert!(
            grading.0.try_wait().unwrap().is_none(),
            "the batch ended before it could be interrupted"
        );
        std::thread::sleep(POLL_INTERVAL);
    }
    kill(Pid::from_raw(grading.0.id() as i32), Signal::SIGINT).unwrap();
    let status = grading.0.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(grading.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.matches("interrupted").count(),
        1,
        "one message: {stderr}"
    );
    assert!(
        stderr.contains(
            "error: interrupted by SIGINT: the gradings under way were stopped (their student \
             processes ended, no report written for them); submissions graded before keep their \
             reports: rerun the same command to grade the rest"
        ),
        "{stderr}"
    );
    assert_leftovers_vanish(tmp.path(), Duration::from_secs(10));
    assert!(!out.join("alice.py/task1.toml").exists());
}

/// A task whose one server scenario waits minutes for a reply that never comes, so that the
/// grading is still running (and the double-forked daemon alive) when the test kills things.
const WAITS_LONG: &str = r#"
task = 1
title = "a server whose reply never comes"

[[scenario]]
name = "the reply never comes"
points = 1
role = "server"
steps = [
  { do = "start_server" },
  { do = "connect", conn = "a" },
  { do = "expect", on = "a", contains = "never sent {nonce}", within = "10m" },
]
"#;

/// A grading the test started, with its TMPDIR: should the test fail first, dropping it
/// SIGKILLs the grader and then whatever it left there (by pid), so that one failure does not
/// leak processes into the rest of the run.
struct Grading(Child, std::path::PathBuf);

impl Drop for Grading {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
        for (pid, _) in leftovers(&self.1) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Starts a grading of `double_fork_daemon.py` against [`WAITS_LONG`] in `tmp` and waits until
/// its daemon runs and its one guard lives; returns the grading and the guard's pid.
fn grading_with_a_daemon(tmp: &Path, work: &Path) -> (Grading, u32) {
    let tasks = work.join("tasks");
    std::fs::create_dir_all(&tasks).unwrap();
    std::fs::write(tasks.join("task1.toml"), WAITS_LONG).unwrap();
    let child = Command::new(grader_bin())
        .args(["run", "--task", "1", "--seed", "1", "--time-limit", "2m"])
        .args(["--format", "compact", "--tasks-dir"])
        .arg(&tasks)
        .arg("--out")
        .arg(work.join("out"))
        .arg(hostile("double_fork_daemon.py"))
        .env("TMPDIR", tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut grading = Grading(child, tmp.to_path_buf());
    let grader = grading.0.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let daemon = leftovers(tmp)
            .iter()
            .any(|(_, cmd)| cmd.contains("grader-hostile-daemon"));
        let guards = live_guards_of(grader);
        if daemon && guards.len() == 1 {
            return (grading, guards[0]);
        }
        assert!(
            Instant::now() < deadline,
            "after 60 s: daemon running {daemon}, guards {guards:?}"
        );
        assert!(
            grading.0.try_wait().unwrap().is_none(),
            "the grading ended early"
        );
        // Polling /proc: no event tells us another process's children started.
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Waits (bounded) until the process `pid` has ended.
#[track_caller]
fn assert_ends(pid: u32, what: &str, within: Duration) {
    let id = GraderId::of(pid);
    let deadline = Instant::now() + within;
    while id.is_some_and(|id| id.is_alive() == Some(true)) {
        assert!(Instant::now() < deadline, "{what} {pid} still runs");
        std::thread::sleep(POLL_INTERVAL);
    }
}

#[test]
fn a_killed_guard_is_replaced_so_killing_the_grader_next_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (grading, guard) = grading_with_a_daemon(tmp.path(), work.path());
    let grader = grading.0.id();
    kill(Pid::from_raw(guard as i32), Signal::SIGKILL).unwrap();
    // The grader notices and starts another guard (polling: no event tells us it forked).
    let deadline = Instant::now() + Duration::from_secs(10);
    let replacement = loop {
        if let Some(&g) = live_guards_of(grader).iter().find(|&&g| g != guard) {
            break g;
        }
        assert!(
            Instant::now() < deadline,
            "no new guard 10 s after guard {guard} was killed: killing the grader now would \
             leave its daemon running"
        );
        std::thread::sleep(POLL_INTERVAL);
    };
    kill(Pid::from_raw(grader as i32), Signal::SIGKILL).unwrap();
    let mut grading = grading;
    let stderr = {
        use std::io::Read as _;
        let mut text = String::new();
        let _ = grading.0.stderr.take().unwrap().read_to_string(&mut text);
        text
    };
    grading.0.wait().unwrap();
    assert_leftovers_vanish(tmp.path(), Duration::from_secs(10));
    assert_ends(replacement, "the new guard", Duration::from_secs(15));
    assert!(
        stderr.contains(&format!("guard process {guard} ended"))
            && stderr.contains(&format!("started a new one (pid {replacement})")),
        "{stderr}"
    );
}

#[test]
fn the_guard_sees_the_graders_end_although_a_copy_of_its_pipe_stays_open() {
    if !nix::unistd::geteuid().is_root() || pidfd_open(std::process::id()).is_err() {
        grader::test_skips::skipped(
            "the_guard_sees_the_graders_end_although_a_copy_of_its_pipe_stays_open",
            "taking a descriptor of the grader (pidfd_getfd) needs root and pidfds",
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (grading, guard) = grading_with_a_daemon(tmp.path(), work.path());
    let grader = grading.0.id();
    let links = |pid: u32| -> Vec<(i32, String)> {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let fd = e.file_name().to_str()?.parse().ok()?;
                Some((fd, std::fs::read_link(e.path()).ok()?.display().to_string()))
            })
            .collect()
    };
    let pipe = links(guard)
        .into_iter()
        .map(|(_, link)| link)
        .find(|link| link.starts_with("pipe:"))
        .expect("the guard holds its pipe");
    let (write_end, _) = links(grader)
        .into_iter()
        .find(|(_, link)| *link == pipe)
        .expect("the grader holds the pipe's write end");
    // A copy of the write end leaks into this process, as if another process had kept one.
    let of_grader = pidfd_open(grader).unwrap();
    // SAFETY: pidfd_getfd(2) duplicates the grader's descriptor into this process.
    let leaked = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_pidfd_getfd,
            of_grader.as_raw_fd(),
            write_end,
            0,
        )
    };
    assert!(
        leaked >= 0,
        "pidfd_getfd: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a descriptor just created for this process alone.
    let leaked = unsafe { OwnedFd::from_raw_fd(leaked as i32) };
    kill(Pid::from_raw(grader as i32), Signal::SIGKILL).unwrap();
    let mut grading = grading;
    grading.0.wait().unwrap();
    // The pipe never reads end-of-file while the copy is open: the guard's pidfd of the grader
    // tells it the grader has ended.
    assert_leftovers_vanish(tmp.path(), Duration::from_secs(10));
    assert_ends(guard, "the guard", Duration::from_secs(15));
    drop(leaked);
}
