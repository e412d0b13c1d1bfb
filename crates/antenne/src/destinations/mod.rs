//! The destinations and their running tasks.
//!
//! Invariants:
//! - Readers (the API's lists, the live snapshot, the OBS glue) take a
//!   snapshot — an `Arc` of the whole list, cloned under a lock held for
//!   that clone only — and never wait on a writer or on the disk.
//! - Writers (create, update, delete, load, deleting an ingest key) take
//!   one async lock, held across the whole check-save-apply step, so a
//!   change is checked against the state it replaces and no concurrent
//!   change is lost. The save runs off the runtime's threads
//!   (`spawn_blocking`); only once it succeeded is the new list swapped
//!   in, in one short critical section. A change that cannot be saved is
//!   refused and changes nothing.
//! - Reconciling: an edit that changes where or what a destination
//!   publishes restarts only that destination; switching one on or off
//!   starts or stops only its task; nothing else is touched.
//! - Bulk changes (switch every destination of an ingest on or off, the
//!   display order) are in [`bulk`]: the same steps, one store
//!   transaction, one history event.
//!
//! The rules a destination obeys are in [`validate`], shared with
//! `antenne import` and the start-up load.

mod bulk;
mod model;
mod source;
mod tasks;
pub mod validate;

pub use bulk::{Named, Skipped, Switched};

pub use model::{
    Destination, DestinationError, DestinationInput, DestinationView, ObsDirect, Relaying, Source,
    OBS_MAIN,
};

use std::collections::HashMap;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::history::{EventKind, History};
use crate::ingest::Hubs;
use crate::output::supervisor::OutputContext;
use crate::output::url;
use crate::output::{OutputState, OutputStats};
use crate::presets::Presets;
use crate::secret::StreamKey;
use crate::store::{Store, StoreError};

/// A destination in the published list: what it is and its live status.
#[derive(Clone)]
struct Entry {
    dest: Destination,
    stats: Arc<OutputStats>,
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

/// Relay tasks by destination id; owned by whoever holds the writers' lock.
type Tasks = HashMap<String, Running>;

/// Held while destinations cannot change (see [`Destinations::writing`]).
pub struct WriteLock<'a>(#[allow(dead_code)] tokio::sync::MutexGuard<'a, Tasks>);

