//! The full grading record: the engine's [`GradeReport`] plus its [`Provenance`] (what was
//! graded and how: submission content hash, launch templates, task folder, the scenarios'
//! visibility and feedback policies), stored together in `task<N>.toml`.
//!
//! Guarantees: the provenance is an optional `[provenance]` table appended after the report, so
//! every reader of the plain report ([`super::toml::parse`]) still parses new files, and reports
//! written before provenance existed parse as records with an empty provenance. Exports and
//! student views are computed from records only, never by re-running student code.
//!
//! Beside a record, `task<N>.error.txt` says why the latest attempt produced no record (it never
//! replaces one). [`read`] notes an error file newer than the record ([`Record::failed_attempt`]:
//! the record is the last good grading, not the latest attempt), and [`not_graded`] lists the
//! tasks that have an error file and no record at all. The student id is the record's
//! `submission` ([`Record::student_id`]), since a folder name is only the id made safe.
//!
//! A record is data in a file, and a program that escaped its confinement (or a hand edit)
//! could have rewritten it. [`Record::verify`] is the one check of its numbers: every scenario's
//! points lie between 0 and its maximum, the score is the sum of the scenarios' points, and the
//! maximum the sum of their maxima. [`read`] (and so [`read_dir`]) refuses a record that fails
//! it ([`RecordError::Refused`], naming the file and what disagrees, and still holding the
//! parsed record so readers can list the student as not graded); exports, `grader merge` and a
//! batch's up-to-date check never use its score (`grader replay` warns and regrades it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ReportError, ReportRenderer};
use crate::audience::{Policy, View, redact};
use crate::verdict::GradeReport;

/// What was graded and how, beyond what the engine records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// [`crate::fingerprint::content_hash`] of the submission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_hash: Option<String>,
    /// Absolute path of the submission (file or folder) when it was graded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_abs: Option<String>,
    /// Absolute path of the folder `submission_hash` covers, where it is not `submission_abs`
    /// (a batch folder whose executable was started by the launch contract).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_root: Option<String>,
    /// True when the bundled reference solution was graded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bundled_reference: bool,
    /// The `--server` template, when one was used instead of the launch contract.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_template: Option<String>,
    /// The `--client` template, when one was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_template: Option<String>,
    /// The build command (`--build`, `build` in `classchat.toml`), when the submission was
    /// built in a copy of its folder before grading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_command: Option<String>,
    /// The build's deadline in milliseconds, when the build had one other than the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_timeout_ms: Option<u64>,
    /// The keys the protocol dialect set (a TOML inline table), when one was used; with the
    /// report's `dialect` label, what `grader replay` applies again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The grading's wall-clock limit (`--time-limit`) in milliseconds, when it was not the
    /// default (10 min); a replay uses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_limit_ms: Option<u64>,
    /// Absolute `--tasks-dir`, when the task file was not the bundled one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks_dir: Option<String>,
    /// Lines typed on the client's stdin before each scenario's own (`stdin_prelude`), as
    /// written (placeholders unsubstituted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stdin_prelude: Vec<String>,
    /// The client's stdin, when it was not a pipe (`client_stdin = "terminal"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_stdin: Option<crate::launch::ClientStdin>,
    /// The roles graded, when not every role of the task was (`roles`, `--role`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<crate::spec::Role>>,
    /// Scenario name → visibility and feedback, for scenarios that are not visible with full
    /// feedback.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub policies: BTreeMap<String, Policy>,
}

/// A report with its provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The graded record.
    pub report: GradeReport,
    /// How it was produced.
    pub provenance: Provenance,
    /// Set by [`read`] when the latest attempt at this task did not produce a record: a
    /// `task<N>.error.txt` beside it is newer than the record (a resubmission that cannot be
    /// started, an infrastructure failure). The record is still the last good grading.
    pub failed_attempt: Option<Attempt>,
    /// The file it was read from ([`read`]); `None` for a record parsed from text.
    pub source: Option<PathBuf>,
}

impl Record {
    /// The report as `view` may see it.
    pub fn view(&self, view: View) -> GradeReport {
        redact(&self.report, &self.provenance.policies, view)
    }

