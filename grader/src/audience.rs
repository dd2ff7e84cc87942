//! Who reads an output, and what they may see of each scenario.
//!
//! A scenario has a [`Visibility`] (`visible`, `hidden`, `after_due`) and a [`Feedback`] level
//! (`full`, `summary`, `none`), set in the task file. The TOML record always keeps everything
//! (it is the instructor's); every output meant for students goes through [`redact`] first.
//!
//! Guarantees of [`redact`] for the student audience: a hidden scenario (and an `after_due` one
//! before the due date is declared passed with `--after-due`) keeps only the fact that it exists,
//! whether it passed and its points — its name, description, message, hint, failed step,
//! transcript, stderr and notes are all replaced, so no expected value, nonce or student output of
//! it can leak; `summary` feedback drops everything that quotes the wire (message, failed step,
//! transcript, stderr); `none` keeps only pass/fail and points. Scores are never changed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::events::{Event, EventSink};
use crate::verdict::{GradeReport, ScenarioOutcome, Status};

/// Who an output is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Audience {
    /// Students: hidden scenarios and limited feedback are redacted.
    #[default]
    Student,
    /// Instructors: everything the record holds.
    Instructor,
}

/// Whether students see a scenario's details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Always shown.
    #[default]
    Visible,
    /// Never shown to students beyond its existence and points.
    Hidden,
    /// Hidden until the instructor declares the due date passed (`--after-due`).
    AfterDue,
}

/// How much of a failure students see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feedback {
    /// Message, hint, failed step, transcript and stderr.
    #[default]
    Full,
    /// The verdict, the scenario's description and hint; nothing quoted from the wire.
    Summary,
    /// Pass/fail and points only.
    None,
}

/// A scenario's visibility and feedback, as recorded beside its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Policy {
    /// Whether students see it.
    #[serde(default)]
    pub visibility: Visibility,
    /// How much of a failure they see.
    #[serde(default)]
    pub feedback: Feedback,
}

impl Policy {
    /// True for the default (visible, full feedback).
    pub fn is_default(&self) -> bool {
        *self == Policy::default()
    }
}

/// The policies of a spec's scenarios that differ from the default, by scenario name.
pub fn policies_of(spec: &crate::spec::TaskSpec) -> BTreeMap<String, Policy> {
    spec.scenarios
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                Policy {
                    visibility: s.visibility,
                    feedback: s.feedback,
                },
            )
        })
        .filter(|(_, p)| !p.is_default())
        .collect()
}

/// What a reader may see: the audience, and whether `after_due` scenarios are released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct View {
    /// Who reads.
    pub audience: Audience,
    /// The due date has passed: `after_due` scenarios are shown like visible ones.
    pub after_due: bool,
}

impl View {
    /// The instructor's view (everything).
    pub const INSTRUCTOR: View = View {
        audience: Audience::Instructor,
        after_due: true,
    };
}

/// Text that replaces a hidden scenario's message.
pub const HIDDEN_MESSAGE: &str = "hidden scenario: its details are shown to instructors only";

/// The report as `view` may see it (a copy; the record is never changed).
pub fn redact(
    report: &GradeReport,
    policies: &BTreeMap<String, Policy>,
    view: View,
) -> GradeReport {
    let mut out = report.clone();
    if view.audience == Audience::Instructor {
        return out;
    }
    let mut hidden = 0;
    for o in &mut out.scenarios {
        let policy = policies.get(&o.name).copied().unwrap_or_default();
        let hide = match policy.visibility {
            Visibility::Visible => false,
            Visibility::Hidden => true,
            Visibility::AfterDue => !view.after_due,
        };
        if hide {
            hidden += 1;
            *o = hidden_outcome(o, hidden);
            continue;
        }
        match policy.feedback {
            Feedback::Full => {}
            Feedback::Summary => {
                if o.status != Status::Passed {
                    o.message = "the details of this failure are not shown".to_string();
                }
                o.failed_step = None;
                o.transcript.clear();
                o.stderr_tail = None;
            }
            Feedback::None => {
                let passed = o.status == Status::Passed;
                *o = ScenarioOutcome {
                    name: o.name.clone(),
                    role: o.role,
                    status: if passed {
                        Status::Passed
                    } else {
                        Status::Failed
                    },
                    points: o.points,
                    max_points: o.max_points,
                    duration_ms: 0,
                    description: None,
                    message: if passed {
                        String::new()
                    } else {
                        "no feedback is given for this scenario".into()
                    },
                    hint: None,
                    failed_step: None,
                    transcript: Vec::new(),
                    stderr_tail: None,
                    notes: Vec::new(),
                };
            }
        }
    }
    out
}

