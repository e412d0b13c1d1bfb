//! Ingest keys: given on the command line (then fixed), or kept in the
//! store, where the first start generates one. [`IngestKeys`] adds and
//! deletes them at run time.
//!
//! Invariants:
//! - every hub is made by [`IngestKeys::hub`], with the configured queue
//!   limits (`--max-lag-ms`), at start-up and through the API alike;
//! - a change is saved first (off the runtime's threads), then applied:
//!   a change that cannot be saved answers an error and changes nothing;
//! - a key is deleted only while no destination can start using it (the
//!   destinations' writers' lock is held across check, save and removal).

use std::sync::Arc;

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

use crate::destinations::Destinations;
use crate::history::{EventKind, History};
use crate::hub::{Hub, QueueLimits};
use crate::ingest::srt::Passphrases;
use crate::ingest::Hubs;
use crate::secret::StreamKey;
use crate::store::{Store, StoreError, StoredIngestKey};

/// Why an ingest key change was refused; the text is shown to the user.
#[derive(Debug, thiserror::Error)]
pub enum IngestKeyError {
    #[error("ingest keys are set by --ingest-key / ANTENNE_INGEST_KEY")]
    Fixed,
    #[error("{0}")]
    Invalid(String),
    #[error("this ingest key exists already")]
    Exists,
    #[error("no ingest key with id {0:?}")]
    NotFound(String),
    #[error("the last ingest key cannot be deleted")]
    Last,
    #[error("destinations or renditions use this ingest key: move or delete them first")]
    InUse,
    #[error("this ingest key is live: stop the stream in OBS first")]
    Live,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The ingest keys being served, each with its hub.
pub struct IngestKeys {
    hubs: Hubs,
    limits: QueueLimits,
    store: Arc<Store>,
    history: History,
    /// Given on the command line: not changed at run time.
    fixed: bool,
    /// Serializes changes (check, save, apply as one step).
    writer: tokio::sync::Mutex<()>,
    /// SRT passphrases by key (saved in the store, read at start).
    srt: Passphrases,
}

/// A stable id for an ingest key that does not reveal it (for URLs).
pub fn id_of(key: &str) -> String {
    Sha256::digest(key.as_bytes())[..5]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The one way a hub is made: with the configured limits.
fn make_hub(key: StreamKey, limits: QueueLimits) -> Arc<Hub> {
    Hub::new(key, limits)
}

impl IngestKeys {
    /// Serves `keys`, each with a hub bounded by `limits`.
    pub fn new(
        keys: &[StreamKey],
        limits: QueueLimits,
        store: Arc<Store>,
        history: History,
        fixed: bool,
    ) -> Self {
        let hubs = Hubs::new(keys.iter().map(|k| make_hub(k.clone(), limits)).collect());
        let srt = Passphrases::default();
        // At start-up, before the runtime serves anything.
        match store.srt_passphrases() {
            Ok(list) => list.into_iter().for_each(|(k, p)| srt.set(&k, Some(p))),
            Err(e) => tracing::warn!(error = %e, "cannot read the SRT passphrases"),
        }
        Self {
            srt,
            hubs,
            limits,
            store,
            history,
            fixed,
            writer: tokio::sync::Mutex::new(()),
        }
    }

    /// A hub for a key added at run time, made as at start-up.
    fn hub(&self, key: StreamKey) -> Arc<Hub> {
        make_hub(key, self.limits)
    }

    pub fn hubs(&self) -> &Hubs {
        &self.hubs
    }

    /// The SRT passphrases the SRT ingest checks.
    pub fn srt_passphrases(&self) -> &Passphrases {
        &self.srt
    }

    /// Sets (or removes, with `None` or an empty one) the SRT passphrase of
    /// the key with id `id`: saved first, then used by the next SRT
    /// connection. Allowed for keys given on the command line too.
    pub async fn set_srt_passphrase(
        &self,
        id: &str,
        passphrase: Option<String>,
        actor: &str,
    ) -> Result<(), IngestKeyError> {
        let passphrase = passphrase.filter(|p| !p.is_empty());
        if let Some(p) = &passphrase {
            crate::ingest::srt::validate_passphrase(p).map_err(IngestKeyError::Invalid)?;
        }
        let _writing = self.writer.lock().await;
        let Some(hub) = self
            .hubs
            .all()
            .into_iter()
            .find(|h| id_of(h.key().expose()) == id)
        else {
            return Err(IngestKeyError::NotFound(id.to_owned()));
        };
        let key = hub.key().clone();
        let (k, p) = (key.expose().to_owned(), passphrase.clone());
        self.save(move |s| s.set_srt_passphrase(&k, p.as_deref()))
            .await?;
        let set = passphrase.is_some();
        self.srt.set(key.expose(), passphrase);
        self.history.record(
            EventKind::Settings,
            None,
            format!(
                "SRT passphrase of ingest key {key} {}",
                if set { "set" } else { "removed" }
            ),
            Some(actor),
        );
        Ok(())
    }

    /// The queue limits every hub gets.
    pub fn limits(&self) -> QueueLimits {
        self.limits
    }

    /// Whether the keys come from the command line (and cannot change).
    pub fn fixed(&self) -> bool {
        self.fixed
    }

    async fn save(
        &self,
        f: impl FnOnce(&Store) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<(), StoreError> {
        self.store.off_runtime(f).await
    }

    /// Adds a key (generated when `key` is `None`); its hub serves at once.
    pub async fn add(
        &self,
        key: Option<String>,
        name: String,
        actor: &str,
    ) -> Result<StreamKey, IngestKeyError> {
        if self.fixed {
            return Err(IngestKeyError::Fixed);
        }
        let key = key.map(|k| k.trim().to_owned()).unwrap_or_else(generate);
        validate(&key).map_err(|e| IngestKeyError::Invalid(e.to_string()))?;
        let _writing = self.writer.lock().await;
        if self.hubs.find(&key).is_some() {
            return Err(IngestKeyError::Exists);
        }
        let stored = StoredIngestKey {
            key: key.clone(),
            name,
        };
        self.save(move |s| s.add_ingest_key(&stored)).await?;
        let key = StreamKey::new(key);
        self.hubs.add(self.hub(key.clone()));
        self.history.record(
            EventKind::IngestKeyAdded,
            None,
            format!("ingest key {key} added"),
            Some(actor),
        );
        Ok(key)
    }

    /// Deletes the key whose [`id_of`] is `id`: saved first, then its hub
    /// removed.
    pub async fn delete(
        &self,
        id: &str,
        destinations: &Destinations,
        actor: &str,
    ) -> Result<(), IngestKeyError> {
        if self.fixed {
            return Err(IngestKeyError::Fixed);
        }
        let _writing = self.writer.lock().await;
        // No destination may attach to this key until it is gone.
        let _destinations = destinations.writing().await;
        let hubs = self.hubs.all();
        let Some(hub) = hubs.iter().find(|h| id_of(h.key().expose()) == id) else {
            return Err(IngestKeyError::NotFound(id.to_owned()));
        };
        if hubs.len() == 1 {
            return Err(IngestKeyError::Last);
        }
        if destinations.uses_ingest(hub.key().expose()) {
            return Err(IngestKeyError::InUse);
        }
        if hub.is_live() {
            return Err(IngestKeyError::Live);
        }
        let key = hub.key().clone();
        let k = key.expose().to_owned();
        self.save(move |s| s.delete_ingest_key(&k)).await?;
        if self.hubs.remove(key.expose()).is_err() {
            // Went live between the check and now: keep it, saved again.
            let stored = StoredIngestKey {
                key: key.expose().to_owned(),
                name: String::new(),
            };
            self.save(move |s| s.add_ingest_key(&stored)).await?;
            return Err(IngestKeyError::Live);
        }
        if self.srt.get(key.expose()).is_some() {
            let k = key.expose().to_owned();
            self.save(move |s| s.set_srt_passphrase(&k, None)).await?;
            self.srt.set(key.expose(), None);
        }
        self.history.record(
            EventKind::IngestKeyDeleted,
            None,
            format!("ingest key {key} deleted"),
            Some(actor),
        );
        Ok(())
    }
}

/// Where the keys came from, to tell the user once.
pub enum Origin {
    CommandLine,
    Stored,
    /// Generated now: the caller prints it once.
    Generated,
}

/// Checks that a key can be typed into OBS and used in a URL path.
pub fn validate(key: &str) -> anyhow::Result<()> {
    if key.is_empty() || key.len() > 200 {
        bail!("an ingest key must be 1 to 200 characters long");
    }
    if !key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
    {
        bail!("an ingest key may only contain letters, digits, '-', '_', '.' and '~'");
    }
    Ok(())
}

/// A new random ingest key.
pub fn generate() -> String {
    format!("live_{:032x}", rand::random::<u128>())
}

/// The ingest keys to serve.
pub fn load(cli_keys: &[String], store: &Store) -> anyhow::Result<(Vec<StreamKey>, Origin)> {
    if !cli_keys.is_empty() {
        let mut keys: Vec<StreamKey> = Vec::new();
        for k in cli_keys {
            let k = k.trim();
            validate(k)
                .with_context(|| format!("invalid --ingest-key {}", crate::secret::mask(k)))?;
            if keys.iter().any(|x| x.expose() == k) {
                bail!("the same --ingest-key is given twice");
            }
            keys.push(StreamKey::new(k));
        }
        return Ok((keys, Origin::CommandLine));
    }
    let stored = store.ingest_keys()?;
    if !stored.is_empty() {
        return Ok((
            stored.into_iter().map(|k| StreamKey::new(k.key)).collect(),
            Origin::Stored,
        ));
    }
    let key = generate();
    store.add_ingest_key(&StoredIngestKey {
        key: key.clone(),
        name: String::new(),
    })?;
    Ok((vec![StreamKey::new(key)], Origin::Generated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_reuses() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("store");
        let (k1, o1) = load(&[], &store).expect("generates");
        assert!(matches!(o1, Origin::Generated));
        let (k2, o2) = load(&[], &store).expect("loads");
        assert!(matches!(o2, Origin::Stored));
        assert_eq!(k1, k2);
    }

    /// A hub added at run time drops a slow destination's frames past the
    /// configured lag, as one made at start-up does.
    #[tokio::test]
    async fn hubs_added_at_run_time_get_the_configured_lag() {
        const AVC_SEQ: &[u8] = &[0x17, 0, 0, 0, 0, 1, 2, 3];
        const AVC_KEY: &[u8] = &[0x17, 1, 0, 0, 0, 9, 9];
        const AVC_INTER: &[u8] = &[0x27, 1, 0, 0, 0, 7];
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(Store::open(dir.path()).expect("store"));
        let limits = QueueLimits {
            max_lag: std::time::Duration::from_millis(300),
            ..QueueLimits::default()
        };
        let keys = IngestKeys::new(
            &[StreamKey::new("first")],
            limits,
            store,
            History::disabled(),
            false,
        );
        let added = keys
            .add(Some("second".into()), String::new(), "test")
            .await
            .expect("added");
        for key in ["first", added.expose()] {
            let hub = keys.hubs().find(key).expect("hub served");
            let addr = "127.0.0.1:1".parse().expect("address");
            let _guard = hub.start_publish(addr).expect("publisher");
            hub.push_video(0, bytes::Bytes::from_static(AVC_SEQ));
            let sub = hub.subscribe();
            // 2 s of frames at 10 fps, nobody reading: past 300 ms of lag
            // (and well under the default 4 s) frames are dropped.
            for i in 0..20u32 {
                let payload = if i % 10 == 0 { AVC_KEY } else { AVC_INTER };
                hub.push_video(i * 100, bytes::Bytes::from_static(payload));
            }
            assert!(sub.dropped() > 0, "{key}: the configured lag applies");
        }
    }

    #[test]
    fn refuses_keys_that_do_not_fit_in_a_url() {
        assert!(validate("live/abc").is_err());
        assert!(validate("").is_err());
        assert!(validate("a b").is_err());
        assert!(validate("live_abc-123").is_ok());
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("store");
        assert!(load(&["k1".into(), "k1".into()], &store).is_err());
    }
}
