//! The destinations and their running tasks. Every change goes through
//! here and is reconciled at once: an edit that changes where or what a
//! destination publishes restarts only that destination; switching one on
//! or off starts or stops only its task; nothing else is touched.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use crate::ingest::Hubs;
use crate::output::supervisor::{self, OutputContext};
use crate::output::url::{self, Target, UrlError};
use crate::output::{OutputState, OutputStats};
use crate::secret::StreamKey;

/// A destination as the user configured it.
#[derive(Debug, Clone)]
pub struct Destination {
    pub id: String,
    pub name: String,
    /// The server URL as typed (`rtmp://a.rtmp.youtube.com/live2`).
    pub url: String,
    pub key: StreamKey,
    pub enabled: bool,
    /// The ingest key whose stream this destination relays.
    pub ingest: StreamKey,
    /// `url` and `key` resolved.
    pub target: Target,
}

/// A new destination, or changes to one (`None` keeps what is there).
#[derive(Debug, Default, Clone)]
pub struct DestinationInput {
    pub name: Option<String>,
    pub url: Option<String>,
    pub key: Option<String>,
    pub enabled: Option<bool>,
    pub ingest: Option<String>,
}

/// Why a change was refused; the text is shown to the user.
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    #[error("no destination with id {0:?}")]
    NotFound(String),
    #[error("invalid url: {0}")]
    Url(#[from] UrlError),
    #[error("missing field {0:?}")]
    Missing(&'static str),
    #[error("the ingest key does not match any configured ingest key")]
    UnknownIngest,
    #[error("name must be at most 100 characters")]
    NameTooLong,
}

struct Entry {
    dest: Destination,
    stats: Arc<OutputStats>,
    running: Option<Running>,
}

/// The task of an enabled destination.
struct Running {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Running {
    /// Stops the task; the handle finishes once its stream is closed.
    fn stop(self) -> JoinHandle<()> {
        self.cancel.cancel();
        self.task
    }
}

/// A destination with its live status, for the API.
#[derive(Debug, Clone)]
pub struct DestinationView {
    pub dest: Destination,
    pub stats: Arc<OutputStats>,
}

/// All destinations.
pub struct Destinations {
    entries: Mutex<BTreeMap<String, Entry>>,
    hubs: Hubs,
    ctx: Arc<OutputContext>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

impl Destinations {
    pub fn new(hubs: Hubs, ctx: Arc<OutputContext>, shutdown: CancellationToken) -> Self {
        Self {
            entries: Mutex::new(BTreeMap::new()),
            hubs,
            ctx,
            tracker: TaskTracker::new(),
            shutdown,
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn hubs(&self) -> &Hubs {
        &self.hubs
    }

    pub fn list(&self) -> Vec<DestinationView> {
        self.lock()
            .values()
            .map(|e| DestinationView {
                dest: e.dest.clone(),
                stats: e.stats.clone(),
            })
            .collect()
    }

    pub fn get(&self, id: &str) -> Result<DestinationView, DestinationError> {
        self.lock()
            .get(id)
            .map(|e| DestinationView {
                dest: e.dest.clone(),
                stats: e.stats.clone(),
            })
            .ok_or_else(|| DestinationError::NotFound(id.to_owned()))
    }

    fn resolve_ingest(&self, ingest: Option<&str>) -> Result<StreamKey, DestinationError> {
        let hub = match ingest {
            Some(k) => self.hubs.find(k),
            None => self.hubs.first(),
        };
        hub.map(|h| h.key().clone())
            .ok_or(DestinationError::UnknownIngest)
    }

    /// Adds a destination; starts it at once if enabled.
    pub fn create(&self, input: DestinationInput) -> Result<DestinationView, DestinationError> {
        let url_text = input.url.ok_or(DestinationError::Missing("url"))?;
        let key = input.key.unwrap_or_default();
        let target = url::parse(&url_text, &key)?;
        let name = input.name.unwrap_or_else(|| target.host.clone());
        if name.chars().count() > 100 {
            return Err(DestinationError::NameTooLong);
        }
        let ingest = self.resolve_ingest(input.ingest.as_deref())?;
        let id = format!("d{:010x}", rand::random::<u64>() & 0xff_ffff_ffff);
        let dest = Destination {
            id: id.clone(),
            name,
            url: url_text.trim().to_owned(),
            key: StreamKey::new(key.trim()),
            enabled: input.enabled.unwrap_or(true),
            ingest,
            target,
        };
        let stats = Arc::new(OutputStats::new(dest.enabled));
        let mut entry = Entry {
            dest,
            stats,
            running: None,
        };
        if entry.dest.enabled {
            entry.running = Some(self.start(&entry, None));
        }
        info!(destination = %id, url = %entry.dest.target.redacted(), enabled = entry.dest.enabled, "destination added");
        let view = DestinationView {
            dest: entry.dest.clone(),
            stats: entry.stats.clone(),
        };
        self.lock().insert(id, entry);
        Ok(view)
    }

    /// Applies changes; restarts the destination only if where or what it
    /// publishes changed.
    pub fn update(
        &self,
        id: &str,
        input: DestinationInput,
    ) -> Result<DestinationView, DestinationError> {
        let mut entries = self.lock();
        let entry = entries
            .get_mut(id)
            .ok_or_else(|| DestinationError::NotFound(id.to_owned()))?;
        let url_text = input.url.clone().unwrap_or_else(|| entry.dest.url.clone());
        let key = input
            .key
            .clone()
            .unwrap_or_else(|| entry.dest.key.expose().to_owned());
        let target = url::parse(&url_text, &key)?;
        let ingest = match input.ingest.as_deref() {
            Some(k) => self.resolve_ingest(Some(k))?,
            None => entry.dest.ingest.clone(),
        };
        if let Some(name) = &input.name {
            if name.chars().count() > 100 {
                return Err(DestinationError::NameTooLong);
            }
        }
        let enabled = input.enabled.unwrap_or(entry.dest.enabled);
        let restart = target != entry.dest.target || ingest != entry.dest.ingest;
        let was_enabled = entry.dest.enabled;
        entry.dest.url = url_text.trim().to_owned();
        entry.dest.key = StreamKey::new(key.trim());
        entry.dest.target = target;
        entry.dest.ingest = ingest;
        entry.dest.enabled = enabled;
        if let Some(name) = input.name {
            entry.dest.name = name;
        }
        if !enabled {
            if let Some(running) = entry.running.take() {
                running.stop();
            }
            entry.stats.set_state(OutputState::Disabled);
        } else if restart || !was_enabled || entry.running.is_none() {
            // The new task waits for the old one to close its stream, so a
            // platform never sees two publishers on one key.
            let previous = entry.running.take().map(Running::stop);
            entry.running = Some(self.start(entry, previous));
        }
        info!(destination = %id, enabled, restarted = restart, "destination updated");
        Ok(DestinationView {
            dest: entry.dest.clone(),
            stats: entry.stats.clone(),
        })
    }

    /// Removes a destination, closing its stream.
    pub fn delete(&self, id: &str) -> Result<(), DestinationError> {
        let entry = self
            .lock()
            .remove(id)
            .ok_or_else(|| DestinationError::NotFound(id.to_owned()))?;
        if let Some(running) = entry.running {
            running.stop();
        }
        info!(destination = %id, "destination deleted");
        Ok(())
    }

    fn start(&self, entry: &Entry, previous: Option<JoinHandle<()>>) -> Running {
        let cancel = self.shutdown.child_token();
        entry.stats.set_state(OutputState::Idle);
        let hub = self.hubs.exact(entry.dest.ingest.expose()).cloned();
        let supervise = {
            let (id, target) = (entry.dest.id.clone(), entry.dest.target.clone());
            let (stats, ctx, cancel) = (entry.stats.clone(), self.ctx.clone(), cancel.clone());
            async move {
                if let Some(previous) = previous {
                    let _ = previous.await;
                }
                // The ingest key was resolved from the hubs, so the hub is
                // there.
                if let Some(hub) = hub {
                    supervisor::supervise(id, target, hub, stats, ctx, cancel).await;
                }
            }
        };
        let span = tracing::info_span!("output", destination = %entry.dest.id);
        let task = self
            .tracker
            .spawn(tracing::Instrument::instrument(supervise, span));
        Running { cancel, task }
    }

    /// Stops every destination (closing streams cleanly) and waits for
    /// their tasks.
    pub async fn shutdown(&self) {
        for e in self.lock().values_mut() {
            if let Some(running) = e.running.take() {
                running.stop();
            }
        }
        self.tracker.close();
        self.tracker.wait().await;
    }
}
