//! The steps of the renditions API tests: a real antenne with a
//! rendition and destinations on nginx-rtmp receivers, and what a user
//! checks at the receivers (sizes, payloads byte for byte, the first
//! keyframe, the picture's columns) and in the history.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::support::*;
use crate::KEY;

pub fn start_antenne(extra: &[&str]) -> Result<Antenne> {
    let mut opts = Antenne::options().ingest_key(KEY).grace_period_secs(30);
    for a in extra {
        opts = opts.arg(a);
    }
    opts.start()
}

/// A 320x180 test pattern on the ingest.
pub fn publish(antenne: &Antenne) -> Result<Publisher> {
    Publisher::options()
        .size(320, 180)
        .fps(30)
        .video_kbps(600)
        .start(&antenne.ingest_url(KEY))
}

pub fn add_rendition(antenne: &Antenne, spec: Value) -> Result<Value> {
    let body = json!({"name": "Vertical", "spec": spec});
    antenne.request_expect("POST", "/api/v1/renditions", Some(&body), 201)
}

pub fn rendition(antenne: &Antenne, id: &str) -> Result<Value> {
    antenne.request_expect("GET", &format!("/api/v1/renditions/{id}"), None, 200)
}

/// Polls the rendition until `pred` holds; the error shows the last look.
pub fn wait_rendition(
    antenne: &Antenne,
    id: &str,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let mut last = Value::Null;
    let found = wait_for(timeout, || match rendition(antenne, id) {
        Ok(r) if pred(&r) => Some(r),
        Ok(r) => {
            last = r;
            None
        }
        Err(_) => None,
    });
    match found {
        Some(r) => Ok(r),
        None => bail!(
            "rendition {id}: not {what} within {timeout:?}; last: {last}; log:\n{}",
            antenne.log()
        ),
    }
}

pub fn add_destination_on(
    antenne: &Antenne,
    nginx: &Nginx,
    stream: &str,
    source: Value,
) -> Result<String> {
    let body = json!({"name": stream, "url": nginx.url(), "key": stream, "source": source});
    let d = antenne.request_expect("POST", "/api/v1/destinations", Some(&body), 201)?;
    if d["source"] != source {
        bail!("the destination's source is not {source}: {d}");
    }
    Ok(Antenne::id_of(&d))
}

/// Children of `parent` whose command line runs ffmpeg.
pub fn ffmpeg_children(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let ppid: Option<u32> = rest.split(' ').nth(1).and_then(|p| p.parse().ok());
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == Some(parent) && String::from_utf8_lossy(&cmdline).contains("ffmpeg") {
            out.push(pid);
        }
    }
    out
}

/// The newest recording of `stream`, once it holds a few seconds.
pub fn recording(nginx: &Nginx, stream: &str) -> Result<PathBuf> {
    nginx
        .wait_for_recording(stream, 60_000, Duration::from_secs(60))
        .with_context(|| format!("{stream}: nginx log:\n{}", nginx.error_log()))
}

/// The audio and video tags of an FLV file, sequence headers and
/// end-of-sequence left out: (tag kind, body).
fn media_bodies(path: &Path) -> Result<Vec<(u8, Vec<u8>)>> {
    Ok(flv_tags(path)?
        .into_iter()
        .filter(|t| match (t.kind, t.body.get(1)) {
            (9, Some(&packet)) => packet == 1,
            (8, Some(&packet)) => t.body[0] >> 4 != 10 || packet == 1,
            _ => false,
        })
        .map(|t| (t.kind, t.body))
        .collect())
}

