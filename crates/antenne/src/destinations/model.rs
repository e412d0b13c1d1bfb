//! What a destination is, what a change to one says, and why a change is
//! refused: the data the registry ([`super::Destinations`]) keeps and the
//! API shows.

use std::sync::Arc;

use crate::output::url::{self, Target, UrlError};
use crate::output::OutputStats;
use crate::secret::StreamKey;
use crate::store::{StoreError, StoredDestination, StoredTracks, StoredVideo};

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
    /// What it relays: its ingest's main picture, the vertical picture,
    /// one of the ingest's video tracks, or a rendition.
    pub source: Source,
    /// The ingest's audio track it takes (0: the main one). Not for a
    /// rendition source (the rendition's audio is what ffmpeg made).
    pub audio_track: u8,
}

/// What a destination relays.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Source {
    /// The ingest's main picture (track 0) as OBS sends it.
    #[default]
    Ingest,
    /// Vertical, decided per connection: the ingest's portrait video track
    /// when OBS sends one (copied), else a portrait rendition of the
    /// ingest (cropped on the server).
    Vertical,
    /// One of the ingest's video tracks (1.., OBS's multitrack video),
    /// copied. Track 0 is [`Source::Ingest`].
    Track(u8),
    /// A rendition (by id) of its ingest, encoded by ffmpeg.
    Rendition(String),
}

impl Source {
    /// The rendition id, for a rendition source.
    pub fn rendition(&self) -> Option<&str> {
        match self {
            Source::Rendition(id) => Some(id),
            Source::Ingest | Source::Vertical | Source::Track(_) => None,
        }
    }

    /// From the store's columns: `source` (a rendition id) and `tracks`.
    pub fn from_stored(rendition: Option<String>, tracks: Option<&StoredTracks>) -> (Self, u8) {
        let audio = tracks.map_or(0, |t| t.audio);
        match (rendition, tracks.map(|t| t.video)) {
            (Some(id), _) => (Source::Rendition(id), 0),
            (None, Some(StoredVideo::Vertical)) => (Source::Vertical, audio),
            (None, Some(StoredVideo::Track(0)))
            | (None, Some(StoredVideo::Main))
            | (None, None) => (Source::Ingest, audio),
            (None, Some(StoredVideo::Track(n))) => (Source::Track(n), audio),
        }
    }

    /// The store's `tracks` column (`None` for the main picture, or a
    /// rendition, with audio track 0).
    pub fn stored_tracks(&self, audio_track: u8) -> Option<StoredTracks> {
        let video = match self {
            Source::Ingest | Source::Rendition(_) => StoredVideo::Main,
            Source::Vertical => StoredVideo::Vertical,
            Source::Track(n) => StoredVideo::Track(*n),
        };
        let t = StoredTracks {
            video,
            audio: audio_track,
        };
        (t != StoredTracks::default()).then_some(t)
    }
}

/// What a destination relays right now, when its source is decided per
/// connection ([`Source::Vertical`], [`Source::Track`]): the API and the
/// card say which ("native vertical 1080×1920 from OBS" / "cropped on the
/// server").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Relaying {
    /// A video track of the ingest, copied (no encoding).
    Track {
        track: u8,
        width: Option<u32>,
        height: Option<u32>,
    },
    /// A rendition of the ingest (encoded on the server).
    Rendition {
        rendition: String,
        width: u32,
        height: u32,
    },
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
            tracks: self.source.stored_tracks(self.audio_track),
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
    /// `None` keeps it (0 for a new destination).
    pub audio_track: Option<u8>,
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
    #[error(
        "track 0 is the main picture: use \"source\": \"ingest\" (a track source is 1 to 255)"
    )]
    BadTrack,
    #[error(
        "a rendition's audio is the rendition's own: audio_track must be 0 with a rendition source"
    )]
    AudioTrackWithRendition,
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
    /// What its current connection relays, for a source decided per
    /// connection.
    pub relaying: Option<Relaying>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_and_audio_track_survives_the_store() {
        let cases = [
            (Source::Ingest, 0),
            (Source::Ingest, 2),
            (Source::Vertical, 0),
            (Source::Vertical, 1),
            (Source::Track(1), 0),
            (Source::Track(3), 2),
            (Source::Rendition("r1".into()), 0),
        ];
        for (source, audio) in cases {
            let tracks = source.stored_tracks(audio);
            let rendition = source.rendition().map(str::to_owned);
            assert_eq!(
                Source::from_stored(rendition, tracks.as_ref()),
                (source.clone(), audio),
                "{source:?} with audio {audio}"
            );
        }
        // The main picture with audio 0 (the old rows) stores nothing new.
        assert_eq!(Source::Ingest.stored_tracks(0), None);
        assert_eq!(Source::Rendition("r1".into()).stored_tracks(0), None);
    }
}
