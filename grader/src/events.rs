//! Events the runner emits while grading; reporters consume them and never touch processes.
//!
//! Guarantees: for each grading, `GradingStarted` comes first, then `Built` once if the
//! submission has a build command and it succeeded, then `ScenarioFinished` once per scenario
//! (in completion order, possibly from several tasks at once), then `GradingFinished` exactly
//! once with the final record.

use std::time::Duration;

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
        /// Number of scenarios.
        scenarios: usize,
    },
    /// The submission's build command succeeded (before the first scenario).
    Built {
        /// The command as written.
        command: &'a str,
        /// How long the build took.
        duration: Duration,
    },
    /// One scenario finished (possibly after retries for infrastructure errors).
    ScenarioFinished(&'a ScenarioOutcome),
    /// The grading finished.
    GradingFinished(&'a GradeReport),
}

/// Receives events. Implementations must be cheap and must not block for long.
pub trait EventSink: Send + Sync {
    /// Called for every event.
    fn event(&self, event: &Event<'_>);
}

/// A sink that ignores everything.
pub struct NoEvents;

impl EventSink for NoEvents {
    fn event(&self, _: &Event<'_>) {}
}
