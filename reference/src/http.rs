//! Lab 5 (Tasks 31 and 32): a minimal HTTP/1.1 server on a plain TCP socket, as specified in
//! the "Lab 5: minimal HTTP server" section of `tasks/PROTOCOL.md`.
//!
//! * `GET /` and `GET /index.html` (and `HEAD` of them) answer `200 OK` with [`PAGE`], an
//!   HTML page holding `Hello, HTTP!`; any other path answers `404 Not Found`; a request whose
//!   head is not valid HTTP/1.x (a malformed request line) answers `400 Bad Request` and closes;
//!   another method answers `405 Method Not Allowed`.
//! * A request head is read up to the empty line that ends it, however many reads it takes;
//!   heads over [`MAX_HEAD`] bytes answer `431` and close. Request bodies are not expected
//!   (a `Content-Length` body is read and ignored, so the next request is found).
//! * Every response has a `Content-Length` counted in bytes. Connections are persistent, as
//!   HTTP/1.1 wants: the server answers request after request until the client closes, sends
//!   `Connection: close` (answered with `Connection: close`, then closed), or speaks HTTP/1.0
//!   without `keep-alive`.
//! * Each connection runs in a task of its own ([`crate::accept`]), so a slow client never
//!   delays another one; Task 31 (single-threaded in its brief) and Task 32 (threaded) share
//!   this server, which passes both.
//!
//! The request head is parsed with `httparse`, the same well-kept parser the grader reads
//! responses with.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Error;
use crate::accept::serve_forever;
use crate::cli::ServerArgs;
use crate::net;

/// The page served at `/` and `/index.html`.
pub const PAGE: &str = "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>Lab 5</title></head>\n<body>\n<h1>Hello, HTTP!</h1>\n<p>Served by the reference solution over a raw TCP socket.</p>\n</body>\n</html>\n";

/// The longest request head accepted.
pub const MAX_HEAD: usize = 16 * 1024;

/// The most header lines a request may have.
const MAX_HEADERS: usize = 64;

/// Runs the server until it is stopped by a signal. `task` is 31 or 32 (only the log differs).
pub async fn run(task: u32, args: ServerArgs) -> Result<(), Error> {
    let listener = net::listen(&args.host, args.port).await?;
    eprintln!(
        "task {task} HTTP server listening on http://{}:{}/",
        args.host, args.port
    );
    serve_forever(listener, |stream, peer| async move {
        if let Err(error) = serve(stream).await {
            eprintln!("{peer}: connection lost: {error}");
        }
    })
    .await;
    Ok(())
}

/// What one parsed request asks for.
struct Request {
    head_len: usize,
    body_len: usize,
    status: u16,
    head_only: bool,
    close: bool,
}

/// Serves one connection: request after request until it is closed.
async fn serve(mut stream: TcpStream) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        // Read until a whole head is buffered (or it cannot become one).
        let request = loop {
            match parse(&buf) {
                Ok(Some(r)) => break r,
                Ok(None) if buf.len() > MAX_HEAD => {
                    respond(&mut stream, 431, false, true).await?;
                    return Ok(());
                }
                Ok(None) => {}
                Err(()) => {
                    respond(&mut stream, 400, false, true).await?;
                    return Ok(());
                }
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                // The client left (between requests, or in the middle of one).
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        // Skip a request body, if one was announced.
        while buf.len() < request.head_len + request.body_len {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        buf.drain(..request.head_len + request.body_len);
        respond(
            &mut stream,
            request.status,
            request.head_only,
            request.close,
        )
        .await?;
        if request.close {
            return Ok(());
        }
    }
}

/// Parses the head at the start of `buf`: `Ok(None)` when incomplete, `Err` when malformed.
fn parse(buf: &[u8]) -> Result<Option<Request>, ()> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(()),
    };
    let method = req.method.unwrap_or("");
    let path = req.path.unwrap_or("");
    let version = req.version.unwrap_or(1);
    let header = |name: &str| {
        req.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
            .collect::<Vec<_>>()
    };
    let connection = header("connection");
    let has = |token: &str| {
        connection
            .iter()
            .any(|v| v.split(',').any(|t| t.trim() == token))
    };
    let close = has("close") || (version == 0 && !has("keep-alive"));
    let body_len = match header("content-length").first() {
        None => 0,
        Some(v) => v.trim().parse::<usize>().map_err(|_| ())?,
    };
    // The path without a query string.
    let path = path.split('?').next().unwrap_or("");
    let status = match method {
        "GET" | "HEAD" if path == "/" || path == "/index.html" => 200,
        "GET" | "HEAD" => 404,
        _ => 405,
    };
    Ok(Some(Request {
        head_len,
        body_len,
        status,
        head_only: method == "HEAD",
        close,
    }))
}

/// Writes one whole response in one write.
async fn respond(
    stream: &mut TcpStream,
    status: u16,
    head_only: bool,
    close: bool,
) -> io::Result<()> {
    let (reason, body, ctype): (&str, String, &str) = match status {
        200 => ("OK", PAGE.to_string(), "text/html; charset=utf-8"),
        404 => (
            "Not Found",
            "<!DOCTYPE html>\n<html><body><h1>404 Not Found</h1></body></html>\n".into(),
            "text/html; charset=utf-8",
        ),
        405 => (
            "Method Not Allowed",
            "method not allowed\n".into(),
            "text/plain; charset=utf-8",
        ),
        431 => (
            "Request Header Fields Too Large",
            "request head too large\n".into(),
            "text/plain; charset=utf-8",
        ),
        _ => (
            "Bad Request",
            "bad request\n".into(),
            "text/plain; charset=utf-8",
        ),
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if status == 405 {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(&body);
    }
    stream.write_all(out.as_bytes()).await?;
    stream.flush().await?;
    if close {
        stream.shutdown().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Request {
        match parse(text.as_bytes()) {
            Ok(Some(r)) => r,
            Ok(None) => panic!("incomplete: {text:?}"),
            Err(()) => panic!("malformed: {text:?}"),
        }
    }

    #[test]
    fn paths_methods_and_persistence() {
        let r = parsed("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!((r.status, r.close, r.head_only), (200, false, false));
        assert_eq!(parsed("GET /index.html?x=1 HTTP/1.1\r\n\r\n").status, 200);
        assert_eq!(parsed("GET /nope HTTP/1.1\r\n\r\n").status, 404);
        assert_eq!(
            parsed("POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi").body_len,
            2
        );
        assert_eq!(parsed("DELETE / HTTP/1.1\r\n\r\n").status, 405);
        assert!(parsed("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").close);
        assert!(parsed("GET / HTTP/1.0\r\n\r\n").close);
        assert!(!parsed("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").close);
        assert!(parsed("HEAD / HTTP/1.1\r\n\r\n").head_only);
    }

    #[test]
    fn incomplete_and_malformed_heads() {
        assert!(matches!(parse(b"GET /ind"), Ok(None)));
        assert!(matches!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None)));
        assert!(parse(b"HELLO\r\n\r\n").is_err());
        assert!(parse(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n").is_err());
    }
}
