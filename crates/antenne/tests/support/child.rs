//! [`ChildGuard`]: a child process that is killed and reaped on drop.

use anyhow::{Context, Result};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// How long [`Drop`] waits after SIGTERM before sending SIGKILL.
pub const DROP_GRACE: Duration = Duration::from_secs(2);

/// Owns a child process. Its stdin is /dev/null and its stdout and stderr
/// are appended to a log file (normally in the peer's temp dir), readable with
/// [`ChildGuard::log`].
///
/// On drop (also while unwinding from a panic) the process gets SIGTERM,
/// then SIGKILL if it has not exited within [`DROP_GRACE`], and is always
/// reaped, so no process and no zombie is left behind.
///
/// The child is spawned in the test's process group: a Ctrl-C on
/// `cargo test` reaches it too.
pub struct ChildGuard {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
    log_path: PathBuf,
}

impl ChildGuard {
    /// Spawns `cmd` with stdout+stderr appended to `log_path` (created if
    /// missing). `name` is used in messages.
    pub fn spawn(name: &str, mut cmd: Command, log_path: &Path) -> Result<ChildGuard> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .with_context(|| format!("{name}: cannot open log file {}", log_path.display()))?;
        let log2 = log
            .try_clone()
            .with_context(|| format!("{name}: cannot clone log file handle"))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        let child = cmd
            .spawn()
            .with_context(|| format!("{name}: cannot spawn {cmd:?}"))?;
        Ok(ChildGuard {
            name: name.to_string(),
            child,
            status: None,
            log_path: log_path.to_path_buf(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The exit status if the process has exited (non-blocking).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Ok(Some(st)) = self.child.try_wait() {
                self.status = Some(st);
            }
        }
        self.status
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none()
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        super::wait_for(timeout, || self.exit_status())
    }

    /// Sends a signal (no-op if it has already exited).
    pub fn signal(&mut self, sig: libc::c_int) {
        if self.is_running() {
            let pid = self.child.id() as libc::pid_t;
            // SAFETY: plain kill(2) on our own, not yet reaped, child.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }

    /// SIGKILL and reap (a crash, as seen by the peers). Returns the status.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        if self.is_running() {
            let _ = self.child.kill();
            if let Ok(st) = self.child.wait() {
                self.status = Some(st);
            }
        }
        self.status
    }

    /// SIGTERM, wait up to `grace` for the exit, then SIGKILL; always reaps.
    pub fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        if self.is_running() {
            self.signal(libc::SIGTERM);
            if self.wait_timeout(grace).is_none() {
                return self.kill();
            }
        }
        self.status
    }

    /// Path of the log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything the process printed so far (stdout and stderr, lossy UTF-8).
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("<cannot read {}: {e}>", self.log_path.display()))
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.terminate(DROP_GRACE);
    }
}
