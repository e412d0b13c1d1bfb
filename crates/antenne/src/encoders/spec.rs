//! What a rendition is ([`RenditionSpec`]: size, fit, frame-rate cap,
//! bitrate, keyframe interval, encoder, audio) and the ffmpeg command line
//! that produces it ([`ffmpeg_args`], a pure function).
//!
//! Invariants: a spec that passed [`RenditionSpec::validate`] always gives
//! a command line ffmpeg accepts; the command line reads FLV on stdin
//! (`pipe:0`), writes FLV on stdout (`pipe:1`) and progress on stderr
//! (`pipe:2`), so it never contains a URL or a stream key.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the source picture fills the rendition's frame when their shapes
/// differ (16:9 into 9:16).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Fit {
    /// Fill the frame and cut what overflows; `x` is the horizontal
    /// position of the cut, 0.0 (left edge) to 1.0 (right edge).
    Crop { x: f32 },
    /// Fit the whole picture, black bars around.
    PadBlack,
    /// Fit the whole picture over a blurred, zoomed copy of itself.
    PadBlurred,
}

/// libx264 speed/quality trade-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum X264Preset {
    Ultrafast,
    Superfast,
    #[default]
    Veryfast,
    Faster,
    Fast,
    Medium,
}

impl X264Preset {
    pub fn as_str(self) -> &'static str {
        match self {
            X264Preset::Ultrafast => "ultrafast",
            X264Preset::Superfast => "superfast",
            X264Preset::Veryfast => "veryfast",
            X264Preset::Faster => "faster",
            X264Preset::Fast => "fast",
            X264Preset::Medium => "medium",
        }
    }
}

/// Which H.264 encoder ffmpeg uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VideoEncoder {
    /// Software, on the CPU.
    Libx264 {
        preset: X264Preset,
    },
    /// A hardware encoder if [`super::hardware::probe`] found one, else
    /// libx264 veryfast. Resolved with [`VideoEncoder::resolve`] before
    /// each start.
    Auto,
    Nvenc,
    /// VAAPI on a DRM render node (`/dev/dri/renderD128`).
    Vaapi {
        device: String,
    },
    Qsv,
}

impl Default for VideoEncoder {
    fn default() -> Self {
        VideoEncoder::Libx264 {
            preset: X264Preset::default(),
        }
    }
}

impl VideoEncoder {
    /// `Auto` becomes the first hardware encoder available, or libx264.
    pub fn resolve(&self, available: &[VideoEncoder]) -> VideoEncoder {
        match self {
            VideoEncoder::Auto => available.first().cloned().unwrap_or_default(),
            other => other.clone(),
        }
    }
}

/// What happens to the audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum AudioMode {
    /// Passed through as it came (no re-encoding).
    Copy,
    /// Re-encoded to AAC.
    Aac { kbps: u32, sample_rate: u32 },
}

/// A rendition: how one stream is adapted for some platforms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenditionSpec {
    pub width: u32,
    pub height: u32,
    pub fit: Fit,
    /// Frame-rate cap: a faster source is brought down to it, a slower one
    /// is left as it is.
    pub max_fps: Option<f64>,
    /// Video bitrate (kbit/s), also the `-maxrate`; `-bufsize` is twice
    /// it (CBR-like, what platforms ask for).
    pub video_kbps: u32,
    /// Seconds between keyframes (platforms ask for 2).
    pub keyframe_interval_s: f64,
    pub encoder: VideoEncoder,
    pub audio: AudioMode,
}

impl RenditionSpec {
    /// A vertical 9:16 rendition (Shorts, TikTok, Reels) cropped around
    /// the centre.
    pub fn vertical(width: u32, height: u32, video_kbps: u32) -> Self {
        Self {
            width,
            height,
            fit: Fit::Crop { x: 0.5 },
            max_fps: Some(30.0),
            video_kbps,
            keyframe_interval_s: DEFAULT_KEYFRAME_INTERVAL.as_secs_f64(),
            encoder: VideoEncoder::default(),
            audio: AudioMode::Copy,
        }
    }

