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
            // The message, then each cause once (`message: cause: cause`); errors quote paths
            // and ids: no control character of theirs reaches the terminal.
            let text = grader::error_chain::chain(&e);
            eprintln!("error: {}", grader::safe_text::terminal_lines(&text));
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
