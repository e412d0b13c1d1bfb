//! A list read far more often than it changes (destinations, renditions,
//! webhooks): readers take a snapshot (`Arc`) and never wait on a writer
//! for longer than the pointer swap; a writer replaces the list whole.
//!
//! Invariant: a snapshot never changes; writers serialize among
//! themselves elsewhere (each owner has its writers' lock), so `set` is
//! only ever a swap. A poisoned lock is recovered: the list inside is
//! always a complete one.

use std::sync::{Arc, RwLock};

#[derive(Debug)]
pub struct Published<T> {
    current: RwLock<Arc<Vec<T>>>,
}

impl<T> Default for Published<T> {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl<T> Published<T> {
    pub fn new(list: Vec<T>) -> Self {
        Published {
            current: RwLock::new(Arc::new(list)),
        }
    }

    /// The current list.
    pub fn get(&self) -> Arc<Vec<T>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Swaps in a new list.
    pub fn set(&self, list: Vec<T>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(list);
    }
}
