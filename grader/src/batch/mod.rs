//! Grading a whole folder of submissions in one process: discovery ([`discover`]), resumption,
//! parallel gradings sharing one [`PortPool`], per-submission reports written as each grading
//! finishes, progress ([`progress`]), shards and merging report folders ([`merge`]).
//!
//! Guarantees:
//! - each grading runs on its own task with its own processes, ports and deadline; a panic, a
//!   hang (the per-submission time limit) or a launch problem in one submission is recorded for
//!   that submission only and never changes another's verdicts;
//! - a submission's record is written (atomically, JUnit first and the TOML record last) as soon
//!   as its grading finishes, so killing the batch loses at most the gradings in flight;
//! - a submission is skipped when its existing record has the same submission content hash,
//!   launch templates, build command, stdin prelude, client stdin, graded roles, task, task
//!   spec hash, grader version and isolation (unless `force`);
//! - a failed build (see `engine::build`) is the submission's problem, reported like one that
//!   cannot start; so is a folder that cannot be hashed or copied safely
//!   ([`crate::submission_tree`]: a symbolic link leaving it, a FIFO, socket or device, more than
//!   its size or file-count limit), found before anything of it is opened or started;
//! - a record that is refused ([`record::Record::verify`]: its numbers disagree) is never up to
//!   date: the submission is regraded;
//! - a grading that fails for infrastructure reasons, or that cannot start, never overwrites an
//!   existing record: it writes `task<N>.error.txt` beside it instead, and the next run retries;
//!   an error file older than a record that a rerun finds up to date is removed;
//! - a record's `submission_abs` is the absolute path `grader replay` starts (the executable, or
//!   the folder when templates start it).

pub mod admission;
pub mod discover;
pub mod merge;
pub mod progress;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::audience::{self, View};
use crate::engine::{self, EngineOptions, GradeError, GradeRequest};
use crate::error_chain::chain;
use crate::fingerprint;
use crate::launch::{self, CommandTemplate};
use crate::net::netns::{Isolation, IsolationMode};
use crate::net::ports::PortPool;
use crate::report::junit::JunitReport;
use crate::report::record::{self, Provenance, TomlRecord};
use crate::report::{self, ReportError};
use crate::spec::{Role, TaskSpec};
use crate::verdict::{GradeReport, Status};

pub use discover::{Entry, Shard, discover};
use progress::Progress;

/// Settings shared by every grading of a batch.
#[derive(Debug, Clone)]
pub struct Config {
    /// The task spec.
    pub spec: TaskSpec,
    /// Its text (hashed).
    pub spec_text: String,
    /// Where it came from.
    pub spec_source: String,
    /// The class's protocol dialect (`--dialect`, `--protocol`), under which `spec` was loaded;
    /// a submission whose `classchat.toml` adds its own gets the spec loaded again under both.
    pub dialect: crate::spec::Dialect,
    /// Absolute `--tasks-dir`, if any (recorded for replay).
    pub tasks_dir: Option<PathBuf>,
    /// Report folder.
    pub out: PathBuf,
    /// The most gradings at once (`-j`); between none and that many run, as the CPU has room
    /// (see [`admission`]).
    pub jobs: usize,
    /// Engine tunables of each grading.
    pub engine: EngineOptions,
    /// Regrade even up-to-date submissions.
    pub force: bool,
    /// Fixed seed for every grading (else a fresh one each).
    pub seed: Option<u64>,
    /// Who the per-submission JUnit files are for.
    pub view: View,
    /// Wall-time limit of one grading; past it the grading is abandoned as an infrastructure
    /// problem (its processes are ended) and retried by the next run.
    pub timeout: Duration,
}

/// How one submission ended in this batch run.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Graded now.
    Graded {
        /// Points.
        score: f64,
        /// Maximum.
        max: f64,
        /// Scenarios that did not pass.
        failed: usize,
        /// Wall time.
        duration_ms: u64,
    },
    /// Its record is up to date; not regraded.
    UpToDate {
        /// Points in the record.
        score: f64,
        /// Maximum.
        max: f64,
    },
    /// It cannot be started (the submission's problem: no executable, bad template...).
    NotStarted(String),
    /// The grader could not grade it fairly (not charged; the next run retries).
    Infrastructure(String),
}

