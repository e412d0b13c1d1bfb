//! The standby loop: a short clip (one IDR, then P frames, plus AAC
//! silence) encoded once by ffmpeg to match what the publisher sends,
//! parsed into frames held in memory and laid out as RTMP chunks once, so
//! playing it costs no encoding and no copy.
//!
//! Invariants: ffmpeg runs as a child process off the runtime threads
//! (`tokio::process`), killed if the preparation is dropped, its output
//! bounded ([`MAX_OUTPUT`]); a publisher the loop cannot match (not
//! H.264, audio not AAC, no picture size) gets a reason, never a loop
//! of another shape.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use antenne_media::flv::{FlvReader, ReaderLimits, TagKind};
use antenne_media::fmp4::{AacConfig, AvcConfig};
use antenne_rtmp::chunked::ChunkedPayload;
use antenne_rtmp::client::prepare_media;
use bytes::Bytes;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::hub::{PublisherParams, StandbyHeaders};

/// Length of the loop: one keyframe every this long.
pub const LOOP_SECS: u32 = 2;
/// ffmpeg output larger than this is refused (a still picture for two
/// seconds is a few hundred KB at most).
const MAX_OUTPUT: usize = 32 * 1024 * 1024;
/// ffmpeg gets this long to encode the loop.
const ENCODE_TIMEOUT: Duration = Duration::from_secs(60);

/// What the loop must look like: the publisher's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopSpec {
    pub width: u32,
    pub height: u32,
    /// Frames per second (rounded to 1/1000).
    pub fps_milli: u32,
    /// `None`: the publisher sends no audio.
    pub audio: Option<(u32, u16)>,
    /// The streamer's picture, else antenne's card.
    pub image: Option<PathBuf>,
    /// Changes when the picture is replaced (same path, new content).
    pub image_version: u64,
}

impl LoopSpec {
    /// The spec matching a publisher, or why none can match it.
    pub fn for_publisher(p: &PublisherParams) -> Result<LoopSpec, String> {
        let video = p
            .video_config
            .as_ref()
            .ok_or("the stream has no video: the standby picture needs its size")?;
        // Legacy FLV H.264: codec id 7, AVC packet type 0, then the record.
        if video.len() < 6 || video[0] & 0x80 != 0 || video[0] & 0x0f != 7 {
            let codec = p.video_codec.as_deref().unwrap_or("unknown");
            return Err(format!(
                "the stream's video is {codec}: the standby picture is made in H.264 only"
            ));
        }
        let avc = AvcConfig::parse(video.slice(5..))
            .map_err(|e| format!("the stream's H.264 configuration is unreadable: {e}"))?;
        let audio = match &p.audio_config {
            None => None,
            Some(a) if a.len() >= 3 && a[0] >> 4 == 10 => {
                let aac = AacConfig::parse(a.slice(2..))
                    .map_err(|e| format!("the stream's AAC configuration is unreadable: {e}"))?;
                Some((aac.sample_rate, aac.channels.clamp(1, 2)))
            }
            Some(_) => {
                let codec = p.audio_codec.as_deref().unwrap_or("unknown");
                return Err(format!(
                    "the stream's audio is {codec}: the standby sound is made in AAC only"
                ));
            }
        };
        if avc.width == 0 || avc.height == 0 || avc.width % 2 == 1 || avc.height % 2 == 1 {
            return Err(format!(
                "the stream's picture size {}x{} cannot be encoded (even sizes only)",
                avc.width, avc.height
            ));
        }
        let fps = p.frame_rate.unwrap_or(30.0).clamp(1.0, 120.0);
        Ok(LoopSpec {
            width: avc.width,
            height: avc.height,
            fps_milli: (fps * 1000.0).round() as u32,
            audio,
            image: None,
            image_version: 0,
        })
    }

    /// Whether a loop made for `other` serves this spec too: same size,
    /// audio and picture, frame rate within 5 % (a measured frame rate
    /// wobbles; re-encoding for each wobble would waste CPU).
    pub fn serves(&self, other: &LoopSpec) -> bool {
        let (a, b) = (self.fps_milli as f64, other.fps_milli as f64);
        LoopSpec {
            fps_milli: 0,
            ..self.clone()
        } == LoopSpec {
            fps_milli: 0,
            ..other.clone()
        } && (a - b).abs() <= 0.05 * a.max(b)
    }

