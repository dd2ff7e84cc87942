//! What a batch tells its consumers about each submission, once it is done with it, and the
//! consumers of that: the batch runner emits one [`SubmissionFinished`] per submission (graded,
//! up to date, not started, not graded) to every [`BatchSink`], as the engine emits a grading's
//! events to its sinks. [`ErrorFiles`] keeps `task<N>.error.txt` beside the records;
//! [`super::progress::Progress`] prints the submission's line; [`Collected`] is the run's
//! summary.
//!
//! Guarantees: each sink gets each submission exactly once, in the order the batch finishes
//! them, error file first (so a printed line never announces a file not yet written); a sink
//! never fails the batch (an error file that cannot be written is also printed and counted in
//! the exit status); an error file is written only for a submission not started or not graded,
//! never over a record, and one older than a record a rerun found up to date is removed.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::Disposition;
use crate::report;
use crate::report::record;

/// How one submission of a batch ended.
#[derive(Debug, Clone, Copy)]
pub struct SubmissionFinished<'a> {
    /// The line's label: the student id, followed by the task when the batch grades several.
    pub label: &'a str,
    /// The student id (the submission's folder name under the reports).
    pub id: &'a str,
    /// The task graded.
    pub task: u32,
    /// How it ended.
    pub disposition: &'a Disposition,
    /// The full text of an infrastructure error whose disposition (and error file, meant for
    /// students) was redacted: shown to whoever runs the batch only.
    pub withheld: Option<&'a str>,
}

/// Receives the end of each submission of a batch. Implementations must be cheap.
pub trait BatchSink: Send + Sync {
    /// Called once per submission.
    fn submission_finished(&self, finished: &SubmissionFinished<'_>);
}

impl<T: BatchSink + ?Sized> BatchSink for &T {
    fn submission_finished(&self, finished: &SubmissionFinished<'_>) {
        (**self).submission_finished(finished)
    }
}

/// The path of a student's record for `task`.
pub fn record_path(out: &Path, id: &str, task: u32) -> PathBuf {
    out.join(report::sanitize(id))
        .join(format!("task{task}.toml"))
}

/// The path of a student's error file for `task`.
pub fn error_path(out: &Path, id: &str, task: u32) -> PathBuf {
    out.join(report::sanitize(id))
        .join(record::error_file_name(task))
}

/// Writes `task<N>.error.txt` for a submission not started or not graded; removes a stale one
/// beside a record found up to date.
pub struct ErrorFiles<'a> {
    out: &'a Path,
}

impl<'a> ErrorFiles<'a> {
    /// Error files under the reports folder `out`.
    pub fn new(out: &'a Path) -> Self {
        Self { out }
    }

    fn write(&self, id: &str, task: u32, what: &str, message: &str) {
        let text = record::error_text(
            id,
            &format!(
                "{what} at {}: {message}",
                humantime::format_rfc3339_seconds(std::time::SystemTime::now())
            ),
        );
        // Best effort: the problem is also printed and counted in the exit status.
        let _ = report::write_atomic(&error_path(self.out, id, task), text.as_bytes());
    }

    /// A rerun found the record up to date (same content hash, templates, spec, grader version
    /// and isolation): an error file from an attempt before that record was written is stale,
    /// and would otherwise sit next to a good record forever. One written after the record (a
    /// later attempt failed) is kept: exports report it.
    fn remove_superseded(&self, id: &str, task: u32) {
        let error = error_path(self.out, id, task);
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        if let (Some(e), Some(r)) = (modified(&error), modified(&record_path(self.out, id, task)))
            && e <= r
        {
            let _ = std::fs::remove_file(&error);
        }
    }
}

impl BatchSink for ErrorFiles<'_> {
    fn submission_finished(&self, f: &SubmissionFinished<'_>) {
        match f.disposition {
            Disposition::NotStarted(m) => self.write(f.id, f.task, "not started", m),
            Disposition::Infrastructure(m) => self.write(f.id, f.task, "not graded", m),
            Disposition::UpToDate { .. } => self.remove_superseded(f.id, f.task),
            // Its record was written by the grading's own sinks (which removed an error file).
            Disposition::Graded { .. } => {}
        }
    }
}

/// Collects every submission's label and disposition: the run's [`super::Summary`].
#[derive(Debug, Default)]
pub struct Collected(Mutex<Vec<(String, Disposition)>>);

impl Collected {
    /// The summary, sorted by label.
    pub fn into_summary(self) -> super::Summary {
        let mut results = self.0.into_inner().unwrap_or_else(|e| e.into_inner());
        results.sort_by(|a, b| a.0.cmp(&b.0));
        super::Summary { results }
    }
}

impl BatchSink for Collected {
    fn submission_finished(&self, f: &SubmissionFinished<'_>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((f.label.to_string(), f.disposition.clone()));
    }
}

/// Sends each submission's end to every sink, in order.
pub struct BatchFanout<'a>(pub Vec<&'a dyn BatchSink>);

impl BatchSink for BatchFanout<'_> {
    fn submission_finished(&self, f: &SubmissionFinished<'_>) {
        for s in &self.0 {
            s.submission_finished(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished<'a>(d: &'a Disposition) -> SubmissionFinished<'a> {
        SubmissionFinished {
            label: "bob · task 1",
            id: "bob",
            task: 1,
            disposition: d,
            withheld: None,
        }
    }

    #[test]
    fn error_files_for_submissions_not_started_or_not_graded_only() {
        let d = tempfile::tempdir().unwrap();
        let files = ErrorFiles::new(d.path());
        let path = error_path(d.path(), "bob", 1);
        let graded = Disposition::Graded {
            score: 1.0,
            max: 2.0,
            failed: 1,
            duration_ms: 5,
        };
        files.submission_finished(&finished(&graded));
        assert!(!path.exists());
        files.submission_finished(&finished(&Disposition::NotStarted("no executable".into())));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("not started at "), "{text}");
        assert!(text.contains(": no executable"), "{text}");
        files.submission_finished(&finished(&Disposition::Infrastructure("a bug".into())));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("not graded at ") && text.contains(": a bug"),
            "{text}"
        );
        // No record: an up-to-date disposition (which needs one) leaves the error alone.
        let up = Disposition::UpToDate {
            score: 1.0,
            max: 2.0,
        };
        files.submission_finished(&finished(&up));
        assert!(path.exists());
        // A record written after the error supersedes it.
        std::fs::write(record_path(d.path(), "bob", 1), "").unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(record_path(d.path(), "bob", 1))
            .unwrap()
            .set_modified(later)
            .unwrap();
        files.submission_finished(&finished(&up));
        assert!(!path.exists());
    }

    #[test]
    fn the_fanout_tells_every_sink_and_the_summary_is_sorted() {
        let (a, b) = (Collected::default(), Collected::default());
        let fan = BatchFanout(vec![&a, &b]);
        let d = Disposition::NotStarted("x".into());
        for label in ["zoe", "amy"] {
            fan.submission_finished(&SubmissionFinished {
                label,
                ..finished(&d)
            });
        }
        for c in [a, b] {
            let labels: Vec<String> = c.into_summary().results.into_iter().map(|r| r.0).collect();
            assert_eq!(labels, ["amy", "zoe"]);
        }
    }
}