    /// Checks every field; the message names the field and its range.
    pub fn validate(&self) -> Result<(), SpecError> {
        let bad = |msg: String| Err(SpecError(msg));
        for (name, v) in [("width", self.width), ("height", self.height)] {
            if !(16..=4096).contains(&v) || v % 2 != 0 {
                return bad(format!(
                    "{name} must be an even number from 16 to 4096, not {v}"
                ));
            }
        }
        if let Fit::Crop { x } = self.fit {
            if !(0.0..=1.0).contains(&x) {
                return bad(format!("crop position must be from 0.0 to 1.0, not {x}"));
            }
        }
        if let Some(fps) = self.max_fps {
            if !(1.0..=120.0).contains(&fps) {
                return bad(format!("frame-rate cap must be from 1 to 120, not {fps}"));
            }
        }
        if !(100..=50_000).contains(&self.video_kbps) {
            return bad(format!(
                "video bitrate must be from 100 to 50000 kbit/s, not {}",
                self.video_kbps
            ));
        }
        if !(0.5..=10.0).contains(&self.keyframe_interval_s) {
            return bad(format!(
                "keyframe interval must be from 0.5 to 10 s, not {}",
                self.keyframe_interval_s
            ));
        }
        if let VideoEncoder::Vaapi { device } = &self.encoder {
            if !device.starts_with("/dev/dri/") || device.contains("..") {
                return bad(format!(
                    "VAAPI device must be under /dev/dri/, not {device:?}"
                ));
            }
        }
        if let AudioMode::Aac { kbps, sample_rate } = self.audio {
            if !(32..=320).contains(&kbps) {
                return bad(format!(
                    "audio bitrate must be from 32 to 320 kbit/s, not {kbps}"
                ));
            }
            if ![44_100, 48_000].contains(&sample_rate) {
                return bad(format!(
                    "audio sample rate must be 44100 or 48000, not {sample_rate}"
                ));
            }
        }
        Ok(())
    }
}

/// Platforms ask for a keyframe every 2 seconds.
pub const DEFAULT_KEYFRAME_INTERVAL: Duration = Duration::from_secs(2);

/// A rendition field out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid rendition: {0}")]
pub struct SpecError(pub String);

/// What is known of the source when ffmpeg starts.
#[derive(Debug, Clone, Copy, Default)]
pub struct SourceInfo {
    pub frame_rate: Option<f64>,
}

/// The video filter chain: fit, frame-rate cap, pixel format.
pub fn video_filter(spec: &RenditionSpec, source: &SourceInfo, encoder: &VideoEncoder) -> String {
    let (w, h) = (spec.width, spec.height);
    let mut vf = match spec.fit {
        Fit::Crop { x } => format!(
            "scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h}:(iw-ow)*{x}:(ih-oh)/2"
        ),
        Fit::PadBlack => format!(
            "scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2,\
             pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:black"
        ),
        Fit::PadBlurred => format!(
            "split=2[bg][fg];\
             [bg]scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h},gblur=sigma=20[blur];\
             [fg]scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2[pic];\
             [blur][pic]overlay=(W-w)/2:(H-h)/2"
        ),
    };
    vf.push_str(",setsar=1");
    if let Some(cap) = capped_fps(spec, source) {
        vf.push_str(&format!(",fps={}", fmt_num(cap)));
    }
    match encoder {
        VideoEncoder::Vaapi { .. } => vf.push_str(",format=nv12,hwupload"),
        _ => vf.push_str(",format=yuv420p"),
    }
    vf
}

/// The cap when the source is faster than it, or of unknown speed.
fn capped_fps(spec: &RenditionSpec, source: &SourceInfo) -> Option<f64> {
    let cap = spec.max_fps?;
    match source.frame_rate {
        Some(fps) if fps <= cap + 0.01 => None,
        _ => Some(cap),
    }
}

