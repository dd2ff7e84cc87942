//! `grader`: parse the command line, run it, map the result to an exit code (see `grader::cli`).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // First of all: processes of the same user cannot read the grader's environment or memory
    // (/proc/<pid>/environ, mem) or trace it (see docs/security.md).
    let _ = nix::sys::prctl::set_dumpable(false);
    let cli = grader::cli::Cli::parse();
    match grader::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // The message, then each cause once (`message: cause: cause`); errors quote paths
            // and ids: no control character of theirs reaches the terminal.
            let text = grader::error_chain::chain(&e);
            eprintln!("error: {}", grader::safe_text::terminal_lines(&text));
            ExitCode::from(grader::cli::EXIT_ERROR)
        }
    }
}
