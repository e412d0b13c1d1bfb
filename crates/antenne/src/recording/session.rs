//! One recording session of one ingest: a task that reads the hub like a
//! destination (through its own bounded, keyframe-skipping queue), muxes
//! H.264 + AAC into fragmented MP4 ([`antenne_media::fmp4`]) and hands
//! whole fragments to its writer thread ([`super::writer`]).
//!
//! Invariants: a file starts on a video keyframe with the current
//! decoder configurations; a new file starts when the segment length is
//! reached (at a keyframe) or the configuration changes; an OBS drop is
//! bridged for the grace period (the hub's timeline stays continuous, so
//! the same file goes on); the session never blocks a runtime thread.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use antenne_media::fmp4::{
    codec, AacConfig, AudioPacket, AvcConfig, Muxer, MuxerLimits, VideoPacket,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::writer::{self, WriteCmd, WriterEnd};
use super::Shared;
use crate::hub::{Frame, FrameKind, Hub};

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SessionEnd {
    /// Stopped from the page or the API, or at shutdown.
    Stopped,
    /// The publisher stayed away longer than the grace period.
    StreamEnded,
    /// Free space under the limit.
    LowSpace(String),
    /// Not recordable (codec) or the disk refused.
    Failed(String),
}

/// What a running session shows.
#[derive(Debug, Clone, Default)]
pub(super) struct SessionStatus {
    /// The file being written.
    pub file: Option<String>,
    pub since: Option<SystemTime>,
}

pub(super) struct SessionCtx {
    pub hub: Arc<Hub>,
    pub ingest_id: String,
    pub shared: Arc<Shared>,
    pub stop: CancellationToken,
    pub status: Arc<Mutex<SessionStatus>>,
}

