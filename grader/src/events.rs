//! Events the runner emits while grading; reporters consume them and never touch processes.
//!
//! Every consumer of a grading is a sink ([`EventSink`]): the console, a batch's progress bar,
//! the report files (JUnit and the TOML record, [`crate::report::files::ReportFiles`]), a
//! batch's bookkeeping. The caller composes them with [`Fanout`] and hands the engine one sink.
//!
//! Guarantees: for each grading, `GradingStarted` comes first, then `Built` once if the
//! submission has a build command and it succeeded, then one `Note` per remark on the whole
//! grading, then for each scenario `ScenarioStarted` before its first attempt, a `Retry` per
//! attempt that failed for the grader's own reasons and was run again, a `ScenarioNote` if it
//! was the first to see the program on another port, and `ScenarioFinished` once (scenarios in completion order, possibly several at once), then `GradingFinished`
//! exactly once with the final record. A grading that fails (an error instead of a report)
//! sends no `GradingFinished`.

use std::time::Duration;

use crate::note::Note;
use crate::verdict::{GradeReport, ScenarioOutcome};

/// Something that happened during a grading.
#[derive(Debug)]
pub enum Event<'a> {
    /// A grading began.
    GradingStarted {
        /// Task number.
        task: u32,
        /// Task title.
        title: &'a str,
        /// Submission name.
        submission: &'a str,
        /// The seed in use.
        seed: u64,
        /// The names of the scenarios graded, in spec order.
        scenarios: &'a [String],
    },
    /// The submission's build command succeeded (before the first scenario).
    Built {
        /// The command as written.
        command: &'a str,
        /// How long the build took.
        duration: Duration,
    },
    /// A remark on the whole grading (roles left out, a template without `{port}`); the same
    /// notes are in the final report's `notes`.
    Note(&'a Note),
    /// A scenario's first attempt begins.
    ScenarioStarted {
        /// Scenario name.
        scenario: &'a str,
    },
    /// An attempt of a scenario failed for the grader's own reasons and is run again (not
    /// charged); the final outcome carries it as a [`Note::Retried`].
    Retry {
        /// Scenario name.
        scenario: &'a str,
        /// The attempt that failed (1-based).
        attempt: u32,
        /// The infrastructure error's message (it may quote expected values: see
        /// [`crate::audience`]).
        message: &'a str,
    },
    /// A scenario found, as it ran, something a reader should know that changes no verdict:
    /// the submission's program uses another port than its assigned one. Sent once per kind
    /// (server, client) per grading, by the first scenario to finish having seen it, before its
    /// `ScenarioFinished`; the final report places the note under one scenario (the one about
    /// the port, if any; see [`crate::engine`]'s `hardcoded`). The first scenario to see it
    /// sends it even when the reader may not see that scenario's notes (a hidden one): a
    /// [`crate::audience::Redacting`] sink then drops it, and the reader learns of the port from
    /// the final report only.
    ScenarioNote {
        /// The scenario that saw it.
        scenario: &'a str,
        /// What it saw.
        note: &'a Note,
    },
    /// One scenario finished (possibly after retries for infrastructure errors), with its
    /// outcome as it ended; a note about a hard-coded port came as a `ScenarioNote` and is in
    /// the final report, under the scenario it is placed under, not in this outcome.
    ScenarioFinished(&'a ScenarioOutcome),
    /// The grading finished.
    GradingFinished(&'a GradeReport),
}

/// Receives events. Implementations must be cheap and must not block for long.
pub trait EventSink: Send + Sync {
    /// Called for every event.
    fn event(&self, event: &Event<'_>);
}

impl<T: EventSink + ?Sized> EventSink for &T {
    fn event(&self, event: &Event<'_>) {
        (**self).event(event)
    }
}

/// A sink that ignores everything.
pub struct NoEvents;

impl EventSink for NoEvents {
    fn event(&self, _: &Event<'_>) {}
}

/// Sends every event to each of its sinks, in order.
#[derive(Default)]
pub struct Fanout<'a> {
    sinks: Vec<&'a dyn EventSink>,
}

impl<'a> Fanout<'a> {
    /// A fan-out to `sinks`.
    pub fn new(sinks: impl IntoIterator<Item = &'a dyn EventSink>) -> Self {
        Self {
            sinks: sinks.into_iter().collect(),
        }
    }

    /// Adds a sink.
    pub fn with(mut self, sink: &'a dyn EventSink) -> Self {
        self.sinks.push(sink);
        self
    }
}

impl EventSink for Fanout<'_> {
    fn event(&self, event: &Event<'_>) {
        for s in &self.sinks {
            s.event(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Records the kinds of the events it gets.
    #[derive(Default)]
    struct Kinds(Mutex<Vec<String>>);

    impl EventSink for Kinds {
        fn event(&self, event: &Event<'_>) {
            let kind = match event {
                Event::GradingStarted { .. } => "started".to_string(),
                Event::Built { .. } => "built".into(),
                Event::Note(n) => format!("note {n}"),
                Event::ScenarioStarted { scenario } => format!("start {scenario}"),
                Event::Retry {
                    scenario, attempt, ..
                } => format!("retry {scenario} {attempt}"),
                Event::ScenarioNote { scenario, note } => format!("note {scenario}: {note}"),
                Event::ScenarioFinished(o) => format!("finish {}", o.name),
                Event::GradingFinished(_) => "finished".into(),
            };
            self.0.lock().unwrap().push(kind);
        }
    }

    #[test]
    fn fanout_sends_every_event_to_every_sink_in_order() {
        let (a, b) = (Kinds::default(), Kinds::default());
        let fan = Fanout::new([&a as &dyn EventSink]).with(&b);
        let note = Note::text("n");
        fan.event(&Event::Note(&note));
        fan.event(&Event::ScenarioStarted { scenario: "s" });
        fan.event(&Event::Retry {
            scenario: "s",
            attempt: 1,
            message: "m",
        });
        let want = ["note n", "start s", "retry s 1"];
        assert_eq!(*a.0.lock().unwrap(), want);
        assert_eq!(*b.0.lock().unwrap(), want);
    }
}
