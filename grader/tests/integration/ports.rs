//! Hard-coded ports: a server listening on a port of its own and a client dialling one lose
//! only the scenario about the port, in every mode where the grader can follow them, and the
//! report says so once per grading.

use grader::verdict::Status::{self, *};

use crate::support::{Graded, assert_failures, fixture, grade, host_fixed_ports};

const LISTENS: &str = "server listens on the assigned port";
const PORT_GIVEN: &str = "client connects to the port it is given";

/// The notes of the grading that contain `text`, with the scenario they are under.
fn notes_with<'a>(g: &'a Graded, text: &str) -> Vec<(&'a str, String)> {
    g.report()
        .scenarios
        .iter()
        .flat_map(|s| {
            s.notes
                .iter()
                .map(move |n| (s.name.as_str(), n.to_string()))
        })
        .filter(|(_, n)| n.contains(text))
        .collect()
}

fn message_of<'a>(g: &'a Graded, scenario: &str) -> &'a str {
    let s = g.report().scenarios.iter().find(|s| s.name == scenario);
    s.map_or("", |s| s.message.as_str())
}

/// The isolation that gives a grading namespaces: `netns` as root; otherwise `auto`, which an
/// ordinary user's grader turns into an unprivileged user namespace where the kernel allows one
/// (the report then says `userns`), else the host network.
fn namespace_mode() -> &'static str {
    if grader::net::netns::probe().is_ok() {
        "netns"
    } else {
        "auto"
    }
}

/// A hard-coded-port server gets the same verdicts on the host and in a namespace: only the
/// scenario about the port fails, naming it, and one note says where the others were graded.
fn hard_coded_server(name: &str, port: u16) {
    for mode in ["host", namespace_mode()] {
        let _fixed = (mode == "host").then(host_fixed_ports);
        let g = grade(1, &fixture(1, name), &["--isolation", mode]);
        let mode = g.report().isolation.as_str();
        assert_failures(&g, &[(LISTENS, NeverListened)]);
        assert_eq!(g.report().score, 29.0, "{mode}: {}", g.stdout());
        let msg = message_of(&g, LISTENS);
        let expected = format!("the server listens on port {port}, not the assigned port ");
        assert!(msg.starts_with(&expected), "{mode}: {msg}");
        let notes = notes_with(&g, &format!("listens on port {port}"));
        assert_eq!(notes.len(), 1, "{mode}: one note per grading: {notes:?}");
        assert_eq!(
            notes[0].0, LISTENS,
            "{mode}: the note sits under the port scenario"
        );
        let alone = notes[0].1.contains("one scenario at a time");
        assert_eq!(alone, mode == "host", "{mode}: {}", notes[0].1);
    }
}

#[test]
fn hard_coded_server_port_costs_the_same_in_every_mode() {
    hard_coded_server("hardcoded_port.py", 12345);
}

/// On the host the copies run one after another on the same port: a server without
/// SO_REUSEADDR can bind it again only if no connection of the previous copy is left in
/// TIME_WAIT there.
#[test]
fn hard_coded_server_port_without_reuseaddr_costs_the_same() {
    hard_coded_server("hardcoded_port_no_reuseaddr.py", 12346);
}

/// A client dialling a hard-coded port, per task: in a namespace it is redirected to the
/// grader's listener and loses only the port scenario; on the host it cannot be redirected and
/// every scenario that needs its connection fails.
fn hard_coded_client(
    task: u32,
    dialled: &str,
    host_failures: &[(&str, Status)],
    scores: (f64, f64),
) {
    let submission = fixture(task, "client_hardcoded_port.py");
    let g = grade(task, &submission, &["--isolation", namespace_mode()]);
    if g.report().isolation == "host" {
        grader::test_skips::skipped(
            "",
            "no namespace here (neither root nor unprivileged user namespaces): only the host half is checked",
        );
    } else {
        assert_failures(&g, &[(PORT_GIVEN, Failed)]);
        assert_eq!(g.report().score, scores.0, "{}", g.stdout());
        let msg = message_of(&g, PORT_GIVEN);
        let expected = format!("the client connected to {dialled}, not the assigned port ");
        assert!(msg.starts_with(&expected), "{msg}");
        let notes = notes_with(
            &g,
            &format!("the client dialled {dialled}, not the assigned port"),
        );
        assert_eq!(notes.len(), 1, "one note per grading: {notes:?}");
        assert_eq!(notes[0].0, PORT_GIVEN);
    }
    let _fixed = host_fixed_ports();
    let g = grade(task, &submission, &["--isolation", "host"]);
    assert_failures(&g, host_failures);
    assert_eq!(g.report().score, scores.1, "{}", g.stdout());
    for s in g.report().scenarios.iter().filter(|s| s.status != Passed) {
        assert_eq!(
            s.message,
            "the client exited without connecting: the client crashed (exit status 1)"
        );
        assert!(
            s.hint
                .as_deref()
                .is_some_and(|h| h.contains("cannot be redirected")),
            "{:?}",
            s.hint
        );
    }
}

#[test]
fn hard_coded_client_port_task1() {
    hard_coded_client(
        1,
        "127.0.0.1:12345",
        &[
            ("client prints the acknowledgment", Crashed),
            ("client relays lines and prints replies", Crashed),
            ("client exits cleanly on exit", Crashed),
            (PORT_GIVEN, Crashed),
        ],
        (29.0, 22.0),
    );
}

