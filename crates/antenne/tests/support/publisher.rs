//! [`Publisher`]: ffmpeg publishing a live test pattern (testsrc2 + 440 Hz
//! sine, H.264 + AAC in FLV, a keyframe every second) to an RTMP(S) URL, in
//! real time (`-re`).

use super::child::ChildGuard;
use super::require_program;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;
use tempfile::TempDir;

/// Options for [`Publisher`]; defaults: 640x360 at 30 fps, 1500 kbit/s video,
/// 128 kbit/s audio, GOP 30 frames (one keyframe per second at 30 fps), runs
/// until killed.
#[derive(Clone, Debug)]
pub struct PublisherOptions {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub video_kbps: u32,
    pub audio_kbps: u32,
    /// Frames between keyframes (`-g` and `-keyint_min`).
    pub gop: u32,
    /// `-t`: stop by itself after this long.
    pub duration: Option<Duration>,
    /// For rtmps: verify the server against this CA (`-tls_verify 1
    /// -ca_file`); without it ffmpeg does not verify certificates.
    pub ca_file: Option<PathBuf>,
    /// Extra output options, put just before the URL.
    pub extra_args: Vec<String>,
    /// Publish this pre-encoded file as it is (`-re -stream_loop -1 -c
    /// copy`, see [`super::clip`]) instead of encoding a test pattern.
    pub input_file: Option<PathBuf>,
}

impl Default for PublisherOptions {
    fn default() -> Self {
        PublisherOptions {
            width: 640,
            height: 360,
            fps: 30,
            video_kbps: 1500,
            audio_kbps: 128,
            gop: 30,
            duration: None,
            ca_file: None,
            extra_args: Vec::new(),
            input_file: None,
        }
    }
}

impl PublisherOptions {
    /// Frame size (the benchmark uses 1280x720).
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.width = width;
        self.height = height;
        self
    }

    /// Frame rate; the GOP follows it (one keyframe per second).
    pub fn fps(mut self, fps: u32) -> Self {
        self.fps = fps;
        self.gop = fps;
        self
    }

    /// Video bitrate in kbit/s (the benchmark uses ~4500).
    pub fn video_kbps(mut self, kbps: u32) -> Self {
        self.video_kbps = kbps;
        self
    }

    /// Frames between keyframes.
    pub fn gop(mut self, frames: u32) -> Self {
        self.gop = frames;
        self
    }

    /// Stop after `d` (`-t`).
    pub fn duration(mut self, d: Duration) -> Self {
        self.duration = Some(d);
        self
    }

    /// Verify the rtmps server certificate against this CA.
    pub fn ca_file(mut self, path: &Path) -> Self {
        self.ca_file = Some(path.to_path_buf());
        self
    }

    /// Extra ffmpeg output option(s), put just before the URL.
    pub fn arg(mut self, arg: &str) -> Self {
        self.extra_args.push(arg.to_string());
        self
    }

    /// Publishes a pre-encoded clip, looped, without re-encoding (frames
    /// known in advance, next to no CPU).
    pub fn clip(mut self, clip: &super::clip::Clip) -> Self {
        self.input_file = Some(clip.path.clone());
        self
    }

    /// The ffmpeg arguments for `url`.
    pub fn ffmpeg_args(&self, url: &str) -> Vec<String> {
        if let Some(file) = &self.input_file {
            let mut a: Vec<String> = [
                "-hide_banner",
                "-nostdin",
                "-loglevel",
                "info",
                "-nostats",
                "-re",
                "-stream_loop",
                "-1",
                "-i",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            a.push(file.display().to_string());
            if let Some(d) = self.duration {
                a.push("-t".into());
                a.push(format!("{:.3}", d.as_secs_f64()));
            }
            a.extend(["-c", "copy"].map(String::from));
            a.extend(self.extra_args.iter().cloned());
            a.extend(["-f".into(), "flv".into(), url.to_string()]);
            return a;
        }
        let mut a: Vec<String> = [
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "info",
            "-nostats",
            "-re",
            "-f",
            "lavfi",
            "-i",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.push(format!(
            "testsrc2=size={}x{}:rate={}",
            self.width, self.height, self.fps
        ));
        a.extend(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"].map(String::from));
        if let Some(d) = self.duration {
            a.push("-t".into());
            a.push(format!("{:.3}", d.as_secs_f64()));
        }
        a.extend(
            [
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-tune",
                "zerolatency",
                "-pix_fmt",
                "yuv420p",
            ]
            .map(String::from),
        );
        a.extend([
            "-g".into(),
            self.gop.to_string(),
            "-keyint_min".into(),
            self.gop.to_string(),
            "-b:v".into(),
            format!("{}k", self.video_kbps),
            "-maxrate".into(),
            format!("{}k", self.video_kbps),
            "-bufsize".into(),
            format!("{}k", self.video_kbps * 2),
            "-c:a".into(),
            "aac".into(),
            "-b:a".into(),
            format!("{}k", self.audio_kbps),
        ]);
        if let Some(ca) = &self.ca_file {
            a.extend(["-tls_verify".into(), "1".into(), "-ca_file".into()]);
            a.push(ca.display().to_string());
        }
        a.extend(self.extra_args.iter().cloned());
        a.extend(["-f".into(), "flv".into(), url.to_string()]);
        a
    }

    /// Starts ffmpeg publishing to `url` (e.g. `rtmp://127.0.0.1:P/live/KEY`).
    pub fn start(self, url: &str) -> Result<Publisher> {
        let program = require_program(&["ffmpeg"], "ffmpeg")?;
        let dir = tempfile::Builder::new()
            .prefix("antenne-test-ffmpeg-")
            .tempdir()
            .context("ffmpeg: cannot create temp dir")?;
        let mut cmd = Command::new(program);
        cmd.args(self.ffmpeg_args(url)).current_dir(dir.path());
        let child = ChildGuard::spawn("ffmpeg", cmd, &dir.path().join("ffmpeg.log"))?;
        Ok(Publisher {
            child,
            url: url.to_string(),
            _dir: dir,
        })
    }
}

/// A running ffmpeg publisher. Killed on drop.
pub struct Publisher {
    child: ChildGuard,
    url: String,
    // Dropped after `child` (fields drop in declaration order).
    _dir: TempDir,
}

impl Publisher {
    /// Publishes the default test pattern to `url` until killed.
    pub fn start(url: &str) -> Result<Publisher> {
        PublisherOptions::default().start(url)
    }

    /// Default options, to customise then `.start(url)`.
    pub fn options() -> PublisherOptions {
        PublisherOptions::default()
    }

    /// The URL it publishes to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// True while ffmpeg runs.
    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }

    /// ffmpeg's exit status once it exited (e.g. non-success when the server
    /// refused the publish or dropped the connection).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.exit_status()
    }

    /// Waits up to `timeout` for ffmpeg to exit by itself.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.child.wait_timeout(timeout)
    }

    /// ffmpeg's output so far.
    pub fn log(&self) -> String {
        self.child.log()
    }

    /// Graceful stop (SIGTERM: ffmpeg ends the stream cleanly), SIGKILL
    /// after 3 s.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.child.terminate(Duration::from_secs(3))
    }

    /// SIGKILL (the publisher vanishes without closing the stream).
    pub fn kill(&mut self) -> Option<ExitStatus> {
        self.child.kill()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }
}
