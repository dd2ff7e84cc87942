//! Hostile and messy submissions (fixtures/hostile/, and the hard-coded port of Task 1): each
//! gets a sensible verdict and valid reports, the grader finishes within a deadline, and no
//! process is left (`support::grade` checks HOME/cwd; the fixtures' helpers are also looked for
//! by their own argv[0] marker). Tests that need a network namespace or root say so and skip.

use std::io::ErrorKind;
use std::process::Command;
use std::time::{Duration, Instant};

use grader::spec::Role;
use grader::verdict::Status::{self, *};

use crate::reports::assert_valid_xml;
use crate::support::{
    Graded, assert_failures, assert_no_leftovers, fixture, grade, grader_as, grader_bin, hostile,
    netns_available, open_tempdir, output_within, processes_named, run_grader, unprivileged,
};

const ONE: &str = "server answers one message";
const SEVERAL: &str = "server answers several messages on one connection";
const EXIT: &str = "exit closes the connection gracefully";
const LONG: &str = "a 4000-byte line is answered whole";
const UTF8: &str = "non-ASCII text is answered";
const EMPTY: &str = "an empty line does not break the connection";
const MIDLINE: &str = "a client leaving mid-line does not crash the server";
const RESET_NOW: &str = "a connection reset right away does not crash the server";
const RESET_MID: &str = "a connection reset mid-session does not crash the server";
const CLIENT_EXIT: &str = "client exits cleanly on exit";
const REFUSED: &str = "client reports a refused connection";

/// Scenarios that need a reply from the server.
const REPLIES: [&str; 9] = [
    ONE, SEVERAL, EXIT, LONG, UTF8, EMPTY, MIDLINE, RESET_NOW, RESET_MID,
];

/// Grades a hostile fixture; checks the deadline, that the JUnit file parses and that the
/// report's isolation is what was asked for.
fn run(name: &str, extra: &[&str], deadline: Duration) -> Graded {
    let t0 = Instant::now();
    let g = grade(1, &hostile(name), extra);
    let took = t0.elapsed();
    assert!(took < deadline, "{name} took {took:?} (limit {deadline:?})");
    let xml = std::fs::read_to_string(g.out_dir.path().join(format!("{name}/task1.junit.xml")))
        .unwrap_or_else(|e| panic!("no JUnit file for {name} ({e}): {}", g.stderr()));
    assert_valid_xml(&xml);
    if extra.windows(2).any(|w| w == ["--isolation", "host"]) {
        assert_eq!(g.report().isolation, "host");
    } else if grader::net::netns::probe().is_ok() {
        assert_eq!(g.report().isolation, "netns");
    }
    g
}

fn server_scenarios(g: &Graded) -> Vec<String> {
    g.report()
        .scenarios
        .iter()
        .filter(|s| s.role == Role::Server)
        .map(|s| s.name.clone())
        .collect()
}

#[test]
fn infinite_output_is_stopped_with_an_output_limit_verdict() {
    let g = run("floods_output.py", &[], Duration::from_secs(60));
    let r = g.report();
    assert!(
        r.scenarios.iter().all(|s| s.status == OutputLimit),
        "{}",
        g.stdout()
    );
    assert_eq!(g.code(), 1);
}

#[test]
fn server_that_never_reads_times_out_without_blocking_the_grader() {
    let g = run("accepts_never_reads.py", &[], Duration::from_secs(60));
    let expected: Vec<(&str, Status)> = REPLIES.iter().map(|s| (*s, TimedOut)).collect();
    assert_failures(&g, &expected);
}

#[test]
fn hundred_megabytes_on_connect_are_read_and_capped() {
    let g = run("floods_100mb_on_connect.py", &[], Duration::from_secs(90));
    // The echo is buried behind 100 MB: the scenarios that need the echoed text time out.
    // The others (the effects of `exit`, of an empty line, of a half line; any reply) depend on
    // how fast the flood drains: the grader keeps 1 MiB per stream and may take a piece of the
    // flood for a reply. Either verdict, but never a crash or an infrastructure error.
    let buried = [ONE, LONG];
    let drained = [EXIT, EMPTY, MIDLINE];
    for (name, status) in g.failures() {
        assert!(
            status == TimedOut
                && (buried.contains(&name.as_str())
                    || drained.contains(&name.as_str())
                    || REPLIES.contains(&name.as_str())),
            "{name}: {status:?}\n{}",
            g.stdout()
        );
    }
    for name in buried {
        assert_eq!(
            g.verdicts.get(name),
            Some(&TimedOut),
            "{name}\n{}",
            g.stdout()
        );
    }
}

