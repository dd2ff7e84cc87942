//! The kernel's socket tables of one network: which TCP sockets listen (with their accept queue
//! and `listen()` backlog), how many bytes are still queued on a connection, and which UDP
//! sockets are bound (a UDP server is ready once its socket is bound: there is no `listen()`).
//! Read through `NETLINK_SOCK_DIAG` (what `ss` uses), with the text tables in
//! `/proc/<pid>/net/{tcp,tcp6,udp,udp6}` as the fallback where netlink is unavailable (they show
//! no backlog).
//!
//! Why not just `/proc/net/tcp`: reading it walks the whole established-connection hash of the
//! machine (262,144 buckets on a 24 GiB machine), about 4 ms of kernel time per file per read,
//! and readiness checks read it every few milliseconds in every running scenario. A netlink dump
//! of listening sockets only skips that hash (about 50 µs for both families), and the bytes
//! queued on one connection are an exact lookup by its address pair.
//!
//! Guarantees: read-only; the netlink socket is created inside the network it reads (a namespace
//! thread creates it for a namespace) and is close-on-exec; an answer that does not name the
//! socket asked for (the kernel falls back to a listener when a connection is gone) counts as
//! "not found", never as someone else's queue.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Mutex;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP};
use netlink_packet_sock_diag::inet::{
    ExtensionFlags, InetRequest, InetResponse, SocketId, StateFlags,
};
use netlink_sys::Socket;
use netlink_sys::protocols::NETLINK_SOCK_DIAG;

/// A TCP socket in LISTEN state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Local address it is bound to.
    pub addr: SocketAddr,
    /// Socket inode (matches `socket:[inode]` in `/proc/<pid>/fd`).
    pub inode: u64,
    /// Connections waiting in its accept queue (handshake done, not yet `accept()`ed).
    pub queued: u32,
    /// The longest accept queue it allows (the `listen()` backlog as the kernel applied it);
    /// `None` from the text tables, which do not show it.
    pub backlog: Option<u32>,
}

/// How long a netlink answer may take before the request counts as failed (the kernel answers
/// inside the send call; this only guards against a kernel that never does).
const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);
/// Receive buffer for one batch of a dump (the kernel fills up to a page per message batch).
const RECV_BUFFER: usize = 32 * 1024;

/// A `NETLINK_SOCK_DIAG` socket bound to the network it was created in.
#[derive(Debug)]
pub struct SockDiag {
    socket: Mutex<Socket>,
}

