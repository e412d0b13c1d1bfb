//! The renditions users configured: each a [`Rendition`] of one ingest
//! key, saved in the store, listed with its live state for the API.
//!
//! Invariants (the same as the destinations' registry):
//! - Readers take a snapshot (an `Arc` of the list cloned under a lock
//!   held for that clone only) and never wait on a writer or the disk.
//! - Writers take one async lock across check-save-apply; the store call
//!   runs off the runtime's threads and only once it succeeded does the
//!   change apply. A change that cannot be saved changes nothing.
//! - Editing a rendition restarts only its encoder
//!   ([`Rendition::respec`]): its output hub stays, so the destinations
//!   relaying it keep their connection.
//! - Demand is the destinations' business: each enabled destination whose
//!   source is a rendition holds one [`super::Demand`] while its task runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;
use tracing::{info, warn};

use super::{EncoderConfig, EncoderState, Rendition, RenditionSpec};
use crate::history::{EventKind, History};
use crate::ingest::Hubs;
use crate::ingest_keys::id_of;
use crate::secret::StreamKey;
use crate::store::{Store, StoreError, StoredRendition};

/// At most this many renditions (each may run an ffmpeg).
pub const MAX_RENDITIONS: usize = 32;

/// Why a change was refused; the text is for the user.
#[derive(Debug, thiserror::Error)]
pub enum RenditionError {
    #[error("no rendition with id {0:?}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the ingest key does not match any configured ingest key")]
    UnknownIngest,
    #[error("at most {MAX_RENDITIONS} renditions")]
    TooMany,
    #[error("the rendition is the source of destinations: give them another source first")]
    InUse,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new rendition, or changes to one. `spec` is a JSON object: complete
/// for a new one (missing optional fields take their defaults), partial
/// for a change (its fields replace the current ones).
#[derive(Debug, Default, Clone)]
pub struct RenditionInput {
    pub name: Option<String>,
    /// An ingest id (as the API lists them) or the key itself.
    pub ingest: Option<String>,
    pub spec: Option<serde_json::Map<String, Value>>,
}

#[derive(Clone)]
struct Entry {
    stored: StoredRendition,
    engine: Arc<Rendition>,
}

/// A rendition with its live state.
#[derive(Debug, Clone)]
pub struct RenditionView {
    pub stored: StoredRendition,
    pub ingest_id: String,
    pub state: EncoderState,
    /// The encoder in use (`Auto` resolved).
    pub encoder: super::VideoEncoder,
    pub pid: Option<u32>,
    pub demand: usize,
    /// Share of one CPU core ffmpeg used since the previous look (percent).
    pub cpu_percent: Option<f64>,
}

/// All renditions.
pub struct Renditions {
    current: crate::published::Published<Entry>,
    writer: tokio::sync::Mutex<()>,
    hubs: Hubs,
    store: Arc<Store>,
    history: History,
    config: EncoderConfig,
    /// Hardware encoders found, probed once, the first time a rendition
    /// asks for `auto` (a few seconds of test encodes nobody else pays).
    hardware: tokio::sync::OnceCell<Vec<super::VideoEncoder>>,
    /// Last CPU reading per pid: (when, CPU seconds).
    cpu: Mutex<HashMap<u32, (Instant, f64)>>,
}

/// A new rendition id (`r` and 10 hex digits).
pub fn new_id() -> String {
    format!("r{:010x}", rand::random::<u64>() & 0xff_ffff_ffff)
}

/// The defaults a new rendition's spec starts from.
fn defaults() -> Value {
    serde_json::json!({
        "fit": {"mode": "crop", "x": 0.5},
        "max_fps": null,
        "keyframe_interval_s": super::spec::DEFAULT_KEYFRAME_INTERVAL.as_secs_f64(),
        "encoder": {"kind": "libx264", "preset": "veryfast"},
        "audio": {"mode": "copy"},
    })
}

/// `base` with the fields of `changes` replaced; checked.
pub fn merge_spec(
    base: Value,
    changes: &serde_json::Map<String, Value>,
) -> Result<RenditionSpec, RenditionError> {
    let mut obj = match base {
        Value::Object(o) => o,
        _ => serde_json::Map::new(),
    };
    for (k, v) in changes {
        obj.insert(k.clone(), v.clone());
    }
    let spec: RenditionSpec = serde_json::from_value(Value::Object(obj))
        .map_err(|e| RenditionError::Invalid(format!("invalid rendition: {e}")))?;
    spec.validate()
        .map_err(|e| RenditionError::Invalid(e.to_string()))?;
    Ok(spec)
}

fn check_name(name: &str) -> Result<String, RenditionError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 100 {
        return Err(RenditionError::Invalid(
            "name must be 1 to 100 characters".into(),
        ));
    }
    Ok(n.to_owned())
}

