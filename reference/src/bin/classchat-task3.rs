//! `classchat-task3`: ClassChat Task 3: a server for many simultaneous clients (client as in Task 2).
//!
//! Usage: `classchat-task3 server --port <PORT> [--host <HOST>]` or
//! `classchat-task3 client --host <HOST> --port <PORT>`; see `--help`.

fn main() -> std::process::ExitCode {
    classchat_reference::bundled::main(3)
}
