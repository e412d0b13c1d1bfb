//! [`Nginx`]: an nginx-rtmp receiver that records everything published to it.
//!
//! What nginx-rtmp (Debian `libnginx-mod-rtmp` 1.2.2) does, checked by hand:
//! - Recording is progressive: every audio/video frame is written to the
//!   file with a plain `write` as it arrives (no buffering), so a recording
//!   can be read and analysed while the stream is still live (it may end in
//!   a truncated tag; ffprobe/ffmpeg tolerate that).
//! - With `record_unique on` the file is `<rec>/<stream>-<unix seconds>.flv`,
//!   the time being when that publish session started. One file per publish
//!   session (= per connection), written from its first frame on (the FLV
//!   header, then the AVC/AAC sequence headers, then frames).
//! - Two publish sessions of the same stream name that start within the same
//!   second get the same file name, and the later one truncates (overwrites)
//!   the earlier one. So the number of files is the number of (re)connections
//!   only when sessions are at least 1 s apart; [`Nginx::publish_count`]
//!   counts the `publish: name='<stream>'` lines nginx logs at `info` level,
//!   which is exact whatever the timing.
//! - A second publisher on a name that is still being published is refused
//!   (`NetStream.Publish.BadName`); a relay reconnecting while nginx has not
//!   yet noticed the old connection is gone gets refused until it has.
//!
//! nginx runs with `master_process off` (one single process, so that the
//! guard's kill really stops it: with a master, SIGKILL on the master would
//! leave the worker running and holding the port).

use super::child::ChildGuard;
use super::{port_accepts, require_program, tail, wait_for, wait_until};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

/// Where Debian's `libnginx-mod-rtmp` installs the dynamic module.
pub const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

/// How long [`Nginx::start`] / [`Nginx::restart`] wait for the listener.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// nginx-rtmp receiver on 127.0.0.1, application `live`, recording every
/// publish to `<tempdir>/rec`. Killed on drop.
pub struct Nginx {
    dir: TempDir,
    port: u16,
    child: Option<ChildGuard>,
}

