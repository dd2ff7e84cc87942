//! An error shown with its causes, each exactly once.
//!
//! The library's errors follow cargo-nextest's style: an error's message says what failed and
//! never repeats its cause; the cause is the error's `source` (a `#[source]` or `#[from]` field),
//! and so on down the chain. Whoever shows an error to a person (the binary's `error:` line, a
//! batch's `task<N>.error.txt`, a warning, a note in a report) shows it through [`Chain`], which
//! writes the message and then every cause, `message: cause: cause`, on one line as the errors
//! wrote them (a cause that holds line breaks, such as a failed build's last output lines, keeps
//! them).
//!
//! Guarantees: every error of the chain is written exactly once and in order (outermost first);
//! nothing is left out or de-duplicated by its text; an error without a source is written as its
//! `Display` alone.

use std::error::Error;
use std::fmt;

/// `Display` of an error followed by its chain of causes, `message: cause: cause`.
#[derive(Clone, Copy)]
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// [`Chain`] as a `String`.
pub fn chain(e: &(dyn Error + 'static)) -> String {
    Chain(e).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read the task file tasks/task1.toml")]
    struct Outer {
        source: Middle,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open it")]
    struct Middle {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn every_cause_is_written_once_in_order() {
        let e = Outer {
            source: Middle {
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            },
        };
        assert_eq!(
            chain(&e),
            "cannot read the task file tasks/task1.toml: cannot open it: entity not found"
        );
    }

    #[test]
    fn an_error_without_a_source_is_its_message() {
        let e = std::io::Error::other("disk full");
        assert_eq!(chain(&e), "disk full");
        assert_eq!(Chain(&e).to_string(), e.to_string());
    }

    #[test]
    fn causes_with_the_same_text_are_all_written() {
        // No de-duplication by text: two errors saying the same thing are two causes.
        #[derive(Debug, thiserror::Error)]
        #[error("x")]
        struct X(#[source] std::io::Error);
        let e = X(std::io::Error::other("x"));
        assert_eq!(chain(&e), "x: x");
    }
}
