//! ffmpeg publishing over SRT ([`SrtPublisher`]) and SRT URLs, for the
//! SRT ingest tests.

use std::process::Command;

use anyhow::Result;

use super::{require_program, ChildGuard, PublisherOptions};

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
