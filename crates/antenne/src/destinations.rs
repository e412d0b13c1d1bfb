//! The destinations and their running tasks. Every change is saved to the
//! store first, then reconciled at once: an edit that changes where or what
//! a destination publishes restarts only that destination; switching one
//! on or off starts or stops only its task; nothing else is touched. A
//! change that cannot be saved is refused and changes nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::history::History;
use crate::ingest::Hubs;
use crate::output::supervisor::{self, OutputContext};
use crate::output::url::{self, Target, UrlError};
use crate::output::{OutputState, OutputStats};
use crate::presets::Presets;
use crate::secret::StreamKey;
use crate::store::{Store, StoreError, StoredDestination};

/// A destination as the user configured it.
#[derive(Debug, Clone)]
pub struct Destination {
    pub id: String,
    pub name: String,
    /// Preset id (`youtube`, `twitch`, …, `custom`).
    pub platform: String,
    /// The server URL as typed (`rtmp://a.rtmp.youtube.com/live2`).
    pub url: String,
    pub key: StreamKey,
    pub enabled: bool,
    /// The ingest key whose stream this destination relays.
    pub ingest: StreamKey,
    /// `url` and `key` resolved.
    pub target: Target,
    /// Streamed by OBS itself (direct mode): `main` for OBS's stream
    /// output, else the name of one of its outputs. antenne then does not
    /// relay it; its switch drives OBS.
    pub via_obs: Option<String>,
}

/// Drives OBS for destinations that OBS streams itself.
pub trait ObsDirect: Send + Sync {
    /// Switches OBS's main stream (pointed at `url` + `key`) or a named
    /// output on or off, in the background; failures go to `stats`.
    fn switch(&self, via: &str, url: &str, key: &str, on: bool, stats: Arc<OutputStats>);
    /// Whether that OBS output streams now; `None` when OBS is not
    /// connected.
    fn active(&self, via: &str) -> Option<bool>;
    /// The number of enabled destinations changed (automation: OBS starts
    /// streaming with the first, stops with the last).
    fn enabled_count_changed(&self, before: usize, after: usize);
}

/// The `via_obs` value for OBS's own stream output.
pub const OBS_MAIN: &str = "main";

impl Destination {
    fn stored(&self) -> StoredDestination {
        StoredDestination {
            id: self.id.clone(),
            name: self.name.clone(),
            platform: self.platform.clone(),
            url: self.url.clone(),
            key: self.key.expose().to_owned(),
            enabled: self.enabled,
            ingest: self.ingest.expose().to_owned(),
            via_obs: self.via_obs.clone(),
        }
    }
}

