//! grader: an autograder for socket-programming courses.
//!
//! It starts a student's TCP server or client on a free port, plays the other side of the
//! protocol through the scripted scenarios of a task file ([`spec`]), and turns what happened
//! into verdicts ([`verdict`]) that reporters ([`report`]) write as TOML and JUnit files.
//!
//! Where things live:
//! - [`spec`]: task files (the scenario language, its steps, placeholders, validation);
//! - [`engine`]: running scenarios and steps, matching what arrived ([`engine::matcher`]);
//! - [`process`]: starting, watching and ending student processes (process groups, pty, /proc);
//! - [`net`]: ports and grader-side connections; [`stream`], [`transcript`]: what was received;
//! - [`events`], [`report`]: what the runner emits and the formats that consume it;
//! - [`job`]: one grading plan (what to grade and how), the only path to a grading;
//! - [`launch`]: the launch contract and instructor templates (the command line itself lives in
//!   the `grader` binary, `src/cli/`);
//! - [`batch`]: grading a folder of submissions; [`export`]: class-level exports from records;
//!   [`audience`]: what students may see; [`fingerprint`]: submission content hashes;
//! - [`error_chain`]: an error shown with each of its causes once;
//! - [`submission_tree`], [`submission_copy`]: reading and copying a submission folder without
//!   trusting it; [`safe_text`]: untrusted ids and names made safe for terminals and
//!   spreadsheets; [`test_skips`]: how the tests report a check they had to skip.

pub mod audience;
pub mod batch;
pub mod engine;
pub mod error_chain;
pub mod events;
pub mod export;
pub mod fingerprint;
pub mod job;
pub mod launch;
pub mod net;
pub mod note;
pub mod process;
pub mod report;
pub mod safe_text;
pub mod spec;
pub mod stream;
pub mod submission_copy;
pub mod submission_tree;
#[cfg(test)]
pub(crate) mod synthetic;
#[doc(hidden)]
pub mod test_skips;
pub mod transcript;
pub mod verdict;