    /// The student id: the record's `submission`, or, for a record that lacks it, the name of
    /// the folder it was found in (which is only the id made safe as a folder name).
    pub fn student_id(&self, folder: &str) -> String {
        if self.report.submission.trim().is_empty() {
            folder.to_string()
        } else {
            self.report.submission.clone()
        }
    }

    /// Checks that the record's numbers agree with each other: every scenario's points and
    /// maximum are finite, its points between 0 and its maximum; the score is the sum of the
    /// scenarios' points and the maximum the sum of their maxima (within [`POINTS_TOLERANCE`]).
    /// The engine always writes such records, so a record that fails was changed afterwards
    /// (by hand, or by a student program) or is corrupt: never trust its score.
    pub fn verify(&self) -> Result<(), IntegrityError> {
        let r = &self.report;
        for s in &r.scenarios {
            if !s.max_points.is_finite() || s.max_points < 0.0 {
                return Err(IntegrityError::ScenarioMax {
                    scenario: s.name.clone(),
                    max: s.max_points,
                });
            }
            if !s.points.is_finite() || s.points < 0.0 || s.points > s.max_points + POINTS_TOLERANCE
            {
                return Err(IntegrityError::ScenarioPoints {
                    scenario: s.name.clone(),
                    points: s.points,
                    max: s.max_points,
                });
            }
        }
        // Summed in scenario order, as the engine sums them.
        let points: f64 = r.scenarios.iter().map(|s| s.points).sum();
        let maxima: f64 = r.scenarios.iter().map(|s| s.max_points).sum();
        let disagree =
            |stored: f64, sum: f64| !stored.is_finite() || (stored - sum).abs() > POINTS_TOLERANCE;
        if disagree(r.score, points) {
            return Err(IntegrityError::Score {
                stored: r.score,
                sum: points,
            });
        }
        if disagree(r.max_score, maxima) {
            return Err(IntegrityError::MaxScore {
                stored: r.max_score,
                sum: maxima,
            });
        }
        Ok(())
    }
}

/// How far a record's sums may be from the stored totals (floating-point rounding only: the
/// engine stores exactly the sums it computed, and TOML keeps every bit of them).
pub const POINTS_TOLERANCE: f64 = 1e-6;

/// Why a record's numbers cannot be trusted ([`Record::verify`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IntegrityError {
    /// A scenario's points are negative, not a number, or above its maximum.
    #[error("scenario {scenario:?} has {points} points, outside 0 to its maximum of {max}")]
    ScenarioPoints {
        /// Which scenario.
        scenario: String,
        /// Its recorded points.
        points: f64,
        /// Its recorded maximum.
        max: f64,
    },
    /// A scenario's maximum is negative or not a number.
    #[error(
        "scenario {scenario:?} has a maximum of {max} points, which is not a number of 0 or more"
    )]
    ScenarioMax {
        /// Which scenario.
        scenario: String,
        /// Its recorded maximum.
        max: f64,
    },
    /// The stored score is not the sum of the scenarios' points.
    #[error("its score {stored} is not the sum of its scenarios' points, {sum}")]
    Score {
        /// The record's `score`.
        stored: f64,
        /// What its scenarios add up to.
        sum: f64,
    },
    /// The stored maximum is not the sum of the scenarios' maxima.
    #[error("its maximum {stored} is not the sum of its scenarios' maxima, {sum}")]
    MaxScore {
        /// The record's `max_score`.
        stored: f64,
        /// What its scenarios' maxima add up to.
        sum: f64,
    },
}

/// An attempt at grading that left `task<N>.error.txt` instead of a record.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// Why it was not graded (the error file's text, without the student id line).
    pub reason: String,
    /// The student id the error file names, if it names one (only ids that differ from their
    /// folder name are written down).
    pub id: Option<String>,
}

/// The name of a task's error file.
pub fn error_file_name(task: u32) -> String {
    format!("task{task}.error.txt")
}

/// The line of an error file that names the student id.
const ID_LINE: &str = "student id: ";

/// The text of an error file: the reason, and the student id when the folder name (the id made
/// safe) does not say it exactly.
pub fn error_text(id: &str, reason: &str) -> String {
    let mut text = format!("{}\n", reason.trim_end());
    if super::sanitize(id) != id {
        text.push_str(&format!("{ID_LINE}{id}\n"));
    }
    text
}

