//! The command line's grammar: every subcommand and option of `grader`, as clap parses them.
//!
//! Guarantees: this module only describes and parses; it never grades. Each option's help is the
//! user-facing documentation (`tests/integration/docs.rs` includes this file to check that every
//! `grader` command quoted in the docs parses). Values are checked here where they can be
//! (`--time-limit`, `--min-score`, `--shard`, task names), the rest when the job is built
//! ([`grader::job`]).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use clap::ValueEnum;

use grader::audience::Audience;
use grader::batch::Shard;
use grader::job::Settings;
use grader::net::netns::IsolationMode;
use grader::report::console::ConsoleStyle;
use grader::spec::{self, Role};
use grader::verdict::GradeReport;
use grader::{export, launch};

/// Autograder for socket-programming assignments.
#[derive(Debug, Parser)]
#[command(name = "grader", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Grade one submission for one task.
    Run(RunArgs),
    /// Grade every submission in a folder (resumable, parallel, shardable).
    Batch(BatchArgs),
    /// Export scores from TOML reports: CSV, Gradescope, GitHub Classroom, HTML or Markdown.
    Export(ExportArgs),
    /// Combine report folders (e.g. one per --shard) into one.
    Merge {
        /// Report folders to combine.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Where the combined reports go.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Rerun exactly the grading a TOML report records (same task, seed, submission, templates).
    Replay(ReplayArgs),
    /// Run a bundled reference solution (what `grader run` grades when no submission is given).
    #[command(hide = true)]
    Reference {
        /// Task number or bundled task name.
        #[arg(long, value_parser = spec::parse_task_arg)]
        task: u32,
        /// `server --port P` or `client --host H --port P [--name N]`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The guard that ends student programs should the grader be killed (started by the grader
    /// itself, see `process::watchdog`).
    #[command(hide = true)]
    Guard {
        /// The grader's identity (`<pid>-<start>-<scope>`).
        #[arg(long)]
        grader: String,
        /// The grader's TMPDIR (absolute).
        #[arg(long)]
        tmp: PathBuf,
        /// The read end of the pipe whose write end the grader holds.
        #[arg(long)]
        pipe_fd: i32,
        /// A pidfd of the grader.
        #[arg(long)]
        pidfd: Option<i32>,
    },
    /// List the tasks and their scenarios, with what each checks (validating the task files
    /// under the dialect given).
    Tasks {
        /// Read task files from this folder instead of the bundled ones.
        #[arg(long)]
        tasks_dir: Option<PathBuf>,
        #[command(flatten)]
        dialect: DialectArgs,
        /// Also print each scenario's steps, with protocol steps expanded as the dialect says.
        #[arg(long)]
        steps: bool,
        /// List the bundled protocol dialects instead.
        #[arg(long)]
        dialects: bool,
    },
}

/// The protocol dialect of a class: `--dialect` and `--protocol` (see `spec::protocol`).
#[derive(Debug, Clone, Default, Args)]
pub struct DialectArgs {
    /// Protocol dialect: a bundled one by name (`grader tasks --dialects` lists them) or a
    /// dialect file. Repeatable: later ones override earlier ones' keys.
    #[arg(long, value_name = "NAME|FILE")]
    pub dialect: Vec<String>,
    /// Protocol keys, as TOML, applied after --dialect: e.g. 'reply = "any"' or
    /// 'fields = { text = "msg" }'. Repeatable.
    #[arg(long, value_name = "KEYS")]
    pub protocol: Vec<String>,
}

impl DialectArgs {
    /// The dialect these options make (empty without any).
    pub fn dialect(&self) -> Result<spec::Dialect, String> {
        let mut parts = Vec::new();
        for name in &self.dialect {
            parts.push(
                spec::Dialect::named(name)
                    .map_err(|e| format!("--dialect: {}", grader::error_chain::chain(&e)))?,
            );
        }
        for keys in &self.protocol {
            let table: toml::Table = toml::from_str(keys).map_err(|e| {
                format!(
                    "--protocol {keys:?} is not TOML keys (write e.g. 'reply = \"any\"'): {}",
                    e.message()
                )
            })?;
            parts.push(
                spec::Dialect::inline(&format!("--protocol '{keys}'"), table)
                    .map_err(|e| format!("--protocol: {}", grader::error_chain::chain(&e)))?,
            );
        }
        Ok(spec::Dialect::combine(&parts))
    }
}

/// How a submission is started: for `grader run`, the submission's own; for `grader batch`,
/// the defaults of every submission whose `classchat.toml` does not say.
#[derive(Debug, Clone, Default, Args)]
pub struct LaunchArgs {
    /// How to start the student's server, e.g. "python3 server.py --port {port}".
    /// Placeholders: {bin} {dir} {host} {port} {name}. No shell is used. Without {port} the
    /// program is not told its port (it hard-codes one): accepted, with a note. In a batch: for
    /// submissions whose classchat.toml names none.
    #[arg(long, value_name = "TEMPLATE")]
    pub server: Option<String>,
    /// How to start the student's client, e.g. "python3 client.py {host} {port}". In a batch:
    /// for submissions whose classchat.toml names none.
    #[arg(long, value_name = "TEMPLATE")]
    pub client: Option<String>,
    /// Build the submission folder first, in a copy of it, e.g. "make" or "javac *.java".
    /// Placeholder: {dir} (the copy). No shell is used; a word with * ? [ is a pattern
    /// expanded in the copy (one that matches nothing is an error). In a batch: for submission
    /// folders whose classchat.toml names none.
    #[arg(long, value_name = "COMMAND")]
    pub build: Option<String>,
    /// A line typed on the client's stdin right after it starts, before the scenario's own
    /// (repeatable, in order), for clients that ask for a host or a name first, e.g.
    /// --stdin-prelude "{host}" --stdin-prelude "{name}". Placeholders: {host} {port} {name}.
    /// In a batch: for submissions whose classchat.toml sets no stdin_prelude.
    #[arg(long = "stdin-prelude", value_name = "LINE")]
    pub stdin_prelude: Vec<String>,
    /// The client's stdin: a pipe (default) or a terminal (for clients that need one, e.g.
    /// Java's System.console()); its stdout is a terminal either way. In a batch: for
    /// submissions whose classchat.toml sets no client_stdin.
    #[arg(long, value_enum, value_name = "pipe|terminal")]
    pub client_stdin: Option<ClientStdinArg>,
    /// Grade only this role (repeatable): the other role's scenarios are not run and not part
    /// of the maximum, e.g. --role server for a task graded on its server half. In a batch:
    /// for submissions whose classchat.toml sets no roles.
    #[arg(long = "role", value_name = "server|client", value_parser = launch::parse_role)]
    pub roles: Vec<Role>,
}

/// How every grading of a command is done, beyond the submission: the task files, the time
/// limits, the isolation, port leniency and the class's dialect (`grader run` and `grader batch`
/// alike; see [`GradingArgs::settings`]).
#[derive(Debug, Clone, Args)]
pub struct GradingArgs {
    /// Folder with task<N>.toml files (default: the task files built into the grader).
    #[arg(long, value_name = "DIR")]
    pub tasks_dir: Option<PathBuf>,
    /// Wall-clock limit of a grading's scenarios, all together (its build has its own):
    /// scenarios not finished by then are timed out, e.g. "90s", "5m".
    #[arg(long, alias = "timeout", value_name = "DURATION", default_value = "10m", value_parser = time_limit)]
    pub time_limit: Duration,
    /// How long a build may take (default 120s).
    #[arg(long, hide = true, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub build_timeout: Option<Duration>,
    /// Network isolation: a network namespace per scenario (netns), the host's loopback (host),
    /// or netns where the system allows it and host otherwise (auto). A batch's record graded
    /// with another isolation is not up to date.
    #[arg(long, value_enum, default_value_t)]
    pub isolation: IsolationArg,
    /// Grade a program that uses another port than its assigned one on that port (a server on the
    /// port it listens on; a client, inside a network namespace, redirected to the grader's
    /// listener) in every scenario except those about the port, which fail naming it; the
    /// report notes it once. Default: on; `=false` fails every scenario of such a program.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub accept_any_port: Option<bool>,
    /// The class's protocol dialect (a submission folder's classchat.toml may add its own on
    /// top).
    #[command(flatten)]
    pub dialect: DialectArgs,
}

impl GradingArgs {
    /// The library's settings of these options, reports under `out`, `parallelism` scenarios
    /// at once (None: all of a grading's).
    pub fn settings(&self, out: &std::path::Path, parallelism: Option<usize>) -> Settings {
        Settings {
            tasks_dir: self.tasks_dir.clone(),
            time_limit: self.time_limit,
            build_timeout: self.build_timeout,
            isolation: self.isolation.into(),
            accept_any_port: self.accept_any_port,
            parallelism,
            out: out.to_path_buf(),
        }
    }
}

/// Arguments of `grader run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Task number or bundled task name (`grader tasks` lists them: 1-4 are ClassChat, 5-7 its bonus tasks).
    #[arg(long, value_parser = spec::parse_task_arg)]
    pub task: u32,
    /// The submission: an executable following the launch contract (see tasks/PROTOCOL.md), or a
    /// folder, started as `grader batch` starts one: its classchat.toml (which the options below
    /// override), else the launch contract on its executable named `submission` or its only
    /// one. Without it, the reference solution built into the grader is graded (a
    /// demonstration, and a check of the machine).
    pub submission: Option<String>,
    /// How to start the submission.
    #[command(flatten)]
    pub launch: LaunchArgs,
    /// How it is graded.
    #[command(flatten)]
    pub grading: GradingArgs,
    /// Where reports go: <out>/<submission>/task<N>.{toml,junit.xml}.
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub out: PathBuf,
    /// Exit 0 only at or above this score: points ("24") or a percentage ("80%"). A fraction
    /// below 1 ("0.8") is refused as ambiguous.
    #[arg(long, value_name = "POINTS|PERCENT")]
    pub min_score: Option<MinScore>,
    /// Terminal output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ConsoleArg,
    /// Print full transcripts and stderr of failed scenarios.
    #[arg(short, long)]
    pub verbose: bool,
    /// Seed for the randomised payloads; replays a grading exactly.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Scenarios run at once (default: twice the number of CPU cores).
    #[arg(short = 'j', long)]
    pub jobs: Option<usize>,
    /// Who the console output and JUnit file are for (the TOML record keeps everything).
    #[arg(long, value_enum, default_value_t)]
    pub audience: AudienceArg,
    /// The due date has passed: show `after_due` scenarios to students.
    #[arg(long)]
    pub after_due: bool,
}

