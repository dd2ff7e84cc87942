//! `classchat-task1`: ClassChat Task 1: a basic TCP server and a turn-based client.
//!
//! Usage: `classchat-task1 server --port <PORT> [--host <HOST>]` or
//! `classchat-task1 client --host <HOST> --port <PORT>`; see `--help`.

fn main() -> std::process::ExitCode {
    classchat_reference::bundled::main(1)
}