/// Parses an error file written by [`error_text`] (or by older graders: the reason alone).
pub fn parse_error_text(text: &str) -> Attempt {
    let text = text.trim_end();
    match text.rsplit_once('\n') {
        Some((reason, last)) if last.starts_with(ID_LINE) => Attempt {
            reason: reason.trim_end().to_string(),
            id: Some(last[ID_LINE.len()..].to_string()),
        },
        _ => Attempt {
            reason: text.to_string(),
            id: None,
        },
    }
}

fn read_attempt(path: &Path) -> Option<Attempt> {
    std::fs::read_to_string(path)
        .ok()
        .map(|t| parse_error_text(&t))
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[derive(Serialize, Deserialize)]
struct ProvenanceTable {
    #[serde(default)]
    provenance: Provenance,
}

/// Writes `task<N>.toml`: the report, then its `[provenance]` table.
pub struct TomlRecord<'a>(pub &'a Provenance);

impl ReportRenderer for TomlRecord<'_> {
    fn file_name(&self, report: &GradeReport) -> String {
        super::toml::TomlReport.file_name(report)
    }

    fn render(&self, report: &GradeReport) -> Result<Vec<u8>, ReportError> {
        let mut bytes = super::toml::TomlReport.render(report)?;
        let table = toml::to_string_pretty(&ProvenanceTable {
            provenance: self.0.clone(),
        })
        .map_err(|e| ReportError::Render {
            format: "TOML",
            source: e.into(),
        })?;
        bytes.push(b'\n');
        bytes.extend_from_slice(table.as_bytes());
        Ok(bytes)
    }
}

/// A record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file cannot be read.
    #[error("cannot read report {}", .path.display())]
    Io {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a grading record.
    #[error("{path} is not a grading record: {message}")]
    Parse {
        /// Which file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The file is a grading record whose numbers disagree ([`Record::verify`]): changed after
    /// grading, or corrupt. Its score is never used; the parsed record is kept so that readers
    /// can list the student as not graded.
    #[error(
        "{}: the record of {id:?} (task {task}) is refused: {mismatch}; it was changed after grading or is corrupt, so it counts as not graded: regrade the student (a rerun of grader batch regrades it)",
        .path.display()
    )]
    Refused {
        /// Which file.
        path: PathBuf,
        /// The student id the record names.
        id: String,
        /// The task it is a record of.
        task: u32,
        /// What disagrees (a detail of the refusal, said in its message, not a cause).
        mismatch: IntegrityError,
        /// The record as parsed (`source` set), for listing the student as not graded.
        record: Box<Record>,
    },
}

impl RecordError {
    /// For a [`RecordError::Refused`]: the name of the student folder the file is in and the
    /// refused record; any other error is given back.
    pub fn into_refused(self) -> Result<(String, Record), Self> {
        match self {
            RecordError::Refused { path, record, .. } => {
                let folder = path
                    .parent()
                    .and_then(Path::file_name)
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                Ok((folder, *record))
            }
            other => Err(other),
        }
    }
}

/// Parses a record from the text of a `task<N>.toml`.
pub fn parse(text: &str) -> Result<Record, toml::de::Error> {
    let report = super::toml::parse(text)?;
    let provenance = toml::from_str::<ProvenanceTable>(text)?.provenance;
    Ok(Record {
        report,
        provenance,
        failed_attempt: None,
        source: None,
    })
}

