//! The grading engine: runs a task's scenarios against one submission and produces its
//! [`GradeReport`], emitting [`Event`]s on the way.
//!
//! Guarantees: no global state (any number of gradings may run at once in one process, sharing a
//! [`PortPool`]); independent scenarios run in parallel (bounded by `parallelism`); every
//! scenario starts fresh processes and ends them before it reports; a scenario that hits an
//! infrastructure problem (a port taken by a stranger) is retried and, if it keeps failing, the
//! grading fails with [`GradeError::Infrastructure`] instead of charging the student; each
//! scenario gets a network namespace of its own where the system allows it
//! ([`EngineOptions::isolation`]), and the report says which isolation was used; a submission
//! with a build command ([`GradeRequest::build`]) is built once, confined, in a copy of its
//! folder before the first scenario, and every scenario runs from that copy ([`build`]); the
//! scenarios of a grading share one wall-clock limit ([`EngineOptions::time_limit`], counted
//! after the build): a scenario still running when it is reached is stopped where it waits and
//! ends its processes, one not yet started is not run, and both are *timed out* (charged to the
//! submission) with a message naming the limit, so [`grade`] returns within the limit plus
//! [`WIND_DOWN`] whatever the student's programs do (stop themselves, block, hang); a program on
//! a hard-coded port loses only the scenarios about the port, in every isolation, with one note
//! per grading, and on the host the scenarios that start its server take turns ([`hardcoded`]);
//! only the roles asked for are graded ([`crate::launch::LaunchOptions::roles`]: the others are not run
//! and not in the maximum, with a note), and a role the submission has no program for (a
//! folder without a template or executable for it) fails each of its scenarios with "no
//! <role> to start" while the other role is graded; a client gets the submission's stdin
//! prelude typed first and, if asked, a terminal on stdin; remarks on the whole grading (roles
//! left out, a template without `{port}`) are the report's `notes`, said once.

pub mod build;
mod hardcoded;
pub mod http;
pub mod matcher;
pub mod patience;
mod scenario;
pub mod staging;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use crate::events::{Event, EventSink};
use crate::launch::{BuildCommand, CommandTemplate, Submission};
use crate::net::netns::{Isolation, IsolationMode};
use crate::net::ports::PortPool;
use crate::note::Note;
use crate::spec::{Role, TaskSpec};
use crate::verdict::{GradeReport, SCHEMA_VERSION, ScenarioOutcome, Status};

/// How long the scenarios of one grading may take together unless the engine is told otherwise
/// (`--time-limit`): generous (the bundled tasks take seconds), yet a bound on a grading that
/// would otherwise never end.
pub const GRADING_TIME_LIMIT: Duration = Duration::from_secs(10 * 60);
/// After the grading's limit, how long a stopped scenario may take to end its processes and
/// report before it is abandoned (dropping it still kills its processes).
pub const WIND_DOWN: Duration = Duration::from_secs(10);

/// A deadline that is never reached, for a time limit too large to add to a clock.
const NEVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Tunables of the engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Scenarios of one grading run at once.
    pub parallelism: usize,
    /// Bytes a student process may print (stdout + stderr) before it is stopped.
    pub output_limit: u64,
    /// Time between SIGTERM and SIGKILL when ending a student's process group.
    pub grace: Duration,
    /// Attempts per scenario when the grader's infrastructure fails.
    pub attempts: u32,
    /// Transcript lines kept per failed scenario (the record's excerpt; the console shows the
    /// last dozen of them, or all with `-v`, so `-v` never changes what is recorded).
    pub transcript_lines: usize,
    /// Resource limits of every student process.
    pub limits: crate::process::limits::Limits,
    /// Network isolation: a namespace per scenario, the host's loopback, or whichever works.
    pub isolation: IsolationMode,
    /// Grade a program that uses another port than its assigned one (a server listening on a
    /// hard-coded port, a client dialling one) on that port, in every scenario but those about
    /// the port (`assigned_port = true`), with a note. `None`: on.
    pub accept_any_port: Option<bool>,
    /// Confine student processes (read-only file system, no capabilities; see
    /// [`crate::process::sandbox`]).
    pub confine: bool,
    /// How long a build command may run (see [`build`]).
    pub build_timeout: Duration,
    /// Wall-clock limit of a grading's scenarios, all together (the build has its own
    /// deadline); see the module comment.
    pub time_limit: Duration,
    /// Folders student processes and builds must not see, such as the task files (hidden
    /// scenarios' expected values) and the reports (see [`crate::process::Launch::hidden`]).
    pub hidden: Vec<std::path::PathBuf>,
    /// The unprivileged identity of this grading's processes: set by [`grade`] from a uid lease
    /// when the grader is root and confines (whatever the caller sets is replaced).
    pub run_as: Option<crate::process::sandbox::RunAs>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            parallelism: 8,
            output_limit: 8 << 20,
            grace: Duration::from_millis(300),
            attempts: 3,
            transcript_lines: 100,
            limits: crate::process::limits::Limits::default(),
            isolation: IsolationMode::Auto,
            accept_any_port: None,
            confine: true,
            hidden: Vec::new(),
            build_timeout: build::BUILD_TIMEOUT,
            run_as: None,
            time_limit: GRADING_TIME_LIMIT,
        }
    }
}

