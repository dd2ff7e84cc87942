//! Task 4: clients send messages to each other through the server.
//!
//! Every line is one JSON object ([`protocol`]). A client registers a name; after that it
//! can send a chat message to any other registered name, and the server forwards it to that
//! client only. The server keeps a directory of who is online ([`registry`]) and tells the
//! sender when a receiver is unknown or has left.
//!
//! ```text
//! alice → server  {"status":"register","sender":"alice"}
//! server → alice  {"status":"ok","text":"registered as alice"}
//! alice → server  {"status":"1","sender":"alice","receiver":"bob","text":"hi"}
//! server → bob    {"status":"1","sender":"alice","receiver":"bob","text":"hi"}
//! alice → server  {"status":"1","sender":"alice","receiver":"carol","text":"hi"}
//! server → alice  {"status":"error","text":"receiver 'carol' is not online"}
//! ```

pub mod client;
pub mod protocol;
pub mod registry;
pub mod server;
