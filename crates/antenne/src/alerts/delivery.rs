//! Sending one alert to one webhook: an HTTP/1.1 POST with hyper's client
//! (already in the tree through axum), over TCP or TLS (rustls, the same
//! trust roots as rtmps destinations), each step under a deadline; and the
//! retry loop: a failure that may pass (network, 5xx, 408, 429) is retried
//! with [`Backoff`] for up to [`GIVE_UP_AFTER`], then dropped (the caller
//! records it in the history). Redirects are not followed.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::message::{signature, Alert, Format};
use crate::backoff::Backoff;
use crate::store::StoredWebhook;

/// A connection, TLS handshake, request and answer, together, at most.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// A failing webhook is retried for this long, then the alert is dropped.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(180);
/// The retry backoff: 1 s, doubling, at most 30 s.
pub const RETRY_BACKOFF: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("invalid webhook URL: {0}")]
    BadUrl(String),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("HTTP: {0}")]
    Http(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the receiver answered {0}")]
    Status(u16),
}

impl DeliveryError {
    /// Whether trying again may help.
    pub fn is_retryable(&self) -> bool {
        match self {
            DeliveryError::BadUrl(_) => false,
            DeliveryError::Status(code) => *code >= 500 || *code == 408 || *code == 429,
            _ => true,
        }
    }
}

/// Checks a webhook URL: `http` or `https`, with a host.
pub fn parse_url(url: &str) -> Result<Uri, DeliveryError> {
    let uri: Uri = url
        .trim()
        .parse()
        .map_err(|e| DeliveryError::BadUrl(format!("{e}")))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => {
            return Err(DeliveryError::BadUrl(
                "it must start with http:// or https://".into(),
            ))
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(DeliveryError::BadUrl("no host".into()));
    }
    Ok(uri)
}

/// The request body and headers for `webhook` (signed when generic).
fn request(
    webhook: &StoredWebhook,
    uri: &Uri,
    alert: &Alert,
) -> Result<Request<axum::body::Body>, DeliveryError> {
    let format = Format::from_name(&webhook.format).unwrap_or(Format::Generic);
    let body = alert.body(format);
    let host = match uri.port_u16() {
        Some(p) => format!("{}:{p}", uri.host().unwrap_or_default()),
        None => uri.host().unwrap_or_default().to_owned(),
    };
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::HOST, host)
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            header::USER_AGENT,
            concat!("antenne/", env!("CARGO_PKG_VERSION")),
        )
        .header("x-antenne-event", alert.event.as_str());
    if format == Format::Generic {
        req = req.header("x-antenne-signature", signature(&webhook.secret, &body));
    }
    req.body(axum::body::Body::from(body))
        .map_err(|e| DeliveryError::BadUrl(e.to_string()))
}

/// One attempt: Ok when the receiver answered 2xx.
pub async fn attempt(
    webhook: &StoredWebhook,
    alert: &Alert,
    tls: Arc<rustls::ClientConfig>,
) -> Result<u16, DeliveryError> {
    let uri = parse_url(&webhook.url)?;
    let req = request(webhook, &uri, alert)?;
    let send = async {
        let https = uri.scheme_str() == Some("https");
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| DeliveryError::Connect(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        if https {
            let name = rustls_pki_types::ServerName::try_from(host.clone())
                .map_err(|e| DeliveryError::BadUrl(e.to_string()))?;
            let tls = TlsConnector::from(tls)
                .connect(name, tcp)
                .await
                .map_err(|e| DeliveryError::Tls(e.to_string()))?;
            send_on(TokioIo::new(tls), req).await
        } else {
            send_on(TokioIo::new(tcp), req).await
        }
    };
    let status = tokio::time::timeout(ATTEMPT_TIMEOUT, send)
        .await
        .map_err(|_| DeliveryError::Timeout(ATTEMPT_TIMEOUT))??;
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(DeliveryError::Status(status))
    }
}

async fn send_on<IO>(io: IO, req: Request<axum::body::Body>) -> Result<u16, DeliveryError>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| DeliveryError::Http(e.to_string()))?;
    // The connection is driven beside the request; it ends with it.
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let res = sender
        .send_request(req)
        .await
        .map_err(|e| DeliveryError::Http(e.to_string()));
    driver.abort();
    Ok(res?.status().as_u16())
}

/// Delivers with retries; the error of the last attempt when it gave up.
pub async fn deliver(
    webhook: &StoredWebhook,
    alert: &Alert,
    tls: Arc<rustls::ClientConfig>,
    give_up_after: Duration,
) -> Result<(), DeliveryError> {
    let deadline = tokio::time::Instant::now() + give_up_after;
    let mut backoff = RETRY_BACKOFF;
    loop {
        match attempt(webhook, alert, tls.clone()).await {
            Ok(_) => return Ok(()),
            Err(e) if !e.is_retryable() => return Err(e),
            Err(e) => {
                let delay = backoff.next_delay();
                if tokio::time::Instant::now() + delay > deadline {
                    return Err(e);
                }
                tracing::debug!(webhook = %webhook.id, error = %e, ?delay, "alert not delivered: retrying");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_http_and_https_urls_only() {
        assert!(parse_url("https://discord.com/api/webhooks/1/abc").is_ok());
        assert!(parse_url("http://127.0.0.1:9000/hook?x=1").is_ok());
        for bad in ["ftp://x/", "discord.com/hook", "", "http://"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_errors_are_retried_and_client_errors_are_not() {
        assert!(DeliveryError::Status(500).is_retryable());
        assert!(DeliveryError::Status(429).is_retryable());
        assert!(!DeliveryError::Status(404).is_retryable());
        assert!(DeliveryError::Connect("refused".into()).is_retryable());
    }
}
