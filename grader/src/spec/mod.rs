//! Task specifications: the declarative TOML files in `tasks/` that say what a task's scenarios
//! do and how many points each is worth.
//!
//! Guarantees: a [`TaskSpec`] that [`load`] returns has been fully validated (unique scenario
//! names, non-negative points, known steps and fields, compilable regexes, connections used only
//! after they were opened), so the engine never has to second-guess a spec at run time. Errors
//! name the file and the line:column of the offending value.

mod bundled;
mod duration;
mod expand;
mod load;
pub mod protocol;
mod step;
pub mod template;
pub mod timestamp;
mod validate;

pub use bundled::{BUNDLED_TASKS, bundled_task, bundled_task_names, parse_task_arg};
pub use duration::Dur;
pub use expand::Block;
pub use load::{SpecError, SpecSource, load, load_from_dir, load_with, parse, parse_with};
pub use protocol::{BUNDLED_DIALECTS, Dialect, Protocol};
pub use step::{
    BURST_GATE, ExitPredicate, Expectation, JsonPredicate, Process, SendBody, Step, StreamRef,
    Target,
};
pub use timestamp::{TimestampCheck, TimestampSpec};

use serde::{Deserialize, Serialize};

/// Which side of the protocol the student's program plays in a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The student's server is started; the grader plays the clients.
    Server,
    /// The student's client is started; the grader plays the server (or no server at all).
    Client,
}

/// Default deadlines a spec can set once for all its steps.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// How long an `expect*` step waits when it names no `within`.
    #[serde(default = "Defaults::default_within")]
    pub within: Dur,
    /// How long `start_server` waits for the server to listen.
    #[serde(default = "Defaults::default_listen_within")]
    pub listen_within: Dur,
}

impl Defaults {
    fn default_within() -> Dur {
        Dur::from_millis(2000)
    }
    fn default_listen_within() -> Dur {
        Dur::from_millis(5000)
    }
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            within: Self::default_within(),
            listen_within: Self::default_listen_within(),
        }
    }
}

/// One task: a title, defaults and the scenarios that are graded.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// Task number (1, 2, ...), as given to `--task`.
    pub task: u32,
    /// A short name (`tcp-echo`) that `--task` accepts as well as the number (bundled tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Human title, shown in reports.
    pub title: String,
    /// Optional longer description.
    #[serde(default)]
    pub description: Option<String>,
    /// Deadlines used when a step names none.
    #[serde(default)]
    pub defaults: Defaults,
    /// The task's protocol parameters (`[protocol]`, see [`protocol`]), as written.
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub protocol: toml::Table,
    /// Reusable steps (`[block.<name>]`), used by `{ do = "use", block = "<name>" }`.
    #[serde(
        rename = "block",
        default,
        skip_serializing_if = "std::collections::BTreeMap::is_empty"
    )]
    pub blocks: std::collections::BTreeMap<String, Block>,
    /// The scenarios, in the order they are reported (protocol steps expanded by [`load`]).
    #[serde(rename = "scenario", default)]
    pub scenarios: Vec<Scenario>,
    /// The dialect the scenarios were expanded under (set by [`load_with`]; empty: none).
    #[serde(skip)]
    pub dialect: Dialect,
    /// The protocol in force: the task's `[protocol]` under [`TaskSpec::dialect`].
    #[serde(skip)]
    pub resolved: Protocol,
}

impl TaskSpec {
    /// The sum of the points of all scenarios.
    pub fn max_score(&self) -> f64 {
        self.scenarios.iter().map(|s| s.points).sum()
    }
}

/// One graded scenario: a name, its points and the steps played against the student's program.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Unique name within the task (used as the JUnit test case name).
    pub name: String,
    /// Points awarded when every step passes (all or nothing).
    pub points: f64,
    /// Which role of the student's program this scenario grades.
    pub role: Role,
    /// What the scenario checks, in words shown to students.
    #[serde(default)]
    pub description: Option<String>,
    /// A hint shown whenever the scenario fails, unless the failing step has its own.
    #[serde(default)]
    pub hint: Option<String>,
    /// Whether students see this scenario's details (`visible`, `hidden`, `after_due`).
    #[serde(default)]
    pub visibility: crate::audience::Visibility,
    /// How much of a failure students see (`full`, `summary`, `none`).
    #[serde(default)]
    pub feedback: crate::audience::Feedback,
    /// The steps, run in order; the first failing step ends the scenario.
    pub steps: Vec<Step>,
    /// For each of `steps` (protocol steps expanded), the written step it came from: its
    /// 0-based index and kind (set by [`load`]; empty for a spec built otherwise).
    #[serde(skip)]
    pub origins: Vec<(usize, &'static str)>,
}

impl Scenario {
    /// How a report names step `n` (1-based, of the expanded steps): by the step as written,
    /// "4 (expect)", or "2 (join: expect)" for a step a protocol step expanded to.
    pub fn step_label(&self, n: usize, kind: &str) -> String {
        match self.origins.get(n.wrapping_sub(1)) {
            Some((i, written)) if *written != kind => format!("{} ({written}: {kind})", i + 1),
            Some((i, _)) => format!("{} ({kind})", i + 1),
            None => format!("{n} ({kind})"),
        }
    }
}
