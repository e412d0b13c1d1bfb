//! Recording: a copy of what goes out, per ingest, as fragmented MP4
//! files that play in any player (H.264 + AAC as they come, no
//! transcoding). On demand (start/stop from the page or the API) or
//! whenever the ingest is live (a setting). One file per session, a new
//! one every `segment_minutes` (default 60).
//!
//! Layout: [`files`] (names, listing, free space, retention, repair),
//! [`session`] (one task per recording ingest: hub → muxer), [`writer`]
//! (one thread per session: the disk).
//!
//! Invariants: a recording reads its hub through a bounded queue like any
//! destination, so a slow or full disk never slows the relay; files are
//! never named after the stream key; free space under the limit stops the
//! recording with an event, and an automatic recording does not restart
//! before the ingest's next live session; automatic recordings start when
//! an ingest goes live, the settings change or a session ends (watches
//! and a [`Notify`], no polling: nothing wakes while nothing happens);
//! settings live in the store's
//! key/value table (key [`SETTING_KEY`]) and are read and written off the
//! runtime threads.

pub mod files;
mod session;
#[cfg(test)]
mod tests;
mod writer;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

pub use files::RecordingFile;
use session::{SessionCtx, SessionEnd, SessionStatus};

use crate::history::{EventKind, History};
use crate::hub::{Hub, Hubs};
use crate::store::Store;

/// The store's setting that holds [`RecordingSettings`] (JSON).
pub const SETTING_KEY: &str = "recordings";

/// Recording settings (one JSON value in the store's settings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingSettings {
    /// Ingest ids recorded whenever they are live.
    pub auto: Vec<String>,
    /// A new file every this many minutes (1 to 1440).
    pub segment_minutes: u32,
    /// Recording stops when less than this is free on its disk.
    pub min_free_mib: u64,
    /// Delete recordings older than this many days.
    pub keep_days: Option<u32>,
    /// Delete the oldest recordings past this many GiB in total.
    pub keep_gib: Option<u64>,
}

impl Default for RecordingSettings {
    fn default() -> Self {
        Self {
            auto: Vec::new(),
            segment_minutes: 60,
            min_free_mib: 2048,
            keep_days: None,
            keep_gib: None,
        }
    }
}

impl RecordingSettings {
    pub fn validate(&self) -> Result<(), RecordingError> {
        if !(1..=1440).contains(&self.segment_minutes) {
            return Err(RecordingError::Invalid(
                "segment_minutes must be 1 to 1440".into(),
            ));
        }
        if self.auto.len() > 1000
            || self.auto.iter().any(|id| {
                id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit())
            })
        {
            return Err(RecordingError::Invalid(
                "auto lists ingest ids (as in GET /api/v1/ingest)".into(),
            ));
        }
        if self.keep_days == Some(0) || self.keep_gib == Some(0) {
            return Err(RecordingError::Invalid(
                "keep_days and keep_gib are at least 1 (or null: keep everything)".into(),
            ));
        }
        Ok(())
    }
}

/// What went wrong, for the API.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("no ingest with id {0:?}")]
    NoSuchIngest(String),
    #[error("no recording with id {0:?}")]
    NotFound(String),
    #[error("this ingest is not live: recording starts when it is")]
    NotLive,
    #[error("this recording is being written: stop it first")]
    InUse,
    #[error("{0}")]
    LowSpace(String),
    #[error("{0}")]
    Invalid(String),
    #[error("recordings directory: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// An ingest's recording state, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct IngestRecording {
    pub ingest: String,
    pub recording: bool,
    /// The file being written.
    pub file: Option<String>,
    pub since: Option<String>,
    /// Recorded whenever live.
    pub auto: bool,
    /// Why the last recording stopped on its own (low space, codec…).
    pub last_error: Option<String>,
}

/// What sessions share with the recorder.
pub(crate) struct Shared {
    dir: PathBuf,
    settings: Arc<RwLock<RecordingSettings>>,
    open: writer::OpenFiles,
    history: History,
    grace: Duration,
}