/// Reads a record from a file; refuses one whose numbers disagree ([`Record::verify`]).
pub fn read(path: &Path) -> Result<Record, RecordError> {
    let text = std::fs::read_to_string(path).map_err(|source| RecordError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut record = parse(&text).map_err(|e| RecordError::Parse {
        path: path.to_path_buf(),
        message: e.message().to_string(),
    })?;
    record.source = Some(path.to_path_buf());
    if let Err(mismatch) = record.verify() {
        return Err(RecordError::Refused {
            path: path.to_path_buf(),
            id: record.report.submission.clone(),
            task: record.report.task,
            mismatch,
            record: Box::new(record),
        });
    }
    if let Some(task) = task_of(path) {
        let error = path.with_file_name(error_file_name(task));
        if let (Some(e), Some(r)) = (modified(&error), modified(path))
            && e > r
        {
            record.failed_attempt = read_attempt(&error);
        }
    }
    Ok(record)
}

/// What [`read_dir`] returns: (student folder name, record) pairs, and the files that could not
/// be read as records.
pub type Found = (Vec<(String, Record)>, Vec<RecordError>);

/// The records under a reports folder: `<dir>/<student>/task<N>.toml`, as (student folder name,
/// record), sorted by student and task. Files that are not records, and records that are
/// refused ([`RecordError::Refused`]), are reported in `skipped`.
pub fn read_dir(dir: &Path) -> Result<Found, RecordError> {
    let io = |source| RecordError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    for (id, sdir) in student_folders(dir).map_err(io)? {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&sdir) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| is_record_name(p))
                .collect(),
            Err(source) => {
                skipped.push(RecordError::Io { path: sdir, source });
                continue;
            }
        };
        files.sort_by_key(|p| task_of(p));
        for f in files {
            match read(&f) {
                Ok(r) => found.push((id.clone(), r)),
                Err(e) => skipped.push(e),
            }
        }
    }
    Ok((found, skipped))
}

/// The student folders of a reports folder, as (folder name, path), sorted: its subfolders,
/// except those whose name starts with a dot (`.bak/`, `.git/`), which hold no student's
/// records. Every reader of a reports folder ([`read_dir`], [`error_files`], [`not_graded`])
/// walks these.
pub fn student_folders(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut students: Vec<(String, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(name, _)| !name.starts_with('.'))
        .collect();
    students.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(students)
}

/// Whether a path is named like a record (`task<N>.toml`).
pub fn is_record_name(p: &Path) -> bool {
    task_of(p).is_some()
}

fn task_of(p: &Path) -> Option<u32> {
    p.file_name()?
        .to_str()?
        .strip_prefix("task")?
        .strip_suffix(".toml")?
        .parse()
        .ok()
}

/// A task a student folder holds only an error file for: never graded.
#[derive(Debug, Clone, PartialEq)]
pub struct NotGraded {
    /// The student folder's name.
    pub folder: String,
    /// The task.
    pub task: u32,
    /// What the error file says.
    pub attempt: Attempt,
}

impl NotGraded {
    /// The student id: the one the error file names, else the folder name.
    pub fn student_id(&self) -> String {
        self.attempt
            .id
            .clone()
            .unwrap_or_else(|| self.folder.clone())
    }
}

/// The error files under a reports folder: every `<dir>/<student>/task<N>.error.txt` of its
/// [`student_folders`], with or without a record beside it, as (student folder, task, path),
/// sorted by folder and task. Unreadable folders are left out ([`read_dir`] reports them).
pub fn error_files(dir: &Path) -> Vec<(String, u32, PathBuf)> {
    let mut found = Vec::new();
    for (folder, sdir) in student_folders(dir).unwrap_or_default() {
        let Ok(files) = std::fs::read_dir(&sdir) else {
            continue;
        };
        for f in files.filter_map(Result::ok).map(|e| e.path()) {
            if let Some(task) = error_task_of(&f) {
                found.push((folder.clone(), task, f));
            }
        }
    }
    found.sort();
    found
}

/// The tasks under a reports folder that were attempted but never graded: a
/// `<dir>/<student>/task<N>.error.txt` without a `task<N>.toml` beside it, sorted by folder and
/// task ([`error_files`]). Unreadable folders are left out ([`read_dir`] reports them).
pub fn not_graded(dir: &Path) -> Vec<NotGraded> {
    error_files(dir)
        .into_iter()
        .filter(|(_, task, path)| !path.with_file_name(format!("task{task}.toml")).exists())
        .filter_map(|(folder, task, path)| {
            read_attempt(&path).map(|attempt| NotGraded {
                folder,
                task,
                attempt,
            })
        })
        .collect()
}

/// The task of an error file's path (`task<N>.error.txt`).
pub fn error_task_of(p: &Path) -> Option<u32> {
    p.file_name()?
        .to_str()?
        .strip_prefix("task")?
        .strip_suffix(".error.txt")?
        .parse()
        .ok()
}