impl Outcome {
    /// True when the student has an up-to-date score after this run.
    pub fn has_score(&self) -> bool {
        matches!(self, Outcome::Graded { .. } | Outcome::UpToDate { .. })
    }
    /// True when the score is below the maximum (or there is none).
    pub fn lost_points(&self) -> bool {
        match self {
            Outcome::Graded { score, max, .. } | Outcome::UpToDate { score, max } => {
                score + 1e-9 < *max
            }
            _ => true,
        }
    }
}

/// What a batch run did, per student id (sorted).
#[derive(Debug, Default)]
pub struct Summary {
    /// (student id, outcome).
    pub results: Vec<(String, Outcome)>,
}

impl Summary {
    /// Count of outcomes matching `f`.
    pub fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.results.iter().filter(|(_, o)| f(o)).count()
    }
}

/// One grading to run.
struct Job {
    id: String,
    req: GradeRequest,
    provenance: Provenance,
}

enum Prepared {
    Done(Outcome),
    Grade(Box<Job>),
}

/// The path of a student's record for `task`.
pub fn record_path(out: &Path, id: &str, task: u32) -> PathBuf {
    out.join(report::sanitize(id))
        .join(format!("task{task}.toml"))
}

fn error_path(out: &Path, id: &str, task: u32) -> PathBuf {
    out.join(report::sanitize(id))
        .join(record::error_file_name(task))
}

/// Whether a record was graded with the isolation (and port leniency) `options` ask for: a
/// hard-coded port passes in a namespace and fails on the host, so a change regrades.
fn same_isolation(old: &GradeReport, options: &EngineOptions) -> bool {
    let isolation = match options.isolation {
        IsolationMode::Netns => Isolation::Netns,
        IsolationMode::Host => Isolation::Host,
        // Unresolved: whatever the record says is as good as anything.
        IsolationMode::Auto => return true,
    };
    old.isolation == crate::process::sandbox::userns::isolation_name(isolation)
        && old.accepted_any_port() == options.accept_any_port.unwrap_or(true)
}