fn fmt_num(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The full ffmpeg argument list (without the program) for `spec` with
/// `encoder` (already resolved, see [`VideoEncoder::resolve`]).
pub fn ffmpeg_args(spec: &RenditionSpec, source: &SourceInfo) -> Vec<String> {
    let encoder = spec.encoder.resolve(&[]);
    let out_fps = capped_fps(spec, source)
        .or(source.frame_rate)
        .or(spec.max_fps)
        .unwrap_or(30.0);
    let gop = ((out_fps * spec.keyframe_interval_s).round() as u32).max(1);
    let kbps = spec.video_kbps;
    let mut a: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    push(&["-hide_banner", "-nostats", "-loglevel", "error"]);
    push(&["-progress", "pipe:2"]);
    if let VideoEncoder::Vaapi { device } = &encoder {
        push(&["-vaapi_device", device]);
    }
    push(&["-f", "flv", "-i", "pipe:0"]);
    push(&["-map", "0:v:0", "-map", "0:a:0?"]);
    push(&["-vf", &video_filter(spec, source, &encoder)]);
    match &encoder {
        VideoEncoder::Libx264 { preset } => {
            push(&["-c:v", "libx264", "-preset", preset.as_str()]);
            push(&["-sc_threshold", "0"]);
        }
        VideoEncoder::Nvenc => push(&["-c:v", "h264_nvenc", "-preset", "p4"]),
        VideoEncoder::Vaapi { .. } => push(&["-c:v", "h264_vaapi"]),
        VideoEncoder::Qsv => push(&["-c:v", "h264_qsv", "-preset", "veryfast"]),
        // Resolved above.
        VideoEncoder::Auto => push(&["-c:v", "libx264", "-preset", "veryfast"]),
    }
    push(&[
        "-b:v",
        &format!("{kbps}k"),
        "-maxrate",
        &format!("{kbps}k"),
        "-bufsize",
        &format!("{}k", kbps * 2),
    ]);
    push(&["-g", &gop.to_string()]);
    push(&[
        "-force_key_frames",
        &format!("expr:gte(t,n_forced*{})", fmt_num(spec.keyframe_interval_s)),
    ]);
    match spec.audio {
        AudioMode::Copy => push(&["-c:a", "copy"]),
        AudioMode::Aac { kbps, sample_rate } => push(&[
            "-c:a",
            "aac",
            "-b:a",
            &format!("{kbps}k"),
            "-ar",
            &sample_rate.to_string(),
            "-ac",
            "2",
        ]),
    }
    // Every packet leaves at once (no 32 KB output buffer: latency).
    push(&["-flush_packets", "1"]);
    push(&["-f", "flv", "-flvflags", "no_duration_filesize", "pipe:1"]);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vertical() -> RenditionSpec {
        RenditionSpec::vertical(180, 320, 1000)
    }

    fn arg_after<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
        let i = args.iter().position(|a| a == flag)?;
        args.get(i + 1).map(String::as_str)
    }

    #[test]
    fn a_vertical_crop_reads_and_writes_flv_on_pipes() {
        let args = ffmpeg_args(&vertical(), &SourceInfo::default());
        assert_eq!(arg_after(&args, "-i"), Some("pipe:0"));
        assert_eq!(args.last().map(String::as_str), Some("pipe:1"));
        assert_eq!(arg_after(&args, "-progress"), Some("pipe:2"));
        assert_eq!(arg_after(&args, "-c:v"), Some("libx264"));
        assert_eq!(arg_after(&args, "-preset"), Some("veryfast"));
        assert_eq!(arg_after(&args, "-b:v"), Some("1000k"));
        assert_eq!(arg_after(&args, "-maxrate"), Some("1000k"));
        assert_eq!(arg_after(&args, "-bufsize"), Some("2000k"));
        assert_eq!(arg_after(&args, "-c:a"), Some("copy"));
        assert_eq!(
            arg_after(&args, "-force_key_frames"),
            Some("expr:gte(t,n_forced*2)")
        );
        let vf = arg_after(&args, "-vf").expect("a filter");
        assert!(
            vf.starts_with("scale=180:320:force_original_aspect_ratio=increase,crop=180:320:(iw-ow)*0.5:(ih-oh)/2"),
            "{vf}"
        );
    }

    #[test]
    fn the_gop_follows_the_output_frame_rate() {
        let spec = vertical();
        let slow = SourceInfo {
            frame_rate: Some(25.0),
        };
        let fast = SourceInfo {
            frame_rate: Some(60.0),
        };
        // 25 fps under the 30 fps cap: no fps filter, GOP of 50.
        let args = ffmpeg_args(&spec, &slow);
        assert_eq!(arg_after(&args, "-g"), Some("50"));
        assert!(!arg_after(&args, "-vf").unwrap_or("").contains("fps="));
        // 60 fps over the cap: brought down to 30, GOP of 60.
        let args = ffmpeg_args(&spec, &fast);
        assert_eq!(arg_after(&args, "-g"), Some("60"));
        assert!(arg_after(&args, "-vf").unwrap_or("").contains(",fps=30,"));
    }

    #[test]
    fn pads_black_or_blurred_and_reencodes_audio() {
        let mut spec = vertical();
        spec.fit = Fit::PadBlack;
        spec.audio = AudioMode::Aac {
            kbps: 128,
            sample_rate: 48_000,
        };
        let args = ffmpeg_args(&spec, &SourceInfo::default());
        assert!(arg_after(&args, "-vf")
            .unwrap_or("")
            .contains("pad=180:320"));
        assert_eq!(arg_after(&args, "-c:a"), Some("aac"));
        assert_eq!(arg_after(&args, "-b:a"), Some("128k"));
        assert_eq!(arg_after(&args, "-ar"), Some("48000"));
        spec.fit = Fit::PadBlurred;
        let vf = video_filter(&spec, &SourceInfo::default(), &spec.encoder);
        assert!(vf.starts_with("split=2[bg][fg];"), "{vf}");
        assert!(vf.contains("gblur") && vf.contains("overlay"), "{vf}");
    }

    #[test]
    fn hardware_encoders_get_their_own_options() {
        let mut spec = vertical();
        spec.encoder = VideoEncoder::Vaapi {
            device: "/dev/dri/renderD128".into(),
        };
        let args = ffmpeg_args(&spec, &SourceInfo::default());
        assert_eq!(
            arg_after(&args, "-vaapi_device"),
            Some("/dev/dri/renderD128")
        );
        assert_eq!(arg_after(&args, "-c:v"), Some("h264_vaapi"));
        assert!(arg_after(&args, "-vf").unwrap_or("").ends_with("hwupload"));
        spec.encoder = VideoEncoder::Auto;
        assert_eq!(spec.encoder.resolve(&[]), VideoEncoder::default());
        assert_eq!(
            spec.encoder.resolve(&[VideoEncoder::Nvenc]),
            VideoEncoder::Nvenc
        );
    }

    #[test]
    fn refuses_odd_sizes_and_out_of_range_values() {
        let mut spec = vertical();
        assert_eq!(spec.validate(), Ok(()));
        spec.width = 181;
        assert!(spec.validate().unwrap_err().0.contains("width"));
        spec = vertical();
        spec.fit = Fit::Crop { x: 1.5 };
        assert!(spec.validate().unwrap_err().0.contains("crop position"));
        spec = vertical();
        spec.video_kbps = 10;
        assert!(spec.validate().unwrap_err().0.contains("video bitrate"));
        spec = vertical();
        spec.encoder = VideoEncoder::Vaapi {
            device: "/etc/passwd".into(),
        };
        assert!(spec.validate().is_err());
    }

    #[test]
    fn spec_round_trips_through_json() {
        let spec = vertical();
        let json = serde_json::to_string(&spec).expect("serialises");
        assert!(json.contains(r#""fit":{"mode":"crop","x":0.5}"#), "{json}");
        assert!(json.contains(r#""encoder":{"kind":"libx264","preset":"veryfast"}"#));
        let back: RenditionSpec = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, spec);
    }
}