/// CPU seconds a process used so far (`/proc/PID/stat` utime + stime).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 here.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux architecture antenne runs on.
    Some(ticks / 100.0)
}

impl Renditions {
    pub fn new(hubs: Hubs, store: Arc<Store>, history: History, config: EncoderConfig) -> Self {
        Self {
            current: Default::default(),
            writer: tokio::sync::Mutex::new(()),
            hubs,
            store,
            history,
            config,
            hardware: tokio::sync::OnceCell::new(),
            cpu: Mutex::new(HashMap::new()),
        }
    }

    /// The settings a rendition of `spec` starts with: for `auto`, with
    /// the hardware encoders (probed the first time).
    async fn config_for(&self, spec: &RenditionSpec) -> EncoderConfig {
        let mut config = self.config.clone();
        if spec.encoder == super::VideoEncoder::Auto {
            let ffmpeg = config.ffmpeg.clone();
            config.hardware = self
                .hardware
                .get_or_init(|| async move {
                    let report = super::hardware::probe(&ffmpeg).await;
                    info!("{}", report.summary());
                    report.available
                })
                .await
                .clone();
        }
        config
    }

    /// The hardware encoders found, once probed.
    fn hardware(&self) -> &[super::VideoEncoder] {
        self.hardware.get().map(Vec::as_slice).unwrap_or(&[])
    }

    fn snapshot(&self) -> Arc<Vec<Entry>> {
        self.current.get()
    }

    fn publish(&self, list: Vec<Entry>) {
        self.current.set(list);
    }

