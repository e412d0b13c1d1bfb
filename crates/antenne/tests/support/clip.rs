//! Pre-encoded clips of known frames, and the check that a recording holds
//! exactly the frames that were published.
//!
//! A [`Clip`] is a test pattern (testsrc2 + 440 Hz sine, H.264 + AAC in
//! FLV, 30 fps, a keyframe every second, ~3 Mbit/s) encoded once and kept
//! under cargo's `CARGO_TARGET_TMPDIR`. Publishing it with `-c copy`
//! ([`super::PublisherOptions::clip`]) costs next to no CPU and sends the
//! same frames every time, so what a receiver recorded can be compared frame
//! by frame with what was sent ([`match_clip`]): a frame lost, duplicated or
//! altered shows as a size that does not line up.

use super::probe::{analyze, StreamReport};
use super::require_program;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// Frames per second of every clip.
pub const CLIP_FPS: u32 = 30;
/// Video bitrate of every clip, kbit/s.
pub const CLIP_VIDEO_KBPS: u32 = 3000;
/// Length of every clip; publishers loop it.
pub const CLIP_SECS: u32 = 60;

/// One pre-encoded clip and what ffprobe saw in it.
#[derive(Debug)]
pub struct Clip {
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    pub report: StreamReport,
    /// The AVC sequence header (AVCDecoderConfigurationRecord tag body).
    pub video_header: Vec<u8>,
}

fn clips() -> &'static Mutex<HashMap<(u32, u32), &'static Clip>> {
    static CLIPS: OnceLock<Mutex<HashMap<(u32, u32), &'static Clip>>> = OnceLock::new();
    CLIPS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The clip of that frame size, encoded on first use (a few seconds) and
/// then reused, also by later test runs.
pub fn clip(width: u32, height: u32) -> Result<&'static Clip> {
    let mut cache = clips().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = cache.get(&(width, height)) {
        return Ok(c);
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("antenne-clips");
    std::fs::create_dir_all(&dir).context("clip: cannot create the clip dir")?;
    let path = dir.join(format!(
        "clip-{width}x{height}-{CLIP_FPS}fps-{CLIP_VIDEO_KBPS}k-{CLIP_SECS}s.flv"
    ));
    let ready = |p: &Path| {
        analyze(p)
            .ok()
            .filter(|r| r.video_duration_ms() >= (CLIP_SECS as i64 - 1) * 1000)
    };
    let report = match ready(&path) {
        Some(r) => r,
        None => {
            encode(&path, width, height)?;
            ready(&path).with_context(|| format!("clip {} unusable", path.display()))?
        }
    };
    let video_header = flv_video_headers(&path)?
        .into_iter()
        .next()
        .context("clip: no AVC sequence header")?
        .1;
    let c: &'static Clip = Box::leak(Box::new(Clip {
        path,
        width,
        height,
        report,
        video_header,
    }));
    cache.insert((width, height), c);
    Ok(c)
}

