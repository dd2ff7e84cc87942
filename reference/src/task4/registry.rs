//! Who is online: the Task 4 server's directory from names to connections.
//!
//! Each connection owns an *outbox*, a bounded channel of lines that its task writes to its
//! socket. Registering puts the outbox in the directory under the client's name; delivering
//! a message to a name puts a line in that outbox.
//!
//! Guarantees:
//!
//! * A name belongs to at most one connection at a time.
//! * A name is released when its [`Registration`] is dropped — when the client says `exit`,
//!   disconnects, or its task ends in any other way. No code path can forget to release it.
//! * Delivery never waits: if a receiver's outbox is full (the receiver is not reading), the
//!   sender is told instead of being blocked. Two clients flooding each other therefore
//!   cannot deadlock the server, and memory per connection stays bounded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;

/// How many undelivered lines a connection's outbox holds.
pub const OUTBOX_CAPACITY: usize = 256;

/// The sending side of a connection's outbox.
pub type Outbox = mpsc::Sender<String>;

/// The directory of registered names. Cloning it gives another handle to the same directory.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    online: Arc<Mutex<HashMap<String, Outbox>>>,
}

/// Proof that a connection holds a name; dropping it releases the name.
#[derive(Debug)]
pub struct Registration {
    name: String,
    registry: Registry,
}

/// The requested name is already held by another connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the name '{0}' is taken")]
pub struct NameTaken(pub String);

/// Why a message could not be handed to its receiver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Nobody is registered under that name (never was, or has left).
    #[error("receiver '{0}' is not online")]
    NotOnline(String),
    /// The receiver is registered but not reading its messages.
    #[error("receiver '{0}' is not keeping up; message dropped")]
    Busy(String),
}

impl Registry {
    /// Registers `name` for the connection whose outbox is `outbox`.
    pub fn register(&self, name: &str, outbox: Outbox) -> Result<Registration, NameTaken> {
        let mut online = self.lock();
        if online.contains_key(name) {
            return Err(NameTaken(name.to_owned()));
        }
        online.insert(name.to_owned(), outbox);
        Ok(Registration {
            name: name.to_owned(),
            registry: self.clone(),
        })
    }

    /// Queues `line` for the client registered as `receiver`.
    pub fn deliver(&self, receiver: &str, line: String) -> Result<(), DeliveryError> {
        let online = self.lock();
        let outbox = online
            .get(receiver)
            .ok_or_else(|| DeliveryError::NotOnline(receiver.to_owned()))?;
        outbox.try_send(line).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => DeliveryError::Busy(receiver.to_owned()),
            // The receiver's task has just ended and is about to release the name.
            mpsc::error::TrySendError::Closed(_) => DeliveryError::NotOnline(receiver.to_owned()),
        })
    }

    /// Locks the directory. Nothing panics while holding the lock, but should that ever
    /// change, the map itself is still consistent (every operation is a single insert,
    /// lookup or removal), so a poisoned lock is simply taken over.
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Outbox>> {
        self.online.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Registration {
    /// The registered name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_exclusive_until_released() {
        let registry = Registry::default();
        let (outbox, _inbox) = mpsc::channel(1);

        let alice = registry.register("alice", outbox.clone()).unwrap();
        assert_eq!(
            registry.register("alice", outbox.clone()).unwrap_err(),
            NameTaken("alice".into())
        );
        drop(alice);
        assert!(registry.register("alice", outbox).is_ok());
    }

    #[test]
    fn delivery_reports_offline_and_full_receivers() {
        let registry = Registry::default();
        let (outbox, mut inbox) = mpsc::channel(1);
        let _bob = registry.register("bob", outbox).unwrap();

        assert_eq!(registry.deliver("bob", "one".into()), Ok(()));
        assert_eq!(
            registry.deliver("bob", "two".into()),
            Err(DeliveryError::Busy("bob".into()))
        );
        assert_eq!(inbox.try_recv().ok().as_deref(), Some("one"));
        assert_eq!(
            registry.deliver("carol", "hi".into()),
            Err(DeliveryError::NotOnline("carol".into()))
        );
    }
}
