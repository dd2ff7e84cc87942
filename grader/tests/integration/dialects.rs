//! Protocol dialects: fixtures written to the loose ClassChat brief (a fixed reply, an
//! upper-casing echo, another exit word, raw-name or prompt registration with other field names
//! and plain-text forwards) get their exact scores under the default protocol and full marks
//! under the matching dialect, given on the command line (per class) or in the submission's
//! `classchat.toml` (per submission); the dialect is recorded and replayed; real bugs are still
//! found under a matching dialect.

use grader::verdict::Status::*;

use crate::support::{assert_failures, check_bundled_reference_with, fixture, grade, run_grader};

const ONE: &str = "server answers one message";
const LONG: &str = "a 4000-byte line is answered whole";
const EXIT: &str = "exit closes the connection gracefully";
const EMPTY: &str = "an empty line does not break the connection";

/// The dialect of `raw_name_msg_fields_text_forwards.py`, as command-line options.
const RAW_NAME: &[&str] = &[
    "--dialect",
    "name-line",
    "--dialect",
    "plain-forward",
    "--protocol",
    r#"fields = { sender = "from", receiver = "recipient", text = "msg" }"#,
];

#[track_caller]
fn score(task: u32, name: &str, extra: &[&str]) -> (f64, f64, crate::support::Graded) {
    let g = grade(task, &fixture(task, name), extra);
    let r = g.report();
    (r.score, r.max_score, g)
}

#[test]
fn fixed_reply_loses_only_the_echo_scenarios() {
    let (s, max, g) = score(1, "fixed_reply_message_received.py", &[]);
    assert_failures(&g, &[(ONE, TimedOut), (LONG, TimedOut)]);
    assert_eq!((s, max), (26.0, 30.0));
    assert_eq!(g.report().dialect, None);
    let (s, _, g) = score(
        1,
        "fixed_reply_message_received.py",
        &["--dialect", "any-reply"],
    );
    assert_failures(&g, &[]);
    assert_eq!(s, 30.0);
    assert_eq!(g.report().dialect.as_deref(), Some("any-reply"));
    assert!(
        g.stdout().contains("Protocol dialect: any-reply"),
        "{}",
        g.stdout()
    );
}

#[test]
fn uppercase_echo_passes_when_case_does_not_matter() {
    let (s, _, g) = score(1, "uppercase_echo.py", &[]);
    assert_failures(&g, &[(ONE, TimedOut), (LONG, TimedOut)]);
    assert_eq!(s, 26.0);
    let (s, _, g) = score(1, "uppercase_echo.py", &["--dialect", "echo-any-case"]);
    assert_failures(&g, &[]);
    assert_eq!(s, 30.0);
}

#[test]
fn another_exit_word() {
    let (s, _, g) = score(1, "exit_word_slash_quit.py", &[]);
    assert_failures(&g, &[(EXIT, TimedOut)]);
    assert_eq!(s, 28.0);
    let (s, _, g) = score(1, "exit_word_slash_quit.py", &["--dialect", "slash-quit"]);
    assert_failures(&g, &[]);
    assert_eq!(s, 30.0);
}

#[test]
fn real_bugs_are_still_found_under_a_matching_dialect() {
    // Truncating at 1024 bytes is a bug whatever the case of the echo.
    let (_, _, g) = score(
        1,
        "single_recv_truncates.py",
        &["--dialect", "echo-any-case"],
    );
    assert_failures(&g, &[(LONG, TimedOut)]);
    // A crash on an empty line is a crash, whatever a reply must contain.
    let (_, _, g) = score(1, "crashes_on_empty_line.py", &["--dialect", "any-reply"]);
    assert_failures(&g, &[(EMPTY, Crashed)]);
}

