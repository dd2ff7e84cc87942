//! Network isolation: one network namespace per scenario, or the host's loopback.
//!
//! A [`NetNs`] is created by a dedicated thread that calls `unshare(CLONE_NEWNET)`, brings its
//! loopback interface up and then stays inside the namespace, creating sockets on request. A
//! socket belongs to the namespace it was created in and can be used from any thread afterwards,
//! so the grader's sockets for a scenario (its connections, its listener, its "refused" port)
//! are created by that thread and handed to tokio. Student processes join the namespace with
//! `setns` between fork and exec (see [`crate::process::sandbox`]).
//!
//! Guarantees: a namespace sees only its own loopback (no other interface, no route out), so the
//! student's program can neither reach the host's services nor collide with another scenario,
//! even on a hard-coded port; the namespace goes away when the last socket or process in it does.
//! [`Net`] hides the difference between the two modes from the engine: the same calls open
//! connections, listeners and refused ports, and name the `/proc` table to read. Where a
//! namespace cannot be made, [`probe`] says why as a [`NamespaceError`]: the step that failed
//! ([`NsError`], with its cause) and what the grader lacks ([`NamespaceLack`]).

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use nix::libc;
use nix::sched::CloneFlags;
use socket2::{Domain, Socket, Type};
use tokio::net::{TcpListener, TcpStream};

use super::ports::{self, NoFreePort, PortLease, PortPool, RefusedPort};
use super::tables::{self, Listener, SockDiag};

/// The isolation a grading asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationMode {
    /// A namespace per scenario where the system allows it, else the host's loopback.
    #[default]
    Auto,
    /// A namespace per scenario, or fail.
    Netns,
    /// The host's loopback with reserved ports.
    Host,
}

/// The isolation a grading runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// One network namespace per scenario.
    Netns,
    /// The host's network.
    Host,
}

impl Isolation {
    /// The name used in reports (`isolation = "netns" | "host"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::Netns => "netns",
            Isolation::Host => "host",
        }
    }
}

impl IsolationMode {
    /// Decides the isolation: `Auto` probes once by creating (and dropping) a namespace. The
    /// error says why namespaces cannot be used.
    pub fn resolve(self) -> Result<Isolation, NamespaceError> {
        match self {
            IsolationMode::Host => Ok(Isolation::Host),
            IsolationMode::Netns => probe().map(|()| Isolation::Netns),
            IsolationMode::Auto => Ok(probe().map_or(Isolation::Host, |()| Isolation::Netns)),
        }
    }
}

/// Why a network namespace could not be made: the step that failed, and its cause.
#[derive(Debug, thiserror::Error)]
pub enum NsError {
    /// `unshare(CLONE_NEWNET)` was refused.
    #[error("unshare(CLONE_NEWNET)")]
    Unshare(#[source] nix::errno::Errno),
    /// The namespace's loopback could not be brought up.
    #[error("bringing its loopback up")]
    Loopback(#[source] io::Error),
    /// The namespace's handle (`/proc/thread-self/ns/net`) could not be opened.
    #[error(transparent)]
    Handle(io::Error),
    /// The thread that makes the namespace could not be started.
    #[error(transparent)]
    Thread(io::Error),
    /// The thread that makes the namespace died before it said how it went.
    #[error("the namespace thread died")]
    ThreadDied,
}

impl From<NsError> for io::Error {
    /// The error [`NetNs::new`] gives: the step as an `io::Error` of its cause's kind (the
    /// steps without a cause of their own are their `io::Error` as it was).
    fn from(e: NsError) -> Self {
        let kind = match &e {
            NsError::Unshare(errno) => io::Error::from(*errno).kind(),
            NsError::Loopback(cause) => cause.kind(),
            NsError::Handle(_) | NsError::Thread(_) | NsError::ThreadDied => io::ErrorKind::Other,
        };
        match e {
            NsError::Handle(cause) | NsError::Thread(cause) => cause,
            NsError::ThreadDied => io::Error::other("the namespace thread died"),
            step => io::Error::new(kind, step),
        }
    }
}

/// What the grader lacks for a network namespace, as [`probe`] tells from who it runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NamespaceLack {
    /// Not root, and no user namespace of its own.
    #[error("not root, and no user namespace of the grader's own (see docs/security.md)")]
    NotRoot,
    /// Root, but `unshare` is refused without CAP_SYS_ADMIN.
    #[error("root without CAP_SYS_ADMIN (docker run --cap-add SYS_ADMIN)")]
    SysAdmin,
    /// Root, but the loopback cannot be brought up without CAP_NET_ADMIN.
    #[error(
        "root without CAP_NET_ADMIN, which a namespace's loopback needs (docker run --cap-add NET_ADMIN)"
    )]
    NetAdmin,
    /// Neither: a security profile or the kernel refuses.
    #[error("a security profile (seccomp, AppArmor) or the kernel refuses it")]
    Refused,
}

