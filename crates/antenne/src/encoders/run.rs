//! One ffmpeg process of a rendition, from spawn to exit: its input fed
//! from a hub subscription by its own task, its FLV output read into the
//! rendition's hub, its stderr parsed for progress and errors, and a
//! stall watchdog.
//!
//! Invariants: everything the run started (the process, the feeding
//! task, the output hub's publisher session) ends when the run's future
//! is dropped or returns: the child is `kill_on_drop`, the feeder an
//! abort-on-drop task, the publish guard a local. Memory is bounded: the
//! input queue by the hub's limits, the output by the FLV reader's
//! capacity, stderr lines by [`MAX_STDERR_LINE`].

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use antenne_media::flv::{self, FlvReader, ReaderLimits, TagKind};
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{ChildStdin, Command};
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;
use tracing::debug;

use super::spec::{self, RenditionSpec, SourceInfo};
use super::state::{EncoderState, StderrParser};
use super::supervisor::Task;
use crate::hub::{Frame, FrameKind, Subscription};

/// Longest stderr line read; the rest of a longer line is dropped.
const MAX_STDERR_LINE: usize = 4096;

/// How a run ended.
#[derive(Debug)]
pub(super) enum RunEnd {
    /// ffmpeg cannot run here; retrying soon will not help.
    Unavailable(String),
    /// ffmpeg exited, stalled or wrote something unreadable: restart.
    Failed(String),
}

/// The publisher address a rendition's hub shows (no socket: a pipe).
const PIPE_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

pub(super) async fn run_once(task: &Task, spec: &RenditionSpec) -> RunEnd {
    let snapshot = task.input.snapshot();
    let source = SourceInfo {
        frame_rate: snapshot.frame_rate,
    };
    let args = spec::ffmpeg_args(spec, &source);
    let spawned = Command::new(&task.config.ffmpeg)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let why = super::spawn_error(&task.config.ffmpeg, &e);
            return match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                    RunEnd::Unavailable(why)
                }
                _ => RunEnd::Failed(why),
            };
        }
    };
    let _pid = PidSlot::set(&task.pid, child.id());
    debug!(pid = ?child.id(), ?args, "ffmpeg started");
    let (Some(stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return RunEnd::Failed("ffmpeg started without its pipes".into());
    };
    let has_audio = snapshot.audio_codec.is_some() || snapshot.video_codec.is_none();
    let has_video = snapshot.video_codec.is_some() || snapshot.audio_codec.is_none();
    let start = Instant::now();
    let last_input = Arc::new(InputClock::default());
    let feeder = AbortOnDropHandle::new(tokio::spawn(feed(
        task.input.subscribe(),
        stdin,
        (has_audio, has_video),
        (start, last_input.clone()),
    )));

    let mut reader = FlvReader::new(ReaderLimits::default());
    let mut publish = None;
    let mut parser = StderrParser::default();
    let mut lines = LineReader::default();
    let mut stderr_open = true;
    let mut last_output = start;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut buf = vec![0u8; 64 * 1024];
    let stall = task.config.stall_timeout;
    let ended = loop {
        tokio::select! {
            r = stdout.read(&mut buf) => match r {
                Ok(0) => break None,
                Ok(n) => {
                    last_output = Instant::now();
                    if let Err(e) = task.take_output(&mut reader, &buf[..n], &mut publish) {
                        break Some(format!("ffmpeg's output is not readable FLV: {e}"));
                    }
                }
                Err(e) => break Some(format!("reading ffmpeg's output failed: {e}")),
            },
            line = lines.next_line(&mut stderr), if stderr_open => match line {
                Some(line) => {
                    if let Some(p) = parser.line(&line) {
                        task.state.send_replace(EncoderState::Running(p));
                    }
                }
                None => stderr_open = false,
            },
            _ = tick.tick() => {
                // Stalled: silent for the timeout although it was given
                // input after its last output (a silent input is not
                // ffmpeg's fault).
                let fed_since = last_input.fed_after(millis_since(start, last_output));
                if last_output.elapsed() > stall && fed_since {
                    break Some(format!("stalled: no output from ffmpeg for {} s", stall.as_secs()));
                }
            }
        }
    };
    let produced = publish.is_some();
    drop(publish);
    drop(feeder);
    let video = snapshot.video_codec.as_deref();
    let status = match ended {
        // Stalled or unreadable: it is killed (the child is dropped).
        Some(why) => return failed(with_errors(why, &parser), produced, video),
        None => tokio::time::timeout(Duration::from_secs(2), child.wait()).await,
    };
    // Its last words.
    while stderr_open {
        match tokio::time::timeout(Duration::from_millis(500), lines.next_line(&mut stderr)).await {
            Ok(Some(line)) => {
                parser.line(&line);
            }
            _ => stderr_open = false,
        }
    }
    let why = match status {
        Ok(Ok(status)) => format!("ffmpeg exited ({status})"),
        Ok(Err(e)) => format!("ffmpeg's exit could not be read: {e}"),
        Err(_) => "ffmpeg closed its output but did not exit".to_string(),
    };
    failed(with_errors(why, &parser), produced, video)
}

