//! [`Stunnel`]: a TLS front (stunnel4, server mode) for an RTMP receiver, so
//! tests can have an `rtmps://` destination.
//!
//! Each instance makes its own test CA and a server certificate for
//! `localhost` (subjectAltName DNS:localhost and IP:127.0.0.1, EC P-256,
//! signed by that CA) with the `openssl` CLI, in its temp dir.

use super::child::ChildGuard;
use super::{port_accepts, require_program, tail, wait_until};
use anyhow::{bail, Context, Result};
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

/// The certificate files made by [`make_test_pki`].
pub struct TestPki {
    /// PEM of the CA certificate (what clients must trust).
    pub ca_cert: PathBuf,
    /// PEM of the server certificate (for `localhost` / 127.0.0.1).
    pub server_cert: PathBuf,
    /// PEM of the server private key.
    pub server_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .with_context(|| format!("cannot run openssl {args:?}"))?;
    if !out.status.success() {
        bail!(
            "openssl {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Makes a test CA and a `localhost` server certificate signed by it in
/// `dir` (files ca.pem, ca.key, server.pem, server.key).
pub fn make_test_pki(dir: &Path) -> Result<TestPki> {
    require_program(&["openssl"], "openssl")?;
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let mut ca_args = vec!["req", "-x509"];
    ca_args.extend(ec);
    ca_args.extend([
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "30",
        "-subj",
        "/CN=antenne test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca_args).context("making the test CA")?;
    let mut csr_args = vec!["req"];
    csr_args.extend(ec);
    csr_args.extend([
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &csr_args).context("making the server key/CSR")?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n\
         basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n",
    )
    .context("writing server.ext")?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "30",
            "-extfile",
            "server.ext",
        ],
    )
    .context("signing the server certificate")?;
    Ok(TestPki {
        ca_cert: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
    })
}

impl Stunnel {
    /// Starts stunnel accepting TLS on a free port and forwarding to
    /// 127.0.0.1:`backend_port`; waits until it accepts connections.
    pub fn start(backend_port: u16) -> Result<Stunnel> {
        let program = require_program(&["stunnel4", "stunnel"], "stunnel4")?;
        let dir = tempfile::Builder::new()
            .prefix("antenne-test-stunnel-")
            .tempdir()
            .context("stunnel: cannot create temp dir")?;
        let pki = make_test_pki(dir.path())?;
        let mut last_err = None;
        for attempt in 0..3 {
            let port = super::free_port();
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
                cert = pki.server_cert.display(),
                key = pki.server_key.display(),
            );
            let conf_path = dir.path().join("stunnel.conf");
            std::fs::write(&conf_path, conf).context("stunnel: cannot write config")?;
            let log_path = dir.path().join(format!("stunnel-{attempt}.log"));
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
                    ca_file: pki.ca_cert,
                    child,
                });
            }
            let status = child.kill();
            last_err = Some(anyhow::anyhow!(
                "stunnel did not become ready on 127.0.0.1:{port} (exit status {status:?}); \
                 log:\n{}",
                tail(&child.log(), 30)
            ));
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
