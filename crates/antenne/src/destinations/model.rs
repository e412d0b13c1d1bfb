//! What a destination is, what a change to one says, and why a change is
//! refused: the data the registry ([`super::Destinations`]) keeps and the
//! API shows.

use std::sync::Arc;

use crate::output::url::{self, Target, UrlError};
use crate::output::OutputStats;
use crate::secret::StreamKey;
use crate::store::{StoreError, StoredDestination};

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
    /// What it relays: its ingest as it comes, or a rendition of it.
    pub source: Source,
}

/// What a destination relays.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Source {
    /// The ingest's stream as OBS sends it.
    #[default]
    Ingest,
    /// A rendition (by id) of its ingest, encoded by ffmpeg.
    Rendition(String),
}

impl Source {
    /// The rendition id, for a rendition source.
    pub fn rendition(&self) -> Option<&str> {
        match self {
            Source::Ingest => None,
            Source::Rendition(id) => Some(id),
        }
    }

    pub fn from_stored(s: Option<String>) -> Self {
        s.map(Source::Rendition).unwrap_or_default()
    }
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
    pub(super) fn stored(&self) -> StoredDestination {
        StoredDestination {
            id: self.id.clone(),
            name: self.name.clone(),
            platform: self.platform.clone(),
            url: self.url.clone(),
            key: self.key.expose().to_owned(),
            enabled: self.enabled,
            ingest: self.ingest.expose().to_owned(),
            via_obs: self.via_obs.clone(),
            source: self.source.rendition().map(str::to_owned),
        }
    }

    /// The URL with any key in it masked (see [`url::masked`]).
    pub fn masked_url(&self) -> String {
        url::masked(&self.url, self.key.expose())
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
    /// `None` keeps it.
    pub source: Option<Source>,
}

/// Why a change was refused; the text is shown to the user.
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    #[error("no destination with id {0:?}")]
    NotFound(String),
    #[error("invalid url: {0}")]
    Url(#[from] UrlError),
    #[error("the url still holds a masked part (…): type the whole URL again")]
    MaskedUrl,
    #[error("missing field {0:?}")]
    Missing(&'static str),
    #[error("the ingest key does not match any configured ingest key")]
    UnknownIngest,
    #[error("no ingest key with id {0:?}")]
    IngestNotFound(String),
    #[error("invalid order: {0}")]
    BadOrder(String),
    #[error("name must be 1 to 100 characters")]
    BadName,
    #[error("unknown platform {0:?}")]
    UnknownPlatform(String),
    #[error("OBS has a single stream output, already used by {0:?}: switch that one off first")]
    ObsMainBusy(String),
    #[error("via_obs must be \"main\" or the name of an OBS output (1 to 100 characters)")]
    BadViaObs,
    #[error("no rendition with id {0:?}")]
    UnknownRendition(String),
    #[error("rendition {0:?} encodes another ingest key than the destination's")]
    RenditionOfAnotherIngest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
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
