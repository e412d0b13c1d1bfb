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
//! running are picked up as they are added: the registry's change watch
//! wakes the reconciler, nothing polls), which holds its outputs open
//! ([`Hub::set_hold_managed`]) for the hold limit whether or not a loop
//! could be made (without one the outputs just wait, as the grace period
//! did); the relay never waits on ffmpeg.

pub mod controller;
pub mod encode;
pub mod player;
pub mod settings;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::history::History;
use crate::hub::{Hub, Hubs};
use crate::store::{Store, StoredStandby};
use settings::{Effective, SettingsJson};

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
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
}

/// One ingest's controller, as the registry holds it.
#[derive(Debug)]
struct Entry {
    hub: Arc<Hub>,
    status: watch::Receiver<StandbyStatus>,
    on_break: watch::Sender<bool>,
    stop: CancellationToken,
}

/// Whether a save changes the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImageChange {
    Keep,
    Replaced,
}

/// What the controllers share: settings, defaults, history.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: StandbyConfig,
    pub(crate) history: History,
    /// Each ingest's stored settings (without the picture's bytes) and the
    /// picture's version.
    stored: RwLock<HashMap<String, (StoredStandby, u64)>>,
    /// Where pictures are written for ffmpeg.
    dir: PathBuf,
    /// Bumped after each settings or picture change, so the controllers
    /// (which otherwise sleep) look at their settings again.
    changes: watch::Sender<u64>,
}

impl Shared {
    /// Changes after each settings or picture change (any ingest's).
    pub(crate) fn watch_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// An ingest's settings with the defaults filled in.
    pub(crate) fn effective(&self, ingest: &str) -> Effective {
        let stored = self.stored.read().unwrap_or_else(|e| e.into_inner());
        let s = stored.get(ingest);
        let hold_limit = match s {
            Some((s, _)) if s.hold_forever => HoldLimit::Forever,
            Some((
                StoredStandby {
                    hold_secs: Some(secs),
                    ..
                },
                _,
            )) => HoldLimit::For(Duration::from_secs(*secs)),
            _ => self.config.hold_limit,
        };
        Effective {
            wait: s
                .and_then(|(s, _)| s.wait_ms)
                .map(Duration::from_millis)
                .unwrap_or(self.config.wait),
            hold_limit,
            image: s
                .filter(|(s, _)| s.image.is_some())
                .map(|(_, v)| (settings::image_path(&self.dir, ingest), *v)),
        }
    }
}