/// Arguments of `grader batch`.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Task number or bundled task name (`grader tasks` lists them). Repeatable, to grade a
    /// class's tasks in one run: each folder is graded for the task given last before it
    /// (`--task 1 t1-subs/ --task 2 t2-subs/`); with one --task, every folder is graded for it.
    #[arg(long, required = true, value_parser = spec::parse_task_arg)]
    pub task: Vec<u32>,
    /// Folder of submissions: each subfolder (student id = folder name) or executable file.
    /// Several folders: one class per folder (see --task).
    #[arg(required = true, value_name = "DIR")]
    pub dir: Vec<PathBuf>,
    /// Each folder with its task, in the order given (filled from --task and DIR by [`parse`]).
    #[arg(skip)]
    pub classes: Vec<(u32, PathBuf)>,
    /// How to start submissions whose classchat.toml does not say.
    #[command(flatten)]
    pub launch: LaunchArgs,
    /// How each is graded.
    #[command(flatten)]
    pub grading: GradingArgs,
    /// Where reports go: <out>/<student id>/task<N>.{toml,junit.xml}.
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub out: PathBuf,
    /// The most submissions graded at once. Between one and that many run, a new one starting
    /// whenever the CPU has room (waiting scenarios cost none); default: 16 per CPU core, lowered
    /// to what open files and memory allow.
    #[arg(short = 'j', long)]
    pub jobs: Option<usize>,
    /// Regrade submissions whose records are up to date.
    #[arg(long)]
    pub force: bool,
    /// Grade only slice K of N (deterministic, by sorted student id), e.g. 2/4.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// One seed for every grading (default: a fresh seed per submission, recorded).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Who the per-submission JUnit files and --export outputs are for.
    #[arg(long, value_enum, default_value_t)]
    pub audience: AudienceArg,
    /// The due date has passed: show `after_due` scenarios to students.
    #[arg(long)]
    pub after_due: bool,
    /// Also export, when the batch ends (repeatable): files go to <out>/.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub export: Vec<ExportArg>,
    /// Plain lines even on a terminal (no progress bar).
    #[arg(long)]
    pub no_progress: bool,
    #[command(flatten)]
    pub canvas: CanvasArgs,
}

