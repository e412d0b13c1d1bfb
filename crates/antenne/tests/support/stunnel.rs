//! [`Stunnel`]: a TLS front (stunnel4, server mode) for an RTMP receiver, so
//! tests can have an `rtmps://` destination.
//!
//! Each instance makes its own test CA and a server certificate for
//! `localhost` (subjectAltName DNS:localhost and IP:127.0.0.1, EC P-256,
//! signed by that CA) with the `openssl` CLI, in its temp dir; or
//! [`Stunnel::start_with`] serves a given certificate, e.g. one of the bad
//! ones of [`TestPki`] ([`CertKind`]), and [`Stunnel::restart_with`] swaps
//! it on the same port.

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
    /// PEM of the server private key (the key of every certificate here).
    pub server_key: PathBuf,
    /// For `localhost`, but signed by another CA, which nobody trusts.
    pub unknown_ca_cert: PathBuf,
    /// For `localhost`, signed by the CA, valid from 2024-01-01 to
    /// 2024-02-01 only.
    pub expired_cert: PathBuf,
    /// Signed by the CA, valid for `wrong.example` only.
    pub wrong_name_cert: PathBuf,
}

/// Which certificate of a [`TestPki`] a server presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertKind {
    Good,
    UnknownCa,
    Expired,
    WrongName,
}

impl TestPki {
    /// (certificate, key) of that kind.
    pub fn cert(&self, kind: CertKind) -> (&Path, &Path) {
        let cert = match kind {
            CertKind::Good => &self.server_cert,
            CertKind::UnknownCa => &self.unknown_ca_cert,
            CertKind::Expired => &self.expired_cert,
            CertKind::WrongName => &self.wrong_name_cert,
        };
        (cert, &self.server_key)
    }
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

    // Another CA, not trusted by anyone, signs a `localhost` certificate.
    let mut other_args = vec!["req", "-x509"];
    other_args.extend(ec);
    other_args.extend([
        "-nodes",
        "-keyout",
        "other-ca.key",
        "-out",
        "other-ca.pem",
        "-days",
        "30",
        "-subj",
        "/CN=antenne untrusted CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &other_args).context("making the untrusted CA")?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "other-ca.pem",
            "-CAkey",
            "other-ca.key",
            "-CAcreateserial",
            "-out",
            "unknown-ca.pem",
            "-days",
            "30",
            "-extfile",
            "server.ext",
        ],
    )
    .context("signing the unknown-CA certificate")?;

    // Valid for another name only.
    std::fs::write(
        dir.join("wrong.ext"),
        "subjectAltName=DNS:wrong.example\n\
         basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n",
    )
    .context("writing wrong.ext")?;
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
            "wrong-name.pem",
            "-days",
            "30",
            "-extfile",
            "wrong.ext",
        ],
    )
    .context("signing the wrong-name certificate")?;

    // Expired: `openssl ca` is the CLI that takes explicit dates.
    std::fs::write(dir.join("index.txt"), "").context("writing index.txt")?;
    std::fs::write(dir.join("serial"), "1000\n").context("writing serial")?;
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = test\n\
         [test]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
         default_md = sha256\npolicy = any\nunique_subject = no\n\
         [any]\ncommonName = supplied\n",
    )
    .context("writing ca.cnf")?;
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-notext",
            "-config",
            "ca.cnf",
            "-cert",
            "ca.pem",
            "-keyfile",
            "ca.key",
            "-in",
            "server.csr",
            "-out",
            "expired.pem",
            "-startdate",
            "20240101000000Z",
            "-enddate",
            "20240201000000Z",
            "-extfile",
            "server.ext",
        ],
    )
    .context("signing the expired certificate")?;
    Ok(TestPki {
        ca_cert: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
        unknown_ca_cert: dir.join("unknown-ca.pem"),
        expired_cert: dir.join("expired.pem"),
        wrong_name_cert: dir.join("wrong-name.pem"),
    })
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
