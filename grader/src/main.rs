//! `grader`: parse the command line, run it, map the result to an exit code (the subcommands
//! live in `cli/`, one file each; the library does the work).

mod cli;

use std::process::ExitCode;

use grader::job::Blame;

fn main() -> ExitCode {
    // First of all: processes of the same user cannot read the grader's environment or memory
    // (/proc/<pid>/environ, mem) or trace it (see docs/security.md).
    let _ = nix::sys::prctl::set_dumpable(false);
    let cli = cli::parse();
    match cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let blame = e.blame();
            // Errors quote paths and ids: no control character of theirs reaches the terminal.
            eprintln!(
                "error: {}",
                grader::safe_text::terminal_lines(&message(&anyhow::Error::from(e)))
            );
            if blame == Blame::Grader {
                eprintln!(
                    "note: {}: rerun; report it if it persists",
                    blame.describe()
                );
            }
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}

/// The error and its causes on one line, leaving out a cause whose text the message already
/// holds (many errors name their cause in their own text).
fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain().map(ToString::to_string) {
        if !text.contains(&cause) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause);
        }
    }
    text
}
