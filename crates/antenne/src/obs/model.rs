//! What antenne knows of OBS and shows of it: OBS's stream service (its
//! key masked in `Debug` and in [`ServiceView`]), its outputs, the status a
//! poll finds, and the views the API answers with. Plain data: no I/O.

use std::fmt;

use serde::Serialize;
use serde_json::{json, Value};

use crate::secret::mask;

/// A stream service of OBS (`GetStreamServiceSettings`): its type
/// (`rtmp_custom`, `rtmp_common`, …) and its settings, stream key included.
/// `Debug` masks the key.
#[derive(Clone, PartialEq)]
pub struct StreamService {
    pub kind: String,
    pub settings: Value,
}

impl StreamService {
    /// A custom RTMP server and key.
    pub fn custom(server: &str, key: &str) -> Self {
        StreamService {
            kind: "rtmp_custom".into(),
            settings: json!({ "server": server, "key": key, "use_auth": false }),
        }
    }

    pub fn server(&self) -> &str {
        self.settings["server"].as_str().unwrap_or_default()
    }

    /// The stream key, in clear.
    pub fn key(&self) -> &str {
        self.settings["key"].as_str().unwrap_or_default()
    }

    /// The platform of an `rtmp_common` service ("YouTube - RTMPS", …).
    pub fn service_name(&self) -> Option<&str> {
        self.settings["service"].as_str()
    }

    /// As the API shows it: key masked.
    pub fn view(&self) -> ServiceView {
        ServiceView {
            kind: self.kind.clone(),
            service: self.service_name().map(str::to_owned),
            server: self.server().to_owned(),
            key: mask(self.key()),
        }
    }

    pub(super) fn to_json(&self) -> Value {
        json!({ "type": self.kind, "settings": self.settings })
    }

    pub(super) fn from_json(v: &Value) -> Option<StreamService> {
        Some(StreamService {
            kind: v["type"].as_str()?.to_owned(),
            settings: v.get("settings")?.clone(),
        })
    }

    /// Same destination (type, server, key) as `other`.
    pub(super) fn same_target(&self, other: &StreamService) -> bool {
        self.kind == other.kind
            && self.server().trim_end_matches('/') == other.server().trim_end_matches('/')
            && self.key() == other.key()
    }
}

impl fmt::Debug for StreamService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamService")
            .field("kind", &self.kind)
            .field("server", &self.server())
            .field("key", &mask(self.key()))
            .finish()
    }
}

/// A stream service as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceView {
    #[serde(rename = "type")]
    pub kind: String,
    /// `rtmp_common` only: the platform OBS picked.
    pub service: Option<String>,
    pub server: String,
    /// Masked.
    pub key: String,
}

/// One output of OBS (`GetOutputList`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ObsOutput {
    pub name: String,
    pub kind: String,
    pub active: bool,
    /// False when several outputs share the name (the multi-output plugin
    /// names all its outputs `multi-output`): OBS cannot be told which one.
    pub controllable: bool,
}

/// Sets `controllable` on each output: only names no other output has.
pub fn mark_controllable(mut outputs: Vec<ObsOutput>) -> Vec<ObsOutput> {
    let mut counts = std::collections::HashMap::<String, usize>::new();
    for o in &outputs {
        *counts.entry(o.name.clone()).or_default() += 1;
    }
    for o in &mut outputs {
        o.controllable = counts.get(&o.name) == Some(&1);
    }
    outputs
}

/// One output's status (`GetOutputStatus`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ObsOutputStatus {
    pub name: String,
    pub active: bool,
    pub reconnecting: bool,
    pub timecode: String,
    pub bytes: u64,
    pub skipped_frames: u64,
    pub total_frames: u64,
}

/// What the last poll found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ObsStatus {
    pub obs_version: String,
    pub websocket_version: String,
    /// The main stream output (OBS's "Start Streaming").
    pub streaming: bool,
    pub stream_reconnecting: bool,
    pub recording: bool,
    /// `HH:MM:SS.mmm` of the main stream.
    pub stream_timecode: String,
    /// Of the main stream, from the bytes OBS reports between two polls.
    pub output_bitrate_kbps: f64,
    /// Frames the main stream output dropped (network).
    pub dropped_frames: u64,
    pub total_frames: u64,
    /// Frames OBS failed to render in time (overloaded machine).
    pub lagged_frames: u64,
    /// Frames the encoders skipped (encoding overloaded).
    pub skipped_frames: u64,
    /// CPU usage of OBS, percent.
    pub cpu_usage: f64,
    pub active_fps: f64,
    pub current_scene: Option<String>,
    pub scenes: Vec<String>,
    pub stream_service: Option<ServiceView>,
    #[serde(skip)]
    pub outputs: Vec<ObsOutput>,
    #[serde(skip)]
    pub(super) service: Option<StreamService>,
}

impl ObsStatus {
    /// The service OBS streams to, key in clear.
    pub fn service(&self) -> Option<&StreamService> {
        self.service.as_ref()
    }
}

/// Everything `GET /api/v1/obs` shows.
#[derive(Clone, Debug, Serialize)]
pub struct ObsView {
    pub state: &'static str,
    pub error: Option<String>,
    pub host: String,
    pub port: u16,
    pub password_set: bool,
    pub auto_stream: bool,
    pub status: Option<ObsStatus>,
    pub previous_service: Option<ServiceView>,
    pub antenne_service: AntenneServiceView,
}

/// Where "point OBS at antenne" sends OBS.
#[derive(Clone, Debug, Serialize)]
pub struct AntenneServiceView {
    pub server: String,
    /// Masked; null when antenne has no ingest key.
    pub key: Option<String>,
}

/// What "point OBS at antenne" did.
#[derive(Clone, Debug, Serialize)]
pub struct PointOutcome {
    pub server: String,
    /// OBS was streaming and was restarted on the new settings.
    pub restarted: bool,
    /// The settings it had are saved (they were not antenne's already).
    pub previous_saved: bool,
}

#[cfg(test)]
mod tests {
    use super::super::requests::timecode;
    use super::*;

    fn output(name: &str) -> ObsOutput {
        ObsOutput {
            name: name.into(),
            kind: "rtmp_output".into(),
            active: false,
            controllable: true,
        }
    }

    #[test]
    fn outputs_sharing_a_name_are_not_controllable() {
        let list = mark_controllable(vec![
            output("simple_stream"),
            output("multi-output"),
            output("adv_file_output"),
            output("multi-output"),
        ]);
        let flags: Vec<(&str, bool)> = list
            .iter()
            .map(|o| (o.name.as_str(), o.controllable))
            .collect();
        assert_eq!(
            flags,
            [
                ("simple_stream", true),
                ("multi-output", false),
                ("adv_file_output", true),
                ("multi-output", false),
            ]
        );
    }

    #[test]
    fn timecodes_and_masked_services() {
        assert_eq!(timecode(3_723_004), "01:02:03.004");
        assert_eq!(timecode(-5), "00:00:00.000");
        let s = StreamService::custom("rtmp://a/live", "live_1234567890abcdef9f");
        assert_eq!(s.view().key, "live_12…9f");
        assert!(!format!("{s:?}").contains("1234567890"));
        let back = StreamService::from_json(&s.to_json()).expect("round trip");
        assert!(back.same_target(&s));
    }
}
