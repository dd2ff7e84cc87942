//! One grading plan: what to grade and how ([`Job`]), the only path to a grading.
//!
//! A job is built from one of three sources, and from nowhere else:
//! - [`Job::from_args`]: the options of `grader run` (a submission file or folder, or none for
//!   the bundled reference solution); a folder is started as a batch starts one (its
//!   `classchat.toml`, which the options override, else the launch contract);
//! - [`Job::from_entry`]: one submission found in a batch folder ([`crate::batch::discover`]),
//!   under its class's task and settings;
//! - [`Job::from_record`]: a stored grading record, for `grader replay`.
//!
//! Guarantees:
//! - all three go through one assembly, which also writes the job's [`Provenance`]: a record
//!   holds exactly what [`Job::from_record`] needs to rebuild the same job (same task file,
//!   dialect, submission, templates, build, stdin prelude, client stdin, roles, seed, time
//!   limit, isolation and port leniency), so a replay is exact by construction, and the
//!   recording rules (e.g. a build deadline is kept only when it is not the default) are
//!   written once;
//! - whether a stored record is still current for a job is one method,
//!   [`Record::is_up_to_date_for`], comparing what the job would record with what the record
//!   holds (never the record's own score);
//! - every error says who must act ([`JobError::blame`]): the submission (it cannot be started,
//!   hashed or built; a batch reports it for that student and goes on), the configuration (a
//!   task file, an option: fix the command) or the grader (its own environment failed);
//!   a folder that cannot be started keeps its typed problem ([`FolderError`]), read as the
//!   command that asked says it (`submission <dir>: ...` for `grader run`, the problem alone
//!   for a batch entry).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::audience;
use crate::batch::discover::{self, Entry, LaunchPlan, LaunchPlanError};
use crate::engine::{self, EngineOptions, GradeError, GradeRequest};
use crate::events::EventSink;
use crate::fingerprint;
use crate::launch::{self, BuildCommand, ClientStdin, LaunchError, LaunchOptions, Submission};
use crate::net::netns::{Isolation, IsolationMode};
use crate::net::ports::PortPool;
use crate::report::record::{Provenance, Record};
use crate::spec::{self, Dialect, Role, SpecError, TaskSpec};
use crate::verdict::GradeReport;

/// Who must act on an error: the one place that decides whether a failed grading is the
/// student's problem (reported for that submission; a batch goes on) or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The submission cannot be started, built or read: the student fixes it.
    Submission,
    /// A task file or an option is wrong: whoever runs the grader fixes the command.
    Configuration,
    /// The grader's own environment failed: nobody's fault in the submission; rerun.
    Grader,
}

impl Blame {
    /// A few words for messages: whose problem it is.
    pub fn describe(self) -> &'static str {
        match self {
            Blame::Submission => "a problem of the submission",
            Blame::Configuration => "a problem of the grader's configuration",
            Blame::Grader => "the grader's own failure, not the submission's",
        }
    }
}