fn all_crashed<'a>(names: &[&'a str]) -> Vec<(&'a str, Status)> {
    names.iter().map(|n| (*n, Crashed)).collect()
}

#[test]
fn hard_coded_client_port_task2() {
    let every = all_crashed(&[
        "a pushed line appears while the user types nothing",
        "typed lines are sent without waiting for replies",
        "an idle client uses no CPU",
        "the client notices when the server closes",
        "20 pushed and 20 typed lines interleave",
        "client exits cleanly on exit",
        PORT_GIVEN,
    ]);
    hard_coded_client(2, "127.0.0.1:5000", &every, (19.0, 0.0));
}

#[test]
fn hard_coded_client_port_task4() {
    let clients = all_crashed(&[
        "client registers with its name",
        "client sends a typed line as a chat message",
        "client prints an incoming message as sender: text",
        "client prints errors",
        "client exits cleanly on exit",
        PORT_GIVEN,
    ]);
    hard_coded_client(4, "127.0.0.1:9000", &clients, (29.0, 19.0));
}

/// Where a client's connection is not redirected (here `--accept-any-port=false`; a kernel
/// without nf_tables NAT takes the same path), every client scenario fails, and the message
/// names the port the client dialled, learned from the namespace, not "exited without
/// connecting".
#[test]
fn a_client_that_is_not_redirected_is_told_the_port_it_dialled() {
    let g = grade(
        1,
        &fixture(1, "client_hardcoded_port.py"),
        &["--isolation", namespace_mode(), "--accept-any-port=false"],
    );
    if g.report().isolation == "host" {
        grader::test_skips::skipped("", "no namespace here: nothing can be learned from one");
        return;
    }
    let clients = [
        "client prints the acknowledgment",
        "client relays lines and prints replies",
        "client exits cleanly on exit",
        PORT_GIVEN,
    ];
    let expected: Vec<(&str, Status)> = clients.iter().map(|n| (*n, Failed)).collect();
    assert_failures(&g, &expected);
    for name in clients {
        let msg = message_of(&g, name);
        assert!(
            msg.starts_with("the client dialled 127.0.0.1:12345, not the assigned port ")
                && msg.ends_with(
                    "(--accept-any-port=false: a connection to another port is refused)"
                ),
            "{name}: {msg}"
        );
    }
}

/// A correct submission's report mentions no port.
#[test]
fn a_correct_submission_gets_no_port_note() {
    let g = grade(1, &fixture(1, "correct_other_style.py"), &[]);
    assert_failures(&g, &[]);
    assert!(notes_with(&g, "assigned port").is_empty(), "{}", g.stdout());
}

/// Records the events of a grading as (kind, scenario, text).
#[derive(Default)]
struct Recorded(std::sync::Mutex<Vec<(&'static str, String, String)>>);

impl grader::events::EventSink for Recorded {
    fn event(&self, event: &grader::events::Event<'_>) {
        use grader::events::Event;
        let row = match event {
            Event::ScenarioNote { scenario, note } => {
                ("note", scenario.to_string(), note.to_string())
            }
            Event::ScenarioFinished(o) => ("finished", o.name.clone(), String::new()),
            Event::GradingFinished(_) => ("done", String::new(), String::new()),
            _ => return,
        };
        self.0.lock().unwrap().push(row);
    }
}

/// The port note is an event as soon as the first scenario that saw the port finishes (before
/// that scenario's outcome), once per grading; the report keeps one such note too.
#[test]
fn the_port_note_is_sent_once_when_the_first_scenario_that_saw_it_finishes() {
    use grader::job::{Job, RunOptions, Settings};
    use grader::net::netns::IsolationMode;
    let _fixed = host_fixed_ports();
    let out = tempfile::tempdir().unwrap();
    let job = Job::from_args(RunOptions {
        task: 1,
        submission: Some(fixture(1, "hardcoded_port.py")),
        seed: 1,
        settings: Settings {
            isolation: IsolationMode::Host,
            out: out.path().join("reports"),
            ..Settings::default()
        },
        ..RunOptions::default()
    })
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let events = Recorded::default();
    let report = rt
        .block_on(job.grade(&grader::net::ports::PortPool::new(1), &events))
        .unwrap();
    let events = events.0.into_inner().unwrap();
    let notes: Vec<_> = events.iter().filter(|(k, ..)| *k == "note").collect();
    assert_eq!(notes.len(), 1, "once per grading: {events:#?}");
    let (_, scenario, text) = notes[0];
    assert!(text.contains("listens on port 12345"), "{text}");
    let at = |kind: &str, name: &str| {
        events
            .iter()
            .position(|(k, s, _)| *k == kind && s == name)
            .unwrap()
    };
    assert!(
        at("note", scenario) < at("finished", scenario),
        "{events:#?}"
    );
    assert!(at("note", scenario) < at("done", ""), "{events:#?}");
    // The report places it under the scenario about the port (naming that scenario's
    // assigned port), once.
    let placed: Vec<String> = report
        .scenarios
        .iter()
        .flat_map(|s| s.notes.iter().map(|n| n.to_string()))
        .filter(|n| n.contains("listens on port 12345"))
        .collect();
    assert_eq!(placed.len(), 1, "{placed:?}");
}
