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
    // The publisher's own stream: never the standby picture (its own
    // sequence headers could not share the file's).
    let sub = ctx.hub.subscribe_publisher();
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

#[cfg(test)]
mod tests {
    use super::*;
    use antenne_rtmp::chunked::ChunkedPayload;
    use bytes::Bytes;

    /// x264's avcC for 1280x720 (High), in an FLV sequence header.
    const AVC_SEQ: &[u8] = &[
        0x17, 0, 0, 0, 0, 0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0x64, 0x00, 0x1f,
        0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00,
        0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22,
        0xc0, 0xfd, 0xf8, 0xf8, 0x00,
    ];

    fn frame(kind: FrameKind, ts: i64, body: &'static [u8], keyframe: bool, header: bool) -> Frame {
        Frame {
            kind,
            timestamp: ts,
            payload: ChunkedPayload::whole(Bytes::from_static(body)),
            keyframe,
            header,
        }
    }

    fn opens(cmds: &[WriteCmd]) -> usize {
        cmds.iter()
            .filter(|c| matches!(c, WriteCmd::Open { .. }))
            .count()
    }

    #[test]
    fn starts_a_new_file_at_the_first_keyframe_past_the_segment_length() {
        let mut mux = Mux::new("abc".into(), 2_000);
        let mut cmds = Vec::new();
        cmds.extend(
            mux.frame(&frame(FrameKind::Video, 0, AVC_SEQ, false, true))
                .expect("ok"),
        );
        assert_eq!(opens(&cmds), 0, "no file before a keyframe");
        for i in 0..50i64 {
            let key = i % 10 == 0;
            let body: &'static [u8] = if key {
                &[0x17, 1, 0, 0, 0, 9]
            } else {
                &[0x27, 1, 0, 0, 0, 9]
            };
            cmds.extend(
                mux.frame(&frame(FrameKind::Video, i * 100, body, key, false))
                    .expect("ok"),
            );
        }
        // Files at 0 s, 2 s and 4 s.
        assert_eq!(opens(&cmds), 3);
    }

    #[test]
    fn refuses_codecs_it_cannot_record_with_a_plain_message() {
        let mut mux = Mux::new("abc".into(), 60_000);
        const HEVC_SEQ: &[u8] = &[0x90, b'h', b'v', b'c', b'1', 1, 2, 3];
        let err = mux
            .frame(&frame(FrameKind::Video, 0, HEVC_SEQ, false, true))
            .expect_err("HEVC is not recorded");
        assert!(err.contains("H.264") && err.contains("AAC"), "{err}");
        const MP3: &[u8] = &[0x2f, 1, 2, 3];
        assert!(mux
            .frame(&frame(FrameKind::Audio, 0, MP3, false, false))
            .is_err());
    }
}