#[test]
fn client_that_never_exits_is_timed_out_and_ended() {
    let g = run("client_never_exits.py", &[], Duration::from_secs(60));
    assert_failures(&g, &[(CLIENT_EXIT, TimedOut), (REFUSED, TimedOut)]);
}

#[test]
fn sigterm_is_ignored_in_vain() {
    let g = run("ignores_sigterm.py", &[], Duration::from_secs(60));
    assert_failures(&g, &[]);
    assert_eq!(
        processes_named("grader-hostile-sigterm-child"),
        Vec::<i32>::new()
    );
}

#[test]
fn double_forked_daemon_does_not_outlive_its_scenario() {
    let g = run("double_fork_daemon.py", &[], Duration::from_secs(60));
    assert_failures(&g, &[]);
    assert_eq!(processes_named("grader-hostile-daemon"), Vec::<i32>::new());
}

#[test]
fn two_hundred_children_are_all_ended() {
    // Two scenarios at once: at most 400 sleeping children on the machine.
    let g = run(
        "spawns_200_children.py",
        &["-j", "2"],
        Duration::from_secs(180),
    );
    assert_failures(&g, &[]);
    assert_eq!(
        processes_named("grader-hostile-spawned-child"),
        Vec::<i32>::new()
    );
}

#[test]
fn hard_coded_port_is_refused_everywhere_with_accept_any_port_false() {
    if !netns_available("hard_coded_port_is_refused_everywhere_with_accept_any_port_false") {
        return;
    }
    // With --accept-any-port=false every server scenario fails, and the namespace still tells
    // every copy which port it used: no copy collides with another.
    let g = grade(
        1,
        &fixture(1, "hardcoded_port.py"),
        &["--accept-any-port=false"],
    );
    let servers = server_scenarios(&g);
    let expected: Vec<(&str, Status)> = servers
        .iter()
        .map(|s| (s.as_str(), NeverListened))
        .collect();
    assert_failures(&g, &expected);
    let told = g
        .report()
        .scenarios
        .iter()
        .filter(|s| s.message.contains("it listens on port 12345 instead"))
        .count();
    assert_eq!(told, servers.len(), "{}", g.stdout());
}

#[test]
fn fixed_port_on_all_addresses_costs_the_port_scenario_only() {
    // In a namespace and on the host alike (see ports.rs for the rule).
    let mut modes = vec!["host"];
    if netns_available("fixed_port_on_all_addresses_costs_the_port_scenario_only (netns)") {
        modes.push("netns");
    }
    for mode in modes {
        let _fixed = (mode == "host").then(crate::support::host_fixed_ports);
        let g = run(
            "binds_any_fixed_port.py",
            &["--isolation", mode],
            Duration::from_secs(60),
        );
        assert_failures(
            &g,
            &[("server listens on the assigned port", NeverListened)],
        );
        let notes = g
            .report()
            .scenarios
            .iter()
            .flat_map(|s| s.notes.iter())
            .filter(|n| n.to_string().contains("listens on port 8080"))
            .count();
        assert_eq!(notes, 1, "{mode}: {}", g.stdout());
    }
}

