//! Running one scenario: its processes, connections and steps, and the verdict that explains it.
//!
//! Guarantees:
//! - every wait has a deadline and also wakes when a watched student process dies, so a dead
//!   program fails its step at once instead of waiting the deadline out;
//! - a failure is attributed fairly: when the student's process died abnormally the verdict is
//!   `crashed` (with its exit status and stderr tail), when a server never listened it is
//!   `never listened` (naming the port it did listen on, if any), when the grader's port was taken
//!   by a stranger it is an infrastructure error (retried, never charged);
//! - readiness of a student server is observed in /proc (its listening socket), never by
//!   connecting, so one-shot servers and servers that crash on a disconnect are not disturbed;
//! - all processes of the scenario are ended (TERM, grace, KILL) before the outcome is returned;
//! - `parallel` copies run concurrently, keep their connections for later groups, and an
//!   `isolated` group checks that no copy received a line another copy sent; an expectation on a
//!   connection that times out says when the awaited text arrived on another connection instead.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use regex::Regex;
use tokio::net::TcpListener;

use super::GradeRequest;
use super::matcher::{Matcher, Outcome, quote};
use super::patience::Patience;
use crate::net::conn::Conn;
use crate::net::netns::{Isolation, Net, Port};
use crate::net::ports::{PortPool, RefusedPort};
use crate::process::{self, Launch, StudentProcess, procfs};
use crate::spec::template::{self, Vars};
use crate::spec::{Expectation, Process, Scenario, SendBody, Step, StreamRef, Target};
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
    notes: Vec<String>,
    /// Every connection opened in the scenario (name, what it received), for diagnostics.
    opened: std::sync::Mutex<Vec<(String, Arc<Stream>)>>,
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

