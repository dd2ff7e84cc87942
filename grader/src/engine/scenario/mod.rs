//! Running one scenario: its processes, connections and steps, and the verdict that explains it.
//!
//! Guarantees:
//! - every wait has a deadline and also wakes when a watched student process dies, so a dead
//!   program fails its step at once instead of waiting the deadline out;
//! - a failure is attributed fairly: when the student's process died abnormally the verdict is
//!   `crashed` (with its exit status and stderr tail; when the kernel killed it at the memory
//!   limit the message says so instead), when a server never listened it is
//!   `never listened` (naming the port it did listen on, if any), when the grader's port was taken
//!   by a stranger it is an infrastructure error (retried, never charged);
//! - readiness of a student server is observed in /proc (its listening socket), never by
//!   connecting, so one-shot servers and servers that crash on a disconnect are not disturbed;
//! - all processes of the scenario are ended (TERM, grace, KILL) before the outcome is returned;
//! - no step waits past the grading's wall-clock limit: it fails there as *timed out*;
//! - `parallel` copies run concurrently, keep their connections for later groups, and an
//!   `isolated` group checks that no copy received a line another copy sent; an expectation on a
//!   connection that times out says when the awaited text arrived on another connection instead;
//! - datagram steps (`scenario/datagrams.rs`) share the scenario's network, transcript and
//!   process watching with the connection steps.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use regex::Regex;
use tokio::net::TcpListener;

use super::GradeRequest;
use super::hardcoded::{PortSeen, PortWatch};
use super::matcher::{Matcher, Outcome, quote};
use super::patience::Patience;
use crate::net::conn::Conn;
use crate::net::netns::{Isolation, Net, Port};
use crate::net::ports::{PortPool, RefusedPort};
use crate::process::{self, Launch, StudentProcess, procfs};
use crate::spec::template::{self, Vars};
use crate::spec::{
    ConnStep, CopyStep, DatagramStep, Expectation, GroupStep, Process, ProcessStep, Scenario,
    SendBody, Step, StreamRef, Target,
};
use crate::stream::{End, Stream};
use crate::transcript::{Dir, Transcript};
use crate::verdict::{ScenarioOutcome, Status};

/// The loopback host student programs are pointed at.
const HOST: &str = "127.0.0.1";
/// How long `expect_running` watches for a crash that follows a close (stretched under load).
const RUNNING_GRACE: Duration = Duration::from_millis(200);
/// After a stream ends or a process exits, how long its last bytes and exit may take to arrive.
const SETTLE: Duration = Duration::from_millis(500);
/// How long a server already listening on some other port gets to open its assigned one too.
const WRONG_PORT_GRACE: Duration = Duration::from_millis(500);
/// How often `expect_connect_attempt` reads the namespace's connection counter while the
/// program runs (its exit ends the wait at once).
const CONNECT_POLL: Duration = Duration::from_millis(5);

/// What a failed scenario's record keeps of the program's stderr: its first lines up to this
/// many bytes (where a start-up message or the first error is) ...
const STDERR_HEAD: usize = 600;
/// ... and its last lines up to this many (reaching back further to a traceback's first line).
const STDERR_TAIL: usize = 1500;

/// The hint of a scenario whose program was killed at the memory limit.
const MEMORY_HINT: &str = "memory use grows without bound: look for data kept forever (every message in a list, a buffer never cleared) or an allocation sized by what a client sent";

/// A failed step.
#[derive(Debug)]
struct Fail {
    status: Status,
    message: String,
    hint: Option<String>,
}

impl Fail {
    fn new(status: Status, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            hint: None,
        }
    }
    fn hint(mut self, hint: Option<String>) -> Self {
        if self.hint.is_none() {
            self.hint = hint;
        }
        self
    }
}

type StepResult = Result<(), Fail>;

