//! Report formats of one grading. File formats ([`ReportRenderer`]: JUnit, the TOML record)
//! render a finished [`GradeReport`] (they never touch processes) and are written atomically by
//! event sinks when the grading finishes ([`files`]); the console reporter follows the grading's
//! events too. A whole class's exports are [`crate::export`]'s.
//!
//! Layout: `<out>/<submission>/task<N>.toml` (the authoritative record) and
//! `<out>/<submission>/task<N>.junit.xml`.

pub mod console;
pub mod files;
pub mod junit;
pub mod record;
pub mod toml;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::verdict::GradeReport;

/// A report file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The output folder cannot be created or written.
    #[error("cannot write reports to {}", .path.display())]
    Io {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Rendering failed.
    #[error("cannot render the {format} report")]
    Render {
        /// Which format.
        format: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A file format for one finished grading (JUnit, the TOML record), written into the
/// submission's report folder; not to be confused with [`crate::export::ClassExporter`], which
/// renders a whole class from its records.
pub trait ReportRenderer {
    /// File name inside the submission's report folder, e.g. `task1.toml`.
    fn file_name(&self, report: &GradeReport) -> String;
    /// Renders the report.
    fn render(&self, report: &GradeReport) -> Result<Vec<u8>, ReportError>;
}

/// The folder reports for `report` go to.
pub fn report_dir(out: &Path, report: &GradeReport) -> PathBuf {
    out.join(sanitize(&report.submission))
}

/// Writes every renderer's file for `report` under `out`, atomically; returns the paths.
pub fn write_all(
    out: &Path,
    report: &GradeReport,
    renderers: &[&dyn ReportRenderer],
) -> Result<Vec<PathBuf>, ReportError> {
    let dir = report_dir(out, report);
    let mut written = Vec::new();
    for e in renderers {
        let bytes = e.render(report)?;
        let path = dir.join(e.file_name(report));
        write_atomic(&path, &bytes)?;
        written.push(path);
    }
    Ok(written)
}

/// Checks up front that `out` can hold reports (so a grading is not run for nothing).
pub fn check_writable(out: &Path) -> Result<(), ReportError> {
    let io = |source| ReportError::Io {
        path: out.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(out).map_err(io)?;
    tempfile::Builder::new()
        .prefix(".probe-")
        .tempfile_in(out)
        .map(drop)
        .map_err(io)
}

/// Writes `bytes` to `path` via a temporary file in the same folder and a rename, so readers see
/// the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(FILE_MODE))
        .tempfile_in(dir)
        .map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// The mode every report file is created with (the umask applies on top): readable by the
/// owner's group, so TAs sharing a group read them, where tempfile's default is the owner only;
/// never by "others", since records, error files and instructor-audience exports keep hidden
/// scenarios' expected values and transcripts.
const FILE_MODE: u32 = 0o660;

/// A submission name made safe as a folder name.
pub fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    match s.trim_start_matches('.') {
        "" => "submission".to_string(),
        t => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// The process's umask, from `/proc/self/status` (reading it with umask(2) would change it).
    fn umask() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
        u32::from_str_radix(line["Umask:".len()..].trim(), 8).unwrap()
    }

    #[test]
    fn report_files_are_readable_by_the_group_as_the_umask_allows_never_by_others() {
        let d = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let junit = d.path().join("sub/task1.junit.xml");
        write_atomic(&junit, b"<testsuites/>\n").unwrap();
        assert_eq!(mode(&junit), 0o660 & !umask(), "mode {:o}", mode(&junit));
        // Records keep what students may not see: never readable by others either.
        let record = d.path().join("sub/task1.toml");
        write_atomic(&record, b"score = 1\n").unwrap();
        assert_eq!(mode(&record), 0o660 & !umask(), "mode {:o}", mode(&record));
        assert_eq!(std::fs::read(&record).unwrap(), b"score = 1\n");
    }
}