pub(super) async fn run(ctx: SessionCtx) -> SessionEnd {
    let writer = match writer::spawn(
        ctx.shared.dir.clone(),
        ctx.shared.settings.clone(),
        ctx.shared.open.clone(),
        ctx.shared.history.clone(),
        ctx.status.clone(),
    ) {
        Ok(w) => w,
        Err(e) => return SessionEnd::Failed(format!("cannot start the recording thread: {e}")),
    };
    let tx = writer.tx;
    let mut end_rx = writer.end;
    let sub = ctx.hub.subscribe();
    let mut live = ctx.hub.watch_live();
    let grace = ctx.shared.grace;
    let mut offline_since = (!*live.borrow_and_update()).then(Instant::now);
    let segment_ms = i64::from(ctx.shared.settings().segment_minutes.max(1)) * 60_000;
    let mut mux = Mux::new(ctx.ingest_id.clone(), segment_ms);
    let mut frames = Vec::new();
    let mut writer_end = None;
    let end = 'session: loop {
        let deadline = offline_since.map(|t| t + grace);
        tokio::select! {
            biased;
            _ = ctx.stop.cancelled() => break SessionEnd::Stopped,
            e = &mut end_rx => {
                writer_end = Some(e.unwrap_or(WriterEnd::Done));
                break SessionEnd::Stopped;
            }
            _ = sleep_until(deadline) => break SessionEnd::StreamEnded,
            changed = live.changed() => {
                if changed.is_err() {
                    break SessionEnd::StreamEnded;
                }
                offline_since = (!*live.borrow_and_update()).then(Instant::now);
                continue;
            }
            _ = sub.recv_many(&mut frames, 64) => {}
        }
        for f in frames.drain(..) {
            let cmds = match mux.frame(&f) {
                Ok(c) => c,
                Err(message) => break 'session SessionEnd::Failed(message),
            };
            for cmd in cmds {
                if tx.send(cmd).await.is_err() {
                    // The writer stopped: its reason comes on end_rx.
                    continue 'session;
                }
            }
        }
    };
    // Last fragment, then close; the writer ends when the queue closes.
    if writer_end.is_none() {
        if let Some(last) = mux.finish() {
            let _ = tx.send(WriteCmd::Fragment(last)).await;
        }
        let _ = tx.send(WriteCmd::Close).await;
        drop(tx);
        writer_end = Some(
            tokio::time::timeout(Duration::from_secs(30), end_rx)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or(WriterEnd::Done),
        );
    }
    match (end, writer_end) {
        (SessionEnd::Failed(m), _) => SessionEnd::Failed(m),
        (_, Some(WriterEnd::LowSpace(m))) => SessionEnd::LowSpace(m),
        (_, Some(WriterEnd::Failed(m))) => SessionEnd::Failed(m),
        (end, _) => end,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Frames to files: decoder configurations, the muxer, segment cuts.
struct Mux {
    ingest_id: String,
    segment_ms: i64,
    video: Option<AvcConfig>,
    audio: Option<AacConfig>,
    muxer: Option<Muxer>,
    file_start_ms: i64,
    /// The configuration changed: a new file at the next keyframe.
    reopen: bool,
}

const UNSUPPORTED: &str = "this stream cannot be recorded: recording keeps H.264 video and AAC audio as they come (no transcoding), and this stream uses another codec";

impl Mux {
    fn new(ingest_id: String, segment_ms: i64) -> Mux {
        Mux {
            ingest_id,
            segment_ms,
            video: None,
            audio: None,
            muxer: None,
            file_start_ms: 0,
            reopen: false,
        }
    }

    fn finish(&mut self) -> Option<bytes::Bytes> {
        self.muxer.as_mut().and_then(Muxer::finish)
    }

    /// Starts a new file at this keyframe (closing the current one).
    fn open(&mut self, ts: i64, out: &mut Vec<WriteCmd>) {
        if let Some(last) = self.finish() {
            out.push(WriteCmd::Fragment(last));
        }
        let muxer = Muxer::new(
            self.video.clone(),
            self.audio.clone(),
            MuxerLimits::default(),
        );
        out.push(WriteCmd::Open {
            ingest_id: self.ingest_id.clone(),
            start: SystemTime::now(),
            init: muxer.init_segment(),
        });
        self.muxer = Some(muxer);
        self.file_start_ms = ts;
        self.reopen = false;
    }

    fn frame(&mut self, f: &Frame) -> Result<Vec<WriteCmd>, String> {
        let mut out = Vec::new();
        let body = f.payload.to_payload();
        match f.kind {
            FrameKind::Metadata => {}
            FrameKind::Video => match codec::video_packet(&body) {
                Some(VideoPacket::Unsupported) => return Err(UNSUPPORTED.into()),
                Some(VideoPacket::AvcConfig(c)) => {
                    let c = AvcConfig::parse(c).map_err(|e| format!("cannot record: {e}"))?;
                    if self.video.as_ref().is_some_and(|v| v.record != c.record) {
                        self.reopen = true;
                    }
                    self.video = Some(c);
                }
                Some(VideoPacket::AvcFrame {
                    keyframe,
                    cts,
                    data,
                }) => {
                    if keyframe
                        && self.video.is_some()
                        && (self.muxer.is_none()
                            || self.reopen
                            || f.timestamp - self.file_start_ms >= self.segment_ms)
                    {
                        self.open(f.timestamp, &mut out);
                    }
                    if let Some(m) = &mut self.muxer {
                        out.extend(
                            m.push_video(f.timestamp, cts, keyframe, data)
                                .map(WriteCmd::Fragment),
                        );
                    }
                }
                Some(VideoPacket::Other) | None => {}
            },
            FrameKind::Audio => match codec::audio_packet(&body) {
                Some(AudioPacket::Unsupported) => return Err(UNSUPPORTED.into()),
                Some(AudioPacket::AacConfig(c)) => {
                    let c = AacConfig::parse(c).map_err(|e| format!("cannot record: {e}"))?;
                    if self.audio.as_ref().is_some_and(|a| a.config != c.config)
                        || (self.audio.is_none() && self.muxer.is_some())
                    {
                        self.reopen = true;
                    }
                    self.audio = Some(c);
                }
                Some(AudioPacket::AacFrame(data)) => {
                    // Without video, any audio frame may start a file.
                    if f.keyframe
                        && self.video.is_none()
                        && self.audio.is_some()
                        && (self.muxer.is_none()
                            || self.reopen
                            || f.timestamp - self.file_start_ms >= self.segment_ms)
                    {
                        self.open(f.timestamp, &mut out);
                    }
                    if let Some(m) = &mut self.muxer {
                        out.extend(m.push_audio(f.timestamp, data).map(WriteCmd::Fragment));
                    }
                }
                None => {}
            },
        }
        Ok(out)
    }
}
