//! Dialling an RTMP server, plain or over TLS: resolve the host, connect
//! over TCP to each address in turn, then TLS for `rtmps://`. The one way
//! antenne reaches a server, for destinations ([`super::connection`]) and
//! for pulls ([`crate::ingest::pull`]).
//!
//! Invariant: the socket's kernel send buffer is [`SEND_BUFFER`] (what a
//! stalled platform may hold in the kernel stays small: the backlog stays
//! in the hub's bounded queue), and Nagle's algorithm stays on.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::url::Target;

/// A connection to a server: TCP, or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Kernel send buffer per connection. Linux doubles it; ~1 MiB holds
/// over a second of a 6 Mbit/s stream, plenty for the bandwidth-delay
/// product to a CDN, while keeping a stalled platform's backlog in the hub
/// queue (bounded, skips to keyframes) rather than in autotuned kernel
/// buffers of up to 4 MiB per socket.
const SEND_BUFFER: u32 = 512 * 1024;

/// Why dialling failed. The text is what the user sees.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("cannot resolve host {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("connection refused by {0}")]
    Refused(String),
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("TLS with {host} failed: {reason}")]
    Tls { host: String, reason: String },
}

/// Where [`dial`] is, for a timeout message that says where it got stuck.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialStep {
    Connecting,
    Tls,
}

/// Connects to `target` (over TLS when `secure`), reporting each step to
/// `step`. Returns the connection and the address it reached.
pub async fn dial(
    target: &Target,
    secure: bool,
    tls: &Arc<rustls::ClientConfig>,
    step: impl Fn(DialStep),
) -> Result<(Box<dyn Io>, SocketAddr), DialError> {
    let addr = format!("{}:{}", target.host, target.port);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| DialError::Resolve {
            host: target.host.clone(),
            reason: e.to_string(),
        })?
        .collect();
    let mut last = DialError::Resolve {
        host: target.host.clone(),
        reason: "no address".into(),
    };
    step(DialStep::Connecting);
    let mut tcp = None;
    for a in addrs {
        match connect_tcp(a).await {
            Ok(s) => {
                tcp = Some((s, a));
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = DialError::Refused(addr.clone());
            }
            Err(e) => {
                last = DialError::Connect {
                    addr: addr.clone(),
                    reason: e.to_string(),
                }
            }
        }
    }
    let Some((tcp, peer)) = tcp else {
        return Err(last);
    };
    // Nagle's algorithm stays on: a small audio frame waits for the next
    // frame while data is in flight, rather than costing a TCP segment
    // (and a wake-up of the receiver) of its own. Platforms buffer
    // seconds; the few milliseconds do not matter, and the relay costs
    // markedly less CPU per destination.
    if !secure {
        return Ok((Box::new(tcp), peer));
    }
    step(DialStep::Tls);
    let tls_error = |reason: String| DialError::Tls {
        host: target.host.clone(),
        reason,
    };
    let name = ServerName::try_from(target.host.clone()).map_err(|e| tls_error(e.to_string()))?;
    let stream = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| tls_error(super::tls::explain(&e)))?;
    Ok((Box::new(stream), peer))
}

async fn connect_tcp(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    let _ = socket.set_send_buffer_size(SEND_BUFFER);
    socket.connect(addr).await
}