    fn fps(&self) -> f64 {
        self.fps_milli as f64 / 1000.0
    }

    /// Video frames in one loop.
    fn frames(&self) -> u32 {
        ((self.fps() * LOOP_SECS as f64).round() as u32).max(1)
    }

    /// The picture's input arguments and filter; `text`: whether to draw
    /// the card's text (needs a font; without one the card is a plain
    /// colour).
    fn picture(&self, text: bool) -> (Vec<String>, String) {
        let (w, h) = (self.width, self.height);
        let fps = format!("{:.3}", self.fps());
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match &self.image {
            Some(path) => {
                let mut input = strings(&["-loop", "1", "-framerate", &fps, "-i"]);
                input.push(path.to_string_lossy().into_owned());
                let vf = format!(
                    "scale={w}:{h}:force_original_aspect_ratio=decrease,\
                     pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black,format=yuv420p"
                );
                (input, vf)
            }
            None => {
                let mut input = strings(&["-f", "lavfi", "-i"]);
                input.push(format!("color=c=0x1d2733:s={w}x{h}:r={fps}"));
                let vf = if text {
                    let big = (h / 10).max(8);
                    let small = (h / 16).max(6);
                    format!(
                        "drawtext=text='Back in a moment':fontcolor=white:fontsize={big}:\
                         x=(w-text_w)/2:y=(h/2)-text_h-{small},\
                         drawtext=text='On revient tout de suite':fontcolor=0xc8d2dc:\
                         fontsize={small}:x=(w-text_w)/2:y=(h/2)+{small},format=yuv420p"
                    )
                } else {
                    "format=yuv420p".to_string()
                };
                (input, vf)
            }
        }
    }

    /// ffmpeg's arguments for the loop (FLV on stdout).
    pub fn ffmpeg_args(&self, text: bool) -> Vec<String> {
        let fps = format!("{:.3}", self.fps());
        let n = self.frames();
        let mut a: Vec<String> = ["-hide_banner", "-nostdin", "-loglevel", "error"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (input, vf) = self.picture(text);
        a.extend(input);
        let mut push = |v: &[&str]| a.extend(v.iter().map(|s| s.to_string()));
        if let Some((rate, channels)) = self.audio {
            let layout = if channels == 1 { "mono" } else { "stereo" };
            push(&["-f", "lavfi", "-i"]);
            push(&[&format!("anullsrc=r={rate}:cl={layout}")]);
        }
        let g = n.to_string();
        push(&["-vf", &vf, "-frames:v", &g, "-r", &fps]);
        push(&[
            "-c:v",
            "libx264",
            "-profile:v",
            "high",
            "-preset",
            "veryfast",
            "-tune",
            "stillimage",
            "-g",
            &g,
            "-keyint_min",
            &g,
            "-sc_threshold",
            "0",
            "-bf",
            "0",
        ]);
        if let Some((rate, channels)) = self.audio {
            push(&["-c:a", "aac", "-b:a", "64k", "-ar", &rate.to_string()]);
            push(&[
                "-ac",
                &channels.to_string(),
                "-t",
                &(LOOP_SECS + 1).to_string(),
            ]);
        }
        push(&["-f", "flv", "pipe:1"]);
        a
    }
}

/// One video frame of the loop.
#[derive(Debug, Clone)]
pub struct LoopFrame {
    /// Milliseconds from the start of the loop.
    pub timestamp: u32,
    pub payload: ChunkedPayload,
    pub keyframe: bool,
}

/// The standby loop, ready to play.
#[derive(Debug)]
pub struct Loop {
    pub spec: LoopSpec,
    pub headers: StandbyHeaders,
    /// Starts with a keyframe.
    pub video: Vec<LoopFrame>,
    /// Length of one pass of `video`, in milliseconds (fractional).
    pub period_ms: f64,
    /// One AAC frame of silence, repeated.
    pub audio: Option<ChunkedPayload>,
    /// Duration of one AAC frame (1024 samples), in milliseconds.
    pub audio_frame_ms: f64,
}

impl Loop {
    /// Timestamp (ms from the start of play) of video frame `i`.
    pub fn video_ts(&self, i: u64) -> u64 {
        let n = self.video.len() as u64;
        let pass = (i / n) as f64 * self.period_ms;
        (pass + self.video[(i % n) as usize].timestamp as f64).round() as u64
    }

