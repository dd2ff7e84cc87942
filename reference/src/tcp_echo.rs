//! Lab "tcp-echo" (task 11): the classic first socket lab, a TCP echo server and client.
//!
//! ```text
//! $ classchat-reference server --port 5000          (through `grader reference --task 11`)
//! $ tcp-echo client --host 127.0.0.1 --port 5000
//! hello                      <- typed
//! hello                      <- the echo
//! ```
//!
//! The server sends back every byte it receives on a connection, unchanged and in order (binary
//! data, NUL bytes, data without a newline, a 64 KiB burst), until that client closes; then it
//! closes the connection too. Every connection is served by a task of its own, so clients may
//! come one after another or at the same time, and a client that vanishes ends only its task.
//!
//! The client sends each line typed on stdin (with its `\n`), waits until the whole echo has
//! come back (as many bytes as it sent, however many reads that takes) and prints it on stdout.
//! At the end of input it closes the connection and exits with status 0; when the server closes
//! the connection first, it prints what arrived, says so on stderr and exits with status 0.
//!
//! Guarantees: no byte is decoded, so nothing is ever mangled; no input makes a program panic.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::Error;
use crate::accept::serve_forever;
use crate::cli::{ClientArgs, ServerArgs};
use crate::console::SERVER_CLOSED;
use crate::net;

/// Runs the echo server until it is stopped by a signal.
pub async fn server(args: ServerArgs) -> Result<(), Error> {
    let listener = net::listen(&args.host, args.port).await?;
    eprintln!("echo server listening on {}:{}", args.host, args.port);
    serve_forever(listener, |stream, peer| async move {
        match echo(stream).await {
            Ok(n) => eprintln!("{peer}: echoed {n} bytes; closed"),
            Err(error) => eprintln!("{peer}: connection lost: {error}"),
        }
    })
    .await;
    Ok(())
}

/// Sends back everything that arrives on `stream` until the peer closes it; returns how many
/// bytes were echoed.
pub async fn echo(stream: TcpStream) -> std::io::Result<u64> {
    let (mut reader, mut writer) = stream.into_split();
    let n = tokio::io::copy(&mut reader, &mut writer).await?;
    writer.shutdown().await?;
    Ok(n)
}

/// Runs the echo client until the end of input or until the server closes.
pub async fn client(args: ClientArgs) -> Result<(), Error> {
    let stream = net::connect(&args.host, args.port).await?;
    let (mut server, mut writer) = stream.into_split();
    let mut keyboard = BufReader::new(tokio::io::stdin());
    let mut screen = tokio::io::stdout();
    let mut line = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        line.clear();
        if keyboard
            .read_until(b'\n', &mut line)
            .await
            .map_err(Error::Stdin)?
            == 0
        {
            // End of input: close our side; the server closes its side in turn.
            let _ = writer.shutdown().await;
            return Ok(());
        }
        writer.write_all(&line).await.map_err(Error::Connection)?;
        // The echo may come in any number of pieces: read until all of it is back.
        let mut missing = line.len();
        while missing > 0 {
            let want = missing.min(buf.len());
            let n = match server.read(&mut buf[..want]).await {
                Ok(n) => n,
                // A reset ends the conversation like a close does.
                Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => 0,
                Err(error) => return Err(Error::Connection(error)),
            };
            if n == 0 {
                screen.flush().await.map_err(Error::Stdout)?;
                eprintln!("{SERVER_CLOSED}");
                return Ok(());
            }
            screen.write_all(&buf[..n]).await.map_err(Error::Stdout)?;
            missing -= n;
        }
        screen.flush().await.map_err(Error::Stdout)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_byte_comes_back_and_the_server_closes_after_the_client() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            echo(stream).await.unwrap()
        });
        let client = TcpStream::connect(addr).await.unwrap();
        let (mut read, mut write) = client.into_split();
        let sent: Vec<u8> = (0..65_536u32).map(|i| (i * 7 % 256) as u8).collect();
        let payload = sent.clone();
        let writer = tokio::spawn(async move {
            write.write_all(&payload).await.unwrap();
            write.shutdown().await.unwrap();
        });
        let mut back = Vec::new();
        read.read_to_end(&mut back).await.unwrap();
        writer.await.unwrap();
        assert_eq!(back, sent);
        assert_eq!(served.await.unwrap(), 65_536);
    }
}
