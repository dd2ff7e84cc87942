//! The sandbox against hostile submissions (fixtures/hostile/, the probes built on
//! `sandbox_probe_base.py`): each probe exits with status 3, failing the scenarios, when its
//! attack works, and plays Task 1 correctly otherwise, so "every scenario passes" is the
//! assertion that the attack was stopped; each test also checks the attack's effect on the host
//! (the terminal's input, the socket's connections, /dev/shm, System V IPC). The file-system,
//! identity and IPC walls need root; those tests say so and skip elsewhere.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::support::{assert_no_leftovers, grade, grader_bin, hostile, run_grader};

fn root_only(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        grader::test_skips::skipped(test, "the minimal root and the student uid need root");
    }
    root
}

fn temp(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().unwrap()
}

/// `grader run --task 1 <fixture> --seed 1 --format compact --out <out> <extra>`, started by
/// `cmd` (so a test can give it a terminal or a descriptor), with TMPDIR at `tmp`.
fn run_with(mut cmd: Command, fixture: &Path, out: &Path, tmp: &Path, extra: &[&str]) -> Output {
    cmd.args([
        "run", "--task", "1", "--seed", "1", "--format", "compact", "--out",
    ])
    .arg(out)
    .args(extra)
    .arg(fixture)
    .env("TMPDIR", tmp)
    .env("NO_COLOR", "1")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let o = cmd.output().expect("run grader");
    assert_no_leftovers(tmp);
    o
}

fn all_passed(o: &Output) -> String {
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
}

#[test]
fn a_program_cannot_type_into_the_graders_terminal() {
    // The grader runs with a pseudo-terminal as its controlling terminal and stdin, as in an
    // instructor's shell.
    let pty = nix::pty::openpty(None, None).unwrap();
    let mut raw = nix::sys::termios::tcgetattr(&pty.slave).unwrap();
    nix::sys::termios::cfmakeraw(&mut raw);
    nix::sys::termios::tcsetattr(&pty.slave, nix::sys::termios::SetArg::TCSANOW, &raw).unwrap();
    let (out, tmp) = (temp("grader-test-out-"), temp("grader-test-tmp-"));
    let mut cmd = Command::new(grader_bin());
    cmd.stdin(Stdio::from(pty.slave.try_clone().unwrap()));
    // SAFETY: setsid and ioctl between fork and exec, on the child's own stdin.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()?;
            if nix::libc::ioctl(0, nix::libc::TIOCSCTTY as _, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = run_with(
        cmd,
        &hostile("injects_into_terminal.py"),
        out.path(),
        tmp.path(),
        &[],
    );
    // Whatever was pushed into the terminal's input waits there for its reader.
    nix::fcntl::fcntl(
        &pty.slave,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    let mut typed = Vec::new();
    let _ = std::fs::File::from(pty.slave).read_to_end(&mut typed);
    let typed = String::from_utf8_lossy(&typed);
    assert!(
        !typed.contains("INJECTED"),
        "typed into the terminal: {typed:?}"
    );
    all_passed(&o);
}

#[test]
fn a_program_cannot_reach_a_unix_socket_of_the_host() {
    if !root_only("a_program_cannot_reach_a_unix_socket_of_the_host") {
        return;
    }
    let dir = temp("grader-test-sock-");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let sock = dir.path().join("host.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    listener.set_nonblocking(true).unwrap();
    // Writable by anyone (as X11's and many agents' sockets are): only the minimal root keeps
    // a program from it, not file permissions.
    std::fs::set_permissions(&sock, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let (out, tmp) = (temp("grader-test-out-"), temp("grader-test-tmp-"));
    let template = format!("{{bin}} server --port {{port}} --target {}", sock.display());
    let o = run_with(
        Command::new(grader_bin()),
        &hostile("connects_to_host_unix_socket.py"),
        out.path(),
        tmp.path(),
        &["--server", &template],
    );
    let accepted = listener.accept();
    assert!(
        accepted
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "the host's socket got a connection: {accepted:?}"
    );
    all_passed(&o);
}

#[test]
fn root_only_files_and_other_processes_stay_out_of_reach() {
    if !root_only("root_only_files_and_other_processes_stay_out_of_reach") {
        return;
    }
    // A mode-600 secret where student programs could see it if they ran as root: inside the
    // folder of a PATH entry the sandbox shows.
    let bin = temp("grader-test-path-");
    std::fs::set_permissions(
        bin.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let secret = bin.path().join("token");
    std::fs::write(&secret, "ghp_secret").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap()
    );
    let (out, tmp) = (temp("grader-test-out-"), temp("grader-test-tmp-"));
    let template = format!(
        "{{bin}} server --port {{port}} --target {}",
        secret.display()
    );
    let mut cmd = Command::new(grader_bin());
    cmd.env("PATH", &path);
    let o = run_with(
        cmd,
        &hostile("reads_secrets_and_processes.py"),
        out.path(),
        tmp.path(),
        &["--server", &template],
    );
    all_passed(&o);
}

#[test]
fn a_program_sees_no_process_outside_its_own() {
    if !root_only("a_program_sees_no_process_outside_its_own") {
        return;
    }
    // Every scenario's programs run in a PID namespace of their own: the probe finds neither
    // the host's init nor the grader (by /proc, its parent, or kill(pid, 0)).
    let (out, tmp) = (temp("grader-test-out-"), temp("grader-test-tmp-"));
    let o = run_with(
        Command::new(grader_bin()),
        &hostile("finds_processes_outside_its_program.py"),
        out.path(),
        tmp.path(),
        &[],
    );
    all_passed(&o);
}

/// `/dev/shm` files and System V segments named by `leaves_shared_memory.py`.
fn shared_memory_leaks() -> (Vec<String>, bool) {
    let files = std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("grader-shm-leak-"))
                .collect()
        })
        .unwrap_or_default();
    let segment = std::fs::read_to_string("/proc/sysvipc/shm")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().next() == Some("1196572996"));
    (files, segment)
}

