//! What the validator accepts, the engine runs: every primitive step kind, in every position
//! (top level, inside `repeat`, inside `parallel`, inside a `repeat` inside `parallel`), is
//! either refused when the task file is loaded — only where its type says it cannot stand, with
//! a message saying why — or graded against a bundled reference without an infrastructure error.
//! A step kind without a sample here fails the test (`samples` panics), so a new kind is covered
//! before it ships. Protocol steps are expanded at load into primitive steps (covered here in the
//! positions their expansion puts them); samples of the common ones are graded too.

use std::collections::BTreeMap;
use std::path::Path;

use grader::spec::{
    ConnStep, DatagramStep, GroupStep, ProcessStep, ProtocolStep, SpecSource, Step, parse,
};
use grader::verdict::Status;

use crate::support::run_grader;

/// Where a sample step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    Top,
    Repeat,
    Parallel,
    RepeatInParallel,
}

const POSITIONS: [Position; 4] = [
    Position::Top,
    Position::Repeat,
    Position::Parallel,
    Position::RepeatInParallel,
];

/// One use of a step kind: the task whose bundled reference it is graded against, the role,
/// the top-level steps before the group, and the steps of the group (`prefix`, the step itself,
/// `suffix`), each an inline TOML table on one line.
struct Sample {
    task: u32,
    role: &'static str,
    setup: &'static [&'static str],
    prefix: &'static [&'static str],
    step: &'static str,
    suffix: &'static [&'static str],
}

const fn sample(
    task: u32,
    role: &'static str,
    setup: &'static [&'static str],
    prefix: &'static [&'static str],
    step: &'static str,
    suffix: &'static [&'static str],
) -> Sample {
    Sample {
        task,
        role,
        setup,
        prefix,
        step,
        suffix,
    }
}

