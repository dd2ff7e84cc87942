//! The grader's side of the network: the ports it hands to student servers, the connections it
//! opens or accepts, and the "no server here" ports for refused-connection scenarios.

pub mod conn;
pub mod ports;