    pub fn audio_ts(&self, j: u64) -> u64 {
        (j as f64 * self.audio_frame_ms).round() as u64
    }
}

/// One PNG of the picture, for the dashboard's preview.
pub async fn preview_png(ffmpeg: &Path, spec: &LoopSpec) -> Result<Vec<u8>, String> {
    let args = |text| {
        let (input, vf) = spec.picture(text);
        let mut a: Vec<String> = ["-hide_banner", "-nostdin", "-loglevel", "error"]
            .iter()
            .map(|s| s.to_string())
            .chain(input)
            .collect();
        a.extend(
            [
                "-vf",
                &vf,
                "-frames:v",
                "1",
                "-f",
                "image2",
                "-c:v",
                "png",
                "pipe:1",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        a
    };
    match run(ffmpeg, &args(true)).await {
        Ok(png) => Ok(png),
        Err(RunError::Failed(_)) if spec.image.is_none() => {
            run(ffmpeg, &args(false)).await.map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Runs ffmpeg once and parses what it wrote. `Err` says why, in words.
pub async fn encode(ffmpeg: &Path, spec: &LoopSpec) -> Result<Loop, String> {
    let first = run(ffmpeg, &spec.ffmpeg_args(true)).await;
    let flv = match first {
        Ok(flv) => flv,
        // Drawing text needs a font: a card without text is still a card.
        Err(RunError::Failed(_)) if spec.image.is_none() => run(ffmpeg, &spec.ffmpeg_args(false))
            .await
            .map_err(|e| e.to_string())?,
        Err(e) => return Err(e.to_string()),
    };
    parse(spec.clone(), &flv)
}

#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("{0}")]
    Unavailable(String),
    #[error("ffmpeg could not make the standby picture: {0}")]
    Failed(String),
}

async fn run(ffmpeg: &Path, args: &[String]) -> Result<Vec<u8>, RunError> {
    let mut child = Command::new(ffmpeg)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| RunError::Unavailable(crate::encoders::spawn_error(ffmpeg, &e)))?;
    let (Some(mut out), Some(mut err)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(RunError::Failed("started without its pipes".into()));
    };
    let work = async {
        let mut flv = Vec::new();
        let mut errors = Vec::new();
        let read_out = async {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = out.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<_, std::io::Error>(());
                }
                if flv.len() + n > MAX_OUTPUT {
                    return Err(std::io::Error::other("output too large"));
                }
                flv.extend_from_slice(&buf[..n]);
            }
        };
        let read_err = async {
            let mut limited = (&mut err).take(16 * 1024);
            let _ = limited.read_to_end(&mut errors).await;
        };
        let (r, ()) = tokio::join!(read_out, read_err);
        let status = child.wait().await;
        (r, status, flv, errors)
    };
    let (r, status, flv, errors) = tokio::time::timeout(ENCODE_TIMEOUT, work)
        .await
        .map_err(|_| RunError::Failed(format!("timed out after {} s", ENCODE_TIMEOUT.as_secs())))?;
    let said = String::from_utf8_lossy(&errors).trim().to_string();
    r.map_err(|e| RunError::Failed(e.to_string()))?;
    match status {
        Ok(s) if s.success() => Ok(flv),
        Ok(s) => Err(RunError::Failed(if said.is_empty() {
            s.to_string()
        } else {
            said.lines().last().unwrap_or_default().to_string()
        })),
        Err(e) => Err(RunError::Failed(e.to_string())),
    }
}

/// Splits ffmpeg's FLV into the loop's headers and frames.
fn parse(spec: LoopSpec, flv: &[u8]) -> Result<Loop, String> {
    let mut reader = FlvReader::new(ReaderLimits::default());
    let mut metadata = None;
    let mut video_header = None;
    let mut audio_header = None;
    let mut video = Vec::new();
    let mut audio_frames: Vec<Bytes> = Vec::new();
    let mut rest = flv;
    let bad = |e: antenne_media::flv::FlvError| format!("ffmpeg wrote unreadable FLV: {e}");
    loop {
        while let Some(tag) = reader.poll_tag().map_err(bad)? {
            let body = tag.body;
            match tag.kind {
                TagKind::Script if metadata.is_none() => metadata = Some(body),
                TagKind::Script => {}
                TagKind::Video if body.len() >= 5 => {
                    if body[1] == 0 {
                        video_header.get_or_insert(body);
                    } else if body[1] == 1 {
                        let keyframe = body[0] >> 4 == 1;
                        if video.is_empty() && !keyframe {
                            continue;
                        }
                        video.push(LoopFrame {
                            timestamp: tag.timestamp,
                            payload: prepare_media(true, body),
                            keyframe,
                        });
                    }
                }
                TagKind::Audio if body.len() >= 2 => {
                    if body[1] == 0 {
                        audio_header.get_or_insert(body);
                    } else {
                        audio_frames.push(body);
                    }
                }
                _ => {}
            }
        }
        if rest.is_empty() {
            break;
        }
        let n = reader.feed(rest);
        if n == 0 {
            return Err("ffmpeg's FLV did not fit the reader".into());
        }
        rest = &rest[n..];
    }
    let (Some(metadata), Some(video_header)) = (metadata, video_header) else {
        return Err("ffmpeg's output has no metadata or no H.264 header".into());
    };
    if video.is_empty() {
        return Err("ffmpeg's output has no keyframe".into());
    }
    video.truncate(spec.frames() as usize);
    let first = video[0].timestamp;
    for f in &mut video {
        f.timestamp -= first;
    }
    // Silence: any frame past the encoder's priming is the same; take one
    // from the middle.
    let audio = match (&spec.audio, audio_frames.get(audio_frames.len() / 2)) {
        (Some(_), Some(frame)) => Some(prepare_media(false, frame.clone())),
        (Some(_), None) => return Err("ffmpeg's output has no audio".into()),
        (None, _) => None,
    };
    let audio_frame_ms = spec
        .audio
        .map(|(rate, _)| 1_024_000.0 / rate as f64)
        .unwrap_or(0.0);
    Ok(Loop {
        period_ms: video.len() as f64 * 1000.0 / spec.fps(),
        headers: StandbyHeaders {
            metadata,
            video: video_header,
            audio: audio_header.filter(|_| spec.audio.is_some()),
        },
        video,
        audio,
        audio_frame_ms,
        spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(video: &[u8], audio: Option<&[u8]>) -> PublisherParams {
        PublisherParams {
            video_codec: Some("hevc".into()),
            audio_codec: Some("mp3".into()),
            video_config: Some(Bytes::copy_from_slice(video)),
            audio_config: audio.map(Bytes::copy_from_slice),
            ..PublisherParams::default()
        }
    }

    #[test]
    fn a_wobbling_frame_rate_does_not_call_for_a_new_loop() {
        let spec = LoopSpec {
            width: 320,
            height: 180,
            fps_milli: 30_000,
            audio: Some((44_100, 2)),
            image: None,
            image_version: 0,
        };
        let wobble = LoopSpec {
            fps_milli: 29_400,
            ..spec.clone()
        };
        assert!(spec.serves(&wobble));
        let other = LoopSpec {
            fps_milli: 60_000,
            ..spec.clone()
        };
        assert!(!spec.serves(&other));
        let bigger = LoopSpec {
            width: 640,
            ..spec.clone()
        };
        assert!(!spec.serves(&bigger));
    }

    #[test]
    fn refuses_a_publisher_it_cannot_match_with_the_reason() {
        let none = PublisherParams::default();
        assert!(LoopSpec::for_publisher(&none)
            .unwrap_err()
            .contains("no video"));
        let hevc = params(&[0x1c, 0, 0, 0, 0, 1, 2, 3], None);
        assert!(LoopSpec::for_publisher(&hevc)
            .unwrap_err()
            .contains("video is hevc"));
    }
}
