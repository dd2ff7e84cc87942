//! Events the runner emits while grading; reporters consume them and never touch processes.
//!
//! Guarantees: for each grading, `GradingStarted` comes first, then `ScenarioFinished` once per
//! scenario (in completion order, possibly from several tasks at once), then `GradingFinished`
//! exactly once with the final record.

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
