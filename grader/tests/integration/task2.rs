//! Task 2 (the student's client multiplexes keyboard and socket; the grader plays the server):
//! the reference scores 100%, and every fixture gets exactly the verdicts its mistake explains.

use grader::verdict::Status::*;

use crate::support::{check_bundled_reference, check_fixture, fixture, grade, scenario};

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
    let g = grade(2, &fixture(2, "lockstep_client.py"), &[]);
    // Idle CPU fails too: blocked in input(), it uses no CPU but does not show a line the
    // server pushes while it idles.
    crate::support::assert_failures(
        &g,
        &[
            (PUSHED, TimedOut),
            (TYPED, TimedOut),
            (IDLE_CPU, TimedOut),
            (SERVER_CLOSES, TimedOut),
            (INTERLEAVE, TimedOut),
        ],
    );
    let idle = scenario(&g, IDLE_CPU);
    assert!(
        idle.message.contains("pushed while idle"),
        "{}",
        idle.message
    );
    // Blocked in a socket read, not in select(): not the buffered-stdin diagnosis.
    let interleave = scenario(&g, INTERLEAVE);
    assert!(
        !interleave.message.contains("typed lines from its stdin"),
        "{}",
        interleave.message
    );
}

#[test]
fn buffered_stdin_under_select() {
    let g = grade(2, &fixture(2, "buffered_stdin_under_select.py"), &[]);
    crate::support::assert_failures(&g, &[(INTERLEAVE, TimedOut)]);
    let s = scenario(&g, INTERLEAVE);
    assert!(
        s.message.contains(
            "the client has read all 20 typed lines from its stdin and waits in select()/poll(), but sent only 1 of them"
        ),
        "{}",
        s.message
    );
    let hint = s.hint.as_deref().unwrap_or("");
    assert!(
        hint.contains("sys.stdin.readline()") && !hint.contains("split what recv() returns"),
        "{hint}"
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