impl SockDiag {
    /// A diagnostics socket for the network namespace of the calling thread.
    pub fn new() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
        socket.bind_auto()?;
        socket2::SockRef::from(&socket).set_read_timeout(Some(ANSWER_TIMEOUT))?;
        Ok(Self {
            socket: Mutex::new(socket),
        })
    }

    /// Every listening TCP socket (IPv4 and IPv6) of the network.
    pub fn listeners(&self) -> io::Result<Vec<Listener>> {
        let mut out = Vec::new();
        for family in [AF_INET, AF_INET6] {
            let request = InetRequest {
                family,
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::empty(),
                states: StateFlags::LISTEN,
                socket_id: empty_id(family),
            };
            for r in self.ask(request, true)? {
                let id = &r.header.socket_id;
                // For a listening socket the kernel reports the accept queue's length as the
                // receive queue and its limit as the send queue.
                out.push(Listener {
                    addr: SocketAddr::new(id.source_address, id.source_port),
                    inode: u64::from(r.header.inode),
                    queued: r.header.recv_queue,
                    backlog: Some(r.header.send_queue),
                });
            }
        }
        Ok(out)
    }

    /// Every bound UDP socket (IPv4 and IPv6) of the network, connected or not, as a
    /// [`Listener`] whose `queued` is the bytes waiting in its receive queue (no backlog).
    pub fn udp_sockets(&self) -> io::Result<Vec<Listener>> {
        let mut out = Vec::new();
        for family in [AF_INET, AF_INET6] {
            let request = InetRequest {
                family,
                protocol: IPPROTO_UDP,
                extensions: ExtensionFlags::empty(),
                // An unconnected UDP socket is in the "close" state, a connected one
                // "established": both are bound.
                states: StateFlags::all(),
                socket_id: empty_id(family),
            };
            for r in self.ask(request, true)? {
                let id = &r.header.socket_id;
                out.push(Listener {
                    addr: SocketAddr::new(id.source_address, id.source_port),
                    inode: u64::from(r.header.inode),
                    queued: r.header.recv_queue,
                    backlog: None,
                });
            }
        }
        Ok(out)
    }

    /// Bytes the peer socket `theirs` has not read yet of what our socket `ours` sent: the
    /// larger of our send queue (sent, not yet acknowledged) and the peer's receive queue
    /// (arrived, not yet read). Not their sum: bytes that arrived before the peer's (possibly
    /// delayed) acknowledgment sit in both queues at once. Zero exactly when both are empty.
    /// `Ok(None)` when neither socket exists any more.
    pub fn unread_bytes(&self, ours: SocketAddr, theirs: SocketAddr) -> io::Result<Option<u64>> {
        let sent = self.queue(ours, theirs)?.map(|(_, send)| send);
        let unread = self.queue(theirs, ours)?.map(|(recv, _)| recv);
        Ok(match (sent, unread) {
            (None, None) => None,
            (a, b) => Some(u64::from(a.unwrap_or(0).max(b.unwrap_or(0)))),
        })
    }

    /// (receive queue, send queue) of the connected socket whose local address is `local` and
    /// whose peer is `remote`, if it exists.
    fn queue(&self, local: SocketAddr, remote: SocketAddr) -> io::Result<Option<(u32, u32)>> {
        // A dual-stack socket holds an IPv4 connection under IPv4-mapped addresses; the kernel
        // finds it by its IPv4 addresses.
        let (local, remote) = (canonical_addr(local), canonical_addr(remote));
        let family = if local.is_ipv4() && remote.is_ipv4() {
            AF_INET
        } else {
            AF_INET6
        };
        let (local_ip, remote_ip) = match family {
            AF_INET => (local.ip(), remote.ip()),
            _ => (v6(local.ip()), v6(remote.ip())),
        };
        let request = InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::all(),
            socket_id: SocketId {
                source_port: local.port(),
                destination_port: remote.port(),
                source_address: local_ip,
                destination_address: remote_ip,
                interface_id: 0,
                // All 0xff: "any socket with this address pair".
                cookie: [0xff; 8],
            },
        };
        let answers = match self.ask(request, false) {
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => return Ok(None),
            other => other?,
        };
        Ok(answers
            .into_iter()
            .find(|r| {
                let id = &r.header.socket_id;
                same(SocketAddr::new(id.source_address, id.source_port), local)
                    && same(
                        SocketAddr::new(id.destination_address, id.destination_port),
                        remote,
                    )
            })
            .map(|r| (r.header.recv_queue, r.header.send_queue)))
    }

    /// Sends one request and collects the sockets of the answer (all batches of a dump).
    fn ask(&self, request: InetRequest, dump: bool) -> io::Result<Vec<InetResponse>> {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { 0 };
        let mut packet = NetlinkMessage::new(header, SockDiagMessage::InetRequest(request).into());
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        let socket = self.socket.lock().unwrap_or_else(|e| e.into_inner());
        socket.send(&buf, 0)?;
        let mut out = Vec::new();
        let mut rx = vec![0u8; RECV_BUFFER];
        loop {
            let size = socket.recv(&mut &mut rx[..], 0)?;
            let mut offset = 0;
            while offset < size {
                let message = <NetlinkMessage<SockDiagMessage>>::deserialize(&rx[offset..size])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let length = message.header.length as usize;
                match message.payload {
                    NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                        out.push(*r);
                        if !dump {
                            return Ok(out);
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                    _ => {}
                }
                if length == 0 {
                    break;
                }
                offset += length;
            }
        }
    }
}

fn empty_id(family: u8) -> SocketId {
    if family == AF_INET {
        SocketId::new_v4()
    } else {
        SocketId::new_v6()
    }
}

