//! Grading a whole folder of submissions in one process: discovery ([`discover`]), resumption,
//! parallel gradings admitted by CPU room ([`admission`]) sharing one [`PortPool`],
//! per-submission reports written by each grading's sinks as it finishes, each submission's end
//! told to the batch's sinks ([`sinks`]: error files, progress lines, the summary), shards and
//! merging report folders ([`merge`]).
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
pub mod sinks;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::audience::{self, View};
use crate::error_chain::chain;
use crate::events::{EventSink, Fanout};
use crate::job::{Blame, ClassTask, Job, Settings};
use crate::net::ports::PortPool;
use crate::report::files::ReportFiles;
use crate::report::record;
use crate::verdict::{GradeReport, Status};

pub use discover::{Entry, Shard, discover};
use progress::Progress;
pub use sinks::record_path;
use sinks::{BatchFanout, BatchSink, Collected, ErrorFiles, SubmissionFinished};

/// Settings shared by every grading of a batch.
#[derive(Debug, Clone)]
pub struct Config {
    /// How every grading is done (task folder, time limit, build deadline, isolation resolved
    /// once for the run, port leniency) and where reports go (`settings.out`).
    pub settings: Settings,
    /// The most gradings at once (`-j`); between none and that many run, as the CPU has room
    /// (see [`admission`]).
    pub jobs: usize,
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

/// One task's submissions: a folder of a class, graded for its task.
#[derive(Debug, Clone)]
pub struct Class {
    /// The task, loaded once under the class's dialect.
    pub task: ClassTask,
    /// The submissions found (already sharded).
    pub entries: Vec<Entry>,
}

/// How one submission ended in this batch run.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
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

impl Disposition {
    /// True when the student has an up-to-date score after this run.
    pub fn has_score(&self) -> bool {
        matches!(
            self,
            Disposition::Graded { .. } | Disposition::UpToDate { .. }
        )
    }
    /// True when the score is below the maximum (or there is none).
    pub fn lost_points(&self) -> bool {
        match self {
            Disposition::Graded { score, max, .. } | Disposition::UpToDate { score, max } => {
                score + 1e-9 < *max
            }
            _ => true,
        }
    }
}

/// What a batch run did, per submission (sorted by label).
#[derive(Debug, Default)]
pub struct Summary {
    /// (label, disposition): the label is the student id, followed by the task when the batch
    /// grades several.
    pub results: Vec<(String, Disposition)>,
}

impl Summary {
    /// Count of dispositions matching `f`.
    pub fn count(&self, f: impl Fn(&Disposition) -> bool) -> usize {
        self.results.iter().filter(|(_, o)| f(o)).count()
    }
}

/// One grading to run: its label, its job.
struct Queued {
    label: String,
    job: Job,
}

enum Prepared {
    Done(Disposition),
    Grade(Box<Job>),
}

fn prepare(entry: &Entry, class: &Class, config: &Config, seed: u64) -> Prepared {
    let job = match Job::from_entry(entry, &class.task, &config.settings, seed) {
        Ok(job) => job,
        Err(e) => {
            return Prepared::Done(match e.blame() {
                Blame::Grader => Disposition::Infrastructure(chain(&e)),
                Blame::Submission | Blame::Configuration => Disposition::NotStarted(chain(&e)),
            });
        }
    };
    let out = &config.settings.out;
    if !config.force
        && let Ok(old) = record::read(&record_path(out, &entry.id, job.task()))
        && old.is_up_to_date_for(&job)
    {
        return Prepared::Done(Disposition::UpToDate {
            score: old.report.score,
            max: old.report.max_score,
        });
    }
    Prepared::Grade(Box::new(job))
}

/// Grades the `classes` (each folder's entries, already sharded, for its task) under `config`:
/// one admission queue for all of them (see [`admission`]). Each grading's events go to
/// `progress` (its tally) and to the submission's report files; each submission's end goes to
/// the error files, then `progress` (its line), then the summary returned (see [`sinks`]).
pub async fn run(
    config: &Config,
    classes: Vec<Class>,
    ports: &Arc<PortPool>,
    progress: &Progress,
    mut seed: impl FnMut() -> u64,
) -> Summary {
    let out = &config.settings.out;
    let (errors, collected) = (ErrorFiles::new(out), Collected::default());
    let ended = BatchFanout(vec![&errors, progress, &collected]);
    let first = classes.first().map(|c| c.task.spec.task);
    let several = classes.iter().any(|c| Some(c.task.spec.task) != first);
    let label = |id: &str, task: u32| {
        if several {
            format!("{id} · task {task}")
        } else {
            id.to_string()
        }
    };
    let mut queue = Vec::new();
    for class in &classes {
        let task = class.task.spec.task;
        for entry in &class.entries {
            let s = config.seed.unwrap_or_else(&mut seed);
            let label = label(&entry.id, task);
            match prepare(entry, class, config, s) {
                Prepared::Done(disposition) => ended.submission_finished(&SubmissionFinished {
                    label: &label,
                    id: &entry.id,
                    task,
                    disposition: &disposition,
                    withheld: None,
                }),
                Prepared::Grade(job) => queue.push(Queued { label, job: *job }),
            }
        }
    }
    let admission = admission::Admission::new(config.jobs.max(1));
    // Each grading: its label, its job, its result, and the full text of an infrastructure
    // error whose error-file text was redacted for students (shown to whoever runs the batch).
    type Graded = (
        String,
        Job,
        Result<GradeReport, Disposition>,
        Option<String>,
    );
    let mut running: JoinSet<Graded> = JoinSet::new();
    let mut spawned = std::collections::HashMap::new();
    for Queued { label, job } in queue {
        let admission = admission.clone();
        let events = progress.events();
        let ports = ports.clone();
        let timeout = config.timeout;
        let view = config.view;
        let out = out.to_path_buf();
        let key = (label.clone(), job.name().to_string(), job.task());
        let handle = running.spawn(async move {
            // The grading's clocks start once it is admitted.
            let _place = admission.admit().await;
            let mut withheld = None;
            // The wall-time limit is the grading's; a build gets its own deadline on top.
            let limit = match job.builds() {
                true => timeout + job.options().build_timeout,
                false => timeout,
            };
            // The grading's events go to the progress bar and to the report files.
            let files = ReportFiles::new(&out, job.provenance(), view);
            let sink = Fanout::new([&*events as &dyn EventSink, &files]);
            let result = match tokio::time::timeout(limit, job.grade(&ports, &sink)).await {
                // Its files were written by its sink (a failure to write them is an error).
                Ok(Ok(r)) => match files.finish() {
                    Some(Err(e)) => Err(Disposition::Infrastructure(chain(&e))),
                    _ => Ok(r),
                },
                Ok(Err(e)) if e.blame() == Blame::Submission => {
                    Err(Disposition::NotStarted(chain(&e)))
                }
                // Hidden scenarios stay hidden in the error file a student may be shown.
                Ok(Err(e)) => {
                    let full = chain(&e);
                    let shown = chain(&audience::redact_error(e, job.spec(), view));
                    withheld = (shown != full).then_some(full);
                    Err(Disposition::Infrastructure(shown))
                }
                Err(_) => Err(Disposition::Infrastructure(format!(
                    "the grading took longer than {}s and was abandoned",
                    timeout.as_secs()
                ))),
            };
            (label, job, result, withheld)
        });
        spawned.insert(handle.id(), key);
    }
    while let Some(joined) = running.join_next_with_id().await {
        let mut withheld = None;
        let (label, id, task, disposition) = match joined {
            Ok((_, (label, job, Ok(report), _))) => {
                let failed = report
                    .scenarios
                    .iter()
                    .filter(|s| s.status != Status::Passed)
                    .count();
                let d = Disposition::Graded {
                    score: report.score,
                    max: report.max_score,
                    failed,
                    duration_ms: report.duration_ms,
                };
                (label, job.name().to_string(), job.task(), d)
            }
            Ok((_, (label, job, Err(d), full))) => {
                withheld = full;
                (label, job.name().to_string(), job.task(), d)
            }
            Err(e) => {
                let (label, id, task) = spawned.get(&e.id()).cloned().unwrap_or_default();
                let why = if e.is_panic() {
                    "the grader panicked while grading it (a grader bug; please report it)"
                } else {
                    "its grading was cancelled"
                };
                (
                    label,
                    id,
                    task,
                    Disposition::Infrastructure(why.to_string()),
                )
            }
        };
        ended.submission_finished(&SubmissionFinished {
            label: &label,
            id: &id,
            task,
            disposition: &disposition,
            withheld: withheld.as_deref(),
        });
    }
    collected.into_summary()
}
