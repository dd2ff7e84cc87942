//! Learning which ports a student's client dialled when its connections cannot be redirected to
//! the grader (a kernel without nf_tables NAT, or `--accept-any-port=false`): a raw TCP socket
//! in the scenario's network namespace sees a copy of every connection request (SYN) sent
//! there, including one refused because nothing listens on its port. Then a failure can say
//! "the client dialled 127.0.0.1:12345, not the assigned port 40213" instead of only "exited
//! without connecting".
//!
//! Guarantees: read-only (a raw socket receives copies; it sends nothing and changes no
//! packet); a kernel filter passes only connection requests (SYN without ACK), so the socket's
//! buffer is not filled by the scenario's traffic; created inside a namespace only, where the
//! namespace holds just the student's program and the grader (never on the host network, whose
//! traffic belongs to others); an error (no `CAP_NET_RAW` in the namespace) means "not known",
//! never a failed scenario.

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, SockFilter, Socket, Type};

// Classic BPF opcodes (linux/filter.h).
const BPF_LD_B_ABS: u16 = 0x30; // A = packet[k] (byte)
const BPF_LD_B_IND: u16 = 0x50; // A = packet[X + k] (byte)
const BPF_LDX_B_MSH: u16 = 0xb1; // X = 4 * (packet[k] & 0xf): the IPv4 header's length
const BPF_ALU_AND_K: u16 = 0x54; // A &= k
const BPF_JEQ_K: u16 = 0x15; // if A == k
const BPF_RET_K: u16 = 0x06; // return k bytes of the packet

/// TCP flags byte offset in the TCP header, and SYN/ACK bits.
const TCP_FLAGS: u32 = 13;
const SYN: u32 = 0x02;
const SYN_ACK: u32 = 0x12;
/// Bytes of a packet kept: an IPv4 header with options plus the TCP ports.
const KEEP: u32 = 64;

/// Raw sockets that record connection requests in one network namespace.
#[derive(Debug)]
pub struct DialWatch {
    v4: Socket,
    v6: Option<Socket>,
}

impl DialWatch {
    /// Starts watching. Call on a thread inside the namespace.
    pub fn new() -> io::Result<Self> {
        // IPv4 raw sockets receive the IP header: skip it by its length.
        let v4 = raw(
            Domain::IPV4,
            &[
                SockFilter::new(BPF_LDX_B_MSH, 0, 0, 0),
                SockFilter::new(BPF_LD_B_IND, 0, 0, TCP_FLAGS),
                SockFilter::new(BPF_ALU_AND_K, 0, 0, SYN_ACK),
                SockFilter::new(BPF_JEQ_K, 0, 1, SYN),
                SockFilter::new(BPF_RET_K, 0, 0, KEEP),
                SockFilter::new(BPF_RET_K, 0, 0, 0),
            ],
        )?;
        // IPv6 raw sockets receive the TCP header only (no IPv6 here is no error).
        let v6 = raw(
            Domain::IPV6,
            &[
                SockFilter::new(BPF_LD_B_ABS, 0, 0, TCP_FLAGS),
                SockFilter::new(BPF_ALU_AND_K, 0, 0, SYN_ACK),
                SockFilter::new(BPF_JEQ_K, 0, 1, SYN),
                SockFilter::new(BPF_RET_K, 0, 0, KEEP),
                SockFilter::new(BPF_RET_K, 0, 0, 0),
            ],
        )
        .ok();
        Ok(Self { v4, v6 })
    }

    /// Every address a connection request was sent to since the watch started (or since the
    /// last call), in order, except `port` (the grader's own listener).
    pub fn dialled(&self, except_port: u16) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        let mut buf = [0u8; KEEP as usize];
        while let Ok(n) = (&self.v4).read(&mut buf) {
            if let Some(addr) = parse_v4(&buf[..n]) {
                out.push(addr);
            }
        }
        if let Some(v6) = &self.v6 {
            while let Ok(n) = (&*v6).read(&mut buf) {
                if let Some(port) = dest_port(&buf[..n]) {
                    // Only loopback is reachable in the namespace.
                    out.push(SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port));
                }
            }
        }
        out.retain(|a| a.port() != except_port);
        out.dedup();
        out
    }
}

/// A non-blocking raw TCP socket of `domain` with `filter` attached.
fn raw(domain: Domain, filter: &[SockFilter]) -> io::Result<Socket> {
    let s = Socket::new(domain, Type::RAW, Some(Protocol::TCP))?;
    s.attach_filter(filter)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// The destination of an IPv4 packet carrying a TCP header.
fn parse_v4(p: &[u8]) -> Option<SocketAddr> {
    let ihl = usize::from(*p.first()? & 0x0f) * 4;
    let dst = Ipv4Addr::new(*p.get(16)?, *p.get(17)?, *p.get(18)?, *p.get(19)?);
    Some(SocketAddr::new(IpAddr::V4(dst), dest_port(p.get(ihl..)?)?))
}

/// The destination port of a TCP header.
fn dest_port(tcp: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*tcp.get(2)?, *tcp.get(3)?]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_destination_of_an_ipv4_syn() {
        let mut p = vec![0u8; 40];
        p[0] = 0x45; // IPv4, 20-byte header
        p[16..20].copy_from_slice(&[127, 0, 0, 1]);
        p[22..24].copy_from_slice(&12345u16.to_be_bytes());
        assert_eq!(parse_v4(&p), Some("127.0.0.1:12345".parse().unwrap()));
        assert_eq!(parse_v4(&p[..21]), None, "a cut packet is no address");
    }
}