/// Why network namespaces cannot be used here: the step that failed (with its cause) and what
/// the grader lacks. Its message holds the step's chain of causes, in parentheses before what
/// is missing (`cannot create a network namespace (unshare(CLONE_NEWNET): EPERM: ...): root
/// without CAP_SYS_ADMIN ...`), so it has no `source` of its own: every cause is written once.
#[derive(Debug, thiserror::Error)]
#[error("cannot create a network namespace ({}): {lacks}", crate::error_chain::Chain(.step))]
pub struct NamespaceError {
    /// The step that failed, and its cause.
    pub step: NsError,
    /// What the grader lacks.
    pub lacks: NamespaceLack,
}

/// Whether a network namespace can be created here (`Err` says why not, naming what is missing).
pub fn probe() -> Result<(), NamespaceError> {
    NetNs::create().map(drop).map_err(|step| {
        use crate::process::sandbox::{caps, is_root};
        let lacks = match step {
            _ if !is_root() => NamespaceLack::NotRoot,
            NsError::Unshare(_) if !caps::has(caps::SYS_ADMIN) => NamespaceLack::SysAdmin,
            NsError::Loopback(_) if !caps::has(caps::NET_ADMIN) => NamespaceLack::NetAdmin,
            _ => NamespaceLack::Refused,
        };
        NamespaceError { step, lacks }
    })
}

type Job = Box<dyn FnOnce() + Send>;

/// A network namespace with a thread living inside it.
pub struct NetNs {
    fd: OwnedFd,
    tid: i32,
    /// The namespace's socket tables (`None` where netlink diagnostics are unavailable).
    diag: Option<SockDiag>,
    jobs: Mutex<mpsc::Sender<Job>>,
    /// Connections the grader itself opened in the namespace (subtracted from the kernel's
    /// `ActiveOpens` counter to count the student's attempts).
    own_connects: AtomicU64,
}

impl std::fmt::Debug for NetNs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetNs").field("tid", &self.tid).finish()
    }
}

impl NetNs {
    /// Creates a namespace with its loopback up. Fails without CAP_SYS_ADMIN.
    pub fn new() -> io::Result<Arc<Self>> {
        Self::create().map_err(io::Error::from)
    }

    /// [`NetNs::new`], saying which step failed.
    pub fn create() -> Result<Arc<Self>, NsError> {
        let (jobs, rx) = mpsc::channel::<Job>();
        type Ready = Result<(OwnedFd, i32, Option<SockDiag>), NsError>;
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Ready>(1);
        std::thread::Builder::new()
            .name("grader-netns".into())
            .spawn(move || {
                let setup = || -> Ready {
                    nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(NsError::Unshare)?;
                    loopback_up().map_err(NsError::Loopback)?;
                    // Student programs in the namespace may bind ports below 1024 although they
                    // run without capabilities (the namespace is theirs alone).
                    let _ = std::fs::write("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0");
                    let fd = File::open("/proc/thread-self/ns/net").map_err(NsError::Handle)?;
                    let diag = SockDiag::new().ok();
                    Ok((fd.into(), nix::unistd::gettid().as_raw(), diag))
                };
                let result = setup();
                let ok = result.is_ok();
                let _ = ready_tx.send(result);
                if ok {
                    // Serve socket requests until the namespace's owner goes away.
                    while let Ok(job) = rx.recv() {
                        job();
                    }
                }
            })
            .map_err(NsError::Thread)?;
        let (fd, tid, diag) = ready_rx.recv().map_err(|_| NsError::ThreadDied)??;
        Ok(Arc::new(Self {
            fd,
            tid,
            diag,
            jobs: Mutex::new(jobs),
            own_connects: AtomicU64::new(0),
        }))
    }