/// Why a job could not be built.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The task file cannot be read or is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The task file does not load under the dialect the submission's `classchat.toml` adds.
    #[error("the task under the protocol dialect of the submission's {file}", file = discover::LAUNCH_FILE)]
    SubmissionDialect(#[source] SpecError),
    /// An option given to the grader is wrong (a template, a prelude line, a role).
    #[error(transparent)]
    Option(LaunchError),
    /// The submission cannot be started as asked.
    #[error(transparent)]
    Launch(LaunchError),
    /// The submission folder cannot be started: why (names the folder and what to add).
    #[error(transparent)]
    Folder(FolderError),
    /// The submission cannot be hashed or copied safely (a link leaving it, a FIFO, too big).
    #[error(transparent)]
    Refused(fingerprint::HashError),
    /// A record's dialect does not parse (a hand-edited or corrupt record).
    #[error("the record's dialect")]
    RecordedDialect(#[source] spec::protocol::DialectError),
    /// The grader could not find its own executable (to grade the bundled reference).
    #[error("cannot find the grader's own executable")]
    OwnExecutable(#[source] std::io::Error),
}

impl JobError {
    /// Who must act.
    pub fn blame(&self) -> Blame {
        match self {
            JobError::Spec(_) | JobError::Option(_) | JobError::RecordedDialect(_) => {
                Blame::Configuration
            }
            JobError::SubmissionDialect(_)
            | JobError::Launch(_)
            | JobError::Folder(_)
            | JobError::Refused(_) => Blame::Submission,
            JobError::OwnExecutable(_) => Blame::Grader,
        }
    }
}

/// A submission folder that cannot be started, as the command that was asked to grade it says
/// so: a batch entry's message is the problem's own (`no executable in <dir>: ...`), `grader run`
/// names the submission first (`submission <dir>: ...`) and, when the folder has no
/// `classchat.toml`, ends with the options that would say how to start it. The problem's causes
/// follow as this error's sources (each once, see [`crate::error_chain`]); with that hint, the
/// message holds them itself so that the hint comes last, and the error has no source.
#[derive(Debug)]
pub struct FolderError {
    /// The folder.
    pub dir: PathBuf,
    /// Why it cannot be started (its `classchat.toml` error, no executable, ...).
    pub why: Arc<LaunchPlanError>,
    /// Who asked.
    pub asked_by: AskedBy,
}

/// Who asked for a submission folder to be graded (how its [`FolderError`] reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskedBy {
    /// A batch, for one of its entries.
    Batch,
    /// `grader run` on the folder; `flags_hint`: say that `--server`/`--client` can tell how to
    /// start it (it has no `classchat.toml`).
    Run {
        /// Whether to name `--server`/`--client`.
        flags_hint: bool,
    },
}

impl std::fmt::Display for FolderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.asked_by {
            AskedBy::Batch => write!(f, "{}", self.why),
            AskedBy::Run { flags_hint: false } => {
                write!(f, "submission {}: {}", self.dir.display(), self.why)
            }
            AskedBy::Run { flags_hint: true } => write!(
                f,
                "submission {}: {}; or say how to start it with --server/--client",
                self.dir.display(),
                crate::error_chain::Chain(&*self.why)
            ),
        }
    }
}

impl std::error::Error for FolderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self.asked_by {
            // The message holds the problem's whole chain, so that the hint comes last.
            AskedBy::Run { flags_hint: true } => None,
            // The message holds the problem's own; its causes follow.
            _ => self.why.source(),
        }
    }
}

impl GradeError {
    /// Who must act on a grading that produced no fair score.
    pub fn blame(&self) -> Blame {
        match self {
            GradeError::Launch(_) | GradeError::Build(_) => Blame::Submission,
            GradeError::Isolation(_) => Blame::Configuration,
            GradeError::Infrastructure { .. }
            | GradeError::BuildSetup { .. }
            | GradeError::Lease(_)
            | GradeError::Staging { .. } => Blame::Grader,
        }
    }
}

/// How every grading of a run is done, beyond the submission: shared by the jobs of a batch.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Folder of `task<N>.toml` files (None: the bundled ones).
    pub tasks_dir: Option<PathBuf>,
    /// Wall-clock limit of a grading's scenarios.
    pub time_limit: Duration,
    /// A build's deadline (None: the default).
    pub build_timeout: Option<Duration>,
    /// Network isolation, resolved by the caller (`auto` left as it is is resolved per
    /// grading).
    pub isolation: IsolationMode,
    /// Grade a program on the port it uses when that is not the assigned one (None: on).
    pub accept_any_port: Option<bool>,
    /// Scenarios of one grading run at once (None: all of them).
    pub parallelism: Option<usize>,
    /// The report folder (hidden from student code, like the task files).
    pub out: PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            tasks_dir: None,
            time_limit: engine::GRADING_TIME_LIMIT,
            build_timeout: None,
            isolation: IsolationMode::Auto,
            accept_any_port: None,
            parallelism: None,
            out: PathBuf::from("reports"),
        }
    }
}

