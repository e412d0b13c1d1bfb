//! What a failed TLS handshake means, in words a streamer can act on:
//! rustls's certificate errors (unknown issuer, expired, wrong name, a CA
//! certificate presented as the server's) become a sentence saying what is
//! wrong and, where the fix is known, how to fix it. Verification itself is
//! untouched: these texts only explain a refusal.

use std::time::Duration;

/// The text for a failed TLS handshake (`e` from tokio-rustls).
pub fn explain(e: &std::io::Error) -> String {
    use rustls::{CertificateError, Error as TlsError};
    let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<TlsError>()) else {
        return e.to_string();
    };
    match inner {
        TlsError::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "the server's certificate is not signed by a trusted authority (unknown issuer)".into()
        }
        TlsError::InvalidCertificate(CertificateError::Expired) => {
            "the server's certificate has expired".into()
        }
        TlsError::InvalidCertificate(CertificateError::ExpiredContext { not_after, .. }) => {
            let day = std::time::UNIX_EPOCH + Duration::from_secs(not_after.as_secs());
            let day = humantime::format_rfc3339_seconds(day).to_string();
            format!(
                "the server's certificate has expired (valid until {})",
                day.get(..10).unwrap_or(&day)
            )
        }
        TlsError::InvalidCertificate(CertificateError::NotValidYet)
        | TlsError::InvalidCertificate(CertificateError::NotValidYetContext { .. }) => {
            "the server's certificate is not valid yet (is this machine's clock right?)".into()
        }
        TlsError::InvalidCertificate(CertificateError::NotValidForName) => {
            "the server's certificate is not valid for this host name".into()
        }
        TlsError::InvalidCertificate(CertificateError::NotValidForNameContext {
            presented,
            ..
        }) => {
            // rustls gives them as `DnsName("host")`.
            let mut names = presented
                .iter()
                .take(5)
                .map(|n| {
                    n.strip_prefix("DnsName(\"")
                        .and_then(|n| n.strip_suffix("\")"))
                        .unwrap_or(n)
                })
                .collect::<Vec<_>>()
                .join(", ");
            if presented.len() > 5 {
                names.push_str(", …");
            }
            if names.is_empty() {
                names = "no name".into();
            }
            format!("the server's certificate is not valid for this host name (it is for {names})")
        }
        TlsError::InvalidCertificate(CertificateError::Other(other))
            if other.0.to_string() == "CaUsedAsEndEntity" =>
        {
            // webpki's error, whose text is its variant name: matched by
            // text so as not to depend on webpki's version directly.
            CA_AS_SERVER_CERT.into()
        }
        other => other.to_string(),
    }
}

/// What the user sees for a CA certificate presented as a server
/// certificate (`basicConstraints CA:TRUE`): what plain
/// `openssl req -x509` makes. Refused, as every TLS client should.
pub const CA_AS_SERVER_CERT: &str = "the server presents a CA certificate \
     (basicConstraints CA:TRUE, what plain `openssl req -x509` makes) as its own certificate, \
     which TLS refuses; fix it on the server: issue its certificate from a CA (and trust \
     that CA with --extra-ca-file), or make the self-signed certificate with \
     `-addext basicConstraints=critical,CA:FALSE` and its host name in subjectAltName";

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Debug)]
    struct WebpkiLike(&'static str);
    impl std::fmt::Display for WebpkiLike {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for WebpkiLike {}

    fn tls_failure(other: &'static str) -> std::io::Error {
        let cert = rustls::CertificateError::Other(rustls::OtherError(Arc::new(WebpkiLike(other))));
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(cert),
        )
    }

    #[test]
    fn a_ca_certificate_used_as_server_certificate_is_explained_with_its_fix() {
        let text = explain(&tls_failure("CaUsedAsEndEntity"));
        assert_eq!(text, CA_AS_SERVER_CERT);
        assert!(text.contains("CA:FALSE") && text.contains("--extra-ca-file"));
        // Any other webpki error keeps its own text.
        assert!(explain(&tls_failure("UnsupportedSignatureAlgorithm"))
            .contains("UnsupportedSignatureAlgorithm"));
    }
}
