//! The ClassChat bonus tasks (5 group chat, 6 offline messages, 7 file transfer): one server
//! that speaks the Task 4 protocol plus the bonus messages of `tasks/PROTOCOL.md` (section
//! "ClassChat bonus tasks"), and serves all three tasks.
//!
//! ```text
//! alice → server  {"status":"group_create","sender":"alice","group":"lab"}
//! server → alice  {"status":"ok","text":"created group 'lab'"}
//! alice → server  {"status":"group_message","sender":"alice","group":"lab","text":"hi"}
//! server → bob    {"status":"group_message","sender":"alice","group":"lab","text":"hi"}
//! alice → server  {"status":"1","sender":"alice","receiver":"carol","text":"later"}   (carol left)
//! server → alice  {"status":"ok","text":"carol is offline; the message is stored ..."}
//! alice → server  {"status":"file","sender":"alice","receiver":"bob","filename":"a.bin","data":"AAEC"}
//! server → bob    {"status":"file","sender":"alice","receiver":"bob","filename":"a.bin","data":"AAEC"}
//! ```
//!
//! Guarantees: everything Task 4's server guarantees (names exclusive, forged senders replaced,
//! malformed lines answered with an error, no panics), plus: a group message reaches every
//! member but its sender and no one else; stored messages are delivered in order, right after
//! the registration confirmation, exactly once; file data is passed on unchanged (it is base64
//! text) in lines of up to [`server::MAX_BONUS_LINE`] bytes; a partly received line never holds
//! up another connection (each connection has its own task and buffer). The client of tasks 5-7
//! is the Task 4 client (the bonus tasks grade servers only).

pub mod directory;
pub mod protocol;
pub mod server;