/// The shared state of one scenario run.
struct Run<'a> {
    req: &'a GradeRequest,
    sc: &'a Scenario,
    ports: &'a Arc<PortPool>,
    /// The network of this scenario: the host's, or a namespace of its own.
    net: Net,
    transcript: Arc<Transcript>,
    server: Option<StudentProcess>,
    client: Option<StudentProcess>,
    server_addr: Option<SocketAddr>,
    lease: Option<Port>,
    listener: Option<TcpListener>,
    listener_port: Option<u16>,
    refused: Option<RefusedPort>,
    /// Where the client's connections are not redirected to the listener (in a namespace):
    /// the connection requests it sent, to name a port it dialled instead.
    dials: Option<crate::net::dials::DialWatch>,
    notes: Vec<crate::note::Note>,
    /// Set by `end_if_exited`: the scenario passes without its remaining steps.
    ended: bool,
    /// What the grading learned about hard-coded ports, shared by its scenarios.
    watch: &'a PortWatch,
    /// This scenario runs alone among those that start the server (host network, hard-coded
    /// port).
    alone: bool,
    /// Hard-coded ports this scenario saw (noted once per grading by the engine).
    seen: Vec<PortSeen>,
    /// The server could not listen because another scenario of this grading held the
    /// hard-coded port: the engine runs the scenario again, alone.
    collided: bool,
    /// Every connection opened in the scenario (name, what it received), for diagnostics.
    opened: std::sync::Mutex<Vec<(String, Arc<Stream>)>>,
    /// Every line typed on the client's stdin, for diagnostics.
    typed: std::sync::Mutex<Vec<String>>,
    /// The grader's UDP sockets, by name (datagram scenarios).
    udp: HashMap<String, crate::net::datagram::DatagramSocket>,
    /// The student's server is a UDP server (`start_server` with `udp = true`): it is ready once
    /// its UDP socket is bound.
    udp_server: bool,
}

/// Connections and indices owned by one strand of a scenario (the scenario itself, or one copy
/// inside `parallel`).
#[derive(Default)]
struct Local {
    conns: HashMap<String, Conn>,
    i: Option<u32>,
    j: Option<u32>,
    /// Lines sent on this strand's connections (recorded inside `parallel` only).
    sent: Vec<String>,
    /// Inside a `parallel` group with `burst`: where this copy's `connect` reports that its
    /// request has left.
    gate: Option<Arc<burst::Gate>>,
}

impl Local {
    fn key(&self, name: &str) -> String {
        match self.i {
            Some(i) => format!("{name}#{i}"),
            None => name.to_string(),
        }
    }
    fn conn(&mut self, name: &str) -> Result<&mut Conn, Fail> {
        let key = self.key(name);
        let fallback = name.to_string();
        if self.conns.contains_key(&key) {
            return self.conns.get_mut(&key).ok_or_else(|| unknown_conn(name));
        }
        self.conns
            .get_mut(&fallback)
            .ok_or_else(|| unknown_conn(name))
    }
}

fn unknown_conn(name: &str) -> Fail {
    Fail::new(
        Status::InfraError,
        format!("connection {name:?} is not open (spec error)"),
    )
}

/// One run of a scenario: its outcome, the hard-coded ports it saw, and whether it collided
/// with another scenario over one (then it must run again, alone; see [`super::hardcoded`]).
pub(super) struct Ran {
    pub(super) outcome: ScenarioOutcome,
    pub(super) seen: Vec<PortSeen>,
    pub(super) collided: bool,
}

