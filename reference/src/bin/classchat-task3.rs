//! `classchat-task3`: ClassChat Task 3: a server for many simultaneous clients (client as in Task 2).
//!
//! Usage: `classchat-task3 server --port <PORT> [--host <HOST>]` or
//! `classchat-task3 client --host <HOST> --port <PORT>`; see `--help`.

use std::process::ExitCode;

use clap::Parser;
use classchat_reference::cli::Command;
use classchat_reference::{launch, task2, task3};

#[derive(Debug, Parser)]
#[command(
    name = "classchat-task3",
    version,
    about = "ClassChat Task 3: a server for many simultaneous clients (client as in Task 2)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = launch::run(async move {
        match cli.command {
            Command::Server(args) => task3::run(args).await?,
            Command::Client(args) => task2::client::run(args).await?,
        }
        anyhow::Ok(())
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error:#}");
            ExitCode::FAILURE
        }
    }
}
