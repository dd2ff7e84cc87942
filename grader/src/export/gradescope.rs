//! Gradescope's autograder `results.json`: `score`, `execution_time`, `output`, `visibility`,
//! `stdout_visibility`, `output_format` and `tests[]` with `name`, `score`, `max_score`, `status`
//! (`passed`/`failed`), `output` (plain text: student output is never rendered as HTML) and
//! `visibility`.
//!
//! Guarantees: one student; `score` is the exact sum of the tests' scores (fractions kept);
//! a scenario's Gradescope visibility follows its policy (`hidden` → `hidden`, `after_due` →
//! `after_due_date`), so with `--audience instructor` Gradescope itself hides those tests from
//! students, and with the student audience they are redacted before Gradescope sees them.
//! Feedback levels (`summary`, `none`) are applied whatever the audience: Gradescope shows every
//! visible test's `output` to students, and has no setting for "show the verdict but not the
//! details", so an instructor-audience `results.json` still leaves out what `summary` and `none`
//! withhold (the TOML record keeps it).

use serde_json::{Value, json};

use super::{Class, ClassExporter, ExportError, failure_text, test_name};
use crate::audience::limit_feedback;
use crate::spec::Visibility;
use crate::verdict::{Status, fmt_points};

/// The Gradescope exporter.
pub struct Gradescope;

impl ClassExporter for Gradescope {
    fn format(&self) -> &'static str {
        "gradescope"
    }
    fn per_student(&self) -> bool {
        true
    }
    fn default_file_name(&self) -> &'static str {
        "results.json"
    }
    fn render(&self, class: &Class) -> Result<Vec<u8>, ExportError> {
        let student = class.one("gradescope")?;
        let mut tests = Vec::new();
        let mut ms = 0;
        for r in &student.reports {
            ms += r.duration_ms;
            let policies = student.policies.get(&r.task);
            // The class is already redacted for its audience; students also read what the
            // instructor audience hands to Gradescope, so the feedback levels apply in any case.
            let shown = policies.map_or_else(|| r.clone(), |p| limit_feedback(r, p));
            for o in &shown.scenarios {
                let visibility = match policies.and_then(|p| p.get(&o.name)).map(|p| p.visibility) {
                    Some(Visibility::Hidden) => "hidden",
                    Some(Visibility::AfterDue) => "after_due_date",
                    _ => "visible",
                };
                let mut output = o.description.clone().map_or(String::new(), |d| d + "\n");
                if o.status != Status::Passed {
                    output.push_str(&format!("{}: {}", o.status.label(), failure_text(o)));
                }
                tests.push(json!({
                    "name": test_name(student, r, &o.name),
                    "score": o.points,
                    "max_score": o.max_points,
                    "status": if o.status == Status::Passed { "passed" } else { "failed" },
                    "output": output.trim_end(),
                    "output_format": "text",
                    "visibility": visibility,
                }));
            }
        }
        let score: f64 = student.reports.iter().map(|r| r.score).sum();
        let max: f64 = student.reports.iter().map(|r| r.max_score).sum();
        let summary = student
            .reports
            .iter()
            .map(|r| {
                format!(
                    "Task {} ({}): {}/{} points, seed {}",
                    r.task,
                    r.task_title,
                    fmt_points(r.score),
                    fmt_points(r.max_score),
                    r.seed
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        let doc: Value = json!({
            "score": score,
            "execution_time": ms.div_ceil(1000),
            "output": format!("{summary}\nTotal: {}/{}", fmt_points(score), fmt_points(max)),
            "output_format": "text",
            "visibility": "visible",
            "stdout_visibility": "hidden",
            "tests": tests,
        });
        let mut bytes = serde_json::to_vec_pretty(&doc).map_err(|e| ExportError::Render {
            format: "gradescope",
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
    fn one_student_s_results_json_with_visibility_and_feedback_levels() {
        for (name, view) in synthetic::views() {
            let text = synthetic::text(Gradescope.render(&synthetic::student(view)).unwrap());
            insta::assert_snapshot!(name, text);
            // Feedback levels apply whatever the audience: the summary scenario's retry.
            assert!(!text.contains("secret-retry"), "{text}");
        }
        assert!(
            Gradescope
                .render(&synthetic::class(crate::audience::View::default()))
                .is_err()
        );
    }
}
