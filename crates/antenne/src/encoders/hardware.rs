//! Which hardware H.264 encoders work on this machine: NVENC, VAAPI (on
//! a DRM render node) and Quick Sync, each tried with a one-frame test
//! encode by the ffmpeg that renditions will use. Being compiled into
//! ffmpeg proves nothing (Debian's ffmpeg has all three); only an encode
//! that succeeds does.
//!
//! Invariants: the probe never fails: every candidate ends either in the
//! available list or with the reason it is not; each test encode is
//! bounded by [`PROBE_TIMEOUT`] and its process killed on drop.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::spec::VideoEncoder;

/// Longest a one-frame test encode may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the probe found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct HardwareReport {
    /// Encoders whose test encode succeeded, best first.
    pub available: Vec<VideoEncoder>,
    /// Each candidate that failed, and why.
    pub unavailable: Vec<(String, String)>,
}

impl HardwareReport {
    /// One line for the log and the UI, e.g. `hardware encoders: none
    /// available (nvenc: …; vaapi: no render node under /dev/dri; …)`.
    pub fn summary(&self) -> String {
        let failed = self
            .unavailable
            .iter()
            .map(|(name, why)| format!("{name}: {why}"))
            .collect::<Vec<_>>()
            .join("; ");
        if self.available.is_empty() {
            format!("hardware encoders: none available ({failed}); renditions use libx264")
        } else {
            let names: Vec<&str> = self.available.iter().map(encoder_name).collect();
            format!("hardware encoders: {} available", names.join(", "))
        }
    }
}

fn encoder_name(e: &VideoEncoder) -> &'static str {
    match e {
        VideoEncoder::Nvenc => "nvenc",
        VideoEncoder::Vaapi { .. } => "vaapi",
        VideoEncoder::Qsv => "qsv",
        VideoEncoder::Libx264 { .. } => "libx264",
        VideoEncoder::Auto => "auto",
    }
}

/// DRM render nodes (`/dev/dri/renderD128`, …), sorted.
pub fn render_nodes(dri: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dri) else {
        return Vec::new();
    };
    let mut nodes: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("renderD"))
        })
        .collect();
    nodes.sort();
    nodes
}

/// Tries each hardware encoder with `ffmpeg` (a path or a name on PATH).
/// Runs the test encodes one after the other (a few seconds at most in
/// all); reads `/dev/dri` on a blocking thread.
pub async fn probe(ffmpeg: &Path) -> HardwareReport {
    let mut report = HardwareReport::default();
    let nodes = tokio::task::spawn_blocking(|| render_nodes(Path::new("/dev/dri")))
        .await
        .unwrap_or_default();
    let mut candidates: Vec<(VideoEncoder, Vec<String>)> = vec![(
        VideoEncoder::Nvenc,
        test_encode_args(&[], "h264_nvenc", None),
    )];
    match nodes.first() {
        Some(node) => {
            let device = node.to_string_lossy().into_owned();
            candidates.push((
                VideoEncoder::Vaapi {
                    device: device.clone(),
                },
                test_encode_args(
                    &["-vaapi_device", &device],
                    "h264_vaapi",
                    Some("format=nv12,hwupload"),
                ),
            ));
        }
        None => report
            .unavailable
            .push(("vaapi".into(), "no render node under /dev/dri".into())),
    }
    candidates.push((VideoEncoder::Qsv, test_encode_args(&[], "h264_qsv", None)));
    for (encoder, args) in candidates {
        match test_encode(ffmpeg, &args).await {
            Ok(()) => report.available.push(encoder),
            Err(why) => report
                .unavailable
                .push((encoder_name(&encoder).into(), why)),
        }
    }
    report
}

fn test_encode_args(pre_input: &[&str], codec: &str, filter: Option<&str>) -> Vec<String> {
    let mut a: Vec<String> = ["-hide_banner", "-nostdin", "-loglevel", "error"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.extend(pre_input.iter().map(|s| s.to_string()));
    for s in ["-f", "lavfi", "-i", "color=c=black:s=256x144:r=30:d=0.1"] {
        a.push(s.into());
    }
    if let Some(f) = filter {
        a.push("-vf".into());
        a.push(f.into());
    }
    for s in ["-frames:v", "1", "-c:v", codec, "-f", "null", "-"] {
        a.push(s.into());
    }
    a
}

/// One test encode; the error is ffmpeg's last line, or why it could not
/// run.
async fn test_encode(ffmpeg: &Path, args: &[String]) -> Result<(), String> {
    let child = Command::new(ffmpeg)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| super::spawn_error(ffmpeg, &e))?;
    let out = tokio::time::timeout(PROBE_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("test encode took over {} s", PROBE_TIMEOUT.as_secs()))?
        .map_err(|e| format!("test encode failed: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(failure_reason(&stderr).unwrap_or_else(|| format!("ffmpeg exited with {}", out.status)))
}

/// The encoder's own complaint (`[h264_nvenc @ 0x…] Cannot load
/// libcuda.so.1` gives `Cannot load libcuda.so.1`), else ffmpeg's last
/// line.
fn failure_reason(stderr: &str) -> Option<String> {
    let lines = || stderr.lines().map(str::trim).filter(|l| !l.is_empty());
    let own = lines().find_map(|l| {
        let rest = l.strip_prefix('[')?;
        let (_, msg) = rest.split_once("] ")?;
        Some(msg)
    });
    own.or_else(|| lines().next_back()).map(super::state::sanitize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_no_render_node_in_a_directory_without_one() {
        let dir = std::env::temp_dir();
        assert!(render_nodes(&dir.join("no-such-dri-dir")).is_empty());
    }

    #[test]
    fn the_reason_is_the_encoder_s_own_message() {
        let stderr = "[h264_nvenc @ 0x55e01b8c7500] Cannot load libcuda.so.1\n\
                      Error initializing output stream 0:0 -- Error while opening encoder\n";
        assert_eq!(
            failure_reason(stderr).as_deref(),
            Some("Cannot load libcuda.so.1")
        );
        assert_eq!(failure_reason("boom\n").as_deref(), Some("boom"));
        assert_eq!(failure_reason(""), None);
    }

    #[test]
    fn a_report_without_hardware_says_so() {
        let report = HardwareReport {
            available: vec![],
            unavailable: vec![("vaapi".into(), "no render node under /dev/dri".into())],
        };
        assert_eq!(
            report.summary(),
            "hardware encoders: none available (vaapi: no render node under /dev/dri); \
             renditions use libx264"
        );
    }
}
