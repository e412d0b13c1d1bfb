//! [`NginxTlsFront`]: nginx's `stream` module terminating TLS in front of an
//! RTMP receiver, the usual way to offer rtmps:// with nginx-rtmp (which
//! has no TLS of its own).
//!
//! Debian's `libnginx-mod-stream`, loaded as a dynamic module; one process
//! (`master_process off`, as [`super::Nginx`]) so the guard's kill stops it.
//! It presents the certificate it is given (see [`super::TestPki`]) and
//! forwards the clear stream to 127.0.0.1:`backend_port`.

use super::child::ChildGuard;
use super::{port_accepts, require_program, tail, wait_until};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

/// Where Debian's `libnginx-mod-stream` installs the dynamic module.
pub const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS on 127.0.0.1:`port()` forwarded in clear to 127.0.0.1:`backend_port`.
/// Killed on drop.
pub struct NginxTlsFront {
    dir: TempDir,
    port: u16,
    child: ChildGuard,
}

impl NginxTlsFront {
    /// Starts on a free port (3 tries), presenting `cert` with `key`.
    pub fn start(backend_port: u16, cert: &Path, key: &Path) -> Result<NginxTlsFront> {
        require_program(&["nginx"], "nginx")?;
        if !Path::new(STREAM_MODULE).is_file() {
            bail!("{STREAM_MODULE} missing: install the Debian package `libnginx-mod-stream`");
        }
        let dir = tempfile::Builder::new()
            .prefix("antenne-test-nginx-tls-")
            .tempdir()
            .context("nginx tls: cannot create temp dir")?;
        let mut last_err = None;
        for attempt in 0..3 {
            let port = super::free_port();
            let d = dir.path();
            let err_log = d.join(format!("error-{attempt}.log"));
            let conf = format!(
                "load_module {STREAM_MODULE};\n\
                 master_process off;\n\
                 worker_processes 1;\n\
                 pid {pid};\n\
                 error_log {err} info;\n\
                 events {{ worker_connections 256; }}\n\
                 stream {{\n\
                 \x20 server {{\n\
                 \x20   listen 127.0.0.1:{port} ssl;\n\
                 \x20   ssl_certificate {cert};\n\
                 \x20   ssl_certificate_key {key};\n\
                 \x20   proxy_pass 127.0.0.1:{backend_port};\n\
                 \x20 }}\n\
                 }}\n",
                pid = d.join("nginx.pid").display(),
                err = err_log.display(),
                cert = cert.display(),
                key = key.display(),
            );
            let conf_path = d.join("nginx.conf");
            std::fs::write(&conf_path, conf).context("nginx tls: cannot write nginx.conf")?;
            let mut cmd = Command::new("nginx");
            cmd.arg("-p")
                .arg(d)
                .arg("-c")
                .arg(&conf_path)
                .arg("-e")
                .arg(&err_log)
                .arg("-g")
                .arg("daemon off;")
                .current_dir(d);
            let mut child = ChildGuard::spawn("nginx-tls", cmd, &d.join("nginx.out.log"))?;
            let ready = wait_until(READY_TIMEOUT, || !child.is_running() || port_accepts(port));
            if ready && child.is_running() {
                return Ok(NginxTlsFront { dir, port, child });
            }
            let status = child.kill();
            let log = std::fs::read_to_string(&err_log).unwrap_or_default();
            last_err = Some(anyhow::anyhow!(
                "nginx TLS front did not become ready on 127.0.0.1:{port} \
                 (exit status {status:?}); log:\n{}{}",
                tail(&log, 20),
                tail(&child.log(), 10)
            ));
        }
        Err(last_err.expect("at least one attempt"))
            .context("nginx TLS front: could not start in 3 tries")
    }

    /// The TLS port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `rtmps://localhost:PORT/live` (the test certificates are for
    /// `localhost`).
    pub fn url(&self) -> String {
        format!("rtmps://localhost:{}/live", self.port)
    }

    /// The peer's temp dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Error logs of every start, and what the process printed.
    pub fn log(&self) -> String {
        let mut logs: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        logs.sort();
        logs.iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }
}