    async fn save<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.store.off_runtime(f).await
    }

    /// Loads the saved renditions (before the destinations, which find
    /// theirs here). One whose ingest key is gone or whose spec is out of
    /// range is skipped with a warning.
    pub async fn load(&self) -> Result<usize, StoreError> {
        let _w = self.writer.lock().await;
        let saved = self.save(|s| s.renditions()).await?;
        let mut list = Vec::new();
        for stored in saved {
            let Some(hub) = self.hubs.find(&stored.ingest) else {
                warn!(rendition = %stored.id, "saved rendition's ingest key is not configured: skipped");
                continue;
            };
            let config = self.config_for(&stored.spec).await;
            match Rendition::start(stored.id.clone(), stored.spec.clone(), hub, config) {
                Ok(r) => list.push(Entry {
                    stored,
                    engine: Arc::new(r),
                }),
                Err(e) => warn!(rendition = %stored.id, error = %e, "saved rendition skipped"),
            }
        }
        let n = list.len();
        self.publish(list);
        Ok(n)
    }

    /// The engine of rendition `id`.
    pub fn get(&self, id: &str) -> Option<Arc<Rendition>> {
        self.snapshot()
            .iter()
            .find(|e| e.stored.id == id)
            .map(|e| e.engine.clone())
    }

    /// The ingest key rendition `id` encodes.
    pub fn ingest_of(&self, id: &str) -> Option<String> {
        self.snapshot()
            .iter()
            .find(|e| e.stored.id == id)
            .map(|e| e.stored.ingest.clone())
    }

    /// Whether some rendition encodes `ingest` (a key).
    pub fn uses_ingest(&self, ingest: &str) -> bool {
        self.snapshot()
            .iter()
            .any(|e| StreamKey::new(e.stored.ingest.clone()).matches(ingest))
    }

    fn view(&self, e: &Entry) -> RenditionView {
        let pid = e.engine.pid();
        let cpu_percent = pid.and_then(|pid| {
            let now = Instant::now();
            let used = cpu_seconds(pid)?;
            let mut cpu = self.cpu.lock().unwrap_or_else(|e| e.into_inner());
            cpu.retain(|_, (at, _)| now.duration_since(*at).as_secs() < 600);
            let previous = cpu.insert(pid, (now, used));
            let (at, before) = previous?;
            let secs = now.duration_since(at).as_secs_f64();
            (secs > 0.2).then(|| ((used - before) / secs * 1000.0).round() / 10.0)
        });
        RenditionView {
            ingest_id: id_of(&e.stored.ingest),
            state: e.engine.state(),
            encoder: e.stored.spec.encoder.resolve(self.hardware()),
            pid,
            demand: e.engine.demand(),
            cpu_percent,
            stored: e.stored.clone(),
        }
    }

    pub fn list(&self) -> Vec<RenditionView> {
        self.snapshot().iter().map(|e| self.view(e)).collect()
    }

    pub fn view_of(&self, id: &str) -> Result<RenditionView, RenditionError> {
        self.snapshot()
            .iter()
            .find(|e| e.stored.id == id)
            .map(|e| self.view(e))
            .ok_or_else(|| RenditionError::NotFound(id.to_owned()))
    }

    /// The ingest key named by an id or the key itself; the first one
    /// when none is named.
    fn resolve_ingest(&self, ingest: Option<&str>) -> Result<String, RenditionError> {
        let hubs = self.hubs.all();
        let hub = match ingest {
            None => hubs.first(),
            Some(k) => hubs
                .iter()
                .find(|h| id_of(h.key().expose()) == k || h.key().matches(k)),
        };
        hub.map(|h| h.key().expose().to_owned())
            .ok_or(RenditionError::UnknownIngest)
    }

    pub async fn create(
        &self,
        input: RenditionInput,
        actor: &str,
    ) -> Result<RenditionView, RenditionError> {
        let _w = self.writer.lock().await;
        let current = self.snapshot();
        if current.len() >= MAX_RENDITIONS {
            return Err(RenditionError::TooMany);
        }
        let spec = merge_spec(defaults(), &input.spec.unwrap_or_default())?;
        let ingest = self.resolve_ingest(input.ingest.as_deref())?;
        let name = check_name(
            input
                .name
                .as_deref()
                .unwrap_or(&format!("{}x{}", spec.width, spec.height)),
        )?;
        let hub = self
            .hubs
            .find(&ingest)
            .ok_or(RenditionError::UnknownIngest)?;
        let stored = StoredRendition {
            id: new_id(),
            name,
            ingest,
            spec,
        };
        let saved = stored.clone();
        self.save(move |s| s.insert_rendition(&saved)).await?;
        let config = self.config_for(&stored.spec).await;
        let engine = Rendition::start(stored.id.clone(), stored.spec.clone(), hub, config)
            .map_err(|e| RenditionError::Invalid(e.to_string()))?;
        info!(rendition = %stored.id, "rendition added");
        self.history.record(
            EventKind::RenditionAdded,
            Some((&stored.id, &stored.name)),
            format!(
                "rendition added ({}x{}, {} kbit/s)",
                stored.spec.width, stored.spec.height, stored.spec.video_kbps
            ),
            Some(actor),
        );
        let entry = Entry {
            stored,
            engine: Arc::new(engine),
        };
        let mut next = Vec::clone(&current);
        next.push(entry.clone());
        self.publish(next);
        Ok(self.view(&entry))
    }

    /// Applies changes; a new spec restarts only this rendition's
    /// encoder, its destinations stay connected.
    pub async fn update(
        &self,
        id: &str,
        input: RenditionInput,
        actor: &str,
    ) -> Result<RenditionView, RenditionError> {
        let _w = self.writer.lock().await;
        let current = self.snapshot();
        let i = current
            .iter()
            .position(|e| e.stored.id == id)
            .ok_or_else(|| RenditionError::NotFound(id.to_owned()))?;
        let old = &current[i];
        if let Some(k) = input.ingest.as_deref() {
            if self.resolve_ingest(Some(k))? != old.stored.ingest {
                return Err(RenditionError::Invalid(
                    "a rendition's ingest key cannot change: add a rendition to the other ingest"
                        .into(),
                ));
            }
        }
        let mut next = old.stored.clone();
        if let Some(name) = &input.name {
            next.name = check_name(name)?;
        }
        if let Some(changes) = &input.spec {
            let base = serde_json::to_value(&old.stored.spec)
                .map_err(|e| RenditionError::Invalid(e.to_string()))?;
            next.spec = merge_spec(base, changes)?;
        }
        let saved = next.clone();
        if !self.save(move |s| s.update_rendition(&saved)).await? {
            return Err(RenditionError::NotFound(id.to_owned()));
        }
        let respec = next.spec != old.stored.spec;
        if respec {
            let hub = self
                .hubs
                .find(&next.ingest)
                .ok_or(RenditionError::UnknownIngest)?;
            old.engine
                .respec(next.spec.clone(), hub, self.config_for(&next.spec).await)
                .map_err(|e| RenditionError::Invalid(e.to_string()))?;
        }
        info!(rendition = %id, restarted = respec, "rendition updated");
        self.history.record(
            EventKind::RenditionEdited,
            Some((id, &next.name)),
            if respec {
                "rendition edited (encoder restarts)"
            } else {
                "rendition edited"
            },
            Some(actor),
        );
        let entry = Entry {
            stored: next,
            engine: old.engine.clone(),
        };
        let mut list = Vec::clone(&current);
        list[i] = entry.clone();
        self.publish(list);
        Ok(self.view(&entry))
    }

    /// Removes a rendition. `in_use` is asked under the writers' lock
    /// (the caller holds the destinations' lock so none can start using
    /// it meanwhile).
    pub async fn delete(&self, id: &str, in_use: bool, actor: &str) -> Result<(), RenditionError> {
        let _w = self.writer.lock().await;
        let current = self.snapshot();
        let entry = current
            .iter()
            .find(|e| e.stored.id == id)
            .ok_or_else(|| RenditionError::NotFound(id.to_owned()))?;
        if in_use {
            return Err(RenditionError::InUse);
        }
        let owned = id.to_owned();
        self.save(move |s| s.delete_rendition(&owned)).await?;
        self.history.record(
            EventKind::RenditionDeleted,
            Some((id, &entry.stored.name)),
            "rendition deleted",
            Some(actor),
        );
        info!(rendition = %id, "rendition deleted");
        let next: Vec<Entry> = current
            .iter()
            .filter(|e| e.stored.id != id)
            .cloned()
            .collect();
        // Dropping the last handle of its engine stops its ffmpeg.
        self.publish(next);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_spec_takes_defaults_and_a_change_keeps_the_rest() {
        let mut changes = serde_json::Map::new();
        changes.insert("width".into(), 180.into());
        changes.insert("height".into(), 320.into());
        changes.insert("video_kbps".into(), 500.into());
        let spec = merge_spec(defaults(), &changes).expect("valid");
        assert_eq!(spec.keyframe_interval_s, 2.0);
        assert_eq!(spec.fit, super::super::Fit::Crop { x: 0.5 });
        let mut moved = serde_json::Map::new();
        moved.insert("fit".into(), serde_json::json!({"mode": "crop", "x": 0.2}));
        let base = serde_json::to_value(&spec).expect("serialises");
        let next = merge_spec(base, &moved).expect("valid");
        assert_eq!(next.fit, super::super::Fit::Crop { x: 0.2 });
        assert_eq!((next.width, next.video_kbps), (180, 500));
        changes.insert("width".into(), 181.into());
        let err = merge_spec(defaults(), &changes).expect_err("odd width");
        assert!(err.to_string().contains("width"), "{err}");
        let err = merge_spec(defaults(), &serde_json::Map::new()).expect_err("no size");
        assert!(err.to_string().contains("width"), "{err}");
    }

    #[test]
    fn reads_the_cpu_time_of_a_process() {
        let used = cpu_seconds(std::process::id()).expect("own /proc stat");
        assert!(used >= 0.0);
        assert_eq!(cpu_seconds(u32::MAX), None);
    }
}
