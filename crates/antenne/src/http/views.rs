//! What the API and the live view answer, as typed views: one struct per
//! answer, built from the domain types in one place. Stream keys — the
//! destination's, the ingest's, and any key inside a destination URL —
//! are masked unless the caller asked for `?reveal=keys`.

use std::collections::HashMap;
use std::time::SystemTime;

use serde::Serialize;

use crate::destinations::{DestinationView, Switched};
use crate::hub::Hub;
use crate::ingest_keys::id_of;
use crate::output::OutputState;
use crate::secret::StreamKey;
use crate::store::Event;

/// An RFC 3339 time from seconds since the epoch (as the store keeps them).
pub(crate) fn unix_time(secs: i64) -> String {
    time(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64))
}

pub(crate) fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Whether keys are shown in clear (`?reveal=keys`) or masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    Masked,
    Revealed,
}

impl Keys {
    fn key(self, key: &StreamKey) -> String {
        match self {
            Keys::Revealed => key.expose().to_owned(),
            Keys::Masked => key.masked(),
        }
    }
}

/// A destination's live status.
#[derive(Debug, Serialize)]
pub struct StatusJson {
    pub state: &'static str,
    pub last_error: Option<String>,
    /// When `last_error` happened (RFC 3339).
    pub last_error_at: Option<String>,
    pub bytes_sent: u64,
    pub bitrate_kbps: f64,
    pub reconnects: u64,
    pub dropped_frames: u64,
    pub connected_since: Option<String>,
    pub uptime_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_retry_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A destination as the API shows it.
#[derive(Debug, Serialize)]
pub struct DestinationJson {
    pub id: String,
    pub name: String,
    pub platform: String,
    pub url: String,
    pub key: String,
    pub enabled: bool,
    pub ingest: String,
    pub via_obs: Option<String>,
    pub source: SourceJson,
    /// The ingest's audio track it takes (0: the main one).
    pub audio_track: u8,
    /// What its connection relays now, for `"vertical"` and track
    /// sources: `{"kind": "track", "track", "width", "height"}` (copied
    /// from OBS) or `{"kind": "rendition", "rendition", "width",
    /// "height"}` (cropped on the server); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relaying: Option<crate::destinations::Relaying>,
    pub status: StatusJson,
}

/// What a destination relays: `"ingest"` (the main picture),
/// `"vertical"`, `{"track": N}` or `{"rendition": ID}`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceJson {
    Ingest,
    Vertical,
    Track(u8),
    Rendition(String),
}

impl From<SourceJson> for crate::destinations::Source {
    fn from(s: SourceJson) -> Self {
        use crate::destinations::Source;
        match s {
            SourceJson::Ingest => Source::Ingest,
            SourceJson::Vertical => Source::Vertical,
            SourceJson::Track(n) => Source::Track(n),
            SourceJson::Rendition(id) => Source::Rendition(id),
        }
    }
}

impl From<&crate::destinations::Source> for SourceJson {
    fn from(s: &crate::destinations::Source) -> Self {
        use crate::destinations::Source;
        match s {
            Source::Ingest => SourceJson::Ingest,
            Source::Vertical => SourceJson::Vertical,
            Source::Track(n) => SourceJson::Track(*n),
            Source::Rendition(id) => SourceJson::Rendition(id.clone()),
        }
    }
}