/// Arguments of `grader export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Output format.
    #[arg(long, value_enum)]
    pub format: ExportArg,
    /// Reports folder: <dir>/<student>/task<N>.toml.
    pub reports: PathBuf,
    /// Output file ("-" for stdout; default: <reports>/<grades.csv|results.json|...>).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Who the export is for.
    #[arg(long, value_enum, default_value_t)]
    pub audience: AudienceArg,
    /// The due date has passed: show `after_due` scenarios to students.
    #[arg(long)]
    pub after_due: bool,
    /// Only this student (required for gradescope/classroom when the folder holds several).
    #[arg(long, value_name = "ID")]
    pub student: Option<String>,
    /// Only this task (number or bundled task name).
    #[arg(long, value_parser = spec::parse_task_arg)]
    pub task: Option<u32>,
    /// CSV: header of the id column (e.g. "username" for Moodle).
    #[arg(long, value_name = "NAME", default_value = "student_id")]
    pub id_column: String,
    #[command(flatten)]
    pub canvas: CanvasArgs,
}

/// Options of the Canvas export (`export --format canvas`, `batch --export canvas`).
#[derive(Debug, Args)]
pub struct CanvasArgs {
    /// Canvas: the course's gradebook CSV (Canvas: Grades → Export), whose identification
    /// columns the import needs.
    #[arg(long, value_name = "FILE")]
    pub roster: Option<PathBuf>,
    /// Canvas: the roster column that holds the grader's student ids (the ids the records name; by default
    /// the submission folder names).
    #[arg(long, value_name = "COLUMN", default_value = "SIS Login ID")]
    pub match_column: String,
    /// Canvas: column name for the points of the one exported task, e.g. an existing
    /// assignment's "ClassChat Task 1 (4711)" (default: "Task N: <title>", a new assignment).
    #[arg(long, value_name = "NAME")]
    pub assignment: Option<String>,
}

