//! Starting the two sides of a scenario: the student's server (observing in the socket tables that it
//! listens, never by connecting), the student's client (pointed at the grader's listener or
//! at a refusing port), and accepting the client's connection.

use super::*;
use crate::net::tables::{self, Listener};
use crate::process::Members;

impl<'a> Run<'a> {
    /// One consistent look at the listening sockets of the scenario's network: those the
    /// student's processes hold, and those held by anyone else. The table is read before the
    /// processes' sockets, so a socket the student binds in between is never mistaken for a
    /// stranger's. Both are empty once no process of the program is left.
    fn port_holders(&self, members: &Members) -> (Vec<Listener>, Vec<Listener>) {
        let table = self.net.listeners();
        match procfs::socket_inodes_of(&members.pids()) {
            Some(held) => tables::partition(table, &held),
            None => (Vec::new(), Vec::new()),
        }
    }

    /// Starts the server and waits until it listens on its assigned port. A server listening on
    /// another port (a hard-coded one) fails a scenario about the port (`assigned_port`), and is
    /// graded on that port elsewhere (unless `--accept-any-port=false`). On the host network, a
    /// server that could not listen because another scenario of the grading held that port
    /// marks the scenario as collided (the engine runs it again, alone).
    pub(super) async fn start_server(
        &mut self,
        within: Duration,
        assigned_port: bool,
    ) -> StepResult {
        let key = name_key(&self.sc.name);
        let lease = self
            .net
            .reserve_port(self.ports, key)
            .map_err(|e| Fail::new(Status::InfraError, e.to_string()))?;
        let port = lease.port;
        self.lease = Some(lease);
        let argv = self.req.server.argv(&self.req.submission, HOST, port, None);
        let p = self.spawn(Process::Server, argv, port, None, false)?;
        let members = p.member_list();
        self.server = Some(p);
        let start = Instant::now();
        let patience = Patience::new(within, Some(members.clone()));
        let mut found: Option<SocketAddr> = None;
        let exit_rx = self.server.as_ref().map(|p| p.exit_watch());
        // A server already listening elsewhere (a hard-coded port) gets a short grace to open
        // the right port too, not the whole deadline.
        let mut elsewhere_since: Option<Instant> = None;
        let mut stranger = false;
        let watch = self.watch;
        // On the host, copies of a server on one hard-coded port collide: until this one has
        // listened (or not), a copy that failed waits for it to decide.
        let shares_host = self.on_host() && self.accept_any_port() && !self.alone;
        let starting = shares_host.then(|| watch.starting());
        let mut collided = false;
        let mut check = || {
            if exit_rx.as_ref().is_some_and(|r| r.borrow().is_some()) {
                return true;
            }
            let (listening, others) = self.port_holders(&members);
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
                // Once the grading knows the hard-coded port, no grace: it is not going to
                // open the assigned one.
                let known = watch.server_port();
                if known.is_some_and(|k| listening.iter().any(|l| l.addr.port() == k)) {
                    return true;
                }
                let since = *elsewhere_since.get_or_insert_with(Instant::now);
                return since.elapsed() >= WRONG_PORT_GRACE;
            }
            if found.is_none() && shares_host && watch.server_port().is_some() {
                // Another copy holds the hard-coded port: this one runs again, alone.
                collided = true;
                return true;
            }
            found.is_some()
        };
        while !process::poll_until(patience.deadline(), &mut check).await && !patience.expired() {}
        if found.is_none() && !stranger && self.accept_any_port() {
            let alive = self
                .server
                .as_ref()
                .is_some_and(|p| p.exit_info().is_none());
            let other = self.port_holders(&members).0.into_iter().next();
            if let (true, Some(l)) = (alive, other) {
                let actual = l.addr.port();
                watch.saw_server_port(actual);
                self.seen.push(PortSeen::Server {
                    assigned: port,
                    actual,
                    strict: assigned_port,
                });
                if assigned_port {
                    self.transcript.push(
                        "grader",
                        Dir::Note,
                        format!("the server listens on port {actual}"),
                    );
                    return Err(Fail::new(
                        Status::NeverListened,
                        format!(
                            "the server listens on port {actual}, not the assigned port {port}"
                        ),
                    )
                    .hint(Some(
                        "read the port from --port (or CLASSCHAT_PORT) instead of hard-coding it"
                            .into(),
                    )));
                }
                self.transcript.push(
                    "grader",
                    Dir::Note,
                    format!("the server listens on port {actual}, not the assigned port {port}: graded there (--accept-any-port)"),
                );
                found = Some(l.addr);
            }
        }
        drop(starting);
        if found.is_none() && !stranger && shares_host && !collided {
            // Did it fail because another copy holds the hard-coded port? Wait for the copies
            // still starting to find out.
            collided = watch.settle(Instant::now() + within).await.is_some();
        }
        if collided {
            self.collided = true;
        }
        if let Some(addr) = found {
            let bundled = self.req.grades_bundled_reference();
            if !bundled
                && procfs::runs_any_of(&members.pids(), &crate::process::sandbox::grader_binaries())
            {
                return Err(Fail::new(
                    Status::Failed,
                    "the program listening is the grader's own binary or a bundled reference solution, not the student's server: a submission must be the student's own program",
                ));
            }
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
        let group: Vec<u16> = self
            .port_holders(&members)
            .0
            .iter()
            .map(|l| l.addr.port())
            .collect();
        // A server that died of "Address already in use" may have lost the race for our port
        // to another program: if someone else listens there now, that is not the student's fault.
        let stranger = stranger
            || (p.exit_info().is_some()
                && self.net.listeners().iter().any(|l| l.addr.port() == port));
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

    /// Starts the client, pointed at the grader's listener or (`refused`) at a port where
    /// connections are refused. In a namespace, unless refused, every other port the client
    /// dials is redirected to the listener (see [`crate::net::nat`]).
    pub(super) async fn start_client(&mut self, refused: bool, name: Option<&str>) -> StepResult {
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
        if !refused && !self.on_host() {
            let redirected = if self.accept_any_port() {
                match self.net.redirect_tcp_to(port) {
                    Ok(()) => true,
                    Err(e) => {
                        self.transcript.push(
                            "grader",
                            Dir::Note,
                            format!("other ports cannot be redirected to the listener here (nf_tables: {e}); a hard-coded port is refused"),
                        );
                        false
                    }
                }
            } else {
                false
            };
            // Not redirected: at least learn where the client dials instead.
            if !redirected {
                self.dials = self.net.watch_dials().ok();
            }
        }
        let argv = self.req.client.argv(&self.req.submission, HOST, port, name);
        let p = self.spawn(Process::Client, argv, port, name, true)?;
        self.client = Some(p);
        Ok(())
    }

    pub(super) async fn accept(
        &mut self,
        local: &mut Local,
        conn: &str,
        within: Duration,
        assigned_port: bool,
    ) -> StepResult {
        let listener = self.listener.as_ref().ok_or_else(|| {
            Fail::new(Status::InfraError, "`accept` before `listen` (spec error)")
        })?;
        let mut exit_rx = self.client.as_ref().map(|c| c.exit_watch());
        let patience = Patience::new(
            within,
            self.client.as_ref().map(StudentProcess::member_list),
        );
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
                self.transcript.push(&key, Dir::Note, format!("accepted the client from {}", unmap(peer)));
                let assigned = self.listener_port.unwrap_or(0);
                let dialled = socket
                    .local_addr()
                    .ok()
                    .and_then(|l| crate::net::nat::original_destination(&socket, l))
                    .map(unmap)
                    .filter(|d| d.port() != assigned);
                if let Some(dialled) = dialled {
                    self.seen.push(PortSeen::Client { assigned, dialled, strict: assigned_port });
                    self.transcript.push(&key, Dir::Note, format!("the client dialled {dialled}, redirected to the grader's listener on port {assigned}"));
                    if assigned_port {
                        return Err(Fail::new(
                            Status::Failed,
                            format!("the client connected to {dialled}, not the assigned port {assigned}"),
                        )
                        .hint(Some("connect to the host and port given by --host/--port (or CLASSCHAT_HOST/CLASSCHAT_PORT) instead of a hard-coded port".into())));
                    }
                }
                let c = Conn::new(key.clone(), socket, self.transcript.clone());
                self.opened(&c);
                local.conns.insert(key, c);
                Ok(())
            }
            Some(Ok(Err(e))) => Err(Fail::new(Status::InfraError, format!("accept failed: {e}"))),
            Some(Err(_)) if let Some(fail) = self.dialled_elsewhere() => Err(fail),
            Some(Err(_)) => Err(Fail::new(
                Status::TimedOut,
                format!("the client did not connect to {HOST}:{} within the deadline", self.listener_port.unwrap_or(0)),
            )
            .hint(self.stdin_prompt_hint())
            .hint(Some("connect to the host and port given by --host/--port (or CLASSCHAT_HOST/CLASSCHAT_PORT)".into()))),
            None if let Some(fail) = self.dialled_elsewhere() => Err(fail),
            None => {
                let fail = self
                    .attribute("the client exited without connecting".into(), Status::Failed)
                    .await
                    .hint(self.terminal_hint());
                // On the host a client dialling a port of its own is refused, not redirected.
                Err(if self.on_host() {
                    fail.hint(Some("connect to the host and port given by --host/--port (or CLASSCHAT_HOST/CLASSCHAT_PORT); on the host network a client that dials a port of its own cannot be redirected to the grader (it is inside a network namespace, as root)".into()))
                } else {
                    fail
                })
            }
        }
    }
}