/// Everything one grading needs.
#[derive(Debug, Clone)]
pub struct GradeRequest {
    /// The validated spec.
    pub spec: TaskSpec,
    /// Its source text (hashed into the report).
    pub spec_text: String,
    /// Where it came from.
    pub spec_source: String,
    /// The checked submission.
    pub submission: Submission,
    /// How to start the student's server.
    pub server: CommandTemplate,
    /// How to start the student's client.
    pub client: CommandTemplate,
    /// Build command run in a copy of the submission folder before the scenarios (None: the
    /// submission is started as it is).
    pub build: Option<BuildCommand>,
    /// Seed for randomised payloads.
    pub seed: u64,
    /// Lines typed on the client's stdin first, a terminal on its stdin, the roles graded.
    pub launch: crate::launch::LaunchOptions,
    /// Tunables.
    pub options: EngineOptions,
}

impl GradeRequest {
    /// Whether this grades the reference solution built into the grader (trusted: its own
    /// binary, neither copied nor concealed nor refused as "the grader").
    pub fn grades_bundled_reference(&self) -> bool {
        self.server.runs_bundled_reference() || self.client.runs_bundled_reference()
    }
}

/// A grading that could not produce a fair score.
#[derive(Debug, thiserror::Error)]
pub enum GradeError {
    /// The grader's own environment failed (not the student's fault).
    #[error("infrastructure error in scenario {scenario:?}: {message}")]
    Infrastructure {
        /// Which scenario.
        scenario: String,
        /// What happened.
        message: String,
    },
    /// The submission cannot be started for a role the task needs.
    #[error(transparent)]
    Launch(#[from] crate::launch::LaunchError),
    /// `--isolation netns` was asked for where namespaces cannot be created.
    #[error(transparent)]
    Isolation(crate::net::netns::NamespaceError),
    /// The submission's build command failed (the submission's problem, like a launch problem):
    /// what happened and the last lines it printed.
    #[error("{0}")]
    Build(String),
    /// The grader could not prepare a build (copy the submission, create its folders).
    #[error("{step} for {submission}")]
    BuildSetup {
        /// What failed ("cannot create the build folder", ...).
        step: &'static str,
        /// The submission as given.
        submission: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The grader could not lease an unprivileged uid for the grading.
    #[error(transparent)]
    Lease(#[from] crate::process::sandbox::user::LeaseError),
    /// The grader could not make the private copy the scenarios start.
    #[error("cannot copy the submission {submission} to grade it")]
    Staging {
        /// The submission as given.
        submission: String,
        /// Why.
        #[source]
        source: staging::StageError,
    },
}

/// SHA-256 of a spec text, hex.
pub fn spec_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Grades one submission for one task.
pub(crate) async fn grade(
    req: &GradeRequest,
    ports: &Arc<PortPool>,
    sink: &dyn EventSink,
) -> Result<GradeReport, GradeError> {
    // Only the roles asked for (`roles`, `--role`): the others are not graded nor counted.
    let (graded_spec, roles_note) =
        crate::launch::only_roles(&req.spec, req.launch.roles.as_deref())?;
    let only_roles = GradeRequest {
        spec: graded_spec,
        ..req.clone()
    };
    let req = &only_roles;
    let template_of = |role| match role {
        Role::Server => &req.server,
        Role::Client => &req.client,
    };
    let needed: Vec<Role> = [Role::Server, Role::Client]
        .into_iter()
        .filter(|role| req.spec.scenarios.iter().any(|s| s.role == *role))
        .collect();
    // The launch contract (`{bin}`) needs an executable; a folder without one for a role has
    // no such role to start (its scenarios fail, see `missing_role`), unless a build is to
    // make it.
    let needs_bin = needed.iter().any(|r| template_of(*r).uses_bin());
    let all_need_bin = needed.iter().all(|r| template_of(*r).uses_bin());
    if req.build.is_some() && !req.submission.is_dir {
        return Err(
            crate::launch::LaunchError::BuildNeedsFolder(req.submission.given.clone()).into(),
        );
    }
    let bundled = req.grades_bundled_reference();
    check_not_protected(req, bundled)?;
    let isolation = req
        .options
        .isolation
        .resolve()
        .map_err(GradeError::Isolation)?;
    // One unprivileged uid for the whole grading (build and scenarios), held until it ends.
    let lease = if req.options.confine && crate::process::sandbox::changes_uid() {
        Some(crate::process::sandbox::user::UserLease::acquire().map_err(GradeError::Lease)?)
    } else {
        None
    };
    let leased = GradeRequest {
        options: EngineOptions {
            run_as: lease.as_ref().map(|l| l.run_as()),
            ..req.options.clone()
        },
        ..req.clone()
    };
    let req = &leased;
    let started = Instant::now();
    let timestamp = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let names: Vec<String> = req.spec.scenarios.iter().map(|s| s.name.clone()).collect();
    sink.event(&Event::GradingStarted {
        task: req.spec.task,
        title: &req.spec.title,
        submission: &req.submission.name,
        seed: req.seed,
        scenarios: &names,
    });
    // Built or staged: the scenarios start the copy (kept until they are done).
    let built;
    let staged;
    let in_copy;
    let req = match &req.build {
        None if bundled => req,
        None => {
            staged = staging::stage(&req.submission, req.options.run_as).map_err(|e| match e {
                staging::StageError::Refused(e) => GradeError::Build(format!(
                    "{} (the grader runs a copy of {})",
                    crate::error_chain::Chain(&e),
                    req.submission.given
                )),
                e => GradeError::Staging {
                    submission: req.submission.given.clone(),
                    source: e,
                },
            })?;
            in_copy = GradeRequest {
                submission: staged.submission.clone(),
                ..req.clone()
            };
            &in_copy
        }
        Some(command) => {
            built = build::build(req, command, isolation, needs_bin, all_need_bin).await?;
            sink.event(&Event::Built {
                command: command.text(),
                duration: built.duration,
            });
            in_copy = GradeRequest {
                submission: built.submission.clone(),
                ..req.clone()
            };
            &in_copy
        }
    };

    // A role whose launch contract has no executable to start (a folder that hands in only a
    // server): its scenarios fail, saying so; the other role is graded as usual.
    let built_here = req.build.is_some();
    let missing: Vec<Role> = needed
        .iter()
        .copied()
        .filter(|r| template_of(*r).uses_bin() && req.submission.is_dir)
        .collect();
    let mut grading_notes: Vec<Note> = roles_note.into_iter().collect();
    for role in needed.iter().filter(|r| !missing.contains(r)) {
        let t = template_of(*role);
        if !t.takes_port() {
            grading_notes.push(Note::TemplateWithoutPort {
                role: *role,
                template: t.text().to_string(),
            });
        }
    }

    for note in &grading_notes {
        sink.event(&Event::Note(note));
    }

    // The scenarios' limit starts after the build, which has its own.
    // (A limit too large for the clock is none.)
    let now = Instant::now();
    let deadline = now
        .checked_add(req.options.time_limit.saturating_add(WIND_DOWN))
        .map_or(now + NEVER, |_| now + req.options.time_limit);
    let missing = &missing;
    let limit = Arc::new(tokio::sync::Semaphore::new(req.options.parallelism.max(1)));
    let watch = hardcoded::PortWatch::default();
    let on_host = isolation == Isolation::Host;
    // On the host, scenarios that start the server take turns once it is known to listen on a
    // hard-coded port (see `hardcoded`).
    let gated = on_host && req.options.accept_any_port.unwrap_or(true);
    let runs = req.spec.scenarios.iter().map(|sc| {
        let limit = limit.clone();
        let watch = &watch;
        async move {
            let _permit = limit.acquire().await.ok();
            sink.event(&Event::ScenarioStarted { scenario: &sc.name });
            let begun = Instant::now();
            let mut notes = Vec::new();
            let mut seen = Vec::new();
            let starts_server = gated && sc.role == Role::Server;
            let attempts = async {
                let mut outcome = None;
                if missing.contains(&sc.role) {
                    return Some(missing_role(sc, built_here, begun));
                }
                let mut alone = false;
                let mut attempt = 1;
                while attempt <= req.options.attempts.max(1) {
                    if Instant::now() >= deadline {
                        // An infrastructure error stays one; otherwise the time is up.
                        outcome = outcome.or_else(|| {
                            Some(cut_off(sc, req.options.time_limit, Cut::NotStarted, begun))
                        });
                        break;
                    }
                    let turn = match starts_server {
                        true => Some(watch.turn(alone).await),
                        false => None,
                    };
                    let ran = scenario::run(
                        req,
                        ports,
                        isolation,
                        sc,
                        deadline,
                        watch,
                        turn.as_ref().is_some_and(|t| t.alone()),
                    )
                    .await;
                    drop(turn);
                    seen = ran.seen;
                    let o = ran.outcome;
                    if ran.collided && !alone {
                        // Another copy held the hard-coded port: run again, alone (not an
                        // attempt, never charged).
                        alone = true;
                        outcome = Some(o);
                        continue;
                    }
                    if o.status != Status::InfraError {
                        outcome = Some(o);
                        break;
                    }
                    if attempt < req.options.attempts.max(1) {
                        sink.event(&Event::Retry {
                            scenario: &sc.name,
                            attempt,
                            message: &o.message,
                        });
                    }
                    notes.push((attempt, o.message.clone()));
                    outcome = Some(o);
                    attempt += 1;
                }
                outcome
            };
            // A scenario that does not end after the limit (it should, see `scenario::run`) is
            // dropped: its processes are killed as it goes.
            let outcome = tokio::time::timeout_at((deadline + WIND_DOWN).into(), attempts)
                .await
                .unwrap_or_else(|_| {
                    Some(cut_off(sc, req.options.time_limit, Cut::Abandoned, begun))
                });
            let mut o = outcome.unwrap_or_else(|| unreachable_outcome(sc));
            if o.status != Status::InfraError && !notes.is_empty() {
                o.notes
                    .extend(notes.iter().map(|(attempt, message)| Note::Retried {
                        attempt: *attempt,
                        message: message.clone(),
                    }));
            }
            for s in &seen {
                if watch.announce(s) {
                    sink.event(&Event::ScenarioNote {
                        scenario: &sc.name,
                        note: &s.note(on_host),
                    });
                }
            }
            sink.event(&Event::ScenarioFinished(&o));
            (o, seen)
        }
    });
    let (mut outcomes, seen): (Vec<ScenarioOutcome>, Vec<_>) = futures_util::future::join_all(runs)
        .await
        .into_iter()
        .unzip();
    hardcoded::place_notes(&mut outcomes, &seen, on_host);
    if let Some(bad) = outcomes.iter().find(|o| o.status == Status::InfraError) {
        return Err(GradeError::Infrastructure {
            scenario: bad.name.clone(),
            message: bad.message.clone(),
        });
    }
    let report = GradeReport {
        schema_version: SCHEMA_VERSION,
        grader_version: env!("CARGO_PKG_VERSION").to_string(),
        submission: req.submission.name.clone(),
        submission_path: req.submission.given.clone(),
        task: req.spec.task,
        task_title: req.spec.title.clone(),
        score: outcomes.iter().map(|o| o.points).sum(),
        max_score: req.spec.max_score(),
        seed: req.seed,
        spec_hash: spec_hash(&req.spec_text),
        spec_source: req.spec_source.clone(),
        dialect: (!req.spec.dialect.is_empty()).then(|| req.spec.dialect.label.clone()),
        isolation: crate::process::sandbox::userns::isolation_name(isolation).to_string(),
        accept_any_port: Some(req.options.accept_any_port.unwrap_or(true)),
        timestamp,
        duration_ms: started.elapsed().as_millis() as u64,
        scenarios: outcomes,
        notes: grading_notes,
    };
    sink.event(&Event::GradingFinished(&report));
    Ok(report)
}

/// Refuses a submission that student code must not be: one inside a folder hidden from it (the
/// task files, the reports: a cover that depended on where the submission is would let its
/// commands read them), or the grader's own binary or a bundled reference (unless the grading
/// is of the bundled reference itself).
fn check_not_protected(req: &GradeRequest, bundled: bool) -> Result<(), GradeError> {
    let canonical = |p: &std::path::Path| std::fs::canonicalize(p).ok();
    let Some(path) = canonical(&req.submission.path) else {
        return Ok(());
    };
    for folder in req.options.hidden.iter().filter_map(|h| canonical(h)) {
        if path.starts_with(&folder) {
            return Err(crate::launch::LaunchError::InsideProtected {
                submission: req.submission.given.clone(),
                folder,
            }
            .into());
        }
    }
    if !bundled
        && crate::process::procfs::same_file_as_any(&path, &crate::process::sandbox::grader_exe())
    {
        return Err(crate::launch::LaunchError::IsGrader(req.submission.given.clone()).into());
    }
    Ok(())
}

/// How a scenario was cut off by the grading's wall-clock limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// It was stopped during a step (see `scenario::run`).
    DuringStep,
    /// It had not started when the limit was reached.
    NotStarted,
    /// It did not end within [`WIND_DOWN`] after the limit and was dropped.
    Abandoned,
}

/// The student-visible message of a scenario cut off by the grading's limit `limit`.
pub(crate) fn cut_message(limit: Duration, cut: Cut) -> String {
    let reached = format!(
        "the grading's wall-clock limit of {} was reached",
        humantime::format_duration(limit)
    );
    match cut {
        Cut::DuringStep => format!(
            "{reached} while this step was waiting; the scenario was stopped there (a program \
             that stops itself or never answers cannot hold a grading up for longer)"
        ),
        Cut::NotStarted => format!("{reached} before this scenario could start"),
        Cut::Abandoned => format!(
            "{reached} and the scenario did not end within {} after it; its processes were killed",
            humantime::format_duration(WIND_DOWN)
        ),
    }
}

/// The outcome of a scenario whose role the submission has no program for: it fails, saying
/// what is missing and how to either add it or grade the other role alone. `built`: the
/// submission was built (the build left no executable for the launch contract).
fn missing_role(sc: &crate::spec::Scenario, built: bool, begun: Instant) -> ScenarioOutcome {
    let role = crate::launch::role_word(sc.role);
    let other = match sc.role {
        Role::Server => "client",
        Role::Client => "server",
    };
    let why = if built {
        format!(
            "the build left no executable for the launch contract, and no `{role}` template says how to start the {role}"
        )
    } else {
        format!(
            "the submission is a folder and no `{role}` template (in its classchat.toml, or --{role}) says how to start its {role}"
        )
    };
    ScenarioOutcome {
        status: Status::Failed,
        duration_ms: begun.elapsed().as_millis() as u64,
        message: format!("no {role} to start: {why}"),
        hint: Some(format!(
            "hand in a {role} and say how to start it: `{role} = \"...\"` in classchat.toml (or --{role}); to grade the {other} alone, the instructor sets roles = [\"{other}\"] (--role {other}) and the {role} scenarios do not count"
        )),
        points: 0.0,
        ..unreachable_outcome(sc)
    }
}

/// The outcome of a scenario the grading's limit cut off before it could report itself.
fn cut_off(
    sc: &crate::spec::Scenario,
    limit: Duration,
    cut: Cut,
    begun: Instant,
) -> ScenarioOutcome {
    ScenarioOutcome {
        status: Status::TimedOut,
        duration_ms: begun.elapsed().as_millis() as u64,
        message: cut_message(limit, cut),
        ..unreachable_outcome(sc)
    }
}

fn unreachable_outcome(sc: &crate::spec::Scenario) -> ScenarioOutcome {
    ScenarioOutcome {
        name: sc.name.clone(),
        role: sc.role,
        status: Status::InfraError,
        points: 0.0,
        max_points: sc.points,
        duration_ms: 0,
        description: sc.description.clone(),
        message: "the scenario was not run".into(),
        hint: None,
        failed_step: None,
        transcript: Vec::new(),
        stderr_tail: None,
        notes: Vec::new(),
    }
}