impl CanvasArgs {
    pub fn options(&self, id_column: String) -> export::Options {
        export::Options {
            id_column,
            roster: self.roster.clone(),
            match_column: self.match_column.clone(),
            assignment: self.assignment.clone(),
        }
    }
}

/// Arguments of `grader replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The TOML report of the grading to rerun.
    pub report: PathBuf,
    /// Where the new reports go.
    #[arg(long, value_name = "DIR", default_value = "replay-reports")]
    pub out: PathBuf,
    /// Terminal output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ConsoleArg,
    /// Print full transcripts and stderr of failed scenarios.
    #[arg(short, long)]
    pub verbose: bool,
    /// Who the console output is for.
    #[arg(long, value_enum, default_value_t)]
    pub audience: AudienceArg,
}

/// Parses the command line (exits with clap's message and status 2 on a usage error), pairing
/// each batch folder with its task.
pub fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let (Command::Batch(args), Some(("batch", m))) = (&mut cli.command, matches.subcommand()) {
        match pair_classes(args, m) {
            Ok(classes) => args.classes = classes,
            Err(why) => Cli::command()
                .error(clap::error::ErrorKind::ArgumentConflict, why)
                .exit(),
        }
    }
    cli
}

/// Each batch folder with the task given last before it on the command line (with one
/// `--task`, wherever it stands, every folder's).
pub fn pair_classes(args: &BatchArgs, m: &clap::ArgMatches) -> Result<Vec<(u32, PathBuf)>, String> {
    if let [task] = args.task[..] {
        return Ok(args.dir.iter().map(|d| (task, d.clone())).collect());
    }
    let tasks: Vec<usize> = m
        .indices_of("task")
        .map(Iterator::collect)
        .unwrap_or_default();
    let dirs: Vec<usize> = m
        .indices_of("dir")
        .map(Iterator::collect)
        .unwrap_or_default();
    let mut classes = Vec::new();
    for (at, dir) in dirs.iter().zip(&args.dir) {
        let Some(k) = tasks.iter().rposition(|t| t < at) else {
            return Err(format!(
                "the folder {} comes before any --task: with several tasks, give each folder after its task (--task 1 t1-subs/ --task 2 t2-subs/)",
                dir.display()
            ));
        };
        classes.push((args.task[k], dir.clone()));
    }
    for task in &args.task {
        if !classes.iter().any(|(t, _)| t == task) {
            return Err(format!(
                "--task {task} has no folder after it: give each task its folder (--task 1 t1-subs/ --task 2 t2-subs/)"
            ));
        }
    }
    Ok(classes)
}

/// Parses a `--time-limit`: a duration ("90s", "5m") of more than zero and at most a day.
pub fn time_limit(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("a grading needs some time: give more than 0s".into()),
        Ok(d) if d > Duration::from_secs(24 * 3600) => {
            Err("at most a day (24h): a grading that needs more is stuck".into())
        }
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e} (write e.g. \"90s\" or \"10m\")")),
    }
}

/// A `--min-score`: points or a percentage of the maximum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MinScore {
    /// Absolute points.
    Points(f64),
    /// Percentage of the maximum score.
    Percent(f64),
}

impl FromStr for MinScore {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a score: write points (24) or a percentage (80%)");
        let (num, pct) = match s.trim().strip_suffix('%') {
            Some(n) => (n, true),
            None => (s.trim(), false),
        };
        let v: f64 = num.trim().parse().map_err(|_| bad())?;
        if !v.is_finite() || v < 0.0 || (pct && v > 100.0) {
            return Err(bad());
        }
        // "0.8" reads as a fraction (80%) to many but means 0.8 points: a gate that almost
        // always passes. A fraction of a point below 1 is never what was meant.
        if !pct && v > 0.0 && v < 1.0 {
            return Err(format!(
                "{s:?} is ambiguous (0.8 points, or 80%?): write 80% or a number of points"
            ));
        }
        Ok(if pct {
            MinScore::Percent(v)
        } else {
            MinScore::Points(v)
        })
    }
}