/// Runs one scenario once and returns its outcome.
pub(super) async fn run(
    req: &GradeRequest,
    ports: &Arc<PortPool>,
    isolation: Isolation,
    sc: &Scenario,
) -> ScenarioOutcome {
    let started = Instant::now();
    let net = match Net::new(isolation) {
        Ok(net) => net,
        Err(e) => {
            return ScenarioOutcome {
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
        notes: Vec::new(),
        opened: std::sync::Mutex::new(Vec::new()),
    };
    let mut local = Local::default();
    let mut failed: Option<(usize, &Step, Fail)> = None;
    for (n, step) in sc.steps.iter().enumerate() {
        if let Err(f) = run.step(&mut local, step).await {
            failed = Some((n + 1, step, f));
            break;
        }
    }
    // An output flood overrides whatever the steps saw.
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
        let tail = p.stderr.tail(1500);
        (!tail.trim().is_empty()).then_some(tail)
    });
    let transcript = failed
        .as_ref()
        .map(|_| run.transcript.excerpt(req.options.transcript_lines))
        .unwrap_or_default();
    drop(local);
    run.end_processes().await;

    let duration_ms = started.elapsed().as_millis() as u64;
    match failed {
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
                failed_step: Some(format!("{n} ({})", step.kind())),
                transcript,
                stderr_tail,
                notes: run.notes,
            }
        }
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
        Patience::new(within, self.watched().map(|p| p.pid))
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

    async fn step(&mut self, local: &mut Local, step: &Step) -> StepResult {
        match step {
            Step::StartServer { within } => {
                let within = within.unwrap_or(self.req.spec.defaults.listen_within).0;
                self.start_server(within).await
            }
            Step::Listen {} => {
                let l = self.net.listen_loopback().map_err(|e| {
                    Fail::new(
                        Status::InfraError,
                        format!("cannot open the grader's listener: {e}"),
                    )
                })?;
                self.listener_port = l.local_addr().ok().map(|a| a.port());
                self.listener = Some(l);
                Ok(())
            }
            Step::StartClient { refused, name } => {
                self.start_client(*refused, name.as_deref()).await
            }
            Step::Accept { conn, within } => {
                let within = self.within(within);
                self.accept(local, conn, within).await
            }
            Step::Type { line } => {
                let line = self.expand(local, line)?;
                let client = self.process(Process::Client)?;
                self.transcript.push(
                    "stdin",
                    Dir::Sent,
                    crate::transcript::printable(line.as_bytes()),
                );
                if let Err(e) = client.type_line(&line).await {
                    let msg = format!(
                        "could not type {} on the client's stdin ({e})",
                        quote(&line, 60)
                    );
                    return Err(self.attribute(msg, Status::Failed).await);
                }
                Ok(())
            }
            Step::CloseStdin {} => {
                self.process(Process::Client)?.close_stdin().await;
                self.transcript
                    .push("stdin", Dir::Closed, "end of input (stdin closed)");
                Ok(())
            }
            Step::Repeat { count, steps } => {
                for j in 0..*count {
                    local.j = Some(j);
                    for s in steps {
                        Box::pin(self.step(local, s)).await?;
                    }
                }
                local.j = None;
                Ok(())
            }
            Step::Parallel {
                count,
                steps,
                isolated,
            } => self.parallel(local, *count, steps, *isolated).await,
            Step::ExpectExit {
                process,
                code,
                within,
                ..
            } => {
                let p = self.process(*process)?;
                let within = self.within(within);
                let patience = Patience::new(within, Some(p.pid));
                let mut exit = None;
                while exit.is_none() && !patience.expired() {
                    exit = p.wait_exit(patience.deadline()).await;
                }
                match exit {
                    None => Err(Fail::new(
                        Status::TimedOut,
                        format!(
                            "expected the {process} to exit with {code} within {:.1}s, but it was still running",
                            within.as_secs_f64()
                        ),
                    )),
                    Some(e) if code.accepts(e.code) => Ok(()),
                    Some(e) => {
                        StudentProcess::settle_stream(&p.stderr, SETTLE).await;
                        let status = if e.signal.is_some() {
                            Status::Crashed
                        } else {
                            Status::Failed
                        };
                        Err(Fail::new(
                            status,
                            format!(
                                "expected the {process} to exit with {code}, but it ended with {e}"
                            ),
                        ))
                    }
                }
            }
            Step::ExpectRunning {
                process,
                allow_clean_exit,
                ..
            } => {
                let p = self.process(*process)?;
                // A program that is about to crash (it closed a socket, then raises) gets a
                // moment to do so.
                let patience = Patience::new(RUNNING_GRACE, Some(p.pid));
                let mut exit = None;
                while exit.is_none() && !patience.expired() {
                    exit = p.wait_exit(patience.deadline()).await;
                }
                match exit {
                    None => Ok(()),
                    Some(e) if e.success() && *allow_clean_exit => Ok(()),
                    Some(e) => {
                        StudentProcess::settle_stream(&p.stderr, SETTLE).await;
                        let status = if e.abnormal() {
                            Status::Crashed
                        } else {
                            Status::Failed
                        };
                        Err(Fail::new(
                            status,
                            format!(
                                "expected the {process} to keep running, but it ended with {e}"
                            ),
                        ))
                    }
                }
            }
            Step::ExpectNoTraceback { process, .. } => {
                let p = self.process(*process)?;
                if p.exit_info().is_some() {
                    StudentProcess::settle_stream(&p.stderr, SETTLE).await;
                }
                let text = p.stderr.all_text();
                match find_traceback(&text) {
                    None => Ok(()),
                    Some(line) => Err(Fail::new(
                        Status::Failed,
                        format!(
                            "the {process} printed a traceback or panic on stderr: {}",
                            quote(line, 160)
                        ),
                    )),
                }
            }
            Step::ExpectCpuBelow {
                process,
                window,
                max_percent,
                ..
            } => {
                let p = self.process(*process)?;
                let tps = procfs::ticks_per_second() as f64;
                let before = procfs::group_cpu_ticks(p.pid);
                let t0 = Instant::now();
                // The measuring window is the scenario's own inherent wait.
                let exited = p.wait_exit(t0 + window.0).await;
                if let Some(e) = exited {
                    return Err(self
                        .attribute(
                            format!("the {process} exited ({e}) during the CPU measurement"),
                            Status::Failed,
                        )
                        .await);
                }
                let used = procfs::group_cpu_ticks(p.pid).saturating_sub(before) as f64 / tps;
                let pct = 100.0 * used / t0.elapsed().as_secs_f64();
                self.transcript.push(
                    &process.to_string(),
                    Dir::Note,
                    format!(
                        "used {:.0} ms of CPU in {:.1}s ({pct:.1}% of one core)",
                        used * 1000.0,
                        window.0.as_secs_f64()
                    ),
                );
                if pct <= *max_percent {
                    Ok(())
                } else {
                    Err(Fail::new(
                        Status::Failed,
                        format!(
                            "while idle for {:.1}s the {process} used {pct:.0}% of a CPU core (allowed: {max_percent}%)",
                            window.0.as_secs_f64()
                        ),
                    ))
                }
            }
            Step::Expect {
                on: Target::Stream(s),
                within,
                ..
            } => {
                let streams = self.streams(*s)?;
                let matcher = self.matcher(local, step)?;
                let patience = self.patience(self.within(within));
                self.expect_on(&streams, &step_target(step), &matcher, patience)
                    .await
            }
            Step::ExpectSilence {
                on: Target::Stream(s),
                window,
                ..
            } => {
                let streams = self.streams(*s)?;
                self.silence(&streams, &step_target(step), window.0).await
            }
            Step::ExpectNot {
                on: Target::Stream(s),
                window,
                ..
            } => {
                let streams = self.streams(*s)?;
                let matcher = self.matcher(local, step)?;
                self.expect_not(&streams, &step_target(step), &matcher, window.0)
                    .await
            }
            _ => self.conn_step(local, step).await,
        }
    }

    /// The streams a process target refers to, each with a short name for messages.
    fn streams(&self, s: StreamRef) -> Result<Vec<Watched>, Fail> {
        Ok(match s {
            StreamRef::Stdout => vec![("stdout", self.process(Process::Client)?.stdout.clone())],
            StreamRef::Stderr(p) => vec![("stderr", self.process(p)?.stderr.clone())],
            StreamRef::Output => {
                let c = self.process(Process::Client)?;
                vec![("stdout", c.stdout.clone()), ("stderr", c.stderr.clone())]
            }
        })
    }

    /// Records a new connection for diagnostics.
    fn opened(&self, c: &Conn) {
        if let Ok(mut all) = self.opened.lock() {
            all.push((c.name.clone(), c.stream.clone()));
        }
    }

    /// "; it arrived on connection X instead" when `matcher` matches what another connection
    /// received (a reply sent to the wrong client).
    fn elsewhere(&self, own: &Arc<Stream>, matcher: &Matcher) -> String {
        if matches!(matcher, Matcher::Any) {
            return String::new();
        }
        let Ok(all) = self.opened.lock() else {
            return String::new();
        };
        let others: Vec<&str> = all
            .iter()
            .filter(|(_, s)| !Arc::ptr_eq(s, own))
            .filter(|(_, s)| matches!(matcher.find(&s.all_text(), true), Outcome::Found(_)))
            .map(|(n, _)| n.as_str())
            .collect();
        match others.as_slice() {
            [] => String::new(),
            [one] => format!("; it arrived on connection {one} instead"),
            [first, rest @ ..] => format!(
                "; it arrived on connection {first} (and {} more) instead",
                rest.len()
            ),
        }
    }

    fn matcher(&self, local: &Local, step: &Step) -> Result<Matcher, Fail> {
        let spec_err = |m: String| Fail::new(Status::InfraError, format!("spec error: {m}"));
        Ok(
            match step
                .expectation()
                .ok_or_else(|| spec_err("bad expect".into()))?
            {
                Expectation::Any => Matcher::Any,
                Expectation::Contains(t) => Matcher::Contains(self.expand(local, &t)?),
                Expectation::Exact(t) => Matcher::Exact(self.expand(local, &t)?),
                Expectation::Regex(r) => {
                    Matcher::Regex(Regex::new(&r).map_err(|e| spec_err(e.to_string()))?)
                }
                Expectation::Json(preds) => {
                    let mut out = preds.clone();
                    for pred in out.values_mut() {
                        if let crate::spec::JsonPredicate::Equals(serde_json::Value::String(s)) =
                            pred
                        {
                            *s = self.expand(local, s)?;
                        }
                        if let crate::spec::JsonPredicate::Op(op) = pred
                            && let Some(c) = &op.contains
                        {
                            op.contains = Some(self.expand(local, c)?);
                        }
                    }
                    Matcher::Json(out)
                }
            },
        )
    }

    /// Steps that only touch connections (the ones allowed inside `parallel`).
    async fn conn_step(&self, local: &mut Local, step: &Step) -> StepResult {
        match step {
            Step::Connect { conn, within } => {
                let addr = self.server_addr.ok_or_else(|| {
                    Fail::new(
                        Status::InfraError,
                        "`connect` before `start_server` (spec error)",
                    )
                })?;
                let key = local.key(conn);
                let fut = Conn::connect(key.clone(), addr, &self.net, self.transcript.clone());
                let within = self.within(within);
                match tokio::time::timeout(within, fut).await {
                    Ok(Ok(c)) => {
                        self.opened(&c);
                        local.conns.insert(key, c);
                        Ok(())
                    }
                    Ok(Err(e)) => Err(self
                        .attribute(format!("could not connect to the server at {addr}: {e}"), Status::Failed)
                        .await),
                    Err(_) => Err(self
                        .attribute(
                            format!("connecting to the server at {addr} took longer than {:.1}s (its listen backlog is full: is it accepting?)", within.as_secs_f64()),
                            Status::TimedOut,
                        )
                        .await),
                }
            }
            Step::Send { conn, .. } => {
                let bytes = match step.send_body() {
                    Some(SendBody::Text(t)) => self.expand(local, &t)?.into_bytes(),
                    Some(SendBody::Line(t)) => {
                        let mut b = self.expand(local, &t)?.into_bytes();
                        b.push(b'\n');
                        b
                    }
                    Some(SendBody::Hex(h)) => decode_hex(&h)
                        .ok_or_else(|| Fail::new(Status::InfraError, "spec error: bad hex"))?,
                    None => return Err(Fail::new(Status::InfraError, "spec error: bad send")),
                };
                if local.i.is_some() {
                    let text = String::from_utf8_lossy(&bytes);
                    let lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
                    local.sent.extend(lines.map(String::from));
                }
                let c = local.conn(conn)?;
                if let Err(e) = c.send(&bytes).await {
                    let name = c.name.clone();
                    return Err(self
                        .attribute(
                            format!("could not send on connection {name}: {e}"),
                            Status::Failed,
                        )
                        .await);
                }
                Ok(())
            }
            Step::WaitRead { conn, within, .. } => {
                let c = local.conn(conn)?;
                let (Some(ours), Some(theirs), name) = (c.local, c.peer, c.name.clone()) else {
                    return Ok(());
                };
                let within = self.within(within);
                let patience = self.patience(within);
                let net_dir = self.net.proc_net();
                let mut drained =
                    || procfs::unread_bytes(&net_dir, ours, theirs).is_none_or(|n| n == 0);
                let mut read = false;
                while !read && !patience.expired() {
                    read = process::poll_until(patience.deadline(), &mut drained).await;
                }
                if read {
                    Ok(())
                } else {
                    Err(self
                        .attribute(
                            format!("the program did not read what was sent on connection {name} within {:.1}s", within.as_secs_f64()),
                            Status::TimedOut,
                        )
                        .await)
                }
            }
            Step::Close { conn } => {
                local.conn(conn)?.close().await;
                Ok(())
            }
            Step::Abort { conn } => {
                local.conn(conn)?.abort().await;
                Ok(())
            }
            Step::Expect {
                on: Target::Conn(name),
                within,
                ..
            } => {
                let matcher = self.matcher(local, step)?;
                let c = local.conn(name)?;
                let (stream, label) = (c.stream.clone(), format!("connection {}", c.name));
                let patience = self.patience(self.within(within));
                let result = self
                    .expect_on(&[("", stream.clone())], &label, &matcher, patience)
                    .await;
                result.map_err(|mut f| {
                    if f.status == Status::TimedOut {
                        f.message.push_str(&self.elsewhere(&stream, &matcher));
                    }
                    f
                })
            }
            Step::ExpectSilence {
                on: Target::Conn(name),
                window,
                ..
            } => {
                let c = local.conn(name)?;
                let (stream, label) = (c.stream.clone(), format!("connection {}", c.name));
                self.silence(&[("", stream)], &label, window.0).await
            }
            Step::ExpectNot {
                on: Target::Conn(name),
                window,
                ..
            } => {
                let matcher = self.matcher(local, step)?;
                let c = local.conn(name)?;
                let (stream, label) = (c.stream.clone(), format!("connection {}", c.name));
                self.expect_not(&[("", stream)], &label, &matcher, window.0)
                    .await
            }
            Step::ExpectClosed { on, within, .. } => {
                let c = local.conn(on)?;
                let (stream, label) = (c.stream.clone(), c.name.clone());
                let within = self.within(within);
                let mut rx = stream.subscribe();
                let patience = self.patience(within);
                loop {
                    if stream.end().is_some() {
                        return Ok(());
                    }
                    if tokio::time::timeout_at(patience.deadline().into(), rx.changed())
                        .await
                        .is_err()
                        && patience.expired()
                        && stream.end().is_none()
                    {
                        return Err(Fail::new(
                            Status::TimedOut,
                            format!(
                                "expected the peer to close connection {label} within {:.1}s, but it stayed open",
                                within.as_secs_f64()
                            ),
                        ));
                    }
                }
            }
            Step::Repeat { count, steps } => {
                for j in 0..*count {
                    local.j = Some(j);
                    for s in steps {
                        Box::pin(self.conn_step(local, s)).await?;
                    }
                }
                local.j = None;
                Ok(())
            }
            other => Err(Fail::new(
                Status::InfraError,
                format!("step `{}` is not allowed here (spec error)", other.kind()),
            )),
        }
    }

    /// Runs `count` copies of `steps` at once. Copy `i` takes over the connections `name#i` that
    /// earlier groups opened and hands all its connections back when it is done.
    async fn parallel(
        &self,
        outer: &mut Local,
        count: u32,
        steps: &[Step],
        isolated: bool,
    ) -> StepResult {
        let mut locals: Vec<Local> = (0..count)
            .map(|i| Local {
                i: Some(i),
                j: outer.j,
                ..Local::default()
            })
            .collect();
        let keys: Vec<String> = outer.conns.keys().cloned().collect();
        for key in keys {
            if let Some(copy) = copy_index(&key).and_then(|i| locals.get_mut(i as usize))
                && let Some(c) = outer.conns.remove(&key)
            {
                copy.conns.insert(key, c);
            }
        }
        let copies = locals.into_iter().map(|mut local| async move {
            for s in steps {
                if let Err(f) = self.conn_step(&mut local, s).await {
                    return Err((local.i.unwrap_or(0), f));
                }
            }
            Ok(local)
        });
        let results = futures_util::future::join_all(copies).await;
        let (done, failures): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
        let done: Vec<Local> = done.into_iter().filter_map(Result::ok).collect();
        let failures: Vec<(u32, Fail)> = failures.into_iter().filter_map(Result::err).collect();
        let failed = failures.len();
        if let Some((i, f)) = failures.into_iter().next() {
            let how_many = if failed > 1 {
                format!(" ({failed} of {count} copies failed)")
            } else {
                String::new()
            };
            return Err(Fail {
                message: format!("in parallel copy {i} of {count}{how_many}: {}", f.message),
                ..f
            });
        }
        if isolated {
            let copies: Vec<CopyRecord> = done
                .iter()
                .map(|l| {
                    let mut received: Vec<(String, String)> = l
                        .conns
                        .iter()
                        .map(|(name, c)| (name.clone(), c.stream.all_text()))
                        .collect();
                    received.sort();
                    (l.i.unwrap_or(0), l.sent.clone(), received)
                })
                .collect();
            if let Some(msg) = crossed_line(&copies) {
                return Err(Fail::new(Status::Failed, msg));
            }
        }
        for local in done {
            outer.conns.extend(local.conns);
        }
        Ok(())
    }

    /// Waits until `matcher` matches the unconsumed text of one of `streams`.
    async fn expect_on(
        &self,
        streams: &[Watched],
        label: &str,
        matcher: &Matcher,
        patience: Patience,
    ) -> StepResult {
        let mut rxs: Vec<_> = streams.iter().map(|(_, s)| s.subscribe()).collect();
        let mut exit_rx = self.watched().map(|p| p.exit_watch());
        let mut settled = false;
        loop {
            for (_, stream) in streams {
                if let Outcome::Found(n) =
                    stream.with_unconsumed(|t, e| matcher.find(t, e.is_some()))
                {
                    stream.consume(n);
                    return Ok(());
                }
            }
            let ends: Vec<Option<End>> = streams.iter().map(|(_, s)| s.end()).collect();
            let all_ended = ends.iter().all(Option::is_some);
            let exited = exit_rx.as_ref().is_some_and(|r| r.borrow().is_some());
            if all_ended || (exited && settled) {
                let what = match ends.as_slice() {
                    [Some(End::Reset)] => "the connection was reset",
                    [Some(_)] if label.starts_with("connection") => "the connection was closed",
                    _ if all_ended => "the output ended",
                    _ => "the program ended",
                };
                let msg = format!(
                    "expected {} on {label}, but {what} first{}",
                    matcher.describe(),
                    received(streams, matcher)
                );
                return Err(self.attribute(msg, Status::Failed).await);
            }
            if exited {
                // The process is gone: its last bytes may still be in flight; let the streams end.
                settled = true;
                let wait = if label.starts_with("connection") {
                    SETTLE
                } else {
                    SETTLE * 2
                };
                for (_, stream) in streams {
                    StudentProcess::settle_stream(stream, wait).await;
                }
                continue;
            }
            tokio::select! {
                biased;
                r = any_change(&mut rxs) => { if r.is_err() { settled = true; } }
                _ = async { match exit_rx.as_mut() { Some(r) => { let _ = r.changed().await; } None => std::future::pending::<()>().await } } => {}
                _ = patience.sleep() => {
                    // The deadline may have grown while we slept (CPU starvation), and bytes may
                    // have arrived at the last moment: look again before giving up.
                    let late = streams.iter().any(|(_, s)| s.with_unconsumed(|t, e| matcher.find(t, e.is_some())) != Outcome::NotYet);
                    if late || !patience.expired() {
                        continue;
                    }
                    let waited = patience.within().as_secs_f64();
                    let msg = format!("expected {} on {label} within {waited:.1}s{}", matcher.describe(), received(streams, matcher));
                    let diag = streams.iter().find_map(|(_, s)| s.with_unconsumed(|t, e| matcher.diagnose(t, e.is_some())));
                    return Err(Fail::new(Status::TimedOut, msg).hint(diag.map(|d| truncation_hint(&d))));
                }
            }
        }
    }

    /// Passes if nothing but white space arrives on any of `streams` for `window`.
    async fn silence(&self, streams: &[Watched], label: &str, window: Duration) -> StepResult {
        let mut rxs: Vec<_> = streams.iter().map(|(_, s)| s.subscribe()).collect();
        // Under CPU starvation the window grows too, so a late reply is still caught.
        let patience = self.patience(window);
        loop {
            for (_, stream) in streams {
                let got =
                    stream.with_unconsumed(|t, _| (!t.trim().is_empty()).then(|| t.to_string()));
                if let Some(t) = got {
                    return Err(Fail::new(
                        Status::Failed,
                        format!(
                            "expected nothing on {label} for {:.1}s, but received {}",
                            window.as_secs_f64(),
                            quote(&t, 200)
                        ),
                    ));
                }
            }
            if streams.iter().all(|(_, s)| s.end().is_some()) {
                // Nothing more can arrive; waiting out the window is pointless.
                return Ok(());
            }
            if tokio::time::timeout_at(patience.deadline().into(), any_change(&mut rxs))
                .await
                .is_err()
                && patience.expired()
                && streams
                    .iter()
                    .all(|(_, s)| s.with_unconsumed(|t, _| t.trim().is_empty()))
            {
                for (_, stream) in streams {
                    stream.consume_all();
                }
                return Ok(());
            }
        }
    }

    /// Passes if nothing matching `matcher` is among the unconsumed text of `streams` or arrives
    /// during `window`. Consumes nothing.
    async fn expect_not(
        &self,
        streams: &[Watched],
        label: &str,
        matcher: &Matcher,
        window: Duration,
    ) -> StepResult {
        let mut rxs: Vec<_> = streams.iter().map(|(_, s)| s.subscribe()).collect();
        let patience = self.patience(window);
        loop {
            for (_, stream) in streams {
                let hit = stream.with_unconsumed(|t, e| match matcher.find(t, e.is_some()) {
                    Outcome::Found(n) => Some(matched_line(t, n).to_string()),
                    Outcome::NotYet => None,
                });
                if let Some(t) = hit {
                    return Err(Fail::new(
                        Status::Failed,
                        format!(
                            "expected no {} on {label}, but received {}",
                            matcher.describe(),
                            quote(t.trim(), 200)
                        ),
                    ));
                }
            }
            if streams.iter().all(|(_, s)| s.end().is_some()) {
                return Ok(());
            }
            let quiet = tokio::time::timeout_at(patience.deadline().into(), any_change(&mut rxs))
                .await
                .is_err();
            let seen = streams.iter().any(|(_, s)| {
                s.with_unconsumed(|t, e| matcher.find(t, e.is_some())) != Outcome::NotYet
            });
            if quiet && patience.expired() && !seen {
                return Ok(());
            }
        }
    }

    async fn start_server(&mut self, within: Duration) -> StepResult {
        let key = name_key(&self.sc.name);
        let lease = self
            .net
            .reserve_port(self.ports, key)
            .map_err(|e| Fail::new(Status::InfraError, e.to_string()))?;
        let port = lease.port;
        self.lease = Some(lease);
        let argv = self.req.server.argv(&self.req.submission, HOST, port, None);
        let p = self.spawn(Process::Server, argv, port, None, false)?;
        let pid = p.pid;
        self.server = Some(p);
        let start = Instant::now();
        let patience = Patience::new(within, Some(pid));
        let mut found: Option<SocketAddr> = None;
        let exit_rx = self.server.as_ref().map(|p| p.exit_watch());
        // A server already listening elsewhere (a hard-coded port) gets a short grace to open
        // the right port too, not the whole deadline.
        let mut elsewhere_since: Option<Instant> = None;
        let mut stranger = false;
        let mut check = || {
            if exit_rx.as_ref().is_some_and(|r| r.borrow().is_some()) {
                return true;
            }
            let (listening, others) = procfs::port_holders(pid);
            found = listening
                .iter()
                .find(|l| l.addr.port() == port)
                .map(|l| l.addr);
            if found.is_none() && others.iter().any(|l| l.addr.port() == port) {
                // Someone else holds our port: not the student's fault.
                stranger = true;
                return true;
            }
            if found.is_none() && !listening.is_empty() {
                let since = *elsewhere_since.get_or_insert_with(Instant::now);
                return since.elapsed() >= WRONG_PORT_GRACE;
            }
            found.is_some()
        };
        while !process::poll_until(patience.deadline(), &mut check).await && !patience.expired() {}
        if found.is_none() && !stranger && self.accept_any_port() {
            let alive = self
                .server
                .as_ref()
                .is_some_and(|p| p.exit_info().is_none());
            let other = procfs::group_listeners(pid).into_iter().next();
            if let (true, Some(l)) = (alive, other) {
                let note = format!(
                    "the server listens on port {} instead of the assigned port {port}; it was graded on port {} (--accept-any-port). Read the port from --port (or CLASSCHAT_PORT) instead of hard-coding it",
                    l.addr.port(),
                    l.addr.port()
                );
                self.transcript.push("grader", Dir::Note, note.clone());
                self.notes.push(note);
                found = Some(l.addr);
            }
        }
        if let Some(addr) = found {
            let ip = match addr.ip() {
                IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v| v.is_unspecified()) => {
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                }
                IpAddr::V6(v6) if v6 == Ipv6Addr::LOCALHOST => IpAddr::V6(v6),
                other => other,
            };
            let addr = SocketAddr::new(ip, addr.port());
            self.transcript
                .push("server", Dir::Note, format!("listening on {addr}"));
            self.server_addr = Some(addr);
            return Ok(());
        }
        // Not listening: find out why, without blaming the student for our port.
        let p = self
            .server
            .as_ref()
            .ok_or_else(|| Fail::new(Status::InfraError, "server vanished"))?;
        let group: Vec<u16> = procfs::group_listeners(pid)
            .iter()
            .map(|l| l.addr.port())
            .collect();
        // A server that died of "Address already in use" may have lost the race for our port
        // to another program: if someone else listens there now, that is not the student's fault.
        let stranger = stranger
            || (p.exit_info().is_some()
                && procfs::listeners_at(&self.net.proc_net())
                    .iter()
                    .any(|l| l.addr.port() == port));
        if stranger {
            return Err(Fail::new(
                Status::InfraError,
                format!(
                    "port {port} was taken by another program before the student's server could bind it"
                ),
            ));
        }
        let elsewhere = if group.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = group.iter().map(u16::to_string).collect();
            format!("; it listens on port {} instead", list.join(", "))
        };
        let hint = (!group.is_empty()).then(|| {
            format!(
                "listening on {} instead of {port}: read the port from --port (or CLASSCHAT_PORT) instead of hard-coding it",
                group[0]
            )
        });
        match p.exit_info() {
            Some(e) => {
                StudentProcess::settle_stream(&p.stderr, SETTLE).await;
                let busy = p.stderr.all_text().contains("Address already in use");
                let (said, hint) = if busy {
                    (
                        "; it reported \"Address already in use\"",
                        hint.or_else(|| Some("\"Address already in use\": the program binds a port other than the one it was given (a hard-coded port?), or binds twice; read the port from --port".into())),
                    )
                } else {
                    ("", hint)
                };
                Err(Fail::new(Status::NeverListened, format!("the server exited ({e}) before listening on port {port}{said}{elsewhere}")).hint(hint))
            }
            None => Err(Fail::new(
                Status::NeverListened,
                format!("the server was still running but not listening on port {port} after {:.1}s{elsewhere}", start.elapsed().as_secs_f64()),
            )
            .hint(hint.or_else(|| Some("create the listening socket at start-up: bind to the --port argument and call listen()".into())))),
        }
    }

    async fn start_client(&mut self, refused: bool, name: Option<&str>) -> StepResult {
        let port = if refused {
            let r = self.net.refused_port().map_err(|e| {
                Fail::new(
                    Status::InfraError,
                    format!("cannot reserve a refusing port: {e}"),
                )
            })?;
            let port = r.port;
            self.refused = Some(r);
            self.transcript.push(
                "grader",
                Dir::Note,
                format!("no server on port {port} (connections refused)"),
            );
            port
        } else {
            self.listener_port.ok_or_else(|| {
                Fail::new(
                    Status::InfraError,
                    "`start_client` before `listen` (spec error)",
                )
            })?
        };
        let argv = self.req.client.argv(&self.req.submission, HOST, port, name);
        let p = self.spawn(Process::Client, argv, port, name, true)?;
        self.client = Some(p);
        Ok(())
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
        let home = tempfile::Builder::new()
            .prefix("grader-home-")
            .tempdir()
            .map_err(|e| infra(format!("cannot create a home folder: {e}")))?;
        let mut classchat = vec![
            ("CLASSCHAT_HOST", HOST.to_string()),
            ("CLASSCHAT_PORT", port.to_string()),
        ];
        if let Some(n) = name {
            classchat.push(("CLASSCHAT_NAME", n.to_string()));
        }
        let launch = Launch {
            argv,
            env: process::env::scrubbed(home.path(), &classchat),
            cwd: self
                .req
                .submission
                .is_dir
                .then(|| self.req.submission.dir.clone()),
            stdout_pty: pty,
            output_limit: self.req.options.output_limit,
            limits: self.req.options.limits,
            netns: self.net.ns_fd(),
            confine: self.req.options.confine,
            cgroup: true,
        };
        StudentProcess::spawn(role, &launch, home, self.transcript.clone())
            .map_err(|e| infra(e.to_string()))
    }

    /// Whether a server listening on another port is graded there (see
    /// [`super::EngineOptions::accept_any_port`]).
    fn accept_any_port(&self) -> bool {
        self.req
            .options
            .accept_any_port
            .unwrap_or(self.net.isolation() == Isolation::Netns)
    }

    async fn accept(&mut self, local: &mut Local, conn: &str, within: Duration) -> StepResult {
        let listener = self.listener.as_ref().ok_or_else(|| {
            Fail::new(Status::InfraError, "`accept` before `listen` (spec error)")
        })?;
        let mut exit_rx = self.client.as_ref().map(|c| c.exit_watch());
        let patience = Patience::new(within, self.client.as_ref().map(|c| c.pid));
        let accept = async {
            loop {
                match tokio::time::timeout_at(patience.deadline().into(), listener.accept()).await {
                    Err(_) if !patience.expired() => continue,
                    other => return other,
                }
            }
        };
        let accepted = tokio::select! {
            r = accept => Some(r),
            _ = async { match exit_rx.as_mut() { Some(r) => { let _ = r.wait_for(|e| e.is_some()).await; } None => std::future::pending::<()>().await } } => None,
        };
        match accepted {
            Some(Ok(Ok((socket, peer)))) => {
                let key = local.key(conn);
                self.transcript.push(&key, Dir::Note, format!("accepted the client from {peer}"));
                let c = Conn::new(key.clone(), socket, self.transcript.clone());
                self.opened(&c);
                local.conns.insert(key, c);
                Ok(())
            }
            Some(Ok(Err(e))) => Err(Fail::new(Status::InfraError, format!("accept failed: {e}"))),
            Some(Err(_)) => Err(Fail::new(
                Status::TimedOut,
                format!("the client did not connect to {HOST}:{} within the deadline", self.listener_port.unwrap_or(0)),
            )
            .hint(Some("connect to the host and port given by --host/--port (or CLASSCHAT_HOST/CLASSCHAT_PORT)".into()))),
            None => Err(self.attribute("the client exited without connecting".into(), Status::Failed).await),
        }
    }

    async fn end_processes(&mut self) {
        let grace = self.req.options.grace;
        let procs = [self.server.as_ref(), self.client.as_ref()];
        futures_util::future::join_all(procs.into_iter().flatten().map(|p| p.terminate(grace)))
            .await;
    }
}