/// Builders shared by the library's tests of records and of what reads them (exports, merge).
#[cfg(test)]
pub(crate) mod test_support {
    use std::path::Path;

    use super::{Provenance, TomlRecord};
    use crate::verdict::{GradeReport, ScenarioOutcome, Status};

    /// A report of `submission`'s `task`: one scenario, "acknowledges", worth 2 points, of which
    /// it got `points` (passed at 2).
    pub(crate) fn report(submission: &str, task: u32, points: f64) -> GradeReport {
        GradeReport {
            schema_version: crate::verdict::SCHEMA_VERSION,
            grader_version: "0.1.0".into(),
            submission: submission.into(),
            submission_path: format!("/class/{submission}"),
            task,
            task_title: format!("Task {task}"),
            score: points,
            dialect: None,
            max_score: 2.0,
            seed: 1,
            spec_hash: "ab".into(),
            spec_source: "bundled".into(),
            isolation: "host".into(),
            accept_any_port: None,
            timestamp: "2025-01-01T00:00:00Z".into(),
            duration_ms: 1,
            notes: Vec::new(),
            scenarios: vec![ScenarioOutcome {
                name: "acknowledges".into(),
                role: crate::spec::Role::Server,
                status: if points >= 2.0 {
                    Status::Passed
                } else {
                    Status::Failed
                },
                points,
                max_points: 2.0,
                duration_ms: 1,
                description: None,
                message: String::new(),
                hint: None,
                failed_step: None,
                transcript: Vec::new(),
                stderr_tail: None,
                notes: Vec::new(),
            }],
        }
    }

    /// Writes `report` as a record with an empty provenance: `<out>/<id made safe>/task<N>.toml`.
    pub(crate) fn write(out: &Path, report: &GradeReport) {
        crate::report::write_all(out, report, &[&TomlRecord(&Provenance::default())]).unwrap();
    }

    /// Sets a file's modification time `secs_ago` seconds into the past.
    pub(crate) fn set_mtime(p: &Path, secs_ago: u64) {
        let t = std::time::SystemTime::now() - std::time::Duration::from_secs(secs_ago);
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{report, set_mtime, write};
    use super::*;

    #[test]
    fn error_text_names_the_id_only_when_the_folder_does_not() {
        assert_eq!(error_text("amy", "not started: x"), "not started: x\n");
        let t = error_text("alice@uni.edu", "not started at T: two\nlines");
        assert_eq!(
            parse_error_text(&t),
            Attempt {
                reason: "not started at T: two\nlines".into(),
                id: Some("alice@uni.edu".into())
            }
        );
        assert_eq!(parse_error_text("old format\n").id, None);
    }

    #[test]
    fn a_newer_error_file_marks_the_record_and_error_only_folders_are_listed() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path();
        for id in ["amy", "ben"] {
            write(out, &report(id, 1, 1.0));
        }
        // amy: the error file is older than the record (stale); ben: newer (latest attempt
        // failed); cat: only an error file.
        std::fs::write(out.join("amy/task1.error.txt"), "not started: old\n").unwrap();
        set_mtime(&out.join("amy/task1.error.txt"), 60);
        set_mtime(&out.join("ben/task1.toml"), 60);
        std::fs::write(out.join("ben/task1.error.txt"), "not started: new\n").unwrap();
        std::fs::create_dir(out.join("cat")).unwrap();
        std::fs::write(
            out.join("cat/task1.error.txt"),
            error_text("cat@x", "not graded: boom"),
        )
        .unwrap();
        let (records, skipped) = read_dir(out).unwrap();
        assert!(skipped.is_empty());
        let attempts: Vec<(&str, Option<&str>)> = records
            .iter()
            .map(|(f, r)| {
                (
                    f.as_str(),
                    r.failed_attempt.as_ref().map(|a| a.reason.as_str()),
                )
            })
            .collect();
        assert_eq!(attempts, [("amy", None), ("ben", Some("not started: new"))]);
        assert_eq!(
            records[0].1.source.as_deref(),
            Some(out.join("amy/task1.toml").as_path())
        );
        let ng = not_graded(out);
        assert_eq!(ng.len(), 1);
        assert_eq!((ng[0].folder.as_str(), ng[0].task), ("cat", 1));
        assert_eq!(ng[0].student_id(), "cat@x");
        assert_eq!(ng[0].attempt.reason, "not graded: boom");
    }