impl MinScore {
    /// Whether a report meets the bar.
    pub fn met_by(self, report: &GradeReport) -> bool {
        match self {
            MinScore::Points(p) => report.score + 1e-9 >= p,
            MinScore::Percent(p) => report.percent() + 1e-9 >= p,
        }
    }
}

/// The command line's words for the library's choices: each value enum below names the values
/// (and their help) an option takes and converts into the library's own type, which knows
/// nothing of the command line.
macro_rules! value_enum {
    ($(#[$doc:meta])* $name:ident => $target:ty { $($(#[$vattr:meta])* $variant:ident => $to:expr,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
        pub enum $name {
            $($(#[$vattr])* $variant,)+
        }

        impl From<$name> for $target {
            fn from(value: $name) -> Self {
                match value {
                    $($name::$variant => $to,)+
                }
            }
        }
    };
}

value_enum! {
    /// `--isolation`.
    IsolationArg => IsolationMode {
        /// A namespace per scenario where the system allows it, else the host's loopback.
        #[default]
        Auto => IsolationMode::Auto,
        /// A namespace per scenario, or fail.
        Netns => IsolationMode::Netns,
        /// The host's loopback with reserved ports.
        Host => IsolationMode::Host,
    }
}

value_enum! {
    /// `--audience`.
    AudienceArg => Audience {
        /// Students: hidden scenarios and limited feedback are redacted.
        #[default]
        Student => Audience::Student,
        /// Instructors: everything the record holds.
        Instructor => Audience::Instructor,
    }
}

value_enum! {
    /// `--format` of the console (`grader run`, `grader replay`).
    ConsoleArg => ConsoleStyle {
        /// Detailed: every failure explained with transcript and hint.
        #[default]
        Human => ConsoleStyle::Human,
        /// One line per scenario (plus a failure's message and any notes); reads well in a CI log.
        Compact => ConsoleStyle::Compact,
    }
}

value_enum! {
    /// `--client-stdin`.
    ClientStdinArg => launch::ClientStdin {
        /// A pipe (the default): what most programs expect when they are not run by hand.
        #[default]
        Pipe => launch::ClientStdin::Pipe,
        /// The pseudo-terminal its stdout already is: `isatty(0)` holds, Java's
        /// `System.console()` is not null; lines are read one at a time, nothing typed is
        /// echoed, end of input is Ctrl-D.
        Terminal => launch::ClientStdin::Terminal,
    }
}

value_enum! {
    /// `--format` of `grader export`, `--export` of `grader batch`.
    ExportArg => export::ExportFormat {
        /// One row per student: id, total, per-task scores, per-scenario points (LMS import).
        #[default]
        Csv => export::ExportFormat::Csv,
        /// Canvas gradebook import: the roster's (--roster) identification columns plus one
        /// column per task.
        Canvas => export::ExportFormat::Canvas,
        /// Gradescope autograder `results.json` (one student).
        Gradescope => export::ExportFormat::Gradescope,
        /// GitHub Classroom grading-reporter runner result JSON (one student).
        Classroom => export::ExportFormat::Classroom,
        /// Self-contained HTML page: distribution, pass rate per scenario, students, transcripts.
        Summary => export::ExportFormat::Summary,
        /// Markdown table (a CI job summary): scenarios of one student, or the class.
        Markdown => export::ExportFormat::Markdown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_score_forms() {
        assert_eq!("24".parse::<MinScore>(), Ok(MinScore::Points(24.0)));
        assert_eq!("80%".parse::<MinScore>(), Ok(MinScore::Percent(80.0)));
        assert!("lots".parse::<MinScore>().is_err());
        assert!("120%".parse::<MinScore>().is_err());
        assert_eq!("0".parse::<MinScore>(), Ok(MinScore::Points(0.0)));
        assert_eq!("1.5".parse::<MinScore>(), Ok(MinScore::Points(1.5)));
        assert_eq!("0.8%".parse::<MinScore>(), Ok(MinScore::Percent(0.8)));
        for fraction in ["0.8", ".5", "0.99"] {
            let e = fraction.parse::<MinScore>().unwrap_err();
            assert!(
                e.contains("write 80% or a number of points"),
                "{fraction}: {e}"
            );
        }
    }
}
