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
//! - all processes of the scenario are ended (TERM, grace, KILL) before the outcome is returned.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use regex::Regex;
use tokio::net::TcpListener;

use super::GradeRequest;
use super::matcher::{Matcher, Outcome, quote};
use crate::net::conn::Conn;
use crate::net::ports::{PortLease, PortPool, RefusedPort};
use crate::process::{self, Launch, StudentProcess, procfs};
use crate::spec::template::{self, Vars};
use crate::spec::{Expectation, Process, Scenario, SendBody, Step, StreamRef, Target};
use crate::stream::{End, Stream};
use crate::transcript::{Dir, Transcript};
use crate::verdict::{ScenarioOutcome, Status};

/// The loopback host student programs are pointed at.
const HOST: &str = "127.0.0.1";
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
    transcript: Arc<Transcript>,
    server: Option<StudentProcess>,
    client: Option<StudentProcess>,
    server_addr: Option<SocketAddr>,
    lease: Option<PortLease>,
    listener: Option<TcpListener>,
    listener_port: Option<u16>,
    refused: Option<RefusedPort>,
    notes: Vec<String>,
}

/// Connections and indices owned by one strand of a scenario (the scenario itself, or one copy
/// inside `parallel`).
#[derive(Default)]
struct Local {
    conns: HashMap<String, Conn>,
    i: Option<u32>,
    j: Option<u32>,
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
        self.conns.get_mut(&fallback).ok_or_else(|| unknown_conn(name))
    }
}

fn unknown_conn(name: &str) -> Fail {
    Fail::new(Status::InfraError, format!("connection {name:?} is not open (spec error)"))
}

