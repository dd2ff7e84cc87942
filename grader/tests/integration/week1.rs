//! The week-1 labs (tasks 12–15: sequential clients, validation, client timeout, concurrent
//! timestamped replies) and the timestamp lab (task 16): each bundled reference scores 100%,
//! each fixture gets exactly the verdicts its mistake explains, and the timestamp failures name
//! their cause (no timestamp in the format, or one that is seconds behind the clock).

use grader::verdict::Status::*;

use crate::support::{check_bundled_reference, check_fixture, fixture, grade, scenario};

mod a {
    //! Task 12 scenario names.
    pub const SECOND_AFTER_EXIT: &str = "a second client is served after the first says exit";
    pub const THREE: &str = "three clients one after another are all served";
    pub const WAITING: &str = "a waiting client is served once the first leaves";
    pub const RESET: &str = "a client that resets does not stop the server";
}

mod b {
    //! Task 13 scenario names.
    pub const CLOSED_EMPTY: &str = "the connection is closed after an empty message";
    pub const CLOSED_LONG: &str = "the connection is closed after a message that is too long";
    pub const EXACTLY_100: &str = "a message of exactly 100 characters is accepted";
}

mod c {
    //! Task 14 scenario names.
    pub const NEVER_ACKS: &str = "client gives up on a server that never acknowledges";
    pub const STOPS: &str = "client gives up on a server that stops answering";
}

mod d {
    //! Task 15 scenario names.
    pub const STAMPED: &str = "a reply is [ACK @HH:MM:SS] text with the current time";
    pub const FIVE: &str = "5 clients at once each get their own timestamped replies";
    pub const REPLY_TIME: &str = "timestamps are the time of the reply";
    pub const LOGS: &str = "the server logs each message with a timestamp";
}

mod t {
    //! Task 16 scenario names.
    pub const REPLY_TIME: &str = "the timestamp is the time of the reply";
    pub const SILENT: &str = "a silent client does not delay another";
    pub const TEN: &str = "10 clients at once each get their own timestamped replies";
    pub const SINGLE: &str = "single-message mode sends, prints the reply and exits";
    pub const QUIT: &str = "quit ends the interactive client";
    pub const Q: &str = "q ends the interactive client";
}

#[test]
fn reference_task12_scores_full_marks() {
    check_bundled_reference(12);
}

#[test]
fn reference_task13_scores_full_marks() {
    check_bundled_reference(13);
}

#[test]
fn reference_task14_scores_full_marks() {
    check_bundled_reference(14);
}

#[test]
fn reference_task15_scores_full_marks() {
    check_bundled_reference(15);
}

#[test]
fn reference_task16_scores_full_marks() {
    check_bundled_reference(16);
}

// ---------------------------------------------------------------- task 12 (A)

#[test]
fn a_correct_socketserver() {
    check_fixture(12, "correct_socketserver.py", &[]);
}

#[test]
fn a_server_exits_after_first_client() {
    let g = grade(12, &fixture(12, "server_exits_after_first_client.py"), &[]);
    crate::support::assert_failures(
        &g,
        &[
            (a::SECOND_AFTER_EXIT, Failed),
            (a::THREE, Failed),
            (a::WAITING, Failed),
            (a::RESET, Failed),
        ],
    );
    assert_eq!(g.report().score, 6.0);
    // The verdict names the cause: the server had exited, cleanly.
    let s = scenario(&g, a::SECOND_AFTER_EXIT);
    assert!(
        s.message.contains("the server had exited (exit status 0)"),
        "{}",
        s.message
    );
}

// ---------------------------------------------------------------- task 13 (B)

#[test]
fn b_correct_makefile_validation() {
    check_fixture(13, "correct_makefile_validation.py", &[]);
}

#[test]
fn b_error_keeps_connection_open() {
    check_fixture(
        13,
        "error_keeps_connection_open.py",
        &[(b::CLOSED_EMPTY, TimedOut), (b::CLOSED_LONG, TimedOut)],
    );
}

#[test]
fn b_length_check_off_by_one() {
    let g = grade(13, &fixture(13, "length_check_off_by_one.py"), &[]);
    crate::support::assert_failures(&g, &[(b::EXACTLY_100, Failed)]);
    let s = scenario(&g, b::EXACTLY_100);
    assert!(
        s.message.contains("ERROR: Message too long"),
        "{}",
        s.message
    );
}

// ---------------------------------------------------------------- task 14 (C)

#[test]
fn c_correct_select_timeout() {
    check_fixture(14, "correct_select_timeout.py", &[]);
}

#[test]
fn c_client_no_timeout() {
    check_fixture(
        14,
        "client_no_timeout.py",
        &[(c::NEVER_ACKS, TimedOut), (c::STOPS, TimedOut)],
    );
}

// ---------------------------------------------------------------- task 15 (D)

#[test]
fn d_correct_threaded_timestamps() {
    check_fixture(15, "correct_threaded_timestamps.py", &[]);
}

#[test]
fn d_timestamp_12_hour_no_seconds() {
    let g = grade(15, &fixture(15, "timestamp_12_hour_no_seconds.py"), &[]);
    crate::support::assert_failures(
        &g,
        &[
            (d::STAMPED, TimedOut),
            (d::FIVE, TimedOut),
            (d::REPLY_TIME, TimedOut),
            (d::LOGS, TimedOut),
        ],
    );
    // The message quotes the line and names the format it lacks.
    let s = scenario(&g, d::STAMPED);
    assert!(
        s.message
            .contains("has no timestamp in the format \"[ACK @%H:%M:%S]\""),
        "{}",
        s.message
    );
    // The hint stays the scenario's advice on the format (the diagnosis is in the message).
    assert!(
        s.hint.as_deref().unwrap_or("").contains("24-hour clock"),
        "{:?}",
        s.hint
    );
    let log = scenario(&g, d::LOGS);
    assert!(
        log.message.contains("the server's stdout or stderr")
            && log
                .message
                .contains("no timestamp in the format \"%H:%M:%S\""),
        "{}",
        log.message
    );
}

// ---------------------------------------------------------------- task 16 (timestamp lab)

#[test]
fn t_correct_threaded_dated() {
    check_fixture(16, "correct_threaded_dated.py", &[]);
}

#[test]
fn t_base_threaded_is_correct() {
    // The shared part of the task 16 bug fixtures must itself be correct, so that each bug
    // fixture fails only for its own mistake.
    check_fixture(16, "base_threaded.py", &[]);
}

#[test]
fn t_timestamp_frozen_at_start() {
    let g = grade(16, &fixture(16, "timestamp_frozen_at_start.py"), &[]);
    crate::support::assert_failures(&g, &[(t::REPLY_TIME, TimedOut)]);
    let s = scenario(&g, t::REPLY_TIME);
    assert!(
        regex::Regex::new(
            r"is \d+s behind the clock as read now \(local \d\d:\d\d:\d\d, UTC \d\d:\d\d:\d\d\)"
        )
        .unwrap()
        .is_match(&s.message),
        "{}",
        s.message
    );
}

#[test]
fn t_message_argument_ignored() {
    check_fixture(16, "message_argument_ignored.py", &[(t::SINGLE, TimedOut)]);
}

#[test]
fn t_sequential_server() {
    check_fixture(
        16,
        "sequential_server.py",
        &[(t::SILENT, TimedOut), (t::TEN, TimedOut)],
    );
}

#[test]
fn t_quit_only_on_exit() {
    check_fixture(
        16,
        "quit_only_on_exit.py",
        &[(t::QUIT, TimedOut), (t::Q, TimedOut)],
    );
}
