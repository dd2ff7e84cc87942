//! Bad input to the grader itself: each case prints one clear `error:` line, exits 2, never
//! panics, and never writes a report claiming a score.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::support::{fixture, grader_bin};

struct Ran {
    code: i32,
    stderr: String,
    out: tempfile::TempDir,
}

fn run(args: &[&str]) -> Ran {
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(grader_bin())
        .arg("run")
        .args(args)
        .arg("--out")
        .arg(out.path().join("reports"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    Ran {
        code: o.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        out,
    }
}

#[track_caller]
fn assert_usage_error(r: &Ran, needle: &str) {
    assert_eq!(r.code, 2, "exit code; stderr: {}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert!(
        r.stderr.contains(needle),
        "stderr should mention {needle:?}: {}",
        r.stderr
    );
    let lines = r.stderr.lines().filter(|l| !l.trim().is_empty()).count();
    assert!(lines <= 3, "one clear line expected, got: {}", r.stderr);
    // No cause is printed twice (an error that names its cause, then the cause again).
    let parts: Vec<&str> = r
        .stderr
        .trim()
        .split(": ")
        .filter(|p| p.len() > 12)
        .collect();
    for (i, part) in parts.iter().enumerate() {
        assert!(
            !parts[i + 1..].contains(part),
            "{part:?} is repeated in: {}",
            r.stderr
        );
    }
    let reports = r.out.path().join("reports");
    let any_report = walk(&reports)
        .iter()
        .any(|p| p.ends_with(".toml") || p.ends_with(".xml"));
    assert!(!any_report, "no report may be written on a usage error");
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

fn ok_sub() -> String {
    fixture(1, "no_ack.py").display().to_string()
}

#[test]
fn missing_submission() {
    assert_usage_error(
        &run(&["--task", "1", "/nonexistent/student-bin"]),
        "does not exist",
    );
}

#[test]
fn non_executable_submission() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("server.py");
    std::fs::write(&p, "#!/usr/bin/env python3\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_usage_error(&run(&["--task", "1", p.to_str().unwrap()]), "chmod +x");
}

#[test]
fn directory_submission_without_templates() {
    // A folder with nothing to start (no classchat.toml, no executable) names the ways out.
    let dir = tempfile::tempdir().unwrap();
    let r = run(&["--task", "1", dir.path().to_str().unwrap()]);
    assert_usage_error(&r, "no executable in");
    assert!(r.stderr.contains("--server/--client"), "{}", r.stderr);
}

#[test]
fn script_without_shebang() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("server.py");
    std::fs::write(&p, "print('hi')\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_usage_error(&run(&["--task", "1", p.to_str().unwrap()]), "#!");
}

fn script(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("chat.py");
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = p.display().to_string();
    (dir, path)
}

#[test]
fn script_saved_with_windows_line_endings() {
    let (_d, p) = script("#!/usr/bin/env python3\r\nprint('hi')\r\n");
    let r = run(&["--task", "1", &p]);
    assert_usage_error(&r, "Windows line endings (CRLF)");
    assert!(r.stderr.contains("dos2unix"), "{}", r.stderr);
}

#[test]
fn script_whose_interpreter_is_missing() {
    let (_d, p) = script("#!/usr/bin/python-that-is-not-here\nprint('hi')\n");
    assert_usage_error(
        &run(&["--task", "1", &p]),
        "`/usr/bin/python-that-is-not-here`, which is not installed",
    );
    let (_d, p) = script("#!/usr/bin/env python-that-is-not-here\nprint('hi')\n");
    assert_usage_error(&run(&["--task", "1", &p]), "not on this machine's PATH");
}

#[test]
fn min_score_above_the_maximum() {
    assert_usage_error(
        &run(&["--task", "1", &ok_sub(), "--min-score", "31"]),
        "more than task 1's 30 points",
    );
}

/// `--min-score 0.8` meant 80% but read as 0.8 points: a 19/30 submission passed the gate.
#[test]
fn min_score_fraction_below_one_is_refused() {
    let o = Command::new(grader_bin())
        .args(["run", "--task", "1", &ok_sub(), "--min-score", "0.8"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("write 80% or a number of points"),
        "{stderr}"
    );
}

#[test]
fn unwritable_out_names_the_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let o = Command::new(grader_bin())
        .args(["run", "--task", "1", &ok_sub(), "--out"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.matches("File exists").count(), 1, "{stderr}");
}

#[test]
fn unknown_task() {
    assert_usage_error(&run(&["--task", "99", &ok_sub()]), "unknown task 99");
}

fn tasks_dir_with(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("task1.toml"), text).unwrap();
    dir
}

#[test]
fn malformed_task_file_names_line_and_column() {
    let dir = tasks_dir_with(
        "task = 1\ntitle = \"x\"\n[[scenario]]\nname = \"a\"\npoints = 1\nrole = \"server\"\nsteps = [ { do = \"start_server\", bogus = 1 } ]\n",
    );
    let r = run(&[
        "--task",
        "1",
        "--tasks-dir",
        dir.path().to_str().unwrap(),
        &ok_sub(),
    ]);
    assert_usage_error(&r, "task1.toml:7:");
    assert!(r.stderr.contains("bogus"), "{}", r.stderr);
}

#[test]
fn unknown_step_is_named() {
    let dir = tasks_dir_with(
        "task = 1\ntitle = \"x\"\n[[scenario]]\nname = \"a\"\npoints = 1\nrole = \"server\"\nsteps = [ { do = \"teleport\" } ]\n",
    );
    let r = run(&[
        "--task",
        "1",
        "--tasks-dir",
        dir.path().to_str().unwrap(),
        &ok_sub(),
    ]);
    assert_usage_error(&r, "teleport");
}

#[test]
fn duplicate_scenario_names() {
    let sc = "[[scenario]]\nname = \"same\"\npoints = 1\nrole = \"server\"\nsteps = [ { do = \"start_server\" } ]\n";
    let dir = tasks_dir_with(&format!("task = 1\ntitle = \"x\"\n{sc}{sc}"));
    let r = run(&[
        "--task",
        "1",
        "--tasks-dir",
        dir.path().to_str().unwrap(),
        &ok_sub(),
    ]);
    assert_usage_error(&r, "duplicate scenario name");
    assert!(
        r.stderr.contains("task1.toml:9:"),
        "points at the second name: {}",
        r.stderr
    );
}

#[test]
fn negative_points() {
    let dir = tasks_dir_with(
        "task = 1\ntitle = \"x\"\n[[scenario]]\nname = \"a\"\npoints = -2\nrole = \"server\"\nsteps = [ { do = \"start_server\" } ]\n",
    );
    let r = run(&[
        "--task",
        "1",
        "--tasks-dir",
        dir.path().to_str().unwrap(),
        &ok_sub(),
    ]);
    assert_usage_error(&r, "points must be 0 or more");
    assert!(r.stderr.contains("task1.toml:5:"), "{}", r.stderr);
}

#[test]
fn unknown_placeholder_in_template() {
    assert_usage_error(
        &run(&[
            "--task",
            "1",
            &ok_sub(),
            "--server",
            "python3 s.py --port {prot}",
        ]),
        "{prot}",
    );
}

#[test]
fn template_typo_names_the_flag() {
    // (A template without {port} is accepted: see prompts.rs.)
    assert_usage_error(
        &run(&["--task", "1", &ok_sub(), "--server", "python3 s.py {prot}"]),
        "--server template \"python3 s.py {prot}\" uses unknown placeholder {prot}",
    );
}

#[test]
fn unwritable_out_dir() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let bad = file.path().join("reports");
    let o = Command::new(grader_bin())
        .args([
            "run",
            "--task",
            "1",
            &ok_sub(),
            "--out",
            bad.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot write reports"), "{stderr}");
}

#[test]
fn an_error_says_what_failed_then_each_cause_once() {
    // A task file that cannot be read (a folder): the message names it, the OS error follows
    // once, all on the `error:` line.
    let tasks = tempfile::tempdir().unwrap();
    let file = tasks.path().join("task1.toml");
    std::fs::create_dir(&file).unwrap();
    let o = Command::new(grader_bin())
        .args(["run", "--task", "1", "--tasks-dir"])
        .arg(tasks.path())
        .arg(ok_sub())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    let cause = std::io::Error::from_raw_os_error(nix::libc::EISDIR).to_string();
    assert_eq!(
        stderr.trim_end(),
        format!("error: cannot read task file {}: {cause}", file.display()),
        "{stderr}"
    );
    assert_eq!(stderr.matches(&cause).count(), 1, "{stderr}");
}

#[test]
fn bad_arguments_are_usage_errors() {
    let o = Command::new(grader_bin())
        .args(["run", "--task", "one", "x"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = Command::new(grader_bin())
        .args(["run", "--task", "1", "x", "--min-score", "lots"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn unknown_placeholder_in_task_file() {
    let dir = tasks_dir_with(
        "task = 1\ntitle = \"x\"\n[[scenario]]\nname = \"a\"\npoints = 1\nrole = \"server\"\nsteps = [\n  { do = \"start_server\" },\n  { do = \"connect\", conn = \"a\" },\n  { do = \"send\", conn = \"a\", line = \"hi {nonse}\" },\n]\n",
    );
    let r = run(&[
        "--task",
        "1",
        "--tasks-dir",
        dir.path().to_str().unwrap(),
        &ok_sub(),
    ]);
    assert_usage_error(&r, "task1.toml:10:");
    assert!(r.stderr.contains("{nonse}"), "{}", r.stderr);
}

/// Runs Task 1 with a tasks dir holding `text` as task1.toml.
fn run_task1_file(text: &str) -> Ran {
    let dir = tasks_dir_with(text);
    run(&[
        "--task",
        "1",
        "--tasks-dir",
        dir.path().to_str().unwrap(),
        &ok_sub(),
    ])
}

#[test]
fn bad_field_in_a_step_is_reported_at_that_step() {
    // `steps = [` is line 7; the misspelt `within` is on line 11.
    let r = run_task1_file(
        "task = 1\ntitle = \"x\"\n[[scenario]]\nname = \"answers one message\"\npoints = 1\nrole = \"server\"\nsteps = [\n  { do = \"start_server\" },\n  { do = \"connect\", conn = \"a\" },\n  { do = \"send\", conn = \"a\", line = \"hi\" },\n  { do = \"expect\", on = \"a\", contains = \"hi\", withn = \"2s\" },\n]\n",
    );
    assert_usage_error(&r, "task1.toml:11:");
    assert!(!r.stderr.contains("task1.toml:7:"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("scenario \"answers one message\", step 4 (expect): unknown field `withn`"),
        "{}",
        r.stderr
    );
}

#[test]
fn bad_field_in_a_nested_step_is_reported_at_that_step() {
    // The inner `send` with `lin` (line 11) of the `repeat` opened on line 10.
    let r = run_task1_file(
        "task = 1\ntitle = \"x\"\n[[scenario]]\nname = \"loops\"\npoints = 1\nrole = \"server\"\nsteps = [\n  { do = \"start_server\" },\n  { do = \"connect\", conn = \"a\" },\n  { do = \"repeat\", count = 2, steps = [\n    { do = \"send\", conn = \"a\", lin = \"x\" },\n  ] },\n]\n",
    );
    assert_usage_error(&r, "task1.toml:11:");
    assert!(
        r.stderr.contains(
            "scenario \"loops\", step 3 (repeat), inner step 1 (send): unknown field `lin`"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn missing_field_in_a_step_is_reported_at_that_step() {
    let r = run_task1_file(
        "task = 1\ntitle = \"x\"\n[[scenario]]\nname = \"a\"\npoints = 1\nrole = \"server\"\nsteps = [\n  { do = \"start_server\" },\n  { do = \"connect\" },\n]\n",
    );
    assert_usage_error(&r, "task1.toml:9:3:");
    assert!(
        r.stderr
            .contains("scenario \"a\", step 2 (connect): missing field `conn`"),
        "{}",
        r.stderr
    );
}

#[test]
fn task_number_must_match_the_requested_task() {
    // Without the check this grades Task 1's scenarios and writes task2.toml.
    let r = run_task1_file(
        "task = 2\ntitle = \"x\"\n[[scenario]]\nname = \"a\"\npoints = 1\nrole = \"server\"\nsteps = [ { do = \"start_server\" } ]\n",
    );
    assert_usage_error(&r, "task1.toml:1:");
    assert!(
        r.stderr
            .contains("the file says task = 2, but task 1 was asked for"),
        "{}",
        r.stderr
    );
}