fn hidden_outcome(o: &ScenarioOutcome, k: usize) -> ScenarioOutcome {
    let passed = o.status == Status::Passed;
    ScenarioOutcome {
        name: format!("hidden scenario {k}"),
        role: o.role,
        status: if passed {
            Status::Passed
        } else {
            Status::Failed
        },
        points: o.points,
        max_points: o.max_points,
        duration_ms: 0,
        description: None,
        message: if passed {
            String::new()
        } else {
            HIDDEN_MESSAGE.into()
        },
        hint: None,
        failed_step: None,
        transcript: Vec::new(),
        stderr_tail: None,
        notes: Vec::new(),
    }
}

/// An [`EventSink`] that shows `inner` only what `view` may see.
pub struct Redacting<'a> {
    inner: &'a dyn EventSink,
    policies: &'a BTreeMap<String, Policy>,
    view: View,
}

impl<'a> Redacting<'a> {
    /// Wraps `inner`.
    pub fn new(
        inner: &'a dyn EventSink,
        policies: &'a BTreeMap<String, Policy>,
        view: View,
    ) -> Self {
        Self {
            inner,
            policies,
            view,
        }
    }
}

impl EventSink for Redacting<'_> {
    fn event(&self, event: &Event<'_>) {
        match event {
            Event::GradingFinished(report) => {
                let shown = redact(report, self.policies, self.view);
                self.inner.event(&Event::GradingFinished(&shown));
            }
            Event::ScenarioFinished(o) => {
                let one = GradeReport {
                    scenarios: vec![(*o).clone()],
                    ..placeholder_report()
                };
                let shown = redact(&one, self.policies, self.view);
                if let Some(s) = shown.scenarios.first() {
                    self.inner.event(&Event::ScenarioFinished(s));
                }
            }
            other => self.inner.event(other),
        }
    }
}

fn placeholder_report() -> GradeReport {
    GradeReport {
        schema_version: crate::verdict::SCHEMA_VERSION,
        grader_version: String::new(),
        submission: String::new(),
        submission_path: String::new(),
        task: 0,
        task_title: String::new(),
        score: 0.0,
        max_score: 0.0,
        seed: 0,
        spec_hash: String::new(),
        spec_source: String::new(),
        isolation: String::new(),
        accept_any_port: None,
        timestamp: String::new(),
        duration_ms: 0,
        scenarios: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Role;

    fn outcome(name: &str, status: Status) -> ScenarioOutcome {
        ScenarioOutcome {
            name: name.into(),
            role: Role::Server,
            status,
            points: 0.0,
            max_points: 2.0,
            duration_ms: 5,
            description: Some("checks secret-desc".into()),
            message: "expected \"secret-nonce\"".into(),
            hint: Some("secret-hint".into()),
            failed_step: Some("3 expect".into()),
            transcript: vec!["← secret-nonce".into()],
            stderr_tail: Some("secret-stderr".into()),
            notes: vec!["secret-note".into()],
        }
    }

    fn report() -> GradeReport {
        GradeReport {
            scenarios: vec![
                outcome("open", Status::Failed),
                outcome("secret big payload", Status::Crashed),
                outcome("later", Status::TimedOut),
            ],
            ..placeholder_report()
        }
    }

    fn policies() -> BTreeMap<String, Policy> {
        BTreeMap::from([
            (
                "secret big payload".to_string(),
                Policy {
                    visibility: Visibility::Hidden,
                    feedback: Feedback::Full,
                },
            ),
            (
                "later".to_string(),
                Policy {
                    visibility: Visibility::AfterDue,
                    feedback: Feedback::Summary,
                },
            ),
        ])
    }

    #[test]
    fn students_never_see_hidden_details() {
        let shown = redact(&report(), &policies(), View::default());
        let text = format!("{:?}", &shown.scenarios[1..]);
        assert!(!text.contains("secret"), "{text}");
        assert_eq!(shown.scenarios[1].name, "hidden scenario 1");
        assert_eq!(shown.scenarios[2].name, "hidden scenario 2");
        assert_eq!(shown.scenarios[1].max_points, 2.0);
        assert_eq!(shown.scenarios[0], report().scenarios[0]);
    }

    #[test]
    fn after_due_releases_with_its_feedback_level() {
        let view = View {
            audience: Audience::Student,
            after_due: true,
        };
        let shown = redact(&report(), &policies(), view);
        let later = &shown.scenarios[2];
        assert_eq!(later.name, "later");
        assert!(later.transcript.is_empty() && later.stderr_tail.is_none());
        assert!(!later.message.contains("secret"));
        assert_eq!(later.hint.as_deref(), Some("secret-hint"));
    }

    #[test]
    fn instructors_see_everything() {
        assert_eq!(redact(&report(), &policies(), View::INSTRUCTOR), report());
    }
}
