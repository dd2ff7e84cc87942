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
//!
//! One rule for the messages of infrastructure errors, in reports and in [`redact_error`] alike:
//! students see them only for a visible (or released) scenario with `full` feedback. Elsewhere
//! (`summary`, `none`, hidden) the notes of retried attempts, which quote those messages, become
//! the generic [`crate::note::RETRIED_NOTE`]; `summary` keeps the other notes (the port a server was graded
//! on), `none` and hidden scenarios keep no other.
//!
//! Two more student-facing paths go through this module: [`limit_feedback`] applies only the
//! feedback levels (for Gradescope, which hides `hidden` and `after_due` tests itself but shows
//! everything else of `results.json` to students), and [`redact_error`] makes a grading that
//! failed for infrastructure reasons name a hidden scenario only by its placeholder and drop the
//! message of a scenario whose feedback students may not see.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::GradeError;
use crate::events::{Event, EventSink};
use crate::note::Note;
use crate::spec::{Feedback, TaskSpec, Visibility};
use crate::verdict::{GradeReport, ScenarioOutcome, Status};

/// Who an output is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Audience {
    /// Students: hidden scenarios and limited feedback are redacted.
    #[default]
    Student,
    /// Instructors: everything the record holds.
    Instructor,
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

/// Text that replaces the message of a grading error in a scenario whose details students may
/// not see.
pub const HIDDEN_ERROR: &str = "its details are shown to instructors only (the grader's own problem, not the submission's; nothing was scored)";

impl View {
    /// Whether this view shows a scenario of `policy` only as "hidden scenario N".
    pub fn hides(self, policy: Policy) -> bool {
        if self.audience == Audience::Instructor {
            return false;
        }
        match policy.visibility {
            Visibility::Visible => false,
            Visibility::Hidden => true,
            Visibility::AfterDue => !self.after_due,
        }
    }
}

/// The report as `view` may see it (a copy; the record is never changed): every outcome through
/// one [`Redactor`] of the report's scenarios, in its order.
pub fn redact(
    report: &GradeReport,
    policies: &BTreeMap<String, Policy>,
    view: View,
) -> GradeReport {
    Redactor::new(
        report.scenarios.iter().map(|o| o.name.as_str()),
        policies,
        view,
    )
    .report(report)
}

/// What one reader may see of a grading, one outcome at a time: built from the names of the
/// scenarios graded, in spec order (the order a report lists them), so that a hidden scenario
/// gets the same "hidden scenario N" whether it is redacted alone, as it finishes, or in the
/// final report.
#[derive(Debug, Clone)]
pub struct Redactor {
    view: View,
    policies: BTreeMap<String, Policy>,
    /// The number of each scenario `view` hides, among those it hides, in spec order.
    hidden: BTreeMap<String, usize>,
}

