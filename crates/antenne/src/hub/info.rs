//! What the hub knows of the publisher's stream: codecs, size, frame
//! rate from `onMetaData`, its sequence headers (what a standby stream
//! must match) and its keyframe interval (the longest of the last few
//! gaps, for the platforms' guardrails), and what the API shows of it
//! ([`IngestSnapshot`]).

use std::net::SocketAddr;
use std::time::SystemTime;

use bytes::Bytes;

use super::{Hub, TrackSnapshot};

#[derive(Debug, Default)]
pub(super) struct StreamInfo {
    pub(super) video_codec: Option<String>,
    pub(super) audio_codec: Option<String>,
    pub(super) width: Option<u32>,
    pub(super) height: Option<u32>,
    pub(super) metadata_frame_rate: Option<f64>,
    pub(super) has_video: bool,
    /// The publisher's timestamp of its last keyframe (ms), and the last
    /// gaps between keyframes.
    last_keyframe: Option<i64>,
    keyframe_gaps: std::collections::VecDeque<i64>,
    /// The publisher's sequence header bodies (what a standby stream must
    /// match).
    pub(super) video_config: Option<Bytes>,
    pub(super) audio_config: Option<Bytes>,
}

impl StreamInfo {
    /// Gaps kept: a stream's keyframe interval is the longest of these.
    const KEYFRAME_GAPS: usize = 8;

    pub(super) fn keyframe_at(&mut self, ts: i64) {
        if let Some(prev) = self.last_keyframe.replace(ts) {
            if self.keyframe_gaps.len() == Self::KEYFRAME_GAPS {
                self.keyframe_gaps.pop_front();
            }
            self.keyframe_gaps.push_back(ts.saturating_sub(prev).max(0));
        }
    }

    pub(super) fn keyframe_interval_s(&self) -> Option<f64> {
        let max = self.keyframe_gaps.iter().max()?;
        Some(*max as f64 / 1000.0)
    }
}

/// What the API shows of an ingest.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct IngestSnapshot {
    pub live: bool,
    pub since: Option<SystemTime>,
    pub publisher: Option<SocketAddr>,
    pub video_codec: Option<String>,
    pub audio_codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub frame_rate: Option<f64>,
    pub bitrate_kbps: f64,
    /// The longest gap between two keyframes among the last few (seconds);
    /// `None` until two keyframes came (platforms cap it: guardrails).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyframe_interval_s: Option<f64>,
    pub destinations_attached: usize,
    /// Every track of a multitrack ingest (track 0 first); empty for an
    /// ordinary single-track ingest.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tracks: Vec<TrackSnapshot>,
}

impl Hub {
    pub fn snapshot(&self) -> IngestSnapshot {
        let st = self.lock();
        let live = st.publisher.is_some();
        let measured_fps = self.video_frames.per_second();
        let frame_rate = st
            .info
            .metadata_frame_rate
            .or((measured_fps > 0.0).then_some(measured_fps));
        IngestSnapshot {
            live,
            since: st.publisher.as_ref().map(|p| p.since),
            publisher: st.publisher.as_ref().map(|p| p.addr),
            video_codec: st.info.video_codec.clone(),
            audio_codec: st.info.audio_codec.clone(),
            width: st.info.width,
            height: st.info.height,
            frame_rate,
            bitrate_kbps: if live {
                self.bytes_in.per_second() * 8.0 / 1000.0
            } else {
                0.0
            },
            keyframe_interval_s: st.info.keyframe_interval_s(),
            destinations_attached: st.subscribers.len()
                + st.own_subscribers.len()
                + st.tracks.subscriber_count(),
            tracks: if st.tracks.is_empty() {
                Vec::new()
            } else {
                let track0 = TrackSnapshot {
                    track: 0,
                    video_codec: st.info.video_codec.clone(),
                    audio_codec: st.info.audio_codec.clone(),
                    width: st.info.width,
                    height: st.info.height,
                    frame_rate,
                    bitrate_kbps: 0.0,
                };
                std::iter::once(track0)
                    .chain(st.tracks.snapshots())
                    .collect()
            },
        }
    }
}
