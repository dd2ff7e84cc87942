//! Integration tests of the grader: real student-like submissions (fixtures/), real reference
//! binaries, the real `grader` binary. One test binary for the crate, with one module per area.

mod audience_leaks;
mod bad_input;
mod batch;
mod batch_more;
mod bonus;
mod build;
mod dialects;
mod distribution;
mod docs;
mod export;
mod hostile;
mod hostile_folders;
mod http;
mod isolation;
mod ports;
mod processes;
mod prompts;
mod reports;
mod resources;
mod root_capabilities;
mod sandbox;
mod step_kinds;
mod support;
mod task1;
mod task2;
mod task3;
mod task4;
mod tcp_echo;
mod udp;
mod week1;
