//! Reading task files: TOML text → validated [`TaskSpec`], with errors that point at
//! `file:line:column`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::validate::{Location, validate};
use super::{TaskSpec, bundled_task};

/// Where a task spec came from, for error messages and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecSource {
    /// Compiled into the grader (the default `tasks/`).
    Bundled(&'static str),
    /// Read from a file.
    File(PathBuf),
}

impl fmt::Display for SpecSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecSource::Bundled(name) => write!(f, "tasks/{name} (bundled)"),
            SpecSource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A task file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// No spec exists for the task number.
    #[error("unknown task {task}: {available}")]
    UnknownTask {
        /// The requested task.
        task: u32,
        /// What exists instead.
        available: String,
    },
    /// The file could not be read.
    #[error("cannot read task file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the scenario language.
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        file: SpecSource,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

/// Loads task `task`: from `dir/task<N>.toml` when a directory is given, else the bundled spec.
/// Returns the spec and its source text (hashed into reports).
pub fn load(dir: Option<&Path>, task: u32) -> Result<(TaskSpec, String), SpecError> {
    match dir {
        Some(dir) => load_from_dir(dir, task),
        None => {
            let (name, text) = bundled_task(task).ok_or_else(|| SpecError::UnknownTask {
                task,
                available: format!(
                    "the bundled tasks are {}",
                    super::BUNDLED_TASKS
                        .iter()
                        .map(|(n, _, _)| n.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
            let spec = parse(text, SpecSource::Bundled(name))?;
            Ok((spec, text.to_string()))
        }
    }
}

/// Loads `dir/task<N>.toml`.
pub fn load_from_dir(dir: &Path, task: u32) -> Result<(TaskSpec, String), SpecError> {
    let path = dir.join(format!("task{task}.toml"));
    if !path.exists() {
        return Err(SpecError::UnknownTask {
            task,
            available: format!("there is no {}", path.display()),
        });
    }
    let text = std::fs::read_to_string(&path).map_err(|source| SpecError::Io {
        path: path.clone(),
        source,
    })?;
    let spec = parse(&text, SpecSource::File(path))?;
    Ok((spec, text))
}

/// Positions of the values validation may complain about.
#[derive(Deserialize)]
struct Positions {
    #[serde(default)]
    task: Option<Spanned<toml::Value>>,
    #[serde(rename = "scenario", default)]
    scenarios: Vec<ScenarioPositions>,
}

#[derive(Deserialize)]
struct ScenarioPositions {
    name: Option<Spanned<toml::Value>>,
    points: Option<Spanned<toml::Value>>,
    steps: Option<Spanned<Vec<Spanned<toml::Value>>>>,
}

/// Parses and validates a task spec.
pub fn parse(text: &str, source: SpecSource) -> Result<TaskSpec, SpecError> {
    let invalid = |span: Option<Range<usize>>, message: String| {
        let (line, column) = line_col(text, span.map_or(0, |s| s.start));
        SpecError::Invalid {
            file: source.clone(),
            line,
            column,
            message,
        }
    };
    let spec: TaskSpec =
        toml::from_str(text).map_err(|e| invalid(e.span(), e.message().to_string()))?;
    if let Err((location, message)) = validate(&spec) {
        let positions: Option<Positions> = toml::from_str(text).ok();
        let span = positions.and_then(|p| locate(&p, &location));
        return Err(invalid(span, message));
    }
    Ok(spec)
}

fn locate(p: &Positions, loc: &Location) -> Option<Range<usize>> {
    match *loc {
        Location::Task => p.task.as_ref().map(|t| t.span()),
        Location::ScenarioName(i) => p.scenarios.get(i)?.name.as_ref().map(|v| v.span()),
        Location::ScenarioPoints(i) => p.scenarios.get(i)?.points.as_ref().map(|v| v.span()),
        Location::Step(i, j) => {
            let steps = p.scenarios.get(i)?.steps.as_ref()?;
            steps
                .get_ref()
                .get(j)
                .map(|s| s.span())
                .or_else(|| Some(steps.span()))
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
