//! Task 21: UDP echo.
//!
//! ```text
//! $ grader reference --task 21 client --host 127.0.0.1 --port 5000
//! hello                      <- typed: sent as one datagram (without the newline)
//! hello                      <- the server's echo
//! again                      <- typed; this datagram is lost
//! timeout: no reply from 127.0.0.1:5000 within 1s (attempt 1 of 3), sending again   (stderr)
//! again
//! ```
//!
//! The server answers every datagram, whatever it holds (empty, binary, up to 65535 bytes), with
//! the same bytes, to the address it came from. The client sends each non-empty line it reads,
//! waits [`REPLY_TIMEOUT`] for the answer, and on a timeout says so and sends again, at most
//! [`ATTEMPTS`] times in all; then it gives up on that line and reads the next. It exits with
//! status 0 at end of input.

use std::time::Duration;

use super::{MAX_DATAGRAM, bind, client_socket, same_peer};
use crate::Error;
use crate::cli::{ClientArgs, ServerArgs};
use crate::console::Console;

/// How long the client waits for each answer.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(1);
/// How many times the client sends a line before it gives up on it.
pub const ATTEMPTS: u32 = 3;

/// Runs the echo server until it is stopped.
pub async fn server(args: ServerArgs) -> Result<(), Error> {
    let socket = bind(&args.host, args.port).await?;
    if let Ok(addr) = socket.local_addr() {
        eprintln!("UDP echo server on {addr}");
    }
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => {
                if let Err(e) = socket.send_to(&buf[..n], from).await {
                    eprintln!("could not answer {from}: {e}");
                }
            }
            // An error on one datagram (e.g. an ICMP error reported late) ends nothing.
            Err(e) => eprintln!("receive error: {e}"),
        }
    }
}

/// Runs the echo client until end of input.
pub async fn client(args: ClientArgs) -> Result<(), Error> {
    let (socket, server) = client_socket(&args.host, args.port).await?;
    let mut console = Console::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while let Some(line) = console.next_line().await? {
        if line.is_empty() {
            continue;
        }
        let mut answered = false;
        for attempt in 1..=ATTEMPTS {
            socket
                .send_to(line.as_bytes(), server)
                .await
                .map_err(Error::Connection)?;
            let reply = async {
                loop {
                    let (n, from) = socket.recv_from(&mut buf).await?;
                    // Only the server's answer counts.
                    if same_peer(from, server) {
                        return Ok::<usize, std::io::Error>(n);
                    }
                }
            };
            match tokio::time::timeout(REPLY_TIMEOUT, reply).await {
                Ok(Ok(n)) => {
                    console.print(&String::from_utf8_lossy(&buf[..n])).await?;
                    answered = true;
                    break;
                }
                Ok(Err(e)) => eprintln!("receive error: {e}"),
                Err(_) => {
                    let next = if attempt < ATTEMPTS {
                        ", sending again"
                    } else {
                        ""
                    };
                    eprintln!(
                        "timeout: no reply from {server} within {}s (attempt {attempt} of {ATTEMPTS}){next}",
                        REPLY_TIMEOUT.as_secs()
                    );
                }
            }
        }
        if !answered {
            eprintln!("gave up: no reply to {line:?} after {ATTEMPTS} attempts");
        }
    }
    Ok(())
}
