//! The ClassChat bonus tasks (5 group chat, 6 offline messages, 7 file transfer): the bundled
//! reference scores 100% on each, and every fixture gets exactly the verdicts its mistake
//! explains, with a message that names the real cause.

use grader::verdict::Status::*;

use crate::support::{
    assert_failures, check_bundled_reference, check_fixture, fixture, grade, scenario,
};

// Task 5
const EVERY_MEMBER: &str = "a group message reaches every member";
const NOT_BACK: &str = "a group message does not come back to its sender";
const OUTSIDE: &str = "a group message reaches no one outside the group";
const LEFT_GROUP: &str = "a member who left the group receives nothing more";
// Task 6
const IN_ORDER: &str = "several stored messages arrive complete and in order";
const ONCE: &str = "stored messages are delivered only once";
// Task 7
const BINARY: &str = "a binary file with NUL bytes arrives byte-exact";
const LARGE: &str = "a 200 KiB file arrives whole";
const NOT_BLOCKED: &str = "a transfer in progress does not block other chat";

#[test]
fn references_score_full_marks() {
    for task in [5, 6, 7] {
        check_bundled_reference(task);
    }
}

// ------------------------------------------------------------------ Task 5: group chat

#[test]
fn correct_groups() {
    check_fixture(5, "correct_groups.py", &[]);
}

#[test]
fn group_echoes_to_sender() {
    let g = grade(5, &fixture(5, "group_echoes_to_sender.py"), &[]);
    assert_failures(&g, &[(NOT_BACK, Failed)]);
    let s = scenario(&g, NOT_BACK);
    assert!(s.message.contains("on connection alice"), "{}", s.message);
    assert_eq!(scenario(&g, EVERY_MEMBER).status, Passed);
}

#[test]
fn group_message_to_everyone() {
    let g = grade(5, &fixture(5, "group_message_to_everyone.py"), &[]);
    assert_failures(&g, &[(OUTSIDE, Failed), (LEFT_GROUP, Failed)]);
    assert!(scenario(&g, OUTSIDE).message.contains("on connection dave"));
}

#[test]
fn leave_keeps_member() {
    let g = grade(5, &fixture(5, "leave_keeps_member.py"), &[]);
    assert_failures(&g, &[(LEFT_GROUP, Failed)]);
    let s = scenario(&g, LEFT_GROUP);
    assert!(s.message.contains("on connection carol"), "{}", s.message);
}

// ------------------------------------------------------------------ Task 6: offline messages

#[test]
fn correct_offline() {
    check_fixture(6, "correct_offline.py", &[]);
}

#[test]
fn offline_out_of_order() {
    let g = grade(6, &fixture(6, "offline_out_of_order.py"), &[]);
    assert_failures(&g, &[(IN_ORDER, TimedOut)]);
    // The messages did come, reversed: the verdict says so rather than "nothing arrived" alone.
    let s = scenario(&g, IN_ORDER);
    assert!(s.message.contains("out of order"), "{}", s.message);
}

#[test]
fn offline_keeps_only_first() {
    let g = grade(6, &fixture(6, "offline_keeps_only_first.py"), &[]);
    assert_failures(&g, &[(IN_ORDER, TimedOut)]);
    let s = scenario(&g, IN_ORDER);
    assert!(s.message.contains("stored 1 of 5"), "{}", s.message);
    assert!(!s.message.contains("out of order"), "{}", s.message);
}

#[test]
fn offline_never_cleared() {
    check_fixture(6, "offline_never_cleared.py", &[(ONCE, Failed)]);
}

// ------------------------------------------------------------------ Task 7: file transfer

#[test]
fn correct_files() {
    check_fixture(7, "correct_files.py", &[]);
}

#[test]
fn file_through_text_mode() {
    let g = grade(7, &fixture(7, "file_through_text_mode.py"), &[]);
    assert_failures(
        &g,
        &[
            (BINARY, TimedOut),
            (LARGE, TimedOut),
            (NOT_BLOCKED, TimedOut),
        ],
    );
    // The file arrived, changed: the message measures the difference instead of quoting
    // the whole content. Byte 13 (\r, at base64 character 18) is the first one text mode
    // changes.
    let s = scenario(&g, BINARY);
    assert!(
        s.message
            .contains("characters where 1368 were expected, first different at character 18"),
        "{}",
        s.message
    );
    assert!(s.message.len() < 3000, "{}", s.message.len());
    // The chat in the middle of the split transfer went through: it failed at the file.
    assert!(
        scenario(&g, NOT_BLOCKED).message.contains("\"filename\""),
        "{}",
        scenario(&g, NOT_BLOCKED).message
    );
}

#[test]
fn file_single_recv() {
    let g = grade(7, &fixture(7, "file_single_recv.py"), &[]);
    assert_failures(&g, &[(LARGE, TimedOut), (NOT_BLOCKED, TimedOut)]);
    assert!(scenario(&g, LARGE).message.contains("(273068 characters)"));
}

#[test]
fn file_blocks_server() {
    let g = grade(7, &fixture(7, "file_blocks_server.py"), &[]);
    assert_failures(&g, &[(NOT_BLOCKED, TimedOut)]);
    let s = scenario(&g, NOT_BLOCKED);
    assert!(
        s.message.contains("meanwhile") && s.message.contains("on connection dave"),
        "{}",
        s.message
    );
}
