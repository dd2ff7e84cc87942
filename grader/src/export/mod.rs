//! Class-level exports computed from the TOML records of a reports folder: CSV for gradebooks,
//! a Canvas gradebook import built on the course's roster, Gradescope's `results.json`, GitHub Classroom's runner result, a self-contained HTML summary
//! and a Markdown summary (for CI job summaries). All formats sit behind one trait,
//! [`ClassExporter`], and render a [`Class`].
//!
//! Guarantees: exporting never runs student code; a [`Class`] is built through the audience
//! filter ([`crate::audience::redact`]), so an exporter only ever sees what its reader may see;
//! outputs are deterministic for the same records (sorted by student id and task; no clock).

pub mod canvas;
pub mod classroom;
pub mod csv;
pub mod gradescope;
pub mod markdown;
pub mod summary;

use std::collections::BTreeMap;

use crate::audience::{Policy, View};
use crate::report::record::Record;
use crate::verdict::GradeReport;

/// An export could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A per-student format was asked for a folder of several students (or none).
    #[error(
        "the {format} format describes one student, but the reports hold {count}: choose one with --student ID"
    )]
    NotOneStudent {
        /// Which format.
        format: &'static str,
        /// How many students.
        count: usize,
    },
    /// The Canvas roster is missing or is not a Canvas gradebook export.
    #[error("canvas export: {0}")]
    Roster(String),
    /// Rendering failed.
    #[error("cannot render the {format} export: {message}")]
    Render {
        /// Which format.
        format: &'static str,
        /// Why.
        message: String,
    },
}

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One row per student: id, total, per-task scores, per-scenario points (LMS import).
    Csv,
    /// Canvas gradebook import: the roster's (--roster) identification columns plus one column
    /// per task.
    Canvas,
    /// Gradescope autograder `results.json` (one student).
    Gradescope,
    /// GitHub Classroom grading-reporter runner result JSON (one student).
    Classroom,
    /// Self-contained HTML page: distribution, pass rate per scenario, students, transcripts.
    Summary,
    /// Markdown table (a CI job summary): scenarios of one student, or the class.
    Markdown,
}

/// A file format for a whole class (or one student) of records.
pub trait ClassExporter {
    /// Short format name, for messages.
    fn format(&self) -> &'static str;
    /// File name used when no `--out` is given.
    fn default_file_name(&self) -> &'static str;
    /// True for formats that describe one student (written per student by `batch --export`).
    fn per_student(&self) -> bool {
        false
    }
    /// Renders the export.
    fn render(&self, class: &Class) -> Result<Vec<u8>, ExportError>;
    /// Things the reader should know about what the export left out (printed as warnings).
    fn warnings(&self, _class: &Class) -> Vec<String> {
        Vec::new()
    }
}

/// The exporter of a format (the Canvas one reads and checks the roster).
pub fn exporter(format: Format, options: &Options) -> Result<Box<dyn ClassExporter>, ExportError> {
    Ok(match format {
        Format::Csv => Box::new(csv::Csv {
            id_column: options.id_column.clone(),
        }),
        Format::Canvas => {
            let path = options.roster.as_ref().ok_or_else(|| {
                ExportError::Roster(
                    "needs --roster FILE: the course's gradebook CSV from Canvas (Grades → Export)"
                        .into(),
                )
            })?;
            let text = std::fs::read_to_string(path).map_err(|e| {
                ExportError::Roster(format!("cannot read the roster {}: {e}", path.display()))
            })?;
            let roster = canvas::Roster::parse(&text).map_err(|e| {
                ExportError::Roster(format!(
                    "{} is not a Canvas gradebook export: {e}",
                    path.display()
                ))
            })?;
            Box::new(canvas::Canvas {
                roster,
                match_column: options.match_column.clone(),
                assignment: options.assignment.clone(),
            })
        }
        Format::Gradescope => Box::new(gradescope::Gradescope),
        Format::Classroom => Box::new(classroom::Classroom),
        Format::Summary => Box::new(summary::Summary),
        Format::Markdown => Box::new(markdown::Markdown),
    })
}

/// Export options that only some formats use.
#[derive(Debug, Clone)]
pub struct Options {
    /// Header of the CSV's id column.
    pub id_column: String,
    /// Canvas: the course's gradebook export.
    pub roster: Option<std::path::PathBuf>,
    /// Canvas: the roster column that holds the grader's student ids.
    pub match_column: String,
    /// Canvas: the column name for the points of the one exported task.
    pub assignment: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            id_column: "student_id".into(),
            roster: None,
            match_column: "SIS Login ID".into(),
            assignment: None,
        }
    }
}