#[test]
fn host_loopback_is_unreachable_from_a_namespace() {
    if !netns_available("host_loopback_is_unreachable_from_a_namespace") {
        return;
    }
    // A listener of the test's own on the host's 127.0.0.1.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let template = format!("{{bin}} server --port {{port}} --probe-port {port}");
    let reached = |l: &std::net::TcpListener| {
        let mut n = 0;
        loop {
            match l.accept() {
                Ok(_) => n += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return n,
                Err(e) => panic!("accept: {e}"),
            }
        }
    };
    let g = run(
        "reaches_host_listener.py",
        &["--server", &template, "-v"],
        Duration::from_secs(60),
    );
    assert_failures(&g, &[]);
    assert_eq!(reached(&listener), 0, "a student program reached the host");
    // The same program on the host's network does reach it, and says so.
    let g = run(
        "reaches_host_listener.py",
        &["--server", &template, "--isolation", "host"],
        Duration::from_secs(60),
    );
    let servers = server_scenarios(&g);
    let expected: Vec<(&str, Status)> = servers
        .iter()
        .map(|s| (s.as_str(), NeverListened))
        .collect();
    assert_failures(&g, &expected);
    assert!(reached(&listener) > 0);
    let s = &g.report().scenarios[0];
    assert!(
        s.stderr_tail
            .as_deref()
            .unwrap_or("")
            .contains("PROBE connected"),
        "{:?}",
        s.stderr_tail
    );
}

#[test]
fn writes_outside_its_folders_fail() {
    if !nix::unistd::geteuid().is_root() {
        grader::test_skips::skipped(
            "writes_outside_its_folders_fail",
            "the read-only file system needs root",
        );
        return;
    }
    let out = tempfile::Builder::new()
        .prefix("grader-test-out-")
        .tempdir()
        .unwrap();
    let tmp = tempfile::Builder::new()
        .prefix("grader-test-tmp-")
        .tempdir()
        .unwrap();
    let target = out.path().display().to_string();
    let template = format!("{{bin}} server --port {{port}} --target {target}");
    for isolation in ["auto", "host"] {
        let o = run_grader(
            [
                "run",
                "--task",
                "1",
                "--seed",
                "1",
                "--format",
                "compact",
                "--isolation",
                isolation,
                "--server",
                &template,
                "--out",
                &target,
                hostile("writes_outside.py").to_str().unwrap(),
            ],
            tmp.path(),
        );
        assert_no_leftovers(tmp.path());
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{isolation}: {stdout}");
        let xml =
            std::fs::read_to_string(out.path().join("writes_outside.py/task1.junit.xml")).unwrap();
        assert_valid_xml(&xml);
    }
    // Nothing was written into the report folder or the folder above the working folders.
    let escaped = |dir: &std::path::Path| -> Vec<String> {
        walk(dir)
            .into_iter()
            .filter(|p| p.contains("escaped-"))
            .collect()
    };
    assert_eq!(escaped(out.path()), Vec::<String>::new());
    assert_eq!(escaped(tmp.path()), Vec::<String>::new());
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p.display().to_string());
    }
    out
}

/// Two server scenarios whose deadlines are minutes long: against a program that stops itself,
/// each would wait them out.
const STOPPED_TASK: &str = r#"
task = 1
title = "deadlines of minutes"

[defaults]
within = "10m"
listen_within = "10m"

[[scenario]]
name = "first reply"
points = 2
role = "server"
steps = [
  { do = "start_server" },
  { do = "connect", conn = "a" },
  { do = "expect", on = "a", any = true },
  { do = "send", conn = "a", line = "hello {nonce}" },
  { do = "expect", on = "a", contains = "hello {nonce}" },
]

[[scenario]]
name = "second reply"
points = 3
role = "server"
steps = [
  { do = "start_server" },
  { do = "connect", conn = "a" },
  { do = "send", conn = "a", line = "again {nonce}" },
  { do = "expect", on = "a", contains = "again {nonce}" },
]
"#;

