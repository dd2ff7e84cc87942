//! `classchat-task2`: ClassChat Task 2: a client that sends and receives at the same time (server pushes its stdin lines).
//!
//! Usage: `classchat-task2 server --port <PORT> [--host <HOST>]` or
//! `classchat-task2 client --host <HOST> --port <PORT>`; see `--help`.

fn main() -> std::process::ExitCode {
    classchat_reference::bundled::main(2)
}
