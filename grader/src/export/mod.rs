//! Class-level exports computed from the TOML records of a reports folder: CSV for gradebooks,
//! a Canvas gradebook import built on the course's roster, Gradescope's `results.json`, GitHub Classroom's runner result, a self-contained HTML summary
//! and a Markdown summary (for CI job summaries). All formats sit behind one trait,
//! [`ClassExporter`], and render a [`Class`].
//!
//! Guarantees: exporting never runs student code; a [`Class`] is built through the audience
//! filter ([`crate::audience::redact`]), so an exporter only ever sees what its reader may see;
//! a student's id is the one the records name (`alice@uni.edu`), not the folder it was made safe
//! as; a record kept although the latest attempt failed, and a student who was never graded, are
//! warned about by every format ([`Class::warnings`]), never dropped silently; a record whose
//! numbers disagree ([`Record::verify`]: a stored score that is not the sum of its scenarios'
//! points, points above a scenario's maximum, a maximum that is not the sum of the maxima) is
//! never exported: its task counts as not graded, with a warning naming the file
//! ([`Student::refused`]); outputs are deterministic for the same records and error files
//! (sorted by student id and task; no clock). Text from names and ids in CSV-like formats is
//! neutralised against spreadsheet formulas ([`crate::safe_text::spreadsheet_cell`]).

pub mod canvas;
pub mod classroom;
pub mod csv;
pub mod gradescope;
pub mod markdown;
pub mod summary;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::audience::{Policy, View};
use crate::report::record::{self, Record};
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
    /// A per-student format was asked for a student none of whose records can be exported
    /// (refused, or only error files).
    #[error(
        "the {format} format describes one student, but {ids} has no graded record to export (see the warnings above)"
    )]
    NotGraded {
        /// Which format.
        format: &'static str,
        /// The students asked for.
        ids: String,
    },
    /// The Canvas export was asked for without a roster.
    #[error(
        "canvas export: needs --roster FILE: the course's gradebook CSV from Canvas (Grades → Export)"
    )]
    NoRoster,
    /// The Canvas roster cannot be read.
    #[error("canvas export: cannot read the roster {}", .path.display())]
    RosterUnreadable {
        /// The roster file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The Canvas roster is not a Canvas gradebook export.
    #[error("canvas export: {} is not a Canvas gradebook export: {why}", .path.display())]
    NotARoster {
        /// The roster file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// Rendering failed: what the format cannot express, or the writer's error.
    #[error("cannot render the {format} export")]
    Render {
        /// Which format.
        format: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
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
    /// Who the written export covers, for the "Exported ..." line: `3 student(s)` by default.
    fn covers(&self, class: &Class) -> String {
        format!("{} student(s)", class.students.len())
    }
}

/// The exporter of a format (the Canvas one reads and checks the roster). Its warnings start
/// with the class's own ([`Class::warnings`]: stale records, students never graded), whatever the
/// format.
pub fn exporter(
    format: ExportFormat,
    options: &Options,
) -> Result<Box<dyn ClassExporter>, ExportError> {
    Ok(Box::new(WithClassWarnings(format_exporter(
        format, options,
    )?)))
}

/// Adds the class's warnings to a format's own.
struct WithClassWarnings(Box<dyn ClassExporter>);

impl ClassExporter for WithClassWarnings {
    fn format(&self) -> &'static str {
        self.0.format()
    }
    fn default_file_name(&self) -> &'static str {
        self.0.default_file_name()
    }
    fn per_student(&self) -> bool {
        self.0.per_student()
    }
    fn render(&self, class: &Class) -> Result<Vec<u8>, ExportError> {
        self.0.render(class)
    }
    fn warnings(&self, class: &Class) -> Vec<String> {
        let mut all = class.warnings();
        all.extend(self.0.warnings(class));
        all
    }
    fn covers(&self, class: &Class) -> String {
        self.0.covers(class)
    }
}

