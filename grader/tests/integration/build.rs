//! Build commands (`build = "..."` in `classchat.toml`, `--build`): C sources compiled in a copy
//! of the submission folder and graded from there, by templates or the launch contract; the
//! student's folder left byte for byte as it was; failed, hanging and daemonising builds; bad
//! build commands; resuming, regrading on a changed command, replay; a grader killed mid-build.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use grader::report::record;

use crate::batch::{batch_task1, scores, text};
use crate::support::{
    assert_leftovers_vanish, assert_no_leftovers, copy_fixture, grade, grader_as, grader_bin,
    leftovers, open_tempdir, run_grader, unprivileged,
};

/// How often a wait with a deadline looks again where no event announces the change.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The C fixture that passes everything (when its client runs on a terminal).
const C_SOURCE: &str = "c_client_never_flushes.c";
/// Compiles it inside the copy.
const CC: &str = "cc -O1 -o chat chat.c";

/// A folder holding `chat.c` (the fixture) and, if given, a `classchat.toml`.
fn c_folder(dir: &Path, classchat: Option<&str>) {
    copy_fixture(1, C_SOURCE, &dir.join("chat.c"));
    if let Some(toml) = classchat {
        std::fs::write(dir.join("classchat.toml"), toml).unwrap();
    }
}

/// `build` plus templates that start the built `chat` in the copy.
fn with_templates(build: &str) -> String {
    format!(
        "build = {build:?}\n\
         server = \"{{dir}}/chat server --port {{port}}\"\n\
         client = \"{{dir}}/chat client --host {{host}} --port {{port}}\"\n"
    )
}

/// Every file and folder under `dir`: relative path → (bytes, mode).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, (Vec<u8>, u32)>) {
        for e in std::fs::read_dir(root.join(rel)).unwrap().flatten() {
            let rel = rel.join(e.file_name());
            let meta = std::fs::symlink_metadata(root.join(&rel)).unwrap();
            let bytes = if meta.is_file() {
                std::fs::read(root.join(&rel)).unwrap()
            } else {
                Vec::new()
            };
            out.insert(rel.clone(), (bytes, meta.permissions().mode()));
            if meta.is_dir() {
                walk(root, &rel, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, Path::new(""), &mut out);
    out
}

/// The grader's temporary HOME and working folders (build copies included) left in `tmp`.
fn temp_folders(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("grader-home-") || n.starts_with("grader-cwd-"))
        .collect()
}

/// Waits (up to `within`, polling) until the grader's temporary folders in `tmp` are gone; fails
/// otherwise (a killed grader's guard removes them shortly after its end).
#[track_caller]
fn assert_temp_folders_vanish(tmp: &Path, within: Duration) {
    let deadline = Instant::now() + within;
    let mut left = temp_folders(tmp);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(POLL_INTERVAL);
        left = temp_folders(tmp);
    }
    assert!(
        left.is_empty(),
        "temporary folders outlived the grader: {left:?}"
    );
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn batch_builds_c_sources_in_a_copy_and_leaves_the_folders_alone() {
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let class = work.path().join("class");
    // alice: her classchat.toml builds `chat` and starts it by templates.
    c_folder(&class.join("alice"), Some(&with_templates(CC)));
    // bob: sources only; the batch's --build makes `submission` for the launch contract.
    c_folder(&class.join("bob"), None);
    let before = snapshot(&class);
    let out = work.path().join("out");
    let default_build = "cc -O1 -o submission chat.c";
    let batch = |build: &str| {
        batch_task1(
            &class,
            &out,
            tmp.path(),
            &["--seed", "1", "-j", "2", "--no-progress", "--build", build],
        )
    };

    let started = Instant::now();
    let first = batch(default_build);
    let wall = started.elapsed();
    eprintln!("C batch (2 submissions, built and graded): {wall:.2?}");
    assert_no_leftovers(tmp.path());
    assert_eq!(temp_folders(tmp.path()), Vec::<String>::new());
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let s = scores(&out);
    for id in ["alice", "bob"] {
        assert_eq!(s[id].0, 30.0, "{id}: {}", text(&first));
    }
    // Built in copies: the students' folders are byte for byte what they were (no `chat`).
    assert_eq!(snapshot(&class), before);
    assert!(!class.join("alice/chat").exists());
    let build_of = |id: &str| {
        record::read(&out.join(id).join("task1.toml"))
            .unwrap()
            .provenance
            .build_command
    };
    assert_eq!(build_of("alice").as_deref(), Some(CC));
    assert_eq!(build_of("bob").as_deref(), Some(default_build));

    // Unchanged: both up to date (the content hash is the original folder's).
    let again = batch(default_build);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        stdout(&again).contains("0 graded, 2 up to date"),
        "{}",
        text(&again)
    );
    // Another default build command regrades bob only (alice names her own).
    let changed = batch("cc -O2 -o submission chat.c");
    assert_no_leftovers(tmp.path());
    assert_eq!(changed.status.code(), Some(0), "{}", text(&changed));
    assert!(
        stdout(&changed).contains("1 graded, 1 up to date"),
        "{}",
        text(&changed)
    );
    assert_eq!(
        build_of("bob").as_deref(),
        Some("cc -O2 -o submission chat.c")
    );
    assert_eq!(snapshot(&class), before);
}

