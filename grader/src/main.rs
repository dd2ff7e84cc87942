//! `grader`: parse the command line, run it, map the result to an exit code (see `grader::cli`).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = grader::cli::Cli::parse();
    match grader::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let e = anyhow::Error::from(e);
            eprintln!("error: {e:#}");
            ExitCode::from(grader::cli::EXIT_ERROR)
        }
    }
}
