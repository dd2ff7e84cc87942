//! `grader merge`: combines report folders (e.g. one per `--shard`) into one.
//!
//! Guarantees: only records (`task<N>.toml`) and their companion files (`task<N>.junit.xml`,
//! `task<N>.error.txt`, also for students that have only an error file) are copied, each
//! atomically; inputs are never modified; when two inputs hold a record for the same student and
//! task, the one graded last (record timestamp, then the later input) wins and the conflict is
//! reported; an input that holds no record is an error (usually a wrong path).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::report::record::{self, RecordError};
use crate::report::{self, ReportError};

/// A merge that could not be done.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// An input could not be read.
    #[error(transparent)]
    Read(#[from] RecordError),
    /// Writing failed.
    #[error(transparent)]
    Write(#[from] ReportError),
    /// An input holds no records.
    #[error("{0} holds no grading records (<student>/task<N>.toml)")]
    Empty(PathBuf),
}

/// What a merge did.
#[derive(Debug, Default)]
pub struct Merged {
    /// Records written.
    pub records: usize,
    /// Human-readable conflicts (same student and task in several inputs).
    pub conflicts: Vec<String>,
    /// Files that were not valid records and were skipped.
    pub skipped: Vec<String>,
}

/// Merges `inputs` into `out`.
pub fn merge(inputs: &[PathBuf], out: &Path) -> Result<Merged, MergeError> {
    let mut merged = Merged::default();
    // (student folder, task) → (timestamp, input index, student folder path)
    let mut best: BTreeMap<(String, u32), (String, usize, PathBuf)> = BTreeMap::new();
    for (i, input) in inputs.iter().enumerate() {
        let (records, skipped) = record::read_dir(input)?;
        merged
            .skipped
            .extend(skipped.into_iter().map(|e| e.to_string()));
        if records.is_empty() {
            return Err(MergeError::Empty(input.clone()));
        }
        for (student, rec) in records {
            let key = (student.clone(), rec.report.task);
            let cand = (rec.report.timestamp.clone(), i, input.join(&student));
            match best.get(&key) {
                Some(prev) => {
                    merged.conflicts.push(format!(
                        "{student} task {}: in {} and {}; keeping the later grading",
                        key.1,
                        inputs[prev.1].display(),
                        input.display()
                    ));
                    if (&cand.0, cand.1) >= (&prev.0, prev.1) {
                        best.insert(key, cand);
                    }
                }
                None => {
                    best.insert(key, cand);
                }
            }
        }
    }
    // Students with only an error file (not started, or not graded) in some input.
    for input in inputs {
        let Ok(rd) = std::fs::read_dir(input) else {
            continue;
        };
        for sdir in rd.filter_map(Result::ok).map(|e| e.path()) {
            let Some(student) = sdir.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                continue;
            };
            let Ok(files) = std::fs::read_dir(&sdir) else {
                continue;
            };
            for f in files.filter_map(Result::ok).map(|e| e.path()) {
                let task = f
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix("task")?.strip_suffix(".error.txt"))
                    .and_then(|n| n.parse::<u32>().ok());
                if let Some(task) = task.filter(|t| !best.contains_key(&(student.clone(), *t))) {
                    let bytes = std::fs::read(&f).map_err(|source| RecordError::Io {
                        path: f.clone(),
                        source,
                    })?;
                    report::write_atomic(
                        &out.join(&student).join(format!("task{task}.error.txt")),
                        &bytes,
                    )?;
                }
            }
        }
    }
    for ((student, task), (_, _, dir)) in best {
        // Companions first, the record last: a half-done merge never shows a record without
        // its JUnit file.
        for name in [
            format!("task{task}.junit.xml"),
            format!("task{task}.error.txt"),
            format!("task{task}.toml"),
        ] {
            let src = dir.join(&name);
            let dst = out.join(&student).join(&name);
            match std::fs::read(&src) {
                Ok(bytes) => report::write_atomic(&dst, &bytes)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if dst.exists() && name.ends_with(".error.txt") {
                        let _ = std::fs::remove_file(&dst);
                    }
                }
                Err(source) => return Err(RecordError::Io { path: src, source }.into()),
            }
        }
        merged.records += 1;
    }
    Ok(merged)
}
