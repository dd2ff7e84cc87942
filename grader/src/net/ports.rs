//! Port reservation for student servers.
//!
//! A student server must be told its port before it binds, so the grader cannot let the kernel
//! pick it. A pick-then-bind helper alone is racy (another program may take the port in
//! between), so this pool (1) hands out each port to at most one scenario of this process at a
//! time, (2) walks the range instead of reusing recently freed ports (which may still have
//! TIME_WAIT sockets a student's bind without SO_REUSEADDR would trip over), (3) only hands out a
//! port it could bind itself a moment ago, on all addresses, and (4) stays below the kernel's
//! ephemeral range so outgoing connections never occupy it. If a stranger still takes the port,
//! the engine sees the foreign listener, reports an infrastructure error for that attempt and
//! retries on a new port: never charged to the student.
//!
//! Several grader processes on one machine (parallel CI jobs, a test suite) coordinate through
//! advisory lock files in [`LOCK_DIR`]: a port is handed out only while its lock is held, and the
//! kernel drops the lock if the process dies, so a crashed grader never blocks a port.
//!
//! There is no global state: each grading (or batch of gradings) shares one [`PortPool`].

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};

use nix::fcntl::{Flock, FlockArg};
use socket2::{Domain, Socket, Type};

/// Where grader processes keep their per-port lock files (shared by all of them on a machine,
/// so it does not follow TMPDIR).
pub const LOCK_DIR: &str = "/tmp/grader-port-locks";

/// Lowest port handed out.
pub const RANGE_START: u16 = 20_000;
/// One past the highest port handed out (below Linux's default ephemeral range 32768..60999).
pub const RANGE_END: u16 = 32_000;

/// No port could be reserved.
#[derive(Debug, thiserror::Error)]
#[error("no free TCP port found in {RANGE_START}..{RANGE_END} on this machine")]
pub struct NoFreePort;

/// A pool of ports for one grader process.
#[derive(Debug)]
pub struct PortPool {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    next: u16,
    leased: HashSet<u16>,
}

impl PortPool {
    /// A pool starting at a position derived from `seed`, so parallel grader processes spread
    /// over the range.
    pub fn new(seed: u64) -> Arc<Self> {
        let span = u64::from(RANGE_END - RANGE_START);
        let start = RANGE_START + ((seed ^ u64::from(std::process::id())) % span) as u16;
        Arc::new(Self {
            inner: Mutex::new(Inner {
                next: start,
                leased: HashSet::new(),
            }),
        })
    }

    /// Reserves a port that is free right now. The lease returns it to the pool when dropped.
    pub fn reserve(self: &Arc<Self>) -> Result<PortLease, NoFreePort> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for _ in RANGE_START..RANGE_END {
            let port = inner.next;
            inner.next = if port + 1 >= RANGE_END {
                RANGE_START
            } else {
                port + 1
            };
            if inner.leased.contains(&port) {
                continue;
            }
            let Some(lock) = lock_port(port) else {
                continue;
            };
            if !is_free(port) {
                continue;
            }
            inner.leased.insert(port);
            return Ok(PortLease {
                port,
                pool: self.clone(),
                _lock: lock,
            });
        }
        Err(NoFreePort)
    }
}

/// Takes the machine-wide advisory lock of a port, if no other grader process holds it. Where the
/// lock folder cannot be used, in-process reservation still applies (`Some(None)`).
fn lock_port(port: u16) -> Option<Option<Flock<File>>> {
    let dir = Path::new(LOCK_DIR);
    if std::fs::create_dir_all(dir).is_ok() {
        // Every user's graders share the folder.
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777));
    }
    let path = dir.join(format!("{port}.lock"));
    // A lock file another user's grader made (root's, 0644 after its umask) cannot be opened for
    // writing, but flock needs only an open descriptor: open it for reading then.
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o666)
        .open(&path)
        .or_else(|_| File::open(&path));
    match file {
        Ok(f) => Flock::lock(f, FlockArg::LockExclusiveNonblock)
            .ok()
            .map(Some),
        Err(_) => Some(None),
    }
}

/// Whether a port can be bound on all IPv4 addresses without SO_REUSEADDR (so neither a listener
/// nor a TIME_WAIT socket holds it), for TCP and for UDP (a UDP lab's server binds it as UDP).
pub(crate) fn is_free(port: u16) -> bool {
    TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).is_ok()
        && TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_ok()
        && std::net::UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).is_ok()
}

/// A port reserved for one scenario.
#[derive(Debug)]
pub struct PortLease {
    /// The port.
    pub port: u16,
    pool: Arc<PortPool>,
    _lock: Option<Flock<File>>,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        let mut inner = self.pool.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.leased.remove(&self.port);
    }
}

/// A port where connections are refused for as long as this value lives: a socket bound to it
/// but never listening, so no other program can take the port meanwhile.
pub struct RefusedPort {
    /// The port.
    pub port: u16,
    _socket: Socket,
}

impl RefusedPort {
    /// Binds a fresh port on 127.0.0.1 (of the host's network) without listening.
    pub fn new() -> std::io::Result<Self> {
        Self::with_socket(Socket::new(Domain::IPV4, Type::STREAM, None)?)
    }

    /// Binds `socket` (an IPv4 TCP socket, in whatever network namespace it was created) to a
    /// fresh port on 127.0.0.1 without listening.
    pub fn with_socket(socket: Socket) -> std::io::Result<Self> {
        socket.bind(&SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0).into())?;
        let port = socket
            .local_addr()?
            .as_socket()
            .map(|a| a.port())
            .ok_or_else(|| std::io::Error::other("bound socket has no port"))?;
        Ok(Self {
            port,
            _socket: socket,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_distinct_until_dropped() {
        let pool = PortPool::new(7);
        let a = pool.reserve().unwrap();
        let b = pool.reserve().unwrap();
        assert_ne!(a.port, b.port);
        // Another pool (standing in for another grader process) never gets a held port.
        let other = PortPool::new(7);
        let c = other.reserve().unwrap();
        assert!(c.port != a.port && c.port != b.port);
        assert!((RANGE_START..RANGE_END).contains(&a.port));
    }

    #[test]
    fn refused_port_refuses() {
        let r = RefusedPort::new().unwrap();
        let err = std::net::TcpStream::connect(("127.0.0.1", r.port)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    }
}
