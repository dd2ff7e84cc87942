//! Task 3 (a server for many clients at once; the grader plays the clients): the reference scores
//! 100%, and every fixture gets exactly the verdicts its mistake explains.

use grader::verdict::Status::*;

use crate::support::{
    assert_failures, check_bundled_reference, check_fixture, fixture, grade, scenario,
};

const SILENT: &str = "silent clients never delay another client";
const TEN: &str = "10 clients talk at once and each gets only its own replies";
const RESETS: &str = "clients resetting their connection harm no one";
const HUNDRED: &str = "100 simultaneous clients are all served";
const MIDLINE: &str = "a client closing mid-line harms no one";
const ALL_LEAVE: &str = "the server keeps running after all clients leave";

#[test]
fn reference_scores_full_marks() {
    check_bundled_reference(3);
}

#[test]
fn threaded_server_correct() {
    check_fixture(3, "threaded_server_correct.py", &[]);
}

#[test]
fn selectors_server_correct() {
    check_fixture(3, "selectors_server_correct.py", &[]);
}

#[test]
fn sequential_server() {
    check_fixture(
        3,
        "sequential_server.py",
        &[(SILENT, TimedOut), (TEN, TimedOut), (HUNDRED, TimedOut)],
    );
}

#[test]
fn fixed_pool_of_4() {
    let g = grade(3, &fixture(3, "fixed_pool_of_4.py"), &[]);
    assert_failures(
        &g,
        &[(SILENT, TimedOut), (TEN, TimedOut), (HUNDRED, TimedOut)],
    );
    // Its backlog is 128: the pool, not the backlog, is named.
    let s = scenario(&g, HUNDRED);
    assert!(!s.message.contains("backlog"), "{}", s.message);
    assert!(
        s.hint.as_deref().unwrap_or("").contains("fixed pool"),
        "{:?}",
        s.hint
    );
}

#[test]
fn crosstalk_server() {
    let g = grade(3, &fixture(3, "crosstalk_server.py"), &[]);
    assert_failures(&g, &[(TEN, TimedOut), (HUNDRED, TimedOut)]);
    // Crosstalk stays crosstalk: the reply is named on another connection, not called late.
    let s = scenario(&g, TEN);
    assert!(
        s.message.contains("instead") && !s.message.contains("late"),
        "{}",
        s.message
    );
}

#[test]
fn dies_on_reset() {
    check_fixture(3, "dies_on_reset.py", &[(RESETS, Crashed)]);
}

#[test]
fn listen_backlog_5() {
    let g = grade(3, &fixture(3, "listen_backlog_5.py"), &[]);
    // The 100 connection requests arrive while the server is paused (`burst`): a backlog of 5
    // drops most of them on every machine, however fast the server accepts afterwards.
    assert_failures(&g, &[(HUNDRED, TimedOut)]);
    let s = scenario(&g, HUNDRED);
    assert!(
        regex::Regex::new(r"^only \d+ of 100 connections were accepted in time: the server's listen\(\) backlog is 5 ")
            .unwrap()
            .is_match(&s.message),
        "{}",
        s.message
    );
    assert!(
        s.hint
            .as_deref()
            .unwrap_or("")
            .contains("use listen(128) or more"),
        "{:?}",
        s.hint
    );
}

#[test]
fn slow_replies_right_client() {
    let g = grade(3, &fixture(3, "slow_replies_right_client.py"), &[]);
    assert_failures(&g, &[(TEN, TimedOut), (HUNDRED, TimedOut)]);
    let s = scenario(&g, TEN);
    assert!(
        s.message.contains("s late (after ") && s.message.contains("on the right connection"),
        "{}",
        s.message
    );
    assert!(!s.message.contains("instead"), "{}", s.message);
    assert!(
        s.hint
            .as_deref()
            .unwrap_or("")
            .starts_with("the reply went to the right client, but late"),
        "{:?}",
        s.hint
    );
}

#[test]
fn spins_on_empty_recv() {
    let g = grade(3, &fixture(3, "spins_on_empty_recv.py"), &[]);
    assert_failures(&g, &[(MIDLINE, Failed), (ALL_LEAVE, TimedOut)]);
    let s = scenario(&g, MIDLINE);
    assert!(s.message.contains("% of a CPU core"), "{}", s.message);
    assert!(
        s.hint
            .as_deref()
            .unwrap_or("")
            .starts_with("recv() returning b'' means the client left"),
        "{:?}",
        s.hint
    );
}