/// How a failed run ends. One that failed before writing anything, on an
/// ingest whose video is not H.264, most likely met an ffmpeg that cannot
/// read that codec from FLV (HEVC, AV1 and VP9 in Enhanced RTMP need
/// ffmpeg 6.1 or later): restarting soon will not help, so the rendition
/// says why it cannot run.
fn failed(why: String, produced: bool, video_codec: Option<&str>) -> RunEnd {
    match video_codec {
        Some(codec) if !produced && codec != "h264" => RunEnd::Unavailable(format!(
            "ffmpeg could not read this ingest's {} video (Enhanced RTMP: ffmpeg 6.1 or later reads it): {why}",
            codec.to_ascii_uppercase()
        )),
        _ => RunEnd::Failed(why),
    }
}

fn with_errors(why: String, parser: &StderrParser) -> String {
    match parser.last_errors() {
        Some(errors) => format!("{why}: {errors}"),
        None => why,
    }
}

impl Task {
    /// Reads ffmpeg's output bytes into the rendition's hub.
    fn take_output(
        &self,
        reader: &mut FlvReader,
        mut data: &[u8],
        publish: &mut Option<crate::hub::PublishGuard>,
    ) -> Result<(), flv::FlvError> {
        while !data.is_empty() {
            let n = reader.feed(data);
            data = &data[n..];
            while let Some(tag) = reader.poll_tag()? {
                if publish.is_none() {
                    match self.output.start_publish(PIPE_ADDR) {
                        Ok(guard) => *publish = Some(guard),
                        // Cannot happen (one run at a time); drop the tag.
                        Err(_) => continue,
                    }
                }
                match tag.kind {
                    TagKind::Video => self.output.push_video(tag.timestamp, tag.body),
                    TagKind::Audio => self.output.push_audio(tag.timestamp, tag.body),
                    TagKind::Script => self.output.push_metadata(tag.body),
                }
            }
        }
        self.output.flush();
        Ok(())
    }
}

/// When the feeder last offered input to ffmpeg, and whether it is
/// waiting for ffmpeg to take it.
#[derive(Debug, Default)]
struct InputClock {
    /// Milliseconds since the run's start.
    last_offer: AtomicU64,
    writing: AtomicBool,
}

impl InputClock {
    fn offering(&self, at_ms: u64) {
        self.last_offer.store(at_ms, Ordering::Relaxed);
        self.writing.store(true, Ordering::Relaxed);
    }

    fn written(&self) {
        self.writing.store(false, Ordering::Relaxed);
    }

    /// Whether ffmpeg had input to take after `output_ms`.
    fn fed_after(&self, output_ms: u64) -> bool {
        self.writing.load(Ordering::Relaxed) || self.last_offer.load(Ordering::Relaxed) > output_ms
    }
}

fn millis_since(start: Instant, t: Instant) -> u64 {
    t.saturating_duration_since(start).as_millis() as u64
}

/// Writes the input hub's frames to ffmpeg's stdin as an FLV stream, on
/// its own task: a slow ffmpeg fills this subscription's queue, which
/// skips to the next keyframe, and never the ingest. Records when it last
/// offered input, for the stall watchdog.
async fn feed(
    sub: Subscription,
    mut stdin: ChildStdin,
    (has_audio, has_video): (bool, bool),
    (start, clock): (Instant, Arc<InputClock>),
) {
    if stdin
        .write_all(&flv::stream_header(has_audio, has_video))
        .await
        .is_err()
    {
        return;
    }
    let mut frames = Vec::new();
    let mut out = BytesMut::new();
    let mut base = None;
    loop {
        sub.recv_many(&mut frames, 64).await;
        for f in frames.drain(..) {
            append_tag(&mut out, &f, &mut base);
        }
        clock.offering(millis_since(start, Instant::now()));
        if stdin.write_all(&out).await.is_err() {
            // ffmpeg is gone; the run notices on its side.
            return;
        }
        clock.written();
        out.clear();
    }
}

/// One hub frame as an FLV tag. Timestamps start at 0 at the first media
/// frame ffmpeg gets; headers replayed before it get 0.
fn append_tag(out: &mut BytesMut, f: &Frame, base: &mut Option<i64>) {
    if !f.header && base.is_none() {
        *base = Some(f.timestamp);
    }
    let ts = base.map_or(0, |b| (f.timestamp - b).clamp(0, u32::MAX as i64) as u32);
    let kind = match f.kind {
        FrameKind::Audio => TagKind::Audio,
        FrameKind::Video => TagKind::Video,
        FrameKind::Metadata => TagKind::Script,
    };
    let Ok(header) = flv::tag_header(kind, ts, f.payload.len()) else {
        // Over 16 MiB: cannot be an FLV tag (the ingest caps messages far
        // lower).
        return;
    };
    out.extend_from_slice(&header);
    for chunk in f.payload.payload_chunks() {
        out.extend_from_slice(&chunk);
    }
    out.extend_from_slice(&flv::tag_trailer(f.payload.len()));
}

