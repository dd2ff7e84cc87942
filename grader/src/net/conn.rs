//! A grader-side TCP connection: writes one logical message per `send`, and a reader task that
//! records everything received into a [`Stream`] and the scenario's transcript.
//!
//! Guarantees: reading never blocks the scenario (it runs on its own task, so a student that
//! writes megabytes cannot stall the grader); `close` sends FIN and keeps reading until the peer
//! closes its end too (so a scenario can wait for the student to notice), `abort` sends RST
//! (SO_LINGER 0, never preceded by a FIN) and stops reading; dropping a connection stops its reader.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::task::JoinHandle;

use crate::stream::{End, Stream};
use crate::transcript::{Dir, Transcript};

/// One grader-side connection.
pub struct Conn {
    /// Its name in the scenario.
    pub name: String,
    /// What the peer sent.
    pub stream: Arc<Stream>,
    /// Our end's address.
    pub local: Option<SocketAddr>,
    /// The student's end's address.
    pub peer: Option<SocketAddr>,
    /// Every byte the grader sent on it, up to [`crate::stream::MATCH_CAP`] (what an
    /// `expect_bytes` with `echo = true` compares the peer's bytes with; the stream's raw view
    /// has the same cap, so past it both sides are cut at the same byte).
    pub sent: Vec<u8>,
    /// How many bytes of `sent` have already come back as an echo.
    pub echoed: usize,
    /// HTTP responses read on it by `expect_http` that kept the connection open (no
    /// `Connection: close`), for the message when the server then closes it unannounced.
    pub http_kept_open: u32,
    write: Option<OwnedWriteHalf>,
    reader: JoinHandle<()>,
    /// The reader task has been awaited (a finished handle must not be polled again).
    reaped: bool,
    transcript: Arc<Transcript>,
}

impl Conn {
    /// Wraps a connected socket and starts its reader.
    pub fn new(name: String, socket: TcpStream, transcript: Arc<Transcript>) -> Self {
        let _ = socket.set_nodelay(true);
        let (local, peer) = (socket.local_addr().ok(), socket.peer_addr().ok());
        let (mut read, write) = socket.into_split();
        let stream = Arc::new(Stream::keeping_raw());
        let (s, t, who) = (stream.clone(), transcript.clone(), name.clone());
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match read.read(&mut buf).await {
                    Ok(0) => {
                        t.push(&who, Dir::Closed, "closed by peer (EOF)");
                        break s.finish(End::Eof);
                    }
                    Ok(n) => {
                        t.bytes(&who, Dir::Received, &buf[..n]);
                        s.push(&buf[..n]);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                        t.push(&who, Dir::Closed, "reset by peer");
                        break s.finish(End::Reset);
                    }
                    Err(e) => {
                        t.push(&who, Dir::Closed, format!("read error: {e}"));
                        break s.finish(End::Error(e.to_string()));
                    }
                }
            }
        });
        Self {
            name,
            stream,
            local,
            peer,
            sent: Vec::new(),
            echoed: 0,
            http_kept_open: 0,
            write: Some(write),
            reader,
            reaped: false,
            transcript,
        }
    }

    /// Connects to `addr` in the network `net` (the host's or a scenario's namespace);
    /// `sent` is called as soon as the connection request has left (see `Net::connect_announced`).
    pub async fn connect(
        name: String,
        addr: SocketAddr,
        net: &super::netns::Net,
        transcript: Arc<Transcript>,
        sent: impl FnOnce(),
    ) -> std::io::Result<Self> {
        let socket = net.connect_announced(addr, sent).await?;
        transcript.push(&name, Dir::Note, format!("connected to {addr}"));
        Ok(Self::new(name, socket, transcript))
    }

    /// Writes `bytes` with one write call (one logical message).
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let w = self.write.as_mut().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "connection already closed",
            )
        })?;
        self.transcript.bytes(&self.name, Dir::Sent, bytes);
        let room = crate::stream::MATCH_CAP.saturating_sub(self.sent.len());
        self.sent.extend_from_slice(&bytes[..bytes.len().min(room)]);
        w.write_all(bytes).await?;
        w.flush().await
    }

    /// Closes gracefully: FIN. Reading goes on until the peer closes its end as well.
    pub async fn close(&mut self) {
        if let Some(mut w) = self.write.take() {
            let _ = w.shutdown().await;
            self.transcript
                .push(&self.name, Dir::Closed, "closed by grader (FIN)");
        }
    }

    /// Resets the connection (RST), as a crashed client would. When this returns the RST has
    /// been sent: the peer never sees a FIN first.
    pub async fn abort(&mut self) {
        let reset = self.write.take().map(|w| {
            // A zero linger makes the kernel answer the close with RST instead of FIN. Dropping
            // the write half would shut it down (a FIN) first; `forget` leaves the socket to be
            // closed when the read half goes too.
            let _ = AsRef::<TcpStream>::as_ref(&w).set_zero_linger();
            w.forget();
        });
        // The socket is closed when the reader task has dropped the read half.
        if !self.reaped {
            self.reader.abort();
            let _ = (&mut self.reader).await;
            self.reaped = true;
        }
        if reset.is_some() {
            self.transcript
                .push(&self.name, Dir::Closed, "reset by grader (RST)");
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
