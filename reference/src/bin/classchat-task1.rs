//! `classchat-task1`: ClassChat Task 1: a basic TCP server and a turn-based client.
//!
//! Usage: `classchat-task1 server --port <PORT> [--host <HOST>]` or
//! `classchat-task1 client --host <HOST> --port <PORT>`; see `--help`.

use std::process::ExitCode;

use clap::Parser;
use classchat_reference::cli::Command;
use classchat_reference::{launch, task1};

#[derive(Debug, Parser)]
#[command(
    name = "classchat-task1",
    version,
    about = "ClassChat Task 1: a basic TCP server and a turn-based client."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = launch::run(async move {
        match cli.command {
            Command::Server(args) => task1::server::run(args).await?,
            Command::Client(args) => task1::client::run(args).await?,
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
