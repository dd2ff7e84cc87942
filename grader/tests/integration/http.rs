//! Lab 5, the minimal HTTP server (Task 31 single-threaded, Task 32 threaded; the grader plays
//! the HTTP clients and reads every response with `expect_http`): the references score 100%,
//! and every fixture gets exactly the verdicts its mistake explains, with messages that name
//! the real cause (a Content-Length that does not match the body, a bare `\n`, a missing
//! length on a connection kept open, a crash, a server that serves one client at a time).

use grader::verdict::Status::*;

use crate::support::{
    assert_failures, check_bundled_reference, check_fixture, fixture, grade, scenario,
};

const LISTENS: &str = "server listens on the assigned port";
const ROOT: &str = "GET / returns the page";
const INDEX: &str = "GET /index.html returns the page";
const NOT_FOUND: &str = "an unknown path gets 404";
const MALFORMED: &str = "a malformed request line gets 400 and the server survives";
const PIECES: &str = "a request arriving in three pieces is answered once whole";
const SECOND: &str = "a second request on the same connection (keep-alive or close)";
const CLIENT_CLOSE: &str = "Connection: close from the client is honoured";
const NO_REQUEST: &str = "a connection closed without a request harms no one";
const BROWSER: &str = "a browser's request is answered";

const SLOW_FAST: &str = "a slow client does not delay a fast one";
const TEN: &str = "10 clients at once are all served";
const LEAVING: &str = "a client leaving mid-request harms no one";

/// Every Task 31 scenario that reads a response.
const ALL_31_BUT_LISTENS: [&str; 9] = [
    ROOT,
    INDEX,
    NOT_FOUND,
    MALFORMED,
    PIECES,
    SECOND,
    CLIENT_CLOSE,
    NO_REQUEST,
    BROWSER,
];

#[test]
fn references_score_full_marks() {
    check_bundled_reference(31);
    check_bundled_reference(32);
}

#[test]
fn correct_close_each() {
    let g = grade(31, &fixture(31, "correct_close_each.py"), &[]);
    assert_failures(&g, &[]);
    // The keep-alive scenario ends, with a note, after the announced close.
    let s = scenario(&g, SECOND);
    assert!(
        s.notes
            .iter()
            .any(|n| n.to_string().contains("Connection: close")),
        "{:?}",
        s.notes
    );
}

#[test]
fn correct_threads_keep_alive_passes_both_tasks() {
    check_fixture(32, "correct_threads_keep_alive.py", &[]);
    let g = grade(31, &fixture(32, "correct_threads_keep_alive.py"), &[]);
    assert_failures(&g, &[]);
    // A keep-alive server answers the second request: no note, no skipped steps.
    assert!(scenario(&g, SECOND).notes.is_empty());
}

#[test]
fn content_length_counts_characters() {
    let g = grade(31, &fixture(31, "content_length_counts_characters.py"), &[]);
    let page = [
        ROOT,
        INDEX,
        MALFORMED,
        PIECES,
        SECOND,
        CLIENT_CLOSE,
        NO_REQUEST,
        BROWSER,
    ];
    let expected: Vec<_> = page.iter().map(|s| (*s, Failed)).collect();
    assert_failures(&g, &expected);
    let m = &scenario(&g, ROOT).message;
    assert!(
        m.contains("says Content-Length: 137, but 3 more bytes of body came before the server closed the connection")
            && m.contains("(here 140)"),
        "{m}"
    );
}

#[test]
fn lf_line_endings() {
    let g = grade(31, &fixture(31, "lf_line_endings.py"), &[]);
    let expected: Vec<_> = ALL_31_BUT_LISTENS.iter().map(|s| (*s, Failed)).collect();
    assert_failures(&g, &expected);
    let m = &scenario(&g, NOT_FOUND).message;
    assert!(
        m.contains("the status line ends with \\n alone")
            && m.contains("HTTP/1.1 404 Not Found\\n"),
        "{m}"
    );
}

#[test]
fn single_recv_request() {
    let g = grade(31, &fixture(31, "single_recv_request.py"), &[]);
    assert_failures(&g, &[(PIECES, Failed)]);
    // Either the 400 was read as the response, or the next piece could not be sent after it.
    let m = &scenario(&g, PIECES).message;
    assert!(
        m.contains("400 Bad Request") || m.contains("could not send on connection a"),
        "{m}"
    );
}

#[test]
fn crashes_on_malformed_request() {
    let g = grade(31, &fixture(31, "crashes_on_malformed_request.py"), &[]);
    assert_failures(&g, &[(MALFORMED, Crashed)]);
    let s = scenario(&g, MALFORMED);
    assert!(
        s.message.contains("closed without any response") && s.message.contains("crashed"),
        "{}",
        s.message
    );
    assert!(
        s.stderr_tail
            .as_deref()
            .unwrap_or("")
            .contains("ValueError"),
        "{:?}",
        s.stderr_tail
    );
}

#[test]
fn no_length_keeps_connection_open() {
    let g = grade(31, &fixture(31, "no_length_keeps_connection_open.py"), &[]);
    let expected: Vec<_> = ALL_31_BUT_LISTENS
        .iter()
        .filter(|s| **s != CLIENT_CLOSE)
        .map(|s| (*s, TimedOut))
        .collect();
    assert_failures(&g, &expected);
    let m = &scenario(&g, ROOT).message;
    assert!(
        m.contains("has no Content-Length (and is not chunked)") && m.contains("kept it open"),
        "{m}"
    );
    assert!(!g.failures().contains_key(LISTENS));
}

#[test]
fn threads_joined_at_once() {
    let g = grade(32, &fixture(32, "threads_joined_at_once.py"), &[]);
    assert_failures(&g, &[(SLOW_FAST, TimedOut)]);
    let m = &scenario(&g, SLOW_FAST).message;
    assert!(
        m.contains("connection fast") && m.contains("nothing arrived"),
        "{m}"
    );
    for passing in [TEN, LEAVING] {
        assert!(!g.failures().contains_key(passing));
    }
}

#[test]
fn closes_without_saying_so() {
    let g = grade(31, &fixture(31, "closes_without_saying_so.py"), &[]);
    assert_failures(&g, &[(SECOND, Failed)]);
    let m = &scenario(&g, SECOND).message;
    assert!(
        m.contains("closed without any response") && m.contains("did not say `Connection: close`"),
        "{m}"
    );
}
