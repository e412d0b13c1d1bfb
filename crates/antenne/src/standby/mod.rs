//! "Never dark": while an ingest's publisher is away (or the streamer
//! takes a break), its destinations keep receiving a standby stream, a
//! still picture and silence encoded to match the publisher, instead of
//! nothing.
//!
//! - [`encode`]: the loop, pre-encoded once by ffmpeg as soon as the
//!   publisher's parameters are known, kept in memory.
//! - [`player`]: plays the loop into the hub in real time.
//! - [`controller`]: one task per ingest hub: prepares the loop, starts
//!   the standby after the wait, ends the hold at the hold limit, plays
//!   the break, records the history.
//!
//! Invariants: every ingest hub gets a controller (hubs added while
//! running are picked up within a second), which holds its outputs open
//! ([`Hub::set_hold_managed`]) for the hold limit whether or not a loop
//! could be made (without one the outputs just wait, as the grace period
//! did); the relay never waits on ffmpeg.

pub mod controller;
pub mod encode;
pub mod player;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::history::History;
use crate::hub::{Hub, Hubs};

/// How long the hold may last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldLimit {
    For(Duration),
    Forever,
}

impl HoldLimit {
    /// `forever`, or a number of seconds.
    pub fn parse(s: &str) -> Result<HoldLimit, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("forever") {
            return Ok(HoldLimit::Forever);
        }
        s.parse::<u64>()
            .map(|n| HoldLimit::For(Duration::from_secs(n)))
            .map_err(|_| format!("{s:?} is neither a number of seconds nor \"forever\""))
    }

    /// As a duration that can be added to an instant (a year for ever).
    pub fn as_duration(self) -> Duration {
        match self {
            HoldLimit::For(d) => d,
            HoldLimit::Forever => Duration::from_secs(365 * 24 * 3600),
        }
    }
}

/// Settings of the standby.
#[derive(Debug, Clone)]
pub struct StandbyConfig {
    pub ffmpeg: PathBuf,
    /// `false` (`--no-standby`): outputs are held without a picture.
    pub enabled: bool,
    /// Time between the publisher leaving and the standby starting.
    pub wait: Duration,
    pub hold_limit: HoldLimit,
}

/// What the API and the dashboard show of an ingest's standby.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StandbyStatus {
    /// `live`, `waiting` (publisher gone, standby about to start),
    /// `standby`, `holding` (publisher gone, no standby possible: outputs
    /// wait), `idle`.
    pub state: StandbyState,
    /// Since when in this state.
    #[serde(with = "crate::standby::rfc3339_opt")]
    pub since: Option<SystemTime>,
    /// When the hold ends and destinations close (none: for ever, or not
    /// holding).
    #[serde(with = "crate::standby::rfc3339_opt")]
    pub ends_at: Option<SystemTime>,
    /// The streamer's break is on.
    pub on_break: bool,
    /// Whether a standby loop is ready for this ingest.
    pub ready: bool,
    /// Why no standby can be made for this ingest (then the outputs wait
    /// without a picture, as before).
    pub unavailable: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StandbyState {
    Idle,
    Live,
    Waiting,
    Standby,
    Holding,
}

impl Default for StandbyStatus {
    fn default() -> Self {
        StandbyStatus {
            state: StandbyState::Idle,
            since: None,
            ends_at: None,
            on_break: false,
            ready: false,
            unavailable: None,
        }
    }
}

/// Times as RFC 3339 strings (seconds), as the rest of the API.
pub(crate) mod rfc3339_opt {
    use std::time::SystemTime;
    pub fn serialize<S: serde::Serializer>(
        t: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&humantime::format_rfc3339_seconds(*t).to_string()),
            None => s.serialize_none(),
        }
    }
}

/// Why a break cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BreakError {
    #[error("no ingest {0}")]
    NoSuchIngest(String),
    #[error("the standby picture is not available for this ingest: {0}")]
    Unavailable(String),
    #[error("the standby picture is not ready yet (it is made once the stream's format is known)")]
    NotReady,
}

/// One ingest's controller, as the registry holds it.
#[derive(Debug)]
struct Entry {
    hub: Arc<Hub>,
    status: watch::Receiver<StandbyStatus>,
    on_break: watch::Sender<bool>,
    stop: CancellationToken,
}

/// The standby of every ingest.
#[derive(Debug)]
pub struct Standby {
    config: StandbyConfig,
    history: History,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Standby {
    /// Starts controllers for the hubs there are and those added later.
    pub fn start(
        config: StandbyConfig,
        hubs: Hubs,
        history: History,
        shutdown: CancellationToken,
    ) -> Arc<Standby> {
        let standby = Arc::new(Standby {
            config,
            history,
            entries: Mutex::default(),
        });
        standby.reconcile(&hubs, &shutdown);
        let s = standby.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => s.reconcile(&hubs, &shutdown),
                }
            }
        });
        standby
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One controller per hub: new hubs get one, removed hubs lose theirs.
    fn reconcile(&self, hubs: &Hubs, shutdown: &CancellationToken) {
        let all = hubs.all();
        let mut entries = self.entries();
        entries.retain(|_, e| {
            let keep = all.iter().any(|h| Arc::ptr_eq(h, &e.hub));
            if !keep {
                e.stop.cancel();
            }
            keep
        });
        for hub in all {
            let id = crate::ingest_keys::id_of(hub.key().expose());
            if entries.contains_key(&id) {
                continue;
            }
            hub.set_hold_managed(true);
            let (status_tx, status) = watch::channel(StandbyStatus::default());
            let (on_break, break_rx) = watch::channel(false);
            let stop = shutdown.child_token();
            tokio::spawn(
                controller::Controller {
                    hub: hub.clone(),
                    ingest: id.clone(),
                    config: self.config.clone(),
                    history: self.history.clone(),
                    status: status_tx,
                    on_break: break_rx,
                    stop: stop.clone(),
                }
                .run(),
            );
            entries.insert(
                id,
                Entry {
                    hub,
                    status,
                    on_break,
                    stop,
                },
            );
        }
    }

    /// The standby of one ingest.
    pub fn status(&self, ingest: &str) -> Option<StandbyStatus> {
        self.entries()
            .get(ingest)
            .map(|e| e.status.borrow().clone())
    }

    /// Every ingest's standby, by ingest id.
    pub fn all(&self) -> Vec<(String, StandbyStatus)> {
        self.entries()
            .iter()
            .map(|(id, e)| (id.clone(), e.status.borrow().clone()))
            .collect()
    }

    /// Starts or ends the streamer's break on one ingest.
    pub fn set_break(&self, ingest: &str, on: bool) -> Result<StandbyStatus, BreakError> {
        let entries = self.entries();
        let e = entries
            .get(ingest)
            .ok_or_else(|| BreakError::NoSuchIngest(ingest.to_owned()))?;
        if on {
            let st = e.status.borrow().clone();
            if let Some(why) = st.unavailable {
                return Err(BreakError::Unavailable(why));
            }
            if !st.ready {
                return Err(BreakError::NotReady);
            }
        }
        e.hub.set_break(on);
        e.on_break.send_replace(on);
        let status = e.status.borrow().clone();
        Ok(status)
    }
}
