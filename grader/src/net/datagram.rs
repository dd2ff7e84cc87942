//! A grader-side UDP socket: sends one datagram per `send_to`, and a reader task that records
//! every datagram received (its sender, its bytes, in arrival order) into an [`Inbox`] and the
//! scenario's transcript.
//!
//! Guarantees: datagram boundaries are kept (each one is recorded whole, up to 64 KiB, the most
//! a UDP datagram can hold); reading never blocks the scenario (it runs on its own task); the
//! inbox is bounded ([`MAX_KEPT`] datagrams, later ones counted, not kept); every arrival wakes
//! the waiters; dropping the socket stops its reader.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::transcript::{Dir, Transcript, printable};

/// Datagrams kept per socket; later ones are counted only.
pub const MAX_KEPT: usize = 10_000;

/// One datagram received.
#[derive(Debug, Clone)]
pub struct Datagram {
    /// The sender's address.
    pub from: SocketAddr,
    /// Its bytes, whole.
    pub bytes: Vec<u8>,
}

impl Datagram {
    /// Its bytes as text (invalid UTF-8 replaced), for matching and messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Everything a socket received, in order, and a counter that wakes waiters on each arrival.
pub struct Inbox {
    list: Mutex<Vec<Datagram>>,
    count: watch::Sender<usize>,
}

impl Inbox {
    fn new() -> Self {
        Self {
            list: Mutex::new(Vec::new()),
            count: watch::channel(0).0,
        }
    }

    fn push(&self, d: Datagram) {
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        if list.len() < MAX_KEPT {
            list.push(d);
        }
        let n = list.len();
        drop(list);
        self.count.send_replace(n);
    }

    /// The datagrams received from index `from` on (clones).
    pub fn since(&self, from: usize) -> Vec<Datagram> {
        let list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        list.get(from..)
            .map(<[Datagram]>::to_vec)
            .unwrap_or_default()
    }

    /// How many datagrams have been kept so far.
    pub fn len(&self) -> usize {
        *self.count.borrow()
    }

    /// Whether nothing has arrived yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A receiver that changes whenever a datagram arrives.
    pub fn subscribe(&self) -> watch::Receiver<usize> {
        self.count.subscribe()
    }
}

/// One grader-side UDP socket.
pub struct DatagramSocket {
    /// Its name in the scenario.
    pub name: String,
    /// Its own address.
    pub local: SocketAddr,
    /// What it received.
    pub inbox: Arc<Inbox>,
    /// Index of the first datagram no `expect_datagram` has taken yet.
    pub cursor: usize,
    /// The sender of the last datagram an `expect_datagram` took (a client scenario answers
    /// there).
    pub peer: Option<SocketAddr>,
    socket: Arc<UdpSocket>,
    reader: JoinHandle<()>,
    transcript: Arc<Transcript>,
}

impl DatagramSocket {
    /// Wraps a bound socket and starts its reader.
    pub fn new(
        name: String,
        socket: UdpSocket,
        transcript: Arc<Transcript>,
    ) -> std::io::Result<Self> {
        let local = socket.local_addr()?;
        let socket = Arc::new(socket);
        let inbox = Arc::new(Inbox::new());
        let (s, i, t, who) = (
            socket.clone(),
            inbox.clone(),
            transcript.clone(),
            name.clone(),
        );
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            loop {
                match s.recv_from(&mut buf).await {
                    Ok((n, from)) => {
                        t.push(&who, Dir::Received, describe(from, &buf[..n], "from"));
                        i.push(Datagram {
                            from,
                            bytes: buf[..n].to_vec(),
                        });
                    }
                    // An ICMP "port unreachable" for an earlier send shows up as an error on the
                    // next receive: note it and go on.
                    Err(e) => t.push(&who, Dir::Note, format!("receive error: {e}")),
                }
            }
        });
        Ok(Self {
            name,
            local,
            inbox,
            cursor: 0,
            peer: None,
            socket,
            reader,
            transcript,
        })
    }

    /// Sends `bytes` to `to` as one datagram.
    pub async fn send_to(&self, bytes: &[u8], to: SocketAddr) -> std::io::Result<()> {
        self.transcript
            .push(&self.name, Dir::Sent, describe(to, bytes, "to"));
        let n = self.socket.send_to(bytes, to).await?;
        if n != bytes.len() {
            return Err(std::io::Error::other(format!(
                "only {n} of {} bytes were sent",
                bytes.len()
            )));
        }
        Ok(())
    }
}

impl Drop for DatagramSocket {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A transcript line for a datagram: `[1024 bytes from 127.0.0.1:5000] text`.
fn describe(addr: SocketAddr, bytes: &[u8], dir: &str) -> String {
    format!("[{} bytes {dir} {addr}] {}", bytes.len(), printable(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_each_datagram_whole_with_its_sender() {
        let t = Arc::new(Transcript::new());
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let d = DatagramSocket::new("a".into(), sock, t.clone()).unwrap();
        let other = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let big = vec![b'x'; 2000];
        other.send_to(b"one", d.local).await.unwrap();
        other.send_to(&big, d.local).await.unwrap();
        let mut rx = d.inbox.subscribe();
        tokio::time::timeout(std::time::Duration::from_secs(5), rx.wait_for(|n| *n >= 2))
            .await
            .unwrap()
            .unwrap();
        let got = d.inbox.since(0);
        assert_eq!(got[0].bytes, b"one");
        assert_eq!(got[1].bytes.len(), 2000);
        assert_eq!(got[0].from, other.local_addr().unwrap());
        assert_eq!(d.inbox.since(1).len(), 1);
        let lines = t.excerpt(10);
        assert!(lines[0].contains("[3 bytes from 127.0.0.1:"), "{lines:?}");
    }
}
