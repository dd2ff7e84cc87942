//! Redirecting a student client's hard-coded port to the grader's listener, inside a scenario's
//! network namespace, and learning which port the client actually dialled.
//!
//! [`redirect_tcp_to`] programs the kernel's nf_tables over netlink (`NETLINK_NETFILTER`, one
//! atomic batch, the messages `nft` itself sends): a table `grader` of the `inet` family (IPv4
//! and IPv6) with a `nat` chain on the output hook, and one rule `meta l4proto tcp tcp dport !=
//! PORT redirect to :PORT`. It must be called on a thread inside the namespace (see
//! [`super::netns::NetNs::run`]); the rule lives and dies with the namespace and never touches
//! the host's tables. [`original_destination`] reads the address a redirected connection was
//! dialled to (`SO_ORIGINAL_DST` / `IP6T_SO_ORIGINAL_DST`, kept by connection tracking).
//!
//! Guarantees: either the whole rule is in place or nothing is (the batch is one transaction),
//! and a kernel without nf_tables NAT is reported as an error, never a panic.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use netlink_packet_core::{
    DefaultNla, Emitable, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_netfilter::nftables::{
    ChainAttribute, Cmp, DataAttribute, Expressions, Hook, Immediate, InetHookNumber, Meta,
    MetaKey, NfTablesMessage, Operator, Payload, Register, RuleAttribute, RuleMessage,
    TableAttribute, TableMessage,
};
use netlink_packet_netfilter::nftables::{ChainMessage, ExpressionAttribute, ListAttribute};
use netlink_packet_netfilter::none::ControlMessage;
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, NetfilterProtoFamily};
use netlink_sys::{Socket, SocketAddr as NlAddr, protocols::NETLINK_NETFILTER};
use nix::libc;

/// The nf_tables subsystem of nfnetlink (`NFNL_SUBSYS_NFTABLES`).
const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// `NFT_META_L4PROTO`: the transport protocol of a packet.
const META_L4PROTO: u32 = 16;
/// `NFT_PAYLOAD_TRANSPORT_HEADER`.
const PAYLOAD_TRANSPORT: u32 = 2;
/// `NFTA_REDIR_REG_PROTO_MIN`: the register holding the port to redirect to.
const REDIR_REG_PROTO_MIN: u16 = 1;
/// `NFT_REG_1`, the register the rule loads values into.
const REG_1: u32 = 1;
/// `NF_IP_PRI_NAT_DST`: where destination NAT runs on the output hook.
const PRIORITY_DSTNAT: i32 = -100;
/// `SO_ORIGINAL_DST` (`SOL_IP`) and `IP6T_SO_ORIGINAL_DST` (`SOL_IPV6`) share this number.
const SO_ORIGINAL_DST: libc::c_int = 80;

const TABLE: &str = "grader";
const CHAIN: &str = "redirect";

