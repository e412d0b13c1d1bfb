//! ffmpeg publishing over SRT ([`SrtPublisher`]) and SRT URLs, for the
//! SRT ingest tests.

use std::process::Command;

use anyhow::{Context, Result};
use serde_json::json;

use super::{free_port, require_program, Antenne, AntenneOptions, ChildGuard, PublisherOptions};

/// ffmpeg publishing the support publisher's test stream as MPEG-TS over
/// SRT. Killed on drop.
pub struct SrtPublisher {
    pub child: ChildGuard,
    _dir: tempfile::TempDir,
}

impl SrtPublisher {
    pub fn start(opts: PublisherOptions, url: &str) -> Result<SrtPublisher> {
        let ffmpeg = require_program(&["ffmpeg"], "ffmpeg")?;
        let dir = tempfile::Builder::new()
            .prefix("antenne-test-srt-ffmpeg-")
            .tempdir()?;
        let mut args = opts.ffmpeg_args(url);
        // The support publisher writes FLV; SRT carries MPEG-TS.
        let n = args.len();
        anyhow::ensure!(n >= 3 && args[n - 3] == "-f", "unexpected args {args:?}");
        args[n - 2] = "mpegts".into();
        let mut cmd = Command::new(ffmpeg);
        cmd.args(args).current_dir(dir.path());
        let child = ChildGuard::spawn("ffmpeg-srt", cmd, &dir.path().join("ffmpeg.log"))?;
        Ok(SrtPublisher { child, _dir: dir })
    }

    pub fn log(&self) -> String {
        self.child.log()
    }
}

pub fn srt_url(port: u16, stream_id: &str, passphrase: Option<&str>) -> String {
    let mut url = format!("srt://127.0.0.1:{port}?streamid={stream_id}");
    if let Some(p) = passphrase {
        url.push_str(&format!("&passphrase={p}"));
    }
    url
}

/// antenne with `key` and its SRT ingest on a free port; returns it with
/// the port.
pub fn start_with_srt(opts: AntenneOptions, key: &str) -> Result<(Antenne, u16)> {
    let port = free_port();
    let antenne = opts
        .ingest_key(key)
        .arg("--srt-listen")
        .arg(&format!("127.0.0.1:{port}"))
        .start()?;
    Ok((antenne, port))
}

/// The id of antenne's first ingest key.
pub fn ingest_key_id(antenne: &Antenne) -> Result<String> {
    let (_, keys) = antenne.request("GET", "/api/v1/ingest-keys", None)?;
    keys[0]["id"]
        .as_str()
        .map(str::to_owned)
        .context("an ingest key id")
}

/// Sets the SRT passphrase of antenne's first ingest key.
pub fn set_passphrase(antenne: &Antenne, passphrase: &str) -> Result<()> {
    let id = ingest_key_id(antenne)?;
    let (status, body) = antenne.request(
        "PUT",
        &format!("/api/v1/ingest-keys/{id}/srt-passphrase"),
        Some(&json!({ "passphrase": passphrase })),
    )?;
    anyhow::ensure!(status == 204, "setting the passphrase: {status} {body}");
    Ok(())
}

/// `ffmpeg -f mpegts -i 'srt://127.0.0.1:P?mode=listener&passphrase=…' -c
/// copy out.ts`: an SRT receiver, as a platform is. Killed on drop.
pub struct SrtReceiver {
    pub child: ChildGuard,
    pub out: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl SrtReceiver {
    pub fn start(port: u16, passphrase: &str) -> Result<SrtReceiver> {
        let ffmpeg = require_program(&["ffmpeg"], "ffmpeg")?;
        let dir = tempfile::Builder::new()
            .prefix("antenne-test-srt-receiver-")
            .tempdir()?;
        let out = dir.path().join("out.ts");
        let mut cmd = Command::new(ffmpeg);
        cmd.args(["-hide_banner", "-nostdin", "-loglevel", "info", "-y"])
            .args(["-f", "mpegts", "-i"])
            .arg(format!(
                "srt://127.0.0.1:{port}?mode=listener&passphrase={passphrase}"
            ))
            .args(["-c", "copy", "-f", "mpegts"])
            .arg(&out)
            .current_dir(dir.path());
        let child = ChildGuard::spawn("ffmpeg-srt-listener", cmd, &dir.path().join("ffmpeg.log"))?;
        Ok(SrtReceiver {
            child,
            out,
            _dir: dir,
        })
    }

    pub fn size(&self) -> u64 {
        std::fs::metadata(&self.out).map(|m| m.len()).unwrap_or(0)
    }
}
