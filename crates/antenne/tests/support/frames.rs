//! Every decoded video frame of a recording: its size, key flag and the
//! colour of its top-left corner, to tell which picture a receiver got
//! (the standby tests compare it with the standby card or an uploaded
//! picture) and where one picture gives way to another.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// One decoded video frame of a recording: its size, whether it is a
/// keyframe, and the mean colour of its top-left 8x8 pixels.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub width: u32,
    pub height: u32,
    pub key: bool,
    pub corner: [u8; 3],
}

impl Decoded {
    pub fn is_card(&self, colour: [u8; 3]) -> bool {
        self.corner
            .iter()
            .zip(colour)
            .all(|(a, b)| (*a as i32 - b as i32).abs() <= 20)
    }
}

/// Decodes every video frame of a recording (one ffmpeg: `showinfo`
/// tells each frame's size and key flag, the raw output its corner).
pub fn decode_frames(path: &Path) -> Result<Vec<Decoded>> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "info", "-i"])
        .arg(path)
        .args(["-map", "0:v:0", "-vsync", "passthrough", "-vf"])
        .args([
            "showinfo,crop=8:8:0:0,scale=1:1:flags=area",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ])
        .stdin(Stdio::null())
        .output()
        .context("ffmpeg runs")?;
    let mut frames = Vec::new();
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        if !line.contains("Parsed_showinfo") || !line.contains(" n:") {
            continue;
        }
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .map(str::to_owned)
        };
        let size = field("s:").context("showinfo size")?;
        let (w, h) = size.split_once('x').context("WxH")?;
        frames.push(Decoded {
            key: field("iskey:").as_deref() == Some("1"),
            width: w.parse()?,
            height: h.parse()?,
            corner: [0; 3],
        });
    }
    let corners: Vec<[u8; 3]> = out
        .stdout
        .chunks_exact(3)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    if corners.len() != frames.len() || frames.is_empty() {
        bail!(
            "showinfo saw {} frames, ffmpeg wrote {}",
            frames.len(),
            corners.len()
        );
    }
    for (f, c) in frames.iter_mut().zip(corners) {
        f.corner = c;
    }
    Ok(frames)
}

/// The standby runs in a recording: (first, last) index of each run of
/// frames showing `colour`.
pub fn runs(frames: &[Decoded], colour: [u8; 3]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, f) in frames.iter().enumerate() {
        match (f.is_card(colour), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i - 1));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, frames.len() - 1));
    }
    out
}