fn prepare(entry: &Entry, config: &Config, seed: u64) -> Prepared {
    let plan = match &entry.launch {
        Ok(p) => p,
        Err(msg) => return Prepared::Done(Outcome::NotStarted(msg.clone())),
    };
    // The submission's own dialect (classchat.toml) on top of the class's.
    let own = match discover::submission_dialect(plan) {
        Ok(d) => d,
        Err(msg) => return Prepared::Done(Outcome::NotStarted(msg)),
    };
    let (spec, spec_text) = if own.is_empty() {
        (config.spec.clone(), config.spec_text.clone())
    } else {
        let dialect = crate::spec::Dialect::combine([&config.dialect, &own]);
        match crate::spec::load_with(config.tasks_dir.as_deref(), config.spec.task, &dialect) {
            Ok(loaded) => loaded,
            Err(e) => return Prepared::Done(Outcome::NotStarted(chain(&e))),
        }
    };
    let hash = match fingerprint::content_hash(&entry.path) {
        Ok(h) => h,
        Err(e) => return Prepared::Done(Outcome::NotStarted(chain(&e))),
    };
    let provenance = Provenance {
        submission_hash: Some(hash),
        submission_abs: None,
        submission_root: None,
        bundled_reference: false,
        server_template: plan.server.clone(),
        client_template: plan.client.clone(),
        build_command: plan.build.clone(),
        build_timeout_ms: plan
            .build
            .as_ref()
            .map(|_| config.engine.build_timeout)
            .filter(|t| *t != engine::build::BUILD_TIMEOUT)
            .map(|t| t.as_millis() as u64),
        time_limit_ms: crate::cli::recorded_time_limit(config.engine.time_limit),
        tasks_dir: config.tasks_dir.as_ref().map(|d| d.display().to_string()),
        protocol: (!spec.dialect.is_empty()).then(|| spec.dialect.to_inline()),
        policies: audience::policies_of(&spec),
        stdin_prelude: plan.stdin_prelude.clone().unwrap_or_default(),
        client_stdin: plan
            .client_stdin
            .filter(|c| *c != launch::ClientStdin::Pipe),
        roles: plan.roles.clone(),
    };
    let spec_hash = engine::spec_hash(&spec_text);
    if let (false, Ok(old)) = (
        config.force,
        record::read(&record_path(&config.out, &entry.id, config.spec.task)),
    ) {
        // A record of another student (an id that shared this folder before) is never current.
        let same = old.report.submission == entry.id
            && old.report.task == config.spec.task
            && old.report.spec_hash == spec_hash
            && old.report.grader_version == env!("CARGO_PKG_VERSION")
            && old.provenance.submission_hash == provenance.submission_hash
            && old.provenance.server_template == provenance.server_template
            && old.provenance.client_template == provenance.client_template
            && old.provenance.build_command == provenance.build_command
            && old.provenance.stdin_prelude == provenance.stdin_prelude
            && old.provenance.client_stdin == provenance.client_stdin
            && old.provenance.roles == provenance.roles
            && same_isolation(&old.report, &config.engine);
        if same {
            remove_superseded_error(&config.out, &entry.id, config.spec.task);
            return Prepared::Done(Outcome::UpToDate {
                score: old.report.score,
                max: old.report.max_score,
            });
        }
    }
    let template = |role, t: &Option<String>| match t {
        Some(text) => CommandTemplate::parse(role, text),
        None => Ok(CommandTemplate::default_for(role)),
    };
    let built = (|| {
        let server = template(Role::Server, &plan.server)?;
        let client = template(Role::Client, &plan.client)?;
        let build = plan
            .build
            .as_deref()
            .map(launch::BuildCommand::parse)
            .transpose()?;
        let mut submission = launch::check_submission(&plan.target.display().to_string())?;
        submission.name = entry.id.clone();
        submission.given = entry.path.display().to_string();
        Ok::<_, launch::LaunchError>((server, client, build, submission))
    })();
    let (server, client, build, submission) = match built {
        Ok(b) => b,
        Err(e) => return Prepared::Done(Outcome::NotStarted(chain(&e))),
    };
    // What `grader replay` starts: the absolute path of what was checked (the executable of a
    // folder graded by the launch contract, the folder itself when templates start it), never
    // the batch folder's entry as given (relative, and a folder without templates cannot start).
    let root = std::path::absolute(&entry.path).unwrap_or_else(|_| entry.path.clone());
    let provenance = Provenance {
        submission_abs: Some(submission.path.display().to_string()),
        submission_root: (root != submission.path).then(|| root.display().to_string()),
        ..provenance
    };
    Prepared::Grade(Box::new(Job {
        id: entry.id.clone(),
        req: GradeRequest {
            spec,
            spec_text,
            spec_source: config.spec_source.clone(),
            submission,
            server,
            client,
            build,
            seed,
            launch: plan.options(),
            options: config.engine.clone(),
        },
        provenance,
    }))
}

/// Writes a graded submission's files: JUnit (as `view` may see it), then the full record.
pub fn write_graded(
    out: &Path,
    report: &GradeReport,
    provenance: &Provenance,
    view: View,
) -> Result<Vec<PathBuf>, ReportError> {
    let shown = audience::redact(report, &provenance.policies, view);
    let mut written = report::write_all(out, &shown, &[&JunitReport])?;
    written.extend(report::write_all(out, report, &[&TomlRecord(provenance)])?);
    let stale = error_path(out, &report.submission, report.task);
    if stale.exists() {
        let _ = std::fs::remove_file(stale);
    }
    Ok(written)
}

/// A rerun found the record up to date (same content hash, templates, spec, grader version and
/// isolation): an error file from an attempt before that record was written is stale, and would
/// otherwise sit next to a good record forever. One written after the record (a later attempt
/// failed) is kept: exports report it.
fn remove_superseded_error(out: &Path, id: &str, task: u32) {
    let error = error_path(out, id, task);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(e), Some(r)) = (modified(&error), modified(&record_path(out, id, task)))
        && e <= r
    {
        let _ = std::fs::remove_file(&error);
    }
}

fn write_error(out: &Path, id: &str, task: u32, what: &str, message: &str) {
    let text = record::error_text(
        id,
        &format!(
            "{what} at {}: {message}",
            humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        ),
    );
    // Best effort: the problem is also printed and counted in the exit status.
    let _ = report::write_atomic(&error_path(out, id, task), text.as_bytes());
}