/// Redirects every TCP connection opened in the calling thread's network namespace to a port
/// other than `port` to `port` on the loopback address (127.0.0.1, or ::1 for IPv6). Call it on
/// a thread inside the namespace; the error says why nf_tables refused (no NAT support, no
/// CAP_NET_ADMIN).
pub fn redirect_tcp_to(port: u16) -> io::Result<()> {
    let family = NetfilterProtoFamily::Inet;
    let port_be = port.to_be_bytes().to_vec();
    let expressions: Vec<ListAttribute<ExpressionAttribute>> = vec![
        // meta l4proto tcp
        Expressions::Meta(vec![
            Meta::Key(MetaKey::Other(META_L4PROTO)),
            Meta::DestinationRegister(Register::Reg1),
        ])
        .into(),
        Expressions::Cmp(vec![
            Cmp::SourceRegister(Register::Reg1),
            Cmp::Op(Operator::Equal),
            Cmp::Data(DataAttribute::Value(vec![libc::IPPROTO_TCP as u8])),
        ])
        .into(),
        // tcp dport != port
        Expressions::Payload(vec![
            Payload::DestinationRegister(Register::Reg1),
            Payload::Base(PAYLOAD_TRANSPORT),
            Payload::Offset(2),
            Payload::Len(2),
        ])
        .into(),
        Expressions::Cmp(vec![
            Cmp::SourceRegister(Register::Reg1),
            Cmp::Op(Operator::NotEqual),
            Cmp::Data(DataAttribute::Value(port_be.clone())),
        ])
        .into(),
        // redirect to :port
        Expressions::Immediate(vec![
            Immediate::DestinationRegister(Register::Reg1),
            Immediate::Data(DataAttribute::Value(port_be)),
        ])
        .into(),
        Expressions::Other {
            expression_type: "redir".into(),
            attributes: vec![DefaultNla::new(
                REDIR_REG_PROTO_MIN,
                REG_1.to_be_bytes().to_vec(),
            )],
        }
        .into(),
    ];
    let table = NfTablesMessage::NewTable(TableMessage {
        attributes: vec![TableAttribute::Name(TABLE.into())],
    });
    let chain = NfTablesMessage::NewChain(ChainMessage {
        attributes: vec![
            ChainAttribute::Table(TABLE.into()),
            ChainAttribute::Name(CHAIN.into()),
            ChainAttribute::Type("nat".into()),
            ChainAttribute::Hook(vec![
                Hook::Number(InetHookNumber::LocalOut.into()),
                Hook::Priority(PRIORITY_DSTNAT as u32),
            ]),
        ],
    });
    let rule = NfTablesMessage::NewRule(RuleMessage {
        attributes: vec![
            RuleAttribute::Table(TABLE.into()),
            RuleAttribute::Chain(CHAIN.into()),
            RuleAttribute::Expressions(expressions),
        ],
    });
    let control = |m: ControlMessage| {
        NetfilterMessage::new(
            NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, NFNL_SUBSYS_NFTABLES),
            m,
        )
    };
    let object = |m: NfTablesMessage| NetfilterMessage::new(NetfilterHeader::new(family, 0, 0), m);
    let acked = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK;
    let batch = [
        (control(ControlMessage::BatchBegin), NLM_F_REQUEST),
        (object(table), acked),
        (object(chain), acked),
        (object(rule), acked | NLM_F_APPEND),
        (control(ControlMessage::BatchEnd), NLM_F_REQUEST),
    ];
    let mut bytes = Vec::new();
    for (seq, (inner, flags)) in batch.into_iter().enumerate() {
        let mut msg = NetlinkMessage::from(inner);
        msg.header.flags = flags;
        msg.header.sequence_number = seq as u32 + 1;
        msg.finalize();
        let start = bytes.len();
        bytes.resize(start + msg.buffer_len(), 0);
        msg.emit(&mut bytes[start..]);
    }

    let mut socket = Socket::new(NETLINK_NETFILTER)?;
    socket.bind_auto()?;
    socket.connect(&NlAddr::new(0, 0))?;
    socket.send(&bytes, 0)?;
    // The kernel runs the batch inside sendmsg: its answers are queued when send returns. One
    // acknowledgment per object, or an error for the first that failed (the batch is then
    // undone as a whole).
    socket.set_non_blocking(true)?;
    let mut acks = 0;
    while acks < 3 {
        let (buf, _) = match socket.recv_from_full() {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::other(
                    "nf_tables did not acknowledge the redirect rule",
                ));
            }
            Err(e) => return Err(e),
        };
        let mut at = 0;
        while at < buf.len() {
            let msg = NetlinkMessage::<NetfilterMessage>::deserialize(&buf[at..])
                .map_err(|e| io::Error::other(format!("unreadable nf_tables answer: {e}")))?;
            let len = msg.header.length as usize;
            if let NetlinkPayload::Error(e) = &msg.payload {
                match e.code {
                    None => acks += 1,
                    Some(code) => {
                        return Err(io::Error::from_raw_os_error(-code.get()));
                    }
                }
            }
            if len == 0 {
                break;
            }
            at += len.next_multiple_of(4);
        }
    }
    Ok(())
}

/// The address a connection accepted on `socket` was dialled to before a redirect, as
/// connection tracking kept it; `None` when it was not redirected or the kernel does not say.
pub fn original_destination(socket: &impl AsRawFd, local: SocketAddr) -> Option<SocketAddr> {
    let fd = socket.as_raw_fd();
    // A v4 connection accepted by a dual-stack listener is a v4-mapped IPv6 socket: its
    // original destination is asked for at the IPv4 level.
    let v4 = match local {
        SocketAddr::V4(_) => true,
        SocketAddr::V6(a) => a.ip().to_ipv4_mapped().is_some(),
    };
    if v4 {
        // SAFETY: sockaddr_in is plain old data; the kernel writes at most `len` bytes.
        let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: getsockopt writes into `sa`, which we own and whose size we pass.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_IP,
                SO_ORIGINAL_DST,
                (&raw mut sa).cast(),
                &mut len,
            )
        };
        (r == 0).then(|| {
            SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)),
                u16::from_be(sa.sin_port),
            ))
        })
    } else {
        // SAFETY: as above, for sockaddr_in6.
        let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        // SAFETY: getsockopt writes into `sa`, which we own and whose size we pass.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_IPV6,
                SO_ORIGINAL_DST,
                (&raw mut sa).cast(),
                &mut len,
            )
        };
        (r == 0).then(|| {
            SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sa.sin6_addr.s6_addr),
                u16::from_be(sa.sin6_port),
                0,
                0,
            ))
        })
    }
}
