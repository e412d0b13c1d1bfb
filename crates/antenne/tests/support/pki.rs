//! [`make_test_pki`]: test certificates made with the `openssl` CLI, good
//! and bad, for the TLS fronts of the tests ([`super::Stunnel`],
//! [`super::NginxTlsFront`]).
//!
//! A test CA signs a server certificate for `localhost` (subjectAltName
//! DNS:localhost and IP:127.0.0.1, EC P-256, CA:FALSE); beside it: one
//! signed by a CA nobody trusts, an expired one, one for another name, and
//! the self-signed certificate plain `openssl req -x509` makes (CA:TRUE),
//! which TLS clients refuse as a server certificate.

use super::require_program;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

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
    /// Self-signed for `localhost` by plain `openssl req -x509`, hence
    /// marked CA:TRUE; with its own key, [`TestPki::self_signed_ca_key`].
    pub self_signed_ca_cert: PathBuf,
    /// The key of [`TestPki::self_signed_ca_cert`].
    pub self_signed_ca_key: PathBuf,
    /// Self-signed for `localhost` the way the message for CA:TRUE says:
    /// `-addext basicConstraints=critical,CA:FALSE` (its own key too).
    pub self_signed_cert: PathBuf,
    /// The key of [`TestPki::self_signed_cert`].
    pub self_signed_key: PathBuf,
}

/// Which certificate of a [`TestPki`] a server presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertKind {
    Good,
    UnknownCa,
    Expired,
    WrongName,
    /// Self-signed and marked CA:TRUE (plain `openssl req -x509`).
    SelfSignedCa,
    /// Self-signed, CA:FALSE.
    SelfSigned,
}

impl TestPki {
    /// (certificate, key) of that kind.
    pub fn cert(&self, kind: CertKind) -> (&Path, &Path) {
        let cert = match kind {
            CertKind::Good => &self.server_cert,
            CertKind::UnknownCa => &self.unknown_ca_cert,
            CertKind::Expired => &self.expired_cert,
            CertKind::WrongName => &self.wrong_name_cert,
            CertKind::SelfSignedCa => return (&self.self_signed_ca_cert, &self.self_signed_ca_key),
            CertKind::SelfSigned => return (&self.self_signed_cert, &self.self_signed_key),
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

    // What a user makes with the usual one-liner: CA:TRUE by default.
    let mut self_signed = vec!["req", "-x509"];
    self_signed.extend(ec);
    self_signed.extend([
        "-nodes",
        "-keyout",
        "self-signed-ca.key",
        "-out",
        "self-signed-ca.pem",
        "-days",
        "30",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ]);
    openssl(dir, &self_signed).context("making the self-signed CA:TRUE certificate")?;
    let mut fixed = vec!["req", "-x509"];
    fixed.extend(ec);
    fixed.extend([
        "-nodes",
        "-keyout",
        "self-signed.key",
        "-out",
        "self-signed.pem",
        "-days",
        "30",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
    ]);
    openssl(dir, &fixed).context("making the self-signed CA:FALSE certificate")?;
    Ok(TestPki {
        ca_cert: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
        unknown_ca_cert: dir.join("unknown-ca.pem"),
        expired_cert: dir.join("expired.pem"),
        wrong_name_cert: dir.join("wrong-name.pem"),
        self_signed_ca_cert: dir.join("self-signed-ca.pem"),
        self_signed_ca_key: dir.join("self-signed-ca.key"),
        self_signed_cert: dir.join("self-signed.pem"),
        self_signed_key: dir.join("self-signed.key"),
    })
}