/// Grades `entries` (already sharded) under `config`, reporting to `progress`.
pub async fn run(
    config: &Config,
    entries: Vec<Entry>,
    ports: &Arc<PortPool>,
    progress: &Progress,
    mut seed: impl FnMut() -> u64,
) -> Summary {
    let mut summary = Summary::default();
    let task = config.spec.task;
    let mut queue = Vec::new();
    for entry in &entries {
        let s = config.seed.unwrap_or_else(&mut seed);
        match prepare(entry, config, s) {
            Prepared::Done(outcome) => {
                if let Outcome::NotStarted(m) = &outcome {
                    write_error(&config.out, &entry.id, task, "not started", m);
                }
                progress.finished(&entry.id, &outcome);
                summary.results.push((entry.id.clone(), outcome));
            }
            Prepared::Grade(job) => queue.push(*job),
        }
    }
    let admission = admission::Admission::new(config.jobs.max(1));
    // Each grading: its id, its result, its provenance, and the full text of an infrastructure
    // error whose error-file text was redacted for students (shown to whoever runs the batch).
    type Graded = (
        String,
        Result<GradeReport, Outcome>,
        Provenance,
        Option<String>,
    );
    let mut running: JoinSet<Graded> = JoinSet::new();
    let mut ids = std::collections::HashMap::new();
    for job in queue {
        let admission = admission.clone();
        let events = progress.events();
        let ports = ports.clone();
        let timeout = config.timeout;
        let view = config.view;
        let id = job.id.clone();
        let handle =
            running.spawn(async move {
                // The grading's clocks start once it is admitted.
                let _place = admission.admit().await;
                let mut withheld = None;
                // The wall-time limit is the grading's; a build gets its own deadline on top.
                let limit = match job.req.build {
                    Some(_) => timeout + job.req.options.build_timeout,
                    None => timeout,
                };
                let result =
                    match tokio::time::timeout(limit, engine::grade(&job.req, &ports, &*events))
                        .await
                    {
                        Ok(Ok(r)) => Ok(r),
                        Ok(Err(GradeError::Launch(e))) => Err(Outcome::NotStarted(chain(&e))),
                        Ok(Err(GradeError::Build(why))) => Err(Outcome::NotStarted(why)),
                        // Hidden scenarios stay hidden in the error file a student may be shown.
                        Ok(Err(e)) => {
                            let full = chain(&e);
                            let shown = chain(&audience::redact_error(e, &job.req.spec, view));
                            withheld = (shown != full).then_some(full);
                            Err(Outcome::Infrastructure(shown))
                        }
                        Err(_) => Err(Outcome::Infrastructure(format!(
                            "the grading took longer than {}s and was abandoned",
                            timeout.as_secs()
                        ))),
                    };
                (job.id, result, job.provenance, withheld)
            });
        ids.insert(handle.id(), id);
    }
    while let Some(joined) = running.join_next_with_id().await {
        let mut withheld = None;
        let (id, outcome) = match joined {
            Ok((_, (id, Ok(report), provenance, _))) => {
                let failed = report
                    .scenarios
                    .iter()
                    .filter(|s| s.status != Status::Passed)
                    .count();
                match write_graded(&config.out, &report, &provenance, config.view) {
                    Ok(_) => (
                        id,
                        Outcome::Graded {
                            score: report.score,
                            max: report.max_score,
                            failed,
                            duration_ms: report.duration_ms,
                        },
                    ),
                    Err(e) => (id, Outcome::Infrastructure(chain(&e))),
                }
            }
            Ok((_, (id, Err(outcome), _, full))) => {
                withheld = full;
                (id, outcome)
            }
            Err(e) => {
                let id = ids.get(&e.id()).cloned().unwrap_or_default();
                let why = if e.is_panic() {
                    "the grader panicked while grading it (a grader bug; please report it)"
                } else {
                    "its grading was cancelled"
                };
                (id, Outcome::Infrastructure(why.to_string()))
            }
        };
        match &outcome {
            Outcome::Infrastructure(m) => write_error(&config.out, &id, task, "not graded", m),
            Outcome::NotStarted(m) => write_error(&config.out, &id, task, "not started", m),
            _ => {}
        }
        progress.finished(&id, &outcome);
        if let Some(full) = withheld {
            progress.note(&format!(
                "    in full: {} (the error file, meant for students, names hidden scenarios only by number)",
                progress::message(&id, &full)
            ));
        }
        summary.results.push((id, outcome));
    }
    summary.results.sort_by(|a, b| a.0.cmp(&b.0));
    summary
}
