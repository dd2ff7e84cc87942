//! The report files of one grading, written by event sinks when the grading finishes:
//! `JunitFile` (`task<N>.junit.xml`, as the audience may see it), [`RecordFile`]
//! (`task<N>.toml`, the full record with its provenance) and [`ReportFiles`], both in that order
//! plus the removal of a stale `task<N>.error.txt`.
//!
//! Guarantees: files are written once, on `GradingFinished`, atomically (see
//! [`super::write_atomic`]); the JUnit file is written by a `JunitFile` behind a
//! [`Redacting`] sink, which passes it each outcome as its audience may see it, while the record
//! sink gets every event as it is; a sink keeps
//! the result of its writing for the caller ([`ReportFiles::finish`]), since a sink cannot fail
//! the grading that calls it; a grading that fails (no `GradingFinished`) writes nothing.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::junit::JunitReport;
use super::record::{Provenance, TomlRecord};
use super::{ReportError, report_dir, write_all};
use crate::audience::{Redacting, View};
use crate::events::{Event, EventSink};
use crate::verdict::GradeReport;

type Written = Mutex<Option<Result<Vec<PathBuf>, ReportError>>>;

fn take(written: &Written) -> Option<Result<Vec<PathBuf>, ReportError>> {
    written.lock().unwrap_or_else(|e| e.into_inner()).take()
}

fn keep(written: &Written, result: Result<Vec<PathBuf>, ReportError>) {
    *written.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
}

/// Writes `task<N>.junit.xml` under `out` from the final report it is given, unredacted: only
/// ever used behind a [`Redacting`] sink ([`ReportFiles`] holds it so), hence not public.
pub(crate) struct JunitFile<'a> {
    out: &'a Path,
    written: Written,
}

impl<'a> JunitFile<'a> {
    /// A JUnit writer for reports under `out`.
    pub(crate) fn new(out: &'a Path) -> Self {
        Self {
            out,
            written: Mutex::new(None),
        }
    }

    /// The file written (or why not); `None` before the grading finished.
    pub(crate) fn finish(&self) -> Option<Result<Vec<PathBuf>, ReportError>> {
        take(&self.written)
    }

    fn failed(&self) -> bool {
        matches!(
            &*self.written.lock().unwrap_or_else(|e| e.into_inner()),
            Some(Err(_))
        )
    }
}

impl EventSink for JunitFile<'_> {
    fn event(&self, event: &Event<'_>) {
        if let Event::GradingFinished(report) = event {
            keep(&self.written, write_all(self.out, report, &[&JunitReport]));
        }
    }
}

/// Writes `task<N>.toml` (the full record: report and provenance) under `out`.
pub struct RecordFile<'a> {
    out: &'a Path,
    provenance: &'a Provenance,
    written: Written,
}

impl<'a> RecordFile<'a> {
    /// A record writer for reports under `out`.
    pub fn new(out: &'a Path, provenance: &'a Provenance) -> Self {
        Self {
            out,
            provenance,
            written: Mutex::new(None),
        }
    }

    /// The file written (or why not); `None` before the grading finished.
    pub fn finish(&self) -> Option<Result<Vec<PathBuf>, ReportError>> {
        take(&self.written)
    }
}

impl EventSink for RecordFile<'_> {
    fn event(&self, event: &Event<'_>) {
        if let Event::GradingFinished(report) = event {
            keep(
                &self.written,
                write_all(self.out, report, &[&TomlRecord(self.provenance)]),
            );
        }
    }
}

/// Every file of a graded submission: JUnit (as `view` may see it), then the full record; once
/// both are written, an error file of an earlier attempt is removed (the record supersedes it).
pub struct ReportFiles<'a> {
    junit: Redacting<'a, JunitFile<'a>>,
    record: RecordFile<'a>,
    out: &'a Path,
}

impl<'a> ReportFiles<'a> {
    /// The files of a grading under `out`.
    pub fn new(out: &'a Path, provenance: &'a Provenance, view: View) -> Self {
        Self {
            junit: Redacting::new(JunitFile::new(out), &provenance.policies, view),
            record: RecordFile::new(out, provenance),
            out,
        }
    }

