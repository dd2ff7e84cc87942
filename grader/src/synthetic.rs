//! Hand-made outcomes, reports, records and events for the reporters' and exporters' unit tests
//! (as cargo-nextest tests its displayer): no student program runs, nothing depends on timing,
//! so their snapshots need no filters.
//!
//! Guarantees: every value is fixed (no clock, no random seed, no path of the machine); a
//! report's score and maximum are the sums of its scenarios', so records pass
//! [`crate::report::record::Record::verify`].

use std::collections::BTreeMap;

use crate::audience::{Policy, View};
use crate::export::Class;
use crate::note::Note;
use crate::report::record::{Provenance, Record};
use crate::spec::{Feedback, Role, Visibility};
use crate::verdict::{GradeReport, SCHEMA_VERSION, ScenarioOutcome, Status};

/// A passed server scenario `name` worth `max` points.
pub fn passed(name: &str, max: f64) -> ScenarioOutcome {
    ScenarioOutcome {
        name: name.into(),
        role: Role::Server,
        status: Status::Passed,
        points: max,
        max_points: max,
        duration_ms: 12,
        description: Some(format!("checks that it {name}")),
        message: String::new(),
        hint: None,
        failed_step: None,
        transcript: Vec::new(),
        stderr_tail: None,
        notes: Vec::new(),
    }
}

/// A failed scenario `name` worth `max` points, with everything a failure can carry.
pub fn failed(name: &str, max: f64, status: Status) -> ScenarioOutcome {
    ScenarioOutcome {
        status,
        points: 0.0,
        duration_ms: 2000,
        message: format!("expected \"ACK {name}\" within 2s, got nothing"),
        hint: Some("flush after every line you send".into()),
        failed_step: Some("3 (expect)".into()),
        transcript: vec![
            "→ HELLO alice".into(),
            "← WELCOME alice".into(),
            format!("→ MSG {name}"),
        ],
        stderr_tail: Some("Traceback (most recent call last):\nValueError: bad line".into()),
        ..passed(name, max)
    }
}

/// A retry note (an attempt failed for the grader's own reasons).
pub fn retried(message: &str) -> Note {
    Note::Retried {
        attempt: 1,
        message: message.into(),
    }
}

/// A report of `submission` for `task` with `scenarios` (score and maximum summed).
pub fn report(submission: &str, task: u32, scenarios: Vec<ScenarioOutcome>) -> GradeReport {
    GradeReport {
        schema_version: SCHEMA_VERSION,
        grader_version: "0.1.0".into(),
        submission: submission.into(),
        submission_path: format!("/class/{submission}"),
        task,
        task_title: format!("Task {task}"),
        score: scenarios.iter().map(|s| s.points).sum(),
        max_score: scenarios.iter().map(|s| s.max_points).sum(),
        seed: 42,
        spec_hash: "ab12".into(),
        spec_source: format!("bundled:tasks/task{task}.toml"),
        dialect: None,
        isolation: "netns".into(),
        accept_any_port: Some(true),
        timestamp: "2026-12-01T10:00:00Z".into(),
        duration_ms: 2345,
        scenarios,
        notes: Vec::new(),
    }
}

/// The usual report of the tests: a pass with a note, a failure with everything, a hidden
/// failure whose details are secret, a `summary` pass retried once.
pub fn mixed(submission: &str) -> GradeReport {
    let mut first = passed("acknowledges", 2.0);
    first.notes.push(Note::ServerOnOtherPort {
        assigned: 40000,
        actual: 5000,
        one_at_a_time: false,
    });
    let mut secret = failed("secret relay", 3.0, Status::TimedOut);
    secret.message = "expected \"secret-nonce\"".into();
    let mut brief = passed("brief", 1.0);
    brief.notes.push(retried(
        "expected \"secret-retry\" on a port a stranger took",
    ));
    let mut r = report(
        submission,
        1,
        vec![
            first,
            failed("relays messages", 4.0, Status::Failed),
            secret,
            brief,
        ],
    );
    r.notes.push(Note::TemplateWithoutPort {
        role: Role::Client,
        template: "python3 {dir}/client.py".into(),
    });
    r
}

/// The policies of [`mixed`]: "secret relay" hidden, "brief" with summary feedback.
pub fn policies() -> BTreeMap<String, Policy> {
    BTreeMap::from([
        (
            "secret relay".to_string(),
            Policy {
                visibility: Visibility::Hidden,
                feedback: Feedback::Full,
            },
        ),
        (
            "brief".to_string(),
            Policy {
                visibility: Visibility::Visible,
                feedback: Feedback::Summary,
            },
        ),
    ])
}

/// The provenance of a record of [`mixed`] (its policies, nothing else).
pub fn provenance() -> Provenance {
    Provenance {
        policies: policies(),
        ..Provenance::default()
    }
}

/// A record as read from memory (no file beside it).
pub fn record(report: GradeReport) -> Record {
    Record {
        report,
        provenance: provenance(),
        failed_attempt: None,
        source: None,
    }
}

/// A class of three students seen through `view`: amy (everything passed), bob ([`mixed`]),
/// and cy (task 1 failed entirely).
pub fn class(view: View) -> Class {
    let amy = report(
        "amy",
        1,
        vec![
            passed("acknowledges", 2.0),
            passed("relays messages", 4.0),
            passed("secret relay", 3.0),
            passed("brief", 1.0),
        ],
    );
    let cy = report(
        "cy",
        1,
        vec![
            failed("acknowledges", 2.0, Status::NeverListened),
            failed("relays messages", 4.0, Status::Crashed),
            failed("secret relay", 3.0, Status::TimedOut),
            failed("brief", 1.0, Status::Failed),
        ],
    );
    of([amy, mixed("bob"), cy], view)
}

/// A class of one student (bob, [`mixed`]) seen through `view`, for the per-student formats.
pub fn student(view: View) -> Class {
    of([mixed("bob")], view)
}

fn of(reports: impl IntoIterator<Item = GradeReport>, view: View) -> Class {
    let records = reports
        .into_iter()
        .map(|r| (r.submission.clone(), record(r)))
        .collect();
    Class::with_student_filter(records, view, false)
}

/// The student view and the instructor view.
pub fn views() -> [(&'static str, View); 2] {
    [
        ("student", View::default()),
        ("instructor", View::INSTRUCTOR),
    ]
}

/// The text of an export.
pub fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("exports are UTF-8")
}
