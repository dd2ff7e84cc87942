//! `grader merge`: combines report folders (e.g. one per `--shard`) into one.
//!
//! Guarantees: only records (`task<N>.toml`) and their companion files (`task<N>.junit.xml`,
//! `task<N>.error.txt`, also for students that have only an error file) are copied, each
//! atomically and with its modification time, so an error file newer than its record (the
//! latest attempt failed) stays newer; inputs are never modified; when two inputs hold a record
//! for the same student and task, the one graded last (record timestamp, then the later input)
//! wins and the conflict is reported; two inputs whose records in the same report folder name
//! different students (`jo smith` and `jo_smith` both map to `jo_smith/`) are refused before
//! anything is written; an input that holds only error files (a shard whose students could
//! none be started) is merged with a warning; an input that holds neither records nor error
//! files is an error (usually a wrong path); a record that is refused ([`record::Record::verify`]:
//! its stored score or maximum is not what its scenarios add up to, or a scenario has more
//! points than its maximum) is never copied: it is reported in [`Merged::skipped`], naming the
//! file, and unless another input holds a good record of that student and task, the merged
//! folder gets a `task<N>.error.txt` saying why, so exports list the task as not graded.

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
    #[error(
        "{0} holds no grading records (<student>/task<N>.toml) and no error files (<student>/task<N>.error.txt)"
    )]
    Empty(PathBuf),
    /// Records of different students share a report folder.
    #[error("records of different students share a report folder, nothing merged: {}", .0.join("; "))]
    SharedFolder(Vec<String>),
}

/// What a merge did.
#[derive(Debug, Default)]
pub struct Merged {
    /// Records written.
    pub records: usize,
    /// Human-readable warnings: conflicts (same student and task in several inputs), inputs that
    /// hold only error files.
    pub conflicts: Vec<String>,
    /// Files that were not valid records and were skipped.
    pub skipped: Vec<String>,
}

/// Copies `src` to `dst` atomically, keeping its modification time.
fn copy(src: &Path, dst: &Path) -> Result<(), MergeError> {
    let bytes = std::fs::read(src).map_err(|source| RecordError::Io {
        path: src.to_path_buf(),
        source,
    })?;
    report::write_atomic(dst, &bytes)?;
    if let Ok(mtime) = std::fs::metadata(src).and_then(|m| m.modified()) {
        // Best effort: only the order of a record and its error file depends on it.
        let _ = std::fs::File::options()
            .write(true)
            .open(dst)
            .and_then(|f| f.set_modified(mtime));
    }
    Ok(())
}

