//! The command line: argument definitions and the `run` command, from parsed arguments to an
//! exit status. `main.rs` only parses and maps the result to a process exit code.
//!
//! Exit codes (the one place they are defined; README repeats them):
//! - `0`: graded, and the score is at or above `--min-score` (without it: every scenario passed);
//! - `1`: graded, and the score is below that;
//! - `2`: usage or infrastructure error (bad arguments, unreadable task file, missing or
//!   non-executable submission, unwritable --out, the grader's own network failing). No score is
//!   reported in that case.

use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand};

use crate::engine::{self, EngineOptions, GradeError, GradeRequest};
use crate::launch::{self, LaunchError, Template};
use crate::net::ports::PortPool;
use crate::report::console::{Console, Format};
use crate::report::{self, Exporter, ReportError};
use crate::spec::{self, Role, SpecError};
use crate::verdict::{GradeReport, fmt_points};

/// Graded, at or above the bar.
pub const EXIT_PASS: u8 = 0;
/// Graded, below the bar.
pub const EXIT_BELOW: u8 = 1;
/// Usage or infrastructure error: no score.
pub const EXIT_ERROR: u8 = 2;

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
    /// Run a bundled reference solution (what `grader run` grades when no submission is given).
    #[command(hide = true)]
    Reference {
        /// Task number.
        #[arg(long)]
        task: u32,
        /// `server --port P` or `client --host H --port P [--name N]`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// List the tasks and their scenarios.
    Tasks {
        /// Read task files from this folder instead of the bundled ones.
        #[arg(long)]
        tasks_dir: Option<PathBuf>,
    },
}

/// Arguments of `grader run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Task number (1-4 with the bundled tasks).
    #[arg(long)]
    pub task: u32,
    /// The submission: an executable following the launch contract (see tasks/PROTOCOL.md), or a
    /// folder when --server/--client say how to start it. Without it, the reference solution
    /// built into the grader is graded (a demonstration, and a check of the machine).
    pub submission: Option<String>,
    /// How to start the student's server, e.g. "python3 server.py --port {port}".
    /// Placeholders: {bin} {dir} {host} {port} {name}. No shell is used.
    #[arg(long, value_name = "TEMPLATE")]
    pub server: Option<String>,
    /// How to start the student's client, e.g. "python3 client.py {host} {port}".
    #[arg(long, value_name = "TEMPLATE")]
    pub client: Option<String>,
    /// Folder with task<N>.toml files (default: the task files built into the grader).
    #[arg(long, value_name = "DIR")]
    pub tasks_dir: Option<PathBuf>,
    /// Where reports go: <out>/<submission>/task<N>.{toml,junit.xml}.
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub out: PathBuf,
    /// Exit 0 only at or above this score: points ("24") or a percentage ("80%").
    #[arg(long, value_name = "POINTS|PERCENT")]
    pub min_score: Option<MinScore>,
    /// Terminal output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Print full transcripts and stderr of failed scenarios.
    #[arg(short, long)]
    pub verbose: bool,
    /// Seed for the randomised payloads; replays a grading exactly.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Scenarios run at once (default: twice the number of CPU cores).
    #[arg(short = 'j', long)]
    pub jobs: Option<usize>,
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

/// Everything that makes `grader` exit with status 2.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Task file problem.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Submission or template problem.
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// The grading could not be done fairly.
    #[error(transparent)]
    Grade(#[from] GradeError),
    /// Reports could not be written.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// SIGINT or SIGTERM arrived: the student's processes were ended, nothing was graded.
    #[error("interrupted by {0}: student processes ended, no report written")]
    Interrupted(&'static str),
    /// The async runtime could not start.
    #[error("cannot start the grader's runtime: {0}")]
    Runtime(std::io::Error),
}

/// Runs a parsed command line; returns the exit status.
pub fn run(cli: Cli) -> Result<u8, CliError> {
    match cli.command {
        Command::Run(args) => run_grading(args),
        Command::Tasks { tasks_dir } => list_tasks(tasks_dir),
        Command::Reference { task, args } => {
            let program = format!("grader reference --task {task}");
            Ok(classchat_reference::bundled::run(
                task,
                std::iter::once(program).chain(args).collect(),
            ))
        }
    }
}

fn list_tasks(dir: Option<PathBuf>) -> Result<u8, CliError> {
    let numbers: Vec<u32> = match &dir {
        None => spec::BUNDLED_TASKS.iter().map(|(n, _, _)| *n).collect(),
        Some(d) => (1..=20)
            .filter(|n| d.join(format!("task{n}.toml")).exists())
            .collect(),
    };
    for n in numbers {
        let (spec, _) = spec::load(dir.as_deref(), n)?;
        println!(
            "task {} · {} · {} points",
            spec.task,
            spec.title,
            fmt_points(spec.max_score())
        );
        for s in &spec.scenarios {
            println!(
                "  {:<6} {:>4} pts  {}",
                format!("{:?}", s.role).to_lowercase(),
                fmt_points(s.points),
                s.name
            );
        }
    }
    Ok(EXIT_PASS)
}

/// Resolves when SIGINT or SIGTERM arrives; names the signal.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        },
        // Without signal handling the default action (exit) applies; never resolve.
        _ => std::future::pending().await,
    }
}

