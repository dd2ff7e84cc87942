//! A CSV that Canvas's gradebook import (Grades → Import) accepts, built on the course's own
//! gradebook export (Grades → Export), the *roster*.
//!
//! Canvas identifies a student in an import by its identification columns (`Student`, `ID`,
//! `SIS User ID`, `SIS Login ID`, `Section`, and `Integration ID` where the course has it), which
//! only Canvas knows; a grader's student ids are at best one of them (usually the login). So
//! this export copies the identification columns of every roster row, matches each row to a
//! graded student by one column (`--match-column`, default `SIS Login ID`, compared without
//! case) against the id the student's records name (`alice@uni.edu`, not the report folder
//! `alice_uni.edu` it was made safe as), and adds one column per task with the points, after
//! Canvas's own `Points Possible` row.
//!
//! Guarantees: every roster student appears once, in roster order; a student without a record
//! gets an empty cell (Canvas leaves the grade alone), never a zero; graded students missing from
//! the roster are reported by [`ClassExporter::warnings`], not dropped silently; roster columns
//! other than the identification columns (other assignments, computed totals) are not copied, so
//! the import changes nothing but the exported tasks; text cells (the roster's names and ids,
//! the headers) that a spreadsheet would evaluate as a formula get a leading `'`
//! ([`spreadsheet_cell`]), the points stay plain numbers.

use super::{Class, ClassExporter, ExportError};
use crate::safe_text::spreadsheet_cell;
use crate::verdict::fmt_points;

/// The identification columns of a Canvas gradebook export, in the order Canvas writes them.
const ID_COLUMNS: &[&str] = &[
    "Student",
    "ID",
    "SIS User ID",
    "SIS Login ID",
    "Integration ID",
    "Root Account",
    "Section",
];
/// The first cell of the row that holds each assignment's maximum.
const POINTS_POSSIBLE: &str = "Points Possible";

/// A parsed Canvas gradebook export.
#[derive(Debug, Clone)]
pub struct Roster {
    /// The identification columns it has, in its order.
    columns: Vec<String>,
    /// Per student row, the values of those columns.
    rows: Vec<Vec<String>>,
}

impl Roster {
    /// Parses a Canvas gradebook export (CSV with a header row). Fails with an actionable message
    /// when the file is not one.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rdr = ::csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(text.as_bytes());
        let header = rdr
            .headers()
            .map_err(|e| format!("not a CSV file: {e}"))?
            .clone();
        let picked: Vec<(usize, String)> = header
            .iter()
            .enumerate()
            .filter(|(_, h)| ID_COLUMNS.contains(&h.trim()))
            .map(|(i, h)| (i, h.trim().to_string()))
            .collect();
        for needed in ["Student", "SIS Login ID", "Section"] {
            if !picked.iter().any(|(_, h)| h == needed) {
                return Err(format!(
                    "it has no \"{needed}\" column: use the CSV from Canvas's Grades → Export"
                ));
            }
        }
        let mut rows = Vec::new();
        for (n, record) in rdr.records().enumerate() {
            let record = record.map_err(|e| format!("row {}: {e}", n + 2))?;
            let values: Vec<String> = picked
                .iter()
                .map(|(i, _)| record.get(*i).unwrap_or("").to_string())
                .collect();
            // Canvas's own "Points Possible" (and, in older exports, "Muted") rows.
            let first = values.first().map_or("", |v| v.trim());
            if first == POINTS_POSSIBLE || (first.is_empty() && values.iter().all(|v| v.is_empty()))
            {
                continue;
            }
            if first.eq_ignore_ascii_case("muted") || first.eq_ignore_ascii_case("manual posting") {
                continue;
            }
            rows.push(values);
        }
        Ok(Self {
            columns: picked.into_iter().map(|(_, h)| h).collect(),
            rows,
        })
    }

    fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}

/// The Canvas exporter.
pub struct Canvas {
    /// The course's gradebook export.
    pub roster: Roster,
    /// The roster column that holds the grader's student ids.
    pub match_column: String,
    /// Column name for the points when one task is exported (an existing assignment's column,
    /// e.g. "ClassChat Task 1 (4711)"); otherwise `Task N: <title>`.
    pub assignment: Option<String>,
}

impl Canvas {
    fn match_index(&self) -> Result<usize, ExportError> {
        self.roster
            .column(&self.match_column)
            .ok_or_else(|| ExportError::Render {
                format: "canvas",
                source: format!(
                    "the roster has no \"{}\" column to match students by (it has: {})",
                    self.match_column,
                    self.roster.columns.join(", ")
                )
                .into(),
            })
    }

    fn student_of<'c>(&self, class: &'c Class, id: &str) -> Option<&'c super::Student> {
        let id = id.trim();
        class
            .students
            .iter()
            .find(|s| !id.is_empty() && s.id.trim().eq_ignore_ascii_case(id))
    }
}