/// Runs one scenario once and returns its outcome. A step still waiting at `deadline` (the
/// grading's wall-clock limit) fails there as *timed out*; the scenario then ends its processes
/// and reports as after any failure. `alone`: it runs alone among the scenarios that start the
/// server.
pub(super) async fn run(
    req: &GradeRequest,
    ports: &Arc<PortPool>,
    isolation: Isolation,
    sc: &Scenario,
    deadline: Instant,
    watch: &PortWatch,
    alone: bool,
) -> Ran {
    let started = Instant::now();
    let net = match Net::new(isolation) {
        Ok(net) => net,
        Err(e) => {
            let outcome = ScenarioOutcome {
                name: sc.name.clone(),
                role: sc.role,
                status: Status::InfraError,
                points: 0.0,
                max_points: sc.points,
                duration_ms: started.elapsed().as_millis() as u64,
                description: sc.description.clone(),
                message: format!("cannot create the scenario's network namespace: {e}"),
                hint: None,
                failed_step: None,
                transcript: Vec::new(),
                stderr_tail: None,
                notes: Vec::new(),
            };
            return Ran {
                outcome,
                seen: Vec::new(),
                collided: false,
            };
        }
    };
    let mut run = Run {
        req,
        sc,
        ports,
        net,
        transcript: Arc::new(Transcript::new()),
        server: None,
        client: None,
        server_addr: None,
        lease: None,
        listener: None,
        listener_port: None,
        refused: None,
        dials: None,
        notes: Vec::new(),
        ended: false,
        watch,
        alone,
        seen: Vec::new(),
        collided: false,
        opened: std::sync::Mutex::new(Vec::new()),
        typed: std::sync::Mutex::new(Vec::new()),
        udp: HashMap::new(),
        udp_server: false,
    };
    let mut local = Local::default();
    let mut failed: Option<(usize, &Step, Fail)> = None;
    for (n, step) in sc.steps.iter().enumerate() {
        let result = tokio::time::timeout_at(deadline.into(), run.step(&mut local, step))
            .await
            .unwrap_or_else(|_| {
                Err(Fail::new(
                    Status::TimedOut,
                    super::cut_message(req.options.time_limit, super::Cut::DuringStep),
                ))
            });
        if let Err(f) = result {
            failed = Some((n + 1, step, f));
            break;
        }
        if run.ended {
            break;
        }
    }
    // A kill at the memory limit explains whatever failure followed it; an output flood
    // overrides whatever the steps saw.
    for p in [&run.server, &run.client].into_iter().flatten() {
        if !p.memory_exceeded() {
            continue;
        }
        let limit = process::limits::human_bytes(req.options.limits.memory_bytes);
        // The OOM killer picks the biggest process: the program itself, or one it started.
        let who = match p.exit_info() {
            Some(e) if e.signal == Some(nix::sys::signal::Signal::SIGKILL as i32) => {
                format!("the {}", p.role)
            }
            _ => format!("a process of the {}", p.role),
        };
        match &mut failed {
            Some((_, _, f)) => {
                *f = Fail::new(
                    Status::Crashed,
                    format!("{who} was killed: it used more than the {limit} memory limit"),
                )
                .hint(Some(MEMORY_HINT.into()));
            }
            None => run.notes.push(crate::note::Note::MemoryLimit {
                role: p.role.to_string(),
                limit: limit.clone(),
            }),
        }
    }
    for p in [&run.server, &run.client].into_iter().flatten() {
        if p.output_exceeded() {
            let f = Fail::new(
                Status::OutputLimit,
                format!(
                    "the {} printed more than {} bytes and was stopped",
                    p.role, req.options.output_limit
                ),
            )
            .hint(Some(
                "remove debug output inside loops; print each message once".into(),
            ));
            let step = failed.as_ref().map_or(&sc.steps[0], |f| f.1);
            let n = failed.as_ref().map_or(1, |f| f.0);
            failed = Some((n, step, f));
        }
    }
    let stderr_tail = failed.as_ref().and_then(|_| {
        let p = match sc.role {
            crate::spec::Role::Server => run.server.as_ref(),
            crate::spec::Role::Client => run.client.as_ref(),
        }?;
        let tail = p.stderr.head_and_tail(STDERR_HEAD, STDERR_TAIL);
        (!tail.trim().is_empty()).then_some(tail)
    });
    let transcript = failed
        .as_ref()
        .map(|_| run.transcript.excerpt(req.options.transcript_lines))
        .unwrap_or_default();
    if run.on_host()
        && run
            .seen
            .iter()
            .any(|s| matches!(s, PortSeen::Server { .. }))
    {
        // The next scenario starts this server on the same hard-coded port: reset every
        // connection, so that none lingers in TIME_WAIT on that port (a server without
        // SO_REUSEADDR could not bind it again for a minute).
        for c in local.conns.values_mut() {
            c.abort().await;
        }
    }
    drop(local);
    run.end_processes().await;

    let duration_ms = started.elapsed().as_millis() as u64;
    let (seen, collided) = (std::mem::take(&mut run.seen), run.collided);
    let outcome = match failed {
        None => ScenarioOutcome {
            name: sc.name.clone(),
            role: sc.role,
            status: Status::Passed,
            points: sc.points,
            max_points: sc.points,
            duration_ms,
            description: sc.description.clone(),
            message: String::new(),
            hint: None,
            failed_step: None,
            transcript: Vec::new(),
            stderr_tail: None,
            notes: run.notes,
        },
        Some((n, step, fail)) => {
            let hint = fail
                .hint
                .clone()
                .or_else(|| step.hint().map(String::from))
                .or_else(|| sc.hint.clone())
                .filter(|_| fail.status != Status::InfraError);
            ScenarioOutcome {
                name: sc.name.clone(),
                role: sc.role,
                status: fail.status,
                points: 0.0,
                max_points: sc.points,
                duration_ms,
                description: sc.description.clone(),
                message: fail.message,
                hint,
                failed_step: Some(sc.step_label(n, step.kind())),
                transcript,
                stderr_tail,
                notes: run.notes,
            }
        }
    };
    Ran {
        outcome,
        seen,
        collided,
    }
}

