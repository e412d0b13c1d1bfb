//! What the hub knows of the publisher's stream: codecs, size, frame
//! rate from `onMetaData`, its sequence headers (what a standby stream
//! must match) and its keyframe interval (the longest of the last few
//! gaps, for the platforms' guardrails).

use bytes::Bytes;

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
