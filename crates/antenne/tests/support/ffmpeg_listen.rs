//! [`FfmpegListen`]: `ffmpeg -listen 1` as an RTMP receiver (libavformat's
//! RTMP server side), copying what it receives into an FLV file.
//!
//! It serves one publish and exits when that stream ends, so a second run
//! needs [`FfmpegListen::relisten`] (same port, next file). Readiness is
//! read from `/proc/net/tcp` (a socket in LISTEN state), never by
//! connecting: a probe connection would be the one client it serves.

use super::child::ChildGuard;
use super::{require_program, tail, wait_until};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;
use tempfile::TempDir;

const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// True if a TCP socket listens on 127.0.0.1:`port` (IPv4, /proc/net/tcp).
pub fn is_listening(port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp").is_ok_and(|t| {
        t.lines().skip(1).any(|l| {
            let mut f = l.split_whitespace();
            let local = f.nth(1);
            let state = f.nth(1);
            local == Some(want.as_str()) && state == Some("0A")
        })
    })
}

/// `ffmpeg -listen 1 -i rtmp://127.0.0.1:PORT/live/<stream> -c copy out.flv`.
/// Killed on drop.
pub struct FfmpegListen {
    dir: TempDir,
    port: u16,
    stream: String,
    runs: usize,
    child: ChildGuard,
}

impl FfmpegListen {
    /// Listens on a free port for `live/<stream>`.
    pub fn start(stream: &str) -> Result<FfmpegListen> {
        let dir = tempfile::Builder::new()
            .prefix("antenne-test-ffmpeg-listen-")
            .tempdir()
            .context("ffmpeg -listen: cannot create temp dir")?;
        let mut last_err = None;
        for _ in 0..3 {
            let port = super::free_port();
            match Self::spawn(dir.path(), port, stream, 1) {
                Ok(child) => {
                    return Ok(FfmpegListen {
                        dir,
                        port,
                        stream: stream.to_owned(),
                        runs: 1,
                        child,
                    })
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.expect("at least one attempt")).context("ffmpeg -listen: 3 tries")
    }

    fn output(dir: &Path, run: usize) -> PathBuf {
        dir.join(format!("received-{run}.flv"))
    }

    fn spawn(dir: &Path, port: u16, stream: &str, run: usize) -> Result<ChildGuard> {
        let ffmpeg = require_program(&["ffmpeg"], "ffmpeg")?;
        let mut cmd = Command::new(ffmpeg);
        cmd.args([
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "info",
            "-listen",
            "1",
        ])
        .arg("-i")
        .arg(format!("rtmp://127.0.0.1:{port}/live/{stream}"))
        .args(["-c", "copy", "-f", "flv", "-y"])
        .arg(Self::output(dir, run))
        .current_dir(dir);
        let log = dir.join(format!("ffmpeg-listen-{run}.log"));
        let mut child = ChildGuard::spawn("ffmpeg-listen", cmd, &log)?;
        let ready = wait_until(READY_TIMEOUT, || !child.is_running() || is_listening(port));
        if !ready || !child.is_running() {
            let status = child.kill();
            bail!(
                "ffmpeg -listen not listening on 127.0.0.1:{port} (exit status {status:?}); \
                 log:\n{}",
                tail(&child.log(), 20)
            );
        }
        Ok(child)
    }

    /// Waits for the current run to end by itself (the stream ended), then
    /// listens again on the same port into the next file.
    pub fn relisten(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let status = self.child.wait_timeout(timeout);
        self.child.kill();
        let run = self.runs + 1;
        let mut last_err = None;
        for _ in 0..5 {
            match Self::spawn(self.dir.path(), self.port, &self.stream, run) {
                Ok(child) => {
                    self.child = child;
                    self.runs = run;
                    return Ok(status);
                }
                Err(e) => last_err = Some(e),
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        Err(last_err.expect("at least one attempt")).context("ffmpeg -listen: relisten")
    }

    /// The RTMP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `rtmp://127.0.0.1:PORT/live` (a destination URL without the key).
    pub fn url(&self) -> String {
        format!("rtmp://127.0.0.1:{}/live", self.port)
    }

    /// The file of the current run.
    pub fn recording(&self) -> PathBuf {
        Self::output(self.dir.path(), self.runs)
    }

    /// Size of the current run's file (0 if none yet).
    pub fn recording_size(&self) -> u64 {
        self.recording().metadata().map_or(0, |m| m.len())
    }

    /// Waits up to `timeout` for the current run to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.child.wait_timeout(timeout)
    }

    /// What the current run printed.
    pub fn log(&self) -> String {
        self.child.log()
    }
}