fn format_exporter(
    format: ExportFormat,
    options: &Options,
) -> Result<Box<dyn ClassExporter>, ExportError> {
    Ok(match format {
        ExportFormat::Csv => Box::new(csv::Csv {
            id_column: options.id_column.clone(),
        }),
        ExportFormat::Canvas => {
            let path = options.roster.as_ref().ok_or(ExportError::NoRoster)?;
            let text =
                std::fs::read_to_string(path).map_err(|source| ExportError::RosterUnreadable {
                    path: path.clone(),
                    source,
                })?;
            let roster = canvas::Roster::parse(&text).map_err(|why| ExportError::NotARoster {
                path: path.clone(),
                why,
            })?;
            Box::new(canvas::Canvas {
                roster,
                match_column: options.match_column.clone(),
                assignment: options.assignment.clone(),
            })
        }
        ExportFormat::Gradescope => Box::new(gradescope::Gradescope),
        ExportFormat::Classroom => Box::new(classroom::Classroom),
        ExportFormat::Summary => Box::new(summary::Summary),
        ExportFormat::Markdown => Box::new(markdown::Markdown),
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
    /// Student id: the records' `submission` (e.g. `alice@uni.edu`), or the report folder name
    /// for records that lack it or disagree (and for two folders claiming the same id).
    pub id: String,
    /// The report folder's name (the id made safe as a folder name).
    pub folder: String,
    /// Reports, sorted by task, already redacted for the audience.
    pub reports: Vec<GradeReport>,
    /// Per task, the scenario policies recorded with the report.
    pub policies: BTreeMap<u32, BTreeMap<String, Policy>>,
    /// Tasks whose latest attempt was not graded although an older record exists (the report
    /// shown is that last good grading), with why.
    pub failed_attempts: BTreeMap<u32, String>,
    /// Tasks attempted but never graded (only an error file, or a refused record), with why.
    pub not_graded: BTreeMap<u32, String>,
    /// Tasks whose record was refused ([`Record::verify`]), with the file and what disagrees.
    /// Each is in [`Student::not_graded`] too: a refused record counts as not graded.
    pub refused: BTreeMap<u32, String>,
}

impl Student {
    fn empty(folder: String) -> Self {
        Self {
            id: folder.clone(),
            folder,
            reports: Vec::new(),
            policies: BTreeMap::new(),
            failed_attempts: BTreeMap::new(),
            not_graded: BTreeMap::new(),
            refused: BTreeMap::new(),
        }
    }

    /// A short status for a row of a class table: `graded`, `not graded` (no record of any
    /// exported task), or what is missing (`task 2 not graded`, `task 1 from an older record`,
    /// joined by `; `).
    pub fn status(&self, tasks: &[TaskColumns]) -> String {
        if self.reports.is_empty() {
            return "not graded".into();
        }
        let parts: Vec<String> = tasks
            .iter()
            .filter_map(|t| {
                if self.task(t.task).is_none() {
                    self.not_graded
                        .contains_key(&t.task)
                        .then(|| format!("task {} not graded", t.task))
                } else {
                    self.failed_attempts
                        .contains_key(&t.task)
                        .then(|| format!("task {} from an older record", t.task))
                }
            })
            .collect();
        if parts.is_empty() {
            "graded".into()
        } else {
            parts.join("; ")
        }
    }

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
    /// Students with at least one record, sorted by id.
    pub students: Vec<Student>,
    /// Students of the reports folder with no record of any exported task, only error files
    /// (they could not be started, or their grading failed): no reports, their
    /// [`Student::not_graded`] says why. Sorted by id.
    pub not_graded: Vec<Student>,
    /// Tasks present in any report, sorted.
    pub tasks: Vec<TaskColumns>,
    /// Who the export is for.
    pub view: View,
}

impl Class {
    /// Builds the class from records (as [`crate::report::record::read_dir`] returns them:
    /// report folder name and record), seen through `view`; `filtered` says that the records
    /// were narrowed to some students (`export --student`).
    ///
    /// Besides the records themselves it looks at the error files beside them: a record whose
    /// latest attempt failed is marked ([`Student::failed_attempts`]), and error files of an
    /// exported task without a record are listed ([`Student::not_graded`], and the students with
    /// no record at all in [`Class::not_graded`]). When `filtered`, only the error files of the
    /// students of `records` count: the others' are not about this export. Dot-folders
    /// (`.bak/`) are not students ([`crate::report::record::student_folders`]).
    ///
    /// Every record is checked here ([`Record::verify`]), whoever read it: one that fails is not
    /// exported, and its task is listed as not graded ([`Student::refused`]). Pass the records
    /// that [`crate::report::record::read`] refused too
    /// ([`crate::report::record::RecordError::into_refused`]), so that their students are listed.
    pub fn with_student_filter(records: Vec<(String, Record)>, view: View, filtered: bool) -> Self {
        Self::build(records, view, filtered)
    }

    fn build(records: Vec<(String, Record)>, view: View, narrowed: bool) -> Self {
        let mut students: BTreeMap<String, Student> = BTreeMap::new();
        let mut tasks: BTreeMap<u32, TaskColumns> = BTreeMap::new();
        // Reports folders the records came from (normally one).
        let dirs: BTreeSet<PathBuf> = records.iter().filter_map(|(_, r)| reports_dir(r)).collect();
        // Folder → the ids its records name.
        let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let (records, refused): (Vec<_>, Vec<_>) = records
            .into_iter()
            .map(|(folder, rec)| {
                let verdict = rec.verify();
                (folder, rec, verdict)
            })
            .partition(|(_, _, verdict)| verdict.is_ok());
        for (folder, rec, _) in records {
            ids.entry(folder.clone())
                .or_default()
                .insert(rec.student_id(&folder));
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
            let st = students
                .entry(folder.clone())
                .or_insert_with(|| Student::empty(folder));
            if let Some(attempt) = &rec.failed_attempt {
                st.failed_attempts
                    .insert(shown.task, attempt.reason.clone());
            }
            st.policies
                .insert(shown.task, rec.provenance.policies.clone());
            st.reports.push(shown);
        }
        let mut not_graded: BTreeMap<String, Student> = BTreeMap::new();
        // Refused records: their tasks are not graded, whatever they claim.
        for (folder, rec, verdict) in refused {
            let Err(why) = verdict else { continue };
            let task = rec.report.task;
            let file = rec
                .source
                .as_deref()
                .map_or_else(|| format!("task{task}.toml"), |p| p.display().to_string());
            let reason = format!("record refused ({file}): {why}");
            let st = match students.get_mut(&folder) {
                Some(st) => st,
                None => not_graded.entry(folder.clone()).or_insert_with(|| {
                    // The id the record names, unless it does not belong in this folder.
                    let mut st = Student::empty(folder.clone());
                    let id = rec.student_id(&folder);
                    if crate::report::sanitize(&id) == folder {
                        st.id = id;
                    }
                    st
                }),
            };
            st.refused.insert(task, reason.clone());
            st.not_graded.insert(task, reason);
        }
        // Never-graded tasks, from the error files of the exported tasks.
        for dir in &dirs {
            for ng in record::not_graded(dir) {
                if !tasks.contains_key(&ng.task) {
                    continue;
                }
                if let Some(st) = students.get_mut(&ng.folder) {
                    st.not_graded.insert(ng.task, ng.attempt.reason.clone());
                } else if let Some(st) = not_graded.get_mut(&ng.folder) {
                    // A student whose only records were refused.
                    st.not_graded.insert(ng.task, ng.attempt.reason);
                } else if !narrowed {
                    let st = not_graded
                        .entry(ng.folder.clone())
                        .or_insert_with(|| Student::empty(ng.folder.clone()));
                    st.id = ng.student_id();
                    st.not_graded.insert(ng.task, ng.attempt.reason);
                }
            }
        }
        // The id a folder's records name; the folder name when they disagree, or when several
        // folders name the same id (copied folders): never one student's row for two folders.
        let only = |named: &BTreeSet<String>| named.first().filter(|_| named.len() == 1).cloned();
        let mut claimed: BTreeMap<String, usize> = BTreeMap::new();
        for one in ids.values().filter_map(only) {
            *claimed.entry(one).or_default() += 1;
        }
        for (folder, st) in &mut students {
            if let Some(one) = ids.get(folder).and_then(only)
                && claimed.get(&one) == Some(&1)
            {
                st.id = one;
            }
        }
        let by_id = |a: &Student, b: &Student| a.id.cmp(&b.id).then(a.folder.cmp(&b.folder));
        let mut students: Vec<Student> = students.into_values().collect();
        for s in &mut students {
            s.reports.sort_by_key(|r| r.task);
        }
        students.sort_by(by_id);
        let mut not_graded: Vec<Student> = not_graded.into_values().collect();
        not_graded.sort_by(by_id);
        Self {
            students,
            not_graded,
            tasks: tasks.into_values().collect(),
            view,
        }
    }

    /// What the reader of any export should know: records refused because their numbers
    /// disagree (one warning per record, naming the file), students whose latest attempt was not
    /// graded (their last good record is exported), and students who were never graded.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for s in self.students.iter().chain(&self.not_graded) {
            for (task, why) in &s.refused {
                warnings.push(format!(
                    "{} task {task} is not graded: {why}; the record was changed after grading or is corrupt, so its score is not exported: regrade the student (a rerun of grader batch regrades it)",
                    crate::safe_text::terminal(&s.id)
                ));
            }
        }
        let stale = listing(self.students.iter().map(|s| (&s.id, &s.failed_attempts)));
        if !stale.is_empty() {
            warnings.push(format!(
                "{} student task(s) exported from an older record because the latest attempt was not graded:\n{}",
                stale.len(),
                stale.join("\n")
            ));
        }
        // Refused records were warned about above.
        let errors_only: Vec<(&String, BTreeMap<u32, String>)> = self
            .students
            .iter()
            .chain(&self.not_graded)
            .map(|s| {
                let only = s
                    .not_graded
                    .iter()
                    .filter(|(t, _)| !s.refused.contains_key(t))
                    .map(|(t, why)| (*t, why.clone()))
                    .collect();
                (&s.id, only)
            })
            .collect();
        let never = listing(errors_only.iter().map(|(id, tasks)| (*id, tasks)));
        if !never.is_empty() {
            warnings.push(format!(
                "{} student task(s) never graded (only an error file, no record; listed with an empty score):\n{}",
                never.len(),
                never.join("\n")
            ));
        }
        warnings
    }

    /// Sum of the tasks' maximum scores.
    pub fn max_total(&self) -> f64 {
        self.tasks.iter().map(|t| t.max).sum()
    }

    /// The single student of a per-student format.
    pub fn one(&self, format: &'static str) -> Result<&Student, ExportError> {
        match self.students.as_slice() {
            [one] => Ok(one),
            [] if !self.not_graded.is_empty() => Err(ExportError::NotGraded {
                format,
                ids: self
                    .not_graded
                    .iter()
                    .map(|s| s.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
            all => Err(ExportError::NotOneStudent {
                format,
                count: all.len(),
            }),
        }
    }
}

/// `- id (task N: first line of why)` for every task of every student: one line each, for a
/// warning that lists them below its first line.
fn listing<'a>(
    students: impl Iterator<Item = (&'a String, &'a BTreeMap<u32, String>)>,
) -> Vec<String> {
    students
        .flat_map(|(id, tasks)| {
            let id = crate::safe_text::terminal(id);
            tasks.iter().map(move |(t, why)| {
                format!(
                    "  - {id} (task {t}: {})",
                    crate::safe_text::terminal(first_line(why))
                )
            })
        })
        .collect()
}

/// The reports folder a record was read from (`<dir>/<student>/task<N>.toml`).
fn reports_dir(rec: &Record) -> Option<PathBuf> {
    Some(rec.source.as_deref()?.parent()?.parent()?.to_path_buf())
}

/// The first line of a (possibly multi-line) reason.
pub(crate) fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("").trim_end()
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::audience::Audience;
    use crate::report::record::test_support::{self, report, set_mtime};
    use crate::report::record::{error_text, read, read_dir};

    fn write(out: &Path, submission: &str, task: u32, points: f64) {
        test_support::write(out, &report(submission, task, points));
    }

    fn view() -> View {
        View {
            audience: Audience::Instructor,
            after_due: false,
        }
    }

    fn class(out: &Path) -> Class {
        Class::with_student_filter(read_dir(out).unwrap().0, view(), false)
    }

    #[test]
    fn backups_and_corrupt_records_hide_no_never_graded_student() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path();
        write(out, "amy", 1, 2.0);
        // fay could not be started: only an error file.
        std::fs::create_dir(out.join("fay")).unwrap();
        std::fs::write(
            out.join("fay/task1.error.txt"),
            error_text("fay", "not started at T: no executable in fay"),
        )
        .unwrap();
        // A backup of the reports in a dot-folder (a record, and an error file of its own), and
        // a record that is not one.
        std::fs::create_dir(out.join(".bak")).unwrap();
        std::fs::copy(out.join("amy/task1.toml"), out.join(".bak/task1.toml")).unwrap();
        std::fs::write(out.join(".bak/task1.error.txt"), "not started: old\n").unwrap();
        std::fs::create_dir(out.join("zed")).unwrap();
        std::fs::write(out.join("zed/task1.toml"), "garbage = [\n").unwrap();
        let (records, skipped) = read_dir(out).unwrap();
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        let folders: Vec<&str> = records.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(folders, ["amy"]);

        // Told there is no filter: fay is warned about and has her row in the summary; the
        // backup's error file is no student's.
        {
            let c = Class::with_student_filter(records.clone(), view(), false);
            let ng: Vec<&str> = c.not_graded.iter().map(|s| s.id.as_str()).collect();
            assert_eq!(ng, ["fay"]);
            let w = exporter(ExportFormat::Summary, &Options::default())
                .unwrap()
                .warnings(&c);
            assert_eq!(w.len(), 1, "{w:?}");
            assert!(
                w[0].contains("never graded")
                    && w[0].contains("fay (task 1: not started at T: no executable in fay)"),
                "{w:?}"
            );
            let html = String::from_utf8(summary::Summary.render(&c).unwrap()).unwrap();
            assert!(html.contains("1 students · 1 not graded"), "{html}");
            assert!(html.contains("<td>fay</td>"), "{html}");
        }

        // Told the records were narrowed to amy: fay's error file is not about this export.
        let c = Class::with_student_filter(records, view(), true);
        assert!(c.not_graded.is_empty() && c.warnings().is_empty());
    }

    #[test]
    fn ids_come_from_the_records_not_the_folders() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "alice@uni.edu", 1, 2.0);
        assert!(d.path().join("alice_uni.edu/task1.toml").exists());
        let c = class(d.path());
        assert_eq!(c.students[0].id, "alice@uni.edu");
        assert_eq!(c.students[0].folder, "alice_uni.edu");
        let csv = exporter(ExportFormat::Csv, &Options::default())
            .unwrap()
            .render(&c)
            .unwrap();
        let csv = String::from_utf8(csv).unwrap();
        assert!(
            csv.lines().nth(1).unwrap().starts_with("alice@uni.edu,"),
            "{csv}"
        );
    }

    #[test]
    fn a_folder_whose_records_disagree_or_two_folders_with_one_id_use_folder_names() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "jo smith", 1, 1.0);
        // A record of another task in the same folder names another student.
        let mut other = report("jo_smith", 2, 1.0);
        other.submission = "jo_smith".into();
        test_support::write(d.path(), &other);
        // A copied folder: both name "amy".
        write(d.path(), "amy", 1, 2.0);
        let copy = d.path().join("amy-old");
        std::fs::create_dir(&copy).unwrap();
        std::fs::copy(d.path().join("amy/task1.toml"), copy.join("task1.toml")).unwrap();
        let ids: Vec<String> = class(d.path()).students.into_iter().map(|s| s.id).collect();
        assert_eq!(ids, ["amy", "amy-old", "jo_smith"]);
    }

    #[test]
    fn stale_records_and_never_graded_students_are_marked_and_warned_about() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path();
        write(out, "amy", 1, 2.0);
        write(out, "ben", 1, 1.0);
        // ben resubmitted something that cannot be started: the record stays, the error is newer.
        set_mtime(&out.join("ben/task1.toml"), 60);
        std::fs::write(
            out.join("ben/task1.error.txt"),
            error_text("ben", "not started at T: no executable in ben"),
        )
        .unwrap();
        // cat@x never got a record.
        std::fs::create_dir(out.join("cat_x")).unwrap();
        std::fs::write(
            out.join("cat_x/task1.error.txt"),
            error_text("cat@x", "not started at T: 2 executables"),
        )
        .unwrap();
        // An error of a task that is not exported is not about this class.
        std::fs::create_dir(out.join("dan")).unwrap();
        std::fs::write(out.join("dan/task2.error.txt"), "not started\n").unwrap();

        let c = class(out);
        assert_eq!(c.students.len(), 2);
        assert_eq!(
            c.students[1].failed_attempts.get(&1).map(String::as_str),
            Some("not started at T: no executable in ben")
        );
        let ng: Vec<&str> = c.not_graded.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ng, ["cat@x"]);
        let w = c.warnings();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].contains("ben (task 1: not started at T: no executable in ben)"),
            "{w:?}"
        );
        assert!(
            w[1].contains("cat@x (task 1: not started at T: 2 executables)"),
            "{w:?}"
        );
        // Every format warns.
        let e = exporter(ExportFormat::Markdown, &Options::default()).unwrap();
        assert_eq!(e.warnings(&c), w);

        let html = String::from_utf8(summary::Summary.render(&c).unwrap()).unwrap();
        assert!(html.contains("2 students · 1 not graded"), "{html}");
        assert!(html.contains("not graded<b class=\"fail\">1</b>"));
        assert!(html.contains("task 1: latest attempt not graded: not started at T"));
        assert!(html.contains("<td>cat@x</td>"));
        assert!(html.contains("not graded</span>: task 1: not started at T: 2 executables"));
        // Not counted as a zero: the mean is over the graded students.
        assert!(html.contains("mean<b>75.0%</b>"), "{html}");

        // Narrowed to one student (export --student amy): others' error files do not count.
        let only_amy: Vec<_> = read_dir(out)
            .unwrap()
            .0
            .into_iter()
            .filter(|(f, _)| f == "amy")
            .collect();
        let c = Class::with_student_filter(only_amy, view(), true);
        assert!(c.not_graded.is_empty() && c.warnings().is_empty());
    }

    #[test]
    fn refused_records_are_never_exported_and_count_as_not_graded() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path();
        write(out, "amy", 1, 2.0);
        write(out, "ben", 1, 1.0);
        write(out, "ben", 2, 1.0);
        // ben's task 1 record claims full marks; its scenario still says 1 point.
        let path = out.join("ben/task1.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("score = 1.0", "score = 2.0")).unwrap();
        let (records, skipped) = read_dir(out).unwrap();
        assert_eq!(records.len(), 2);
        let refused: Vec<_> = skipped
            .into_iter()
            .map(|e| e.into_refused().unwrap())
            .collect();
        let c = Class::with_student_filter([records, refused].concat(), view(), false);
        let ben = c.students.iter().find(|s| s.id == "ben").unwrap();
        assert_eq!(ben.total(), 1.0, "only task 2 counts");
        assert!(ben.task(1).is_none());
        assert!(
            ben.not_graded[&1]
                .starts_with(&format!("record refused ({}): its score 2", path.display())),
            "{:?}",
            ben.not_graded
        );
        let w = c.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("ben task 1 is not graded: record refused (")
                && w[0].contains("changed after grading"),
            "{w:?}"
        );
        // A record that was never read from a file (parsed text) is checked here too.
        let mut forged = read(&out.join("amy/task1.toml")).unwrap();
        forged.report.scenarios[0].points = 5.0;
        forged.report.score = 5.0;
        let c = Class::with_student_filter(vec![("amy".into(), forged)], view(), false);
        assert!(c.students.is_empty());
        assert_eq!(c.not_graded.len(), 1);
        assert_eq!(c.not_graded[0].id, "amy");
        let html = String::from_utf8(summary::Summary.render(&c).unwrap()).unwrap();
        assert!(html.contains("0 students · 1 not graded"), "{html}");
    }
}
