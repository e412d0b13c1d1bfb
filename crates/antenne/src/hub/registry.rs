//! [`Hubs`]: the registry of ingest hubs, one per ingest key, shared by
//! the ingest listener, the destinations' reconciler, the API and OBS
//! control. It lives beside the hub rather than in the listener: the
//! listener is one of its users, not its owner.
//!
//! Invariants: lookups by key compare in constant time; a live hub is
//! never removed; the lock is a short std `RwLock` never held across I/O
//! or `.await`.

use std::sync::{Arc, RwLock};

use super::Hub;

/// The hubs, one per ingest key. Keys can be added and removed while
/// running.
#[derive(Debug, Clone, Default)]
pub struct Hubs {
    inner: Arc<RwLock<Vec<Arc<Hub>>>>,
}

impl Hubs {
    pub fn new(hubs: Vec<Arc<Hub>>) -> Self {
        Self {
            inner: Arc::new(RwLock::new(hubs)),
        }
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
        Ok(())
    }
}