    #[test]
    fn dot_folders_are_not_students_for_any_reader() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path();
        write(out, &report("amy", 1, 1.0));
        std::fs::write(out.join("amy/task2.error.txt"), "not started: x\n").unwrap();
        for dot in [".bak", ".git"] {
            std::fs::create_dir(out.join(dot)).unwrap();
            std::fs::copy(out.join("amy/task1.toml"), out.join(dot).join("task1.toml")).unwrap();
            std::fs::write(out.join(dot).join("task3.error.txt"), "not started: y\n").unwrap();
        }
        let names = |v: Vec<(String, PathBuf)>| v.into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        assert_eq!(names(student_folders(out).unwrap()), ["amy"]);
        let (records, skipped) = read_dir(out).unwrap();
        assert_eq!(records.len(), 1);
        assert!(skipped.is_empty());
        let errors: Vec<(String, u32)> = error_files(out)
            .into_iter()
            .map(|(f, t, _)| (f, t))
            .collect();
        assert_eq!(errors, [("amy".to_string(), 2)]);
        let ng: Vec<(String, u32)> = not_graded(out)
            .into_iter()
            .map(|n| (n.folder, n.task))
            .collect();
        assert_eq!(ng, [("amy".to_string(), 2)]);
    }

    #[test]
    fn verify_recomputes_the_totals_and_read_refuses_a_forged_record() {
        let good = Record {
            report: report("amy", 1, 1.5),
            provenance: Provenance::default(),
            failed_attempt: None,
            source: None,
        };
        assert_eq!(good.verify(), Ok(()));
        let forged = |f: &dyn Fn(&mut GradeReport)| {
            let mut r = good.clone();
            f(&mut r.report);
            r.verify().unwrap_err()
        };
        assert_eq!(
            forged(&|r| r.score = 2.0),
            IntegrityError::Score {
                stored: 2.0,
                sum: 1.5
            }
        );
        assert!(matches!(
            forged(&|r| {
                r.scenarios[0].points = 3.0;
                r.score = 3.0;
            }),
            IntegrityError::ScenarioPoints { .. }
        ));
        assert!(matches!(
            forged(&|r| r.scenarios[0].points = -1.0),
            IntegrityError::ScenarioPoints { .. }
        ));
        assert!(matches!(
            forged(&|r| r.scenarios[0].points = f64::NAN),
            IntegrityError::ScenarioPoints { .. }
        ));
        assert!(matches!(
            forged(&|r| r.score = f64::NAN),
            IntegrityError::Score { .. }
        ));
        assert_eq!(
            forged(&|r| r.max_score = 3.0),
            IntegrityError::MaxScore {
                stored: 3.0,
                sum: 2.0
            }
        );

        // On disk: `read` refuses it, naming the file, and keeps the record for listing.
        let d = tempfile::tempdir().unwrap();
        write(d.path(), &report("amy", 1, 1.0));
        let path = d.path().join("amy/task1.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("score = 1.0", "score = 2.0")).unwrap();
        let e = read(&path).unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "{}: the record of \"amy\" (task 1) is refused: its score 2 is not the sum of its scenarios' points, 1",
                path.display()
            )),
            "{e}"
        );
        let (records, skipped) = read_dir(d.path()).unwrap();
        assert!(records.is_empty());
        let (folder, rec) = skipped.into_iter().next().unwrap().into_refused().unwrap();
        assert_eq!((folder.as_str(), rec.report.score), ("amy", 2.0));
    }

    #[test]
    fn the_student_id_is_the_records_not_the_folders() {
        let rec = parse(
            &String::from_utf8(
                crate::report::toml::TomlReport
                    .render(&report("alice@uni.edu", 1, 1.0))
                    .unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(rec.student_id("alice_uni.edu"), "alice@uni.edu");
        let mut lacking = rec.clone();
        lacking.report.submission = String::new();
        assert_eq!(lacking.student_id("alice_uni.edu"), "alice_uni.edu");
    }
}
