//! Opening connections: listening, connecting, and the open-file limit.
//!
//! * [`listen`] binds every address the host name resolves to until one works, with
//!   `SO_REUSEADDR` (a restarted server can take its port back at once, even while old
//!   connections linger in TIME_WAIT) and a backlog large enough for a burst of 1000 clients.
//! * [`connect`] tries each resolved address and gives up after [`CONNECT_TIMEOUT`], so a
//!   client always reports an unreachable server quickly, with one readable error.
//! * [`raise_open_file_limit`] lifts the soft limit on open files to the hard limit, because
//!   every connection is a file descriptor and the common default soft limit (1024) is too
//!   low for 1000 simultaneous clients.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream, lookup_host};

use crate::Error;

/// How long a client may spend connecting before it gives up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(2500);

/// How many not-yet-accepted connections the kernel may queue for a server.
const LISTEN_BACKLOG: u32 = 1024;

/// Binds a listening socket on `host:port`.
pub async fn listen(host: &str, port: u16) -> Result<TcpListener, Error> {
    bind_first(host, port, |candidate| {
        let socket = if candidate.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }?;
        socket.set_reuseaddr(true)?;
        socket.bind(candidate)?;
        socket.listen(LISTEN_BACKLOG)
    })
    .await
}

/// The first socket `bind` makes of the addresses `host:port` resolves to (a name may resolve
/// to several, of which only some exist here), or the last error as a `Listen` error.
pub async fn bind_first<T>(
    host: &str,
    port: u16,
    mut bind: impl FnMut(SocketAddr) -> io::Result<T>,
) -> Result<T, Error> {
    let failed = |source| Error::Listen {
        addr: format!("{host}:{port}"),
        source,
    };
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, "host name has no address");
    for candidate in lookup_host((host, port)).await.map_err(failed)? {
        match bind(candidate) {
            Ok(socket) => return Ok(socket),
            Err(error) => last_error = error,
        }
    }
    Err(failed(last_error))
}

/// Connects to `host:port`, trying every address the name resolves to.
pub async fn connect(host: &str, port: u16) -> Result<TcpStream, Error> {
    let attempt = async {
        let mut last_error = io::Error::new(io::ErrorKind::NotFound, "host name has no address");
        for candidate in lookup_host((host, port)).await? {
            match TcpStream::connect(candidate).await {
                Ok(stream) => return Ok(stream),
                Err(error) => last_error = error,
            }
        }
        Err(last_error)
    };

    let outcome = match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(outcome) => outcome,
        Err(_elapsed) => Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")),
    };
    outcome.map_err(|source| Error::Connect {
        addr: format!("{host}:{port}"),
        source,
    })
}

/// Raises the soft limit on open file descriptors to the hard limit.
///
/// Returns the limit now in force. Failing to raise it is not fatal (the server still works,
/// for fewer clients), so callers usually just log the error.
pub fn raise_open_file_limit() -> nix::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};

    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard)
}
