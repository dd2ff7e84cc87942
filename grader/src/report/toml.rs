//! The TOML report: the authoritative, machine-readable record of a grading (schema version,
//! submission, task, score, per-scenario verdicts with messages and transcripts, grader version,
//! spec hash, seed, timestamp). Other exports are derived from it; it parses back into
//! [`GradeReport`].

use super::{ReportError, ReportRenderer};
use crate::verdict::GradeReport;

/// Writes `task<N>.toml`.
pub struct TomlReport;

impl ReportRenderer for TomlReport {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic;

    #[test]
    fn the_record_round_trips_with_typed_notes() {
        let report = synthetic::mixed("bob");
        let text = String::from_utf8(TomlReport.render(&report).unwrap()).unwrap();
        insta::assert_snapshot!(text);
        assert_eq!(parse(&text).unwrap(), report);
    }

    #[test]
    fn a_version_1_record_with_plain_string_notes_still_loads() {
        let report = synthetic::mixed("bob");
        let text = String::from_utf8(TomlReport.render(&report).unwrap()).unwrap();
        // What the grader wrote before notes were typed: plain strings, schema version 1.
        let mut old: toml::Table = toml::from_str(&text).unwrap();
        old.insert("schema_version".into(), 1.into());
        old.insert(
            "notes".into(),
            toml::Value::Array(vec![report.notes[0].to_string().into()]),
        );
        let scenarios = old["scenarios"].as_array().unwrap().clone();
        let scenarios = scenarios
            .into_iter()
            .map(|mut s| {
                if let Some(t) = s.as_table_mut()
                    && let Some(notes) = t.get("notes").and_then(|n| n.as_array()).cloned()
                {
                    let texts = notes
                        .iter()
                        .map(|n| {
                            let note: crate::note::Note = n.clone().try_into().unwrap();
                            toml::Value::from(note.to_string())
                        })
                        .collect();
                    t.insert("notes".into(), toml::Value::Array(texts));
                }
                s
            })
            .collect();
        old.insert("scenarios".into(), toml::Value::Array(scenarios));
        let read = parse(&toml::to_string(&old).unwrap()).unwrap();
        assert_eq!(read.schema_version, 1);
        // Same texts, untyped; the retry note is still known as one.
        let texts = |r: &GradeReport| -> Vec<String> {
            r.scenarios
                .iter()
                .flat_map(|s| s.notes.iter().map(ToString::to_string))
                .chain(r.notes.iter().map(ToString::to_string))
                .collect()
        };
        assert_eq!(texts(&read), texts(&report));
        let retries = |r: &GradeReport| {
            r.scenarios
                .iter()
                .flat_map(|s| &s.notes)
                .filter(|n| n.is_retry())
                .count()
        };
        assert_eq!((retries(&read), retries(&report)), (1, 1));
        assert!(matches!(
            read.scenarios[3].notes[0],
            crate::note::Note::Text { .. }
        ));
    }
}
