//! A client's console: the user's lines from stdin, and output to stdout.
//!
//! Output is flushed after every line. That matters when stdout is a pipe (as under the
//! grader, or `| tee log`): without the flush, lines would sit in a buffer and appear late or
//! not at all.

use tokio::io::{Stdin, Stdout};

use crate::Error;
use crate::lines::{Line, LineReader, MAX_LINE_LEN, write_line};

/// The text a client prints when the server ends the conversation on its own.
pub const SERVER_CLOSED: &str = "server closed the connection";

/// Stdin as a source of lines, and stdout as a place to print them.
#[derive(Debug)]
pub struct Console {
    keyboard: LineReader<Stdin>,
    screen: Stdout,
}

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

impl Console {
    /// Takes over the process's stdin and stdout.
    pub fn new() -> Self {
        Self {
            keyboard: LineReader::new(tokio::io::stdin(), MAX_LINE_LEN),
            screen: tokio::io::stdout(),
        }
    }

    /// The next line the user typed, or `None` at end of input (Ctrl-D, or a closed pipe).
    ///
    /// Over-long lines are reported on stderr and skipped. Cancel-safe, like
    /// [`LineReader::next_line`].
    pub async fn next_line(&mut self) -> Result<Option<String>, Error> {
        loop {
            match self.keyboard.next_line().await.map_err(Error::Stdin)? {
                None => return Ok(None),
                Some(Line::Text(text)) => return Ok(Some(text)),
                Some(Line::TooLong) => {
                    eprintln!("line longer than {MAX_LINE_LEN} bytes; not sent");
                }
            }
        }
    }

    /// Prints `text` as one line on stdout and flushes it.
    pub async fn print(&mut self, text: &str) -> Result<(), Error> {
        write_line(&mut self.screen, text)
            .await
            .map_err(Error::Stdout)
    }

    /// Prints a line received from the server; an over-long one is reported on stderr.
    pub async fn print_received(&mut self, line: &Line) -> Result<(), Error> {
        match line {
            Line::Text(text) => self.print(text).await,
            Line::TooLong => {
                eprintln!("the server sent an over-long line; skipped");
                Ok(())
            }
        }
    }
}
