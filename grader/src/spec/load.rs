//! Reading task files: TOML text → validated [`TaskSpec`], with errors that point at
//! `file:line:column`.
//!
//! A step that does not fit its kind (an unknown or missing field, a bad value) is reported at
//! the step itself — the offending key where it can be told — and the message names the scenario
//! and the step. A [`Step`] is buffered (read into a value, then into the enum its `do` names),
//! which loses TOML's positions, so such an error is located by re-reading the file with
//! positions and deserializing its steps one by one (inner `repeat`/`parallel` steps first; a
//! step that cannot stand inside `parallel` is blamed on the group's `steps`).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::expand::ExpandError;
use super::validate::{Location, validate};
use super::{Dialect, Protocol, Step, TaskSpec, bundled_task};

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
    #[error("cannot read task file {}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A dialect whose keys or values do not fit the task's protocol.
    #[error("dialect {dialect} does not fit {file}: {why}")]
    Dialect {
        /// The dialect's label (its name or file; `(inline)` for one given inline).
        dialect: String,
        /// The task file.
        file: SpecSource,
        /// What does not fit.
        why: String,
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
    load_with(dir, task, &Dialect::default())
}

/// [`load`] under a dialect: the protocol steps are expanded as the task's `[protocol]` table
/// overridden by `dialect` says. The text returned (hashed into reports) is the file's text,
/// followed by the dialect's keys when it sets any, so that a grading under another dialect is
/// a grading under another spec.
pub fn load_with(
    dir: Option<&Path>,
    task: u32,
    dialect: &Dialect,
) -> Result<(TaskSpec, String), SpecError> {
    let (spec, text) = match dir {
        Some(dir) => load_from_dir_with(dir, task, dialect)?,
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
            let spec = parse_task(text, SpecSource::Bundled(name), Some(task), dialect)?;
            (spec, text.to_string())
        }
    };
    Ok((spec, hashed_text(text, dialect)))
}

/// The text a spec under `dialect` is hashed by (see [`load_with`]).
fn hashed_text(text: String, dialect: &Dialect) -> String {
    if dialect.is_empty() {
        text
    } else {
        format!(
            "{text}\n# dialect: {}\n# protocol: {}\n",
            dialect.label,
            dialect.to_inline()
        )
    }
}

/// Loads `dir/task<N>.toml`; its `task` must be N.
pub fn load_from_dir(dir: &Path, task: u32) -> Result<(TaskSpec, String), SpecError> {
    load_from_dir_with(dir, task, &Dialect::default())
}

fn load_from_dir_with(
    dir: &Path,
    task: u32,
    dialect: &Dialect,
) -> Result<(TaskSpec, String), SpecError> {
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
    let spec = parse_task(&text, SpecSource::File(path), Some(task), dialect)?;
    Ok((spec, text))
}

/// Positions of the values validation may complain about.
#[derive(Deserialize)]
struct Positions {
    #[serde(default)]
    task: Option<Spanned<toml::Value>>,
    #[serde(default)]
    protocol: Option<Spanned<toml::Value>>,
    #[serde(default)]
    block: Option<std::collections::BTreeMap<String, Spanned<toml::Value>>>,
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
    parse_task(text, source, None, &Dialect::default())
}

/// Parses and validates a task spec under a dialect.
pub fn parse_with(
    text: &str,
    source: SpecSource,
    dialect: &Dialect,
) -> Result<TaskSpec, SpecError> {
    parse_task(text, source, None, dialect)
}

