//! Task 2 (the student's client multiplexes keyboard and socket; the grader plays the server):
//! the reference scores 100%, and every fixture gets exactly the verdicts its mistake explains.

use grader::verdict::Status::*;

use crate::support::{check_bundled_reference, check_fixture};

const PUSHED: &str = "a pushed line appears while the user types nothing";
const TYPED: &str = "typed lines are sent without waiting for replies";
const IDLE_CPU: &str = "an idle client uses no CPU";
const SERVER_CLOSES: &str = "the client notices when the server closes";
const INTERLEAVE: &str = "20 pushed and 20 typed lines interleave";

#[test]
fn reference_scores_full_marks() {
    check_bundled_reference(2);
}

#[test]
fn select_client_correct() {
    check_fixture(2, "select_client_correct.py", &[]);
}

#[test]
fn receiver_thread_client_correct() {
    check_fixture(2, "receiver_thread_client_correct.py", &[]);
}

#[test]
fn lockstep_client() {
    check_fixture(
        2,
        "lockstep_client.py",
        &[
            (PUSHED, TimedOut),
            (TYPED, TimedOut),
            (SERVER_CLOSES, TimedOut),
            (INTERLEAVE, TimedOut),
        ],
    );
}

#[test]
fn busy_polling_client() {
    check_fixture(2, "busy_polling_client.py", &[(IDLE_CPU, Failed)]);
}

#[test]
fn ignores_server_close() {
    check_fixture(2, "ignores_server_close.py", &[(SERVER_CLOSES, TimedOut)]);
}