impl Nginx {
    /// Starts nginx on a free port (retrying with another port if the bind
    /// fails) and waits until it accepts connections.
    pub fn start() -> Result<Nginx> {
        let mut nginx = Self::prepare()?;
        let mut last_err = None;
        for _ in 0..3 {
            nginx.port = super::free_port();
            match nginx.spawn() {
                Ok(()) => return Ok(nginx),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.expect("at least one attempt")).context("nginx: could not start in 3 tries")
    }

    /// Starts nginx on a given port (e.g. one from [`super::free_port`] that
    /// a destination already points to: "the platform comes back"). Retries
    /// a few times on that same port if the bind fails.
    pub fn start_on(port: u16) -> Result<Nginx> {
        let mut nginx = Self::prepare()?;
        nginx.port = port;
        nginx
            .respawn_same_port()
            .with_context(|| format!("nginx: could not start on port {port}"))?;
        Ok(nginx)
    }

    /// A not yet started instance with its temp dir.
    fn prepare() -> Result<Nginx> {
        require_program(&["nginx"], "nginx")?;
        if !Path::new(RTMP_MODULE).is_file() {
            bail!("{RTMP_MODULE} missing: install the Debian package `libnginx-mod-rtmp`");
        }
        let dir = tempfile::Builder::new()
            .prefix("antenne-test-nginx-")
            .tempdir()
            .context("nginx: cannot create temp dir")?;
        std::fs::create_dir(dir.path().join("rec")).context("nginx: cannot create rec dir")?;
        Ok(Nginx {
            dir,
            port: 0,
            child: None,
        })
    }

    fn write_config(&self) -> Result<PathBuf> {
        let d = self.dir.path();
        let conf = format!(
            "load_module {RTMP_MODULE};\n\
             master_process off;\n\
             worker_processes 1;\n\
             pid {pid};\n\
             error_log {err} info;\n\
             events {{ worker_connections 256; }}\n\
             rtmp {{\n\
             \x20 server {{\n\
             \x20   listen 127.0.0.1:{port};\n\
             \x20   chunk_size 4096;\n\
             \x20   application live {{\n\
             \x20     live on;\n\
             \x20     record all;\n\
             \x20     record_path {rec};\n\
             \x20     record_unique on;\n\
             \x20   }}\n\
             \x20 }}\n\
             }}\n",
            pid = d.join("nginx.pid").display(),
            err = self.error_log_path().display(),
            port = self.port,
            rec = self.record_dir().display(),
        );
        let path = d.join("nginx.conf");
        std::fs::write(&path, conf).context("nginx: cannot write nginx.conf")?;
        Ok(path)
    }

    /// Number of times nginx said it finished initialising (sockets bound).
    fn ready_marks(&self) -> usize {
        // ngx_os_status() logs "OS: ..." right after ngx_init_cycle() has
        // bound the listening sockets, and is not reached if a bind failed.
        self.error_log().matches(": OS: ").count()
    }

    /// Spawns nginx on `self.port` and waits for it to be ready.
    fn spawn(&mut self) -> Result<()> {
        let conf = self.write_config()?;
        let before = self.ready_marks();
        let d = self.dir.path();
        let mut cmd = Command::new("nginx");
        cmd.arg("-p")
            .arg(d)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(self.error_log_path())
            .arg("-g")
            .arg("daemon off;")
            .current_dir(d);
        let mut child = ChildGuard::spawn("nginx", cmd, &d.join("nginx.out.log"))?;
        let port = self.port;
        let ready = wait_until(READY_TIMEOUT, || {
            !child.is_running() || (self.ready_marks() > before && port_accepts(port))
        });
        if !ready || !child.is_running() {
            let status = child.kill();
            self.child = Some(child);
            bail!(
                "nginx did not become ready on 127.0.0.1:{port} (exit status {status:?}); log:\n{}",
                tail(&self.log(), 30)
            );
        }
        self.child = Some(child);
        Ok(())
    }

    /// The RTMP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `rtmp://127.0.0.1:PORT/live` (a destination URL without the key).
    pub fn url(&self) -> String {
        format!("rtmp://127.0.0.1:{}/live", self.port)
    }

    /// `rtmp://127.0.0.1:PORT/live/<stream>` (what ffmpeg publishes to).
    pub fn stream_url(&self, stream: &str) -> String {
        format!("{}/{stream}", self.url())
    }

    /// The peer's temp dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where recordings go.
    pub fn record_dir(&self) -> PathBuf {
        self.dir.path().join("rec")
    }

    fn error_log_path(&self) -> PathBuf {
        self.dir.path().join("error.log")
    }

    /// nginx's error log (info level: connect/publish/disconnect lines).
    pub fn error_log(&self) -> String {
        std::fs::read(self.error_log_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Error log plus whatever the process printed (all starts appended).
    pub fn log(&self) -> String {
        let out = std::fs::read(self.dir.path().join("nginx.out.log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        format!("{}{}", self.error_log(), out)
    }

    /// Recordings of `stream`, oldest first: one per publish session (see the
    /// module doc for the same-second caveat).
    pub fn recordings(&self, stream: &str) -> Vec<PathBuf> {
        let prefix = format!("{stream}-");
        let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(self.record_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let secs = name.strip_prefix(&prefix)?.strip_suffix(".flv")?;
                if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Some((secs.parse().ok()?, entry.path()))
            })
            .collect();
        found.sort();
        found.into_iter().map(|(_, p)| p).collect()
    }

    /// The newest recording of `stream`, if any.
    pub fn latest_recording(&self, stream: &str) -> Option<PathBuf> {
        self.recordings(stream).pop()
    }

    /// Waits until the newest recording of `stream` has at least `min_bytes`
    /// (works while the stream is live: nginx writes progressively).
    pub fn wait_for_recording(
        &self,
        stream: &str,
        min_bytes: u64,
        timeout: Duration,
    ) -> Result<PathBuf> {
        self.wait_for_recordings(stream, 1, min_bytes, timeout)
            .map(|mut v| v.pop().expect("at least one recording"))
    }

    /// Waits until `stream` has at least `count` recordings and the newest
    /// has at least `min_bytes`. Returns all of them, oldest first.
    pub fn wait_for_recordings(
        &self,
        stream: &str,
        count: usize,
        min_bytes: u64,
        timeout: Duration,
    ) -> Result<Vec<PathBuf>> {
        let found = wait_for(timeout, || {
            let recs = self.recordings(stream);
            let size = recs.last().and_then(|p| p.metadata().ok()).map(|m| m.len());
            (recs.len() >= count && size.unwrap_or(0) >= min_bytes).then_some(recs)
        });
        match found {
            Some(recs) => Ok(recs),
            None => {
                let recs: Vec<String> = self
                    .recordings(stream)
                    .iter()
                    .map(|p| {
                        let len = p.metadata().map(|m| m.len()).unwrap_or(0);
                        format!("{} ({len} bytes)", p.display())
                    })
                    .collect();
                bail!(
                    "nginx on port {}: no {count} recording(s) of '{stream}' with the newest \
                     >= {min_bytes} bytes within {timeout:?}; have {recs:?}; nginx log:\n{}",
                    self.port,
                    tail(&self.log(), 30)
                )
            }
        }
    }

    /// How many times a client published `stream` (exact, from the log;
    /// counts across restarts).
    pub fn publish_count(&self, stream: &str) -> usize {
        self.error_log()
            .matches(&format!("publish: name='{stream}' "))
            .count()
    }

    /// Waits until [`Nginx::publish_count`] of `stream` is at least `n`.
    pub fn wait_for_publish_count(&self, stream: &str, n: usize, timeout: Duration) -> Result<()> {
        if wait_until(timeout, || self.publish_count(stream) >= n) {
            return Ok(());
        }
        bail!(
            "nginx on port {}: '{stream}' published {} time(s), wanted {n} within {timeout:?}; \
             log:\n{}",
            self.port,
            self.publish_count(stream),
            tail(&self.log(), 30)
        )
    }

    /// How many RTMP `connect` commands nginx received (counts across
    /// restarts). TCP connections that never sent `connect` (such as the
    /// readiness probe of this module) are not counted.
    pub fn connect_count(&self) -> usize {
        self.error_log().matches(" connect: app='").count()
    }

    /// True while the nginx process runs.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.is_running())
    }

    /// SIGKILL (a receiver crash: connections are reset, the port closes).
    /// The temp dir and recordings stay; [`Nginx::restart`] brings it back.
    pub fn kill(&mut self) {
        if let Some(c) = self.child.as_mut() {
            c.kill();
        }
    }

    /// Graceful stop (SIGTERM, then SIGKILL after 2 s).
    pub fn stop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            c.terminate(Duration::from_secs(2));
        }
    }

    /// Kills nginx if it runs, then starts it again on the same port with the
    /// same temp dir (recordings and log are kept) and waits until ready.
    pub fn restart(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill();
        }
        let port = self.port;
        self.respawn_same_port()
            .with_context(|| format!("nginx: restart on port {port} failed"))
    }

    /// Spawns on `self.port`, up to 3 tries. The port is normally free at
    /// once (nginx sets SO_REUSEADDR); if a bind fails anyway, retry.
    fn respawn_same_port(&mut self) -> Result<()> {
        let mut last_err = None;
        for _ in 0..3 {
            match self.spawn() {
                Ok(()) => return Ok(()),
                Err(e) => last_err = Some(e),
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        Err(last_err.expect("at least one attempt"))
    }
}
