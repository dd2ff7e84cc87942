//! The UDP labs (tasks 21 and 22): an echo server and client, and a small chat over datagrams.
//! No connection, no acknowledgment: every message is one datagram, and a server answers each
//! datagram to the address it came from (which is how it tells its clients apart).
//!
//! * [`echo`]: task 21, the echo server and a client that survives lost datagrams (it waits
//!   [`echo::REPLY_TIMEOUT`] for each answer, says so on a timeout and sends again, at most
//!   [`echo::ATTEMPTS`] times).
//! * [`chat`]: task 22, `JOIN name` / lines / `LEAVE`, relayed by the server as `name: text` to
//!   every other member.
//!
//! The protocols are described for humans in `tasks/PROTOCOL.md` (sections "UDP echo" and "UDP
//! chat"). Guarantees: a datagram is read with a buffer of the largest datagram size, so none is
//! ever cut short; no input from the network makes a program panic or end (a bad datagram is
//! answered or ignored); clients print what they receive on stdout, diagnostics on stderr.

pub mod chat;
pub mod echo;

use std::io;
use std::net::SocketAddr;

use tokio::net::{UdpSocket, lookup_host};

use crate::Error;

/// The largest datagram UDP can carry (and the receive buffer that never cuts one short).
pub const MAX_DATAGRAM: usize = 65_535;

/// Binds the server's socket on `host:port` (the first address the name resolves to that works).
pub async fn bind(host: &str, port: u16) -> Result<UdpSocket, Error> {
    crate::net::bind_first(host, port, |candidate| {
        let socket = std::net::UdpSocket::bind(candidate)?;
        socket.set_nonblocking(true)?;
        UdpSocket::from_std(socket)
    })
    .await
}

/// A client's socket (a port the kernel picks, of the server address's family) and the
/// server's address.
pub async fn client_socket(host: &str, port: u16) -> Result<(UdpSocket, SocketAddr), Error> {
    let addr = format!("{host}:{port}");
    let failed = |source| Error::Connect {
        addr: addr.clone(),
        source,
    };
    let server = lookup_host((host, port))
        .await
        .map_err(failed)?
        .next()
        .ok_or_else(|| {
            failed(io::Error::new(
                io::ErrorKind::NotFound,
                "host name has no address",
            ))
        })?;
    let any: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0"
            .parse()
            .map_err(|_| failed(io::Error::other("bad address")))?
    } else {
        "[::]:0"
            .parse()
            .map_err(|_| failed(io::Error::other("bad address")))?
    };
    let socket = UdpSocket::bind(any).await.map_err(failed)?;
    Ok((socket, server))
}

/// Whether a datagram from `from` comes from `server` (an IPv4 address and its IPv6-mapped
/// form are the same).
pub fn same_peer(from: SocketAddr, server: SocketAddr) -> bool {
    let canon = |a: SocketAddr| match a {
        SocketAddr::V6(v6) => v6
            .ip()
            .to_ipv4_mapped()
            .map_or(a, |v4| SocketAddr::new(v4.into(), v6.port())),
        v4 => v4,
    };
    canon(from) == canon(server)
}
