//! Each ingest's standby settings: the wait, the hold limit and the
//! streamer's picture; their checks, storage and the files ffmpeg reads.
//!
//! Invariants: an uploaded picture is checked before anything changes
//! (size at most [`MAX_IMAGE_BYTES`], PNG or JPEG by its magic bytes, and
//! ffmpeg must decode it); it is stored in SQLite and written to
//! `<data dir>/standby/<ingest id>.img` (mode of the data directory) for
//! ffmpeg; the store is only reached off the runtime threads.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::process::Command;

use super::HoldLimit;

/// Largest picture accepted.
pub const MAX_IMAGE_BYTES: usize = 4 * 1024 * 1024;
/// Longest wait before the standby starts.
pub const MAX_WAIT_MS: u64 = 60_000;

/// The effective settings of one ingest (defaults filled in).
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    pub wait: Duration,
    pub hold_limit: HoldLimit,
    /// The picture file and its version (changes on each upload).
    pub image: Option<(PathBuf, u64)>,
}

/// `GET`/`PUT /ingest/{id}/standby/settings`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsJson {
    /// Milliseconds before the standby starts; null: antenne's default.
    #[serde(default)]
    pub wait_ms: Option<u64>,
    /// Seconds, or "forever"; null: antenne's default.
    #[serde(default)]
    pub hold_limit: Option<serde_json::Value>,
    /// Whether the streamer's picture is used (read only: upload it with
    /// `PUT /ingest/{id}/standby/image`).
    #[serde(default, skip_deserializing)]
    pub image: bool,
}

impl SettingsJson {
    /// The hold limit asked for, checked.
    pub fn hold(&self) -> Result<Option<HoldLimit>, String> {
        match &self.hold_limit {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Number(n)) => n
                .as_u64()
                .filter(|s| *s >= 1)
                .map(|s| Some(HoldLimit::For(Duration::from_secs(s))))
                .ok_or_else(|| "hold_limit: a whole number of seconds (1 or more)".to_string()),
            Some(serde_json::Value::String(s)) if s == "forever" => Ok(Some(HoldLimit::Forever)),
            Some(_) => Err("hold_limit: seconds, \"forever\" or null".into()),
        }
    }

    pub fn check(&self) -> Result<(), String> {
        if self.wait_ms.is_some_and(|w| w > MAX_WAIT_MS) {
            return Err(format!("wait_ms: at most {MAX_WAIT_MS}"));
        }
        self.hold().map(|_| ())
    }
}

/// The MIME type of an accepted picture, from its first bytes.
pub fn image_type(bytes: &[u8]) -> Result<&'static str, String> {
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(format!(
            "the picture is {} KiB: at most {} KiB",
            bytes.len() / 1024,
            MAX_IMAGE_BYTES / 1024
        ));
    }
    if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]) {
        Ok("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Ok("image/jpeg")
    } else {
        Err("the picture must be a PNG or JPEG file".into())
    }
}

/// Where an ingest's picture is written for ffmpeg.
pub fn image_path(dir: &Path, ingest: &str) -> PathBuf {
    dir.join(format!("{ingest}.img"))
}

/// Whether ffmpeg decodes the picture (a file with the right magic bytes
/// can still be broken).
pub async fn decodes(ffmpeg: &Path, file: &Path) -> Result<(), String> {
    let out = Command::new(ffmpeg)
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-frames:v", "1", "-f", "null", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .map_err(|_| "ffmpeg took too long to read the picture".to_string())?
        .map_err(|e| crate::encoders::spawn_error(ffmpeg, &e))?;
    if out.status.success() {
        Ok(())
    } else {
        let said = String::from_utf8_lossy(&out.stderr);
        Err(format!(
            "the picture cannot be decoded: {}",
            said.lines().last().unwrap_or("ffmpeg failed")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_png_and_jpeg_only_and_bounds_the_size() {
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\nrest"), Ok("image/png"));
        assert_eq!(image_type(&[0xff, 0xd8, 0xff, 0xe0]), Ok("image/jpeg"));
        assert!(image_type(b"GIF89a").is_err());
        let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
        big.resize(MAX_IMAGE_BYTES + 1, 0);
        assert!(image_type(&big).unwrap_err().contains("at most"));
    }

    #[test]
    fn hold_limit_is_seconds_forever_or_default() {
        let s = |v| SettingsJson {
            hold_limit: Some(v),
            ..SettingsJson::default()
        };
        assert_eq!(
            s(serde_json::json!("forever")).hold(),
            Ok(Some(HoldLimit::Forever))
        );
        assert_eq!(
            s(serde_json::json!(90)).hold(),
            Ok(Some(HoldLimit::For(Duration::from_secs(90))))
        );
        assert!(s(serde_json::json!(0)).hold().is_err());
        assert!(s(serde_json::json!("soon")).hold().is_err());
        assert_eq!(SettingsJson::default().hold(), Ok(None));
    }
}