fn v6(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
        v6 => v6,
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn canonical_addr(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(canonical(a.ip()), a.port())
}

/// The same endpoint, an IPv4-mapped IPv6 address being its IPv4 address.
fn same(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && canonical(a.ip()) == canonical(b.ip())
}

/// The fallback: the text tables of a `/proc/.../net` folder.
pub mod proc {
    use super::*;

    /// All listening TCP sockets in the tables of `net_dir` (e.g. `/proc/self/net`).
    pub fn listeners(net_dir: &Path) -> Vec<Listener> {
        // State 0A is LISTEN.
        sockets(net_dir, ["tcp", "tcp6"], |state, _| state == "0A")
    }

    /// All bound UDP sockets in the tables of `net_dir` (like [`SockDiag::udp_sockets`]).
    pub fn udp_sockets(net_dir: &Path) -> Vec<Listener> {
        sockets(net_dir, ["udp", "udp6"], |_, addr| addr.port() != 0)
    }

    /// The sockets of the IPv4 and IPv6 tables `files` of `net_dir` that `keep` (given the
    /// state column and the local address) accepts, with their receive queue as `queued` (for
    /// a listener: its accept queue's length).
    fn sockets(
        net_dir: &Path,
        files: [&str; 2],
        keep: impl Fn(&str, SocketAddr) -> bool,
    ) -> Vec<Listener> {
        let mut out = Vec::new();
        for (file, is_v6) in [(files[0], false), (files[1], true)] {
            let Ok(text) = fs::read_to_string(net_dir.join(file)) else {
                continue;
            };
            for line in text.lines().skip(1) {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 10 {
                    continue;
                }
                let (Some(addr), Ok(inode)) = (parse_addr(f[1], is_v6), f[9].parse::<u64>()) else {
                    continue;
                };
                if !keep(f[3], addr) {
                    continue;
                }
                // tx_queue:rx_queue.
                let queued = f[4]
                    .split_once(':')
                    .and_then(|(_, rx)| u32::from_str_radix(rx, 16).ok())
                    .unwrap_or(0);
                out.push(Listener {
                    addr,
                    inode,
                    queued,
                    backlog: None,
                });
            }
        }
        out
    }

    /// Like [`SockDiag::unread_bytes`], from the tables of `net_dir`.
    pub fn unread_bytes(net_dir: &Path, ours: SocketAddr, theirs: SocketAddr) -> Option<u64> {
        let (mut sent, mut unread) = (None, None);
        for (file, is_v6) in [("tcp", false), ("tcp6", true)] {
            let Ok(text) = fs::read_to_string(net_dir.join(file)) else {
                continue;
            };
            for line in text.lines().skip(1) {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 5 {
                    continue;
                }
                let (Some(local), Some(remote)) =
                    (parse_addr(f[1], is_v6), parse_addr(f[2], is_v6))
                else {
                    continue;
                };
                let Some((tx, rx)) = f[4].split_once(':') else {
                    continue;
                };
                let (tx, rx) = (
                    u64::from_str_radix(tx, 16).unwrap_or(0),
                    u64::from_str_radix(rx, 16).unwrap_or(0),
                );
                if same(local, ours) && same(remote, theirs) {
                    sent = Some(tx);
                } else if same(local, theirs) && same(remote, ours) {
                    unread = Some(rx);
                }
            }
        }
        match (sent, unread) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).max(b.unwrap_or(0))),
        }
    }

    pub(super) fn parse_addr(text: &str, is_v6: bool) -> Option<SocketAddr> {
        let (ip, port) = text.split_once(':')?;
        let port = u16::from_str_radix(port, 16).ok()?;
        let ip = if is_v6 {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok()?;
                chunk.copy_from_slice(&word.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        } else {
            let word = u32::from_str_radix(ip, 16).ok()?;
            IpAddr::V4(Ipv4Addr::from(word.to_ne_bytes()))
        };
        Some(SocketAddr::new(ip, port))
    }
}

