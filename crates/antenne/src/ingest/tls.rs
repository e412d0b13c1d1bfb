//! RTMPS ingest: the TLS server configuration built from `--tls-cert` and
//! `--tls-key`, checked at start-up so a missing, unreadable or mismatched
//! file stops antenne with a message naming the file and the fix, rather
//! than failing each publisher's handshake later.
//!
//! Invariants: the certificate chain is non-empty and the key is the one of
//! its first certificate (rustls compares the public keys); only TLS 1.2
//! and 1.3 with rustls's safe defaults (ring provider) are offered.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
pub use tokio_rustls::TlsAcceptor;

/// Reads `cert` (PEM chain, server certificate first) and `key` (PEM
/// private key: PKCS#8, PKCS#1 or SEC1) into an acceptor.
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let cert_pem = std::fs::read(cert)
        .with_context(|| format!("cannot read the TLS certificate file {}", cert.display()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("invalid PEM in the TLS certificate file {}", cert.display()))?;
    if chain.is_empty() {
        bail!(
            "no certificate (-----BEGIN CERTIFICATE-----) in the TLS certificate file {}",
            cert.display()
        );
    }
    let key_pem = std::fs::read(key)
        .with_context(|| format!("cannot read the TLS key file {}", key.display()))?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => anyhow::anyhow!(
            "no private key (-----BEGIN PRIVATE KEY-----) in the TLS key file {}",
            key.display()
        ),
        e => anyhow::anyhow!("invalid PEM in the TLS key file {}: {e}", key.display()),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS set-up")?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => anyhow::anyhow!(
                "the TLS key {} does not belong to the certificate {} (give the key the \
                 certificate was issued for)",
                key.display(),
                cert.display()
            ),
            e => anyhow::anyhow!(
                "cannot use the TLS certificate {} with the key {}: {e}",
                cert.display(),
                key.display()
            ),
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_certificate_file_is_named_in_the_error() {
        let dir = std::env::temp_dir().join(format!("antenne-tls-{}", std::process::id()));
        let cert = dir.join("missing-cert.pem");
        let key = dir.join("missing-key.pem");
        let e = acceptor(&cert, &key).err().expect("an error").to_string();
        assert!(e.contains("cannot read the TLS certificate file"), "{e}");
        assert!(e.contains("missing-cert.pem"), "{e}");
    }

    #[test]
    fn a_file_without_a_certificate_is_refused() {
        let dir = std::env::temp_dir().join(format!("antenne-tls-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let cert = dir.join("cert.pem");
        std::fs::write(&cert, "not a certificate\n").expect("write");
        let e = acceptor(&cert, &cert).err().expect("an error").to_string();
        assert!(e.contains("no certificate"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