#[test]
fn run_builds_a_folder_for_the_launch_contract_and_replay_rebuilds_it() {
    let work = tempfile::tempdir().unwrap();
    let folder = work.path().join("carol");
    c_folder(&folder, None);
    let before = snapshot(&folder);
    let g = grade(1, &folder, &["--build", CC]);
    assert_eq!(g.code(), 0, "{}\n{}", g.stdout(), g.stderr());
    assert_eq!(g.report().score, 30.0);
    assert!(
        g.stdout().contains(&format!("built with `{CC}` in ")),
        "{}",
        g.stdout()
    );
    assert_eq!(snapshot(&folder), before);
    let path = g.out_dir.path().join("carol/task1.toml");
    assert_eq!(
        record::read(&path)
            .unwrap()
            .provenance
            .build_command
            .as_deref(),
        Some(CC)
    );

    let tmp = tempfile::tempdir().unwrap();
    let replays = work.path().join("replays");
    let replay = run_grader(
        [
            "replay".as_ref(),
            path.as_os_str(),
            "--format".as_ref(),
            "compact".as_ref(),
            "--out".as_ref(),
            replays.as_os_str(),
        ],
        tmp.path(),
    );
    assert_no_leftovers(tmp.path());
    assert_eq!(replay.status.code(), Some(0), "{}", text(&replay));
    assert!(
        stdout(&replay).contains(&format!("built with `{CC}` in "))
            && stdout(&replay).contains("The replay reproduced the recorded score."),
        "{}",
        text(&replay)
    );
    assert!(
        !stderr(&replay).contains("changed since this grading"),
        "{}",
        text(&replay)
    );
    assert_eq!(snapshot(&folder), before);
}

/// Breaks the fixture: a syntax error in `main`'s parameter list.
fn break_source(dir: &Path) {
    let path = dir.join("chat.c");
    let source = std::fs::read_to_string(&path).unwrap();
    let broken = source.replacen("int main(", "int main( oops", 1);
    assert_ne!(broken, source, "the fixture has no `int main(`");
    std::fs::write(&path, broken).unwrap();
}

