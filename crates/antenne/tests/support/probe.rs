//! Analysis of recordings with ffprobe / ffmpeg.
//!
//! Works on a recording that is still being written, or that was cut by a
//! crash (nginx writes progressively, so the file may end in a truncated
//! FLV tag): [`analyze`] and [`decode_errors`] work on a snapshot of the
//! file cut to its complete tags (see [`flv_complete_len`]), so a partial
//! last tag is never reported as a failure. (Reading the live file directly,
//! `ffmpeg -v error` prints `Packet mismatch` for the tag being written.)
//!
//! [`assert_good_recording`] is the one check of "a viewer gets a good
//! stream" that the end-to-end tests share.

use super::require_program;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One video packet. Times in milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoPacket {
    pub dts_ms: i64,
    pub pts_ms: i64,
    pub keyframe: bool,
    pub size: u64,
}

/// One audio packet. Times in milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct AudioPacket {
    pub dts_ms: i64,
    pub size: u64,
}

/// What ffprobe saw in a file (first video and first audio stream).
#[derive(Clone, Debug, Default)]
pub struct StreamReport {
    /// e.g. "h264".
    pub video_codec: Option<String>,
    /// e.g. "aac".
    pub audio_codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub video_packets: Vec<VideoPacket>,
    pub audio_packets: Vec<AudioPacket>,
}

impl StreamReport {
    /// True if there is at least one video packet and the first is a keyframe.
    pub fn first_video_is_keyframe(&self) -> bool {
        self.video_packets.first().is_some_and(|p| p.keyframe)
    }

    /// Video dts strictly increasing.
    pub fn video_dts_monotonic(&self) -> bool {
        self.video_packets
            .windows(2)
            .all(|w| w[1].dts_ms > w[0].dts_ms)
    }

    /// Audio dts non-decreasing.
    pub fn audio_dts_monotonic(&self) -> bool {
        self.audio_packets
            .windows(2)
            .all(|w| w[1].dts_ms >= w[0].dts_ms)
    }

    /// Largest difference between consecutive video dts (0 if < 2 packets).
    pub fn max_video_gap_ms(&self) -> i64 {
        self.video_packets
            .windows(2)
            .map(|w| w[1].dts_ms - w[0].dts_ms)
            .max()
            .unwrap_or(0)
    }

    /// Largest difference between consecutive audio dts (0 if < 2 packets).
    pub fn max_audio_gap_ms(&self) -> i64 {
        self.audio_packets
            .windows(2)
            .map(|w| w[1].dts_ms - w[0].dts_ms)
            .max()
            .unwrap_or(0)
    }

    /// Last video dts minus first video dts (0 if < 2 packets).
    pub fn video_duration_ms(&self) -> i64 {
        match (self.video_packets.first(), self.video_packets.last()) {
            (Some(a), Some(b)) => b.dts_ms - a.dts_ms,
            _ => 0,
        }
    }

    /// Number of video keyframes.
    pub fn keyframe_count(&self) -> usize {
        self.video_packets.iter().filter(|p| p.keyframe).count()
    }

    /// Sum of video and audio packet sizes, in bytes.
    pub fn payload_bytes(&self) -> u64 {
        self.video_packets.iter().map(|p| p.size).sum::<u64>()
            + self.audio_packets.iter().map(|p| p.size).sum::<u64>()
    }

    /// A one-line summary for assertion messages.
    pub fn summary(&self) -> String {
        format!(
            "video={:?} {}x{} ({} packets, {} keyframes, {} ms, max gap {} ms, first key {}, \
             monotonic {}), audio={:?} ({} packets, monotonic {})",
            self.video_codec,
            self.width.unwrap_or(0),
            self.height.unwrap_or(0),
            self.video_packets.len(),
            self.keyframe_count(),
            self.video_duration_ms(),
            self.max_video_gap_ms(),
            self.first_video_is_keyframe(),
            self.video_dts_monotonic(),
            self.audio_codec,
            self.audio_packets.len(),
            self.audio_dts_monotonic(),
        )
    }
}

/// Seconds as a string ("0.033000") or a number -> milliseconds.
fn time_ms(v: Option<&Value>) -> Option<i64> {
    let secs = match v? {
        Value::String(s) => s.parse::<f64>().ok()?,
        Value::Number(n) => n.as_f64()?,
        _ => return None,
    };
    Some((secs * 1000.0).round() as i64)
}