impl Settings {
    /// The settings a record was graded with (its task folder, time limit, build deadline,
    /// isolation and port leniency), reporting to `out`.
    pub fn recorded(record: &Record, out: PathBuf) -> Self {
        let (r, p) = (&record.report, &record.provenance);
        Self {
            tasks_dir: p.tasks_dir.as_ref().map(PathBuf::from),
            time_limit: p
                .time_limit_ms
                .map_or(engine::GRADING_TIME_LIMIT, Duration::from_millis),
            build_timeout: p.build_timeout_ms.map(Duration::from_millis),
            isolation: match r.isolation.as_str() {
                "netns" | "userns" => IsolationMode::Netns,
                _ => IsolationMode::Host,
            },
            accept_any_port: Some(r.accepted_any_port()),
            parallelism: None,
            out,
        }
    }

    fn engine_options(&self, spec: &TaskSpec) -> EngineOptions {
        EngineOptions {
            parallelism: self.parallelism.unwrap_or(spec.scenarios.len()).max(1),
            isolation: self.isolation,
            accept_any_port: self.accept_any_port,
            build_timeout: self.build_timeout.unwrap_or(engine::build::BUILD_TIMEOUT),
            time_limit: self.time_limit,
            hidden: self
                .tasks_dir
                .iter()
                .chain(std::iter::once(&self.out))
                .cloned()
                .collect(),
            ..EngineOptions::default()
        }
    }
}

/// The options of `grader run`, as plain data (the command line fills it).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Task number.
    pub task: u32,
    /// The submission: an executable or a folder; None grades the bundled reference solution.
    pub submission: Option<PathBuf>,
    /// Server template.
    pub server: Option<String>,
    /// Client template.
    pub client: Option<String>,
    /// Build command.
    pub build: Option<String>,
    /// Lines typed on the client's stdin first.
    pub stdin_prelude: Vec<String>,
    /// The client's stdin.
    pub client_stdin: Option<ClientStdin>,
    /// Roles graded (empty: every role).
    pub roles: Vec<Role>,
    /// The class's protocol dialect (a folder's `classchat.toml` may add its own on top).
    pub dialect: Dialect,
    /// Seed (None: the caller's fresh one).
    pub seed: u64,
    /// Settings.
    pub settings: Settings,
}

/// One task of a class, loaded once for all its submissions.
#[derive(Debug, Clone)]
pub struct ClassTask {
    /// The task spec under the class's dialect.
    pub spec: TaskSpec,
    /// Its text.
    pub text: String,
    /// The class's dialect.
    pub dialect: Dialect,
}

impl ClassTask {
    /// Loads `task` under the class's `dialect`.
    pub fn load(settings: &Settings, task: u32, dialect: Dialect) -> Result<Self, SpecError> {
        let (spec, text) = spec::load_with(settings.tasks_dir.as_deref(), task, &dialect)?;
        Ok(Self {
            spec,
            text,
            dialect,
        })
    }
}

/// Everything a grading needs, decided: built by the three constructors, then assembled.
struct Plan {
    spec: TaskSpec,
    text: String,
    /// What was checked and is started (None: the bundled reference).
    submission: Option<Submission>,
    /// The folder the content hash covers (the submission itself unless a folder's executable
    /// is started).
    root: Option<PathBuf>,
    /// The report's name for the submission.
    name: Option<String>,
    server: Option<String>,
    client: Option<String>,
    build: Option<String>,
    launch: LaunchOptions,
    seed: u64,
    settings: Settings,
}

/// What to grade and how: one grading plan.
#[derive(Debug, Clone)]
pub struct Job {
    request: GradeRequest,
    provenance: Provenance,
}