#[test]
fn a_failed_build_is_the_submissions_problem() {
    // grader run: exit 2, the command, its status and the compiler's error line.
    let work = tempfile::tempdir().unwrap();
    let broken = work.path().join("dora");
    c_folder(&broken, None);
    break_source(&broken);
    let g = grade(1, &broken, &["--build", CC]);
    assert_eq!(g.code(), 2, "{}\n{}", g.stdout(), g.stderr());
    assert!(g.report.is_none());
    let err = g.stderr();
    assert!(
        err.contains(&format!(
            "error: the build command \"{CC}\" failed (exit status 1) in a copy of {}; its last output lines:\n    ",
            broken.display()
        )),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("    chat.c:") && l.contains("error:")),
        "{err}"
    );
    let message = &err[err.find("error: ").unwrap()..];
    assert!(message.lines().count() <= 1 + 15, "{err}");

    // grader batch: the broken one is NOT STARTED, its good record kept; the other is graded.
    let tmp = tempfile::tempdir().unwrap();
    let class = work.path().join("class");
    c_folder(&class.join("alice"), Some(&with_templates(CC)));
    c_folder(&class.join("bob"), Some(&with_templates(CC)));
    let out = work.path().join("out");
    let batch = || batch_task1(&class, &out, tmp.path(), &["--seed", "1", "--no-progress"]);
    let first = batch();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    break_source(&class.join("bob"));
    c_folder(&class.join("cleo"), Some(&with_templates(CC)));
    let second = batch();
    assert_no_leftovers(tmp.path());
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    let s = scores(&out);
    assert_eq!(s["alice"].0, 30.0);
    assert_eq!(s["cleo"].0, 30.0, "graded beside the broken build");
    assert_eq!(s["bob"].0, 30.0, "bob's last good record is kept");
    let why = std::fs::read_to_string(out.join("bob/task1.error.txt")).unwrap();
    assert!(
        why.starts_with("not started at ")
            && why.contains(&format!(
                ": the build command \"{CC}\" failed (exit status 1) in a copy of {}; its last output lines:\n    ",
                class.join("bob").display()
            ))
            && why.contains("chat.c:"),
        "{why}"
    );
    let so = stdout(&second);
    assert!(
        so.lines()
            .any(|l| l.starts_with("  bob") && l.contains("NOT STARTED  the build command")),
        "{so}"
    );
}