impl DestinationJson {
    pub fn new(v: &DestinationView, keys: Keys) -> Self {
        let d = &v.dest;
        let state = v.stats.state();
        let past = v.stats.last_error();
        let mut status = StatusJson {
            state: state.name(),
            last_error_at: past.as_ref().map(|e| time(e.at)),
            last_error: past.map(|e| e.message),
            bytes_sent: v.stats.bytes.total(),
            bitrate_kbps: 0.0,
            reconnects: v.stats.reconnects(),
            dropped_frames: v.stats.dropped(),
            connected_since: None,
            uptime_seconds: None,
            attempt: None,
            next_retry_at: None,
            error: None,
        };
        match state {
            OutputState::Live { since } => {
                status.connected_since = Some(time(since));
                status.uptime_seconds = Some(since.elapsed().map(|d| d.as_secs()).unwrap_or(0));
                status.bitrate_kbps = (v.stats.bytes.per_second() * 8.0 / 1000.0).round();
            }
            OutputState::Connecting { attempt } => status.attempt = Some(attempt),
            OutputState::Retrying {
                attempt,
                next_try,
                error,
            } => {
                status.attempt = Some(attempt);
                status.next_retry_at = Some(time(next_try));
                status.error = Some(error);
            }
            OutputState::Rejected { next_try, message } => {
                status.next_retry_at = Some(time(next_try));
                status.error = Some(message);
            }
            OutputState::Disabled | OutputState::Idle => {}
        }
        if d.via_obs.is_some() && d.enabled {
            // Streamed by OBS: its state is OBS's.
            status.state = match v.obs_active {
                Some(true) => "live",
                Some(false) => "connecting",
                None => "idle",
            };
            if v.obs_active.is_none() {
                status.error = Some("OBS is not connected".into());
            }
        }
        DestinationJson {
            id: d.id.clone(),
            name: d.name.clone(),
            platform: d.platform.clone(),
            url: match keys {
                Keys::Revealed => d.url.clone(),
                Keys::Masked => d.masked_url(),
            },
            key: keys.key(&d.key),
            enabled: d.enabled,
            ingest: keys.key(&d.ingest),
            via_obs: d.via_obs.clone(),
            source: (&d.source).into(),
            audio_track: d.audio_track,
            relaying: v.relaying.clone(),
            status,
        }
    }
}

/// A destination named in a bulk change.
#[derive(Debug, Serialize)]
pub struct NamedJson {
    pub id: String,
    pub name: String,
}

/// A destination a bulk change left as it was, and why.
#[derive(Debug, Serialize)]
pub struct SkippedJson {
    pub id: String,
    pub name: String,
    pub reason: String,
}

/// The answer to "turn all on/off".
#[derive(Debug, Serialize)]
pub struct BulkSwitchJson {
    pub enabled: bool,
    pub changed: Vec<NamedJson>,
    pub skipped: Vec<SkippedJson>,
    /// Every destination after the change.
    pub destinations: Vec<DestinationJson>,
}

impl BulkSwitchJson {
    pub fn new(s: &Switched, destinations: Vec<DestinationJson>) -> Self {
        BulkSwitchJson {
            enabled: s.enabled,
            changed: s
                .changed
                .iter()
                .map(|n| NamedJson {
                    id: n.id.clone(),
                    name: n.name.clone(),
                })
                .collect(),
            skipped: s
                .skipped
                .iter()
                .map(|k| SkippedJson {
                    id: k.id.clone(),
                    name: k.name.clone(),
                    reason: k.reason.clone(),
                })
                .collect(),
            destinations,
        }
    }
}

/// An ingest with its live stream, if any.
#[derive(Debug, Serialize)]
pub struct IngestJson {
    pub id: String,
    pub key: String,
    pub live: bool,
    pub since: Option<String>,
    pub publisher: Option<String>,
    pub video_codec: Option<String>,
    pub audio_codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub frame_rate: Option<f64>,
    pub bitrate_kbps: f64,
    /// Longest recent gap between keyframes (s), once two came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyframe_interval_s: Option<f64>,
    pub destinations_attached: usize,
    /// Whether the ingest key has an SRT passphrase (never the passphrase).
    pub srt_passphrase_set: bool,
    /// The pull feeding this ingest, when one is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull: Option<super::pull::PullJson>,
    /// The tracks of a multitrack ingest (OBS's multitrack video), track 0
    /// first; absent for an ordinary single-track ingest.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tracks: Vec<crate::hub::TrackSnapshot>,
    /// The standby picture: its state, and why it is unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standby: Option<crate::standby::StandbyStatus>,
}

impl IngestJson {
    pub fn new(hub: &Hub, keys: Keys) -> Self {
        let s = hub.snapshot();
        IngestJson {
            id: id_of(hub.key().expose()),
            key: keys.key(hub.key()),
            live: s.live,
            since: s.since.map(time),
            publisher: s.publisher.map(|a| a.to_string()),
            video_codec: s.video_codec,
            audio_codec: s.audio_codec,
            width: s.width,
            height: s.height,
            frame_rate: s.frame_rate.map(|f| (f * 100.0).round() / 100.0),
            bitrate_kbps: s.bitrate_kbps.round(),
            keyframe_interval_s: s.keyframe_interval_s,
            destinations_attached: s.destinations_attached,
            srt_passphrase_set: false,
            pull: None,
            tracks: tracks_json(s.tracks, s.bitrate_kbps),
            standby: None,
        }
    }
}