    /// Runs `f` on the thread inside the namespace and returns its result.
    pub fn run<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> io::Result<R> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job)
            .map_err(|_| io::Error::other("the namespace thread is gone"))?;
        rx.recv()
            .map_err(|_| io::Error::other("the namespace thread is gone"))
    }

    /// The namespace's file descriptor (for `setns`), valid while `self` lives.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Brings the loopback interface of the calling thread's namespace up (SIOCSIFFLAGS).
fn loopback_up() -> io::Result<()> {
    let sock = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write an ifreq we own. The request's type is
    // `libc::Ioctl` (an unsigned long with glibc, an int with musl, the release binaries' libc).
    unsafe {
        if libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCGIFFLAGS as libc::Ioctl,
            &mut req,
        ) < 0
        {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as libc::Ioctl, &req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The network one scenario uses: the host's, or its own namespace.
#[derive(Debug, Clone)]
pub enum Net {
    /// The host's network (ports come from the shared [`PortPool`]), with this scenario's own
    /// socket-table reader (`None` where netlink diagnostics are unavailable): no state is
    /// shared between scenarios or gradings.
    Host(Option<Arc<SockDiag>>),
    /// A namespace of its own.
    Ns(Arc<NetNs>),
}

/// A port handed to a student server: leased from the pool on the host, or simply free inside a
/// private namespace.
#[derive(Debug)]
pub struct Port {
    /// The port.
    pub port: u16,
    _lease: Option<PortLease>,
}

impl Net {
    /// A network for one scenario in the given isolation.
    pub fn new(isolation: Isolation) -> io::Result<Self> {
        match isolation {
            Isolation::Host => Ok(Net::Host(SockDiag::new().ok().map(Arc::new))),
            Isolation::Netns => NetNs::new().map(Net::Ns),
        }
    }

    /// Which isolation this is.
    pub fn isolation(&self) -> Isolation {
        match self {
            Net::Host(_) => Isolation::Host,
            Net::Ns(_) => Isolation::Netns,
        }
    }

    /// The namespace descriptor student processes join, if any.
    pub fn ns_fd(&self) -> Option<RawFd> {
        match self {
            Net::Host(_) => None,
            Net::Ns(ns) => Some(ns.fd()),
        }
    }

    /// The socket tables of this network through netlink, if available.
    fn diag(&self) -> Option<&SockDiag> {
        match self {
            Net::Host(diag) => diag.as_deref(),
            Net::Ns(ns) => ns.diag.as_ref(),
        }
    }

    /// Every listening TCP socket in this network.
    pub fn listeners(&self) -> Vec<Listener> {
        self.diag()
            .and_then(|d| d.listeners().ok())
            .unwrap_or_else(|| tables::proc::listeners(&self.proc_net()))
    }

    /// Every bound UDP socket in this network (a UDP server is ready once its socket is bound).
    pub fn udp_sockets(&self) -> Vec<Listener> {
        self.diag()
            .and_then(|d| d.udp_sockets().ok())
            .unwrap_or_else(|| tables::proc::udp_sockets(&self.proc_net()))
    }

    /// A UDP socket of the grader on 127.0.0.1 and a port the kernel picks, in this network
    /// (non-blocking, close-on-exec). Call inside the runtime.
    pub fn udp_bind(&self) -> io::Result<tokio::net::UdpSocket> {
        let make = || -> io::Result<Socket> {
            let s = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
            s.bind(&SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0).into())?;
            Ok(s)
        };
        let s = match self {
            Net::Host(_) => make()?,
            Net::Ns(ns) => ns.run(make)??,
        };
        s.set_nonblocking(true)?;
        tokio::net::UdpSocket::from_std(s.into())
    }

    /// Bytes still queued between our socket `ours` and the peer `theirs` in this network (see
    /// [`SockDiag::unread_bytes`]).
    pub fn unread_bytes(&self, ours: SocketAddr, theirs: SocketAddr) -> Option<u64> {
        match self.diag().map(|d| d.unread_bytes(ours, theirs)) {
            Some(Ok(n)) => n,
            _ => tables::proc::unread_bytes(&self.proc_net(), ours, theirs),
        }
    }

    /// The `/proc/.../net` folder whose tables show this network's sockets.
    fn proc_net(&self) -> PathBuf {
        match self {
            Net::Host(_) => PathBuf::from("/proc/self/net"),
            Net::Ns(ns) => PathBuf::from(format!("/proc/self/task/{}/net", ns.tid)),
        }
    }

    /// How many TCP connections the student's programs in this network have tried to open,
    /// refused ones included: the namespace's `ActiveOpens` counter (`/proc/.../net/snmp`) less
    /// the grader's own connections. `None` on the host, whose counter the whole machine shares,
    /// or where the counter cannot be read.
    pub fn connect_attempts(&self) -> Option<u64> {
        let Net::Ns(ns) = self else { return None };
        let snmp = std::fs::read_to_string(self.proc_net().join("snmp")).ok()?;
        let opens = tcp_counter(&snmp, "ActiveOpens")?;
        Some(opens.saturating_sub(ns.own_connects.load(Ordering::SeqCst)))
    }

    /// A new TCP socket (non-blocking, close-on-exec) in this network.
    fn socket(&self, domain: Domain) -> io::Result<Socket> {
        let s = match self {
            Net::Host(_) => Socket::new(domain, Type::STREAM, None)?,
            Net::Ns(ns) => ns.run(move || Socket::new(domain, Type::STREAM, None))??,
        };
        s.set_nonblocking(true)?;
        Ok(s)
    }

    /// Connects to `addr` in this network.
    pub async fn connect(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        self.connect_announced(addr, || {}).await
    }

    /// [`Net::connect`], calling `sent` as soon as the connection request (SYN) has left, before
    /// the handshake completes: a `burst` waits for every copy's request this way.
    pub async fn connect_announced(
        &self,
        addr: SocketAddr,
        sent: impl FnOnce(),
    ) -> io::Result<TcpStream> {
        let s = self.socket(Domain::for_address(addr))?;
        if let Net::Ns(ns) = self {
            // Counted before connect() sends its SYN (so it is never taken for the student's),
            // and only once a socket exists to send one.
            ns.own_connects.fetch_add(1, Ordering::SeqCst);
        }
        // A non-blocking connect() sends the SYN and returns; the handshake ends when the
        // socket becomes writable (what tokio's own connect does, with the moment exposed).
        match s.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        sent();
        let stream = TcpStream::from_std(s.into())?;
        stream.writable().await?;
        match stream.take_error()? {
            Some(e) => Err(e),
            None => Ok(stream),
        }
    }

    /// A listener on 127.0.0.1 and a port the kernel picks. Call inside the runtime. Inside a
    /// namespace it listens on every address of the namespace (its loopback only), IPv4 and
    /// IPv6 at once where IPv6 is available, so a client redirected from `[::1]` reaches it too.
    pub fn listen_loopback(&self) -> io::Result<TcpListener> {
        let dual = match self {
            Net::Host(_) => None,
            Net::Ns(_) => self.socket(Domain::IPV6).ok().and_then(|s| {
                s.set_only_v6(false).ok()?;
                s.set_reuse_address(true).ok()?;
                let any = std::net::SocketAddrV6::new(std::net::Ipv6Addr::UNSPECIFIED, 0, 0, 0);
                s.bind(&any.into()).ok()?;
                Some(s)
            }),
        };
        let s = match dual {
            Some(s) => s,
            None => {
                let s = self.socket(Domain::IPV4)?;
                s.set_reuse_address(true)?;
                s.bind(&SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0).into())?;
                s
            }
        };
        s.listen(1024)?;
        TcpListener::from_std(s.into())
    }

    /// Redirects every TCP connection a student program opens in this network to a port other
    /// than `port` to `port` (see [`super::nat`]). Only inside a namespace: on the host it is
    /// `Unsupported`.
    pub fn redirect_tcp_to(&self, port: u16) -> io::Result<()> {
        match self {
            Net::Host(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the host's network is shared with the rest of the machine",
            )),
            Net::Ns(ns) => ns.run(move || super::nat::redirect_tcp_to(port))?,
        }
    }

    /// Starts recording the connection requests sent in this network (see [`super::dials`]).
    /// Only inside a namespace: the host's network carries others' connections too.
    pub fn watch_dials(&self) -> io::Result<super::dials::DialWatch> {
        match self {
            Net::Host(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the host's network is shared with the rest of the machine",
            )),
            Net::Ns(ns) => ns.run(super::dials::DialWatch::new)?,
        }
    }

    /// A port on 127.0.0.1 where connections are refused (see [`RefusedPort`]).
    pub fn refused_port(&self) -> io::Result<RefusedPort> {
        RefusedPort::with_socket(self.socket(Domain::IPV4)?)
    }

    /// A port for a student server. On the host it is leased from `pool`; in a namespace the
    /// first free port from a position derived from `key` (so a scenario gets the same port
    /// every time).
    pub fn reserve_port(&self, pool: &Arc<PortPool>, key: u64) -> Result<Port, NoFreePort> {
        match self {
            Net::Host(_) => pool.reserve().map(|l| Port {
                port: l.port,
                _lease: Some(l),
            }),
            Net::Ns(ns) => {
                let span = u64::from(ports::RANGE_END - ports::RANGE_START);
                let start = ports::RANGE_START + (key % span) as u16;
                let found = ns
                    .run(move || {
                        (0..span as u16)
                            .map(|i| {
                                let p = start + i;
                                if p >= ports::RANGE_END {
                                    p - (ports::RANGE_END - ports::RANGE_START)
                                } else {
                                    p
                                }
                            })
                            .find(|p| ports::is_free(*p))
                    })
                    .ok()
                    .flatten();
                found
                    .map(|port| Port { port, _lease: None })
                    .ok_or(NoFreePort)
            }
        }
    }
}