impl Redactor {
    /// A redactor of the scenarios `names` (in spec order) under `policies` (a name without one
    /// has the default policy), for `view`.
    pub fn new<'n>(
        names: impl IntoIterator<Item = &'n str>,
        policies: &BTreeMap<String, Policy>,
        view: View,
    ) -> Self {
        let policy = |name: &str| policies.get(name).copied().unwrap_or_default();
        let hidden = names
            .into_iter()
            .filter(|name| view.hides(policy(name)))
            .enumerate()
            .map(|(i, name)| (name.to_string(), i + 1))
            .collect();
        Self {
            view,
            policies: policies.clone(),
            hidden,
        }
    }

    /// A redactor of `spec`'s scenarios under their own policies.
    pub fn for_spec(spec: &TaskSpec, view: View) -> Self {
        Self::new(
            spec.scenarios.iter().map(|s| s.name.as_str()),
            &policies_of(spec),
            view,
        )
    }

    fn policy(&self, scenario: &str) -> Policy {
        self.policies.get(scenario).copied().unwrap_or_default()
    }

    /// The scenario's name as the reader sees it: its own, or "hidden scenario N"; a hidden
    /// scenario this redactor was not told of is "a hidden scenario".
    pub fn name(&self, scenario: &str) -> String {
        if !self.view.hides(self.policy(scenario)) {
            return scenario.to_string();
        }
        match self.hidden.get(scenario) {
            Some(k) => format!("hidden scenario {k}"),
            None => "a hidden scenario".to_string(),
        }
    }

    /// Whether the reader sees the scenario's messages (an infrastructure error's, a retry's):
    /// instructors always; students for a visible (or released) scenario with `full` feedback.
    pub fn shows_messages(&self, scenario: &str) -> bool {
        let policy = self.policy(scenario);
        self.view.audience == Audience::Instructor
            || (!self.view.hides(policy) && policy.feedback == Feedback::Full)
    }

    /// Whether the reader sees the scenario's notes other than retries (the port a program
    /// was graded on): instructors always; students where its feedback is not `none` and it is
    /// not hidden.
    pub fn shows_notes(&self, scenario: &str) -> bool {
        let policy = self.policy(scenario);
        self.view.audience == Audience::Instructor
            || (!self.view.hides(policy) && policy.feedback != Feedback::None)
    }

    /// One outcome as the reader may see it (a copy).
    pub fn outcome(&self, o: &ScenarioOutcome) -> ScenarioOutcome {
        let mut shown = o.clone();
        self.apply(&mut shown);
        shown
    }

    /// A whole report as the reader may see it (a copy): each outcome as [`Self::outcome`].
    pub fn report(&self, report: &GradeReport) -> GradeReport {
        let mut shown = report.clone();
        shown.scenarios.iter_mut().for_each(|o| self.apply(o));
        shown
    }

    fn apply(&self, o: &mut ScenarioOutcome) {
        if self.view.audience == Audience::Instructor {
            return;
        }
        let policy = self.policy(&o.name);
        if self.view.hides(policy) {
            *o = bare_outcome(o, self.name(&o.name), HIDDEN_MESSAGE);
        } else {
            apply_feedback(o, policy.feedback);
        }
    }
}

/// The report with only the feedback levels applied, to every scenario whatever its visibility
/// (a copy). Names stay, so hidden and `after_due` scenarios must be hidden by the reader of the
/// output: for Gradescope's `results.json` with the instructor audience, whose tests carry their
/// visibility, while everything else in it (a visible test's output) reaches students as is.
pub fn limit_feedback(report: &GradeReport, policies: &BTreeMap<String, Policy>) -> GradeReport {
    let mut out = report.clone();
    for o in &mut out.scenarios {
        let policy = policies.get(&o.name).copied().unwrap_or_default();
        apply_feedback(o, policy.feedback);
    }
    out
}

/// The notes students may see of a scenario whose messages they may not see: one
/// [`Note::RetriedWithheld`] if an attempt was retried, and, when `keep_others`, the notes that are not
/// about retries (e.g. the port it was graded on).
fn withheld_notes(notes: &[Note], keep_others: bool) -> Vec<Note> {
    let retried = notes.iter().any(Note::is_retry);
    let mut kept: Vec<Note> = notes
        .iter()
        .filter(|n| keep_others && !n.is_retry())
        .cloned()
        .collect();
    if retried {
        kept.push(Note::RetriedWithheld);
    }
    kept
}

fn apply_feedback(o: &mut ScenarioOutcome, feedback: Feedback) {
    match feedback {
        Feedback::Full => {}
        Feedback::Summary => {
            if o.status != Status::Passed {
                o.message = "the details of this failure are not shown".to_string();
            }
            o.failed_step = None;
            o.transcript.clear();
            o.stderr_tail = None;
            o.notes = withheld_notes(&o.notes, true);
        }
        Feedback::None => {
            *o = bare_outcome(o, o.name.clone(), "no feedback is given for this scenario");
        }
    }
}

/// A scenario's name as `view` shows it: its own, or the "hidden scenario N" that [`redact`] gives
/// it in a report of `spec` (N counts the scenarios `view` hides, in spec order). A name the spec
/// does not have is shown to students as "a hidden scenario".
pub fn shown_name(spec: &TaskSpec, scenario: &str, view: View) -> String {
    let known = spec.scenarios.iter().any(|s| s.name == scenario);
    if known || view.audience == Audience::Instructor {
        Redactor::for_spec(spec, view).name(scenario)
    } else {
        "a hidden scenario".to_string()
    }
}