/// Parses, expands and validates a task spec that, when `asked` is given, must say
/// `task = asked`.
fn parse_task(
    text: &str,
    source: SpecSource,
    asked: Option<u32>,
    dialect: &Dialect,
) -> Result<TaskSpec, SpecError> {
    let invalid = |span: Option<Range<usize>>, message: String| {
        let (line, column) = line_col(text, span.map_or(0, |s| s.start));
        SpecError::Invalid {
            file: source.clone(),
            line,
            column,
            message,
        }
    };
    let mut spec: TaskSpec = toml::from_str(text).map_err(|e| {
        match e.span().and_then(|span| step_error(text, &span)) {
            Some((span, message)) => invalid(Some(span), message),
            None => invalid(e.span(), e.message().to_string()),
        }
    })?;
    let positions = || toml::from_str::<Positions>(text).ok();
    if let Some(asked) = asked.filter(|&n| n != spec.task) {
        let span = positions().and_then(|p| locate(&p, &Location::Task));
        let says = spec.task;
        return Err(invalid(
            span,
            format!(
                "the file says task = {says}, but task {asked} was asked for: \
                 set task = {asked} in it (or, if it is task {says}, name it task{says}.toml and use --task {says})"
            ),
        ));
    }
    // The task's own [protocol] first (its errors are the file's), then under the dialect.
    Protocol::resolve(&spec.protocol, &Dialect::default()).map_err(|m| {
        let span = positions().and_then(|p| p.protocol.map(|v| v.span()));
        invalid(span, format!("[protocol]: {m}"))
    })?;
    let protocol =
        Protocol::resolve(&spec.protocol, dialect).map_err(|why| SpecError::Dialect {
            dialect: if dialect.label.is_empty() {
                "(inline)".to_string()
            } else {
                dialect.label.clone()
            },
            file: source.clone(),
            why,
        })?;
    let origins = match super::expand::expand_spec(&mut spec, &protocol) {
        Ok(o) => o,
        Err(ExpandError::Step(i, j, message)) => {
            let span = positions().and_then(|p| locate(&p, &Location::Step(i, j)));
            return Err(invalid(span, message));
        }
        Err(ExpandError::Block(name, message)) => {
            let span = positions()
                .and_then(|p| p.block)
                .and_then(|b| b.get(&name).map(|v| v.span()));
            return Err(invalid(span, message));
        }
    };
    if let Err((location, message)) = validate(&spec, &origins) {
        let span = positions().and_then(|p| locate(&p, &location));
        return Err(invalid(span, message));
    }
    spec.dialect = dialect.clone();
    spec.resolved = protocol;
    Ok(spec)
}

/// Locates a deserialization error that toml reported somewhere inside a scenario's `steps`
/// (as it does for every error inside a step): the first step of that scenario that does not
/// deserialize on its own, its position (the offending key where it can be told) and a message
/// naming the scenario and the step. `None` if the error is not inside a `steps` array.
fn step_error(text: &str, error: &Range<usize>) -> Option<(Range<usize>, String)> {
    let doc = DeTable::parse(text).ok()?;
    let scenarios = doc.get_ref().get("scenario")?.get_ref().as_array()?;
    scenarios.iter().enumerate().find_map(|(i, sc)| {
        let sc = sc.get_ref().as_table()?;
        let steps = sc.get("steps")?;
        let span = steps.span();
        if !(span.start <= error.start && error.end <= span.end) {
            return None;
        }
        let scenario = match sc.get("name").and_then(|n| n.get_ref().as_str()) {
            Some(name) => format!("scenario {name:?}"),
            None => format!("scenario {}", i + 1),
        };
        bad_step(steps.get_ref().as_array()?, &format!("{scenario}, step"))
    })
}