impl<'a> Run<'a> {
    fn vars(&self, local: &Local) -> Vars<'a> {
        Vars {
            seed: self.req.seed,
            scenario: &self.sc.name,
            i: local.i,
            j: local.j,
        }
    }

    fn expand(&self, local: &Local, text: &str) -> Result<String, Fail> {
        template::expand(text, &self.vars(local))
            .map_err(|e| Fail::new(Status::InfraError, format!("spec error: {e}")))
    }

    fn within(&self, w: &Option<crate::spec::Dur>) -> Duration {
        w.unwrap_or(self.req.spec.defaults.within).0
    }

    /// A deadline of `within` from now, stretched by CPU starvation of the watched process and
    /// of the grader (see [`Patience`]).
    fn patience(&self, within: Duration) -> Patience {
        Patience::new(within, self.watched().map(StudentProcess::member_list))
    }

    fn process(&self, p: Process) -> Result<&StudentProcess, Fail> {
        match p {
            Process::Server => self.server.as_ref(),
            Process::Client => self.client.as_ref(),
        }
        .ok_or_else(|| {
            Fail::new(
                Status::InfraError,
                format!("the {p} was not started (spec error)"),
            )
        })
    }

    /// The student process whose death ends waits in this scenario.
    fn watched(&self) -> Option<&StudentProcess> {
        match self.sc.role {
            crate::spec::Role::Server => self.server.as_ref(),
            crate::spec::Role::Client => self.client.as_ref(),
        }
    }

    /// Turns a failure into a crash verdict when the watched process has died; waits up to
    /// [`SETTLE`] for a dying process to finish dying first.
    async fn attribute(&self, message: String, status: Status) -> Fail {
        let Some(p) = self.watched() else {
            return Fail::new(status, message);
        };
        let exit = match p.exit_info() {
            Some(e) => Some(e),
            None if status != Status::TimedOut => p.wait_exit(Instant::now() + SETTLE).await,
            None => None,
        };
        match exit {
            Some(e) if e.abnormal() => {
                StudentProcess::settle_stream(&p.stderr, SETTLE).await;
                Fail::new(
                    Status::Crashed,
                    format!("{message}: the {} crashed ({e})", p.role),
                )
            }
            Some(e) => Fail::new(
                Status::Failed,
                format!("{message}: the {} had exited ({e})", p.role),
            ),
            None => Fail::new(status, message),
        }
    }

    fn spawn(
        &self,
        role: Process,
        argv: Vec<String>,
        port: u16,
        name: Option<&str>,
        pty: bool,
    ) -> Result<StudentProcess, Fail> {
        let infra = |e: String| Fail::new(Status::InfraError, e);
        let home = process::grader_id::home_prefix()
            .and_then(|p| tempfile::Builder::new().prefix(&p).tempdir())
            .map_err(|e| infra(format!("cannot create a home folder: {e}")))?;
        let mut classchat = vec![
            ("CLASSCHAT_HOST", HOST.to_string()),
            ("CLASSCHAT_PORT", port.to_string()),
        ];
        if let Some(n) = name {
            classchat.push(("CLASSCHAT_NAME", n.to_string()));
        }
        let bundled = self.req.grades_bundled_reference();
        let launch = Launch {
            argv,
            env: process::env::scrubbed(home.path(), &classchat),
            cwd: self.req.submission.work_dir.clone(),
            stdout_pty: pty,
            // A client's stdin is its terminal too when the submission asks for one.
            stdin_pty: pty && self.req.launch.client_stdin == crate::launch::ClientStdin::Terminal,
            stderr_to_stdout: false,
            output_limit: self.req.options.output_limit,
            limits: self.req.options.limits,
            netns: self.net.ns_fd(),
            confine: self.req.options.confine,
            cgroup: true,
            hidden: self.req.options.hidden.clone(),
            // The bundled reference is the grader's own (trusted) binary, started where it lies
            // (a folder that may be closed to other users): its installation is shown and it
            // keeps the grader's uid, without capabilities. A submission runs from its copy,
            // which belongs to the grading's uid.
            read_only: if bundled {
                Vec::new()
            } else {
                vec![self.req.submission.dir.clone()]
            },
            run_as: self.req.options.run_as.filter(|_| !bundled),
            conceal_grader: !bundled,
        };
        StudentProcess::spawn(role, &launch, home, self.transcript.clone())
            .map_err(|e| infra(crate::error_chain::chain(&e)))
    }

    /// Whether a program using another port than its assigned one is graded there (see
    /// [`super::EngineOptions::accept_any_port`]).
    fn accept_any_port(&self) -> bool {
        self.req.options.accept_any_port.unwrap_or(true)
    }

    /// Whether this scenario shares the host's network (ports can collide there).
    fn on_host(&self) -> bool {
        self.net.isolation() == Isolation::Host
    }

    async fn end_processes(&mut self) {
        let grace = self.req.options.grace;
        let procs = [self.server.as_ref(), self.client.as_ref()];
        futures_util::future::join_all(procs.into_iter().flatten().map(|p| p.terminate(grace)))
            .await;
    }
}