fn encode(path: &Path, width: u32, height: u32) -> Result<()> {
    let ffmpeg = require_program(&["ffmpeg"], "ffmpeg")?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let kbps = CLIP_VIDEO_KBPS;
    let out = Command::new(ffmpeg)
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={width}x{height}:rate={CLIP_FPS}"))
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-t", &CLIP_SECS.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args(["-pix_fmt", "yuv420p", "-g", "30", "-keyint_min", "30"])
        .args(["-b:v", &format!("{kbps}k"), "-maxrate", &format!("{kbps}k")])
        .args(["-bufsize", &format!("{}k", kbps * 2)])
        .args(["-c:a", "aac", "-b:a", "128k", "-f", "flv"])
        .arg(&tmp)
        .stdin(Stdio::null())
        .output()
        .context("clip: cannot run ffmpeg")?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        bail!(
            "clip: ffmpeg failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::rename(&tmp, path).context("clip: cannot move the clip in place")?;
    Ok(())
}

/// One FLV tag.
#[derive(Clone, Debug)]
pub struct FlvTag {
    /// 8 audio, 9 video, 18 script data.
    pub kind: u8,
    pub timestamp_ms: u32,
    pub body: Vec<u8>,
}

/// The complete tags of an FLV file (a truncated last tag is left out).
pub fn flv_tags(path: &Path) -> Result<Vec<FlvTag>> {
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if data.len() < 9 || &data[..3] != b"FLV" {
        bail!("{} is not FLV", path.display());
    }
    let header = u32::from_be_bytes([data[5], data[6], data[7], data[8]]) as usize;
    let mut pos = header + 4;
    let mut tags = Vec::new();
    while pos + 11 <= data.len() {
        let size = u32::from_be_bytes([0, data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
        let end = pos + 11 + size + 4;
        if end > data.len() {
            break;
        }
        let ts = u32::from_be_bytes([data[pos + 7], data[pos + 4], data[pos + 5], data[pos + 6]]);
        tags.push(FlvTag {
            kind: data[pos] & 0x1f,
            timestamp_ms: ts,
            body: data[pos + 11..pos + 11 + size].to_vec(),
        });
        pos = end;
    }
    Ok(tags)
}

/// The AVC sequence headers of an FLV file, in order: (index of the tag
/// among the video tags, tag body).
pub fn flv_video_headers(path: &Path) -> Result<Vec<(usize, Vec<u8>)>> {
    Ok(flv_tags(path)?
        .into_iter()
        .filter(|t| t.kind == 9)
        .enumerate()
        .filter(|(_, t)| t.body.len() > 2 && t.body[0] & 0x0f == 7 && t.body[1] == 0)
        .map(|(i, t)| (i, t.body))
        .collect())
}

/// A run of frames that came in one piece: no step between two frames
/// larger than [`SEGMENT_BREAK_MS`].
#[derive(Clone, Debug)]
pub struct Segment {
    /// Index in the recording's video packets of the first frame.
    pub start: usize,
    pub frames: usize,
    pub first_dts_ms: i64,
    pub last_dts_ms: i64,
    /// Which clip it matched, and from which frame of it.
    pub clip: usize,
    pub clip_frame: usize,
}

impl Segment {
    pub fn duration_ms(&self) -> i64 {
        self.last_dts_ms - self.first_dts_ms
    }
}

/// Frames come every 33 ms; a larger step than this starts a new segment
/// (a missing frame is 67 ms, a skipped GOP a second).
pub const SEGMENT_BREAK_MS: i64 = 50;

/// Splits `rec` into [`Segment`]s and checks that each is a run of one of
/// `clips`' frames, in order, with none missing, doubled or altered (same
/// sizes, same keyframes, same timestamp steps), starting on a keyframe.
/// Clips loop, as the publisher loops them. Returns the segments, or what
/// did not line up.
pub fn match_clip(rec: &StreamReport, clips: &[&Clip]) -> Result<Vec<Segment>, String> {
    let v = &rec.video_packets;
    if v.is_empty() {
        return Err("no video frame".into());
    }
    let mut segments = Vec::new();
    let mut start = 0;
    for i in 1..=v.len() {
        if i < v.len() && v[i].dts_ms - v[i - 1].dts_ms <= SEGMENT_BREAK_MS {
            continue;
        }
        let frames = &v[start..i];
        if !frames[0].keyframe {
            return Err(format!(
                "segment at frame {start} (dts {} ms) does not start on a keyframe",
                frames[0].dts_ms
            ));
        }
        // Where in which clip it starts: the first frames' sizes tell.
        let probe = frames.len().min(12);
        let found = clips.iter().enumerate().find_map(|(ci, c)| {
            let cv = &c.report.video_packets;
            (0..cv.len())
                .find(|&o| {
                    (0..probe).all(|k| {
                        let p = &cv[(o + k) % cv.len()];
                        p.size == frames[k].size && p.keyframe == frames[k].keyframe
                    })
                })
                .map(|o| (ci, o))
        });
        let Some((ci, o)) = found else {
            return Err(format!(
                "segment at frame {start} (dts {} ms): its first frames are not in any clip",
                frames[0].dts_ms
            ));
        };
        let cv = &clips[ci].report.video_packets;
        for (k, f) in frames.iter().enumerate() {
            let j = (o + k) % cv.len();
            let p = &cv[j];
            if p.size != f.size || p.keyframe != f.keyframe {
                return Err(format!(
                    "frame {} (dts {} ms, {} bytes{}) is not clip frame {j} ({} bytes{}): \
                     a frame was lost, doubled or altered",
                    start + k,
                    f.dts_ms,
                    f.size,
                    if f.keyframe { ", key" } else { "" },
                    p.size,
                    if p.keyframe { ", key" } else { "" },
                ));
            }
            if k > 0 && j > 0 {
                let sent = p.dts_ms - cv[j - 1].dts_ms;
                let got = f.dts_ms - frames[k - 1].dts_ms;
                if (sent - got).abs() > 1 {
                    return Err(format!(
                        "frame {} (dts {} ms): {got} ms after the previous one, sent {sent} ms after",
                        start + k,
                        f.dts_ms
                    ));
                }
            }
        }
        segments.push(Segment {
            start,
            frames: frames.len(),
            first_dts_ms: frames[0].dts_ms,
            last_dts_ms: frames[frames.len() - 1].dts_ms,
            clip: ci,
            clip_frame: o,
        });
        start = i;
    }
    Ok(segments)
}