/// Shows the running ffmpeg's pid while alive.
struct PidSlot<'a>(&'a Arc<Mutex<Option<u32>>>);

impl<'a> PidSlot<'a> {
    fn set(slot: &'a Arc<Mutex<Option<u32>>>, pid: Option<u32>) -> Self {
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = pid;
        PidSlot(slot)
    }
}

impl Drop for PidSlot<'_> {
    fn drop(&mut self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Splits a byte stream into lines (`\n` or `\r`), each at most
/// [`MAX_STDERR_LINE`] bytes.
#[derive(Default)]
struct LineReader {
    buf: Vec<u8>,
    eof: bool,
}

impl LineReader {
    /// The next line, `None` at the end. Cancel-safe.
    async fn next_line<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Option<String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n' || b == b'\r') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Some(String::from_utf8_lossy(&line[..i]).into_owned());
            }
            if self.buf.len() >= MAX_STDERR_LINE || (self.eof && !self.buf.is_empty()) {
                let line = std::mem::take(&mut self.buf);
                return Some(String::from_utf8_lossy(&line).into_owned());
            }
            if self.eof {
                return None;
            }
            let mut chunk = [0u8; 1024];
            let room = (MAX_STDERR_LINE - self.buf.len()).min(chunk.len());
            match r.read(&mut chunk[..room]).await {
                Ok(0) | Err(_) => self.eof = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_before_any_output_on_hevc_says_ffmpeg_cannot_read_it() {
        let why = "ffmpeg exited (exit status: 1): Decoder (codec none) not found".to_string();
        match failed(why.clone(), false, Some("hevc")) {
            RunEnd::Unavailable(reason) => {
                assert!(
                    reason.starts_with("ffmpeg could not read this ingest's HEVC video"),
                    "{reason}"
                );
                assert!(reason.contains("ffmpeg 6.1 or later"), "{reason}");
                assert!(reason.ends_with(&why), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // H.264, or after some output: an ordinary failure, restarted.
        assert!(matches!(
            failed(why.clone(), false, Some("h264")),
            RunEnd::Failed(_)
        ));
        assert!(matches!(
            failed(why.clone(), true, Some("hevc")),
            RunEnd::Failed(_)
        ));
        assert!(matches!(failed(why, false, None), RunEnd::Failed(_)));
    }

    #[test]
    fn a_silent_input_is_not_a_stall_but_a_blocked_write_is() {
        let clock = InputClock::default();
        clock.offering(100);
        clock.written();
        // Output came after the last input: ffmpeg is waiting for input.
        assert!(!clock.fed_after(500));
        // Input offered after the last output.
        clock.offering(600);
        clock.written();
        assert!(clock.fed_after(500));
        // A write still blocked (pipe full), even if offered before.
        clock.offering(400);
        assert!(clock.fed_after(500));
    }

    #[tokio::test]
    async fn splits_stderr_into_bounded_lines() {
        let long = "y".repeat(10_000);
        let input = format!("frame=1\rfps=2\n{long}\nlast");
        let mut r = input.as_bytes();
        let mut lines = LineReader::default();
        let mut got = Vec::new();
        while let Some(l) = lines.next_line(&mut r).await {
            got.push(l);
        }
        assert_eq!(&got[..2], &["frame=1", "fps=2"]);
        assert!(got.iter().all(|l| l.len() <= MAX_STDERR_LINE));
        assert_eq!(got.last().map(String::as_str), Some("last"));
    }

    #[test]
    fn input_timestamps_start_at_the_first_media_frame() {
        use antenne_rtmp::chunked::ChunkedPayload;
        let frame = |ts: i64, header: bool| Frame {
            kind: FrameKind::Video,
            timestamp: ts,
            payload: ChunkedPayload::new(6, 4, bytes::Bytes::from_static(&[0x17, 1, 0, 0, 0, 9])),
            keyframe: !header,
            header,
        };
        let mut out = BytesMut::new();
        let mut base = None;
        append_tag(&mut out, &frame(100, true), &mut base);
        append_tag(&mut out, &frame(5000, false), &mut base);
        append_tag(&mut out, &frame(5040, false), &mut base);
        let mut reader = FlvReader::default();
        reader.feed(&flv::stream_header(false, true));
        reader.feed(&out);
        let mut ts = Vec::new();
        while let Ok(Some(tag)) = reader.poll_tag() {
            assert_eq!(&tag.body[..], &[0x17, 1, 0, 0, 0, 9], "chunks rejoined");
            ts.push(tag.timestamp);
        }
        assert_eq!(ts, vec![0, 0, 40]);
    }
}