#[test]
fn raw_name_registration_with_other_fields_and_text_forwards() {
    // Under the default protocol only the scenario about the port passes (the client connects
    // to the port it is given; every other scenario needs the registration).
    let (s, max, g) = score(4, "raw_name_msg_fields_text_forwards.py", &[]);
    assert_eq!((s, max), (1.0, 30.0), "{}", g.stdout());
    let (s, _, g) = score(4, "raw_name_msg_fields_text_forwards.py", RAW_NAME);
    assert_failures(&g, &[]);
    assert_eq!(s, 30.0);
    let label = g.report().dialect.clone().unwrap_or_default();
    assert!(
        label.starts_with("name-line + plain-forward + --protocol"),
        "{label}"
    );
}

#[test]
fn prompt_registration() {
    let (s, _, g) = score(4, "prompt_for_username.py", &[]);
    assert_eq!(s, 1.0, "{}", g.stdout());
    let (s, _, g) = score(4, "prompt_for_username.py", &["--dialect", "name-prompt"]);
    assert_failures(&g, &[]);
    assert_eq!(s, 30.0);
}

/// A submission folder whose `classchat.toml` names its dialect: `grader run` and `grader
/// batch` grade it under it, the record keeps it, and `grader replay` reproduces the score.
#[test]
fn a_submission_names_its_dialect_in_classchat_toml() {
    let root = tempfile::tempdir().unwrap();
    let class = root.path().join("class");
    let sub = class.join("ada");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::copy(
        fixture(4, "raw_name_msg_fields_text_forwards.py"),
        sub.join("chat.py"),
    )
    .unwrap();
    std::fs::write(
        sub.join("classchat.toml"),
        r#"server = "python3 chat.py server --port {port} --host {host}"
client = "python3 chat.py client --host {host} --port {port} --name {name}"
dialect = "name-line"

[protocol]
forward = "{sender}: {text}"
errors = "text"
fields = { sender = "from", receiver = "recipient", text = "msg" }
"#,
    )
    .unwrap();
    let g = grade(4, &sub, &[]);
    assert_failures(&g, &[]);
    assert_eq!(
        g.report().dialect.as_deref(),
        Some("name-line + classchat.toml [protocol]")
    );

    // batch: the same folder, the class graded under the default protocol.
    let out = root.path().join("reports");
    let tmp = root.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let o = run_grader(
        [
            "batch".as_ref(),
            "--task".as_ref(),
            "4".as_ref(),
            class.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
            "--no-progress".as_ref(),
            "--seed".as_ref(),
            "3".as_ref(),
        ],
        &tmp,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let record_path = out.join("ada").join("task4.toml");
    let record = std::fs::read_to_string(&record_path).unwrap();
    let report = grader::report::toml::parse(&record).unwrap();
    assert_eq!(report.score, 30.0, "{record}");
    assert!(record.contains("protocol = "), "{record}");

    // replay: the recorded dialect, not the default.
    let o = run_grader(
        [
            "replay".as_ref(),
            record_path.as_os_str(),
            "--out".as_ref(),
            root.path().join("replayed").as_os_str(),
        ],
        &tmp,
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("The replay reproduced the recorded score."),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn an_unknown_dialect_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run_grader(["tasks", "--dialect", "klingon"], tmp.path());
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("name-line"),
        "names the bundled dialects: {err}"
    );
    let o = run_grader(["tasks", "--protocol", "reply = \"sometimes\""], tmp.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("sometimes"));
    // Every bundled dialect expands every bundled task.
    for (name, _) in grader::spec::BUNDLED_DIALECTS {
        let o = run_grader(["tasks", "--steps", "--dialect", name], tmp.path());
        assert_eq!(
            o.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// The references follow the default protocol, which the looser dialects accept, and they
/// leave by closing as well as by the exit word.
#[test]
fn references_score_full_marks_under_looser_dialects() {
    check_bundled_reference_with(1, &["--dialect", "any-reply", "--dialect", "no-exit-word"]);
    check_bundled_reference_with(4, &["--dialect", "no-exit-word"]);
}
