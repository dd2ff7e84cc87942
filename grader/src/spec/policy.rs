//! A scenario's policy towards students, as the task file sets it: its [`Visibility`]
//! (`visible`, `hidden`, `after_due`) and its [`Feedback`] level (`full`, `summary`, `none`).
//!
//! Guarantees: these are plain task-file values with `visible` and `full` as defaults; what each
//! level withholds is decided in one place, [`crate::audience`].

use serde::{Deserialize, Serialize};

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