/// Checks that the audio and video payloads `path` recorded are, byte for
/// byte, a run of the clip's (which the publisher loops, `-c copy`):
/// nothing lost, doubled or altered. Returns the frames compared.
pub fn assert_same_bytes_as_clip(path: &Path, clip: &Clip) -> Result<usize> {
    let got = media_bodies(path)?;
    let sent = media_bodies(&clip.path)?;
    let mut compared = 0;
    for kind in [9u8, 8] {
        let got: Vec<&[u8]> = got
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, b)| &b[..])
            .collect();
        let sent: Vec<&[u8]> = sent
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, b)| &b[..])
            .collect();
        if got.is_empty() || sent.is_empty() {
            bail!(
                "{}: no tags of kind {kind} (sent {})",
                path.display(),
                sent.len()
            );
        }
        let probe = got.len().min(30);
        let Some(start) =
            (0..sent.len()).find(|&o| (0..probe).all(|k| sent[(o + k) % sent.len()] == got[k]))
        else {
            bail!(
                "{}: its first tags of kind {kind} are not the clip's",
                path.display()
            );
        };
        for (k, body) in got.iter().enumerate() {
            let j = (start + k) % sent.len();
            if sent[j] != *body {
                bail!(
                    "{}: tag {k} of kind {kind} ({} bytes) differs from clip tag {j} ({} bytes)",
                    path.display(),
                    body.len(),
                    sent[j].len()
                );
            }
        }
        compared += got.len();
    }
    Ok(compared)
}

/// Waits for a new recording of `stream` (there were `before`) holding a
/// video keyframe; returns how long after `t0` it was first seen.
pub fn first_keyframe_after(
    nginx: &Nginx,
    stream: &str,
    before: usize,
    t0: Instant,
) -> Result<Duration> {
    let is_key = |t: &crate::support::clip::FlvTag| {
        t.kind == 9 && t.body.len() > 1 && t.body[0] >> 4 == 1 && t.body[1] == 1
    };
    wait_for(Duration::from_secs(60), || {
        let recs = nginx.recordings(stream);
        if recs.len() <= before {
            return None;
        }
        let tags = flv_tags(recs.last()?).ok()?;
        tags.iter().any(is_key).then(|| t0.elapsed())
    })
    .with_context(|| {
        format!(
            "{stream}: no keyframe recorded; nginx log:\n{}",
            nginx.error_log()
        )
    })
}

/// The mean brightness of each column (one value per column) of `path`'s
/// last `groups` × `frames` decoded frames (`width`×`height` gray), one
/// profile per group of `frames`, oldest first.
pub fn column_profiles(
    path: &Path,
    width: usize,
    height: usize,
    frames: usize,
    groups: usize,
) -> Result<Vec<Vec<f64>>> {
    let ffmpeg = require_program(&["ffmpeg"], "ffmpeg")?;
    let out = std::process::Command::new(ffmpeg)
        .args(["-hide_banner", "-nostdin", "-v", "quiet", "-i"])
        .arg(path)
        .args(["-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .stdin(std::process::Stdio::null())
        .output()
        .context("ffmpeg decodes the recording")?;
    let size = width * height;
    let decoded = out.stdout.len() / size;
    if decoded < frames * groups {
        bail!(
            "{}: {decoded} frames decoded, {} wanted",
            path.display(),
            frames * groups
        );
    }
    let first = decoded - frames * groups;
    Ok((0..groups)
        .map(|g| {
            let mut cols = vec![0.0; width];
            for f in first + g * frames..first + (g + 1) * frames {
                for (i, px) in out.stdout[f * size..(f + 1) * size].iter().enumerate() {
                    cols[i % width] += f64::from(*px);
                }
            }
            let n = (frames * height) as f64;
            cols.into_iter().map(|c| c / n).collect()
        })
        .collect())
}

/// Mean absolute difference of two column profiles.
pub fn profile_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / a.len() as f64
}

pub fn size_of(path: &std::path::Path) -> Result<(Option<u32>, Option<u32>, Option<String>)> {
    let r = analyze(path)?;
    Ok((r.width, r.height, r.video_codec))
}

/// Waits until the history holds events of every kind in `kinds` (it is
/// written in the background).
pub fn in_history(antenne: &Antenne, kinds: &[&str]) -> Result<()> {
    let mut seen: Vec<String> = Vec::new();
    let found = wait_until(Duration::from_secs(15), || {
        seen = antenne
            .request_expect("GET", "/api/v1/events", None, 200)
            .ok()
            .and_then(|e| e.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e["kind"].as_str().map(str::to_owned))
            .filter(|k| k.starts_with("rendition_"))
            .collect();
        kinds.iter().all(|k| seen.iter().any(|s| s == k))
    });
    if !found {
        bail!("{kinds:?} in the history; there: {seen:?}");
    }
    Ok(())
}
