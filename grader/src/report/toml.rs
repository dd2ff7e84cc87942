//! The TOML report: the authoritative, machine-readable record of a grading (schema version,
//! submission, task, score, per-scenario verdicts with messages and transcripts, grader version,
//! spec hash, seed, timestamp). Other exports are derived from it; it parses back into
//! [`GradeReport`].

use super::{Exporter, ReportError};
use crate::verdict::GradeReport;

/// Writes `task<N>.toml`.
pub struct TomlReport;

impl Exporter for TomlReport {
    fn file_name(&self, report: &GradeReport) -> String {
        format!("task{}.toml", report.task)
    }

    fn render(&self, report: &GradeReport) -> Result<Vec<u8>, ReportError> {
        let body = toml::to_string_pretty(report).map_err(|e| ReportError::Render {
            format: "TOML",
            source: e.into(),
        })?;
        Ok(format!(
            "# Grading record written by grader {}. Authoritative; do not edit.\n{body}",
            report.grader_version
        )
        .into_bytes())
    }
}

/// Reads a TOML report back.
pub fn parse(text: &str) -> Result<GradeReport, toml::de::Error> {
    toml::from_str(text)
}