/// Runs one scenario once and returns its outcome.
pub(super) async fn run(req: &GradeRequest, ports: &Arc<PortPool>, sc: &Scenario) -> ScenarioOutcome {
    let started = Instant::now();
    let mut run = Run {
        req,
        sc,
        ports,
        transcript: Arc::new(Transcript::new()),
        server: None,
        client: None,
        server_addr: None,
        lease: None,
        listener: None,
        listener_port: None,
        refused: None,
        notes: Vec::new(),
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
            .hint(Some("remove debug output inside loops; print each message once".into()));
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

    fn process(&self, p: Process) -> Result<&StudentProcess, Fail> {
        match p {
            Process::Server => self.server.as_ref(),
            Process::Client => self.client.as_ref(),
        }
        .ok_or_else(|| Fail::new(Status::InfraError, format!("the {p} was not started (spec error)")))
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
                Fail::new(Status::Crashed, format!("{message}: the {} crashed ({e})", p.role))
            }
            Some(e) => Fail::new(Status::Failed, format!("{message}: the {} had exited ({e})", p.role)),
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
                let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.map_err(|e| {
                    Fail::new(Status::InfraError, format!("cannot open the grader's listener: {e}"))
                })?;
                self.listener_port = l.local_addr().ok().map(|a| a.port());
                self.listener = Some(l);
                Ok(())
            }
            Step::StartClient { refused, name } => self.start_client(*refused, name.as_deref()).await,
            Step::Accept { conn, within } => {
                let deadline = Instant::now() + self.within(within);
                self.accept(local, conn, deadline).await
            }
            Step::Type { line } => {
                let line = self.expand(local, line)?;
                let client = self.process(Process::Client)?;
                self.transcript.push("stdin", Dir::Sent, crate::transcript::printable(line.as_bytes()));
                if let Err(e) = client.type_line(&line).await {
                    let msg = format!("could not type {} on the client's stdin ({e})", quote(&line, 60));
                    return Err(self.attribute(msg, Status::Failed).await);
                }
                Ok(())
            }
            Step::CloseStdin {} => {
                self.process(Process::Client)?.close_stdin().await;
                self.transcript.push("stdin", Dir::Closed, "end of input (stdin closed)");
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
            Step::Parallel { count, steps } => self.parallel(*count, steps).await,
            Step::ExpectExit {
                process,
                code,
                within,
                ..
            } => {
                let p = self.process(*process)?;
                let within = self.within(within);
                match p.wait_exit(Instant::now() + within).await {
                    None => Err(Fail::new(
                        Status::TimedOut,
                        format!("expected the {process} to exit with {code} within {:.1}s, but it was still running", within.as_secs_f64()),
                    )),
                    Some(e) if code.accepts(e.code) => Ok(()),
                    Some(e) => {
                        StudentProcess::settle_stream(&p.stderr, SETTLE).await;
                        let status = if e.signal.is_some() { Status::Crashed } else { Status::Failed };
                        Err(Fail::new(status, format!("expected the {process} to exit with {code}, but it ended with {e}")))
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
                let exit = p.wait_exit(Instant::now() + Duration::from_millis(200)).await;
                match exit {
                    None => Ok(()),
                    Some(e) if e.success() && *allow_clean_exit => Ok(()),
                    Some(e) => {
                        StudentProcess::settle_stream(&p.stderr, SETTLE).await;
                        let status = if e.abnormal() { Status::Crashed } else { Status::Failed };
                        Err(Fail::new(status, format!("expected the {process} to keep running, but it ended with {e}")))
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
                        format!("the {process} printed a traceback or panic on stderr: {}", quote(line, 160)),
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
                        .attribute(format!("the {process} exited ({e}) during the CPU measurement"), Status::Failed)
                        .await);
                }
                let used = procfs::group_cpu_ticks(p.pid).saturating_sub(before) as f64 / tps;
                let pct = 100.0 * used / t0.elapsed().as_secs_f64();
                self.transcript.push(
                    &process.to_string(),
                    Dir::Note,
                    format!("used {:.0} ms of CPU in {:.1}s ({pct:.1}% of one core)", used * 1000.0, window.0.as_secs_f64()),
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
            Step::Expect { on: Target::Stream(s), within, .. } => {
                let stream = self.stream(*s)?.clone();
                let matcher = self.matcher(local, step)?;
                let deadline = Instant::now() + self.within(within);
                self.expect_on(&stream, &step_target(step), &matcher, deadline).await
            }
            Step::ExpectSilence { on: Target::Stream(s), window, .. } => {
                let stream = self.stream(*s)?.clone();
                self.silence(&stream, &step_target(step), window.0).await
            }
            _ => self.conn_step(local, step).await,
        }
    }

    fn stream(&self, s: StreamRef) -> Result<&Arc<Stream>, Fail> {
        match s {
            StreamRef::Stdout => Ok(&self.process(Process::Client)?.stdout),
            StreamRef::Stderr(p) => Ok(&self.process(p)?.stderr),
        }
    }

    fn matcher(&self, local: &Local, step: &Step) -> Result<Matcher, Fail> {
        let spec_err = |m: String| Fail::new(Status::InfraError, format!("spec error: {m}"));
        Ok(match step.expectation().ok_or_else(|| spec_err("bad expect".into()))? {
            Expectation::Any => Matcher::Any,
            Expectation::Contains(t) => Matcher::Contains(self.expand(local, &t)?),
            Expectation::Exact(t) => Matcher::Exact(self.expand(local, &t)?),
            Expectation::Regex(r) => Matcher::Regex(Regex::new(&r).map_err(|e| spec_err(e.to_string()))?),
            Expectation::Json(preds) => {
                let mut out = preds.clone();
                for pred in out.values_mut() {
                    if let crate::spec::JsonPredicate::Equals(serde_json::Value::String(s)) = pred {
                        *s = self.expand(local, s)?;
                    }
                    if let crate::spec::JsonPredicate::Op(op) = pred {
                        if let Some(c) = &op.contains {
                            op.contains = Some(self.expand(local, c)?);
                        }
                    }
                }
                Matcher::Json(out)
            }
        })
    }

    /// Steps that only touch connections (the ones allowed inside `parallel`).
    async fn conn_step(&self, local: &mut Local, step: &Step) -> StepResult {
        match step {
            Step::Connect { conn, within } => {
                let addr = self.server_addr.ok_or_else(|| {
                    Fail::new(Status::InfraError, "`connect` before `start_server` (spec error)")
                })?;
                let key = local.key(conn);
                let fut = Conn::connect(key.clone(), addr, self.transcript.clone());
                let within = self.within(within);
                match tokio::time::timeout(within, fut).await {
                    Ok(Ok(c)) => {
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
                let c = local.conn(conn)?;
                if let Err(e) = c.send(&bytes).await {
                    let name = c.name.clone();
                    return Err(self
                        .attribute(format!("could not send on connection {name}: {e}"), Status::Failed)
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
                let read = process::poll_until(Instant::now() + within, || {
                    procfs::unread_bytes(ours, theirs).is_none_or(|n| n == 0)
                })
                .await;
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
                local.conn(conn)?.abort();
                Ok(())
            }
            Step::Expect { on: Target::Conn(name), within, .. } => {
                let matcher = self.matcher(local, step)?;
                let c = local.conn(name)?;
                let (stream, label) = (c.stream.clone(), format!("connection {}", c.name));
                let deadline = Instant::now() + self.within(within);
                self.expect_on(&stream, &label, &matcher, deadline).await
            }
            Step::ExpectSilence { on: Target::Conn(name), window, .. } => {
                let c = local.conn(name)?;
                let (stream, label) = (c.stream.clone(), format!("connection {}", c.name));
                self.silence(&stream, &label, window.0).await
            }
            Step::ExpectClosed { on, within, .. } => {
                let c = local.conn(on)?;
                let (stream, label) = (c.stream.clone(), c.name.clone());
                let within = self.within(within);
                let mut rx = stream.subscribe();
                let deadline = Instant::now() + within;
                loop {
                    if stream.end().is_some() {
                        return Ok(());
                    }
                    if tokio::time::timeout_at(deadline.into(), rx.changed()).await.is_err() {
                        return Err(Fail::new(
                            Status::TimedOut,
                            format!("expected the peer to close connection {label} within {:.1}s, but it stayed open", within.as_secs_f64()),
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

    async fn parallel(&self, count: u32, steps: &[Step]) -> StepResult {
        let copies = (0..count).map(|i| async move {
            let mut local = Local {
                i: Some(i),
                ..Local::default()
            };
            for s in steps {
                if let Err(f) = self.conn_step(&mut local, s).await {
                    return Err((i, f));
                }
            }
            Ok(local)
        });
        let results = futures_util::future::join_all(copies).await;
        let failures: Vec<(u32, Fail)> = results.into_iter().filter_map(Result::err).collect();
        match failures.into_iter().next() {
            None => Ok(()),
            Some((i, f)) => Err(Fail {
                message: format!("in parallel copy {i} of {count}: {}", f.message),
                ..f
            }),
        }
    }

    /// Waits until `matcher` matches the unconsumed text of `stream`.
    async fn expect_on(&self, stream: &Stream, label: &str, matcher: &Matcher, deadline: Instant) -> StepResult {
        let mut rx = stream.subscribe();
        let mut exit_rx = self.watched().map(|p| p.exit_watch());
        let started = Instant::now();
        let mut settled = false;
        loop {
            let (found, end) = stream.with_unconsumed(|t, e| (matcher.find(t, e.is_some()), e.cloned()));
            if let Outcome::Found(n) = found {
                stream.consume(n);
                return Ok(());
            }
            let exited = exit_rx.as_ref().is_some_and(|r| r.borrow().is_some());
            if end.is_some() || (exited && settled) {
                let what = match &end {
                    Some(End::Reset) => "the connection was reset",
                    Some(_) if label.starts_with("connection") => "the connection was closed",
                    Some(_) => "the output ended",
                    None => "the program ended",
                };
                let msg = format!("expected {} on {label}, but {what} first{}", matcher.describe(), self.received(stream, matcher));
                return Err(self.attribute(msg, Status::Failed).await);
            }
            if exited {
                // The process is gone: its last bytes may still be in flight; let the stream end.
                settled = true;
                let wait = if label.starts_with("connection") { SETTLE } else { SETTLE * 2 };
                StudentProcess::settle_stream(stream, wait).await;
                continue;
            }
            tokio::select! {
                r = rx.changed() => { if r.is_err() { settled = true; } }
                _ = async { match exit_rx.as_mut() { Some(r) => { let _ = r.changed().await; } None => std::future::pending::<()>().await } } => {}
                _ = tokio::time::sleep_until(deadline.into()) => {
                    let waited = started.elapsed().as_secs_f64();
                    let msg = format!("expected {} on {label} within {waited:.1}s{}", matcher.describe(), self.received(stream, matcher));
                    let diag = stream.with_unconsumed(|t, e| matcher.diagnose(t, e.is_some()));
                    return Err(Fail::new(Status::TimedOut, msg).hint(diag.map(|d| truncation_hint(&d))));
                }
            }
        }
    }

    /// "; received: …" describing the unconsumed text.
    fn received(&self, stream: &Stream, matcher: &Matcher) -> String {
        stream.with_unconsumed(|t, e| {
            let mut s = if t.trim().is_empty() {
                "; nothing arrived".to_string()
            } else {
                format!("; received {}", quote(t, 200))
            };
            if let Some(d) = matcher.diagnose(t, e.is_some()) {
                s.push_str(&format!(" ({d})"));
            }
            s
        })
    }

    /// Passes if nothing but white space arrives for `window`.
    async fn silence(&self, stream: &Stream, label: &str, window: Duration) -> StepResult {
        let mut rx = stream.subscribe();
        let deadline = Instant::now() + window;
        loop {
            let got = stream.with_unconsumed(|t, _| (!t.trim().is_empty()).then(|| t.to_string()));
            if let Some(t) = got {
                return Err(Fail::new(
                    Status::Failed,
                    format!("expected nothing on {label} for {:.1}s, but received {}", window.as_secs_f64(), quote(&t, 200)),
                ));
            }
            if stream.end().is_some() {
                // Nothing more can arrive; wait out the window is pointless.
                return Ok(());
            }
            if tokio::time::timeout_at(deadline.into(), rx.changed()).await.is_err() {
                stream.consume_all();
                return Ok(());
            }
        }
    }

    async fn start_server(&mut self, within: Duration) -> StepResult {
        let lease = self
            .ports
            .reserve()
            .map_err(|e| Fail::new(Status::InfraError, e.to_string()))?;
        let port = lease.port;
        self.lease = Some(lease);
        let argv = self.req.server.argv(&self.req.submission, HOST, port, None);
        let p = self.spawn(Process::Server, argv, port, None, false)?;
        let pid = p.pid;
        self.server = Some(p);
        let start = Instant::now();
        let deadline = start + within;
        let mut found: Option<SocketAddr> = None;
        let exit_rx = self.server.as_ref().map(|p| p.exit_watch());
        // A server already listening elsewhere (a hard-coded port) gets a short grace to open
        // the right port too, not the whole deadline.
        let mut elsewhere_since: Option<Instant> = None;
        process::poll_until(deadline, || {
            if exit_rx.as_ref().is_some_and(|r| r.borrow().is_some()) {
                return true;
            }
            let listening = procfs::group_listeners(pid);
            found = listening.iter().find(|l| l.addr.port() == port).map(|l| l.addr);
            if found.is_none() && !listening.is_empty() {
                let since = *elsewhere_since.get_or_insert_with(Instant::now);
                return since.elapsed() >= WRONG_PORT_GRACE;
            }
            found.is_some()
        })
        .await;
        if let Some(addr) = found {
            let ip = match addr.ip() {
                IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v| v.is_unspecified()) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(v6) if v6 == Ipv6Addr::LOCALHOST => IpAddr::V6(v6),
                other => other,
            };
            let addr = SocketAddr::new(ip, port);
            self.transcript.push("server", Dir::Note, format!("listening on {addr}"));
            self.server_addr = Some(addr);
            return Ok(());
        }
        // Not listening: find out why, without blaming the student for our port.
        let p = self.server.as_ref().ok_or_else(|| Fail::new(Status::InfraError, "server vanished"))?;
        let group: Vec<u16> = procfs::group_listeners(pid).iter().map(|l| l.addr.port()).collect();
        let stranger = procfs::listeners(None).iter().any(|l| l.addr.port() == port)
            && !group.contains(&port);
        if stranger {
            return Err(Fail::new(
                Status::InfraError,
                format!("port {port} was taken by another program before the student's server could bind it"),
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
            let r = RefusedPort::new()
                .map_err(|e| Fail::new(Status::InfraError, format!("cannot reserve a refusing port: {e}")))?;
            let port = r.port;
            self.refused = Some(r);
            self.transcript.push("grader", Dir::Note, format!("no server on port {port} (connections refused)"));
            port
        } else {
            self.listener_port
                .ok_or_else(|| Fail::new(Status::InfraError, "`start_client` before `listen` (spec error)"))?
        };
        let argv = self.req.client.argv(&self.req.submission, HOST, port, name);
        let p = self.spawn(Process::Client, argv, port, name, true)?;
        self.client = Some(p);
        Ok(())
    }

    fn spawn(&self, role: Process, argv: Vec<String>, port: u16, name: Option<&str>, pty: bool) -> Result<StudentProcess, Fail> {
        let infra = |e: String| Fail::new(Status::InfraError, e);
        let home = tempfile::Builder::new()
            .prefix("grader-home-")
            .tempdir()
            .map_err(|e| infra(format!("cannot create a home folder: {e}")))?;
        let mut classchat = vec![("CLASSCHAT_HOST", HOST.to_string()), ("CLASSCHAT_PORT", port.to_string())];
        if let Some(n) = name {
            classchat.push(("CLASSCHAT_NAME", n.to_string()));
        }
        let launch = Launch {
            argv,
            env: process::env::scrubbed(home.path(), &classchat),
            cwd: self.req.submission.is_dir.then(|| self.req.submission.dir.clone()),
            stdout_pty: pty,
            output_limit: self.req.options.output_limit,
        };
        StudentProcess::spawn(role, &launch, home, self.transcript.clone()).map_err(|e| infra(e.to_string()))
    }

    async fn accept(&mut self, local: &mut Local, conn: &str, deadline: Instant) -> StepResult {
        let listener = self
            .listener
            .as_ref()
            .ok_or_else(|| Fail::new(Status::InfraError, "`accept` before `listen` (spec error)"))?;
        let mut exit_rx = self.client.as_ref().map(|c| c.exit_watch());
        let accepted = tokio::select! {
            r = tokio::time::timeout_at(deadline.into(), listener.accept()) => Some(r),
            _ = async { match exit_rx.as_mut() { Some(r) => { let _ = r.wait_for(|e| e.is_some()).await; } None => std::future::pending::<()>().await } } => None,
        };
        match accepted {
            Some(Ok(Ok((socket, peer)))) => {
                let key = local.key(conn);
                self.transcript.push(&key, Dir::Note, format!("accepted the client from {peer}"));
                local.conns.insert(key.clone(), Conn::new(key, socket, self.transcript.clone()));
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
        futures_util::future::join_all(procs.into_iter().flatten().map(|p| p.terminate(grace))).await;
    }
}

fn step_target(step: &Step) -> String {
    match step {
        Step::Expect { on, .. } | Step::ExpectSilence { on, .. } => on.to_string(),
        _ => String::new(),
    }
}

fn truncation_hint(diag: &str) -> String {
    if diag.starts_with("only the first") {
        format!("{diag}: a single recv() call does not read a whole message; keep reading until the newline")
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

fn decode_hex(h: &str) -> Option<Vec<u8>> {
    let clean: String = h.split_whitespace().collect();
    (0..clean.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(clean.get(i..i + 2)?, 16).ok())
        .collect()
}