impl Job {
    /// The job of `grader run`'s options.
    pub fn from_args(args: RunOptions) -> Result<Job, JobError> {
        let RunOptions {
            task,
            submission,
            mut server,
            mut client,
            mut build,
            mut stdin_prelude,
            mut client_stdin,
            mut roles,
            dialect,
            seed,
            settings,
        } = args;
        let bundled =
            submission.is_none() && server.is_none() && client.is_none() && build.is_none();
        // A folder is started as a batch starts one: its classchat.toml (the options win over
        // it), else the launch contract on its executable.
        let mut own = Dialect::default();
        let mut target = submission.clone();
        let mut root = None;
        if let Some(dir) = submission.as_deref().filter(|d| d.is_dir()) {
            let flags = server.is_some() || client.is_some() || build.is_some();
            let has_file = dir.join(discover::LAUNCH_FILE).exists();
            if !flags || has_file {
                let refused = |why, flags_hint| {
                    JobError::Folder(FolderError {
                        dir: dir.to_path_buf(),
                        why: Arc::new(why),
                        asked_by: AskedBy::Run { flags_hint },
                    })
                };
                // An error in its classchat.toml names the file, line and key.
                let plan = discover::folder_plan(dir, discover::Defaults::default())
                    .map_err(|why| refused(why, !has_file))?;
                own = discover::submission_dialect(&plan).map_err(|why| refused(why, false))?;
                server = server.or(plan.server);
                client = client.or(plan.client);
                build = build.or(plan.build);
                if stdin_prelude.is_empty() {
                    stdin_prelude = plan.stdin_prelude.unwrap_or_default();
                }
                client_stdin = client_stdin.or(plan.client_stdin);
                if roles.is_empty() {
                    roles = plan.roles.unwrap_or_default();
                }
                if plan.target != dir {
                    root = Some(dir.to_path_buf());
                    target = Some(plan.target);
                }
            }
        }
        let dialect = Dialect::combine([&dialect, &own]);
        let (spec, text) = spec::load_with(settings.tasks_dir.as_deref(), task, &dialect)?;
        for line in &stdin_prelude {
            launch::check_prelude_line(line, "--stdin-prelude line").map_err(JobError::Option)?;
        }
        let launch = LaunchOptions {
            stdin_prelude,
            client_stdin: client_stdin.unwrap_or_default(),
            roles: (!roles.is_empty()).then_some(roles),
        };
        let (submission, name) = if bundled {
            (None, None)
        } else {
            let given = target.as_deref().unwrap_or(Path::new("."));
            let checked =
                launch::check_submission(&given.display().to_string()).map_err(JobError::Launch)?;
            // The folder names the report (as in a batch).
            let name = root.as_deref().and_then(|dir| {
                std::fs::canonicalize(dir)
                    .ok()
                    .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            });
            (Some(checked), name)
        };
        assemble(Plan {
            spec,
            text,
            submission,
            root,
            name,
            server,
            client,
            build,
            launch,
            seed,
            settings,
        })
    }

    /// The job of one batch entry of `task`'s class, under the class's `settings`.
    pub fn from_entry(
        entry: &Entry,
        task: &ClassTask,
        settings: &Settings,
        seed: u64,
    ) -> Result<Job, JobError> {
        let refused = |why| {
            JobError::Folder(FolderError {
                dir: entry.path.clone(),
                why,
                asked_by: AskedBy::Batch,
            })
        };
        let plan: &LaunchPlan = entry
            .launch
            .as_ref()
            .map_err(|why| refused(Arc::clone(why)))?;
        // The submission's own dialect (classchat.toml) on top of the class's.
        let own = discover::submission_dialect(plan).map_err(|why| refused(Arc::new(why)))?;
        let (spec, text) = if own.is_empty() {
            (task.spec.clone(), task.text.clone())
        } else {
            let dialect = Dialect::combine([&task.dialect, &own]);
            spec::load_with(settings.tasks_dir.as_deref(), task.spec.task, &dialect)
                .map_err(JobError::SubmissionDialect)?
        };
        let mut submission = launch::check_submission(&plan.target.display().to_string())
            .map_err(JobError::Launch)?;
        submission.given = entry.path.display().to_string();
        assemble(Plan {
            spec,
            text,
            submission: Some(submission),
            root: Some(entry.path.clone()),
            name: Some(entry.id.clone()),
            server: plan.server.clone(),
            client: plan.client.clone(),
            build: plan.build.clone(),
            launch: plan.options(),
            seed,
            settings: settings.clone(),
        })
    }