fn step_target(step: &Step) -> String {
    match step {
        Step::Expect { on, .. } | Step::ExpectSilence { on, .. } | Step::ExpectNot { on, .. } => {
            on.to_string()
        }
        _ => String::new(),
    }
}

/// A stream a step watches, with a short name ("stdout", "stderr"; empty for a connection).
type Watched = (&'static str, Arc<Stream>);

/// Resolves when any of the receivers sees a change; an error when one's sender is gone.
async fn any_change(
    rxs: &mut [tokio::sync::watch::Receiver<u64>],
) -> Result<(), tokio::sync::watch::error::RecvError> {
    if rxs.is_empty() {
        return std::future::pending().await;
    }
    let changes = rxs.iter_mut().map(|r| Box::pin(r.changed()));
    futures_util::future::select_all(changes).await.0
}

/// "; received …" describing the unconsumed text of `streams` (naming each stream when there
/// are several).
fn received(streams: &[Watched], matcher: &Matcher) -> String {
    let mut parts = Vec::new();
    let mut diags = Vec::new();
    for (name, stream) in streams {
        stream.with_unconsumed(|t, e| {
            if !t.trim().is_empty() {
                let on = if streams.len() > 1 {
                    format!(" on {name}")
                } else {
                    String::new()
                };
                parts.push(format!("{}{on}", quote(t, 200)));
            }
            if let Some(d) = matcher.diagnose(t, e.is_some()) {
                diags.push(d);
            }
        });
    }
    let mut s = if parts.is_empty() {
        "; nothing arrived".to_string()
    } else {
        format!("; received {}", parts.join(" and "))
    };
    if !diags.is_empty() {
        s.push_str(&format!(" ({})", diags.join("; ")));
    }
    s
}

/// The line of `text` in which a match ending at byte `end` ends (at most its last 200 bytes,
/// on a character boundary).
fn matched_line(text: &str, end: usize) -> &str {
    let line_end = text[end..].find('\n').map_or(text.len(), |k| end + k);
    let line_start = text[..end]
        .trim_end_matches('\n')
        .rfind('\n')
        .map_or(0, |k| k + 1);
    let start = line_start.max(line_end.saturating_sub(200));
    text[text.ceil_char_boundary(start)..line_end].trim_end_matches('\n')
}

/// The copy index of a connection key `name#i`.
fn copy_index(key: &str) -> Option<u32> {
    key.rsplit_once('#').and_then(|(_, i)| i.parse().ok())
}

/// What one parallel copy did: its index, the lines it sent, and (connection name, everything
/// received on it) for each of its connections.
type CopyRecord = (u32, Vec<String>, Vec<(String, String)>);

/// Finds a line that one parallel copy sent (and no other copy sent too) among what another
/// copy's connections received, and describes it. Lines shorter than 8 characters are too
/// unspecific to check.
fn crossed_line(copies: &[CopyRecord]) -> Option<String> {
    let mut senders: HashMap<&str, HashSet<u32>> = HashMap::new();
    for (i, sent, _) in copies {
        for line in sent {
            senders.entry(line.as_str()).or_default().insert(*i);
        }
    }
    for (from, sent, _) in copies {
        for line in sent {
            if line.chars().count() < 8 || senders.get(line.as_str()).is_none_or(|s| s.len() > 1) {
                continue;
            }
            for (_, _, received) in copies.iter().filter(|c| c.0 != *from) {
                if let Some((name, _)) = received
                    .iter()
                    .find(|(_, text)| text.contains(line.as_str()))
                {
                    return Some(format!(
                        "connection {name} received {}, which parallel copy {from} sent: a reply must go only to the client that sent the line",
                        quote(line, 100)
                    ));
                }
            }
        }
    }
    None
}

fn truncation_hint(diag: &str) -> String {
    if diag.starts_with("only the first") {
        format!(
            "{diag}: a single recv() call does not read a whole message; keep reading until the newline"
        )
    } else {
        diag.to_string()
    }
}

/// Finds the first line of stderr that shows a traceback, panic or fatal signal report.
pub fn find_traceback(text: &str) -> Option<&str> {
    const MARKERS: [&str; 8] = [
        "Traceback (most recent call last)",
        "panicked at",
        "Exception in thread",
        "Segmentation fault",
        "core dumped",
        "AddressSanitizer",
        "Unhandled exception",
        "Fatal Python error",
    ];
    text.lines().find(|l| MARKERS.iter().any(|m| l.contains(m)))
}

/// A number derived from a scenario's name (its port inside a namespace, so a replay gets the
/// same one).
fn name_key(name: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(name.as_bytes());
    u64::from_le_bytes(d[..8].try_into().unwrap_or([0; 8]))
}

fn decode_hex(h: &str) -> Option<Vec<u8>> {
    let clean: String = h.split_whitespace().collect();
    (0..clean.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(clean.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
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
