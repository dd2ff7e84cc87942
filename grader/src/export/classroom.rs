//! The runner result that GitHub Classroom's `autograding-grading-reporter` reads: a JSON object
//! with `version` (1), `status` (`pass`, `fail` or `error`), `max_score` and `tests[]` with
//! `name`, `status`, `score`, `message`, `line_no` and `execution_time`. The workflow passes it
//! base64-encoded as a step output named `result` (docs/instructors.md, "Exports").
//!
//! Guarantees: one student; the reporter adds the tests' `score`s and the `max_score`, so the sum
//! of `score` equals the record's total exactly (fractions kept as JSON numbers, never strings);
//! an infrastructure error makes that test and the whole result `error`, never a zero `fail`.
//! The result is always read by the student (the reporter prints every test and its message in
//! the student's workflow log), so it is meant for the default student audience, through which
//! the [`Class`] already comes redacted: hidden scenarios as placeholders, feedback levels
//! applied. With `--audience instructor` the export warns when that shows anything withheld.

use serde_json::json;

use super::{Class, ClassExporter, ExportError, failure_text, test_name};
use crate::audience::Audience;
use crate::verdict::Status;

/// True when some scenario of the class is hidden or has limited feedback.
pub(crate) fn withholds(class: &Class) -> bool {
    class.students.iter().any(|s| {
        s.policies
            .values()
            .any(|p| p.values().any(|p| !p.is_default()))
    })
}

/// The GitHub Classroom exporter.
pub struct Classroom;

impl ClassExporter for Classroom {
    fn format(&self) -> &'static str {
        "classroom"
    }
    fn per_student(&self) -> bool {
        true
    }
    fn default_file_name(&self) -> &'static str {
        "classroom-result.json"
    }
    fn warnings(&self, class: &Class) -> Vec<String> {
        if class.view.audience == Audience::Instructor && withholds(class) {
            vec![
                "GitHub Classroom shows this result to the student: --audience instructor puts hidden scenarios and withheld feedback in it (use the default student audience)".into(),
            ]
        } else {
            Vec::new()
        }
    }
    fn render(&self, class: &Class) -> Result<Vec<u8>, ExportError> {
        let student = class.one("classroom")?;
        let mut tests = Vec::new();
        let (mut any_fail, mut any_error) = (false, false);
        for r in &student.reports {
            for o in &r.scenarios {
                let status = match o.status {
                    Status::Passed => "pass",
                    Status::InfraError => {
                        any_error = true;
                        "error"
                    }
                    _ => {
                        any_fail = true;
                        "fail"
                    }
                };
                tests.push(json!({
                    "name": test_name(student, r, &o.name),
                    "status": status,
                    "score": o.points,
                    "message": if o.status == Status::Passed {
                        String::new()
                    } else {
                        failure_text(o).trim_end().to_string()
                    },
                    "line_no": 0,
                    "execution_time": format!("{:.2}s", o.duration_ms as f64 / 1000.0),
                }));
            }
        }
        let max: f64 = student.reports.iter().map(|r| r.max_score).sum();
        let doc = json!({
            "version": 1,
            "status": if any_error { "error" } else if any_fail { "fail" } else { "pass" },
            "max_score": max,
            "tests": tests,
        });
        let mut bytes = serde_json::to_vec_pretty(&doc).map_err(|e| ExportError::Render {
            format: "classroom",
            source: e.into(),
        })?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

#[cfg(test)]
mod synthetic_tests {
    use super::*;
    use crate::synthetic;

    #[test]
    fn one_student_s_runner_result() {
        for (name, view) in synthetic::views() {
            let class = synthetic::student(view);
            let text = synthetic::text(Classroom.render(&class).unwrap());
            insta::assert_snapshot!(name, text);
            // Students read it: the instructor audience is warned about.
            assert_eq!(
                Classroom.warnings(&class).len(),
                usize::from(name == "instructor")
            );
        }
        assert!(
            Classroom
                .render(&synthetic::class(crate::audience::View::default()))
                .is_err()
        );
    }
}