// Task 11: a TCP echo server (no acknowledgment). Task 1: a client that prints what the server
// sends and relays typed lines. Task 21: a UDP echo server. Task 32: a threaded HTTP server.
const ECHO: u32 = 11;
const CLIENT: u32 = 1;
const UDP: u32 = 21;
const HTTP: u32 = 32;
const SERVER: &[&str] = &[r#"{ do = "start_server" }"#];
const UDP_SERVER: &[&str] = &[
    r#"{ do = "start_server", udp = true }"#,
    r#"{ do = "udp_socket", sock = "u" }"#,
];
const CLIENT_UP: &[&str] = &[
    r#"{ do = "listen" }"#,
    r#"{ do = "start_client" }"#,
    r#"{ do = "accept", conn = "s" }"#,
    r#"{ do = "send", conn = "s", line = "ACK: welcome {nonce}" }"#,
    r#"{ do = "expect", on = "stdout", contains = "welcome {nonce}" }"#,
];
const CLIENT_GREETED: &[&str] = &[
    r#"{ do = "listen" }"#,
    r#"{ do = "start_client" }"#,
    r#"{ do = "accept", conn = "s" }"#,
    r#"{ do = "send", conn = "s", line = "ACK: welcome {nonce}" }"#,
];
const CONNECTED: &[&str] = &[r#"{ do = "connect", conn = "c" }"#];
const SENT: &[&str] = &[
    r#"{ do = "connect", conn = "c" }"#,
    r#"{ do = "send", conn = "c", line = "hello {nonce}" }"#,
];

/// Samples of every step kind (a kind without one fails the test).
fn samples(kind: &str) -> Vec<Sample> {
    match kind {
        // Process steps.
        "start_server" => vec![sample(ECHO, "server", &[], &[], SERVER[0], &[])],
        "listen" => vec![sample(
            CLIENT,
            "client",
            &[],
            &[],
            r#"{ do = "listen" }"#,
            &[
                r#"{ do = "start_client" }"#,
                r#"{ do = "accept", conn = "s" }"#,
            ],
        )],
        "start_client" => vec![sample(
            CLIENT,
            "client",
            &[r#"{ do = "listen" }"#],
            &[],
            r#"{ do = "start_client" }"#,
            &[r#"{ do = "accept", conn = "s" }"#],
        )],
        "accept" => vec![sample(
            CLIENT,
            "client",
            &[r#"{ do = "listen" }"#, r#"{ do = "start_client" }"#],
            &[],
            r#"{ do = "accept", conn = "s" }"#,
            &[],
        )],
        "type" => vec![sample(
            CLIENT,
            "client",
            CLIENT_UP,
            &[],
            r#"{ do = "type", line = "typed {nonce}" }"#,
            &[r#"{ do = "expect", on = "s", contains = "typed {nonce}" }"#],
        )],
        "close_stdin" => vec![sample(
            CLIENT,
            "client",
            CLIENT_UP,
            &[],
            r#"{ do = "close_stdin" }"#,
            &[],
        )],
        "expect_exit" => vec![sample(
            CLIENT,
            "client",
            CLIENT_UP,
            &[
                r#"{ do = "type", line = "exit" }"#,
                r#"{ do = "close", conn = "s" }"#,
            ],
            r#"{ do = "expect_exit", process = "client", code = 0, within = "3s" }"#,
            &[],
        )],
        "expect_running" => vec![sample(
            ECHO,
            "server",
            SERVER,
            &[],
            r#"{ do = "expect_running", process = "server" }"#,
            &[],
        )],
        "expect_no_traceback" => vec![sample(
            ECHO,
            "server",
            SERVER,
            &[],
            r#"{ do = "expect_no_traceback", process = "server" }"#,
            &[],
        )],
        "expect_connect_attempt" => vec![sample(
            CLIENT,
            "client",
            &[r#"{ do = "listen" }"#, r#"{ do = "start_client" }"#],
            &[],
            r#"{ do = "expect_connect_attempt", process = "client" }"#,
            &[r#"{ do = "accept", conn = "s" }"#],
        )],
        "end_if_exited" => vec![sample(
            ECHO,
            "server",
            SERVER,
            &[],
            r#"{ do = "end_if_exited", process = "server" }"#,
            &[],
        )],
        "expect_cpu_below" => vec![sample(
            ECHO,
            "server",
            SERVER,
            &[],
            r#"{ do = "expect_cpu_below", process = "server", window = "300ms", max_percent = 90.0 }"#,
            &[],
        )],
        // Connection steps.
        "connect" => vec![sample(ECHO, "server", SERVER, &[], CONNECTED[0], &[])],
        "send" => vec![sample(
            ECHO,
            "server",
            SERVER,
            CONNECTED,
            r#"{ do = "send", conn = "c", line = "hello {nonce}" }"#,
            &[r#"{ do = "expect_bytes", on = "c", echo = true }"#],
        )],
        "wait_read" => vec![sample(
            ECHO,
            "server",
            SERVER,
            SENT,
            r#"{ do = "wait_read", conn = "c" }"#,
            &[],
        )],
        "close" => vec![sample(
            ECHO,
            "server",
            SERVER,
            CONNECTED,
            r#"{ do = "close", conn = "c" }"#,
            &[],
        )],
        "abort" => vec![sample(
            ECHO,
            "server",
            SERVER,
            CONNECTED,
            r#"{ do = "abort", conn = "c" }"#,
            &[],
        )],
        "expect" => vec![
            sample(
                ECHO,
                "server",
                SERVER,
                SENT,
                r#"{ do = "expect", on = "c", contains = "hello {nonce}" }"#,
                &[],
            ),
            // On a process stream: the top level (or `repeat`) only.
            sample(
                CLIENT,
                "client",
                CLIENT_GREETED,
                &[],
                r#"{ do = "expect", on = "stdout", contains = "welcome {nonce}" }"#,
                &[],
            ),
        ],
        "expect_silence" => vec![
            sample(
                ECHO,
                "server",
                SERVER,
                CONNECTED,
                r#"{ do = "expect_silence", on = "c", for = "200ms" }"#,
                &[],
            ),
            sample(
                CLIENT,
                "client",
                CLIENT_UP,
                &[],
                r#"{ do = "expect_silence", on = "client.stderr", for = "200ms" }"#,
                &[],
            ),
        ],
        "expect_not" => vec![
            sample(
                ECHO,
                "server",
                SERVER,
                SENT,
                r#"{ do = "expect_not", on = "c", contains = "never {nonce}", for = "200ms" }"#,
                &[],
            ),
            sample(
                CLIENT,
                "client",
                CLIENT_UP,
                &[],
                r#"{ do = "expect_not", on = "stdout", contains = "never {nonce}", for = "200ms" }"#,
                &[],
            ),
        ],
        "expect_bytes" => vec![sample(
            ECHO,
            "server",
            SERVER,
            SENT,
            r#"{ do = "expect_bytes", on = "c", echo = true }"#,
            &[],
        )],
        "expect_http" => vec![sample(
            HTTP,
            "server",
            SERVER,
            &[
                r#"{ do = "connect", conn = "c" }"#,
                r#"{ do = "send", conn = "c", text = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n" }"#,
            ],
            r#"{ do = "expect_http", on = "c", status = 200, body_contains = "Hello, HTTP!" }"#,
            &[],
        )],
        "expect_closed" => vec![sample(
            ECHO,
            "server",
            SERVER,
            &[
                r#"{ do = "connect", conn = "c" }"#,
                r#"{ do = "close", conn = "c" }"#,
            ],
            r#"{ do = "expect_closed", on = "c" }"#,
            &[],
        )],
        // Datagram steps.
        "udp_socket" => vec![sample(
            UDP,
            "server",
            &[r#"{ do = "start_server", udp = true }"#],
            &[],
            r#"{ do = "udp_socket", sock = "u" }"#,
            &[],
        )],
        "send_datagram" => vec![sample(
            UDP,
            "server",
            UDP_SERVER,
            &[],
            r#"{ do = "send_datagram", sock = "u", text = "hello {nonce}" }"#,
            &[r#"{ do = "expect_datagram", on = "u", exact = "hello {nonce}" }"#],
        )],
        "expect_datagram" => vec![sample(
            UDP,
            "server",
            UDP_SERVER,
            &[r#"{ do = "send_datagram", sock = "u", text = "hello {nonce}" }"#],
            r#"{ do = "expect_datagram", on = "u", exact = "hello {nonce}" }"#,
            &[],
        )],
        "expect_no_datagram" => vec![sample(
            UDP,
            "server",
            UDP_SERVER,
            &[],
            r#"{ do = "expect_no_datagram", on = "u", for = "200ms" }"#,
            &[],
        )],
        // Group steps.
        "parallel" => vec![sample(
            ECHO,
            "server",
            SERVER,
            &[],
            r#"{ do = "parallel", count = 2, steps = [{ do = "connect", conn = "p" }, { do = "send", conn = "p", line = "copy {i} {nonce}" }, { do = "expect", on = "p", contains = "copy {i} {nonce}" }] }"#,
            &[],
        )],
        "repeat" => vec![sample(
            ECHO,
            "server",
            SERVER,
            CONNECTED,
            r#"{ do = "repeat", count = 2, steps = [{ do = "send", conn = "c", line = "line {j} {nonce}" }, { do = "expect", on = "c", contains = "line {j} {nonce}" }] }"#,
            &[],
        )],
        // Protocol steps (expanded at load under the task's protocol; task 1's here).
        "join" => vec![sample(
            CLIENT,
            "server",
            SERVER,
            &[],
            r#"{ do = "join", conn = "a" }"#,
            &[],
        )],
        "expect_reply" => vec![sample(
            CLIENT,
            "server",
            SERVER,
            &[
                r#"{ do = "join", conn = "a" }"#,
                r#"{ do = "send", conn = "a", line = "hello {nonce}" }"#,
            ],
            r#"{ do = "expect_reply", on = "a", to = "hello {nonce}" }"#,
            &[],
        )],
        "say_exit" => vec![sample(
            CLIENT,
            "server",
            SERVER,
            &[r#"{ do = "join", conn = "a" }"#],
            r#"{ do = "say_exit", conn = "a" }"#,
            &[],
        )],
        "welcome" => vec![sample(
            CLIENT,
            "client",
            &[r#"{ do = "listen" }"#, r#"{ do = "start_client" }"#],
            &[],
            r#"{ do = "welcome", conn = "s" }"#,
            &[],
        )],
        "type_exit" => vec![sample(
            CLIENT,
            "client",
            CLIENT_UP,
            &[],
            r#"{ do = "type_exit" }"#,
            &[r#"{ do = "expect_said_exit", on = "s" }"#],
        )],
        "expect_said_exit" => vec![sample(
            CLIENT,
            "client",
            CLIENT_UP,
            &[r#"{ do = "type_exit" }"#],
            r#"{ do = "expect_said_exit", on = "s" }"#,
            &[],
        )],
        // Chat, group and file steps need the chat protocols of Tasks 4-7, whose bundled
        // tasks use them (graded by the task tests); their expansion gives the primitive
        // steps above. `use` inserts a block's steps.
        "chat" | "expect_chat" | "expect_error" | "expect_register" | "deliver" | "send_error"
        | "expect_sent_chat" | "group" | "group_chat" | "expect_group_chat" | "send_file"
        | "expect_file" | "use" => Vec::new(),
        other => panic!(
            "no sample for the step kind `{other}`: add one to tests/integration/step_kinds.rs"
        ),
    }
}

/// The scenario of `s` with its step at `position` (copies and iterations: one each, so every
/// position runs the same conversation).
fn scenario(name: &str, s: &Sample, position: Position) -> String {
    let group: Vec<&str> = s
        .prefix
        .iter()
        .chain([&s.step])
        .chain(s.suffix)
        .copied()
        .collect();
    let group = group.join(", ");
    let placed = match position {
        Position::Top => group,
        Position::Repeat => format!(r#"{{ do = "repeat", count = 1, steps = [{group}] }}"#),
        Position::Parallel => {
            format!(r#"{{ do = "parallel", count = 1, steps = [{group}] }}"#)
        }
        Position::RepeatInParallel => format!(
            r#"{{ do = "parallel", count = 1, steps = [{{ do = "repeat", count = 1, steps = [{group}] }}] }}"#
        ),
    };
    let steps: Vec<String> = s
        .setup
        .iter()
        .map(|t| t.to_string())
        .chain([placed])
        .collect();
    format!(
        "[[scenario]]\nname = \"{name}\"\npoints = 1\nrole = \"{}\"\nsteps = [\n  {},\n]\n",
        s.role,
        steps.join(",\n  ")
    )
}

/// The head of task `task`'s file: its protocol (Task 1's acknowledgment is optional).
fn head(task: u32) -> String {
    let protocol = if task == CLIENT {
        "[protocol]\nack_required = false\n"
    } else {
        ""
    };
    format!(
        "task = {task}\ntitle = \"step kinds\"\n[defaults]\nwithin = \"3s\"\nlisten_within = \"10s\"\n{protocol}"
    )
}

/// Whether the sample's group may stand inside a `parallel` copy: connection steps (and groups
/// and protocol steps made of them) on connections the copy opens itself, which only a server
/// scenario can (a client scenario's connection is accepted at the top level).
fn fits_a_copy(kind: &str, s: &Sample) -> bool {
    let stream = s.step.contains("on = \"stdout\"") || s.step.contains("client.stderr");
    s.role == "server"
        && !stream
        && !ProcessStep::KINDS.contains(&kind)
        && !DatagramStep::KINDS.contains(&kind)
        && kind != "parallel"
}

#[test]
fn every_step_kind_accepted_in_a_position_runs_there() {
    let kinds: Vec<&str> = Step::kinds().collect();
    for kinds_of in [
        ProcessStep::KINDS,
        ConnStep::KINDS,
        DatagramStep::KINDS,
        GroupStep::KINDS,
        ProtocolStep::KINDS,
    ] {
        assert!(kinds_of.iter().all(|k| kinds.contains(k)));
    }
    let work = tempfile::tempdir().unwrap();
    // Task → scenarios to grade, and every scenario's (kind, position) by name.
    let mut files: BTreeMap<u32, String> = BTreeMap::new();
    let mut refused = Vec::new();
    for kind in &kinds {
        for (n, s) in samples(kind).iter().enumerate() {
            let fits = fits_a_copy(kind, s);
            for position in POSITIONS {
                let in_copy = matches!(position, Position::Parallel | Position::RepeatInParallel);
                let name = format!("{kind} {n} {position:?}");
                let text = format!("{}{}", head(s.task), scenario(&name, s, position));
                let path = work.path().join(format!("{kind}-{n}-{position:?}.toml"));
                match parse(&text, SpecSource::File(path.clone())) {
                    Ok(_) => {
                        assert!(
                            !in_copy || fits,
                            "{name}: accepted inside `parallel`, which cannot run it"
                        );
                        files
                            .entry(s.task)
                            .or_insert_with(|| head(s.task))
                            .push_str(&scenario(&name, s, position));
                    }
                    Err(e) => {
                        let message = e.to_string();
                        assert!(
                            in_copy && !fits,
                            "{name}: refused where it may stand: {message}\n{text}"
                        );
                        assert!(
                            message.contains("inside `parallel`")
                                || message.contains("outside `parallel`")
                                || message.contains("cannot be nested"),
                            "{name}: the refusal says why: {message}"
                        );
                        assert!(
                            message.contains(&path.display().to_string()),
                            "{name}: the refusal names the file: {message}"
                        );
                        refused.push(name);
                    }
                }
            }
        }
    }
    assert!(!refused.is_empty());
    let tasks = work.path().join("tasks");
    std::fs::create_dir(&tasks).unwrap();
    for (task, text) in &files {
        std::fs::write(tasks.join(format!("task{task}.toml")), text).unwrap();
    }
    for (task, text) in &files {
        let statuses = grade(*task, &tasks, work.path());
        let expected = text.matches("[[scenario]]").count();
        assert_eq!(statuses.len(), expected, "task {task}: {statuses:?}");
        let bad: Vec<_> = statuses
            .iter()
            .filter(|(_, st)| **st != Status::Passed)
            .collect();
        assert!(
            bad.is_empty(),
            "task {task}: steps accepted by validation did not pass against the reference: {bad:?}"
        );
    }
}

/// Grades the bundled reference of `task` with the task files in `tasks`: scenario → status.
fn grade(task: u32, tasks: &Path, work: &Path) -> BTreeMap<String, Status> {
    let out = work.join(format!("out{task}"));
    let tmp = tempfile::tempdir().unwrap();
    let number = task.to_string();
    let o = run_grader(
        [
            "run".as_ref(),
            "--task".as_ref(),
            number.as_ref(),
            "--seed".as_ref(),
            "1".as_ref(),
            "--format".as_ref(),
            "compact".as_ref(),
            "--tasks-dir".as_ref(),
            tasks.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
        tmp.path(),
    );
    let report = std::fs::read_to_string(out.join(format!("reference-task{task}/task{task}.toml")))
        .unwrap_or_else(|e| {
            panic!(
                "task {task}: no report ({e}): {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        });
    let r = grader::report::toml::parse(&report).unwrap();
    r.scenarios
        .iter()
        .map(|s| (s.name.clone(), s.status))
        .collect()
}

#[test]
fn a_process_step_inside_parallel_is_refused_when_loaded() {
    let text = format!(
        "{}[[scenario]]\nname = \"exits\"\npoints = 1\nrole = \"server\"\nsteps = [\n  {{ do = \"start_server\" }},\n  {{ do = \"parallel\", count = 2, steps = [{{ do = \"connect\", conn = \"c\" }}, {{ do = \"expect_exit\", process = \"server\" }}] }},\n]\n",
        head(ECHO)
    );
    let path = Path::new("/tasks/task11.toml");
    let e = parse(&text, SpecSource::File(path.to_path_buf()))
        .expect_err("expect_exit inside parallel")
        .to_string();
    for part in [
        "/tasks/task11.toml:12:",
        "scenario \"exits\", step 2 (parallel)",
        "inner step 2 (expect_exit)",
        "cannot be used inside `parallel`",
    ] {
        assert!(e.contains(part), "{part:?} in {e}");
    }
    // The same through the command line: `grader tasks` refuses the file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("task11.toml"), &text).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let o = run_grader(
        [
            "tasks".as_ref(),
            "--tasks-dir".as_ref(),
            dir.path().as_os_str(),
        ],
        tmp.path(),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("expect_exit") && stderr.contains("cannot be used inside `parallel`"),
        "{stderr}"
    );
}