    /// The job a stored record describes, reporting under `settings` (see
    /// [`Settings::recorded`]): the same task file and dialect, submission, templates, build,
    /// stdin prelude, client stdin, roles and seed. Nothing is read from the submission's
    /// `classchat.toml`: the record says it all.
    pub fn from_record(record: &Record, settings: Settings) -> Result<Job, JobError> {
        let (r, p) = (&record.report, &record.provenance);
        let dialect = match (&r.dialect, &p.protocol) {
            (Some(label), Some(keys)) => {
                Dialect::from_inline(label, keys).map_err(JobError::RecordedDialect)?
            }
            _ => Dialect::default(),
        };
        let (spec, text) = spec::load_with(settings.tasks_dir.as_deref(), r.task, &dialect)?;
        let submission = if p.bundled_reference {
            None
        } else {
            let path = p
                .submission_abs
                .clone()
                .unwrap_or_else(|| r.submission_path.clone());
            Some(launch::check_submission(&path).map_err(JobError::Launch)?)
        };
        assemble(Plan {
            spec,
            text,
            submission,
            root: p.submission_root.as_ref().map(PathBuf::from),
            name: (!p.bundled_reference).then(|| r.submission.clone()),
            server: p.server_template.clone(),
            client: p.client_template.clone(),
            build: p.build_command.clone(),
            launch: LaunchOptions {
                stdin_prelude: p.stdin_prelude.clone(),
                client_stdin: p.client_stdin.unwrap_or_default(),
                roles: p.roles.clone(),
            },
            seed: r.seed,
            settings,
        })
    }

    /// The task spec graded.
    pub fn spec(&self) -> &TaskSpec {
        &self.request.spec
    }

    /// The task number.
    pub fn task(&self) -> u32 {
        self.request.spec.task
    }

    /// The report's name for the submission (the student id in a batch).
    pub fn name(&self) -> &str {
        &self.request.submission.name
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.request.seed
    }

    /// What the record will keep of how the grading was done.
    pub fn provenance(&self) -> &Provenance {
        &self.provenance
    }

    /// Whether the submission is built before its scenarios.
    pub fn builds(&self) -> bool {
        self.request.build.is_some()
    }

    /// The engine's options of this grading.
    pub fn options(&self) -> &EngineOptions {
        &self.request.options
    }

    /// Grades under `isolation` (the caller's resolution of the mode asked for: say once, for a
    /// whole run, what `auto` became).
    pub fn set_isolation(&mut self, isolation: IsolationMode) {
        self.request.options.isolation = isolation;
    }

    /// Resource limits of every student process of the grading (default: 1 GiB of memory, one
    /// core; see [`crate::process::limits`]).
    pub fn set_limits(&mut self, limits: crate::process::limits::Limits) {
        self.request.options.limits = limits;
    }

    /// SHA-256 of the task file's text as graded (what the record keeps as `spec_hash`).
    pub fn spec_hash(&self) -> String {
        engine::spec_hash(&self.request.spec_text)
    }

    /// The maximum score of the roles graded.
    pub fn max_score(&self) -> f64 {
        launch::only_roles(&self.request.spec, self.request.launch.roles.as_deref())
            .map_or_else(|_| self.request.spec.max_score(), |(s, _)| s.max_score())
    }

    /// Runs the grading, reporting events to `events`.
    pub async fn grade(
        &self,
        ports: &Arc<PortPool>,
        events: &dyn EventSink,
    ) -> Result<GradeReport, GradeError> {
        engine::grade(&self.request, ports, events).await
    }
}