/// The value of the `Tcp:` counter `name` in the text of `/proc/net/snmp` (a header line of
/// names followed by a line of values).
fn tcp_counter(snmp: &str, name: &str) -> Option<u64> {
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next()?, tcp.next()?);
    let at = names.split_whitespace().position(|n| n == name)?;
    values.split_whitespace().nth(at)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tcp_counters() {
        let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\nTcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens\nTcp: 1 200 120000 -1 7 3\nUdp: InDatagrams\nUdp: 0\n";
        assert_eq!(tcp_counter(snmp, "ActiveOpens"), Some(7));
        assert_eq!(tcp_counter(snmp, "PassiveOpens"), Some(3));
        assert_eq!(tcp_counter(snmp, "Nope"), None);
        assert_eq!(tcp_counter("", "ActiveOpens"), None);
    }

    #[test]
    fn a_namespace_error_names_the_step_its_cause_and_what_is_missing() {
        let e = NamespaceError {
            step: NsError::Unshare(nix::errno::Errno::EPERM),
            lacks: NamespaceLack::SysAdmin,
        };
        assert_eq!(
            crate::error_chain::chain(&e),
            "cannot create a network namespace (unshare(CLONE_NEWNET): EPERM: Operation not permitted): root without CAP_SYS_ADMIN (docker run --cap-add SYS_ADMIN)"
        );
        // As `NetNs::new` gives it: an io::Error of the cause's kind, saying the step.
        let io = io::Error::from(NsError::Loopback(io::Error::from(
            io::ErrorKind::PermissionDenied,
        )));
        assert_eq!(io.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(
            crate::error_chain::chain(&io),
            "bringing its loopback up: permission denied"
        );
        let io = io::Error::from(NsError::Handle(io::Error::from(io::ErrorKind::NotFound)));
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn host_mode_needs_nothing() {
        assert!(matches!(IsolationMode::Host.resolve(), Ok(Isolation::Host)));
        assert_eq!(Isolation::Netns.as_str(), "netns");
    }

    #[tokio::test]
    async fn namespace_has_its_own_loopback() {
        let Ok(ns) = NetNs::new() else {
            crate::test_skips::skipped(
                "",
                "network namespaces are not available here (needs root)",
            );
            return;
        };
        let net = Net::Ns(ns);
        // A listener on the host is invisible from inside the namespace.
        let host = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host_port = host.local_addr().unwrap().port();
        let err = net
            .connect(SocketAddr::from((Ipv4Addr::LOCALHOST, host_port)))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        // Inside, loopback works: listen, connect, accept.
        let l = net.listen_loopback().unwrap();
        let addr = l.local_addr().unwrap();
        let (c, a) = tokio::join!(net.connect(addr), l.accept());
        assert!(c.is_ok() && a.is_ok());
        // ... and the namespace's /proc table shows the listener, the host's does not.
        let inside = net.listeners();
        assert!(
            net.diag().is_some(),
            "netlink diagnostics work in a namespace"
        );
        assert!(inside.iter().any(|x| x.addr.port() == addr.port()));
        assert!(!inside.iter().any(|x| x.addr.port() == host_port));
        // A refused port refuses inside the namespace too.
        let r = net.refused_port().unwrap();
        let err = net
            .connect(SocketAddr::from((Ipv4Addr::LOCALHOST, r.port)))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        // The grader's own connections are not counted as the student's attempts; another
        // socket's refused attempt is.
        assert_eq!(net.connect_attempts(), Some(0));
        let other = ns_socket(&net);
        let _ = other.connect(&SocketAddr::from((Ipv4Addr::LOCALHOST, r.port)).into());
        assert_eq!(net.connect_attempts(), Some(1));
        assert_eq!(Net::new(Isolation::Host).unwrap().connect_attempts(), None);
        // Any port of the range is free in a fresh namespace, even one the host uses.
        let pool = PortPool::new(1);
        let p = net.reserve_port(&pool, u64::from(host_port - ports::RANGE_START));
        assert!(p.is_ok());
    }

    #[tokio::test]
    async fn redirect_reaches_the_listener_and_keeps_the_dialled_port() {
        let Ok(ns) = NetNs::new() else {
            crate::test_skips::skipped(
                "",
                "network namespaces are not available here (they need root)",
            );
            return;
        };
        let net = Net::Ns(ns);
        let l = net.listen_loopback().unwrap();
        let port = l.local_addr().unwrap().port();
        if let Err(e) = net.redirect_tcp_to(port) {
            crate::test_skips::skipped("", &format!("nf_tables NAT is not available here ({e})"));
            return;
        }
        let v4: SocketAddr = "127.0.0.1:12345".parse().unwrap();
        let v6: SocketAddr = "[::1]:5000".parse().unwrap();
        for dialled in [v4, v6] {
            // A student's socket in the namespace dials a port nobody listens on ...
            let s = net_socket(&net, Domain::for_address(dialled));
            s.connect(&dialled.into()).unwrap();
            // ... and reaches the grader's listener, which learns where it was going.
            let (accepted, _) = l.accept().await.unwrap();
            let local = accepted.local_addr().unwrap();
            let original = crate::net::nat::original_destination(&accepted, local).unwrap();
            assert_eq!(original.port(), dialled.port(), "{dialled}");
        }
        // The listener's own port is left alone: no original destination differs.
        let s = net_socket(&net, Domain::IPV4);
        s.connect(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)).into())
            .unwrap();
        let (accepted, _) = l.accept().await.unwrap();
        let local = accepted.local_addr().unwrap();
        let original = crate::net::nat::original_destination(&accepted, local);
        assert!(original.is_none_or(|o| o.port() == port), "{original:?}");
        // The host cannot redirect.
        let host = Net::new(Isolation::Host).unwrap();
        assert!(host.redirect_tcp_to(port).is_err());
    }

    /// A blocking socket of `domain` created inside the namespace.
    fn net_socket(net: &Net, domain: Domain) -> Socket {
        let s = net.socket(domain).unwrap();
        s.set_nonblocking(false).unwrap();
        s
    }

    /// A blocking socket created inside the namespace, as a student program's would be.
    fn ns_socket(net: &Net) -> Socket {
        let s = net.socket(Domain::IPV4).unwrap();
        s.set_nonblocking(false).unwrap();
        s
    }
}
