//! `grader tasks`: the bundled (or a folder's) task files listed with their scenarios, and the
//! bundled protocol dialects. Loading a task validates it, so listing checks every file.

use std::path::{Path, PathBuf};

use grader::spec::Visibility;
use grader::spec::{self, SpecError};
use grader::verdict::fmt_points;

use super::{CliError, EXIT_PASS};

pub(super) fn list_dialects() -> Result<u8, CliError> {
    for (name, text) in spec::BUNDLED_DIALECTS {
        let d = spec::Dialect::named(name)
            .map_err(|e| CliError::Usage(grader::error_chain::chain(&e)))?;
        let about = text
            .lines()
            .find_map(|l| l.strip_prefix("description = "))
            .map(|d| d.trim_matches('"').to_string())
            .unwrap_or_default();
        say!("{name:<14} {about}");
        if !d.is_empty() {
            say!("{:<14} [protocol] {}", "", d.to_inline());
        }
    }
    Ok(EXIT_PASS)
}

/// The numbers of the `task<N>.toml` files in `dir`, in order.
fn task_numbers_in(dir: &Path) -> Result<Vec<u32>, CliError> {
    let entries = std::fs::read_dir(dir).map_err(|source| SpecError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut numbers: Vec<u32> = entries
        .filter_map(|e| {
            let name = e.ok()?.file_name();
            let name = name.to_str()?;
            name.strip_prefix("task")?
                .strip_suffix(".toml")?
                .parse()
                .ok()
        })
        .collect();
    numbers.sort_unstable();
    Ok(numbers)
}

pub(super) fn list_tasks(
    dir: Option<PathBuf>,
    dialect: &spec::Dialect,
    steps: bool,
) -> Result<u8, CliError> {
    let numbers: Vec<u32> = match &dir {
        None => spec::BUNDLED_TASKS.iter().map(|(n, _, _)| *n).collect(),
        Some(d) => task_numbers_in(d)?,
    };
    for n in numbers {
        let (spec, _) = spec::load_with(dir.as_deref(), n, dialect)?;
        say!(
            "task {}{} · {} · {} points{}",
            spec.task,
            spec.name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default(),
            spec.title,
            fmt_points(spec.max_score()),
            if dialect.is_empty() {
                String::new()
            } else {
                format!(" · dialect {}", dialect.label)
            }
        );
        if let Some(d) = &spec.description {
            say!("  {}", d.trim());
        }
        for s in &spec.scenarios {
            let shown = match s.visibility {
                Visibility::Visible => "",
                Visibility::Hidden => " (hidden from students)",
                Visibility::AfterDue => " (shown to students after the due date)",
            };
            say!(
                "  {:<6} {:>4} pts  {}{shown}",
                format!("{:?}", s.role).to_lowercase(),
                fmt_points(s.points),
                s.name
            );
            if let Some(d) = &s.description {
                say!("                   {}", d.trim());
            }
            if steps {
                for step in &s.steps {
                    let shown = toml::Value::try_from(step)
                        .map(|v| v.to_string())
                        .unwrap_or_else(|e| format!("({e})"));
                    say!("           {shown}");
                }
            }
        }
    }
    Ok(EXIT_PASS)
}