/// A new destination, or changes to one (`None` keeps what is there).
#[derive(Debug, Default, Clone)]
pub struct DestinationInput {
    pub name: Option<String>,
    pub platform: Option<String>,
    pub url: Option<String>,
    pub key: Option<String>,
    pub enabled: Option<bool>,
    pub ingest: Option<String>,
    /// `Some(None)` makes antenne relay it again; `None` keeps it.
    pub via_obs: Option<Option<String>>,
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
    #[error("name must be 1 to 100 characters")]
    BadName,
    #[error("unknown platform {0:?}")]
    UnknownPlatform(String),
    #[error("OBS has a single stream output, already used by {0:?}: switch that one off first")]
    ObsMainBusy(String),
    #[error("via_obs must be \"main\" or the name of an OBS output (1 to 100 characters)")]
    BadViaObs,
    #[error(transparent)]
    Store(#[from] StoreError),
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
    /// For a destination streamed by OBS: whether OBS streams it now
    /// (`None`: OBS not connected, or relayed by antenne).
    pub obs_active: Option<bool>,
}

/// All destinations.
pub struct Destinations {
    entries: Mutex<BTreeMap<String, Entry>>,
    /// Display order (creation order).
    order: Mutex<Vec<String>>,
    hubs: Hubs,
    ctx: Arc<OutputContext>,
    store: Arc<Store>,
    history: History,
    presets: Arc<Presets>,
    direct: std::sync::OnceLock<Arc<dyn ObsDirect>>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

impl Destinations {
    pub fn new(
        hubs: Hubs,
        ctx: Arc<OutputContext>,
        store: Arc<Store>,
        history: History,
        presets: Arc<Presets>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            entries: Mutex::new(BTreeMap::new()),
            order: Mutex::new(Vec::new()),
            hubs,
            ctx,
            store,
            history,
            presets,
            direct: std::sync::OnceLock::new(),
            tracker: TaskTracker::new(),
            shutdown,
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn order(&self) -> MutexGuard<'_, Vec<String>> {
        self.order.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connects direct mode to OBS (once, at start-up).
    pub fn set_obs_direct(&self, direct: Arc<dyn ObsDirect>) {
        let _ = self.direct.set(direct);
    }

    fn view(&self, e: &Entry) -> DestinationView {
        let obs_active = match (&e.dest.via_obs, self.direct.get()) {
            (Some(via), Some(d)) => d.active(via),
            _ => None,
        };
        DestinationView {
            dest: e.dest.clone(),
            stats: e.stats.clone(),
            obs_active,
        }
    }

    fn enabled_count(&self) -> usize {
        self.lock().values().filter(|e| e.dest.enabled).count()
    }

    fn count_changed(&self, before: usize) {
        let after = self.enabled_count();
        if before != after {
            if let Some(d) = self.direct.get() {
                d.enabled_count_changed(before, after);
            }
        }
    }

    /// Starts what an enabled destination needs: a relay task, or OBS.
    fn activate(&self, entry: &Entry, previous: Option<JoinHandle<()>>) -> Option<Running> {
        match &entry.dest.via_obs {
            None => Some(self.start(entry, previous)),
            Some(via) => {
                entry.stats.set_state(OutputState::Idle);
                self.drive_obs(&entry.dest, via, true, &entry.stats);
                None
            }
        }
    }

    fn drive_obs(&self, dest: &Destination, via: &str, on: bool, stats: &Arc<OutputStats>) {
        match self.direct.get() {
            Some(d) => d.switch(via, &dest.url, dest.key.expose(), on, stats.clone()),
            None => stats.set_error("OBS control is not available".into()),
        }
    }

    fn check_via_obs(
        entries: &BTreeMap<String, Entry>,
        id: &str,
        via: Option<&str>,
        enabled: bool,
    ) -> Result<(), DestinationError> {
        let Some(via) = via else { return Ok(()) };
        let n = via.trim().chars().count();
        if n == 0 || n > 100 {
            return Err(DestinationError::BadViaObs);
        }
        if via == OBS_MAIN && enabled {
            if let Some(other) = entries.values().find(|e| {
                e.dest.id != id && e.dest.enabled && e.dest.via_obs.as_deref() == Some(OBS_MAIN)
            }) {
                return Err(DestinationError::ObsMainBusy(other.dest.name.clone()));
            }
        }
        Ok(())
    }

    pub fn hubs(&self) -> &Hubs {
        &self.hubs
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    pub fn presets(&self) -> &Arc<Presets> {
        &self.presets
    }

    /// Loads the saved destinations and starts the enabled ones (they go
    /// live as soon as their ingest does).
    pub fn load(&self) -> Result<usize, StoreError> {
        let saved = self.store.destinations()?;
        let n = saved.len();
        for s in saved {
            let target = match url::parse(&s.url, &s.key) {
                Ok(t) => t,
                Err(e) => {
                    warn!(destination = %s.id, error = %e, "saved destination has an invalid URL: skipped");
                    continue;
                }
            };
            let ingest = match self.hubs.find(&s.ingest).or_else(|| self.hubs.first()) {
                Some(h) => {
                    if !h.key().matches(&s.ingest) {
                        warn!(destination = %s.id, "saved destination's ingest key is not configured: attached to the first one");
                    }
                    h.key().clone()
                }
                None => continue,
            };
            let dest = Destination {
                id: s.id,
                name: s.name,
                platform: s.platform,
                url: s.url,
                key: StreamKey::new(s.key),
                enabled: s.enabled,
                ingest,
                target,
                via_obs: s.via_obs,
            };
            // Streamed by OBS: not switched at start-up; the state shows
            // what OBS does.
            self.insert(dest, false);
        }
        Ok(n)
    }

    fn insert(&self, dest: Destination, drive_obs: bool) -> DestinationView {
        let stats = Arc::new(OutputStats::new(dest.enabled));
        let mut entry = Entry {
            dest,
            stats,
            running: None,
        };
        if entry.dest.enabled && (drive_obs || entry.dest.via_obs.is_none()) {
            entry.running = self.activate(&entry, None);
        }
        let view = self.view(&entry);
        self.order().push(view.dest.id.clone());
        self.lock().insert(view.dest.id.clone(), entry);
        view
    }

    pub fn list(&self) -> Vec<DestinationView> {
        let entries = self.lock();
        self.order()
            .iter()
            .filter_map(|id| entries.get(id))
            .map(|e| self.view(e))
            .collect()
    }

    pub fn get(&self, id: &str) -> Result<DestinationView, DestinationError> {
        self.lock()
            .get(id)
            .map(|e| self.view(e))
            .ok_or_else(|| DestinationError::NotFound(id.to_owned()))
    }

    /// Whether some destination relays the stream of `ingest`.
    pub fn uses_ingest(&self, ingest: &str) -> bool {
        self.lock().values().any(|e| e.dest.ingest.matches(ingest))
    }

    fn resolve_ingest(&self, ingest: Option<&str>) -> Result<StreamKey, DestinationError> {
        let hub = match ingest {
            Some(k) => self.hubs.find(k),
            None => self.hubs.first(),
        };
        hub.map(|h| h.key().clone())
            .ok_or(DestinationError::UnknownIngest)
    }

    fn check_name(name: &str) -> Result<(), DestinationError> {
        let n = name.trim().chars().count();
        if n == 0 || n > 100 {
            return Err(DestinationError::BadName);
        }
        Ok(())
    }

    fn check_platform(&self, platform: &str) -> Result<(), DestinationError> {
        if self.presets.get(platform).is_none() {
            return Err(DestinationError::UnknownPlatform(platform.to_owned()));
        }
        Ok(())
    }

    /// Adds a destination; starts it at once if enabled.
    pub fn create(
        &self,
        input: DestinationInput,
        actor: &str,
    ) -> Result<DestinationView, DestinationError> {
        let before = self.enabled_count();
        let view = self.create_inner(input, actor)?;
        self.count_changed(before);
        Ok(view)
    }

    fn create_inner(
        &self,
        input: DestinationInput,
        actor: &str,
    ) -> Result<DestinationView, DestinationError> {
        let url_text = input.url.ok_or(DestinationError::Missing("url"))?;
        let key = input.key.unwrap_or_default();
        let target = url::parse(&url_text, &key)?;
        let platform = input
            .platform
            .unwrap_or_else(|| self.presets.guess(&url_text).to_owned());
        self.check_platform(&platform)?;
        let name = input.name.map(|n| n.trim().to_owned()).unwrap_or_else(|| {
            self.presets
                .get(&platform)
                .map(|p| p.name.clone())
                .unwrap_or_else(|| target.host.clone())
        });
        Self::check_name(&name)?;
        let ingest = self.resolve_ingest(input.ingest.as_deref())?;
        let id = format!("d{:010x}", rand::random::<u64>() & 0xff_ffff_ffff);
        let via_obs = input.via_obs.flatten().map(|v| v.trim().to_owned());
        let enabled = input.enabled.unwrap_or(true);
        Self::check_via_obs(&self.lock(), &id, via_obs.as_deref(), enabled)?;
        let dest = Destination {
            id: id.clone(),
            name,
            platform,
            url: url_text.trim().to_owned(),
            key: StreamKey::new(key.trim()),
            enabled,
            ingest,
            target,
            via_obs,
        };
        self.store.insert_destination(&dest.stored())?;
        info!(destination = %id, url = %dest.target.redacted(), enabled = dest.enabled, "destination added");
        self.history.record(
            "added",
            Some((&id, &dest.name)),
            format!("added ({})", dest.target.redacted()),
            Some(actor),
        );
        Ok(self.insert(dest, true))
    }

    /// Applies changes; restarts the destination only if where or what it
    /// publishes changed.
    pub fn update(
        &self,
        id: &str,
        input: DestinationInput,
        actor: &str,
    ) -> Result<DestinationView, DestinationError> {
        let before = self.enabled_count();
        let view = self.update_inner(id, input, actor)?;
        self.count_changed(before);
        Ok(view)
    }

    fn update_inner(
        &self,
        id: &str,
        input: DestinationInput,
        actor: &str,
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
            Self::check_name(name)?;
        }
        if let Some(p) = &input.platform {
            self.check_platform(p)?;
        }
        let via_obs = match &input.via_obs {
            Some(v) => v.as_ref().map(|v| v.trim().to_owned()),
            None => entry.dest.via_obs.clone(),
        };
        let enabled = input.enabled.unwrap_or(entry.dest.enabled);
        let edited = input.name.is_some()
            || input.url.is_some()
            || input.key.is_some()
            || input.platform.is_some()
            || input.ingest.is_some()
            || input.via_obs.is_some();
        let mut next = entry.dest.clone();
        next.url = url_text.trim().to_owned();
        next.key = StreamKey::new(key.trim());
        next.target = target;
        next.ingest = ingest;
        next.enabled = enabled;
        next.via_obs = via_obs;
        if let Some(name) = input.name {
            next.name = name.trim().to_owned();
        }
        if let Some(p) = input.platform {
            next.platform = p;
        }
        // Checked against the others before anything changes.
        drop(entries);
        let mut entries = self.lock();
        Self::check_via_obs(&entries, id, next.via_obs.as_deref(), next.enabled)?;
        let entry = entries
            .get_mut(id)
            .ok_or_else(|| DestinationError::NotFound(id.to_owned()))?;
        // Saved first: a change that cannot be saved is not applied.
        self.store.update_destination(&next.stored())?;

        let restart = next.target != entry.dest.target
            || next.ingest != entry.dest.ingest
            || next.via_obs != entry.dest.via_obs;
        let was_enabled = entry.dest.enabled;
        let old = std::mem::replace(&mut entry.dest, next);
        let dest = &entry.dest;
        let label = Some((id, dest.name.as_str()));
        if was_enabled != dest.enabled {
            let (kind, text) = if dest.enabled {
                ("toggled_on", "switched on")
            } else {
                ("toggled_off", "switched off")
            };
            self.history.record(kind, label, text, Some(actor));
        }
        if edited {
            self.history.record(
                "edited",
                label,
                if restart {
                    "edited (reconnects)"
                } else {
                    "edited"
                },
                Some(actor),
            );
        }
        // What the old configuration ran is stopped first: its relay
        // task, or the OBS output it drove.
        let stop_old = !entry.dest.enabled || restart;
        if stop_old && was_enabled {
            if let Some(via) = &old.via_obs {
                self.drive_obs(&old, via, false, &entry.stats);
            }
        }
        if !entry.dest.enabled {
            if let Some(running) = entry.running.take() {
                running.stop();
            }
            entry.stats.set_state(OutputState::Disabled);
        } else if restart
            || !was_enabled
            || (entry.running.is_none() && entry.dest.via_obs.is_none())
        {
            // A new relay task waits for the old one to close its stream,
            // so a platform never sees two publishers on one key.
            let previous = entry.running.take().map(Running::stop);
            entry.running = self.activate(entry, previous);
        }
        info!(destination = %id, enabled = entry.dest.enabled, restarted = restart, "destination updated");
        Ok(self.view(entry))
    }

    /// Removes a destination, closing its stream.
    pub fn delete(&self, id: &str, actor: &str) -> Result<(), DestinationError> {
        let before = self.enabled_count();
        self.delete_inner(id, actor)?;
        self.count_changed(before);
        Ok(())
    }

    fn delete_inner(&self, id: &str, actor: &str) -> Result<(), DestinationError> {
        let mut entries = self.lock();
        let name = entries
            .get(id)
            .map(|e| e.dest.name.clone())
            .ok_or_else(|| DestinationError::NotFound(id.to_owned()))?;
        self.store.delete_destination(id)?;
        if let Some(entry) = entries.remove(id) {
            if let Some(running) = entry.running {
                running.stop();
            }
            if let (true, Some(via)) = (entry.dest.enabled, &entry.dest.via_obs) {
                self.drive_obs(&entry.dest, via, false, &entry.stats);
            }
        }
        drop(entries);
        self.order().retain(|x| x != id);
        self.history
            .record("deleted", Some((id, &name)), "deleted", Some(actor));
        info!(destination = %id, "destination deleted");
        Ok(())
    }

    fn start(&self, entry: &Entry, previous: Option<JoinHandle<()>>) -> Running {
        let cancel = self.shutdown.child_token();
        entry.stats.set_state(OutputState::Idle);
        let hub = self.hubs.find(entry.dest.ingest.expose());
        let supervise = {
            let (id, target) = (entry.dest.id.clone(), entry.dest.target.clone());
            let (stats, ctx, cancel) = (entry.stats.clone(), self.ctx.clone(), cancel.clone());
            let history = self.history.clone();
            async move {
                if let Some(previous) = previous {
                    let _ = previous.await;
                }
                // The ingest key was resolved from the hubs, so the hub is
                // there.
                if let Some(hub) = hub {
                    supervisor::supervise(id, target, hub, stats, ctx, history, cancel).await;
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
