//! The Task 2 client: keyboard and socket, multiplexed with `tokio::select!`.
//!
//! The heart of it is one loop that waits for two events at once:
//!
//! * a line from the server → print it immediately, whether or not the user is typing;
//! * a line from the keyboard → send it immediately, without waiting for any reply.
//!
//! `select!` puts the task to sleep until one of the two is ready (inside, tokio blocks in
//! `epoll_wait`), so an idle client uses no CPU. Both branches are cancel-safe
//! ([`crate::lines`]), so no half-read line is lost when the other branch wins.
//!
//! The client ends when the user types `exit` (it sends it and waits up to 2 s for the
//! server to close), when the server closes (it says so on stdout), or at end of input. At
//! end of input it closes only its sending direction, so that replies to the last lines
//! still arrive and are printed (`printf 'a\nb\n' | client` shows both replies); the
//! server then closes, and the client exits (again after at most 2 s).

use tokio::io::AsyncWriteExt;

use crate::Error;
use crate::cli::ClientArgs;
use crate::console::{Console, SERVER_CLOSED};
use crate::echo::is_exit;
use crate::lines::{LineReader, MAX_REPLY_LEN, write_line};
use crate::net;
use crate::task1::client::print_until_closed;

/// Runs the client until the user leaves or the server closes.
pub async fn run(args: ClientArgs) -> Result<(), Error> {
    let stream = net::connect(&args.host, args.port).await?;
    let (reader, mut writer) = stream.into_split();
    let mut server = LineReader::new(reader, MAX_REPLY_LEN);
    let mut console = Console::new();

    loop {
        tokio::select! {
            received = server.next_line() => match received.map_err(Error::Connection)? {
                Some(line) => console.print_received(&line).await?,
                None => {
                    console.print(SERVER_CLOSED).await?;
                    return Ok(());
                }
            },
            typed = console.next_line() => match typed? {
                // End of input: stop sending, but show the replies still on their way.
                None => {
                    // A failed shutdown means the connection is gone anyway.
                    let _ = writer.shutdown().await;
                    return print_until_closed(&mut server, &mut console).await;
                }
                Some(line) if line.is_empty() => {}
                Some(line) => {
                    write_line(&mut writer, &line).await.map_err(Error::Connection)?;
                    if is_exit(&line) {
                        return print_until_closed(&mut server, &mut console).await;
                    }
                }
            },
        }
    }
}
