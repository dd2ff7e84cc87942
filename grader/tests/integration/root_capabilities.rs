//! A root grader without the capabilities its confinement needs (root in a plain `docker run`,
//! as in Gradescope's autograder containers), simulated with `setpriv --bounding-set`: it picks
//! the strongest isolation that works, says once what it fell back to and why, records the
//! isolation used, and grades correctly (the bundled reference and a correct fixture score
//! 100%; before, every student start failed with "Operation not permitted", and with
//! `CAP_SYS_ADMIN` alone every server was "port N was taken by another program").

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::distribution::DOCKER_DEFAULT_CAPS;
use crate::support::{fixture, grader_bin, netns_available, open_tempdir, output_within};

/// Grades `submission` (the bundled reference when `None`) for Task 1 as root with the bounding
/// set `caps`, straight from the grader's binary (not through the container's entry point).
/// Returns the output and the TOML report.
fn grade_with_caps(
    caps: &str,
    tmp: &Path,
    submission: Option<&Path>,
    name: &str,
) -> (Output, String) {
    let out_dir = tmp.join("reports");
    let mut cmd = Command::new("setpriv");
    cmd.args(["--bounding-set", caps, "--inh-caps=-all", "--"])
        .arg(grader_bin())
        .args(["run", "--task", "1", "--format", "compact", "--out"])
        .arg(&out_dir)
        .args(submission)
        .env("TMPDIR", tmp)
        .env("NO_COLOR", "1");
    let out = output_within(&mut cmd, Duration::from_secs(600));
    let record = std::fs::read_to_string(out_dir.join(name).join("task1.toml")).unwrap_or_default();
    (out, record)
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Whether the simulation can run here (root, `setpriv`); says why not when it cannot.
fn simulation_available(test: &str) -> bool {
    if !nix::unistd::geteuid().is_root() {
        grader::test_skips::skipped(test, "simulating root's capability sets needs root");
        return false;
    }
    if !Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        grader::test_skips::skipped(test, "setpriv (util-linux) is not installed");
        return false;
    }
    true
}

/// Grades the bundled reference and a correct fixture with `caps`; both must score 30/30 with
/// `isolation` recorded, and the console must hold exactly one note starting with `note`
/// and holding each of `says`.
fn check(caps: &str, isolation: &str, note: &str, says: &[&str]) {
    let fixture = fixture(1, "correct_other_style.py");
    for (submission, name) in [
        (None, "reference-task1"),
        (Some(fixture.as_path()), "correct_other_style.py"),
    ] {
        let tmp = open_tempdir();
        let (out, record) = grade_with_caps(caps, tmp.path(), submission, name);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(0), "{name} with {caps}: {all}");
        assert!(
            record.contains("score = 30.0")
                && record.contains(&format!("isolation = \"{isolation}\"")),
            "{name} with {caps}: {record}\n{all}"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let notes: Vec<&str> = stderr.lines().filter(|l| l.starts_with(note)).collect();
        assert_eq!(notes.len(), 1, "one note, said once: {all}");
        for s in says {
            assert!(notes[0].contains(s), "the note says {s:?}: {all}");
        }
        assert!(
            !stderr.contains("needs root or CAP_SYS_ADMIN")
                && !stderr.contains("Operation not permitted (os error 1)\n"),
            "{all}"
        );
    }
}

#[test]
fn root_with_dockers_default_capabilities_grades_on_the_host_under_a_per_grading_uid() {
    let test = "root_with_dockers_default_capabilities_grades_on_the_host_under_a_per_grading_uid";
    if !simulation_available(test) {
        return;
    }
    check(
        DOCKER_DEFAULT_CAPS,
        "host",
        "note: root without CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_SYS_PTRACE (as in a plain `docker run`)",
        &[
            "root without CAP_SYS_ADMIN",
            "grading on the host's loopback",
            "per-grading unprivileged uid",
            "docker run --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add SYS_PTRACE",
            "isolation = \"host\"",
        ],
    );
}

#[test]
fn root_with_sys_admin_alone_names_net_admin_and_sys_ptrace() {
    let test = "root_with_sys_admin_alone_names_net_admin_and_sys_ptrace";
    if !simulation_available(test) || !netns_available(test) {
        return;
    }
    check(
        &format!("{DOCKER_DEFAULT_CAPS},+sys_admin"),
        "host",
        "note: root without CAP_NET_ADMIN, CAP_SYS_PTRACE;",
        &[
            "root without CAP_NET_ADMIN, which a namespace's loopback needs",
            "per-grading unprivileged uid",
            "their /proc is read under their uid",
            "docker run --cap-add NET_ADMIN --cap-add SYS_PTRACE ...",
        ],
    );
}

#[test]
fn root_without_sys_ptrace_keeps_namespaces_and_finds_the_students_server() {
    let test = "root_without_sys_ptrace_keeps_namespaces_and_finds_the_students_server";
    if !simulation_available(test) || !netns_available(test) {
        return;
    }
    check(
        &format!("{DOCKER_DEFAULT_CAPS},+sys_admin,+net_admin"),
        "netns",
        "note: root without CAP_SYS_PTRACE;",
        &[
            "a network namespace per scenario",
            "their /proc is read under their uid",
            "docker run --cap-add SYS_PTRACE ...",
        ],
    );
}
