//! The accept loop of the multi-client servers (Tasks 2, 3 and 4).
//!
//! Each accepted connection gets its own tokio task, so a silent or slow client never delays
//! anyone else, and a failure in one connection ends only that task.
//!
//! Accepting itself can fail: a client may reset its connection while it still waits in the
//! kernel's queue (harmless, we just carry on), or the process may run out of file
//! descriptors. In the latter case `accept` would fail again immediately, so the loop pauses
//! briefly to let connections close instead of spinning at 100% CPU.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use nix::errno::Errno;
use tokio::net::{TcpListener, TcpStream};

/// How long to pause after `accept` failed for lack of file descriptors.
const OUT_OF_DESCRIPTORS_PAUSE: Duration = Duration::from_millis(100);

/// Accepts connections forever, running `handle` for each one in a task of its own.
pub async fn serve_forever<H, F>(listener: TcpListener, mut handle: H)
where
    H: FnMut(TcpStream, SocketAddr) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(handle(stream, peer));
            }
            Err(error) if is_out_of_descriptors(&error) => {
                eprintln!("accept failed: {error}; pausing");
                tokio::time::sleep(OUT_OF_DESCRIPTORS_PAUSE).await;
            }
            Err(error) => eprintln!("accept failed: {error}"),
        }
    }
}

fn is_out_of_descriptors(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error().map(Errno::from_raw),
        Some(Errno::EMFILE | Errno::ENFILE)
    )
}
