//! Verdicts: how a scenario ended and the graded record of a whole submission.
//!
//! These types are the authoritative record that every reporter renders and that the TOML report
//! stores; they carry everything a student needs to understand a lost point (message, hint,
//! transcript excerpt, stderr tail) and everything needed to replay a grading (seed, spec hash,
//! grader version).

use serde::{Deserialize, Serialize};

use crate::net::netns::Isolation;
pub use crate::note::Note;
use crate::spec::Role;

/// How one scenario ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every step passed; full points.
    Passed,
    /// A step saw something other than expected (what was expected and seen are in the message).
    Failed,
    /// A step waited its whole deadline while the student's program was still running.
    TimedOut,
    /// The student's program died (non-zero status or a signal) and a step failed because of it.
    Crashed,
    /// The student's server never listened on its port.
    NeverListened,
    /// The student's program printed more than the output limit and was stopped.
    OutputLimit,
    /// The grader itself could not run the scenario (never charged to the student).
    InfraError,
}

impl Status {
    /// The short label used in the console and JUnit.
    pub fn label(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::TimedOut => "timed out",
            Status::Crashed => "crashed",
            Status::NeverListened => "never listened",
            Status::OutputLimit => "output limit",
            Status::InfraError => "infrastructure error",
        }
    }
}

/// The result of one scenario.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScenarioOutcome {
    /// Scenario name.
    pub name: String,
    /// The role graded.
    pub role: Role,
    /// How it ended.
    pub status: Status,
    /// Points awarded.
    pub points: f64,
    /// Points possible.
    pub max_points: f64,
    /// Wall time, in milliseconds.
    pub duration_ms: u64,
    /// What the scenario checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What went wrong (empty when passed).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The usual mistake behind this failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Which step failed (1-based, `do` name), when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    /// Last lines of the wire transcript (kept for failures).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transcript: Vec<String>,
    /// Last lines the student's program wrote on stderr (kept for failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_tail: Option<String>,
    /// Remarks that do not change the verdict (e.g. a retried port collision).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "crate::note::serialize_notes",
        deserialize_with = "crate::note::deserialize_notes"
    )]
    pub notes: Vec<Note>,
}

/// The graded record of one submission for one task.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GradeReport {
    /// Version of this record's layout.
    pub schema_version: u32,
    /// Version of the grader that produced it.
    pub grader_version: String,
    /// Submission name (file or folder name).
    pub submission: String,
    /// Submission path as given.
    pub submission_path: String,
    /// Task number.
    pub task: u32,
    /// Task title.
    pub task_title: String,
    /// Points awarded.
    pub score: f64,
    /// Points possible.
    pub max_score: f64,
    /// Seed of the randomised payloads (`--seed` replays).
    pub seed: u64,
    /// SHA-256 of the task spec text (hex).
    pub spec_hash: String,
    /// Where the spec came from.
    pub spec_source: String,
    /// The protocol dialect the scenarios were expanded under, when one changed the task's own
    /// protocol (its keys are in the record's provenance, for `grader replay`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialect: Option<String>,
    /// How the student's processes were isolated.
    pub isolation: String,
    /// Whether a program using another port than its assigned one was followed there (a server
    /// graded on its own port, a client's dial redirected inside a namespace; absent in older
    /// records: then on exactly when `isolation` is "netns").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_any_port: Option<bool>,
    /// When the grading started (RFC 3339, UTC).
    pub timestamp: String,
    /// Total wall time, in milliseconds.
    pub duration_ms: u64,
    /// Per scenario, in spec order.
    pub scenarios: Vec<ScenarioOutcome>,
    /// Remarks on the whole grading, said once (roles not graded, a template without
    /// `{port}`).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "crate::note::serialize_notes",
        deserialize_with = "crate::note::deserialize_notes"
    )]
    pub notes: Vec<Note>,
}

/// The current [`GradeReport::schema_version`]. 2: notes are typed tables tagged by `kind`
/// ([`Note`]); version 1 records (notes as plain strings) still load, their notes as
/// [`Note::Text`].
pub const SCHEMA_VERSION: u32 = 2;

impl GradeReport {
    /// Whether another port than the assigned one was accepted (see the field).
    pub fn accepted_any_port(&self) -> bool {
        self.accept_any_port
            .unwrap_or(self.isolation == Isolation::Netns.as_str())
    }

    /// Number of scenarios that passed.
    pub fn passed(&self) -> usize {
        self.scenarios
            .iter()
            .filter(|s| s.status == Status::Passed)
            .count()
    }

    /// Score as a percentage of the maximum (100 when the maximum is 0).
    pub fn percent(&self) -> f64 {
        if self.max_score > 0.0 {
            100.0 * self.score / self.max_score
        } else {
            100.0
        }
    }
}

/// Formats points without a needless fraction: `4`, `2.5`.
pub fn fmt_points(p: f64) -> String {
    if (p - p.round()).abs() < 1e-9 {
        format!("{}", p.round() as i64)
    } else {
        format!("{:.2}", p).trim_end_matches('0').to_string()
    }
}
