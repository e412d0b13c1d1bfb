//! What a late joiner needs to start decoding: the latest metadata, the
//! audio and video sequence headers, and the current GOP (from the last
//! keyframe on).
//!
//! Invariants: the GOP, when not empty, starts with a keyframe; it never
//! holds more than [`MAX_GOP_BYTES`] (a publisher that never sends a
//! keyframe cannot make it grow); frames are shared [`super::Frame`]s
//! (`Bytes` inside), so caching copies no media.

use super::Frame;

/// Largest GOP the hub caches; a publisher that never sends a keyframe
/// cannot make it grow past this.
pub(super) const MAX_GOP_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Default)]
pub(super) struct Cache {
    pub(super) metadata: Option<Frame>,
    pub(super) video_header: Option<Frame>,
    pub(super) audio_header: Option<Frame>,
    pub(super) gop: Vec<Frame>,
    gop_bytes: usize,
}

impl Cache {
    /// Metadata and sequence headers, in the order a destination sends
    /// them.
    pub(super) fn headers(&self) -> impl Iterator<Item = &Frame> {
        self.metadata
            .iter()
            .chain(self.video_header.iter())
            .chain(self.audio_header.iter())
    }

    /// Forgets everything (a new publisher session).
    pub(super) fn reset(&mut self) {
        *self = Cache::default();
    }

    pub(super) fn clear_gop(&mut self) {
        self.gop.clear();
        self.gop_bytes = 0;
    }

    /// Whether a late joiner can start now, on the cached keyframe.
    pub(super) fn gop_ready(&self) -> bool {
        self.gop.first().is_some_and(|f| f.keyframe)
    }

    /// Caches a media frame (not a header) in the current GOP.
    pub(super) fn push_media(&mut self, frame: &Frame) {
        if frame.keyframe {
            self.clear_gop();
        } else if self.gop.is_empty() {
            // No keyframe yet: nothing a late joiner could start with.
            return;
        }
        self.gop_bytes += frame.payload.len();
        if self.gop_bytes > MAX_GOP_BYTES {
            self.clear_gop();
            return;
        }
        self.gop.push(frame.clone());
    }
}