/// Checks and assembles a plan into a job, with the provenance its record keeps.
fn assemble(plan: Plan) -> Result<Job, JobError> {
    let Plan {
        spec,
        text,
        submission,
        root,
        name,
        server,
        client,
        build,
        launch,
        seed,
        settings,
    } = plan;
    let task = spec.task;
    if launch.roles.is_some() {
        launch::only_roles(&spec, launch.roles.as_deref()).map_err(JobError::Option)?;
    }
    let bundled = submission.is_none();
    let template = |role, given: &Option<String>| match given {
        Some(t) => launch::CommandTemplate::parse(role, t),
        None if bundled => Ok(launch::CommandTemplate::bundled_reference(role, task)),
        None => Ok(launch::CommandTemplate::default_for(role)),
    };
    let server_t = template(Role::Server, &server).map_err(JobError::Launch)?;
    let client_t = template(Role::Client, &client).map_err(JobError::Launch)?;
    let build_c = build
        .as_deref()
        .map(BuildCommand::parse)
        .transpose()
        .map_err(JobError::Launch)?;
    let mut submission = match submission {
        Some(s) => s,
        None => {
            let exe = std::env::current_exe().map_err(JobError::OwnExecutable)?;
            let mut s =
                launch::check_submission(&exe.display().to_string()).map_err(JobError::Launch)?;
            s.name = format!("reference-task{task}");
            s.given = format!("(bundled reference solution of task {task})");
            s
        }
    };
    if let Some(n) = name {
        submission.name = n;
    }
    // What the content hash covers, and what `grader replay` starts.
    let root = root
        .map(|r| std::path::absolute(&r).unwrap_or(r))
        .unwrap_or_else(|| submission.path.clone());
    let submission_hash = if bundled {
        None
    } else {
        Some(fingerprint::content_hash(&root).map_err(|e| {
            if e.is_refusal() {
                // Says what to change in the submission.
                JobError::Refused(e)
            } else {
                JobError::Launch(LaunchError::Unreadable {
                    submission: submission.given.clone(),
                    source: e.into(),
                })
            }
        })?)
    };
    let options = settings.engine_options(&spec);
    let provenance = Provenance {
        submission_hash,
        submission_abs: (!bundled).then(|| submission.path.display().to_string()),
        submission_root: (!bundled && root != submission.path).then(|| root.display().to_string()),
        bundled_reference: bundled,
        server_template: server,
        client_template: client,
        build_timeout_ms: build
            .as_ref()
            .and(settings.build_timeout)
            .filter(|t| *t != engine::build::BUILD_TIMEOUT)
            .map(|t| t.as_millis().min(u128::from(u64::MAX)) as u64),
        build_command: build,
        time_limit_ms: (settings.time_limit != engine::GRADING_TIME_LIMIT)
            .then(|| settings.time_limit.as_millis().min(u128::from(u64::MAX)) as u64),
        tasks_dir: settings
            .tasks_dir
            .as_deref()
            .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.to_path_buf()))
            .map(|d| d.display().to_string()),
        protocol: (!spec.dialect.is_empty()).then(|| spec.dialect.to_inline()),
        policies: audience::policies_of(&spec),
        stdin_prelude: launch.stdin_prelude.clone(),
        client_stdin: Some(launch.client_stdin).filter(|c| *c != ClientStdin::Pipe),
        roles: launch.roles.clone(),
    };
    let spec_source = match &settings.tasks_dir {
        Some(d) => d.join(format!("task{task}.toml")).display().to_string(),
        None => format!("bundled:tasks/task{task}.toml"),
    };
    Ok(Job {
        request: GradeRequest {
            spec,
            spec_text: text,
            spec_source,
            submission,
            server: server_t,
            client: client_t,
            build: build_c,
            seed,
            launch,
            options,
        },
        provenance,
    })
}