impl ClassExporter for Canvas {
    fn format(&self) -> &'static str {
        "canvas"
    }
    fn default_file_name(&self) -> &'static str {
        "canvas-import.csv"
    }
    fn render(&self, class: &Class) -> Result<Vec<u8>, ExportError> {
        let key = self.match_index()?;
        let names: Vec<String> = match (&self.assignment, class.tasks.as_slice()) {
            (Some(name), [_]) => vec![name.clone()],
            (Some(_), tasks) => {
                return Err(ExportError::Render {
                    format: "canvas",
                    source: format!(
                        "--assignment names one column, but the reports hold {} tasks: choose one with --task N",
                        tasks.len()
                    ).into(),
                });
            }
            (None, tasks) => tasks
                .iter()
                .map(|t| format!("Task {}: {}", t.task, t.title))
                .collect(),
        };
        let err = |e: ::csv::Error| ExportError::Render {
            format: "canvas",
            source: e.into(),
        };
        let mut w = ::csv::Writer::from_writer(Vec::new());
        let text = |cells: &[String]| -> Vec<String> {
            cells
                .iter()
                .map(|c| spreadsheet_cell(c).into_owned())
                .collect()
        };
        let mut header = self.roster.columns.clone();
        header.extend(names);
        w.write_record(text(&header)).map_err(err)?;
        let mut points = vec![String::new(); self.roster.columns.len()];
        points[0] = format!("    {POINTS_POSSIBLE}");
        points.extend(class.tasks.iter().map(|t| fmt_points(t.max)));
        w.write_record(&points).map_err(err)?;
        for row in &self.roster.rows {
            let student = self.student_of(class, &row[key]);
            let mut out = text(row);
            for t in &class.tasks {
                out.push(
                    student
                        .and_then(|s| s.task(t.task))
                        .map_or(String::new(), |r| fmt_points(r.score)),
                );
            }
            w.write_record(&out).map_err(err)?;
        }
        w.into_inner().map_err(|e| ExportError::Render {
            format: "canvas",
            source: e.into(),
        })
    }
    fn covers(&self, class: &Class) -> String {
        let Ok(key) = self.match_index() else {
            return format!("{} student(s)", class.students.len());
        };
        let filled = self
            .roster
            .rows
            .iter()
            .filter(|row| self.student_of(class, &row[key]).is_some())
            .count();
        format!(
            "{filled} of {} roster student(s) with a score, the others left empty",
            self.roster.rows.len()
        )
    }
    fn warnings(&self, class: &Class) -> Vec<String> {
        let Ok(key) = self.match_index() else {
            return Vec::new();
        };
        let missing: Vec<&str> = class
            .students
            .iter()
            .filter(|s| {
                !self
                    .roster
                    .rows
                    .iter()
                    .any(|r| r[key].trim().eq_ignore_ascii_case(s.id.trim()))
            })
            .map(|s| s.id.as_str())
            .collect();
        if missing.is_empty() {
            Vec::new()
        } else {
            vec![format!(
                "{} graded student(s) have no row with that \"{}\" in the roster and are not in the import: {}",
                missing.len(),
                self.match_column,
                missing.join(", ")
            )]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_file_that_is_not_a_canvas_export() {
        let e = Roster::parse("student_id,total\nalice,3\n").unwrap_err();
        assert!(e.contains("Grades → Export"), "{e}");
    }

    #[test]
    fn keeps_identification_columns_and_skips_canvas_rows() {
        let r = Roster::parse(
            "\u{feff}Student,ID,SIS User ID,SIS Login ID,Section,Quiz 1 (12),Current Score\n    Points Possible,,,,,10,(read only)\n\"Doe, Jane\",101,S1,jdoe,Sec A,7,70\n",
        )
        .unwrap();
        assert_eq!(
            r.columns,
            ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
        );
        assert_eq!(r.rows, [["Doe, Jane", "101", "S1", "jdoe", "Sec A"]]);
    }

    #[test]
    fn fills_the_roster_s_rows_with_task_points() {
        let roster = Roster::parse(
            "Student,ID,SIS User ID,SIS Login ID,Section,Quiz 1 (12)\n    Points Possible,,,,,10\n\"Amy, A\",1,S1,amy,Sec A,7\n\"Bob, B\",2,S2,bob,Sec A,8\n\"Dan, D\",4,S4,dan,Sec B,9\n",
        )
        .unwrap();
        let canvas = Canvas {
            roster,
            match_column: "SIS Login ID".into(),
            assignment: Some("ClassChat Task 1 (4711)".into()),
        };
        let class = crate::synthetic::class(crate::audience::View::default());
        let text = crate::synthetic::text(canvas.render(&class).unwrap());
        insta::assert_snapshot!(text);
        // cy is graded but not on the roster; dan is on the roster but not graded.
        let warnings = canvas.warnings(&class).join("\n");
        assert!(warnings.contains("cy"), "{warnings}");
    }
}
