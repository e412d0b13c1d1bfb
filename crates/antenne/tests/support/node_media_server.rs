//! [`NodeMediaServer`]: Node-Media-Server v4 (node.js, its own RTMP stack)
//! as a destination, recording every publish to FLV.
//!
//! The package comes from npm, pinned to [`NMS_VERSION`], installed once
//! into `target/test-peers/nms-<version>` and reused; an exclusive `flock`
//! on a lock file beside it makes parallel tests (and test processes) wait
//! for one install instead of racing. Installing needs `npm` and the npm
//! registry; without them the test fails with the reason.
//!
//! What NMS 4.4.3 does, read in its source: a publish records to
//! `<record>/<app>/<stream>/<unix ms>.flv`; a publisher from the same
//! address that comes back within 30 s resumes the same publish and the
//! same file (appended). Each publish logs `start push /<app>/<stream>`.

use super::child::ChildGuard;
use super::{port_accepts, require_program, tail, wait_until};
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

/// The pinned Node-Media-Server release.
pub const NMS_VERSION: &str = "4.4.3";

const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Node-Media-Server on 127.0.0.1, recording to `<tempdir>/record`. Killed on
/// drop.
pub struct NodeMediaServer {
    dir: TempDir,
    port: u16,
    child: ChildGuard,
}

/// `target/` of this workspace (or `$CARGO_TARGET_DIR`).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// Holds an exclusive `flock` until dropped (closing the file releases it).
struct FileLock(File);

impl FileLock {
    fn acquire(path: &Path) -> Result<FileLock> {
        let file = File::create(path)
            .with_context(|| format!("cannot create lock file {}", path.display()))?;
        // SAFETY: flock(2) on a descriptor this function owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc != 0 {
            bail!(
                "cannot lock {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
        Ok(FileLock(file))
    }
}

/// Installs node-media-server@[`NMS_VERSION`] once; returns its `bin/app.js`.
pub fn install() -> Result<PathBuf> {
    let root = target_dir().join("test-peers");
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let prefix = root.join(format!("nms-{NMS_VERSION}"));
    let app = prefix.join("node_modules/node-media-server/bin/app.js");
    let done = prefix.join("installed.ok");
    let _lock = FileLock::acquire(&root.join(format!("nms-{NMS_VERSION}.lock")))?;
    if done.is_file() && app.is_file() {
        return Ok(app);
    }
    let npm = require_program(&["npm"], "npm")?;
    std::fs::create_dir_all(&prefix)?;
    let out = Command::new(npm)
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--no-save",
            "--prefix",
        ])
        .arg(&prefix)
        .arg(format!("node-media-server@{NMS_VERSION}"))
        .output()
        .context("cannot run npm")?;
    if !out.status.success() || !app.is_file() {
        bail!(
            "npm install node-media-server@{NMS_VERSION} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::write(&done, NMS_VERSION)?;
    Ok(app)
}

impl NodeMediaServer {
    /// Installs (once) and starts NMS on a free port; waits until it
    /// accepts connections.
    pub fn start() -> Result<NodeMediaServer> {
        let app = install()?;
        let node = require_program(&["node", "nodejs"], "nodejs")?;
        let dir = tempfile::Builder::new()
            .prefix("antenne-test-nms-")
            .tempdir()
            .context("nms: cannot create temp dir")?;
        let mut last_err = None;
        for attempt in 0..3 {
            let port = super::free_port();
            let config = serde_json::json!({
                "bind": "127.0.0.1",
                "notify": {"url": ""},
                "store": {"path": "./data", "maxHistory": 100},
                "auth": {"play": false, "publish": false, "secret": "antenne-test"},
                "rtmp": {"port": port},
                "webadmin": {"enable": false},
                "record": {"auto": true, "path": "./record"},
            });
            let conf = dir.path().join("config.json");
            std::fs::write(&conf, config.to_string()).context("nms: cannot write config")?;
            let mut cmd = Command::new(&node);
            cmd.arg(&app).arg("-c").arg(&conf).current_dir(dir.path());
            let log = dir.path().join(format!("nms-{attempt}.log"));
            let mut child = ChildGuard::spawn("node-media-server", cmd, &log)?;
            let ready = wait_until(READY_TIMEOUT, || {
                !child.is_running()
                    || (child.log().contains("Rtmp Server listening") && port_accepts(port))
            });
            if ready && child.is_running() {
                return Ok(NodeMediaServer { dir, port, child });
            }
            let status = child.kill();
            last_err = Some(anyhow::anyhow!(
                "Node-Media-Server did not become ready on 127.0.0.1:{port} \
                 (exit status {status:?}); log:\n{}",
                tail(&child.log(), 30)
            ));
        }
        Err(last_err.expect("at least one attempt")).context("nms: could not start in 3 tries")
    }

    /// The RTMP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `rtmp://127.0.0.1:PORT/live` (a destination URL without the key).
    pub fn url(&self) -> String {
        format!("rtmp://127.0.0.1:{}/live", self.port)
    }

    /// Recordings of `live/<stream>`, oldest first.
    pub fn recordings(&self, stream: &str) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(self.dir.path().join("record/live").join(stream))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "flv"))
                .collect();
        files.sort();
        files
    }

    /// Size of the newest recording of `stream` (0 if none).
    pub fn latest_size(&self, stream: &str) -> u64 {
        self.recordings(stream)
            .last()
            .and_then(|p| p.metadata().ok())
            .map_or(0, |m| m.len())
    }

    /// How many times a client published `live/<stream>` (from the log).
    pub fn publish_count(&self, stream: &str) -> usize {
        self.child
            .log()
            .matches(&format!("start push /live/{stream}"))
            .count()
    }

    /// What NMS printed.
    pub fn log(&self) -> String {
        self.child.log()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }
}
