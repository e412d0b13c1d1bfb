//! What a destination's connection relays, picked when the connection
//! starts ([`Feed::pick`]): the supervisor waits for [`Feed::live`], then
//! asks the feed for a subscription each time it connects. A plain hub
//! (an ingest, or a rendition's output) always gives its own stream; a
//! destination whose source is "vertical" looks at the ingest's tracks at
//! that moment (see `destinations::source`), so the choice follows the
//! ingest across restarts.
//!
//! Invariant: whatever the pick holds ([`Picked::hold`], e.g. a
//! rendition's demand guard) lives exactly as long as that connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::watch;

use crate::hub::{Hub, Subscription};

/// A boxed future (the trait is used as `dyn Feed`).
pub type PickFuture<'a> = Pin<Box<dyn Future<Output = Result<Picked, String>> + Send + 'a>>;

/// What one connection relays.
pub struct Picked {
    pub sub: Subscription,
    /// Held while the connection runs (dropped with it).
    pub hold: Option<Box<dyn Send + Sync>>,
}

impl std::fmt::Debug for Picked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Picked").finish_non_exhaustive()
    }
}

/// Where a destination's frames come from.
pub trait Feed: Send + Sync {
    /// Whether the publisher the destination waits for is live.
    fn live(&self) -> watch::Receiver<bool>;
    /// What the next connection relays; `Err` is the text the user sees
    /// (the supervisor retries later).
    fn pick(&self) -> PickFuture<'_>;
}

impl Feed for Arc<Hub> {
    fn live(&self) -> watch::Receiver<bool> {
        self.watch_on_air()
    }

    fn pick(&self) -> PickFuture<'_> {
        Box::pin(async move {
            Ok(Picked {
                sub: self.subscribe(),
                hold: None,
            })
        })
    }
}