/// All destinations.
pub struct Destinations {
    /// What readers see, in display (creation) order. Replaced whole by a
    /// writer; the lock is held only to clone or swap the `Arc`.
    current: crate::published::Published<Entry>,
    /// The writers' lock (never taken by readers), with the relay tasks.
    writer: tokio::sync::Mutex<Tasks>,
    hubs: Hubs,
    ctx: Arc<OutputContext>,
    store: Arc<Store>,
    history: History,
    presets: Arc<Presets>,
    direct: std::sync::OnceLock<Arc<dyn ObsDirect>>,
    renditions: std::sync::OnceLock<Arc<crate::encoders::registry::Renditions>>,
    /// What each destination with a per-connection source relays now.
    relaying: source::RelayingNow,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

/// A new destination id (`d` and 10 hex digits).
pub fn new_id() -> String {
    format!("d{:010x}", rand::random::<u64>() & 0xff_ffff_ffff)
}

fn enabled_count(list: &[Entry]) -> usize {
    list.iter().filter(|e| e.dest.enabled).count()
}

fn others(list: &[Entry]) -> impl Iterator<Item = (&str, &str, bool, Option<&str>)> {
    list.iter().map(|e| {
        (
            e.dest.id.as_str(),
            e.dest.name.as_str(),
            e.dest.enabled,
            e.dest.via_obs.as_deref(),
        )
    })
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
            current: Default::default(),
            writer: tokio::sync::Mutex::new(HashMap::new()),
            hubs,
            ctx,
            store,
            history,
            presets,
            direct: std::sync::OnceLock::new(),
            renditions: std::sync::OnceLock::new(),
            relaying: source::RelayingNow::default(),
            tracker: TaskTracker::new(),
            shutdown,
        }
    }

    /// The current list; never waits on a writer.
    fn snapshot(&self) -> Arc<Vec<Entry>> {
        self.current.get()
    }

    /// Swaps in a new list (writers only, under the writers' lock).
    fn publish(&self, list: Vec<Entry>) {
        self.current.set(list);
    }

    /// Runs a store call off the runtime's threads.
    async fn save<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.store.off_runtime(f).await
    }

    /// Holds off every change to the destinations until dropped (for a
    /// change elsewhere that must see them unchanged, e.g. deleting an
    /// ingest key no destination uses).
    pub async fn writing(&self) -> WriteLock<'_> {
        WriteLock(self.writer.lock().await)
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
            relaying: self.relaying.get(&e.dest.id),
        }
    }

    fn count_changed(&self, before: usize, after: usize) {
        if before != after {
            if let Some(d) = self.direct.get() {
                d.enabled_count_changed(before, after);
            }
        }
    }

    /// Loads the saved destinations and starts the enabled ones (they go
    /// live as soon as their ingest does). Each is checked with the API's
    /// rules ([`validate`]): one that breaks them is skipped, except a
    /// second enabled destination on OBS's main output, which is loaded
    /// switched off.
    pub async fn load(&self) -> Result<usize, StoreError> {
        let mut tasks = self.writer.lock().await;
        let saved = self.save(|s| s.destinations()).await?;
        let problems = validate::all(&saved, &self.presets);
        let mut list = Vec::with_capacity(saved.len());
        for (mut s, problems) in saved.into_iter().zip(problems) {
            let busy = problems
                .iter()
                .any(|p| matches!(p, DestinationError::ObsMainBusy(_)));
            if busy && problems.len() == 1 {
                warn!(destination = %s.id, error = %problems[0], "saved destination loaded switched off");
                s.enabled = false;
            } else if !problems.is_empty() {
                let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                warn!(destination = %s.id, problems = %text.join("; "), "saved destination breaks the rules: skipped");
                continue;
            }
            let Ok(target) = url::parse(&s.url, &s.key) else {
                continue;
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
            let (source, audio_track) = Source::from_stored(s.source, s.tracks.as_ref());
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
                source,
                audio_track,
            };
            let entry = Entry {
                stats: Arc::new(OutputStats::new(dest.enabled)),
                dest,
            };
            // Streamed by OBS: not switched at start-up; the state shows
            // what OBS does.
            if entry.dest.enabled && entry.dest.via_obs.is_none() {
                if let Some(r) = self.activate(&entry, None) {
                    tasks.insert(entry.dest.id.clone(), r);
                }
            }
            list.push(entry);
        }
        let n = list.len();
        self.publish(list);
        Ok(n)
    }

    pub fn list(&self) -> Vec<DestinationView> {
        self.snapshot().iter().map(|e| self.view(e)).collect()
    }

    pub fn get(&self, id: &str) -> Result<DestinationView, DestinationError> {
        self.snapshot()
            .iter()
            .find(|e| e.dest.id == id)
            .map(|e| self.view(e))
            .ok_or_else(|| DestinationError::NotFound(id.to_owned()))
    }

    /// Whether some destination (or rendition) relays the stream of
    /// `ingest`.
    pub fn uses_ingest(&self, ingest: &str) -> bool {
        self.snapshot()
            .iter()
            .any(|e| e.dest.ingest.matches(ingest))
            || self.renditions.get().is_some_and(|r| r.uses_ingest(ingest))
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
    pub async fn create(
        &self,
        input: DestinationInput,
        actor: &str,
    ) -> Result<DestinationView, DestinationError> {
        let mut tasks = self.writer.lock().await;
        let current = self.snapshot();
        let dest = self.new_destination(input, &current)?;
        let stored = dest.stored();
        self.save(move |s| s.insert_destination(&stored)).await?;
        let id = dest.id.clone();
        info!(destination = %id, url = %dest.target.redacted(), enabled = dest.enabled, "destination added");
        self.history.record(
            EventKind::Added,
            Some((&id, &dest.name)),
            format!("added ({})", dest.target.redacted()),
            Some(actor),
        );
        let entry = Entry {
            stats: Arc::new(OutputStats::new(dest.enabled)),
            dest,
        };
        if entry.dest.enabled {
            if let Some(r) = self.activate(&entry, None) {
                tasks.insert(id, r);
            }
        }
        let mut next = Vec::clone(&current);
        next.push(entry.clone());
        let (before, after) = (enabled_count(&current), enabled_count(&next));
        self.publish(next);
        drop(tasks);
        self.count_changed(before, after);
        Ok(self.view(&entry))
    }

    /// A new destination from the input, checked against `current`.
    fn new_destination(
        &self,
        input: DestinationInput,
        current: &[Entry],
    ) -> Result<Destination, DestinationError> {
        let url_text = input.url.ok_or(DestinationError::Missing("url"))?;
        validate::not_masked(&url_text)?;
        let key = input.key.unwrap_or_default();
        let target = url::parse(&url_text, &key)?;
        let platform = input
            .platform
            .unwrap_or_else(|| self.presets.guess(&url_text).to_owned());
        validate::platform(&self.presets, &platform)?;
        let name = input.name.map(|n| n.trim().to_owned()).unwrap_or_else(|| {
            self.presets
                .get(&platform)
                .map(|p| p.name.clone())
                .unwrap_or_else(|| target.host.clone())
        });
        validate::name(&name)?;
        let ingest = self.resolve_ingest(input.ingest.as_deref())?;
        let id = new_id();
        let via_obs = input.via_obs.flatten().map(|v| v.trim().to_owned());
        let enabled = input.enabled.unwrap_or(true);
        validate::via_obs(via_obs.as_deref())?;
        validate::obs_main_free(&id, via_obs.as_deref(), enabled, others(current))?;
        let source = input.source.unwrap_or_default();
        let audio_track = input.audio_track.unwrap_or(0);
        self.check_source(&source, audio_track, &ingest)?;
        Ok(Destination {
            id,
            name,
            platform,
            url: url_text.trim().to_owned(),
            key: StreamKey::new(key.trim()),
            enabled,
            ingest,
            target,
            via_obs,
            source,
            audio_track,
        })
    }

    /// `dest` with the input's changes, checked against `current`.
    fn changed(
        &self,
        dest: &Destination,
        input: &DestinationInput,
        current: &[Entry],
    ) -> Result<Destination, DestinationError> {
        if let Some(u) = &input.url {
            validate::not_masked(u)?;
        }
        let url_text = input.url.clone().unwrap_or_else(|| dest.url.clone());
        let key = input
            .key
            .clone()
            .unwrap_or_else(|| dest.key.expose().to_owned());
        let target = url::parse(&url_text, &key)?;
        let mut next = dest.clone();
        if let Some(k) = input.ingest.as_deref() {
            next.ingest = self.resolve_ingest(Some(k))?;
        }
        if let Some(name) = &input.name {
            validate::name(name)?;
            next.name = name.trim().to_owned();
        }
        if let Some(p) = &input.platform {
            validate::platform(&self.presets, p)?;
            next.platform = p.clone();
        }
        if let Some(v) = &input.via_obs {
            next.via_obs = v.as_ref().map(|v| v.trim().to_owned());
        }
        next.url = url_text.trim().to_owned();
        next.key = StreamKey::new(key.trim());
        next.target = target;
        next.enabled = input.enabled.unwrap_or(dest.enabled);
        if let Some(source) = &input.source {
            next.source = source.clone();
        }
        if let Some(a) = input.audio_track {
            next.audio_track = a;
        }
        self.check_source(&next.source, next.audio_track, &next.ingest)?;
        validate::via_obs(next.via_obs.as_deref())?;
        validate::obs_main_free(
            &next.id,
            next.via_obs.as_deref(),
            next.enabled,
            others(current),
        )?;
        Ok(next)
    }

    /// Applies changes; restarts the destination only if where or what it
    /// publishes changed.
    pub async fn update(
        &self,
        id: &str,
        input: DestinationInput,
        actor: &str,
    ) -> Result<DestinationView, DestinationError> {
        let mut tasks = self.writer.lock().await;
        let current = self.snapshot();
        let i = current
            .iter()
            .position(|e| e.dest.id == id)
            .ok_or_else(|| DestinationError::NotFound(id.to_owned()))?;
        let old = &current[i];
        let next = self.changed(&old.dest, &input, &current)?;
        // Saved first: a change that cannot be saved is not applied.
        let stored = next.stored();
        self.save(move |s| s.update_destination(&stored)).await?;

        let restart = next.target != old.dest.target
            || next.ingest != old.dest.ingest
            || next.via_obs != old.dest.via_obs
            || next.source != old.dest.source
            || next.audio_track != old.dest.audio_track;
        let was_enabled = old.dest.enabled;
        let entry = Entry {
            dest: next,
            stats: old.stats.clone(),
        };
        let label = Some((id, entry.dest.name.as_str()));
        if was_enabled != entry.dest.enabled {
            let (kind, text) = if entry.dest.enabled {
                (EventKind::ToggledOn, "switched on")
            } else {
                (EventKind::ToggledOff, "switched off")
            };
            self.history.record(kind, label, text, Some(actor));
        }
        let edited = input.name.is_some()
            || input.url.is_some()
            || input.key.is_some()
            || input.platform.is_some()
            || input.ingest.is_some()
            || input.via_obs.is_some()
            || input.source.is_some()
            || input.audio_track.is_some();
        if edited {
            let text = if restart {
                "edited (reconnects)"
            } else {
                "edited"
            };
            self.history
                .record(EventKind::Edited, label, text, Some(actor));
        }
        // What the old configuration ran is stopped first: its relay
        // task, or the OBS output it drove.
        if (!entry.dest.enabled || restart) && was_enabled {
            if let Some(via) = &old.dest.via_obs {
                self.drive_obs(&old.dest, via, false, &entry.stats);
            }
        }
        if !entry.dest.enabled {
            if let Some(running) = tasks.remove(id) {
                running.stop();
            }
            entry.stats.set_state(OutputState::Disabled);
        } else if restart
            || !was_enabled
            || (!tasks.contains_key(id) && entry.dest.via_obs.is_none())
        {
            // A new relay task waits for the old one to close its stream,
            // so a platform never sees two publishers on one key.
            let previous = tasks.remove(id).map(Running::stop);
            if let Some(r) = self.activate(&entry, previous) {
                tasks.insert(id.to_owned(), r);
            }
        }
        info!(destination = %id, enabled = entry.dest.enabled, restarted = restart, "destination updated");
        let mut next_list = Vec::clone(&current);
        next_list[i] = entry.clone();
        let (before, after) = (enabled_count(&current), enabled_count(&next_list));
        self.publish(next_list);
        drop(tasks);
        self.count_changed(before, after);
        Ok(self.view(&entry))
    }

    /// Removes a destination, closing its stream.
    pub async fn delete(&self, id: &str, actor: &str) -> Result<(), DestinationError> {
        let mut tasks = self.writer.lock().await;
        let current = self.snapshot();
        let entry = current
            .iter()
            .find(|e| e.dest.id == id)
            .ok_or_else(|| DestinationError::NotFound(id.to_owned()))?;
        let owned_id = id.to_owned();
        self.save(move |s| s.delete_destination(&owned_id)).await?;
        if let Some(running) = tasks.remove(id) {
            running.stop();
        }
        if let (true, Some(via)) = (entry.dest.enabled, &entry.dest.via_obs) {
            self.drive_obs(&entry.dest, via, false, &entry.stats);
        }
        self.history.record(
            EventKind::Deleted,
            Some((id, &entry.dest.name)),
            "deleted",
            Some(actor),
        );
        info!(destination = %id, "destination deleted");
        let next: Vec<Entry> = current
            .iter()
            .filter(|e| e.dest.id != id)
            .cloned()
            .collect();
        let (before, after) = (enabled_count(&current), enabled_count(&next));
        self.publish(next);
        drop(tasks);
        self.count_changed(before, after);
        Ok(())
    }

    /// Stops every destination (closing streams cleanly) and waits for
    /// their tasks.
    pub async fn shutdown(&self) {
        for (_, running) in self.writer.lock().await.drain() {
            running.stop();
        }
        self.tracker.close();
        self.tracker.wait().await;
    }
}