    /// The files written, JUnit first (or the first failure); `None` before the grading
    /// finished.
    pub fn finish(&self) -> Option<Result<Vec<PathBuf>, ReportError>> {
        let mut written = match self.junit.inner().finish()? {
            Ok(w) => w,
            Err(e) => return Some(Err(e)),
        };
        match self.record.finish()? {
            Ok(w) => written.extend(w),
            Err(e) => return Some(Err(e)),
        }
        Some(Ok(written))
    }

    fn remove_stale_error(&self, report: &GradeReport) {
        let stale = report_dir(self.out, report).join(super::record::error_file_name(report.task));
        if stale.exists() {
            let _ = std::fs::remove_file(stale);
        }
    }
}

impl EventSink for ReportFiles<'_> {
    fn event(&self, event: &Event<'_>) {
        self.junit.event(event);
        if self.junit.inner().failed() {
            // The record is written only after the JUnit file (as before sinks).
            return;
        }
        self.record.event(event);
        if let Event::GradingFinished(report) = event
            && matches!(
                &*self
                    .record
                    .written
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()),
                Some(Ok(_))
            )
        {
            self.remove_stale_error(report);
        }
    }
}

/// Writes a graded submission's files at once (what [`ReportFiles`] does on `GradingFinished`).
pub fn write_graded(
    out: &Path,
    report: &GradeReport,
    provenance: &Provenance,
    view: View,
) -> Result<Vec<PathBuf>, ReportError> {
    let files = ReportFiles::new(out, provenance, view);
    files.event(&Event::GradingFinished(report));
    files.finish().unwrap_or_else(|| Ok(Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic;

    #[test]
    fn files_are_written_when_the_grading_finishes_junit_redacted_record_whole() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path();
        let report = synthetic::mixed("bob");
        let provenance = synthetic::provenance();
        let stale = out.join("bob/task1.error.txt");
        std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
        std::fs::write(&stale, "not started: earlier\n").unwrap();
        let files = ReportFiles::new(out, &provenance, View::default());
        assert!(files.finish().is_none());
        for o in &report.scenarios {
            files.event(&Event::ScenarioFinished(o));
        }
        // Nothing before the grading finishes.
        assert!(!out.join("bob/task1.toml").exists() && stale.exists());
        files.event(&Event::GradingFinished(&report));
        let written = files.finish().unwrap().unwrap();
        let names: Vec<_> = written
            .iter()
            .map(|p| p.strip_prefix(out).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["bob/task1.junit.xml", "bob/task1.toml"]);
        assert!(!stale.exists(), "a record supersedes an older error file");
        let junit = std::fs::read_to_string(&written[0]).unwrap();
        assert!(!junit.contains("secret"), "{junit}");
        assert!(junit.contains("hidden scenario 1"), "{junit}");
        let record = crate::report::record::read(&written[1]).unwrap();
        assert_eq!(record.report, report);
        assert_eq!(record.provenance, provenance);
    }

    #[test]
    fn instructors_get_everything_in_junit_too() {
        let d = tempfile::tempdir().unwrap();
        let provenance = synthetic::provenance();
        let junit = Redacting::new(
            JunitFile::new(d.path()),
            &provenance.policies,
            View::INSTRUCTOR,
        );
        junit.event(&Event::GradingFinished(&synthetic::mixed("bob")));
        let written = junit.inner().finish().unwrap().unwrap();
        let text = std::fs::read_to_string(&written[0]).unwrap();
        assert!(
            text.contains("secret-nonce") && text.contains("secret-retry"),
            "{text}"
        );
    }

    #[test]
    fn a_failed_write_is_kept_for_the_caller_and_no_record_follows() {
        let d = tempfile::tempdir().unwrap();
        // A file where the submission's folder must go.
        std::fs::write(d.path().join("bob"), "").unwrap();
        let provenance = synthetic::provenance();
        let files = ReportFiles::new(d.path(), &provenance, View::default());
        files.event(&Event::GradingFinished(&synthetic::mixed("bob")));
        assert!(matches!(files.finish(), Some(Err(ReportError::Io { .. }))));
        let e = write_graded(
            d.path(),
            &synthetic::mixed("bob"),
            &provenance,
            View::default(),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("cannot write reports to"), "{e}");
    }
}