impl Record {
    /// Whether this record is a grading of `job` as it would be done now: the same student,
    /// task, task spec, grader version, submission content, templates, build command, stdin
    /// prelude, client stdin, roles, isolation and port leniency. A refused record is never
    /// read as one (see [`crate::report::record::read`]).
    pub fn is_up_to_date_for(&self, job: &Job) -> bool {
        let (old, p, now) = (&self.report, &self.provenance, &job.provenance);
        // A record of another student (an id that shared this folder before) is never current.
        old.submission == job.name()
            && old.task == job.task()
            && old.spec_hash == engine::spec_hash(&job.request.spec_text)
            && old.grader_version == env!("CARGO_PKG_VERSION")
            && p.submission_hash == now.submission_hash
            && p.server_template == now.server_template
            && p.client_template == now.client_template
            && p.build_command == now.build_command
            && p.stdin_prelude == now.stdin_prelude
            && p.client_stdin == now.client_stdin
            && p.roles == now.roles
            && same_isolation(old, &job.request.options)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::SCHEMA_VERSION;

    #[test]
    fn a_folder_error_reads_as_its_asker_says_and_keeps_the_problem_typed() {
        let dir = PathBuf::from("subs/bob");
        let why = Arc::new(LaunchPlanError::NoExecutable { dir: dir.clone() });
        let error = |asked_by| {
            JobError::Folder(FolderError {
                dir: dir.clone(),
                why: Arc::clone(&why),
                asked_by,
            })
        };
        let problem = why.to_string();
        assert!(
            problem.starts_with("no executable in subs/bob: "),
            "{problem}"
        );
        // A batch entry: the problem's own message.
        let e = error(AskedBy::Batch);
        assert_eq!(crate::error_chain::chain(&e), problem);
        assert_eq!(e.blame(), Blame::Submission);
        // `grader run`: the submission first, and the options when it has no classchat.toml.
        let e = error(AskedBy::Run { flags_hint: true });
        assert_eq!(
            crate::error_chain::chain(&e),
            format!(
                "submission subs/bob: {problem}; or say how to start it with --server/--client"
            )
        );
        let e = error(AskedBy::Run { flags_hint: false });
        assert_eq!(e.to_string(), format!("submission subs/bob: {problem}"));
        let JobError::Folder(f) = &e else { panic!() };
        assert!(
            matches!(&*f.why, LaunchPlanError::NoExecutable { dir } if dir == Path::new("subs/bob"))
        );
        // A problem with a cause: the cause follows once.
        let why = Arc::new(LaunchPlanError::UnreadableFolder {
            dir: dir.clone(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        });
        let e = FolderError {
            dir: dir.clone(),
            why: Arc::clone(&why),
            asked_by: AskedBy::Batch,
        };
        assert_eq!(
            crate::error_chain::chain(&e),
            "cannot read subs/bob: permission denied"
        );
        // With the hint, it comes last.
        let e = FolderError {
            dir: dir.clone(),
            why,
            asked_by: AskedBy::Run { flags_hint: true },
        };
        assert_eq!(
            crate::error_chain::chain(&e),
            "submission subs/bob: cannot read subs/bob: permission denied; or say how to start it with --server/--client"
        );
    }

    /// A submission folder started by its `classchat.toml` (templates, a prelude line, one
    /// role), its script, and the settings of a grading of it.
    fn folder(dir: &Path) -> PathBuf {
        let sub = dir.join("alice");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("chat.py"), "print('hi')\n").unwrap();
        std::fs::write(
            sub.join(discover::LAUNCH_FILE),
            "server = \"python3 {dir}/chat.py --port {port}\"\n\
             client = \"python3 {dir}/chat.py {host} {port}\"\n\
             stdin_prelude = [\"{name}\"]\n\
             roles = [\"server\"]\n",
        )
        .unwrap();
        sub
    }

    fn options(sub: &Path, out: &Path) -> RunOptions {
        RunOptions {
            task: 1,
            submission: Some(sub.to_path_buf()),
            seed: 42,
            settings: Settings {
                time_limit: Duration::from_secs(90),
                isolation: IsolationMode::Host,
                accept_any_port: Some(false),
                out: out.to_path_buf(),
                ..Settings::default()
            },
            ..RunOptions::default()
        }
    }

    /// The record a grading of `job` would leave (no scenario: only what identifies it).
    fn record_of(job: &Job) -> Record {
        Record {
            report: GradeReport {
                schema_version: SCHEMA_VERSION,
                grader_version: env!("CARGO_PKG_VERSION").into(),
                submission: job.name().into(),
                submission_path: job.request.submission.path.display().to_string(),
                task: job.task(),
                task_title: job.spec().title.clone(),
                score: 0.0,
                max_score: 0.0,
                seed: job.seed(),
                spec_hash: job.spec_hash(),
                spec_source: job.request.spec_source.clone(),
                dialect: None,
                isolation: "host".into(),
                accept_any_port: job.options().accept_any_port,
                timestamp: String::new(),
                duration_ms: 0,
                scenarios: Vec::new(),
                notes: Vec::new(),
            },
            provenance: job.provenance().clone(),
            failed_attempt: None,
            source: None,
        }
    }

    #[test]
    fn a_record_rebuilds_the_job_it_was_graded_by() {
        let dir = tempfile::tempdir().unwrap();
        let sub = folder(dir.path());
        let job = Job::from_args(options(&sub, &dir.path().join("out"))).unwrap();
        assert_eq!(job.name(), "alice");
        assert_eq!(
            job.provenance().roles.as_deref(),
            Some(&[Role::Server][..]),
            "the folder's classchat.toml is read"
        );
        let record = record_of(&job);
        let replayed = Job::from_record(
            &record,
            Settings::recorded(&record, dir.path().join("replay")),
        )
        .unwrap();
        assert_eq!(replayed.provenance(), job.provenance());
        assert_eq!(replayed.name(), job.name());
        assert_eq!(replayed.seed(), 42);
        assert_eq!(replayed.spec_hash(), job.spec_hash());
        assert_eq!(replayed.request.launch, job.request.launch);
        assert_eq!(replayed.request.server.text(), job.request.server.text());
        assert_eq!(replayed.request.client.text(), job.request.client.text());
        let (a, b) = (replayed.options(), job.options());
        assert_eq!(
            (a.time_limit, a.isolation, a.accept_any_port),
            (b.time_limit, b.isolation, b.accept_any_port)
        );
        assert!(record.is_up_to_date_for(&replayed));
    }

    #[test]
    fn a_record_is_up_to_date_only_for_the_same_submission_and_launch() {
        let dir = tempfile::tempdir().unwrap();
        let sub = folder(dir.path());
        let out = dir.path().join("out");
        let job = Job::from_args(options(&sub, &out)).unwrap();
        let record = record_of(&job);
        assert!(record.is_up_to_date_for(&job));
        // Another seed grades the same thing.
        let reseeded = Job::from_args(RunOptions {
            seed: 7,
            ..options(&sub, &out)
        })
        .unwrap();
        assert!(record.is_up_to_date_for(&reseeded));
        // Another client template, another isolation, another content: regrade.
        let templated = Job::from_args(RunOptions {
            client: Some("python3 {dir}/chat.py --connect {port}".into()),
            ..options(&sub, &out)
        })
        .unwrap();
        assert!(!record.is_up_to_date_for(&templated));
        let mut netns = options(&sub, &out);
        netns.settings.isolation = IsolationMode::Netns;
        assert!(!record.is_up_to_date_for(&Job::from_args(netns).unwrap()));
        std::fs::write(sub.join("chat.py"), "print('changed')\n").unwrap();
        let changed = Job::from_args(options(&sub, &out)).unwrap();
        assert!(!record.is_up_to_date_for(&changed));
    }

    #[test]
    fn errors_say_who_must_act() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        // Nothing to start in the folder: the submission's problem.
        let empty = dir.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let e = Job::from_args(options(&empty, &out)).unwrap_err();
        assert_eq!(e.blame(), Blame::Submission, "{e}");
        assert!(e.to_string().contains("no executable"), "{e}");
        // A task that does not exist: the configuration's.
        let sub = folder(dir.path());
        let e = Job::from_args(RunOptions {
            task: 99,
            ..options(&sub, &out)
        })
        .unwrap_err();
        assert_eq!(e.blame(), Blame::Configuration, "{e}");
        // A prelude line that does not parse: the option's.
        let e = Job::from_args(RunOptions {
            stdin_prelude: vec!["{nope}".into()],
            ..options(&sub, &out)
        })
        .unwrap_err();
        assert_eq!(e.blame(), Blame::Configuration, "{e}");
        assert_eq!(
            GradeError::Build("make: failed".into()).blame(),
            Blame::Submission
        );
        assert_eq!(
            GradeError::Infrastructure {
                scenario: "ack".into(),
                message: "our port was taken".into()
            }
            .blame(),
            Blame::Grader
        );
    }
}