/// A grading error as `view` may see it. [`GradeError::Infrastructure`] names a hidden (or
/// unreleased `after_due`) scenario by its placeholder as in [`redact`], and keeps its message
/// only when students get the scenario's full feedback (a `summary` or `none` scenario's message
/// may quote the wire too); the other errors are about the submission or the machine, not a
/// scenario, and are returned unchanged, as is everything for the instructor audience. The
/// Display text of the result is what `grader run` prints and `grader batch` writes to
/// `task<N>.error.txt`.
pub fn redact_error(error: GradeError, spec: &TaskSpec, view: View) -> GradeError {
    match error {
        GradeError::Infrastructure { scenario, message } if view.audience == Audience::Student => {
            let known = spec.scenarios.iter().any(|s| s.name == scenario);
            let redactor = Redactor::for_spec(spec, view);
            let keep = known && redactor.shows_messages(&scenario);
            GradeError::Infrastructure {
                scenario: if known {
                    redactor.name(&scenario)
                } else {
                    "a hidden scenario".to_string()
                },
                message: if keep {
                    message
                } else {
                    HIDDEN_ERROR.to_string()
                },
            }
        }
        other => other,
    }
}

/// Only what pass/fail and points say of `o`, under `name`; a failure reads `failure`.
fn bare_outcome(o: &ScenarioOutcome, name: String, failure: &str) -> ScenarioOutcome {
    let passed = o.status == Status::Passed;
    ScenarioOutcome {
        name,
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
            failure.into()
        },
        hint: None,
        failed_step: None,
        transcript: Vec::new(),
        stderr_tail: None,
        notes: withheld_notes(&o.notes, false),
    }
}

/// An [`EventSink`] that passes on to `inner` only what `view` may see of each event, one
/// outcome at a time: every student-facing sink (the console, the JUnit file) sits behind one.
///
/// It learns the scenarios graded, in spec order, from `GradingStarted` (whose list it passes
/// on with hidden names replaced), so a hidden scenario is "hidden scenario N" in its
/// `ScenarioFinished` as in the final report; a hidden scenario's `ScenarioStarted` is passed on
/// under that name, a retry only where the reader sees the scenario's messages (as its notes),
/// a scenario's note only where the reader sees its other notes.
pub struct Redacting<'a, S> {
    inner: S,
    policies: &'a BTreeMap<String, Policy>,
    view: View,
    redactor: std::sync::OnceLock<Redactor>,
}

impl<'a, S: EventSink> Redacting<'a, S> {
    /// Wraps `inner`.
    pub fn new(inner: S, policies: &'a BTreeMap<String, Policy>, view: View) -> Self {
        Self {
            inner,
            policies,
            view,
            redactor: std::sync::OnceLock::new(),
        }
    }

    /// The wrapped sink.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The redactor of this grading, set by `GradingStarted`; before it, one of no scenario (a
    /// hidden one is then "a hidden scenario"), never kept.
    fn redactor(&self) -> std::borrow::Cow<'_, Redactor> {
        match self.redactor.get() {
            Some(r) => std::borrow::Cow::Borrowed(r),
            None => std::borrow::Cow::Owned(Redactor::new([], self.policies, self.view)),
        }
    }
}