#[test]
fn a_hanging_build_is_stopped_at_its_deadline_and_nothing_survives_a_build() {
    let work = tempfile::tempdir().unwrap();
    let folder = work.path().join("hank");
    c_folder(&folder, None);
    let started = Instant::now();
    // `grade` also checks that no process is left.
    let g = grade(
        1,
        &folder,
        &["--build", "sleep 600", "--build-timeout", "1s"],
    );
    let took = started.elapsed();
    assert_eq!(g.code(), 2, "{}\n{}", g.stdout(), g.stderr());
    assert!(
        g.stderr()
            .contains("the build command \"sleep 600\" timed out (stopped after 1s) in a copy of")
            && g.stderr().contains(", printing nothing"),
        "{}",
        g.stderr()
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");

    // In a batch: one hangs (NOT STARTED), one leaves a daemon behind and succeeds (graded;
    // the daemon is ended with the build).
    let tmp = tempfile::tempdir().unwrap();
    let class = work.path().join("class");
    c_folder(&class.join("hank"), Some("build = \"sleep 600\"\n"));
    c_folder(&class.join("dina"), Some(&with_templates("sh build.sh")));
    std::fs::write(
        class.join("dina/build.sh"),
        "setsid sleep 600 >/dev/null 2>&1 &\ncc -O1 -o chat chat.c\n",
    )
    .unwrap();
    let out = work.path().join("out");
    let started = Instant::now();
    let o = batch_task1(
        &class,
        &out,
        tmp.path(),
        &["--no-progress", "--build-timeout", "1s"],
    );
    let took = started.elapsed();
    assert_no_leftovers(tmp.path());
    assert_eq!(temp_folders(tmp.path()), Vec::<String>::new());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert_eq!(scores(&out)["dina"].0, 30.0, "{}", text(&o));
    let why = std::fs::read_to_string(out.join("hank/task1.error.txt")).unwrap();
    assert!(
        why.contains("the build command \"sleep 600\" timed out (stopped after 1s)"),
        "{why}"
    );
}

#[test]
fn a_build_command_with_an_unknown_placeholder_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let folder = work.path().join("ivan");
    c_folder(&folder, None);
    let g = grade(1, &folder, &["--build", "make -C {bin}"]);
    assert_eq!(g.code(), 2);
    assert_eq!(
        g.stderr(),
        "error: build command \"make -C {bin}\" uses unknown placeholder {bin}: a build command knows only {dir} (the copy of the submission it runs in)\n"
    );
    assert!(!g.stdout().contains("Grading"), "refused before grading");

    // batch: --build is checked before any grading; a classchat.toml's only for its student.
    let tmp = tempfile::tempdir().unwrap();
    let class = work.path().join("class");
    c_folder(&class.join("alice"), Some(&with_templates(CC)));
    c_folder(&class.join("ivan"), Some(&with_templates("make {port}")));
    let out = work.path().join("out");
    let o = batch_task1(&class, &out, tmp.path(), &["--build", "make {port}"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        stderr(&o).contains("uses unknown placeholder {port}"),
        "{}",
        text(&o)
    );
    assert!(!out.join("alice").exists(), "nothing graded");
    let o = batch_task1(&class, &out, tmp.path(), &["--no-progress"]);
    assert_no_leftovers(tmp.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(scores(&out)["alice"].0, 30.0);
    let why = std::fs::read_to_string(out.join("ivan/task1.error.txt")).unwrap();
    assert!(
        why.contains("build command \"make {port}\" uses unknown placeholder {port}"),
        "{why}"
    );
}

#[test]
fn a_grader_killed_during_a_build_leaves_neither_processes_nor_the_copy() {
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let class = work.path().join("class");
    c_folder(&class.join("hank"), Some("build = \"sleep 600\"\n"));
    let mut child = Command::new(grader_bin())
        .args(["batch", "--task", "1", "--no-progress", "--out"])
        .arg(work.path().join("out"))
        .arg(&class)
        .env("TMPDIR", tmp.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Kill once the build runs in its copy (polling: no event says so).
    let deadline = Instant::now() + Duration::from_secs(60);
    while leftovers(tmp.path()).is_empty() {
        assert!(Instant::now() < deadline, "no build after 60 s");
        assert!(child.try_wait().unwrap().is_none(), "batch ended early");
        std::thread::sleep(POLL_INTERVAL);
    }
    assert!(
        temp_folders(tmp.path())
            .iter()
            .any(|n| n.starts_with("grader-cwd-")),
        "the build runs in a grader-cwd-<pid>- copy"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_leftovers_vanish(tmp.path(), Duration::from_secs(10));
    assert_temp_folders_vanish(tmp.path(), Duration::from_secs(10));
}

/// A folder with `build.sh` holding `script`.
fn build_script_folder(dir: &Path, script: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("build.sh"), script).unwrap();
}

#[test]
fn a_failed_build_quotes_the_real_end_of_its_output_and_says_truncated_only_when_it_was() {
    let work = tempfile::tempdir().unwrap();
    // CRLF and colour: the cleaned text is shorter than the raw bytes, but nothing was dropped.
    let crlf = work.path().join("crlf");
    build_script_folder(
        &crlf,
        "printf 'warning: \\033[33myellow\\033[0m\\r\\nerror: x\\r\\n'\nexit 1\n",
    );
    let g = grade(1, &crlf, &["--build", "sh build.sh"]);
    assert_eq!(g.code(), 2, "{}\n{}", g.stdout(), g.stderr());
    assert!(
        g.stderr().contains("failed (exit status 1) in a copy of")
            && g.stderr()
                .contains("; its last output lines:\n    warning: yellow\n    error: x\n")
            && !g.stderr().contains("passed"),
        "{}",
        g.stderr()
    );

    // More than the stream's match cap (1 MiB), then the real error: that is what is quoted.
    let flood = work.path().join("flood");
    build_script_folder(
        &flood,
        "yes 'filler line' | head -c 1200000\necho FINAL-ERROR-LINE\nexit 1\n",
    );
    let g = grade(1, &flood, &["--build", "sh build.sh"]);
    assert_eq!(g.code(), 2, "{}\n{}", g.stdout(), g.stderr());
    let err = g.stderr();
    assert!(
        err.contains("failed (exit status 1) in a copy of")
            && err.contains(
                "; its output passed 1024 KiB (the grader kept its end), its last lines:\n"
            )
            && err.trim_end().ends_with("\n    FINAL-ERROR-LINE"),
        "{err}"
    );
    let message = &err[err.find("error: ").unwrap()..];
    assert_eq!(message.lines().count(), 1 + 15, "{err}");
    assert!(
        message
            .lines()
            .skip(1)
            .take(14)
            .all(|l| l == "    filler line"),
        "{err}"
    );
}

/// Makes `locked/inner` in the working folder and in HOME, then takes the permission away.
const LOCK: &str =
    "mkdir -p locked/inner \"$HOME/locked/inner\"\nchmod 000 locked \"$HOME/locked\"\n";

#[test]
fn folders_a_program_made_unwritable_are_removed_with_its_temporary_folders() {
    let Some(user) = unprivileged("folders_a_program_made_unwritable_are_removed") else {
        return;
    };
    let work = open_tempdir();
    let tmp = open_tempdir();
    let out = work.path().join("out");
    let run = |submission: &Path, extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "run".as_ref(),
            "--task".as_ref(),
            "1".as_ref(),
            submission.as_os_str(),
            "--isolation".as_ref(),
            "host".as_ref(),
            "--format".as_ref(),
            "compact".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        let o = grader_as(&user, tmp.path(), &args).output().unwrap();
        assert_no_leftovers(tmp.path());
        o
    };

    // A build: its copy and its HOME.
    let locky = work.path().join("locky");
    build_script_folder(&locky, &format!("{LOCK}echo built-locked\nexit 1\n"));
    let o = run(&locky, &["--build", "sh build.sh"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(stderr(&o).contains("    built-locked"), "{}", text(&o));
    assert_eq!(temp_folders(tmp.path()), Vec::<String>::new());

    // A student program started from its own file: its working folder and HOME.
    let program = work.path().join("lock.sh");
    std::fs::write(&program, format!("#!/bin/sh\n{LOCK}exit 1\n")).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = run(&program, &["--seed", "1"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(temp_folders(tmp.path()), Vec::<String>::new());
}

#[test]
fn the_guard_removes_folders_a_build_made_unwritable_after_the_grader_is_killed() {
    let Some(user) = unprivileged("the_guard_removes_folders_a_build_made_unwritable") else {
        return;
    };
    let work = open_tempdir();
    let tmp = open_tempdir();
    let locky = work.path().join("locky");
    build_script_folder(&locky, &format!("{LOCK}exec sleep 600\n"));
    let out = work.path().join("out");
    let mut child = grader_as(
        &user,
        tmp.path(),
        &[
            "run".as_ref(),
            "--task".as_ref(),
            "1".as_ref(),
            locky.as_os_str(),
            "--isolation".as_ref(),
            "host".as_ref(),
            "--build".as_ref(),
            "sh build.sh".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
    )
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    // Kill once the build has locked its folders and sleeps (polling: no event says so).
    let deadline = Instant::now() + Duration::from_secs(60);
    while !leftovers(tmp.path())
        .iter()
        .any(|(_, cmd)| cmd.starts_with("sleep"))
    {
        assert!(Instant::now() < deadline, "no build after 60 s");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the grader ended early"
        );
        std::thread::sleep(POLL_INTERVAL);
    }
    // The grader itself: `setpriv` execs it, `runuser` starts it as its child.
    let launcher = child.id() as i32;
    let grader = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().nth(1));
            ppid == Some(&launcher.to_string())
                && std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == grader_bin())
        })
        .filter(|_| {
            std::fs::read_link(format!("/proc/{launcher}/exe")).is_ok_and(|e| e != grader_bin())
        })
        .unwrap_or(launcher);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(grader),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    assert_leftovers_vanish(tmp.path(), Duration::from_secs(10));
    assert_temp_folders_vanish(tmp.path(), Duration::from_secs(10));
}