/// Twice the number of cores: scenarios mostly wait, but each start of a student program costs
/// CPU, and more parallel starts than that only slow each other down (measured in README).
fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .saturating_mul(2)
        .clamp(2, 16)
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    // Keep seeds short enough to type.
    h.finish() % 1_000_000_000
}

fn run_grading(args: RunArgs) -> Result<u8, CliError> {
    let (spec, text) = spec::load(args.tasks_dir.as_deref(), args.task)?;
    let spec_source = match &args.tasks_dir {
        Some(d) => d
            .join(format!("task{}.toml", args.task))
            .display()
            .to_string(),
        None => format!("bundled:tasks/task{}.toml", args.task),
    };
    let bundled = args.submission.is_none() && args.server.is_none() && args.client.is_none();
    let template = |role, given: &Option<String>| match given {
        Some(t) => Template::parse(role, t),
        None if bundled => Ok(Template::bundled_reference(role, args.task)),
        None => Ok(Template::default_for(role)),
    };
    let server = template(Role::Server, &args.server)?;
    let client = template(Role::Client, &args.client)?;
    let submission = if bundled {
        let exe = std::env::current_exe()
            .map_err(|e| LaunchError::Unreadable("the grader itself".into(), e.to_string()))?;
        let mut s = launch::check_submission(&exe.display().to_string())?;
        s.name = format!("reference-task{}", args.task);
        s.given = format!("(bundled reference solution of task {})", args.task);
        s
    } else {
        launch::check_submission(args.submission.as_deref().unwrap_or("."))?
    };
    report::check_writable(&args.out)?;
    let seed = args.seed.unwrap_or_else(random_seed);
    let options = EngineOptions {
        parallelism: args.jobs.unwrap_or_else(default_jobs).max(1),
        transcript_lines: if args.verbose {
            crate::transcript::MAX_ENTRIES
        } else {
            30
        },
        ..EngineOptions::default()
    };
    let req = GradeRequest {
        spec,
        spec_text: text,
        spec_source,
        submission,
        server,
        client,
        seed,
        options,
    };
    let console = Console::new(args.format, args.verbose);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let ports = PortPool::new(seed);
    let report = rt.block_on(async {
        tokio::select! {
            r = engine::grade(&req, &ports, &console) => r.map_err(CliError::from),
            // Dropping the grading ends every student process group it started.
            sig = interrupted() => Err(CliError::Interrupted(sig)),
        }
    })?;
    let exporters: [&dyn Exporter; 2] = [&report::toml::TomlReport, &report::junit::JunitReport];
    let written = report::write_all(&args.out, &report, &exporters)?;
    let paths: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    println!("Reports: {}", paths.join(", "));
    let ok = match args.min_score {
        Some(m) => m.met_by(&report),
        None => report.passed() == report.scenarios.len(),
    };
    if !ok {
        if let Some(m) = args.min_score {
            let bar = match m {
                MinScore::Points(p) => format!("{} points", fmt_points(p)),
                MinScore::Percent(p) => format!("{p}%"),
            };
            println!("Below the required score of {bar}.");
        }
        println!(
            "Replay this grading exactly: grader run --task {} --seed {} {}",
            report.task,
            report.seed,
            args.submission.as_deref().unwrap_or("")
        );
    }
    Ok(if ok { EXIT_PASS } else { EXIT_BELOW })
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
    }
}
