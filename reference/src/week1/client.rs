//! The week-1 client: the Task 1 turn-based client that never waits for a silent server
//! forever (task 14): the acknowledgment and every reply must come within [`REPLY_TIMEOUT`],
//! otherwise it prints `the server did not respond within 5 s` on stderr and exits with
//! status 1.
//!
//! ```text
//! $ week1 client --host 127.0.0.1 --port 5000
//! ACK: connected to the server
//! hello                      <- typed
//! ACK: hello
//! exit                       <- typed; the client waits for the server to close (≤ 2 s)
//! ACK: goodbye
//! ```

use std::time::Duration;

use tokio::io::AsyncRead;

use crate::Error;
use crate::cli::ClientArgs;
use crate::console::{Console, SERVER_CLOSED};
use crate::echo::is_exit;
use crate::lines::{LineReader, MAX_REPLY_LEN, write_line};
use crate::net;
use crate::task1::client::print_until_closed;

/// How long the client waits for the acknowledgment or a reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the client until the user leaves, the server closes, or the server falls silent.
pub async fn run(args: ClientArgs) -> Result<(), Error> {
    let stream = net::connect(&args.host, args.port).await?;
    let (reader, mut writer) = stream.into_split();
    let mut server = LineReader::new(reader, MAX_REPLY_LEN);
    let mut console = Console::new();

    if !relay_one_line(&mut server, &mut console).await? {
        return Ok(());
    }
    while let Some(line) = console.next_line().await? {
        if line.is_empty() {
            continue;
        }
        write_line(&mut writer, &line)
            .await
            .map_err(Error::Connection)?;
        if is_exit(&line) {
            return print_until_closed(&mut server, &mut console).await;
        }
        if !relay_one_line(&mut server, &mut console).await? {
            return Ok(());
        }
    }
    Ok(())
}

/// Waits up to [`REPLY_TIMEOUT`] for one line and prints it; `false` if the server closed.
pub async fn relay_one_line<R: AsyncRead + Unpin>(
    server: &mut LineReader<R>,
    console: &mut Console,
) -> Result<bool, Error> {
    let line = tokio::time::timeout(REPLY_TIMEOUT, server.next_line())
        .await
        .map_err(|_| Error::NoResponse {
            seconds: REPLY_TIMEOUT.as_secs(),
        })?
        .map_err(Error::Connection)?;
    match line {
        Some(line) => {
            console.print_received(&line).await?;
            Ok(true)
        }
        None => {
            console.print(SERVER_CLOSED).await?;
            Ok(false)
        }
    }
}
