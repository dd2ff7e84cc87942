//! Task 4 (client-to-client messaging through the server, newline-delimited JSON): the reference
//! scores 100%, and every fixture gets exactly the verdicts its mistake explains.

use grader::verdict::Status::*;

use crate::support::{check_bundled_reference, check_fixture};

const PRIVATE: &str = "a private message reaches no one else";
const UNKNOWN: &str = "an unknown receiver gets an error naming it";
const MALFORMED: &str = "a malformed line gets an error and the server carries on";
const TAKEN: &str = "a taken name is refused and its holder keeps it";
const FORGED: &str = "a forged sender is not passed on";
const LEFT: &str = "a receiver who left gets the error";

#[test]
fn reference_scores_full_marks() {
    check_bundled_reference(4);
}

#[test]
fn correct_pair() {
    check_fixture(4, "correct_pair.py", &[]);
}

#[test]
fn broadcasts_every_message() {
    check_fixture(4, "broadcasts_every_message.py", &[(PRIVATE, Failed)]);
}

#[test]
fn drops_unknown_receiver() {
    check_fixture(
        4,
        "drops_unknown_receiver.py",
        &[(UNKNOWN, TimedOut), (LEFT, TimedOut)],
    );
}

#[test]
fn crashes_on_malformed_line() {
    check_fixture(4, "crashes_on_malformed_line.py", &[(MALFORMED, Crashed)]);
}

#[test]
fn duplicate_name_replaces_holder() {
    check_fixture(4, "duplicate_name_replaces_holder.py", &[(TAKEN, TimedOut)]);
}

#[test]
fn forwards_forged_sender() {
    check_fixture(4, "forwards_forged_sender.py", &[(FORGED, Failed)]);
}

#[test]
fn never_releases_names() {
    check_fixture(4, "never_releases_names.py", &[(LEFT, TimedOut)]);
}
