//! CSV for gradebooks (Canvas, Moodle, spreadsheets): one row per student with the id, the
//! total, the maximum, the percentage, each task's score and each scenario's points.
//!
//! Guarantees: a header row, then students sorted by id (the id the records name, e.g.
//! `alice@uni.edu`, not the report folder it was made safe as); numbers use a dot and no thousands
//! separator; a task a student has no record for is an empty cell (not a zero), so an import
//! never overwrites a grade with a made-up zero; quoting follows RFC 4180 (the `csv` crate); a
//! text cell (an id, a header) that a spreadsheet would evaluate as a formula (`=HYPERLINK(...)`,
//! `+`, `-`, `@`, tab or CR first) is prefixed with `'` ([`spreadsheet_cell`]), while the number
//! cells are written as numbers, untouched. A student of the reports folder who was never graded
//! (only an error file) has a row too, with empty score cells; the last column, `status`, says
//! `graded`, `not graded`, or which task is missing or from an older record
//! ([`super::Student::status`]). It is last so that the columns before it keep their places.

use super::{Class, ClassExporter, ExportError};
use crate::safe_text::spreadsheet_cell;
use crate::verdict::fmt_points;

/// The CSV exporter.
pub struct Csv {
    /// Header of the id column (e.g. `SIS Login ID` for Canvas, `username` for Moodle).
    pub id_column: String,
}

impl ClassExporter for Csv {
    fn format(&self) -> &'static str {
        "csv"
    }
    fn default_file_name(&self) -> &'static str {
        "grades.csv"
    }
    fn render(&self, class: &Class) -> Result<Vec<u8>, ExportError> {
        let err = |e: ::csv::Error| ExportError::Render {
            format: "csv",
            source: e.into(),
        };
        let mut w = ::csv::Writer::from_writer(Vec::new());
        let mut header = vec![
            self.id_column.clone(),
            "total".into(),
            "max".into(),
            "percent".into(),
        ];
        for t in &class.tasks {
            header.push(format!("task{}", t.task));
        }
        for t in &class.tasks {
            for (name, max) in &t.scenarios {
                header.push(format!("task{}: {name} ({} pts)", t.task, fmt_points(*max)));
            }
        }
        header.push("status".into());
        let header: Vec<String> = header
            .iter()
            .map(|h| spreadsheet_cell(h).into_owned())
            .collect();
        w.write_record(&header).map_err(err)?;
        let max_total = class.max_total();
        let mut rows: Vec<&super::Student> =
            class.students.iter().chain(&class.not_graded).collect();
        rows.sort_by(|a, b| a.id.cmp(&b.id).then(a.folder.cmp(&b.folder)));
        for s in rows {
            let total = s.total();
            let graded = !s.reports.is_empty();
            let mut row = vec![
                spreadsheet_cell(&s.id).into_owned(),
                if graded {
                    fmt_points(total)
                } else {
                    String::new()
                },
                fmt_points(max_total),
                match (graded, max_total > 0.0) {
                    (false, _) => String::new(),
                    (true, true) => format!("{:.1}", 100.0 * total / max_total),
                    (true, false) => "100.0".into(),
                },
            ];
            for t in &class.tasks {
                row.push(
                    s.task(t.task)
                        .map_or(String::new(), |r| fmt_points(r.score)),
                );
            }
            for t in &class.tasks {
                let report = s.task(t.task);
                for (name, _) in &t.scenarios {
                    row.push(
                        report
                            .and_then(|r| r.scenarios.iter().find(|o| &o.name == name))
                            .map_or(String::new(), |o| fmt_points(o.points)),
                    );
                }
            }
            row.push(spreadsheet_cell(&s.status(&class.tasks)).into_owned());
            w.write_record(&row).map_err(err)?;
        }
        w.into_inner().map_err(|e| ExportError::Render {
            format: "csv",
            source: e.into(),
        })
    }
}

#[cfg(test)]
mod synthetic_tests {
    use super::*;
    use crate::synthetic;

    #[test]
    fn one_row_per_student_with_task_and_scenario_points() {
        let csv = Csv {
            id_column: "student_id".into(),
        };
        for (name, view) in synthetic::views() {
            let text = synthetic::text(csv.render(&synthetic::class(view)).unwrap());
            insta::assert_snapshot!(name, text);
        }
    }
}
