//! Where a submission runs from: a private copy made for each grading, never the student's own
//! folder, so a program cannot rewrite its source (or a classmate's) while it is graded, and so
//! the copy can be given to the grading's unprivileged uid ([`crate::process::sandbox::user`]).
//!
//! Guarantees:
//! - a folder submission is copied whole, as a build copies it ([`copy_submission`]: `.git`
//!   left out; a link leaving the folder, a FIFO or an oversized folder refused); a single
//!   executable is copied with the rest of its folder when that folder is small (at most
//!   [`SIBLINGS_BYTES`] in at most [`SIBLINGS_ENTRIES`] entries, so a script's sibling modules
//!   still import), else alone;
//! - the copy lives in TMPDIR under the grader's working-folder prefix (the guard removes it
//!   after a SIGKILL) and is removed when the grading ends;
//! - with a uid, the copy belongs to it (the program may write in its own working folder, as
//!   before); the original is only read;
//! - the bundled reference (the grader binary itself) is never copied.

use std::path::{Path, PathBuf};

use crate::launch::Submission;
use crate::process::grader_id;
use crate::process::sandbox::{RunAs, user};
use crate::process::temp_folder::TempFolder;
use crate::submission_copy::{CopyError, copy_submission};

/// A single executable's folder is copied with it up to this many bytes of regular files...
pub const SIBLINGS_BYTES: u64 = 64 << 20;
/// ... and this many entries.
pub const SIBLINGS_ENTRIES: usize = 2_000;

/// A submission staged in a private copy.
pub struct Staged {
    /// The copy (removed when dropped, so it must outlive the scenarios).
    pub _copy: TempFolder,
    /// The submission as the scenarios start it: inside the copy.
    pub submission: Submission,
}

/// Whether a single executable's folder is small enough to be copied with it (by the same
/// walk the copy makes, which also refuses what it would refuse).
fn small_enough(dir: &Path) -> bool {
    crate::submission_tree::scan(dir, |name| name == ".git")
        .is_ok_and(|t| t.bytes <= SIBLINGS_BYTES && t.entries.len() <= SIBLINGS_ENTRIES)
}

/// Why a submission could not be staged.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The submission's own content is refused (see [`CopyError::is_submissions_fault`]).
    #[error(transparent)]
    Refused(CopyError),
    /// The grader could not create the copy's folder, or hand it to the grading's uid.
    #[error("cannot prepare the folder of the copy")]
    Folder(#[source] std::io::Error),
    /// The submission's path names no file (`/`, `..`).
    #[error("the submission has no file name")]
    NoFileName,
    /// The grader could not copy the submission's folder (a file it cannot read, a full disk).
    #[error(transparent)]
    Copy(CopyError),
    /// The grader could not copy a single executable.
    #[error("cannot copy {} into the copy's folder", .0.display())]
    CopyFile(PathBuf, #[source] std::io::Error),
}

/// Copies `sub` into a fresh folder owned by `run_as` (when given).
pub fn stage(sub: &Submission, run_as: Option<RunAs>) -> Result<Staged, StageError> {
    let copy = grader_id::cwd_prefix()
        .and_then(|p| TempFolder::new(&p))
        .map_err(StageError::Folder)?;
    let dir = std::fs::canonicalize(copy.path()).map_err(StageError::Folder)?;
    let path: PathBuf = if sub.is_dir {
        match copy_submission(&sub.path, &dir) {
            Ok(_) => {}
            Err(e) if e.is_submissions_fault() => return Err(StageError::Refused(e)),
            Err(e) => return Err(StageError::Copy(e)),
        }
        dir.clone()
    } else {
        let name = sub.path.file_name().ok_or(StageError::NoFileName)?;
        // The folder when it is small and clean, else the executable alone.
        let whole = small_enough(&sub.dir) && copy_submission(&sub.dir, &dir).is_ok();
        if !whole {
            std::fs::copy(&sub.path, dir.join(name))
                .map_err(|e| StageError::CopyFile(sub.path.clone(), e))?;
        }
        dir.join(name)
    };
    if let Some(who) = run_as {
        user::give(&dir, who).map_err(StageError::Folder)?;
    }
    let submission = Submission {
        path,
        dir: dir.clone(),
        work_dir: sub.work_dir.as_ref().map(|_| dir.clone()),
        ..sub.clone()
    };
    Ok(Staged {
        _copy: copy,
        submission,
    })
}