mod burst;
mod bytes;
mod datagrams;
mod diagnose;
mod http_step;
mod prelude;
mod startup;
mod steps;
mod waits;

#[cfg(test)]
mod tests {
    use super::steps::{CopyRecord, copy_index, crossed_line};
    use super::waits::{any_change, matched_line};
    use super::*;

    fn copy(i: u32, sent: &[&str], received: &[(&str, &str)]) -> CopyRecord {
        (
            i,
            sent.iter().map(|s| s.to_string()).collect(),
            received
                .iter()
                .map(|(n, t)| (n.to_string(), t.to_string()))
                .collect(),
        )
    }

    #[test]
    fn crossed_line_finds_a_reply_on_the_wrong_connection() {
        let ok = [
            copy(
                0,
                &["client 0 says hi", "exit"],
                &[("c#0", "ACK: client 0 says hi\n")],
            ),
            copy(
                1,
                &["client 1 says hi", "exit"],
                &[("c#1", "ACK: client 1 says hi\n")],
            ),
        ];
        assert_eq!(crossed_line(&ok), None);
        let crossed = [
            copy(
                0,
                &["client 0 says hi"],
                &[("c#0", "ACK: client 0 says hi\n")],
            ),
            copy(
                1,
                &["client 1 says hi"],
                &[("c#1", "ACK: client 0 says hi\nACK: client 1 says hi\n")],
            ),
        ];
        let msg = crossed_line(&crossed).unwrap();
        assert!(
            msg.starts_with("connection c#1 received \"client 0 says hi\""),
            "{msg}"
        );
        // A line every copy sends (or a short one) says nothing about who it belongs to.
        let shared = [
            copy(0, &["same for all", "hi"], &[("c#0", "same for all hi")]),
            copy(1, &["same for all"], &[("c#1", "same for all hi")]),
        ];
        assert_eq!(crossed_line(&shared), None);
    }

    #[test]
    fn copy_index_and_matched_line() {
        assert_eq!(copy_index("c#12"), Some(12));
        assert_eq!(copy_index("c"), None);
        assert_eq!(copy_index("c#x"), None);
        let text = "first\n{\"a\":1} {\"b\":2}\nlast\n";
        let end = text.find("2}").unwrap() + 2;
        assert_eq!(matched_line(text, end), "{\"a\":1} {\"b\":2}");
        assert_eq!(matched_line("abc", 3), "abc");
        assert_eq!(matched_line("x\nabc\n", 6), "abc");
    }

    #[tokio::test]
    async fn any_change_wakes_on_either_stream() {
        let (a, b) = (Stream::new(), Stream::new());
        let mut rxs = vec![a.subscribe(), b.subscribe()];
        b.push(b"x");
        let woke = tokio::time::timeout(Duration::from_secs(5), any_change(&mut rxs)).await;
        assert!(matches!(woke, Ok(Ok(()))));
    }
}