/// The standby of every ingest.
#[derive(Debug)]
pub struct Standby {
    shared: Arc<Shared>,
    store: Arc<Store>,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Standby {
    /// Loads the settings (pictures written to `dir` for ffmpeg) and
    /// starts controllers for the hubs there are and those added later.
    pub async fn start(
        config: StandbyConfig,
        dir: PathBuf,
        store: Arc<Store>,
        hubs: Hubs,
        history: History,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Arc<Standby>> {
        let d = dir.clone();
        let stored = store
            .off_runtime(move |s| {
                let rows = s.standby_settings()?;
                let mut map = HashMap::new();
                for mut row in rows {
                    if let Some((bytes, _)) = &row.image {
                        let path = settings::image_path(&d, &row.ingest_id);
                        let written = std::fs::create_dir_all(&d)
                            .and_then(|()| std::fs::write(&path, bytes));
                        if let Err(e) = written {
                            tracing::warn!(file = %path.display(), error = %e, "cannot write the standby picture: antenne's card is used");
                            row.image = None;
                        } else {
                            row.image = Some((Vec::new(), String::new()));
                        }
                    }
                    map.insert(row.ingest_id.clone(), (row, 1));
                }
                Ok(map)
            })
            .await?;
        let standby = Arc::new(Standby {
            shared: Arc::new(Shared {
                config,
                history,
                stored: RwLock::new(stored),
                dir,
                changes: watch::channel(0).0,
            }),
            store,
            entries: Mutex::default(),
        });
        // Subscribed before the first look: a hub added in between is seen.
        let mut changes = hubs.watch_changes();
        standby.reconcile(&hubs, &shutdown);
        let s = standby.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = changes.changed() => {
                        if r.is_err() {
                            return;
                        }
                        s.reconcile(&hubs, &shutdown);
                    }
                }
            }
        });
        Ok(standby)
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
                    shared: self.shared.clone(),
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

    fn stored(&self, ingest: &str) -> Result<StoredStandby, BreakError> {
        if !self.entries().contains_key(ingest) {
            return Err(BreakError::NoSuchIngest(ingest.to_owned()));
        }
        let stored = self.shared.stored.read().unwrap_or_else(|e| e.into_inner());
        Ok(stored
            .get(ingest)
            .map(|(s, _)| s.clone())
            .unwrap_or_else(|| StoredStandby {
                ingest_id: ingest.to_owned(),
                ..StoredStandby::default()
            }))
    }

    /// An ingest's settings as the API shows them.
    pub fn settings(&self, ingest: &str) -> Result<SettingsJson, BreakError> {
        let s = self.stored(ingest)?;
        Ok(SettingsJson {
            wait_ms: s.wait_ms,
            hold_limit: if s.hold_forever {
                Some(serde_json::Value::from("forever"))
            } else {
                s.hold_secs.map(serde_json::Value::from)
            },
            image: s.image.is_some(),
        })
    }

    /// Saves (off the runtime) and applies an ingest's settings. The
    /// picture is left as it is.
    pub async fn set_settings(
        &self,
        ingest: &str,
        json: SettingsJson,
    ) -> Result<SettingsJson, BreakError> {
        json.check().map_err(BreakError::Invalid)?;
        let hold = json.hold().map_err(BreakError::Invalid)?;
        let mut row = self.stored(ingest)?;
        row.wait_ms = json.wait_ms;
        row.hold_forever = hold == Some(HoldLimit::Forever);
        row.hold_secs = match hold {
            Some(HoldLimit::For(d)) => Some(d.as_secs()),
            _ => None,
        };
        self.save(row, ImageChange::Keep).await?;
        self.settings(ingest)
    }

    /// Checks, saves and applies an ingest's picture (`None`: back to
    /// antenne's card).
    pub async fn set_image(&self, ingest: &str, bytes: Option<Vec<u8>>) -> Result<(), BreakError> {
        let row = self.stored(ingest)?;
        let Some(bytes) = bytes else {
            let path = settings::image_path(&self.shared.dir, ingest);
            let _ = tokio::fs::remove_file(&path).await;
            return self
                .save(StoredStandby { image: None, ..row }, ImageChange::Replaced)
                .await;
        };
        let kind = settings::image_type(&bytes).map_err(BreakError::Invalid)?;
        // Checked in a file of its own: the one in use stays until this
        // one is known good.
        let dir = self.shared.dir.clone();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| BreakError::Invalid(format!("cannot write the picture: {e}")))?;
        let trial = dir.join(format!("{ingest}.new"));
        tokio::fs::write(&trial, &bytes)
            .await
            .map_err(|e| BreakError::Invalid(format!("cannot write the picture: {e}")))?;
        if let Err(e) = settings::decodes(&self.shared.config.ffmpeg, &trial).await {
            let _ = tokio::fs::remove_file(&trial).await;
            return Err(BreakError::Invalid(e));
        }
        tokio::fs::rename(&trial, settings::image_path(&dir, ingest))
            .await
            .map_err(|e| BreakError::Invalid(format!("cannot write the picture: {e}")))?;
        let image = Some((bytes, kind.to_string()));
        self.save(StoredStandby { image, ..row }, ImageChange::Replaced)
            .await
    }

    /// Stores a row, then swaps it in (the picture's bytes stay in SQLite
    /// only; a replaced picture bumps the version the controllers compare).
    async fn save(&self, row: StoredStandby, change: ImageChange) -> Result<(), BreakError> {
        let r = row.clone();
        self.store
            .off_runtime(move |s| match change {
                ImageChange::Keep => s.put_standby_limits(&r),
                ImageChange::Replaced => s.put_standby_settings(&r),
            })
            .await?;
        let mut stored = self
            .shared
            .stored
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let version = stored.get(&row.ingest_id).map_or(1, |(_, v)| *v)
            + u64::from(change == ImageChange::Replaced);
        let light = StoredStandby {
            image: row.image.as_ref().map(|_| (Vec::new(), String::new())),
            ..row
        };
        stored.insert(light.ingest_id.clone(), (light, version));
        drop(stored);
        self.shared.changes.send_modify(|n| *n += 1);
        Ok(())
    }

    /// A PNG of the standby picture (at most 640x360, the ingest's shape
    /// when known).
    pub async fn preview(&self, ingest: &str, size: (u32, u32)) -> Result<Vec<u8>, BreakError> {
        self.stored(ingest)?;
        let spec = encode::LoopSpec {
            width: size.0,
            height: size.1,
            fps_milli: 1000,
            audio: None,
            image: self.shared.effective(ingest).image.map(|(p, _)| p),
            image_version: 0,
        };
        encode::preview_png(&self.shared.config.ffmpeg, &spec)
            .await
            .map_err(BreakError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::QueueLimits;
    use crate::secret::StreamKey;

    #[tokio::test(start_paused = true)]
    async fn a_key_added_while_running_gets_its_controller_with_the_clock_stopped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(Store::open(dir.path()).expect("store"));
        let hubs = Hubs::new(vec![Hub::new(
            StreamKey::new("one"),
            QueueLimits::default(),
        )]);
        let shutdown = CancellationToken::new();
        let config = StandbyConfig {
            ffmpeg: "ffmpeg".into(),
            enabled: true,
            wait: Duration::from_secs(3),
            hold_limit: HoldLimit::For(Duration::from_secs(60)),
        };
        let standby = Standby::start(
            config,
            dir.path().join("standby"),
            store,
            hubs.clone(),
            History::disabled(),
            shutdown.clone(),
        )
        .await
        .expect("standby");
        let start = tokio::time::Instant::now();
        assert_eq!(standby.all().len(), 1);
        let two = Hub::new(StreamKey::new("two"), QueueLimits::default());
        hubs.add(two.clone());
        let id = crate::ingest_keys::id_of("two");
        for _ in 0..1000 {
            if standby.status(&id).is_some() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(
            standby.status(&id).is_some(),
            "a controller for the new key"
        );
        assert!(two.hold_managed(), "its outputs are held by it");
        hubs.remove("two").expect("removed");
        for _ in 0..1000 {
            if standby.status(&id).is_none() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(standby.status(&id).is_none(), "gone with its key");
        assert_eq!(tokio::time::Instant::now(), start, "no timer was needed");
        shutdown.cancel();
    }
}
