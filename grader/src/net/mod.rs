//! The grader's side of the network: the ports it hands to student servers, the connections it
//! opens or accepts, the "no server here" ports for refused-connection scenarios, and the
//! network (host or a namespace of the scenario's own) they all live in, and that network's
//! socket tables (who listens, what is still queued), read through netlink; in a namespace,
//! also the ports a client dialled where its connection could not be redirected.

pub mod conn;
pub mod dials;
pub mod nat;
pub mod netns;
pub mod ports;
pub mod tables;
