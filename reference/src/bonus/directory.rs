//! The bonus server's directory: who is online, who has ever registered, the messages stored
//! for users who are offline, and the groups with their members.
//!
//! Guarantees (beyond those of Task 4's registry, whose outbox scheme it shares):
//!
//! * Registering a name and taking its stored messages happen under one lock, so a message
//!   sent at that moment is either among the stored ones or delivered live after them, never
//!   lost and never delivered twice; the stored list is emptied when taken.
//! * Stored messages keep their order (a queue per name) and are bounded
//!   ([`MAX_STORED`] per name): beyond it the sender gets an error instead of using memory.
//! * A connection's group memberships end with its [`Registration`] (exit, close or any end).
//! * Delivery never waits: a full outbox is reported to the sender.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;

pub use crate::task4::registry::{NameTaken, OUTBOX_CAPACITY, Outbox};

/// How many messages are stored for one offline name at most.
pub const MAX_STORED: usize = 1000;

#[derive(Debug, Default)]
struct State {
    online: HashMap<String, Outbox>,
    known: HashSet<String>,
    stored: HashMap<String, VecDeque<String>>,
    groups: BTreeMap<String, BTreeSet<String>>,
}

/// The shared directory; clones are handles to the same one.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    state: Arc<Mutex<State>>,
}

/// Proof that a connection holds a name; dropping it takes the name offline and out of every
/// group.
#[derive(Debug)]
pub struct Registration {
    name: String,
    directory: Directory,
}

/// What happened to a message for one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Handed to the online receiver.
    Delivered,
    /// The receiver is registered but offline: kept for their next registration.
    Stored,
}

impl Directory {
    /// Registers `name` for the connection with `outbox`; returns the registration and the
    /// messages stored for the name, in order (now removed from the store).
    pub fn register(
        &self,
        name: &str,
        outbox: Outbox,
    ) -> Result<(Registration, Vec<String>), NameTaken> {
        let mut state = self.lock();
        if state.online.contains_key(name) {
            return Err(NameTaken(name.to_owned()));
        }
        state.online.insert(name.to_owned(), outbox);
        state.known.insert(name.to_owned());
        let stored = state.stored.remove(name).unwrap_or_default();
        let registration = Registration {
            name: name.to_owned(),
            directory: self.clone(),
        };
        Ok((registration, stored.into()))
    }

    /// Delivers `line` to `receiver`, or stores it when `receiver` registered before and is
    /// offline now. The error is the text for the sender.
    pub fn send(&self, receiver: &str, line: String) -> Result<Sent, String> {
        let mut state = self.lock();
        if let Some(outbox) = state.online.get(receiver) {
            match outbox.try_send(line) {
                Ok(()) => return Ok(Sent::Delivered),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    return Err(format!(
                        "receiver '{receiver}' is not keeping up; message dropped"
                    ));
                }
                // The receiver's task just ended: store it as for an offline user.
                Err(mpsc::error::TrySendError::Closed(line)) => {
                    return store(&mut state, receiver, line);
                }
            }
        }
        if state.known.contains(receiver) {
            store(&mut state, receiver, line)
        } else {
            Err(format!("receiver '{receiver}' is not online"))
        }
    }

    /// Creates `group` with `member` in it.
    pub fn create_group(&self, group: &str, member: &str) -> Result<(), String> {
        let mut state = self.lock();
        if state.groups.contains_key(group) {
            return Err(format!("the group '{group}' exists already: join it"));
        }
        state
            .groups
            .insert(group.to_owned(), BTreeSet::from([member.to_owned()]));
        Ok(())
    }

    /// Adds `member` to an existing `group`.
    pub fn join_group(&self, group: &str, member: &str) -> Result<(), String> {
        let mut state = self.lock();
        let members = state
            .groups
            .get_mut(group)
            .ok_or_else(|| format!("there is no group '{group}'"))?;
        members.insert(member.to_owned());
        Ok(())
    }

    /// Removes `member` from `group`.
    pub fn leave_group(&self, group: &str, member: &str) -> Result<(), String> {
        let mut state = self.lock();
        let members = state
            .groups
            .get_mut(group)
            .ok_or_else(|| format!("there is no group '{group}'"))?;
        if !members.remove(member) {
            return Err(format!("you are not a member of the group '{group}'"));
        }
        Ok(())
    }

    /// Sends `line` to every online member of `group` except `sender`, who must be a member.
    pub fn group_send(&self, group: &str, sender: &str, line: &str) -> Result<(), String> {
        let state = self.lock();
        let members = state
            .groups
            .get(group)
            .ok_or_else(|| format!("there is no group '{group}'"))?;
        if !members.contains(sender) {
            return Err(format!("you are not a member of the group '{group}'"));
        }
        for member in members.iter().filter(|m| m.as_str() != sender) {
            if let Some(outbox) = state.online.get(member) {
                // A member who does not keep up misses this one; the others still get it.
                let _ = outbox.try_send(line.to_owned());
            }
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every operation leaves the maps consistent, so a poisoned lock is taken over.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn store(state: &mut State, receiver: &str, line: String) -> Result<Sent, String> {
    let queue = state.stored.entry(receiver.to_owned()).or_default();
    if queue.len() >= MAX_STORED {
        return Err(format!(
            "receiver '{receiver}' is offline and has {MAX_STORED} messages waiting; message dropped"
        ));
    }
    queue.push_back(line);
    Ok(Sent::Stored)
}

impl Registration {
    /// The registered name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut state = self.directory.lock();
        state.online.remove(&self.name);
        for members in state.groups.values_mut() {
            members.remove(&self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_messages_come_back_in_order_once() {
        let dir = Directory::default();
        let (outbox, _inbox) = mpsc::channel(4);
        let (bob, stored) = dir.register("bob", outbox.clone()).unwrap();
        assert!(stored.is_empty());
        drop(bob);
        assert_eq!(dir.send("bob", "1".into()), Ok(Sent::Stored));
        assert_eq!(dir.send("bob", "2".into()), Ok(Sent::Stored));
        assert!(dir.send("carol", "x".into()).unwrap_err().contains("carol"));
        let (bob, stored) = dir.register("bob", outbox.clone()).unwrap();
        assert_eq!(stored, ["1", "2"]);
        drop(bob);
        let (_bob, stored) = dir.register("bob", outbox).unwrap();
        assert!(stored.is_empty());
    }

    #[test]
    fn group_messages_skip_the_sender_and_former_members() {
        let dir = Directory::default();
        let (a, mut a_in) = mpsc::channel(4);
        let (b, mut b_in) = mpsc::channel(4);
        let (c, mut c_in) = mpsc::channel(4);
        let _a = dir.register("a", a).unwrap();
        let _b = dir.register("b", b).unwrap();
        let _c = dir.register("c", c).unwrap();
        dir.create_group("g", "a").unwrap();
        assert!(dir.create_group("g", "b").is_err());
        dir.join_group("g", "b").unwrap();
        dir.join_group("g", "c").unwrap();
        dir.leave_group("g", "c").unwrap();
        dir.group_send("g", "a", "hi").unwrap();
        assert_eq!(b_in.try_recv().ok().as_deref(), Some("hi"));
        assert!(a_in.try_recv().is_err());
        assert!(c_in.try_recv().is_err());
        assert!(dir.group_send("g", "c", "x").is_err());
        assert!(dir.join_group("nope", "a").unwrap_err().contains("nope"));
    }
}
