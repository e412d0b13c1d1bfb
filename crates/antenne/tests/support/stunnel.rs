//! [`Stunnel`]: a TLS front (stunnel4, server mode) for an RTMP receiver, so
//! tests can have an `rtmps://` destination.
//!
//! Each instance makes its own test CA and a server certificate for
//! `localhost` with [`make_test_pki`] (see pki.rs), in its temp dir; or
//! [`Stunnel::start_with`] serves a given certificate, e.g. one of the bad
//! ones of [`TestPki`] ([`CertKind`]), and [`Stunnel::restart_with`] swaps
//! it on the same port.

use super::child::ChildGuard;
use super::pki::make_test_pki;
use super::{port_accepts, require_program, tail, wait_until};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS on 127.0.0.1:`port()` forwarded in clear to 127.0.0.1:`backend_port`.
/// Killed on drop.
pub struct Stunnel {
    dir: TempDir,
    port: u16,
    backend_port: u16,
    ca_file: PathBuf,
    child: ChildGuard,
}

impl Stunnel {
    /// Starts stunnel accepting TLS on a free port and forwarding to
    /// 127.0.0.1:`backend_port`; waits until it accepts connections.
    pub fn start(backend_port: u16) -> Result<Stunnel> {
        let dir = tempfile::Builder::new()
            .prefix("antenne-test-stunnel-")
            .tempdir()
            .context("stunnel: cannot create temp dir")?;
        let pki = make_test_pki(dir.path())?;
        let (cert, key) = (pki.server_cert.clone(), pki.server_key.clone());
        Self::spawn_in(dir, backend_port, None, &cert, &key, pki.ca_cert)
    }

    /// Like [`Stunnel::start`], presenting `cert` (PEM, with its `key`);
    /// `ca_file` is what [`Stunnel::ca_file`] reports.
    pub fn start_with(
        backend_port: u16,
        cert: &Path,
        key: &Path,
        ca_file: &Path,
    ) -> Result<Stunnel> {
        let dir = tempfile::Builder::new()
            .prefix("antenne-test-stunnel-")
            .tempdir()
            .context("stunnel: cannot create temp dir")?;
        Self::spawn_in(dir, backend_port, None, cert, key, ca_file.to_path_buf())
    }

    /// Stops stunnel and starts it again on the same port, presenting
    /// `cert` (the server "fixed its certificate").
    pub fn restart_with(self, cert: &Path, key: &Path) -> Result<Stunnel> {
        let Stunnel {
            dir,
            port,
            backend_port,
            ca_file,
            mut child,
        } = self;
        child.kill();
        drop(child);
        Self::spawn_in(dir, backend_port, Some(port), cert, key, ca_file)
    }

    fn spawn_in(
        dir: TempDir,
        backend_port: u16,
        fixed_port: Option<u16>,
        cert: &Path,
        key: &Path,
        ca_file: PathBuf,
    ) -> Result<Stunnel> {
        let program = require_program(&["stunnel4", "stunnel"], "stunnel4")?;
        let mut last_err = None;
        for attempt in 0..3 {
            let port = fixed_port.unwrap_or_else(super::free_port);
            let conf = format!(
                "foreground = yes\n\
                 pid = {pid}\n\
                 debug = info\n\
                 [rtmps]\n\
                 accept = 127.0.0.1:{port}\n\
                 connect = 127.0.0.1:{backend_port}\n\
                 cert = {cert}\n\
                 key = {key}\n",
                pid = dir.path().join("stunnel.pid").display(),
                cert = cert.display(),
                key = key.display(),
            );
            let conf_path = dir.path().join("stunnel.conf");
            std::fs::write(&conf_path, conf).context("stunnel: cannot write config")?;
            let n = std::fs::read_dir(dir.path())
                .map(|d| d.count())
                .unwrap_or(attempt);
            let log_path = dir.path().join(format!("stunnel-{n}.log"));
            let mut cmd = Command::new(&program);
            cmd.arg(&conf_path).current_dir(dir.path());
            let mut child = ChildGuard::spawn("stunnel", cmd, &log_path)?;
            let bound = format!("bound to 127.0.0.1:{port}");
            let ready = wait_until(READY_TIMEOUT, || {
                !child.is_running() || (child.log().contains(&bound) && port_accepts(port))
            });
            if ready && child.is_running() {
                return Ok(Stunnel {
                    dir,
                    port,
                    backend_port,
                    ca_file,
                    child,
                });
            }
            let status = child.kill();
            last_err = Some(anyhow::anyhow!(
                "stunnel did not become ready on 127.0.0.1:{port} (exit status {status:?}); \
                 log:\n{}",
                tail(&child.log(), 30)
            ));
            if fixed_port.is_some() {
                std::thread::sleep(Duration::from_millis(300));
            }
        }
        Err(last_err.expect("at least one attempt")).context("stunnel: could not start in 3 tries")
    }

    /// The TLS port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The clear-text port it forwards to.
    pub fn backend_port(&self) -> u16 {
        self.backend_port
    }

    /// `rtmps://localhost:PORT/live` (a destination URL without the key; the
    /// certificate is valid for `localhost` and for `127.0.0.1`).
    pub fn url(&self) -> String {
        format!("rtmps://localhost:{}/live", self.port)
    }

    /// `rtmps://localhost:PORT/live/<stream>`.
    pub fn stream_url(&self, stream: &str) -> String {
        format!("{}/{stream}", self.url())
    }

    /// PEM of the test CA (for antenne's `--extra-ca-file`, ffmpeg's
    /// `-ca_file`).
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The peer's temp dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// stunnel's log (connections, TLS errors).
    pub fn log(&self) -> String {
        self.child.log()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        self.child.kill();
    }
}
