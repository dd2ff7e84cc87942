//! `grader run`: one submission graded for one task, shown on the console, reported to
//! `<out>/<submission>/task<N>.{toml,junit.xml}`; the exit status says whether it met the bar.
//! `grader replay` grades through [`grade`] too.

use std::path::Path;

use grader::audience::{self, Redacting, View};
use grader::job::{Job, RunOptions};
use grader::net::ports::PortPool;
use grader::report::{self, console::Console};
use grader::verdict::{GradeReport, fmt_points};

use super::args::{MinScore, RunArgs};
use super::{CliError, EXIT_BELOW, EXIT_PASS, interrupted, random_seed, resolve_isolation};

/// Runs `grader run`.
pub(super) fn run(args: RunArgs) -> Result<u8, CliError> {
    let settings = args.grading.settings(
        &args.out,
        Some(args.jobs.unwrap_or_else(default_jobs).max(1)),
    );
    let launch = args.launch.clone();
    let job = Job::from_args(RunOptions {
        task: args.task,
        submission: args.submission.as_deref().map(Into::into),
        server: launch.server,
        client: launch.client,
        build: launch.build,
        stdin_prelude: launch.stdin_prelude,
        client_stdin: launch.client_stdin.map(Into::into),
        roles: launch.roles,
        dialect: args.grading.dialect.dialect().map_err(CliError::Usage)?,
        seed: args.seed.unwrap_or_else(random_seed),
        settings,
    })?;
    if let Some(MinScore::Points(p)) = args.min_score
        && p > job.max_score() + 1e-9
    {
        return Err(CliError::Usage(format!(
            "--min-score {} is more than task {}'s {} points: no grading could meet it",
            fmt_points(p),
            args.task,
            fmt_points(job.max_score())
        )));
    }
    let view = View {
        audience: args.audience.into(),
        after_due: args.after_due,
    };
    let console = Console::new(args.format.into(), args.verbose);
    grade(job, &args.out, &console, view, args.min_score).map(|(code, _)| code)
}

/// Twice the number of cores: scenarios mostly wait, but each start of a student program costs
/// CPU, and more parallel starts than that only slow each other down (measured in
/// docs/architecture.md).
fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .saturating_mul(2)
        .clamp(2, 16)
}

/// Grades `job` (its isolation resolved here, once), shows it on `console` as `view` may see
/// it, writes its reports under `out`; returns the exit status (against `min_score`, or every
/// scenario passed) and the full report.
pub(super) fn grade(
    mut job: Job,
    out: &Path,
    console: &Console,
    view: View,
    min_score: Option<MinScore>,
) -> Result<(u8, GradeReport), CliError> {
    report::check_writable(out)?;
    job.set_isolation(resolve_isolation(job.options().isolation)?);
    let shown = Redacting::new(console, &job.provenance().policies, view);
    let files = report::files::ReportFiles::new(out, job.provenance(), view);
    let sink = grader::events::Fanout::new([&shown as &dyn grader::events::EventSink, &files]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let ports = PortPool::new(job.seed());
    let report = rt.block_on(async {
        let stop = interrupted();
        tokio::select! {
            biased;
            // Dropping the grading ends every student process group it started.
            sig = stop => Err(CliError::Interrupted(sig)),
            // An infrastructure error names its scenario: hidden ones stay hidden from students.
            r = job.grade(&ports, &sink) => {
                r.map_err(|e| CliError::from(audience::redact_error(e, job.spec(), view)))
            }
        }
    })?;
    let written = files.finish().unwrap_or_else(|| Ok(Vec::new()))?;
    let paths: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    say!("Reports: {}", paths.join(", "));
    let ok = match min_score {
        Some(m) => m.met_by(&report),
        None => report.passed() == report.scenarios.len(),
    };
    if !ok {
        if let Some(m) = min_score {
            let bar = match m {
                MinScore::Points(p) => format!("{} points", fmt_points(p)),
                MinScore::Percent(p) => format!("{p}%"),
            };
            say!("Below the required score of {bar}.");
        }
        // The record holds everything a replay needs (seed, templates, task folder, isolation).
        if let Some(record) = written
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "toml"))
        {
            say!(
                "Replay this grading exactly: grader replay {}",
                shell_words::quote(&record.display().to_string())
            );
        }
    }
    Ok((if ok { EXIT_PASS } else { EXIT_BELOW }, report))
}
