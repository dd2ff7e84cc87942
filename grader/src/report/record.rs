//! The full grading record: the engine's [`GradeReport`] plus its [`Provenance`] (what was
//! graded and how: submission content hash, launch templates, task folder, the scenarios'
//! visibility and feedback policies), stored together in `task<N>.toml`.
//!
//! Guarantees: the provenance is an optional `[provenance]` table appended after the report, so
//! every reader of the plain report ([`super::toml::parse`]) still parses new files, and reports
//! written before provenance existed parse as records with an empty provenance. Exports and
//! student views are computed from records only, never by re-running student code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Exporter, ReportError};
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
    /// True when the bundled reference solution was graded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bundled_reference: bool,
    /// The `--server` template, when one was used instead of the launch contract.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_template: Option<String>,
    /// The `--client` template, when one was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_template: Option<String>,
    /// Absolute `--tasks-dir`, when the task file was not the bundled one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks_dir: Option<String>,
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
}

impl Record {
    /// The report as `view` may see it.
    pub fn view(&self, view: View) -> GradeReport {
        redact(&self.report, &self.provenance.policies, view)
    }
}

#[derive(Serialize, Deserialize)]
struct ProvenanceTable {
    #[serde(default)]
    provenance: Provenance,
}

/// Writes `task<N>.toml`: the report, then its `[provenance]` table.
pub struct TomlRecord<'a>(pub &'a Provenance);

impl Exporter for TomlRecord<'_> {
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
            message: e.to_string(),
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
    #[error("cannot read report {path}: {source}")]
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
}

/// Parses a record from the text of a `task<N>.toml`.
pub fn parse(text: &str) -> Result<Record, toml::de::Error> {
    let report = super::toml::parse(text)?;
    let provenance = toml::from_str::<ProvenanceTable>(text)?.provenance;
    Ok(Record { report, provenance })
}

/// Reads a record from a file.
pub fn read(path: &Path) -> Result<Record, RecordError> {
    let text = std::fs::read_to_string(path).map_err(|source| RecordError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text).map_err(|e| RecordError::Parse {
        path: path.to_path_buf(),
        message: e.message().to_string(),
    })
}

/// What [`read_dir`] returns: (student folder name, record) pairs, and the files that could not
/// be read as records.
pub type Found = (Vec<(String, Record)>, Vec<RecordError>);

/// The records under a reports folder: `<dir>/<student>/task<N>.toml`, as (student folder name,
/// record), sorted by student and task. Files that are not records are reported in `skipped`.
pub fn read_dir(dir: &Path) -> Result<Found, RecordError> {
    let io = |source| RecordError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    let mut students: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    students.sort();
    for sdir in students {
        let Some(id) = sdir.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        if id.starts_with('.') {
            continue;
        }
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