fn as_u64(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// Parses the JSON of `ffprobe -show_packets -show_streams -of json`.
pub fn parse_ffprobe_json(json: &Value) -> StreamReport {
    let mut report = StreamReport::default();
    let (mut video_index, mut audio_index) = (None, None);
    for s in json["streams"].as_array().into_iter().flatten() {
        let index = s["index"].as_i64();
        match s["codec_type"].as_str() {
            Some("video") if video_index.is_none() => {
                video_index = index;
                report.video_codec = s["codec_name"].as_str().map(String::from);
                report.width = s["width"].as_u64().map(|w| w as u32);
                report.height = s["height"].as_u64().map(|h| h as u32);
            }
            Some("audio") if audio_index.is_none() => {
                audio_index = index;
                report.audio_codec = s["codec_name"].as_str().map(String::from);
            }
            _ => {}
        }
    }
    for p in json["packets"].as_array().into_iter().flatten() {
        let index = p["stream_index"].as_i64();
        let dts = time_ms(p.get("dts_time")).or_else(|| time_ms(p.get("pts_time")));
        let Some(dts_ms) = dts else { continue };
        let size = as_u64(p.get("size")).unwrap_or(0);
        if index.is_some() && index == video_index {
            report.video_packets.push(VideoPacket {
                dts_ms,
                pts_ms: time_ms(p.get("pts_time")).unwrap_or(dts_ms),
                keyframe: p["flags"].as_str().is_some_and(|f| f.starts_with('K')),
                size,
            });
        } else if index.is_some() && index == audio_index {
            report.audio_packets.push(AudioPacket { dts_ms, size });
        }
    }
    report
}

/// For an FLV file: `(complete, total)` where `complete` is the length of
/// the prefix made of whole tags (header, tags each with its trailing
/// PreviousTagSize) and `total` the file length; `complete < total` means
/// the file ends in a partial tag. For a file that is not FLV: `(total,
/// total)`.
pub fn flv_complete_len(path: &Path) -> Result<(u64, u64)> {
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(flv_complete_prefix(&data))
}

fn flv_complete_prefix(data: &[u8]) -> (u64, u64) {
    let total = data.len() as u64;
    if data.len() < 9 || &data[..3] != b"FLV" {
        return (total, total);
    }
    let header = u32::from_be_bytes([data[5], data[6], data[7], data[8]]) as usize;
    // The header, then PreviousTagSize0.
    let mut pos = header + 4;
    if pos > data.len() {
        return (0, total);
    }
    // Each tag: 11-byte header (type, 24-bit data size, ...), data, 4-byte
    // PreviousTagSize.
    while pos + 11 <= data.len() {
        let size = u32::from_be_bytes([0, data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
        let end = pos + 11 + size + 4;
        if end > data.len() {
            break;
        }
        pos = end;
    }
    (pos as u64, total)
}

/// A snapshot of `path` cut to its complete tags, in a temp dir (returned
/// to keep it alive). Always a copy: a live recording keeps growing while
/// ffprobe/ffmpeg read it, and they would hit the tag being written at
/// their EOF.
fn complete_view(path: &Path) -> Result<(PathBuf, tempfile::TempDir)> {
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (complete, _total) = flv_complete_prefix(&data);
    let dir = tempfile::Builder::new()
        .prefix("antenne-test-probe-")
        .tempdir()
        .context("probe: cannot create temp dir")?;
    let copy = dir.path().join("complete.flv");
    std::fs::write(&copy, &data[..complete as usize]).context("probe: cannot write copy")?;
    Ok((copy, dir))
}

/// Runs `ffprobe -v error -show_packets -show_streams -of json <path>` and
/// parses it. Packets are in file order.
pub fn analyze(path: &Path) -> Result<StreamReport> {
    let ffprobe = require_program(&["ffprobe"], "ffmpeg")?;
    let (view, _keep) = complete_view(path)?;
    let out = Command::new(ffprobe)
        .args([
            "-v",
            "error",
            "-show_packets",
            "-show_streams",
            "-of",
            "json",
        ])
        .arg(&view)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run ffprobe on {}", path.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let json: Value = match serde_json::from_slice(&out.stdout) {
        Ok(v) => v,
        Err(e) => bail!(
            "ffprobe on {} ({}): unparsable output ({e}); stderr: {stderr}",
            path.display(),
            out.status
        ),
    };
    // Only fail if ffprobe found no stream at all (e.g. only the FLV header
    // has been written so far).
    let has_streams = matches!(json["streams"].as_array(), Some(s) if !s.is_empty());
    if !has_streams {
        bail!(
            "ffprobe on {} ({}): no stream found; stderr: {stderr}",
            path.display(),
            out.status
        );
    }
    Ok(parse_ffprobe_json(&json))
}

/// Decodes the whole file (`ffmpeg -v error -i <path> -f null -`, on its
/// complete tags) and returns what ffmpeg printed on stderr: empty means it
/// decoded cleanly.
pub fn decode_errors(path: &Path) -> Result<String> {
    let ffmpeg = require_program(&["ffmpeg"], "ffmpeg")?;
    let (view, _keep) = complete_view(path)?;
    let out = Command::new(ffmpeg)
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(&view)
        .args(["-f", "null", "-"])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run ffmpeg to decode {}", path.display()))?;
    // The null sink re-checks the timestamps of *decoded* frames, which the
    // h264 decoder guesses afresh when a new encoder session (a publisher
    // that reconnected) brings new parameter sets; under load it can
    // report two frames at one guessed time. Packet timestamps, what a
    // platform receives, are checked strictly by `analyze`; here only what
    // the decoder says counts.
    let mut errors: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.contains("non monotonically increasing dts to muxer"))
        .map(|l| format!("{l}\n"))
        .collect();
    if !out.status.success() && errors.trim().is_empty() {
        errors = format!("ffmpeg exited with {}", out.status);
    }
    Ok(errors)
}

/// What a user checks on a destination's recording: H.264 + AAC, starts on
/// a keyframe, video and audio timestamps only go forward, at least
/// `min_ms` of video, and ffmpeg decodes it without an error (a recording
/// that does not is kept under `target/test-artifacts/` for a look).
/// Returns the analysis for further checks.
pub fn assert_good_recording(path: &Path, min_ms: i64) -> StreamReport {
    check_recording(path, min_ms, Order::Checked)
}

/// [`assert_good_recording`] without the timestamp-order checks, for a peer
/// whose own timestamps antenne passes on: Node-Media-Server's FLV recorder
/// writes some video tags out of order, and GStreamer's live pipelines
/// (rtmpsink, rtmp2sink) now and then stamp two video frames with the same
/// millisecond, which antenne passes on as the publisher stamped them. With
/// ffmpeg publishing (every other test) the order is checked strictly.
pub fn assert_decodable_recording(path: &Path, min_ms: i64) -> StreamReport {
    check_recording(path, min_ms, Order::ReceiversOwn)
}

#[derive(PartialEq)]
enum Order {
    Checked,
    ReceiversOwn,
}

fn check_recording(path: &Path, min_ms: i64, order: Order) -> StreamReport {
    let report = analyze(path).expect("ffprobe reads the recording");
    let what = format!("{}: {}", path.display(), report.summary());
    assert_eq!(report.video_codec.as_deref(), Some("h264"), "{what}");
    assert_eq!(report.audio_codec.as_deref(), Some("aac"), "{what}");
    assert!(
        report.first_video_is_keyframe(),
        "starts on a keyframe: {what}"
    );
    if order == Order::Checked {
        assert!(
            report.video_dts_monotonic(),
            "video timestamps go forward: {what}"
        );
        assert!(
            report.audio_dts_monotonic(),
            "audio timestamps go forward: {what}"
        );
    }
    assert!(
        report.video_duration_ms() >= min_ms,
        "lasts {min_ms} ms: {what}"
    );
    let errors = decode_errors(path).expect("ffmpeg decodes the recording");
    if !errors.trim().is_empty() {
        let dir = super::artifacts_dir();
        let name = path.file_name().map_or_else(
            || "recording.flv".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::copy(path, dir.join(format!("failed-{name}")));
    }
    assert!(
        errors.trim().is_empty(),
        "decodes cleanly ({what}): {errors}"
    );
    report
}
