//! The steps of the scenario language, run one by one: `Run::step` dispatches a top-level (or
//! `repeat`) step by its enum, process steps (start, type, expect an exit, CPU use ...) run in
//! `Run::process_step`, connection steps in `Run::conn_step`, the steps of a `parallel` copy in
//! `Run::copy_step`, and `parallel` groups with their isolation check in `Run::parallel`. Every
//! match lists every step kind: what validation accepts in a position runs there (a protocol
//! step, which expansion removes at load, is the only infrastructure error).

use super::diagnose;
use super::http_step::HttpExpect;
use super::waits::Watched;
use super::*;

impl<'a> Run<'a> {
    pub(super) async fn step(&mut self, local: &mut Local, step: &Step) -> StepResult {
        match step {
            Step::Process(s) => self.process_step(local, s).await,
            Step::Conn(ConnStep::ExpectHttp {
                on,
                status,
                headers,
                body_contains,
                head,
                end_if_closed: true,
                within,
                hint: _,
            }) => {
                let want = HttpExpect {
                    on,
                    status,
                    headers,
                    body_contains,
                    head,
                    within,
                };
                if self.expect_http(local, want).await? {
                    self.notes.push(crate::note::Note::HttpConnectionClosed);
                    self.ended = true;
                }
                Ok(())
            }
            Step::Conn(s) => self.conn_step(local, s).await,
            Step::Datagram(s) => self.datagram_step(local, s).await,
            Step::Group(GroupStep::Repeat { count, steps }) => {
                'outer: for j in 0..*count {
                    local.j = Some(j);
                    for s in steps {
                        Box::pin(self.step(local, s))
                            .await
                            .map_err(|f| nested(f, s.hint()))?;
                        if self.ended {
                            break 'outer;
                        }
                    }
                }
                local.j = None;
                Ok(())
            }
            Step::Group(GroupStep::Parallel {
                count,
                steps,
                isolated,
                burst,
            }) => self.parallel(local, *count, steps, *isolated, *burst).await,
            Step::Protocol(p) => Err(not_expanded(p.kind())),
        }
    }

    /// Steps on the scenario's processes and the grader's listener (top level or `repeat`).
    async fn process_step(&mut self, local: &mut Local, step: &ProcessStep) -> StepResult {
        match step {
            ProcessStep::StartServer {
                within,
                assigned_port,
                udp,
            } => {
                let within = within.unwrap_or(self.req.spec.defaults.listen_within).0;
                self.udp_server = *udp;
                self.start_server(within, *assigned_port).await
            }
            ProcessStep::Listen {} => {
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
            ProcessStep::StartClient {
                refused,
                name,
                args,
            } => {
                let args = args
                    .iter()
                    .map(|a| self.expand(local, a))
                    .collect::<Result<Vec<_>, _>>()?;
                self.start_client(*refused, name.as_deref(), &args).await?;
                self.type_prelude(name.as_deref()).await
            }
            ProcessStep::Accept {
                conn,
                within,
                assigned_port,
            } => {
                let within = self.within(within);
                self.accept(local, conn, within, *assigned_port).await
            }
            ProcessStep::Type { line, paste } => {
                // A paste: the lines typed in one write, `{j}` numbering them.
                let lines = match paste {
                    None => vec![self.expand(local, line)?],
                    Some(n) => {
                        let outer = local.j;
                        let lines = (0..*n)
                            .map(|j| {
                                local.j = Some(j);
                                self.expand(local, line)
                            })
                            .collect::<Result<Vec<_>, _>>();
                        local.j = outer;
                        lines?
                    }
                };
                let client = self.process(Process::Client)?;
                for l in &lines {
                    self.typed(l);
                    self.transcript.push(
                        "stdin",
                        Dir::Sent,
                        crate::transcript::printable(l.as_bytes()),
                    );
                }
                let line = lines.join("\n");
                if let Err(e) = client.type_line(&line).await {
                    let msg = format!(
                        "could not type {} on the client's stdin ({e})",
                        quote(&line, 60)
                    );
                    return Err(self.attribute(msg, Status::Failed).await);
                }
                Ok(())
            }
            ProcessStep::CloseStdin {} => {
                self.process(Process::Client)?.close_stdin().await;
                self.transcript
                    .push("stdin", Dir::Closed, "end of input (stdin closed)");
                Ok(())
            }
            ProcessStep::ExpectExit {
                process,
                code,
                within,
                ..
            } => {
                let p = self.process(*process)?;
                let within = self.within(within);
                let patience = Patience::new(within, Some(p.member_list()));
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
            ProcessStep::EndIfExited { process, .. } => {
                let p = self.process(*process)?;
                match exit_within_grace(p).await {
                    None => Ok(()),
                    Some(e) if e.success() => {
                        self.notes.push(crate::note::Note::ExitedAfterClient {
                            process: process.to_string(),
                        });
                        self.ended = true;
                        Ok(())
                    }
                    Some(e) => Err(unexpected_end(
                        p,
                        &e,
                        format!("expected the {process} to keep running or exit with status 0"),
                    )
                    .await),
                }
            }
            ProcessStep::ExpectRunning {
                process,
                allow_clean_exit,
                ..
            } => {
                let p = self.process(*process)?;
                match exit_within_grace(p).await {
                    None => Ok(()),
                    Some(e) if e.success() && *allow_clean_exit => Ok(()),
                    Some(e) => Err(unexpected_end(
                        p,
                        &e,
                        format!("expected the {process} to keep running"),
                    )
                    .await),
                }
            }
            ProcessStep::ExpectNoTraceback { process, .. } => {
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
            ProcessStep::ExpectConnectAttempt {
                process, within, ..
            } => {
                let p = self.process(*process)?;
                let within = self.within(within);
                let patience = Patience::new(within, Some(p.member_list()));
                let target = match &self.refused {
                    Some(r) => format!("{HOST}:{}", r.port),
                    None => "the server".to_string(),
                };
                loop {
                    // Exit before count: an attempt made just before exiting is already counted.
                    let exited = p.exit_info();
                    let Some(attempts) = self.net.connect_attempts() else {
                        // The host's counters are shared with the whole machine: not checked,
                        // and the record says so (the same program may fail it in a namespace).
                        self.notes
                            .push(crate::note::Note::ConnectAttemptNotChecked {
                                process: process.to_string(),
                            });
                        return Ok(());
                    };
                    if attempts > 0 {
                        return Ok(());
                    }
                    if let Some(e) = exited {
                        StudentProcess::settle_stream(&p.stderr, SETTLE).await;
                        return Err(Fail::new(
                            Status::Failed,
                            format!(
                                "expected the {process} to try to connect to {target}, but it ended ({e}) without trying"
                            ),
                        ));
                    }
                    if patience.expired() {
                        return Err(Fail::new(
                            Status::TimedOut,
                            format!(
                                "expected the {process} to try to connect to {target} within {:.1}s, but it has not tried",
                                within.as_secs_f64()
                            ),
                        )
                        .hint(self.stdin_prompt_hint()));
                    }
                    let tick = (Instant::now() + CONNECT_POLL).min(patience.deadline());
                    let _ = p.wait_exit(tick).await;
                }
            }
            ProcessStep::ExpectCpuBelow {
                process,
                window,
                max_percent,
                ..
            } => {
                let p = self.process(*process)?;
                let tps = procfs::ticks_per_second() as f64;
                let members = p.member_list();
                let pids = members.pids();
                let before = procfs::cpu_ticks_of(&pids);
                let delays_before: HashMap<i32, u64> =
                    procfs::thread_run_delays_of(&pids).into_iter().collect();
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
                let pids = members.pids();
                let used = procfs::cpu_ticks_of(&pids).saturating_sub(before) as f64 / tps;
                // Time its threads were ready to run but waited for a CPU: on a loaded machine
                // a busy loop gets only a share of a core, but it is runnable all the time, so
                // used + waiting is what it asks for whatever the load (a blocked program waits
                // for input, which is not run-queue time).
                let waited = procfs::thread_run_delays_of(&pids)
                    .into_iter()
                    .map(|(tid, d)| d.saturating_sub(delays_before.get(&tid).copied().unwrap_or(0)))
                    .sum::<u64>() as f64
                    / 1e9;
                let elapsed = t0.elapsed().as_secs_f64();
                let pct = 100.0 * used / elapsed;
                let wanted = 100.0 * (used + waited) / elapsed;
                self.transcript.push(
                    &process.to_string(),
                    Dir::Note,
                    format!(
                        "used {:.0} ms of CPU in {:.1}s ({pct:.1}% of one core), and waited {:.0} ms for a CPU",
                        used * 1000.0,
                        window.0.as_secs_f64(),
                        waited * 1000.0
                    ),
                );
                if wanted <= *max_percent {
                    Ok(())
                } else {
                    let waiting = if wanted - pct >= 1.0 {
                        format!(
                            " and waited for a CPU another {:.0}% of the time (the machine was busy): it asked for {wanted:.0}%",
                            wanted - pct
                        )
                    } else {
                        String::new()
                    };
                    Err(Fail::new(
                        Status::Failed,
                        format!(
                            "while idle for {:.1}s the {process} used {pct:.0}% of a CPU core{waiting} (allowed: {max_percent}%)",
                            window.0.as_secs_f64()
                        ),
                    ))
                }
            }
        }
    }

    /// The streams a process target refers to, each with a short name for messages.
    pub(super) fn streams(&self, s: StreamRef) -> Result<Vec<Watched>, Fail> {
        Ok(match s {
            StreamRef::Stdout => vec![("stdout", self.process(Process::Client)?.stdout.clone())],
            StreamRef::Stderr(p) => vec![("stderr", self.process(p)?.stderr.clone())],
            StreamRef::Output => {
                let c = self.process(Process::Client)?;
                vec![("stdout", c.stdout.clone()), ("stderr", c.stderr.clone())]
            }
            StreamRef::ServerStdout => {
                vec![("stdout", self.process(Process::Server)?.stdout.clone())]
            }
            StreamRef::ServerOutput => {
                let s = self.process(Process::Server)?;
                vec![("stdout", s.stdout.clone()), ("stderr", s.stderr.clone())]
            }
        })
    }

    /// Records a new connection for diagnostics.
    pub(super) fn opened(&self, c: &Conn) {
        if let Ok(mut all) = self.opened.lock() {
            all.push((c.name.clone(), c.stream.clone()));
        }
    }

    /// "; it arrived on connection X instead" when `matcher` matches what another connection
    /// received (a reply sent to the wrong client).
    pub(super) fn elsewhere(&self, own: &Arc<Stream>, matcher: &Matcher) -> String {
        if matcher.is_any() {
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

    pub(super) fn matcher(&self, local: &Local, step: &ConnStep) -> Result<Matcher, Fail> {
        let base = self.base_matcher(local, step)?;
        Ok(match step.timestamp() {
            Some(ts) => Matcher::Timestamped(
                Box::new(base),
                crate::spec::TimestampCheck::new(ts)
                    .map_err(|e| Fail::new(Status::InfraError, format!("spec error: {e}")))?,
            ),
            None => base,
        })
    }

    fn base_matcher(&self, local: &Local, step: &ConnStep) -> Result<Matcher, Fail> {
        let spec_err = |m: String| Fail::new(Status::InfraError, format!("spec error: {m}"));
        Ok(
            match step
                .expectation()
                .ok_or_else(|| spec_err("bad expect".into()))?
            {
                Expectation::Any => Matcher::Any,
                Expectation::Contains(t)
                    if matches!(step, ConnStep::Expect { nocase: true, .. }) =>
                {
                    // Any letter case: the expanded text, escaped, as a case-insensitive regex.
                    let text = regex::escape(&self.expand(local, &t)?);
                    Matcher::Regex(
                        Regex::new(&format!("(?i){text}")).map_err(|e| spec_err(e.to_string()))?,
                    )
                }
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

    /// Steps on one connection (inside `parallel` too); `expect`, `expect_silence` and
    /// `expect_not` may also read a process stream (validation allows that at the top level only).
    pub(super) async fn conn_step(&self, local: &mut Local, step: &ConnStep) -> StepResult {
        match step {
            ConnStep::Expect {
                on: Target::Stream(s),
                within,
                ..
            } => {
                let streams = self.streams(*s)?;
                let matcher = self.matcher(local, step)?;
                let patience = self.patience(self.within(within));
                let result = self
                    .expect_on(&streams, &step_target(step), &matcher, patience)
                    .await;
                optional_passes(step, result)
            }
            ConnStep::ExpectSilence {
                on: Target::Stream(s),
                window,
                ..
            } => {
                let streams = self.streams(*s)?;
                self.silence(&streams, &step_target(step), window.0).await
            }
            ConnStep::ExpectNot {
                on: Target::Stream(s),
                window,
                ..
            } => {
                let streams = self.streams(*s)?;
                let matcher = self.matcher(local, step)?;
                self.expect_not(&streams, &step_target(step), &matcher, window.0)
                    .await
            }
            ConnStep::Connect { conn, within } => {
                let addr = self.server_addr.ok_or_else(|| {
                    Fail::new(
                        Status::InfraError,
                        "`connect` before `start_server` (spec error)",
                    )
                })?;
                let key = local.key(conn);
                let gate = local.gate.take();
                let sent = move || {
                    if let Some(g) = gate {
                        g.sent();
                    }
                };
                let fut =
                    Conn::connect(key.clone(), addr, &self.net, self.transcript.clone(), sent);
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
            ConnStep::Send { conn, .. } => {
                let bytes = match step.send_body() {
                    Some(SendBody::Text(t)) => self.expand(local, &t)?.into_bytes(),
                    Some(SendBody::Line(t)) => {
                        let mut b = self.expand(local, &t)?.into_bytes();
                        b.push(b'\n');
                        b
                    }
                    Some(SendBody::Hex(h)) => decode_hex(&h)
                        .ok_or_else(|| Fail::new(Status::InfraError, "spec error: bad hex"))?,
                    Some(SendBody::Random(n)) => template::random_bytes(&self.vars(local), n),
                    None => return Err(Fail::new(Status::InfraError, "spec error: bad send")),
                };
                // Random bytes are no lines: `isolated` looks for the lines a copy sent.
                if local.i.is_some() && !matches!(step.send_body(), Some(SendBody::Random(_))) {
                    let text = String::from_utf8_lossy(&bytes);
                    let lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
                    local.sent.extend(lines.map(String::from));
                }
                let c = local.conn(conn)?;
                if let Err(e) = c.send(&bytes).await {
                    let name = c.name.clone();
                    // What the program said before the connection broke is usually the cause
                    // (an error reply to a first part it took for the whole message).
                    let before = c.stream.with_raw_unconsumed(|b, end| {
                        let closed = if end.is_some() {
                            " and closed the connection"
                        } else {
                            ""
                        };
                        if b.is_empty() {
                            String::new()
                        } else {
                            format!(
                                " (before that the program had sent {}{closed})",
                                crate::engine::http::quote_bytes(b, 120)
                            )
                        }
                    });
                    return Err(self
                        .attribute(
                            format!("could not send on connection {name}: {e}{before}"),
                            Status::Failed,
                        )
                        .await);
                }
                Ok(())
            }
            ConnStep::WaitRead { conn, within, .. } => {
                let c = local.conn(conn)?;
                let (Some(ours), Some(theirs), name) = (c.local, c.peer, c.name.clone()) else {
                    return Ok(());
                };
                let within = self.within(within);
                let patience = self.patience(within);
                let net = &self.net;
                let mut drained = || net.unread_bytes(ours, theirs).is_none_or(|n| n == 0);
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
            ConnStep::Close { conn } => {
                local.conn(conn)?.close().await;
                Ok(())
            }
            ConnStep::Abort { conn } => {
                local.conn(conn)?.abort().await;
                Ok(())
            }
            ConnStep::Expect {
                on: Target::Conn(name),
                within,
                ..
            } => {
                let matcher = self.matcher(local, step)?;
                let c = local.conn(name)?;
                let (stream, label) = (c.stream.clone(), format!("connection {}", c.name));
                let within = self.within(within);
                let started = Instant::now();
                let patience = self.patience(within);
                let result = self
                    .expect_on(&[("", stream.clone())], &label, &matcher, patience)
                    .await;
                let Err(mut f) = result else {
                    return Ok(());
                };
                if f.status != Status::TimedOut {
                    return Err(f);
                }
                if matches!(step, ConnStep::Expect { optional: true, .. }) {
                    // An optional expectation that waited in vain passes.
                    return Ok(());
                }
                // Name the real cause: the reply went elsewhere (crosstalk), the typed line
                // sits in the client's stdin buffer, or the reply comes late to the right place.
                let elsewhere = self.elsewhere(&stream, &matcher);
                if !elsewhere.is_empty() {
                    f.message.push_str(&elsewhere);
                } else if let Some((msg, hint)) = self.stdin_diagnosis(&matcher, &stream).await {
                    f.message.push_str(&msg);
                    f = f.hint(Some(hint));
                } else if local.i.is_some()
                    && let Some(msg) = self
                        .late_arrival(&stream, &label, &matcher, within, started)
                        .await
                {
                    f.message.push_str(&msg);
                    f = f.hint(Some(diagnose::SLOW_HINT.to_string()));
                }
                Err(f)
            }
            ConnStep::ExpectSilence {
                on: Target::Conn(name),
                window,
                ..
            } => {
                let c = local.conn(name)?;
                let (stream, label) = (c.stream.clone(), format!("connection {}", c.name));
                self.silence(&[("", stream)], &label, window.0).await
            }
            ConnStep::ExpectNot {
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
            ConnStep::ExpectBytes {
                on,
                hex,
                echo,
                within,
                ..
            } => {
                let within = self.within(within);
                let c = local.conn(on)?;
                let (stream, label) = (c.stream.clone(), format!("connection {}", c.name));
                let (expected, what) = match hex {
                    Some(h) if !echo => (
                        decode_hex(h)
                            .ok_or_else(|| Fail::new(Status::InfraError, "spec error: bad hex"))?,
                        "the bytes given".to_string(),
                    ),
                    _ => {
                        let from = c.echoed.min(c.sent.len());
                        (
                            c.sent[from..].to_vec(),
                            if from == 0 {
                                "the echo of everything sent".to_string()
                            } else {
                                format!("the echo of what was sent after the first {from} bytes")
                            },
                        )
                    }
                };
                self.expect_raw(&stream, &label, &what, &expected, within)
                    .await?;
                if *echo {
                    let c = local.conn(on)?;
                    c.echoed = c.sent.len();
                }
                Ok(())
            }
            ConnStep::ExpectHttp {
                on,
                status,
                headers,
                body_contains,
                head,
                within,
                // Refused inside `parallel` by validation; at the top level `step` handles it.
                end_if_closed: _,
                hint: _,
            } => {
                let want = HttpExpect {
                    on,
                    status,
                    headers,
                    body_contains,
                    head,
                    within,
                };
                self.expect_http(local, want).await.map(|_| ())
            }
            ConnStep::ExpectClosed { on, within, .. } => {
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
        }
    }

    /// A step of a `parallel` copy: a connection step or a `repeat` of copy steps.
    pub(super) async fn copy_step(&self, local: &mut Local, step: &CopyStep) -> StepResult {
        match step {
            CopyStep::Conn(s) => self.conn_step(local, s).await,
            CopyStep::Repeat { count, steps } => {
                for j in 0..*count {
                    local.j = Some(j);
                    for s in steps {
                        Box::pin(self.copy_step(local, s))
                            .await
                            .map_err(|f| nested(f, s.hint()))?;
                    }
                }
                local.j = None;
                Ok(())
            }
            CopyStep::Protocol(p) => Err(not_expanded(p.kind())),
        }
    }

    /// Runs `count` copies of `steps` at once. Copy `i` takes over the connections `name#i` that
    /// earlier groups opened and hands all its connections back when it is done.
    pub(super) async fn parallel(
        &self,
        outer: &mut Local,
        count: u32,
        steps: &[CopyStep],
        isolated: bool,
        burst: bool,
    ) -> StepResult {
        let gate = burst.then(|| burst::Gate::new(count));
        let mut locals: Vec<Local> = (0..count)
            .map(|i| Local {
                i: Some(i),
                j: outer.j,
                gate: gate.clone(),
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
                if let Err(f) = self.copy_step(&mut local, s).await {
                    return Err((local.i.unwrap_or(0), nested(f, s.hint())));
                }
            }
            Ok(local)
        });
        // With `burst`, the server stays paused until every copy's request has left.
        let paused = match (&gate, &self.server) {
            (Some(_), Some(server)) => Some(server.pause()),
            _ => None,
        };
        let resume = async {
            if let (Some(gate), Some(paused)) = (&gate, paused) {
                let sent = gate.wait().await;
                self.transcript.push(
                    "grader",
                    Dir::Note,
                    format!(
                        "burst: {sent} of {count} connection requests sent while the server was paused ({} processes); server resumed",
                        paused.count()
                    ),
                );
                drop(paused);
            }
        };
        let (results, ()) =
            futures_util::future::join(futures_util::future::join_all(copies), resume).await;
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
            let message = format!("in parallel copy {i} of {count}{how_many}: {}", f.message);
            let accepted = count.saturating_sub(failed as u32);
            if f.status == Status::TimedOut
                && let Some((msg, hint)) = self.backlog_diagnosis(steps, count, accepted).await
            {
                return Err(Fail {
                    message: format!("{msg} ({message})"),
                    hint: Some(hint),
                    ..f
                });
            }
            return Err(Fail { message, ..f });
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
}

/// An `optional` expectation that waited in vain passes; any other failure stays one.
fn optional_passes(step: &ConnStep, result: StepResult) -> StepResult {
    match result {
        Err(f)
            if f.status == Status::TimedOut
                && matches!(step, ConnStep::Expect { optional: true, .. }) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// How the process ended within [`RUNNING_GRACE`] (load-compensated), if it did: a program that
/// is about to crash (it closed a socket, then raises) gets a moment to do so.
async fn exit_within_grace(p: &StudentProcess) -> Option<crate::process::ExitInfo> {
    let patience = Patience::new(RUNNING_GRACE, Some(p.member_list()));
    let mut exit = None;
    while exit.is_none() && !patience.expired() {
        exit = p.wait_exit(patience.deadline()).await;
    }
    exit
}

/// The failure for a process that ended when `expected` said it should not: crashed when it
/// died abnormally, else failed; its stderr settled first so the report shows why.
async fn unexpected_end(
    p: &StudentProcess,
    e: &crate::process::ExitInfo,
    expected: String,
) -> Fail {
    StudentProcess::settle_stream(&p.stderr, SETTLE).await;
    let status = if e.abnormal() {
        Status::Crashed
    } else {
        Status::Failed
    };
    Fail::new(status, format!("{expected}, but it ended with {e}"))
}

/// A failure of a step nested in `repeat` or `parallel`, carrying that step's own hint unless
/// a diagnosis already named the cause.
fn nested(f: Fail, hint: Option<&str>) -> Fail {
    f.hint(hint.map(String::from))
}

/// A protocol step that reached the engine (a grader bug: they are expanded at load).
fn not_expanded(kind: &str) -> Fail {
    Fail::new(
        Status::InfraError,
        format!(
            "step `{kind}` was not expanded (a grader bug: protocol steps are expanded when the task file is loaded)"
        ),
    )
}

pub(super) fn step_target(step: &ConnStep) -> String {
    step.target().map(Target::to_string).unwrap_or_default()
}

/// The copy index of a connection key `name#i`.
pub(super) fn copy_index(key: &str) -> Option<u32> {
    key.rsplit_once('#').and_then(|(_, i)| i.parse().ok())
}

/// What one parallel copy did: its index, the lines it sent, and (connection name, everything
/// received on it) for each of its connections.
pub(super) type CopyRecord = (u32, Vec<String>, Vec<(String, String)>);

/// Finds a line that one parallel copy sent (and no other copy sent too) among what another
/// copy's connections received, and describes it. Lines shorter than 8 characters are too
/// unspecific to check.
pub(super) fn crossed_line(copies: &[CopyRecord]) -> Option<String> {
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

pub(super) fn decode_hex(h: &str) -> Option<Vec<u8>> {
    let clean: String = h.split_whitespace().collect();
    (0..clean.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(clean.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(text: &str) -> Step {
        toml::from_str(text).expect("a step")
    }

    #[test]
    fn a_nested_steps_hint_is_kept_unless_a_diagnosis_named_the_cause() {
        let s = step("do = \"expect\"\non = \"a\"\nany = true\nhint = \"reply to every line\"");
        let plain = nested(Fail::new(Status::TimedOut, "nothing arrived"), s.hint());
        assert_eq!(plain.hint.as_deref(), Some("reply to every line"));
        let diagnosed = Fail::new(Status::TimedOut, "nothing arrived")
            .hint(Some(diagnose::SLOW_HINT.to_string()));
        let kept = nested(diagnosed, s.hint());
        assert_eq!(kept.hint.as_deref(), Some(diagnose::SLOW_HINT));
        let without = step("do = \"close\"\nconn = \"a\"");
        assert_eq!(
            nested(Fail::new(Status::Failed, "x"), without.hint()).hint,
            None
        );
    }
}