impl Shared {
    fn settings(&self) -> RecordingSettings {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

struct Session {
    generation: u64,
    stop: CancellationToken,
    status: Arc<Mutex<SessionStatus>>,
}

#[derive(Default)]
struct Sessions {
    running: HashMap<String, Session>,
    next_generation: u64,
    /// Ingests whose automatic recording waits for the next live session
    /// (stopped by hand, or stopped on an error).
    held: HashSet<String>,
    last_error: HashMap<String, String>,
}

/// The recordings of every ingest.
pub struct Recorder {
    shared: Arc<Shared>,
    hubs: Hubs,
    store: Arc<Store>,
    sessions: Mutex<Sessions>,
    listing: files::Listing,
    shutdown: CancellationToken,
    tasks: tokio_util::task::TaskTracker,
    /// Tells [`Recorder::watch_auto`] to look again: the settings changed
    /// or a session ended.
    look_again: Notify,
}

impl Recorder {
    /// Creates the directory, repairs files a crash cut, loads the
    /// settings, and starts watching for ingests to record automatically.
    pub async fn start(
        dir: PathBuf,
        hubs: Hubs,
        store: Arc<Store>,
        history: History,
        grace: Duration,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Arc<Recorder>> {
        let (d, st) = (dir.clone(), store.clone());
        // A recordings directory that cannot be made or read is not a
        // reason to stop relaying: recording then fails with the reason.
        let settings = tokio::task::spawn_blocking(move || {
            if let Err(e) = std::fs::create_dir_all(&d) {
                tracing::warn!(dir = %d.display(), error = %e, "cannot create the recordings directory: recording will fail until it can be");
            }
            for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if entry.file_name().to_str().is_some_and(files::valid_id) {
                    if let Ok(n @ 1..) = files::repair(&entry.path()) {
                        tracing::warn!(file = %entry.path().display(), bytes = n, "recording cut back to its last complete fragment");
                    }
                }
            }
            match st.setting(SETTING_KEY) {
                Ok(Some(json)) => serde_json::from_str(&json).unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "recording settings unreadable: defaults used");
                    RecordingSettings::default()
                }),
                Ok(None) => RecordingSettings::default(),
                Err(e) => {
                    tracing::warn!(error = %e, "recording settings unreadable: defaults used");
                    RecordingSettings::default()
                }
            }
        })
        .await?;
        let recorder = Arc::new(Recorder {
            shared: Arc::new(Shared {
                dir,
                settings: Arc::new(RwLock::new(settings)),
                open: Arc::default(),
                history,
                grace,
            }),
            hubs,
            store,
            sessions: Mutex::default(),
            listing: files::Listing::default(),
            shutdown,
            tasks: tokio_util::task::TaskTracker::new(),
            look_again: Notify::new(),
        });
        let r = recorder.clone();
        tokio::spawn(async move { r.watch_auto().await });
        Ok(recorder)
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.shared.dir
    }

    fn sessions(&self) -> MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn settings(&self) -> RecordingSettings {
        self.shared.settings()
    }

    /// Validates, stores (off the runtime threads), then applies.
    pub async fn set_settings(&self, s: RecordingSettings) -> Result<(), RecordingError> {
        s.validate()?;
        let json = serde_json::to_string(&s).map_err(|e| RecordingError::Invalid(e.to_string()))?;
        self.store
            .off_runtime(move |s| s.set_setting(SETTING_KEY, &json))
            .await?;
        *self
            .shared
            .settings
            .write()
            .unwrap_or_else(|e| e.into_inner()) = s;
        self.look_again.notify_one();
        Ok(())
    }

    fn hub(&self, ingest_id: &str) -> Option<Arc<Hub>> {
        self.hubs
            .all()
            .into_iter()
            .find(|h| crate::ingest_keys::id_of(h.key().expose()) == ingest_id)
    }

    /// Starts recording an ingest now (it must be live and the disk have
    /// room). Already recording: nothing changes.
    pub async fn start_recording(
        self: &Arc<Self>,
        ingest_id: &str,
        actor: &str,
    ) -> Result<(), RecordingError> {
        let hub = self
            .hub(ingest_id)
            .ok_or_else(|| RecordingError::NoSuchIngest(ingest_id.to_owned()))?;
        if !hub.is_live() {
            return Err(RecordingError::NotLive);
        }
        self.check_space().await?;
        self.spawn_session(hub, ingest_id, Some(actor));
        Ok(())
    }

    /// Stops an ingest's recording (the file is closed after its last
    /// fragment). An automatic recording waits for the next live session.
    pub fn stop_recording(&self, ingest_id: &str, actor: &str) -> Result<(), RecordingError> {
        if self.hub(ingest_id).is_none() {
            return Err(RecordingError::NoSuchIngest(ingest_id.to_owned()));
        }
        let mut s = self.sessions();
        s.held.insert(ingest_id.to_owned());
        if let Some(session) = s.running.remove(ingest_id) {
            session.stop.cancel();
            drop(s);
            self.shared.history.record(
                EventKind::RecordingStopped,
                None,
                format!("recording of ingest {ingest_id} stopped"),
                Some(actor),
            );
        }
        Ok(())
    }

    async fn check_space(&self) -> Result<(), RecordingError> {
        let dir = self.shared.dir.clone();
        let min = self.settings().min_free_mib;
        let free = tokio::task::spawn_blocking(move || files::free_bytes(&dir))
            .await
            .map_err(|e| RecordingError::Invalid(e.to_string()))??;
        if free < min.saturating_mul(1024 * 1024) {
            return Err(RecordingError::LowSpace(format!(
                "not recording: {} MiB free on the recordings disk, under the {min} MiB limit",
                free / (1024 * 1024)
            )));
        }
        Ok(())
    }

    fn spawn_session(self: &Arc<Self>, hub: Arc<Hub>, ingest_id: &str, actor: Option<&str>) {
        let mut s = self.sessions();
        if s.running.contains_key(ingest_id) {
            return;
        }
        s.held.remove(ingest_id);
        s.last_error.remove(ingest_id);
        let generation = s.next_generation;
        s.next_generation += 1;
        let stop = self.shutdown.child_token();
        let status = Arc::new(Mutex::new(SessionStatus::default()));
        s.running.insert(
            ingest_id.to_owned(),
            Session {
                generation,
                stop: stop.clone(),
                status: status.clone(),
            },
        );
        drop(s);
        let how = if actor.is_some() {
            ""
        } else {
            " (whenever live)"
        };
        self.shared.history.record(
            EventKind::RecordingStarted,
            None,
            format!("recording of ingest {ingest_id} started{how}"),
            actor,
        );
        let ctx = SessionCtx {
            hub,
            ingest_id: ingest_id.to_owned(),
            shared: self.shared.clone(),
            stop,
            status,
        };
        let id = ingest_id.to_owned();
        let recorder = Arc::downgrade(self);
        self.tasks.spawn(async move {
            let end = session::run(ctx).await;
            let Some(recorder) = recorder.upgrade() else {
                return;
            };
            recorder.session_ended(&id, generation, end);
        });
    }

    fn session_ended(&self, id: &str, generation: u64, end: SessionEnd) {
        let history = &self.shared.history;
        let mut s = self.sessions();
        if s.running
            .get(id)
            .is_some_and(|r| r.generation == generation)
        {
            s.running.remove(id);
        }
        match end {
            SessionEnd::LowSpace(m) | SessionEnd::Failed(m) => {
                tracing::warn!(ingest = %id, "{m}");
                s.held.insert(id.to_owned());
                s.last_error.insert(id.to_owned(), m.clone());
                drop(s);
                history.record(
                    EventKind::RecordingFailed,
                    None,
                    format!("ingest {id}: {m}"),
                    None,
                );
            }
            SessionEnd::StreamEnded => {
                drop(s);
                history.record(
                    EventKind::RecordingStopped,
                    None,
                    format!("recording of ingest {id} ended with the stream"),
                    None,
                );
            }
            SessionEnd::Stopped => {}
        }
        // The ingest may be live again already (a quick reconnect).
        self.look_again.notify_one();
    }

    /// Starts the automatic recordings of ingests that went live. Looks
    /// when an ingest goes live or offline, an ingest is added or removed,
    /// the settings change or a session ends; sleeps otherwise.
    async fn watch_auto(self: Arc<Self>) {
        let mut added = self.hubs.watch_changes();
        loop {
            // Subscribed before the look: a change after it wakes the wait.
            added.borrow_and_update();
            let hubs = self.hubs.all();
            let mut lives: Vec<watch::Receiver<bool>> =
                hubs.iter().map(|h| h.watch_live()).collect();
            self.start_due(hubs).await;
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = added.changed() => {}
                () = any_changed(&mut lives) => {}
                () = self.look_again.notified() => {}
            }
        }
    }

    /// Starts the automatic recordings due now; an ingest that is not
    /// live may record automatically again next time.
    async fn start_due(self: &Arc<Self>, hubs: Vec<Arc<Hub>>) {
        let auto = self.settings().auto;
        for hub in hubs {
            let id = crate::ingest_keys::id_of(hub.key().expose());
            let wanted = {
                let mut s = self.sessions();
                if !hub.is_live() {
                    // The next live session may record again.
                    s.held.remove(&id);
                    continue;
                }
                auto.contains(&id) && !s.running.contains_key(&id) && !s.held.contains(&id)
            };
            if !wanted {
                continue;
            }
            match self.check_space().await {
                Ok(()) => self.spawn_session(hub, &id, None),
                Err(e) => self.session_ended(&id, u64::MAX, SessionEnd::LowSpace(e.to_string())),
            }
        }
    }

    /// Every ingest's recording state.
    pub fn status(&self) -> Vec<IngestRecording> {
        let auto = self.settings().auto;
        let s = self.sessions();
        self.hubs
            .all()
            .iter()
            .map(|h| {
                let id = crate::ingest_keys::id_of(h.key().expose());
                let run = s
                    .running
                    .get(&id)
                    .map(|r| r.status.lock().unwrap_or_else(|e| e.into_inner()).clone());
                IngestRecording {
                    recording: run.is_some(),
                    file: run.as_ref().and_then(|r| r.file.clone()),
                    since: run
                        .as_ref()
                        .and_then(|r| r.since)
                        .map(crate::http::views::time),
                    auto: auto.contains(&id),
                    last_error: s.last_error.get(&id).cloned(),
                    ingest: id,
                }
            })
            .collect()
    }

    fn open_files(&self) -> Vec<PathBuf> {
        self.shared
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The recordings, newest first.
    pub async fn list(self: &Arc<Self>) -> Result<Vec<RecordingFile>, RecordingError> {
        let this = self.clone();
        let open = self.open_files();
        tokio::task::spawn_blocking(move || this.listing.list(&this.shared.dir, &open))
            .await
            .map_err(|e| RecordingError::Invalid(e.to_string()))?
            .map_err(RecordingError::from)
    }

    /// The path of a recording, checked against the directory listing.
    pub async fn path_of(&self, id: &str) -> Result<PathBuf, RecordingError> {
        let (dir, name) = (self.shared.dir.clone(), id.to_owned());
        tokio::task::spawn_blocking(move || files::resolve(&dir, &name))
            .await
            .map_err(|e| RecordingError::Invalid(e.to_string()))?
            .ok_or_else(|| RecordingError::NotFound(id.to_owned()))
    }

    /// Deletes a recording that is not being written.
    pub async fn delete(&self, id: &str, actor: &str) -> Result<(), RecordingError> {
        let path = self.path_of(id).await?;
        if self.open_files().contains(&path) {
            return Err(RecordingError::InUse);
        }
        tokio::task::spawn_blocking(move || std::fs::remove_file(path))
            .await
            .map_err(|e| RecordingError::Invalid(e.to_string()))??;
        self.shared.history.record(
            EventKind::RecordingDeleted,
            None,
            format!("recording {id} deleted"),
            Some(actor),
        );
        Ok(())
    }

    /// Stops every session and waits (within a bound) for their files to
    /// be closed.
    pub async fn shutdown(&self) {
        for s in self.sessions().running.values() {
            s.stop.cancel();
        }
        self.tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.tasks.wait()).await;
    }
}

/// Returns when one of the watches changes (or its hub is gone); never
/// without any.
async fn any_changed(watches: &mut [watch::Receiver<bool>]) {
    if watches.is_empty() {
        return std::future::pending().await;
    }
    let changes = watches.iter_mut().map(|w| Box::pin(w.changed()));
    let _ = futures_util::future::select_all(changes).await;
}