/// Merges `inputs` into `out`.
pub fn merge(inputs: &[PathBuf], out: &Path) -> Result<Merged, MergeError> {
    let mut merged = Merged::default();
    // (student folder, task) → (timestamp, input index, student folder path)
    let mut best: BTreeMap<(String, u32), (String, usize, PathBuf)> = BTreeMap::new();
    // student folder → (student id its records name, input index)
    let mut owner: BTreeMap<String, (String, usize)> = BTreeMap::new();
    let mut shared = Vec::new();
    let mut errors = Vec::new();
    // (student folder, task) → (student id, why) of refused records.
    let mut refused: BTreeMap<(String, u32), (String, String)> = BTreeMap::new();
    for (i, input) in inputs.iter().enumerate() {
        let (records, skipped) = record::read_dir(input)?;
        let mut any_refused = false;
        for e in skipped {
            merged.skipped.push(crate::error_chain::chain(&e));
            let why = crate::error_chain::chain(&e);
            if let Ok((folder, rec)) = e.into_refused() {
                any_refused = true;
                let id = rec.student_id(&folder);
                refused.insert((folder, rec.report.task), (id, why));
            }
        }
        let input_errors = record::error_files(input);
        if records.is_empty() {
            if input_errors.is_empty() && !any_refused {
                return Err(MergeError::Empty(input.clone()));
            }
            merged.conflicts.push(format!(
                "{} holds no grading records, only the error files of {} student task(s) that were not graded; copying those",
                input.display(),
                input_errors.len()
            ));
        }
        errors.extend(input_errors);
        for (student, rec) in records {
            let id = rec.student_id(&student);
            match owner.get(&student) {
                Some((other, j)) if other != &id => shared.push(format!(
                    "{student}/ holds {other:?} in {} and {id:?} in {}",
                    inputs[*j].display(),
                    input.display()
                )),
                Some(_) => {}
                None => {
                    owner.insert(student.clone(), (id.clone(), i));
                }
            }
            let key = (student.clone(), rec.report.task);
            let cand = (rec.report.timestamp.clone(), i, input.join(&student));
            match best.get(&key) {
                Some(prev) => {
                    merged.conflicts.push(format!(
                        "{} task {}: in {} and {}; keeping the later grading",
                        crate::safe_text::terminal(&id),
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
    if !shared.is_empty() {
        shared.dedup();
        return Err(MergeError::SharedFolder(shared));
    }
    // Students with only an error file (not started, or not graded) in some input.
    for (student, task, f) in &errors {
        let key = (student.clone(), *task);
        if !best.contains_key(&key) && !refused.contains_key(&key) {
            copy(f, &out.join(student).join(record::error_file_name(*task)))?;
        }
    }
    // Students whose only record of a task was refused: not graded, and the error file says why.
    for ((student, task), (id, why)) in &refused {
        if !best.contains_key(&(student.clone(), *task)) {
            let text = record::error_text(id, &format!("not graded: {why}"));
            report::write_atomic(
                &out.join(student).join(record::error_file_name(*task)),
                text.as_bytes(),
            )?;
        }
    }
    for ((student, task), (_, _, dir)) in best {
        // Companions first, the record last: a half-done merge never shows a record without
        // its JUnit file.
        for name in [
            format!("task{task}.junit.xml"),
            record::error_file_name(task),
            format!("task{task}.toml"),
        ] {
            let src = dir.join(&name);
            let dst = out.join(&student).join(&name);
            match std::fs::metadata(&src) {
                Ok(_) => copy(&src, &dst)?,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::record::test_support::{self, report, set_mtime};

    fn write(out: &Path, submission: &str) {
        test_support::write(out, &report(submission, 1, 1.0));
    }

    #[test]
    fn a_shard_of_error_files_only_is_merged_with_a_warning() {
        let d = tempfile::tempdir().unwrap();
        let (a, b, empty, out) = (
            d.path().join("a"),
            d.path().join("b"),
            d.path().join("empty"),
            d.path().join("out"),
        );
        write(&a, "amy");
        std::fs::create_dir_all(b.join("ben")).unwrap();
        std::fs::write(b.join("ben/task1.error.txt"), "not started: x\n").unwrap();
        std::fs::create_dir_all(&empty).unwrap();
        let m = merge(&[a.clone(), b.clone()], &out).unwrap();
        assert_eq!(m.records, 1);
        assert!(
            m.conflicts
                .iter()
                .any(|c| c.contains("holds no grading records")),
            "{:?}",
            m.conflicts
        );
        assert_eq!(
            std::fs::read_to_string(out.join("ben/task1.error.txt")).unwrap(),
            "not started: x\n"
        );
        assert!(matches!(
            merge(&[a, empty], &d.path().join("out2")),
            Err(MergeError::Empty(_))
        ));
    }

    #[test]
    fn dot_folders_are_not_merged() {
        let d = tempfile::tempdir().unwrap();
        let (a, out) = (d.path().join("a"), d.path().join("out"));
        write(&a, "amy");
        std::fs::create_dir_all(a.join(".bak")).unwrap();
        std::fs::copy(a.join("amy/task1.toml"), a.join(".bak/task1.toml")).unwrap();
        std::fs::write(a.join(".bak/task2.error.txt"), "not started: x\n").unwrap();
        let m = merge(&[a], &out).unwrap();
        assert_eq!(m.records, 1);
        assert!(m.conflicts.is_empty(), "{:?}", m.conflicts);
        assert!(!out.join(".bak").exists());
    }

    #[test]
    fn records_of_different_students_in_one_folder_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let (a, b, out) = (d.path().join("a"), d.path().join("b"), d.path().join("out"));
        write(&a, "jo smith");
        write(&b, "jo_smith");
        let e = merge(&[a, b], &out).unwrap_err();
        assert!(matches!(e, MergeError::SharedFolder(_)), "{e}");
        assert!(e.to_string().contains("\"jo smith\""), "{e}");
        assert!(!out.exists(), "nothing is written");
    }

    #[test]
    fn copies_keep_modification_times() {
        let d = tempfile::tempdir().unwrap();
        let (a, out) = (d.path().join("a"), d.path().join("out"));
        write(&a, "amy");
        set_mtime(&a.join("amy/task1.toml"), 3600);
        std::fs::write(a.join("amy/task1.error.txt"), "not graded: later\n").unwrap();
        merge(&[a], &out).unwrap();
        let rec = crate::report::record::read(&out.join("amy/task1.toml")).unwrap();
        assert!(
            rec.failed_attempt.is_some(),
            "the error file is still newer"
        );
    }

    #[test]
    fn refused_records_are_not_merged_and_leave_an_error_file() {
        let d = tempfile::tempdir().unwrap();
        let (a, b, out) = (d.path().join("a"), d.path().join("b"), d.path().join("out"));
        write(&a, "amy");
        write(&a, "ben");
        write(&b, "amy");
        // amy's record in b and ben's in a are forged; amy keeps her good one from a.
        for path in [b.join("amy/task1.toml"), a.join("ben/task1.toml")] {
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, text.replace("score = 1.0", "score = 2.0")).unwrap();
        }
        let m = merge(&[a.clone(), b.clone()], &out).unwrap();
        assert_eq!(m.records, 1);
        assert_eq!(m.skipped.len(), 2, "{:?}", m.skipped);
        assert!(
            m.skipped.iter().all(|s| s.contains("is refused")),
            "{:?}",
            m.skipped
        );
        let amy = crate::report::record::read(&out.join("amy/task1.toml")).unwrap();
        assert_eq!(amy.report.score, 1.0);
        assert!(!out.join("ben/task1.toml").exists());
        let why = std::fs::read_to_string(out.join("ben/task1.error.txt")).unwrap();
        assert!(
            why.starts_with(&format!(
                "not graded: {}: the record of \"ben\" (task 1) is refused",
                a.join("ben/task1.toml").display()
            )),
            "{why}"
        );
        // An input of refused records only is merged with its warnings, not called empty.
        let c = d.path().join("c");
        write(&c, "cat");
        let path = c.join("cat/task1.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("score = 1.0", "score = 2.0")).unwrap();
        assert!(merge(&[c], &d.path().join("out2")).is_ok());
    }
}
