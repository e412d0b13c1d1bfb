//! [`GstPublisher`]: a GStreamer test-pattern publisher (`gst-launch-1.0`),
//! through GStreamer's own RTMP client (`rtmp2sink`, gst-plugins-bad) or
//! librtmp's (`rtmpsink`, gst-plugins-bad's librtmp plugin): two RTMP
//! stacks other than ffmpeg's.
//!
//! 320x240 30 fps H.264 (x264, keyframe every 2 s) and AAC (voaacenc), live
//! sources, muxed to FLV. It runs under `-e`, so [`GstPublisher::finish`]
//! (SIGINT) sends end-of-stream through the pipeline and the sink closes the
//! stream as it normally does before gst-launch exits (0 on success).

use super::child::ChildGuard;
use super::require_program;
use anyhow::{Context, Result};
use std::process::{Command, ExitStatus};
use std::time::Duration;
use tempfile::TempDir;

/// Which GStreamer RTMP sink publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GstSink {
    /// `rtmp2sink` (GStreamer's own RTMP implementation).
    Rtmp2,
    /// `rtmpsink` (librtmp).
    Librtmp,
}

impl GstSink {
    /// The element and its URL property, as gst-launch's arguments.
    fn element(self, url: &str) -> Vec<String> {
        match self {
            GstSink::Rtmp2 => vec!["rtmp2sink".into(), format!("location={url}")],
            // librtmp takes options after the URL, space-separated:
            // `live=1` publishes as a live stream. gst-launch escapes the
            // spaces of one argument, so the property stays one word.
            GstSink::Librtmp => vec!["rtmpsink".into(), format!("location={url} live=1")],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            GstSink::Rtmp2 => "rtmp2sink",
            GstSink::Librtmp => "rtmpsink",
        }
    }
}

/// A running `gst-launch-1.0 -e` publisher. Killed on drop.
pub struct GstPublisher {
    _dir: TempDir,
    child: ChildGuard,
}

impl GstPublisher {
    /// Starts publishing to `url` (`rtmp://host:port/app/stream`).
    pub fn start(sink: GstSink, url: &str) -> Result<GstPublisher> {
        let program = require_program(&["gst-launch-1.0"], "gstreamer1.0-tools")?;
        let dir = tempfile::Builder::new()
            .prefix("antenne-test-gst-")
            .tempdir()
            .context("gst: cannot create temp dir")?;
        // One argument per word: gst-launch joins them (escaping spaces
        // inside an argument), while one single argument holding the whole
        // pipeline is a syntax error to it.
        let mut args: Vec<String> = "-e videotestsrc is-live=true \
             ! video/x-raw,width=320,height=240,framerate=30/1 \
             ! x264enc tune=zerolatency key-int-max=60 ! h264parse \
             ! flvmux name=m streamable=true !"
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        args.extend(sink.element(url));
        args.extend(
            "audiotestsrc is-live=true ! audioconvert ! voaacenc ! aacparse ! m."
                .split_whitespace()
                .map(str::to_owned),
        );
        let mut cmd = Command::new(program);
        cmd.args(&args);
        let log = dir.path().join(format!("{}.log", sink.name()));
        let child = ChildGuard::spawn(sink.name(), cmd, &log)?;
        Ok(GstPublisher { _dir: dir, child })
    }

    /// True while gst-launch runs.
    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }

    /// Ends the stream as a user would (Ctrl-C under `-e`: end-of-stream
    /// through the pipeline, then exit) and waits up to `timeout` for the
    /// exit. None if it had to be killed.
    pub fn finish(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.child.signal(libc::SIGINT);
        let status = self.child.wait_timeout(timeout);
        if status.is_none() {
            self.child.kill();
        }
        status
    }

    /// What gst-launch printed.
    pub fn log(&self) -> String {
        self.child.log()
    }
}