#[test]
fn a_stopped_program_cannot_hold_a_grading_past_its_time_limit() {
    let tasks = tempfile::tempdir().unwrap();
    std::fs::write(tasks.path().join("task1.toml"), STOPPED_TASK).unwrap();
    let out = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    // One scenario at a time: the second is still waiting for its turn at the limit.
    let o = output_within(
        Command::new(grader_bin())
            .args([
                "run", "--task", "1", "--seed", "1", "--format", "compact", "-j", "1",
            ])
            .args(["--time-limit", "3s", "--tasks-dir"])
            .arg(tasks.path())
            .arg("--out")
            .arg(out.path())
            .arg(hostile("sigstops_its_group.py"))
            .env("TMPDIR", tmp.path())
            .env("NO_COLOR", "1"),
        Duration::from_secs(120),
    );
    let took = t0.elapsed();
    assert_no_leftovers(tmp.path());
    assert_eq!(
        processes_named("grader-hostile-unfreezer"),
        Vec::<i32>::new()
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The limit plus the stopped scenario's wind-down (its processes ended), not 10 minutes.
    assert!(took < Duration::from_secs(30), "took {took:?}: {stdout}");
    let dir = out.path().join("sigstops_its_group.py");
    let r = grader::report::toml::parse(&std::fs::read_to_string(dir.join("task1.toml")).unwrap())
        .unwrap();
    let first = &r.scenarios[0];
    assert_eq!(
        (first.name.as_str(), first.status),
        ("first reply", TimedOut)
    );
    assert!(
        first.message.starts_with(
            "the grading's wall-clock limit of 3s was reached while this step was waiting"
        ),
        "{}",
        first.message
    );
    // It stopped at the expectation of the reply, after the acknowledgment arrived.
    assert_eq!(first.failed_step.as_deref(), Some("5 (expect)"));
    let second = &r.scenarios[1];
    assert_eq!(
        (second.name.as_str(), second.status),
        ("second reply", TimedOut)
    );
    assert_eq!(
        second.message,
        "the grading's wall-clock limit of 3s was reached before this scenario could start"
    );
    assert_eq!((r.score, r.max_score), (0.0, 5.0));
    assert!(stdout.contains("wall-clock limit of 3s"), "{stdout}");
    let xml = std::fs::read_to_string(dir.join("task1.junit.xml")).unwrap();
    assert_valid_xml(&xml);
    assert!(xml.contains("wall-clock limit of 3s"), "{xml}");
}

#[test]
fn the_graders_environment_and_memory_stay_unreadable_to_student_programs() {
    // As root, a student program has no capabilities and could not read root's processes
    // anyway: the grader runs as an unprivileged user, as on a CI runner.
    let Some(user) = unprivileged("the_graders_environment_and_memory_stay_unreadable") else {
        return;
    };
    let work = open_tempdir();
    let tmp = open_tempdir();
    let sub = work.path().join("reads_grader_environ.py");
    std::fs::copy(hostile("reads_grader_environ.py"), &sub).unwrap();
    // It imports the probes' shared part from its own folder.
    std::fs::copy(
        hostile("sandbox_probe_base.py"),
        work.path().join("sandbox_probe_base.py"),
    )
    .unwrap();
    let out = work.path().join("out");
    let sentinel = format!("grader-test-secret-{}", std::process::id());
    let o = grader_as(
        &user,
        tmp.path(),
        &[
            "run".as_ref(),
            "--task".as_ref(),
            "1".as_ref(),
            "--seed".as_ref(),
            "1".as_ref(),
            "--isolation".as_ref(),
            "host".as_ref(),
            "--format".as_ref(),
            "compact".as_ref(),
            "-v".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
            sub.as_os_str(),
        ],
    )
    .env("GRADER_TEST_SECRET", &sentinel)
    // An interpreter the unprivileged user can reach (not a shim under /root).
    .env("PATH", "/usr/local/bin:/usr/bin:/bin")
    .output()
    .unwrap();
    assert_no_leftovers(tmp.path());
    let console = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let dir = out.join("reads_grader_environ.py");
    let record = std::fs::read_to_string(dir.join("task1.toml")).unwrap_or_default();
    let junit = std::fs::read_to_string(dir.join("task1.junit.xml")).unwrap_or_default();
    for (what, text) in [
        ("console", &console),
        ("record", &record),
        ("JUnit", &junit),
    ] {
        assert!(
            !text.contains(&sentinel),
            "the grader's environment reached the {what}: {text}"
        );
    }
    // The probe found the grader and was refused (it exits 3 otherwise): everything passes.
    assert_eq!(o.status.code(), Some(0), "{console}");
}