/// One student's graded tasks, as the export's reader may see them.
#[derive(Debug, Clone)]
pub struct Student {
    /// Student id (the report folder name).
    pub id: String,
    /// Reports, sorted by task, already redacted for the audience.
    pub reports: Vec<GradeReport>,
    /// Per task, the scenario policies recorded with the report.
    pub policies: BTreeMap<u32, BTreeMap<String, Policy>>,
}

impl Student {
    /// Sum of the scores of the graded tasks.
    pub fn total(&self) -> f64 {
        self.reports.iter().map(|r| r.score).sum()
    }
    /// The report of `task`, if graded.
    pub fn task(&self, task: u32) -> Option<&GradeReport> {
        self.reports.iter().find(|r| r.task == task)
    }
}

/// A task's columns: its scenarios in spec order with their maximum points.
#[derive(Debug, Clone)]
pub struct TaskColumns {
    /// Task number.
    pub task: u32,
    /// Title.
    pub title: String,
    /// Maximum score.
    pub max: f64,
    /// (scenario name as shown, max points).
    pub scenarios: Vec<(String, f64)>,
}

/// Everything an export renders.
#[derive(Debug, Clone)]
pub struct Class {
    /// Students, sorted by id.
    pub students: Vec<Student>,
    /// Tasks present in any report, sorted.
    pub tasks: Vec<TaskColumns>,
    /// Who the export is for.
    pub view: View,
}

impl Class {
    /// Builds the class from records, seen through `view`.
    pub fn new(records: Vec<(String, Record)>, view: View) -> Self {
        let mut students: BTreeMap<String, Student> = BTreeMap::new();
        let mut tasks: BTreeMap<u32, TaskColumns> = BTreeMap::new();
        for (id, rec) in records {
            let shown = rec.view(view);
            let cols = tasks.entry(shown.task).or_insert_with(|| TaskColumns {
                task: shown.task,
                title: shown.task_title.clone(),
                max: shown.max_score,
                scenarios: Vec::new(),
            });
            for s in &shown.scenarios {
                if !cols.scenarios.iter().any(|(n, _)| n == &s.name) {
                    cols.scenarios.push((s.name.clone(), s.max_points));
                }
            }
            cols.max = cols.max.max(shown.max_score);
            let st = students.entry(id.clone()).or_insert_with(|| Student {
                id,
                reports: Vec::new(),
                policies: BTreeMap::new(),
            });
            st.policies
                .insert(shown.task, rec.provenance.policies.clone());
            st.reports.push(shown);
        }
        let mut students: Vec<Student> = students.into_values().collect();
        for s in &mut students {
            s.reports.sort_by_key(|r| r.task);
        }
        Self {
            students,
            tasks: tasks.into_values().collect(),
            view,
        }
    }

    /// Sum of the tasks' maximum scores.
    pub fn max_total(&self) -> f64 {
        self.tasks.iter().map(|t| t.max).sum()
    }

    /// The single student of a per-student format.
    pub fn one(&self, format: &'static str) -> Result<&Student, ExportError> {
        match self.students.as_slice() {
            [one] => Ok(one),
            all => Err(ExportError::NotOneStudent {
                format,
                count: all.len(),
            }),
        }
    }
}

/// A scenario's test name in per-student formats: its name, prefixed by the task when the
/// student has several.
pub(crate) fn test_name(student: &Student, report: &GradeReport, scenario: &str) -> String {
    if student.reports.len() > 1 {
        format!("task {}: {scenario}", report.task)
    } else {
        scenario.to_string()
    }
}

/// Failure text for per-student formats: message, hint, failed step, transcript, stderr.
pub(crate) fn failure_text(o: &crate::verdict::ScenarioOutcome) -> String {
    let mut s = String::new();
    if !o.message.is_empty() {
        s.push_str(&o.message);
        s.push('\n');
    }
    if let Some(h) = &o.hint {
        s.push_str(&format!("hint: {h}\n"));
    }
    if let Some(step) = &o.failed_step {
        s.push_str(&format!("failed at step {step}\n"));
    }
    if !o.transcript.is_empty() {
        s.push_str("transcript:\n");
        for l in &o.transcript {
            s.push_str(&format!("  {l}\n"));
        }
    }
    if let Some(err) = &o.stderr_tail {
        s.push_str("stderr (last lines):\n");
        for l in err.lines() {
            s.push_str(&format!(
                "  {}\n",
                crate::transcript::printable(l.as_bytes())
            ));
        }
    }
    s
}