impl Run<'_> {
    /// Where the client's connections are not redirected: a failure naming the port it dialled
    /// instead of the listener's, if it dialled one.
    fn dialled_elsewhere(&self) -> Option<Fail> {
        let assigned = self.listener_port?;
        let dialled = *self.dials.as_ref()?.dialled(assigned).first()?;
        let why = if self.accept_any_port() {
            "a connection to another port cannot be redirected to the grader here (no nf_tables NAT in this kernel), so it was refused"
        } else {
            "--accept-any-port=false: a connection to another port is refused"
        };
        Some(
            Fail::new(
                Status::Failed,
                format!("the client dialled {dialled}, not the assigned port {assigned} ({why})"),
            )
            .hint(Some("connect to the host and port given by --host/--port (or CLASSCHAT_HOST/CLASSCHAT_PORT) instead of a hard-coded port".into())),
        )
    }
}

/// An IPv4 address in IPv6 clothing (`::ffff:127.0.0.1`, as a dual-stack socket shows it)
/// written as the IPv4 address the program used.
fn unmap(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => a,
        },
        v4 => v4,
    }
}

/// A number derived from a scenario's name (its port inside a namespace, so a replay gets the
/// same one).
pub(super) fn name_key(name: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(name.as_bytes());
    u64::from_le_bytes(d[..8].try_into().unwrap_or([0; 8]))
}