impl<S: EventSink> EventSink for Redacting<'_, S> {
    fn event(&self, event: &Event<'_>) {
        match event {
            Event::GradingStarted {
                task,
                title,
                submission,
                seed,
                scenarios,
            } => {
                let redactor = self.redactor.get_or_init(|| {
                    Redactor::new(
                        scenarios.iter().map(String::as_str),
                        self.policies,
                        self.view,
                    )
                });
                let shown: Vec<String> = scenarios.iter().map(|s| redactor.name(s)).collect();
                self.inner.event(&Event::GradingStarted {
                    task: *task,
                    title,
                    submission,
                    seed: *seed,
                    scenarios: &shown,
                });
            }
            // The numbers given since `GradingStarted` (the report lists the same scenarios in
            // the same order); without it, the report's own order.
            Event::GradingFinished(report) => {
                let shown = match self.redactor.get() {
                    Some(redactor) => redactor.report(report),
                    None => redact(report, self.policies, self.view),
                };
                self.inner.event(&Event::GradingFinished(&shown));
            }
            Event::ScenarioFinished(o) => {
                let shown = self.redactor().outcome(o);
                self.inner.event(&Event::ScenarioFinished(&shown));
            }
            Event::ScenarioStarted { scenario } => {
                let shown = self.redactor().name(scenario);
                self.inner
                    .event(&Event::ScenarioStarted { scenario: &shown });
            }
            Event::Retry { scenario, .. } => {
                if self.redactor().shows_messages(scenario) {
                    self.inner.event(event);
                }
            }
            Event::ScenarioNote { scenario, note } => {
                let redactor = self.redactor();
                if redactor.shows_notes(scenario) {
                    let shown = redactor.name(scenario);
                    self.inner.event(&Event::ScenarioNote {
                        scenario: &shown,
                        note,
                    });
                }
            }
            Event::Built { .. } | Event::Note(_) => self.inner.event(event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::RETRIED_NOTE;

    use crate::spec::Role;

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
            dialect: None,
            isolation: String::new(),
            accept_any_port: None,
            timestamp: String::new(),
            duration_ms: 0,
            scenarios: Vec::new(),
            notes: Vec::new(),
        }
    }

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
            notes: vec![Note::text("secret-note")],
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

    /// Records what reaches it, as text.
    #[derive(Default)]
    struct Seen(std::sync::Mutex<Vec<String>>);

    impl EventSink for Seen {
        fn event(&self, event: &Event<'_>) {
            self.0.lock().unwrap().push(format!("{event:?}"));
        }
    }

    #[test]
    fn the_redacting_sink_withholds_per_event_what_students_may_not_see() {
        let policies = policies();
        let seen = Seen::default();
        let sink = Redacting::new(&seen, &policies, View::default());
        let mut secret = outcome("secret big payload", Status::Crashed);
        secret.notes.push(Note::Retried {
            attempt: 1,
            message: "secret-retry".into(),
        });
        for name in ["open", "secret big payload", "later"] {
            sink.event(&Event::ScenarioStarted { scenario: name });
            sink.event(&Event::Retry {
                scenario: name,
                attempt: 1,
                message: "secret-retry",
            });
        }
        sink.event(&Event::ScenarioFinished(&secret));
        let seen = seen.0.into_inner().unwrap();
        // open: started and its retry; the hidden one: its start and outcome under a
        // placeholder, no retry; later (after_due, summary): its start, no retry.
        assert_eq!(seen.len(), 5, "{seen:#?}");
        assert!(seen[0].contains("ScenarioStarted") && seen[0].contains("open"));
        assert!(seen[1].contains("Retry") && seen[1].contains("open"));
        // No `GradingStarted` told it the order: no number for the hidden one.
        assert!(seen[2].contains("\"a hidden scenario\""), "{}", seen[2]);
        assert!(seen[3].contains("\"a hidden scenario\""), "{}", seen[3]);
        assert!(seen[4].contains("a hidden scenario"), "{}", seen[4]);
        assert!(seen[2..].iter().all(|s| !s.contains("secret")), "{seen:#?}");
    }

    #[test]
    fn the_redacting_sink_numbers_hidden_scenarios_as_the_report_does() {
        let policies = policies();
        let seen = Seen::default();
        let sink = Redacting::new(&seen, &policies, View::default());
        let report = report();
        let names: Vec<String> = report.scenarios.iter().map(|o| o.name.clone()).collect();
        sink.event(&Event::GradingStarted {
            task: 1,
            title: "t",
            submission: "s",
            seed: 1,
            scenarios: &names,
        });
        // Out of spec order, as scenarios finish.
        for o in report.scenarios.iter().rev() {
            sink.event(&Event::ScenarioFinished(o));
        }
        sink.event(&Event::GradingFinished(&report));
        let seen = seen.0.into_inner().unwrap();
        assert!(
            seen[0].contains(r#"["open", "hidden scenario 1", "hidden scenario 2"]"#),
            "{}",
            seen[0]
        );
        let whole = redact(&report, &policies, View::default());
        for (event, o) in seen[1..4].iter().zip(whole.scenarios.iter().rev()) {
            assert_eq!(*event, format!("{:?}", Event::ScenarioFinished(o)));
        }
        assert_eq!(seen[4], format!("{:?}", Event::GradingFinished(&whole)));
        // Only the visible "open" shows its details.
        assert!(
            seen[1..3].iter().all(|s| !s.contains("secret")),
            "{seen:#?}"
        );
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

    #[test]
    fn limit_feedback_keeps_names_and_applies_levels() {
        let mut policies = policies();
        policies.insert(
            "open".into(),
            Policy {
                visibility: Visibility::Visible,
                feedback: Feedback::None,
            },
        );
        let shown = limit_feedback(&report(), &policies);
        let names: Vec<&str> = shown.scenarios.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["open", "secret big payload", "later"]);
        // none: pass/fail and points only.
        let open = &shown.scenarios[0];
        assert!(!format!("{open:?}").contains("secret"), "{open:?}");
        assert_eq!(open.status, Status::Failed);
        // full (a hidden one: the reader hides it) is untouched.
        assert_eq!(shown.scenarios[1], report().scenarios[1]);
        // summary: description and hint, nothing from the wire.
        let later = &shown.scenarios[2];
        assert_eq!(later.hint.as_deref(), Some("secret-hint"));
        assert!(later.transcript.is_empty() && later.stderr_tail.is_none());
        assert!(!later.message.contains("secret") && later.failed_step.is_none());
    }

    #[test]
    fn retry_notes_follow_the_rule_of_infrastructure_messages() {
        let retry = Note::Retried {
            attempt: 1,
            message: "expected \"secret-nonce\" on a port a stranger took".into(),
        };
        // A record written before notes were typed: the same rule.
        let old_retry = Note::text(
            "attempt 2: infrastructure error: expected \"secret-nonce\" again (retried, not charged)",
        );
        let port = Note::ServerOnOtherPort {
            assigned: 4711,
            actual: 4242,
            one_at_a_time: false,
        };
        let withheld = Note::RetriedWithheld;
        assert_eq!(withheld.to_string(), RETRIED_NOTE);
        let spec = spec();
        let passed = |name: &str| ScenarioOutcome {
            status: Status::Passed,
            message: String::new(),
            notes: vec![retry.clone(), port.clone(), old_retry.clone()],
            ..outcome(name, Status::Passed)
        };
        let report = GradeReport {
            scenarios: spec.scenarios.iter().map(|s| passed(&s.name)).collect(),
            ..placeholder_report()
        };
        let shown = redact(&report, &policies_of(&spec), View::default());
        let notes = |i: usize| shown.scenarios[i].notes.clone();
        // open (full): everything; brief (summary): the port, not the retry's message; mute
        // (none) and the hidden ones: only that an attempt was retried.
        assert_eq!(notes(0), report.scenarios[0].notes);
        assert_eq!(notes(3), [port.clone(), withheld.clone()]);
        for i in [1, 2, 4, 5] {
            assert_eq!(
                notes(i),
                std::slice::from_ref(&withheld),
                "{:?}",
                shown.scenarios[i]
            );
        }
        // The same rule as redact_error: the message shows in the notes exactly where it shows
        // in a grading error.
        for (s, o) in spec.scenarios.iter().zip(&shown.scenarios) {
            let error = GradeError::Infrastructure {
                scenario: s.name.clone(),
                message: "expected \"secret-nonce\"".into(),
            };
            let in_error = redact_error(error, &spec, View::default())
                .to_string()
                .contains("secret-nonce");
            let in_notes = o
                .notes
                .iter()
                .any(|n| n.to_string().contains("secret-nonce"));
            assert_eq!(in_error, in_notes, "{}", s.name);
        }
        // Without retries, summary notes are untouched and none adds nothing.
        let plain = GradeReport {
            scenarios: spec
                .scenarios
                .iter()
                .map(|s| ScenarioOutcome {
                    notes: vec![port.clone()],
                    ..passed(&s.name)
                })
                .collect(),
            ..placeholder_report()
        };
        let shown = redact(&plain, &policies_of(&spec), View::default());
        assert_eq!(shown.scenarios[3].notes, std::slice::from_ref(&port));
        assert!(shown.scenarios[4].notes.is_empty() && shown.scenarios[1].notes.is_empty());
        // Gradescope's path applies the same feedback rule.
        let limited = limit_feedback(&report, &policies_of(&spec));
        assert_eq!(limited.scenarios[3].notes, [port, withheld.clone()]);
        assert_eq!(limited.scenarios[4].notes, [withheld]);
        assert_eq!(
            redact(&report, &policies_of(&spec), View::INSTRUCTOR),
            report
        );
    }

    fn spec() -> TaskSpec {
        let scenario = |name: &str, visibility: &str, feedback: &str| {
            format!(
                "[[scenario]]\nname = {name:?}\npoints = 1\nrole = \"server\"\nvisibility = {visibility:?}\nfeedback = {feedback:?}\nsteps = [{{ do = \"start_server\" }}]\n"
            )
        };
        let text = [
            "task = 1\ntitle = \"t\"\n".to_string(),
            scenario("open", "visible", "full"),
            scenario("secret first", "hidden", "full"),
            scenario("later", "after_due", "full"),
            scenario("brief", "visible", "summary"),
            scenario("mute", "visible", "none"),
            scenario("secret second", "hidden", "summary"),
        ]
        .concat();
        toml::from_str(&text).unwrap()
    }

    fn infra(scenario: &str) -> GradeError {
        GradeError::Infrastructure {
            scenario: scenario.into(),
            message: "secret-port 4711 taken".into(),
        }
    }

    #[test]
    fn shown_names_match_redact() {
        let spec = spec();
        let student = View::default();
        let released = View {
            audience: Audience::Student,
            after_due: true,
        };
        assert_eq!(shown_name(&spec, "open", student), "open");
        assert_eq!(
            shown_name(&spec, "secret first", student),
            "hidden scenario 1"
        );
        assert_eq!(shown_name(&spec, "later", student), "hidden scenario 2");
        assert_eq!(
            shown_name(&spec, "secret second", student),
            "hidden scenario 3"
        );
        assert_eq!(shown_name(&spec, "later", released), "later");
        assert_eq!(
            shown_name(&spec, "secret second", released),
            "hidden scenario 2"
        );
        assert_eq!(shown_name(&spec, "nonesuch", student), "a hidden scenario");
        assert_eq!(
            shown_name(&spec, "secret second", View::INSTRUCTOR),
            "secret second"
        );
        // The same numbers as a redacted report of the spec.
        let report = GradeReport {
            scenarios: spec
                .scenarios
                .iter()
                .map(|s| outcome(&s.name, Status::Failed))
                .collect(),
            ..placeholder_report()
        };
        let policies = policies_of(&spec);
        for view in [student, released] {
            let shown = redact(&report, &policies, view);
            for (s, o) in spec.scenarios.iter().zip(&shown.scenarios) {
                assert_eq!(shown_name(&spec, &s.name, view), o.name);
            }
        }
    }

    #[test]
    fn infrastructure_errors_are_redacted_for_students() {
        let spec = spec();
        let student = View::default();
        let text = |e: GradeError| e.to_string();
        // Visible with full feedback: unchanged.
        assert_eq!(
            text(redact_error(infra("open"), &spec, student)),
            text(infra("open"))
        );
        // Hidden: placeholder name, no message.
        let hidden = text(redact_error(infra("secret first"), &spec, student));
        assert!(hidden.contains("\"hidden scenario 1\""), "{hidden}");
        assert!(
            !hidden.contains("secret") && !hidden.contains("4711"),
            "{hidden}"
        );
        assert!(hidden.contains(HIDDEN_ERROR), "{hidden}");
        // Unreleased after_due: hidden; released: named, message kept (full feedback).
        let later = text(redact_error(infra("later"), &spec, student));
        assert!(later.contains("hidden scenario 2") && !later.contains("4711"));
        let released = View {
            audience: Audience::Student,
            after_due: true,
        };
        let later = text(redact_error(infra("later"), &spec, released));
        assert!(
            later.contains("\"later\"") && later.contains("4711"),
            "{later}"
        );
        // summary / none: named, message dropped.
        for name in ["brief", "mute"] {
            let t = text(redact_error(infra(name), &spec, student));
            assert!(
                t.contains(&format!("{name:?}")) && !t.contains("4711"),
                "{t}"
            );
        }
        // An unknown scenario tells nothing.
        let t = text(redact_error(infra("secret nonesuch"), &spec, student));
        assert!(!t.contains("secret") && !t.contains("4711"), "{t}");
        // Instructors see it all; other errors pass unchanged.
        assert_eq!(
            text(redact_error(infra("secret first"), &spec, View::INSTRUCTOR)),
            text(infra("secret first"))
        );
        let other = GradeError::Isolation(crate::net::netns::NamespaceError {
            step: crate::net::netns::NsError::ThreadDied,
            lacks: crate::net::netns::NamespaceLack::Refused,
        });
        let shown = other.to_string();
        assert_eq!(text(redact_error(other, &spec, student)), shown);
    }
}
