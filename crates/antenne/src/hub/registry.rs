//! [`Hubs`]: the registry of ingest hubs, one per ingest key, shared by
//! the ingest listener, the destinations' reconciler, the API and OBS
//! control. It lives beside the hub rather than in the listener: the
//! listener is one of its users, not its owner.
//!
//! Invariants: lookups by key compare in constant time; a live hub is
//! never removed; the lock is a short std `RwLock` never held across I/O
//! or `.await`; every addition and removal bumps [`Hubs::watch_changes`]
//! (after the change), so followers of the set (standby, recording) wait
//! on it instead of polling.

use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use super::Hub;

/// The hubs, one per ingest key. Keys can be added and removed while
/// running.
#[derive(Debug, Clone)]
pub struct Hubs {
    inner: Arc<RwLock<Vec<Arc<Hub>>>>,
    /// Bumped after each addition or removal.
    changes: Arc<watch::Sender<u64>>,
}

impl Default for Hubs {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl Hubs {
    pub fn new(hubs: Vec<Arc<Hub>>) -> Self {
        Self {
            inner: Arc::new(RwLock::new(hubs)),
            changes: Arc::new(watch::channel(0).0),
        }
    }

    /// Changes each time a hub is added or removed (its value counts the
    /// changes). Subscribe before reading [`Hubs::all`] so that no change
    /// is missed.
    pub fn watch_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Hub>>> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The hub of a key a publisher sent (compared in constant time).
    pub fn find(&self, key: &str) -> Option<Arc<Hub>> {
        self.read().iter().find(|h| h.key().matches(key)).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Hub>> {
        self.read().clone()
    }

    pub fn first(&self) -> Option<Arc<Hub>> {
        self.read().first().cloned()
    }

    pub fn add(&self, hub: Arc<Hub>) {
        self.inner
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(hub);
        self.changed();
    }

    /// Removes the hub of `key`, unless a publisher is live on it.
    pub fn remove(&self, key: &str) -> Result<(), &'static str> {
        let mut hubs = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let Some(i) = hubs.iter().position(|h| h.key().matches(key)) else {
            return Err("no such ingest key");
        };
        if hubs[i].is_live() {
            return Err("this ingest key is live: stop the stream in OBS first");
        }
        hubs.remove(i);
        drop(hubs);
        self.changed();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::QueueLimits;
    use crate::secret::StreamKey;

    #[test]
    fn adding_and_removing_a_hub_is_seen_by_a_follower() {
        let hubs = Hubs::default();
        let mut changes = hubs.watch_changes();
        assert!(!changes.has_changed().expect("sender alive"));
        hubs.add(Hub::new(StreamKey::new("k1"), QueueLimits::default()));
        assert!(changes.has_changed().expect("sender alive"));
        changes.mark_unchanged();
        assert!(hubs.remove("nope").is_err());
        assert!(
            !changes.has_changed().expect("sender alive"),
            "nothing removed"
        );
        hubs.remove("k1").expect("removed");
        assert!(changes.has_changed().expect("sender alive"));
    }
}