/// The first of `steps` that does not deserialize as a [`Step`]; inner steps of a `repeat` or
/// `parallel` are blamed before the group. `label` starts the step's name ("scenario …, step").
fn bad_step(steps: &[Spanned<DeValue<'_>>], label: &str) -> Option<(Range<usize>, String)> {
    steps.iter().enumerate().find_map(|(j, step)| {
        let mut message = deserialize_step(step).err()?;
        let table = step.get_ref().as_table();
        if table.is_none() {
            let ty = step.get_ref().type_str();
            let a = if ty.starts_with(['a', 'i']) { "an" } else { "a" };
            message = format!(
                "a step is an inline table such as {{ do = \"connect\", conn = \"a\" }}, not {a} {ty}"
            );
        }
        let kind = table
            .and_then(|t| t.get("do"))
            .and_then(|d| d.get_ref().as_str());
        let name = match kind {
            Some(kind) => format!("{label} {} ({kind})", j + 1),
            None => format!("{label} {}", j + 1),
        };
        // Only groups have inner steps: elsewhere `steps` is an unknown field, blamed below.
        let inner = table
            .filter(|_| matches!(kind, Some("repeat" | "parallel")))
            .and_then(|t| t.get("steps"))
            .and_then(|s| s.get_ref().as_array());
        if let Some(found) = inner.and_then(|inner| bad_step(inner, &format!("{name}, inner step")))
        {
            return Some(found);
        }
        Some((blame(step, &message), format!("{name}: {message}")))
    })
}

fn deserialize_step(step: &Spanned<DeValue<'_>>) -> Result<Step, String> {
    Step::deserialize(ValueDeserializer::from(step.clone())).map_err(|e| e.message().to_string())
}

/// Where in a step that fails with `message` the fault lies: a key that fails with it — the
/// unknown field, the bad value, else an unknown `do` — or the whole step (a missing field, a
/// step that is not a table).
///
/// Serde fails at the first bad key and checks for missing fields last, so a good key never
/// changes the message; but another bad key may fail with the same message (`{ do = "send", conn
/// = 5, line = 5 }`), so that removing either one alone changes nothing. Hence the keys are tried
/// from the last as written: one whose removal leaves the message as it is stays removed, and the
/// first whose removal changes the message (or makes the step parse) is blamed — of the keys that
/// fail with the message, the first as written. `do` comes last, once no other key is implicated
/// (without it every step fails differently: "missing field `do`").
fn blame(step: &Spanned<DeValue<'_>>, message: &str) -> Range<usize> {
    let whole = step.span();
    let Some(table) = step.get_ref().as_table() else {
        return whole;
    };
    if message.starts_with("missing field") {
        return whole;
    }
    let (tag, mut fields): (Vec<_>, Vec<_>) = table.iter().map(|(key, _)| key).partition(|key| {
        let name: &str = key.get_ref();
        name == "do"
    });
    // The table iterates its keys sorted, not as written.
    fields.sort_by_key(|key| key.span().start);
    let mut left = table.clone();
    for key in fields.into_iter().rev().chain(tag) {
        let mut without = left.clone();
        without.remove(key.get_ref().as_ref());
        let fails = deserialize_step(&Spanned::new(
            whole.clone(),
            DeValue::Table(without.clone()),
        ))
        .err();
        if fails.as_deref() != Some(message) {
            return key.span();
        }
        left = without;
    }
    whole
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
    use crate::spec::ConnStep;

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }

    const HEAD: &str = "task = 3\ntitle = \"t\"\n[[scenario]]\nname = \"sc\"\npoints = 1\nrole = \"server\"\nsteps = [\n  { do = \"start_server\" },\n";

    /// (line, column, message) of the error `steps` (after `start_server`, from line 9) give.
    fn error_at(steps: &str) -> (usize, usize, String) {
        match parse(&format!("{HEAD}{steps}]\n"), SpecSource::Bundled("t.toml")) {
            Err(SpecError::Invalid {
                line,
                column,
                message,
                ..
            }) => (line, column, message),
            other => panic!("expected an invalid spec, got {other:?}"),
        }
    }

    /// The 1-based (line, column) of `needle` in `steps`, as numbered by [`error_at`].
    fn place(steps: &str, needle: &str) -> (usize, usize) {
        let text = format!("{HEAD}{steps}");
        line_col(&text, HEAD.len() + steps.find(needle).expect(needle))
    }

    #[test]
    fn step_errors_point_at_the_step_and_name_it() {
        let steps = "  { do = \"connect\", conn = \"a\" },\n  { do = \"expect\", on = \"a\", any = true, withn = \"2s\" },\n";
        let (line, column, m) = error_at(steps);
        assert_eq!((line, column), place(steps, "withn"), "{m}");
        assert_eq!(line, 10);
        assert!(
            m.starts_with("scenario \"sc\", step 3 (expect): unknown field `withn`"),
            "{m}"
        );

        let (line, column, m) = error_at("  { do = \"connect\" },\n");
        assert_eq!((line, column), (9, 3), "missing field: the whole step; {m}");
        assert_eq!(m, "scenario \"sc\", step 2 (connect): missing field `conn`");

        let steps = "  { do = \"connect\", conn = \"a\", within = \"soon\" },\n";
        let (line, column, m) = error_at(steps);
        assert_eq!(
            (line, column),
            place(steps, "within"),
            "bad value: its key; {m}"
        );
        assert!(m.contains("step 2 (connect): invalid duration"), "{m}");

        let steps = "  { do = \"teleport\" },\n";
        let (line, column, m) = error_at(steps);
        assert_eq!(
            (line, column),
            place(steps, "do"),
            "unknown step: its `do`; {m}"
        );
        assert!(
            m.contains("step 2 (teleport): unknown variant `teleport`"),
            "{m}"
        );

        let (line, _, m) = error_at("  \"connect\",\n");
        assert_eq!(line, 9, "{m}");
        assert!(m.contains("step 2: a step is an inline table"), "{m}");
    }

    #[test]
    fn nested_step_errors_point_at_the_inner_step() {
        let steps = "  { do = \"connect\", conn = \"a\" },\n  { do = \"repeat\", count = 2, steps = [\n    { do = \"send\", conn = \"a\", line = \"x\" },\n    { do = \"send\", conn = \"a\", lin = \"y\" },\n  ] },\n";
        let (line, column, m) = error_at(steps);
        assert_eq!((line, column), place(steps, "lin ="), "{m}");
        assert_eq!(line, 12);
        assert!(
            m.starts_with(
                "scenario \"sc\", step 3 (repeat), inner step 2 (send): unknown field `lin`"
            ),
            "{m}"
        );
        // The group's own field is blamed when its inner steps are fine.
        let steps = "  { do = \"parallel\", count = -1, steps = [\n    { do = \"connect\", conn = \"a\" },\n  ] },\n";
        let (line, column, m) = error_at(steps);
        assert_eq!((line, column), place(steps, "count"), "{m}");
        assert!(m.contains("step 2 (parallel): invalid value"), "{m}");
    }

    #[test]
    fn two_keys_failing_alike_blame_the_first_not_do() {
        let steps =
            "  { do = \"connect\", conn = \"a\" },\n  { do = \"send\", conn = 5, line = 5 },\n";
        let (line, column, m) = error_at(steps);
        assert_eq!((line, column), place(steps, "conn = 5"), "{m}");
        assert!(m.starts_with("scenario \"sc\", step 3 (send): "), "{m}");
        // The same with the keys the other way round: the first as written.
        let steps =
            "  { do = \"connect\", conn = \"a\" },\n  { do = \"send\", line = 5, conn = 5 },\n";
        let (line, column, m) = error_at(steps);
        assert_eq!((line, column), place(steps, "line = 5"), "{m}");
        // `do` after the bad keys is still not blamed.
        let steps = "  { conn = 5, line = 5, do = \"send\" },\n";
        let (line, column, m) = error_at(steps);
        assert_eq!((line, column), place(steps, "conn = 5"), "{m}");
    }

    #[test]
    fn protocol_step_errors_point_at_the_step_as_written() {
        let steps = "  { do = \"join\", conn = \"a\" },\n  { do = \"use\", block = \"nope\" },\n";
        let (line, column, m) = error_at(steps);
        assert_eq!((line, column), place(steps, "{ do = \"use\""), "{m}");
        assert!(m.contains("step 3 (use): there is no [block.nope]"), "{m}");
        // A validation error of an expanded step is located at the step it came from: `join`
        // expands to two steps, so the bad `expect_reply` is the 4th expanded, the 3rd written.
        let steps = "  { do = \"join\", conn = \"a\" },\n  { do = \"expect_reply\", on = \"zz\", to = \"x\" },\n";
        let (line, column, m) = error_at(steps);
        assert_eq!(
            (line, column),
            place(steps, "{ do = \"expect_reply\""),
            "{m}"
        );
        assert!(m.starts_with("scenario \"sc\", step 3: "), "{m}");
        let steps = "  { do = \"welcome\", conn = \"s\" },\n";
        let (_, _, m) = error_at(steps);
        assert!(
            m.contains("`welcome` belongs in a scenario with role = \"client\""),
            "{m}"
        );
    }

    #[test]
    fn byte_steps_are_checked_when_loaded() {
        let ok = "  { do = \"connect\", conn = \"a\" },\n  { do = \"send\", conn = \"a\", random = 65536 },\n  { do = \"send\", conn = \"a\", hex = \"00 ff\" },\n  { do = \"expect_bytes\", on = \"a\", echo = true },\n  { do = \"expect_bytes\", on = \"a\", hex = \"00ff\", within = \"1s\" },\n";
        let spec = parse(&format!("{HEAD}{ok}]\n"), SpecSource::Bundled("t.toml")).unwrap();
        assert_eq!(spec.scenarios[0].steps[4].kind(), "expect_bytes");
        let connect = "  { do = \"connect\", conn = \"a\" },\n";
        for (step, wanted) in [
            (
                "{ do = \"expect_bytes\", on = \"a\" }",
                "needs exactly one of `hex` and `echo = true`",
            ),
            (
                "{ do = \"expect_bytes\", on = \"a\", echo = true, hex = \"00\" }",
                "needs exactly one of `hex` and `echo = true`",
            ),
            (
                "{ do = \"expect_bytes\", on = \"a\", hex = \"0g\" }",
                "is not an even number of hex digits",
            ),
            (
                "{ do = \"expect_bytes\", on = \"b\", echo = true }",
                "\"b\"",
            ),
            (
                "{ do = \"send\", conn = \"a\", random = 0 }",
                "send from 1 to",
            ),
            (
                "{ do = \"send\", conn = \"a\", random = 5, line = \"x\" }",
                "exactly one of `text`, `line`, `hex` or `random`",
            ),
        ] {
            let (line, _, m) = error_at(&format!("{connect}  {step},\n"));
            assert_eq!(line, 10, "{step}: {m}");
            assert!(m.contains(wanted), "{step}: {m}");
        }
    }

    #[test]
    fn blocks_take_parameters() {
        let text = format!(
            "{HEAD}  {{ do = \"use\", block = \"pair\", with = {{ a = \"x\" }} }},\n  {{ do = \"expect_reply\", on = \"x\", to = \"hi\" }},\n]\n[block.pair]\nparams = [\"a\"]\nsteps = [{{ do = \"join\", conn = \"{{a}}\" }}, {{ do = \"send\", conn = \"{{a}}\", line = \"hi {{nonce}}\" }}]\n"
        );
        let spec = parse(&text, SpecSource::Bundled("t.toml")).unwrap();
        let kinds: Vec<&str> = spec.scenarios[0].steps.iter().map(|s| s.kind()).collect();
        assert_eq!(
            kinds,
            ["start_server", "connect", "expect", "send", "expect"]
        );
        match &spec.scenarios[0].steps[3] {
            Step::Conn(ConnStep::Send { conn, line, .. }) => {
                assert_eq!(conn, "x");
                assert_eq!(line.as_deref(), Some("hi {nonce}"));
            }
            other => panic!("{other:?}"),
        }
        let broken = text.replace("line = \"hi {nonce}\"", "lin = \"hi\"");
        match parse(&broken, SpecSource::Bundled("t.toml")) {
            Err(SpecError::Invalid { line, message, .. }) => {
                assert_eq!(line, 12, "the block's header; {message}");
                assert!(
                    message.contains("[block.pair], step 2: unknown field `lin`"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        let missing = text.replace("with = { a = \"x\" }", "with = {}");
        match parse(&missing, SpecSource::Bundled("t.toml")) {
            Err(SpecError::Invalid { line, message, .. }) => {
                assert_eq!(line, 9, "{message}");
                assert!(message.contains("needs a value for \"a\""), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_dialect_changes_the_bytes_not_the_scenarios() {
        let text = format!(
            "{HEAD}  {{ do = \"join\", conn = \"a\", name = \"al\" }},\n  {{ do = \"chat\", conn = \"a\", to = \"bo\", text = \"t {{nonce}}\" }},\n]\n[protocol]\nformat = \"json\"\n"
        );
        let lines = |spec: &TaskSpec| -> Vec<String> {
            spec.scenarios[0]
                .steps
                .iter()
                .filter_map(|s| match s {
                    Step::Conn(ConnStep::Send { line, .. }) => line.clone(),
                    _ => None,
                })
                .collect()
        };
        let spec = parse(&text, SpecSource::Bundled("t.toml")).unwrap();
        assert_eq!(
            lines(&spec),
            [
                r#"{{"status":"register","sender":"al"}}"#,
                r#"{{"status":"1","sender":"al","receiver":"bo","text":"t {nonce}"}}"#
            ]
        );
        let d = Dialect::combine(&[
            Dialect::named("name-line").unwrap(),
            Dialect::inline("t", toml::from_str("fields = { text = \"msg\" }").unwrap()).unwrap(),
        ]);
        let spec = parse_with(&text, SpecSource::Bundled("t.toml"), &d).unwrap();
        assert_eq!(
            lines(&spec),
            [
                "al".to_string(),
                r#"{{"status":"1","sender":"al","receiver":"bo","msg":"t {nonce}"}}"#.to_string()
            ]
        );
        assert_eq!(spec.dialect.label, "name-line + t");
    }

    #[test]
    fn only_groups_have_inner_steps() {
        let steps = "  { do = \"connect\", conn = \"a\", steps = [{ do = \"bogus\" }] },\n";
        let (line, column, m) = error_at(steps);
        assert_eq!((line, column), place(steps, "steps"), "{m}");
        assert!(
            m.starts_with("scenario \"sc\", step 2 (connect): unknown field `steps`"),
            "{m}"
        );
        assert!(!m.contains("inner step"), "{m}");
    }

    #[test]
    fn errors_outside_steps_keep_their_place() {
        let text = format!("{HEAD}]\nbogus = 1\n");
        match parse(&text, SpecSource::Bundled("t.toml")) {
            Err(SpecError::Invalid { line, message, .. }) => {
                assert_eq!(line, 10, "{message}");
                assert!(message.starts_with("unknown field `bogus`"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_task_number_must_be_the_one_asked_for() {
        let text = format!("{HEAD}]\n");
        let source = SpecSource::Bundled("t.toml");
        assert!(parse_task(&text, source.clone(), Some(3), &Dialect::default()).is_ok());
        assert!(
            parse(&text, source.clone()).is_ok(),
            "no task asked: any number"
        );
        match parse_task(&text, source, Some(1), &Dialect::default()) {
            Err(SpecError::Invalid {
                line,
                column,
                message,
                ..
            }) => {
                assert_eq!((line, column), (1, 8));
                assert!(
                    message.starts_with("the file says task = 3, but task 1 was asked for"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