#[test]
fn shared_memory_does_not_outlive_the_grading() {
    if !root_only("shared_memory_does_not_outlive_the_grading") {
        return;
    }
    let before = shared_memory_leaks();
    let g = grade(1, &hostile("leaves_shared_memory.py"), &[]);
    let after = shared_memory_leaks();
    // Clean up what a failing run left, so the next run starts clean.
    for f in &after.0 {
        let _ = std::fs::remove_file(Path::new("/dev/shm").join(f));
    }
    assert_eq!(g.code(), 0, "{}", g.stdout());
    assert_eq!(after, before, "left on the host: {after:?}");
}

#[test]
fn descriptors_the_grader_inherited_do_not_reach_student_programs() {
    let (out, tmp) = (temp("grader-test-out-"), temp("grader-test-tmp-"));
    let file = tempfile::tempfile().unwrap();
    let fd = file.as_raw_fd();
    let mut cmd = Command::new(grader_bin());
    // SAFETY: dup2 between fork and exec; the copy (descriptor 9) is not close-on-exec, as a
    // CI runner's pipes often are not.
    unsafe {
        cmd.pre_exec(move || {
            if nix::libc::dup2(fd, 9) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = run_with(
        cmd,
        &hostile("inherits_descriptors.py"),
        out.path(),
        tmp.path(),
        &[],
    );
    all_passed(&o);
}

#[test]
fn a_submission_cannot_run_the_grader_or_its_reference() {
    let dir = temp("grader-test-sub-");
    let script = dir.path().join("borrows_the_reference.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexec \"{}\" reference --task 1 \"$@\"\n",
            grader_bin().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let g = grade(1, &script, &[]);
    let r = g.report();
    assert!(
        r.score < r.max_score,
        "the reference scored for it: {}",
        g.stdout()
    );
    let listening = r
        .scenarios
        .iter()
        .find(|s| s.name == "server listens on the assigned port")
        .unwrap();
    assert_ne!(listening.status, grader::verdict::Status::Passed);
    // The grader itself as the submission: refused outright.
    let tmp = temp("grader-test-tmp-");
    let o = run_grader(
        ["run", "--task", "1", grader_bin().to_str().unwrap()],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("the grader's own binary"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_submission_inside_the_task_folder_is_refused() {
    let tasks = temp("grader-test-tasks-");
    std::fs::copy(
        crate::support::root().join("tasks/task1.toml"),
        tasks.path().join("task1.toml"),
    )
    .unwrap();
    let sub = tasks.path().join("student.py");
    std::fs::copy(crate::support::fixture(1, "correct_other_style.py"), &sub).unwrap();
    let (out, tmp) = (temp("grader-test-out-"), temp("grader-test-tmp-"));
    let o = run_grader(
        [
            "run".as_ref(),
            "--task".as_ref(),
            "1".as_ref(),
            "--tasks-dir".as_ref(),
            tasks.path().as_os_str(),
            "--out".as_ref(),
            out.path().as_os_str(),
            sub.as_os_str(),
        ],
        tmp.path(),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("lies inside"), "{stderr}");
}

#[test]
fn the_bundled_reference_runs_from_a_folder_closed_to_other_users() {
    // As the flakiness script does: a private copy of the grader in a mode-700 folder, grading
    // its bundled reference (which must not lose its way in under the students' uid).
    let dir = temp("grader-test-copy-");
    let copy = dir.path().join("grader");
    std::fs::copy(grader_bin(), &copy).unwrap();
    let out = dir.path().join("out");
    let tmp = temp("grader-test-tmp-");
    let o = Command::new(&copy)
        .args([
            "run", "--task", "1", "--seed", "1", "--format", "compact", "--out",
        ])
        .arg(&out)
        .env("TMPDIR", tmp.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_no_leftovers(tmp.path());
    all_passed(&o);
}

/// Whether `setpriv` can run `unshare -Urn` as uid 65534 (root is needed to switch uid; the
/// kernel must let an ordinary user create user namespaces). Prints why not.
fn unprivileged_namespaces(test: &str) -> bool {
    if !nix::unistd::geteuid().is_root() {
        grader::test_skips::skipped(test, "switching to an unprivileged uid needs root");
        return false;
    }
    let ok = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "unshare",
            "-Urn",
            "true",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        grader::test_skips::skipped(test, "unprivileged user namespaces are unavailable here");
    }
    ok
}

#[test]
fn an_unprivileged_grader_isolates_with_user_namespaces() {
    let test = "an_unprivileged_grader_isolates_with_user_namespaces";
    if !unprivileged_namespaces(test) {
        return;
    }
    // Everything uid 65534 needs, in a folder it may read: a copy of the grader (the build tree
    // is root's), the probes, and folders it may write (TMPDIR, the reports).
    let work = temp("grader-test-userns-");
    let open = |p: &Path, mode: u32| {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap()
    };
    open(work.path(), 0o755);
    let grader = work.path().join("grader");
    std::fs::copy(grader_bin(), &grader).unwrap();
    open(&grader, 0o755);
    let sub = work.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    open(&sub, 0o755);
    for f in [
        "sandbox_probe_base.py",
        "finds_processes_outside_its_program.py",
        "connects_to_host_unix_socket.py",
        "reaches_host_listener.py",
    ] {
        std::fs::copy(hostile(f), sub.join(f)).unwrap();
        open(&sub.join(f), 0o755);
    }
    // The host's services the probes try to reach: a Unix socket anyone may connect to and a
    // listener on the host's loopback.
    let sock = work.path().join("host.sock");
    let unix = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    unix.set_nonblocking(true).unwrap();
    open(&sock, 0o777);
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    tcp.set_nonblocking(true).unwrap();
    let port = tcp.local_addr().unwrap().port();
    let cases = [
        ("finds_processes_outside_its_program.py", String::new()),
        (
            "connects_to_host_unix_socket.py",
            format!("{{bin}} server --port {{port}} --target {}", sock.display()),
        ),
        (
            "reaches_host_listener.py",
            format!("{{bin}} server --port {{port}} --probe-port {port}"),
        ),
    ];
    for (i, (fixture, template)) in cases.iter().enumerate() {
        let (tmp, out) = (
            work.path().join(format!("tmp{i}")),
            work.path().join(format!("out{i}")),
        );
        for d in [&tmp, &out] {
            std::fs::create_dir(d).unwrap();
            open(d, 0o1777);
        }
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&grader)
            .current_dir(&tmp);
        let mut extra = vec![];
        if !template.is_empty() {
            extra = vec!["--server", template.as_str()];
        }
        let o = run_with(cmd, &sub.join(fixture), &out, &tmp, &extra);
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(
            stderr.matches("unprivileged user namespace").count() == 1,
            "{fixture}: the console says once how it isolates: {stderr}"
        );
        all_passed(&o);
        let record = grader::report::record::read(&out.join(fixture).join("task1.toml")).unwrap();
        assert_eq!(record.report.isolation, "userns", "{fixture}");
    }
    assert!(
        unix.accept()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "the host's Unix socket got a connection"
    );
    assert!(
        tcp.accept()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "the host's listener got a connection"
    );
}
