//! Outputs: each enabled destination is a supervised task that connects to
//! its platform, relays the hub's frames, and reconnects on its own.
//!
//! - [`url`]: what the user typed, resolved into a [`url::Target`].
//! - [`connection`]: one connection (TCP/TLS, publish, relay loop).
//! - [`srt`]: SRT destinations (MPEG-TS over SRT), and the dispatch
//!   between RTMP and SRT the supervisor calls.
//! - [`supervisor`]: the retry loop and its state machine.
//! - [`tls`]: failed TLS handshakes explained in plain words.

pub mod connection;
pub mod dial;
pub mod feed;
pub mod lanes;
pub mod srt;
pub mod supervisor;
pub mod tls;
pub mod url;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use crate::rate::RateMeter;

/// Where a destination is in its life. One value at a time: a destination
/// cannot be both live and retrying.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputState {
    /// Switched off by the user.
    Disabled,
    /// Waiting for the ingest to go live.
    Idle,
    /// Connecting and publishing (attempt 1 is the first).
    Connecting { attempt: u32 },
    /// Publishing to the platform.
    Live { since: SystemTime },
    /// The last attempt failed; the next one is at `next_try`.
    Retrying {
        attempt: u32,
        next_try: SystemTime,
        error: String,
    },
    /// The platform refused the stream (usually the key); retried slowly.
    Rejected {
        next_try: SystemTime,
        message: String,
    },
}

impl OutputState {
    pub fn name(&self) -> &'static str {
        match self {
            OutputState::Disabled => "disabled",
            OutputState::Idle => "idle",
            OutputState::Connecting { .. } => "connecting",
            OutputState::Live { .. } => "live",
            OutputState::Retrying { .. } => "retrying",
            OutputState::Rejected { .. } => "rejected",
        }
    }
}

/// The most recent failure of a destination and when it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct PastError {
    pub message: String,
    pub at: SystemTime,
}

/// What the API shows of a destination's life: its state and counters.
/// Written by the destination's task, read by the API.
///
/// Both the last error and the reconnect count live as long as the process
/// (they survive switching the destination off and on), so that a problem
/// that came and went stays visible:
/// - `last_error` is the most recent failure, kept once the destination is
///   live again; its time says whether it is current or past.
/// - `reconnects` counts the times antenne had to connect again: one per
///   failed attempt and one per dropped connection (it tries again after
///   each), so four failed attempts then a success count 4. Connecting
///   because the ingest went live, the destination was switched on, or the
///   publisher came back after a clean close counts nothing.
#[derive(Debug)]
pub struct OutputStats {
    state: Mutex<OutputState>,
    last_error: Mutex<Option<PastError>>,
    pub bytes: RateMeter,
    reconnects: AtomicU64,
    dropped: AtomicU64,
}

impl OutputStats {
    pub fn new(enabled: bool) -> Self {
        Self {
            state: Mutex::new(if enabled {
                OutputState::Idle
            } else {
                OutputState::Disabled
            }),
            last_error: Mutex::new(None),
            bytes: RateMeter::default(),
            reconnects: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    pub fn state(&self) -> OutputState {
        self.state
            .lock()
            .map(|s| s.clone())
            .unwrap_or(OutputState::Idle)
    }

    pub fn set_state(&self, state: OutputState) {
        if let Ok(mut s) = self.state.lock() {
            *s = state;
        }
    }

    /// Sets the state unless `cancel` fired: a stopped task must not
    /// overwrite what its owner set (`disabled`). The check happens under
    /// the lock, and owners cancel before they set.
    pub fn set_state_unless_cancelled(
        &self,
        cancel: &tokio_util::sync::CancellationToken,
        state: OutputState,
    ) {
        if let Ok(mut s) = self.state.lock() {
            if !cancel.is_cancelled() {
                *s = state;
            }
        }
    }

    /// The most recent failure, kept after recovery (see the type's doc).
    pub fn last_error(&self) -> Option<PastError> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// Records a failure, now.
    pub fn set_error(&self, error: String) {
        if let Ok(mut e) = self.last_error.lock() {
            *e = Some(PastError {
                message: error,
                at: SystemTime::now(),
            });
        }
    }

    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// Counts one reconnect (an attempt failed or a connection dropped).
    pub fn count_reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn set_dropped(&self, n: u64) {
        self.dropped.store(n, Ordering::Relaxed);
    }
}