/// Splits a listener table into the sockets held by a set of socket inodes (a process group's)
/// and the others.
pub fn partition(table: Vec<Listener>, held: &HashSet<u64>) -> (Vec<Listener>, Vec<Listener>) {
    table.into_iter().partition(|l| held.contains(&l.inode))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn parses_kernel_addresses() {
        assert_eq!(
            proc::parse_addr("0100007F:1F90", false),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            proc::parse_addr("00000000000000000000000001000000:0050", true),
            Some("[::1]:80".parse().unwrap())
        );
    }

    #[test]
    fn netlink_and_proc_see_the_same_listener() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let diag = SockDiag::new().unwrap();
        let by_netlink = diag.listeners().unwrap();
        let by_proc = proc::listeners(Path::new("/proc/self/net"));
        let mine = |t: &[Listener]| {
            t.iter()
                .find(|x| x.addr == addr)
                .map(|x| (x.addr, x.inode, x.queued))
        };
        assert!(mine(&by_netlink).is_some(), "{by_netlink:?}");
        assert_eq!(mine(&by_netlink), mine(&by_proc));
        let inode = mine(&by_netlink).map(|m| m.1);
        drop(l);
        // Gone: this socket (by inode). Another test of this process may bind the freed port;
        // another may be forking a child at this moment, which holds a copy of the descriptor
        // until its exec closes it: the socket is gone once that copy is (a deadline, not a
        // sleep).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let after = diag.listeners().unwrap();
            let still = after
                .iter()
                .any(|x| x.addr == addr && Some(x.inode) == inode);
            if !still {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{after:?}");
            std::thread::yield_now();
        }
    }

    #[test]
    fn netlink_and_proc_see_the_same_bound_udp_socket() {
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = u.local_addr().unwrap();
        let diag = SockDiag::new().unwrap();
        let mine = |t: &[Listener]| t.iter().find(|x| x.addr == addr).map(|x| (x.addr, x.inode));
        let by_netlink = diag.udp_sockets().unwrap();
        assert!(mine(&by_netlink).is_some(), "{by_netlink:?}");
        assert_eq!(
            mine(&by_netlink),
            mine(&proc::udp_sockets(Path::new("/proc/self/net")))
        );
        // Not a TCP listener; a datagram waiting shows in its receive queue.
        assert!(mine(&diag.listeners().unwrap()).is_none());
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.send_to(b"hello", addr).unwrap();
        let q = diag.udp_sockets().unwrap();
        assert!(q.iter().any(|x| x.addr == addr && x.queued > 0), "{q:?}");
        drop(u);
        assert!(mine(&diag.udp_sockets().unwrap()).is_none());
    }

    #[test]
    fn shows_a_listeners_backlog_and_accept_queue() {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        s.listen(3).unwrap();
        let addr = s.local_addr().unwrap().as_socket().unwrap();
        let _waiting = TcpStream::connect(addr).unwrap();
        let diag = SockDiag::new().unwrap();
        let l = diag
            .listeners()
            .unwrap()
            .into_iter()
            .find(|l| l.addr == addr)
            .unwrap();
        assert_eq!((l.queued, l.backlog), (1, Some(3)));
    }

    #[test]
    fn counts_unread_bytes_on_both_sides() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut ours = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut theirs, _) = l.accept().unwrap();
        let (a, b) = (ours.local_addr().unwrap(), theirs.local_addr().unwrap());
        let diag = SockDiag::new().unwrap();
        assert_eq!(diag.unread_bytes(a, b).unwrap(), Some(0));
        ours.write_all(b"hello").unwrap();
        // Loopback delivers within the write call: the bytes sit in the peer's receive queue, and
        // in our send queue too until the peer's (possibly delayed) acknowledgment: counted once.
        assert_eq!(diag.unread_bytes(a, b).unwrap(), Some(5));
        assert_eq!(
            proc::unread_bytes(Path::new("/proc/self/net"), a, b),
            Some(5)
        );
        let mut buf = [0u8; 5];
        theirs.read_exact(&mut buf).unwrap();
        assert_eq!(diag.unread_bytes(a, b).unwrap(), Some(0));
        // A pair that never existed is "not found", not the listener's backlog.
        let ghost: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(diag.unread_bytes(ghost, b).unwrap(), None);
    }

    #[test]
    fn finds_a_dual_stack_servers_ipv4_connection() {
        let Ok(l) = TcpListener::bind("[::]:0") else {
            crate::test_skips::skipped("", "no IPv6 here");
            return;
        };
        let port = l.local_addr().unwrap().port();
        let mut ours = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_theirs, _) = l.accept().unwrap();
        let a = ours.local_addr().unwrap();
        let b: SocketAddr = ("127.0.0.1".parse::<IpAddr>().unwrap(), port).into();
        ours.write_all(b"abc").unwrap();
        let diag = SockDiag::new().unwrap();
        assert_eq!(diag.unread_bytes(a, b).unwrap(), Some(3));
    }
}
