//! The event history (went live, disconnected, retried with error X,
//! toggled by whom), written to the store by a thread of its own so that no
//! relay task ever waits on the disk.

use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;

use crate::store::{self, Event, Store};

/// Events waiting to be written, at most; past that they are dropped (and
/// the drop logged) rather than blocking anything.
const BACKLOG: usize = 4096;

/// Where events go. Cheap to clone.
#[derive(Clone, Debug)]
pub struct History {
    tx: Option<SyncSender<Event>>,
}

impl History {
    /// Starts the writer thread; it ends when every handle is dropped.
    pub fn start(store: Arc<Store>) -> History {
        let (tx, rx) = sync_channel::<Event>(BACKLOG);
        let spawned = std::thread::Builder::new()
            .name("history".into())
            .spawn(move || {
                let mut failing = false;
                for event in rx {
                    match store.insert_event(&event) {
                        Ok(()) => failing = false,
                        Err(e) if !failing => {
                            failing = true;
                            tracing::warn!(error = %e, "event history not saved");
                        }
                        Err(_) => {}
                    }
                }
            });
        match spawned {
            Ok(_) => History { tx: Some(tx) },
            Err(e) => {
                tracing::warn!(error = %e, "event history disabled: cannot start its thread");
                History { tx: None }
            }
        }
    }

    /// A history that keeps nothing (tests of other parts).
    pub fn disabled() -> History {
        History { tx: None }
    }

    /// Records an event. Never blocks.
    pub fn record(
        &self,
        kind: &str,
        destination: Option<(&str, &str)>,
        message: impl Into<String>,
        actor: Option<&str>,
    ) {
        let Some(tx) = &self.tx else { return };
        let event = Event {
            id: 0,
            at: store::now(),
            kind: kind.to_owned(),
            destination_id: destination.map(|(id, _)| id.to_owned()),
            destination_name: destination
                .map(|(_, name)| name.to_owned())
                .filter(|n| !n.is_empty()),
            message: message.into(),
            actor: actor.map(str::to_owned),
        };
        if let Err(TrySendError::Full(_)) = tx.try_send(event) {
            tracing::warn!("event history backlog full: event dropped");
        }
    }
}
