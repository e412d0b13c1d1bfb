//! Live preview: an ingest's stream repackaged as fragmented MP4 for the
//! page's `<video>` (Media Source Extensions), streamed over one chunked
//! HTTP response. H.264 + AAC as they come, no transcoding.
//!
//! Invariants: nothing runs unless a page watches (a preview is a
//! subscription that lives exactly as long as its HTTP response body, and
//! [`viewers`] counts them); a viewer reads the hub through its own bounded
//! queue, so a slow viewer skips to the next keyframe and never slows the
//! relay; the stream starts at once from the last keyframe the hub holds
//! and cuts short fragments (at most [`FRAGMENT_MS`]) so the page stays
//! about a second behind; a codec configuration change ends the stream
//! (the page reconnects and gets a new init segment).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use antenne_media::fmp4::{
    codec, AacConfig, AudioPacket, AvcConfig, Muxer, MuxerLimits, VideoPacket,
};
use bytes::Bytes;
use futures_util::Stream;

use crate::hub::{Frame, FrameKind, Hub, Subscription};

/// Longest fragment sent to a viewer, milliseconds.
pub const FRAGMENT_MS: i64 = 250;
/// How long a new viewer waits for a keyframe before giving up.
const START_TIMEOUT: Duration = Duration::from_secs(5);

static VIEWERS: AtomicUsize = AtomicUsize::new(0);

/// Previews being watched now.
pub fn viewers() -> usize {
    VIEWERS.load(Ordering::Relaxed)
}

/// Counts one viewer while it lives.
struct Viewer;

impl Viewer {
    fn new() -> Viewer {
        VIEWERS.fetch_add(1, Ordering::Relaxed);
        Viewer
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        VIEWERS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why a preview cannot start.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("this ingest is not live")]
    NotLive,
    #[error("no keyframe from the publisher within {0:?}")]
    NoKeyframe(Duration),
    #[error("the preview plays H.264 video and AAC audio; this stream uses another codec")]
    Unsupported,
}

/// A started preview: its MIME type (with codecs, for
/// `MediaSource.addSourceBuffer`) and its bytes (init segment first).
pub struct Preview {
    pub mime: String,
    pub body: std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>,
}

struct State {
    sub: Subscription,
    muxer: Muxer,
    video: Option<AvcConfig>,
    audio: Option<AacConfig>,
    out: std::collections::VecDeque<Bytes>,
    frames: Vec<Frame>,
    ended: bool,
    _viewer: Viewer,
}

/// Reads the decoder configurations and the first keyframe from the
/// subscription's start (headers then the cached GOP).
async fn start_frames(
    sub: &Subscription,
) -> Result<(Vec<Frame>, Option<AvcConfig>, Option<AacConfig>), PreviewError> {
    let mut held = Vec::new();
    let (mut video, mut audio) = (None, None);
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        let mut batch = Vec::new();
        if tokio::time::timeout_at(deadline, sub.recv_many(&mut batch, 256))
            .await
            .is_err()
        {
            return Err(PreviewError::NoKeyframe(START_TIMEOUT));
        }
        for f in batch {
            let body = f.payload.to_payload();
            match f.kind {
                FrameKind::Video => match codec::video_packet(&body) {
                    Some(VideoPacket::AvcConfig(c)) => video = AvcConfig::parse(c).ok(),
                    Some(VideoPacket::Unsupported) => return Err(PreviewError::Unsupported),
                    _ => {}
                },
                FrameKind::Audio => match codec::audio_packet(&body) {
                    Some(AudioPacket::AacConfig(c)) => audio = AacConfig::parse(c).ok(),
                    Some(AudioPacket::Unsupported) => return Err(PreviewError::Unsupported),
                    _ => {}
                },
                FrameKind::Metadata => {}
            }
            let starts = f.keyframe && !f.header;
            held.push(f);
            if starts && (video.is_some() || audio.is_some()) {
                return Ok((held, video, audio));
            }
        }
    }
}

/// Starts a preview of `hub` (live) for one viewer.
pub async fn open(hub: &Arc<Hub>) -> Result<Preview, PreviewError> {
    if !hub.is_live() {
        return Err(PreviewError::NotLive);
    }
    let viewer = Viewer::new();
    // The publisher's own stream, never the standby picture.
    let sub = hub.subscribe_publisher();
    let (frames, video, audio) = start_frames(&sub).await?;
    let muxer = Muxer::new(
        video.clone(),
        audio.clone(),
        MuxerLimits {
            min_fragment_ms: 0,
            max_fragment_ms: FRAGMENT_MS,
        },
    );
    let mime = muxer.mime_type();
    let mut state = State {
        out: std::collections::VecDeque::from([muxer.init_segment()]),
        sub,
        muxer,
        video,
        audio,
        frames: Vec::new(),
        ended: false,
        _viewer: viewer,
    };
    for f in frames {
        state.take(&f);
    }
    let body = futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(b) = st.out.pop_front() {
                return Some((Ok(b), st));
            }
            if st.ended {
                return None;
            }
            let mut frames = std::mem::take(&mut st.frames);
            st.sub.recv_many(&mut frames, 64).await;
            for f in frames.drain(..) {
                st.take(&f);
            }
            st.frames = frames;
        }
    });
    Ok(Preview {
        mime,
        body: Box::pin(body),
    })
}

impl State {
    /// Muxes one frame; a changed configuration or codec ends the stream.
    fn take(&mut self, f: &Frame) {
        if self.ended {
            return;
        }
        let body = f.payload.to_payload();
        let fragment = match f.kind {
            FrameKind::Metadata => None,
            FrameKind::Video => match codec::video_packet(&body) {
                Some(VideoPacket::AvcConfig(c)) => {
                    if self.video.as_ref().is_none_or(|v| v.record != c) {
                        self.ended = true;
                    }
                    None
                }
                Some(VideoPacket::AvcFrame {
                    keyframe,
                    cts,
                    data,
                }) => self.muxer.push_video(f.timestamp, cts, keyframe, data),
                Some(VideoPacket::Unsupported) => {
                    self.ended = true;
                    None
                }
                _ => None,
            },
            FrameKind::Audio => match codec::audio_packet(&body) {
                Some(AudioPacket::AacConfig(c)) => {
                    if self.audio.as_ref().is_none_or(|a| a.config != c) {
                        self.ended = true;
                    }
                    None
                }
                Some(AudioPacket::AacFrame(data)) => self.muxer.push_audio(f.timestamp, data),
                Some(AudioPacket::Unsupported) => {
                    self.ended = true;
                    None
                }
                None => None,
            },
        };
        self.out.extend(fragment);
    }
}
