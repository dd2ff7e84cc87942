//! The Task 1 client: connect, wait for the acknowledgment, then one line at a time.
//!
//! ```text
//! $ classchat-task1 client --host 127.0.0.1 --port 5000
//! ACK: connected to ClassChat
//! hello                      <- typed
//! ACK: hello
//! exit                       <- typed; the client waits for the server to close (≤ 2 s)
//! ACK: goodbye
//! ```
//!
//! Empty lines are not sent: the server would not answer them, and the client would wait
//! for a reply forever. At end of input (Ctrl-D) the client closes the connection and exits.

use tokio::io::AsyncRead;

use crate::Error;
use crate::cli::ClientArgs;
use crate::console::{Console, SERVER_CLOSED};
use crate::echo::is_exit;
use crate::lines::{LineReader, MAX_REPLY_LEN, write_line};
use crate::net;

/// How long a client waits for the server to close after sending `exit`.
pub const EXIT_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs the client until the user leaves or the server closes.
pub async fn run(args: ClientArgs) -> Result<(), Error> {
    let stream = net::connect(&args.host, args.port).await?;
    let (reader, mut writer) = stream.into_split();
    let mut server = LineReader::new(reader, MAX_REPLY_LEN);
    let mut console = Console::new();

    // The server speaks first: wait for its acknowledgment.
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
    // End of input: returning drops the socket, which closes the connection.
    Ok(())
}

/// Waits for one line from the server and prints it.
///
/// Returns `false` if the server closed the connection instead (after saying so).
async fn relay_one_line<R: AsyncRead + Unpin>(
    server: &mut LineReader<R>,
    console: &mut Console,
) -> Result<bool, Error> {
    match server.next_line().await.map_err(Error::Connection)? {
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

/// After `exit` (or, in later tasks, end of input): prints whatever the server still says
/// until it closes the connection, or until [`EXIT_GRACE`] has passed. Either way the client
/// is done.
pub async fn print_until_closed<R: AsyncRead + Unpin>(
    server: &mut LineReader<R>,
    console: &mut Console,
) -> Result<(), Error> {
    let drain = async {
        while let Some(line) = server.next_line().await.map_err(Error::Connection)? {
            console.print_received(&line).await?;
        }
        Ok::<(), Error>(())
    };
    match tokio::time::timeout(EXIT_GRACE, drain).await {
        // A reset while leaving does not matter any more: we were leaving anyway.
        Ok(Err(Error::Connection(_))) | Ok(Ok(())) | Err(_) => Ok(()),
        Ok(Err(other)) => Err(other),
    }
}
