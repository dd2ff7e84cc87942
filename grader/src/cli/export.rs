//! `grader export` (a class's records as CSV, Gradescope, GitHub Classroom, Canvas, Markdown or
//! HTML) and `grader merge` (report folders combined). Both read records only, never run code.

use std::path::{Path, PathBuf};

use grader::audience::View;
use grader::batch::merge;
use grader::export;
use grader::report::record;
use grader::report::{self, ReportError};
use grader::safe_text;

use super::args::ExportArgs;
use super::{CliError, EXIT_PASS};

/// Records under `dir`, optionally of some tasks (empty: all) and one student; an error when
/// there are none.
/// Refused records ([`record::RecordError::Refused`]) are among them: the export's
/// [`export::Class`] lists their students as not graded and warns about each.
pub(super) fn read_records(
    dir: &Path,
    tasks: &[u32],
    student: Option<&str>,
) -> Result<Vec<(String, record::Record)>, CliError> {
    let (mut records, skipped) = record::read_dir(dir)?;
    for e in skipped {
        match e.into_refused() {
            Ok(refused) => records.push(refused),
            Err(e) => say_err!(
                "warning: skipped {}",
                safe_text::terminal_lines(&grader::error_chain::chain(&e))
            ),
        }
    }
    records.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.report.task.cmp(&b.1.report.task)));
    let records: Vec<_> = records
        .into_iter()
        .filter(|(id, r)| {
            (tasks.is_empty() || tasks.contains(&r.report.task))
                && student.is_none_or(|s| s == id || s == r.student_id(id))
        })
        .collect();
    if records.is_empty() {
        return Err(CliError::Usage(format!(
            "no grading records (<student>/task<N>.toml){} in {}",
            match (tasks, student) {
                ([], Some(s)) => format!(" of {s}"),
                ([], None) => String::new(),
                (t, Some(s)) => format!(" for task {} of {s}", task_list(t)),
                (t, None) => format!(" for task {}", task_list(t)),
            },
            dir.display()
        )));
    }
    Ok(records)
}

/// "1", "1 or 2", "1, 2 or 3".
fn task_list(tasks: &[u32]) -> String {
    let words: Vec<String> = tasks.iter().map(u32::to_string).collect();
    match words.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Runs `grader export`.
pub(super) fn run(args: ExportArgs) -> Result<u8, CliError> {
    let tasks: Vec<u32> = args.task.into_iter().collect();
    let records = read_records(&args.reports, &tasks, args.student.as_deref())?;
    let view = View {
        audience: args.audience.into(),
        after_due: args.after_due,
    };
    let class = export::Class::with_student_filter(records, view, args.student.is_some());
    let exporter = export::exporter(
        args.format.into(),
        &args.canvas.options(args.id_column.clone()),
    )?;
    // Before rendering: a per-student format refuses a class whose one record was refused, and
    // the warning says why.
    for w in exporter.warnings(&class) {
        say_err!("warning: {}", safe_text::terminal_lines(&w));
    }
    let bytes = exporter.render(&class)?;
    let out = args
        .out
        .unwrap_or_else(|| args.reports.join(exporter.default_file_name()));
    if out.as_os_str() == "-" {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(&bytes)
            .and_then(|_| stdout.flush())
            .map_err(|source| ReportError::Io {
                path: out.clone(),
                source,
            })?;
    } else {
        report::write_atomic(&out, &bytes)?;
        say_err!(
            "Exported {} ({}): {}",
            exporter.format(),
            exporter.covers(&class),
            out.display()
        );
    }
    Ok(EXIT_PASS)
}

/// Runs `grader merge`.
pub(super) fn merge(inputs: &[PathBuf], out: &Path) -> Result<u8, CliError> {
    let merged = merge::merge(inputs, out)?;
    for c in &merged.conflicts {
        say_err!("warning: {}", safe_text::terminal_lines(c));
    }
    for s in &merged.skipped {
        say_err!("warning: skipped {}", safe_text::terminal_lines(s));
    }
    say!(
        "Merged {} record(s) from {} folder(s) into {}",
        merged.records,
        inputs.len(),
        out.display()
    );
    Ok(EXIT_PASS)
}