/// The tracks rounded for display; track 0's bitrate is the ingest's
/// minus the other tracks' (the hub counts the connection's bytes).
fn tracks_json(
    mut tracks: Vec<crate::hub::TrackSnapshot>,
    total_kbps: f64,
) -> Vec<crate::hub::TrackSnapshot> {
    let others: f64 = tracks
        .iter()
        .filter(|t| t.track != 0)
        .map(|t| t.bitrate_kbps)
        .sum();
    for t in &mut tracks {
        if t.track == 0 {
            t.bitrate_kbps = (total_kbps - others).max(0.0);
        }
        t.bitrate_kbps = t.bitrate_kbps.round();
        t.frame_rate = t.frame_rate.map(|f| (f * 100.0).round() / 100.0);
    }
    tracks
}

/// `GET /ingest`.
#[derive(Debug, Serialize)]
pub struct IngestsJson {
    pub ingests: Vec<IngestJson>,
}

/// The live view's snapshot: every ingest and destination.
#[derive(Debug, Serialize)]
pub struct SnapshotJson {
    pub ingests: Vec<IngestJson>,
    pub destinations: Vec<DestinationJson>,
}

/// An ingest key in the list.
#[derive(Debug, Serialize)]
pub struct IngestKeyJson {
    pub id: String,
    pub key: String,
    pub live: bool,
    /// Whether the key has an SRT passphrase (never the passphrase).
    pub srt_passphrase_set: bool,
}

impl IngestKeyJson {
    pub fn new(key: &StreamKey, live: bool, srt_passphrase_set: bool, keys: Keys) -> Self {
        IngestKeyJson {
            id: id_of(key.expose()),
            key: keys.key(key),
            live,
            srt_passphrase_set,
        }
    }
}

/// One line of the history.
#[derive(Debug, Serialize)]
pub struct EventJson {
    pub id: i64,
    pub at: String,
    /// An [`EventKind`](crate::history::EventKind) name, as stored (lines
    /// from other versions keep theirs).
    pub kind: String,
    pub destination_id: Option<String>,
    pub destination_name: Option<String>,
    pub message: String,
    pub actor: Option<String>,
}

impl EventJson {
    /// `names`: the current names of destinations, for lines saved without
    /// one.
    pub fn new(e: Event, names: &HashMap<String, String>) -> Self {
        let destination_name = e.destination_name.or_else(|| {
            e.destination_id
                .as_ref()
                .and_then(|id| names.get(id).cloned())
        });
        EventJson {
            id: e.id,
            at: unix_time(e.at),
            kind: e.kind,
            destination_id: e.destination_id,
            destination_name,
            message: e.message,
            actor: e.actor,
        }
    }
}

/// `GET /settings`.
#[derive(Debug, Serialize)]
pub struct SettingsJson {
    pub rtmp_port: u16,
    /// `null` unless `--rtmps-listen` is on.
    pub rtmps_port: Option<u16>,
    /// `null` unless the SRT ingest listens (`--srt-listen`, libsrt found).
    pub srt_port: Option<u16>,
    /// Why SRT ingest is unavailable (libsrt missing, port taken), or `null`.
    pub srt_unavailable: Option<String>,
    pub public_host: String,
    pub ingest_keys_fixed: bool,
}

/// `GET /runtime`: what the process holds right now.
#[derive(Debug, Serialize)]
pub struct RuntimeJson {
    pub tasks: usize,
    pub open_fds: Option<usize>,
    pub threads: Option<u64>,
    pub rss_kib: Option<u64>,
    /// Live previews being watched (none runs without a viewer).
    pub preview_viewers: usize,
}

/// `GET /health`.
#[derive(Debug, Serialize)]
pub struct HealthJson {
    pub status: &'static str,
}
