//! The RTMP ingest: where OBS publishes `rtmp://HOST:1935/live/<key>`.
//!
//! One task per connection drives a sans-IO [`ServerSession`]. The session
//! is bounded (message size, chunk streams, AMF0 depth); this layer adds
//! time limits (a connection must publish within [`PUBLISH_DEADLINE`] and
//! a publisher that sends nothing for [`IDLE_TIMEOUT`] is dropped) and a cap
//! on concurrent connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use antenne_rtmp::{ServerConfig, ServerEvent, ServerSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use crate::history::History;
use crate::hub::PublishGuard;

/// The only application name antenne serves.
pub const APP: &str = "live";
/// A connection must have started publishing by then.
pub const PUBLISH_DEADLINE: Duration = Duration::from_secs(15);
/// A publisher silent for this long is gone.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// Concurrent ingest connections, publishing or not.
pub const MAX_CONNECTIONS: usize = 128;

pub use crate::hub::Hubs;

/// Accepts publishers until `cancel` fires.
pub async fn serve(listener: TcpListener, hubs: Hubs, history: History, cancel: CancellationToken) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (socket, peer) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    warn!(error = %e, "ingest accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            warn!(%peer, "too many ingest connections: refused");
            continue;
        };
        let hubs = hubs.clone();
        let history = history.clone();
        let cancel = cancel.clone();
        let span = tracing::info_span!("ingest", %peer);
        tokio::spawn(
            async move {
                match handle(socket, peer, hubs, &history, cancel).await {
                    Ok(()) => debug!("connection closed"),
                    Err(reason) => warn!(%reason, "ingest connection closed"),
                }
                drop(permit);
            }
            .instrument(span),
        );
    }
}

async fn send(socket: &mut TcpStream, session: &mut ServerSession) -> Result<(), String> {
    if let Some(out) = session.take_output() {
        socket
            .write_all(&out)
            .await
            .map_err(|e| format!("write failed: {e}"))?;
    }
    Ok(())
}

async fn handle(
    mut socket: TcpStream,
    peer: SocketAddr,
    hubs: Hubs,
    history: &History,
    cancel: CancellationToken,
) -> Result<(), String> {
    let _ = socket.set_nodelay(true);
    let mut session = ServerSession::new(
        ServerConfig::default(),
        antenne_rtmp::handshake::random_packet(),
    );
    let mut buf = vec![0u8; 64 * 1024];
    let mut publishing: Option<Live> = None;
    let deadline = tokio::time::Instant::now() + PUBLISH_DEADLINE;
    loop {
        let limit = if publishing.is_some() {
            IDLE_TIMEOUT
        } else {
            deadline.saturating_duration_since(tokio::time::Instant::now())
        };
        let n = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            r = timeout(limit, socket.read(&mut buf)) => match r {
                Err(_) if publishing.is_some() => return Err(format!("publisher sent nothing for {} s", IDLE_TIMEOUT.as_secs())),
                Err(_) => return Err(format!("did not publish within {} s", PUBLISH_DEADLINE.as_secs())),
                Ok(Err(e)) => return Err(format!("read failed: {e}")),
                Ok(Ok(0)) => {
                    if publishing.is_some() {
                        info!("publisher disconnected");
                    }
                    return Ok(());
                }
                Ok(Ok(n)) => n,
            },
        };
        session.feed(&buf[..n]).map_err(|e| e.to_string())?;
        loop {
            while let Some(event) = session.poll_event() {
                match event {
                    ServerEvent::ConnectRequested { app, .. } => {
                        if app == APP {
                            session.accept_connect();
                        } else {
                            session
                                .reject_connect("unknown application: use rtmp://HOST:PORT/live");
                            send(&mut socket, &mut session).await?;
                            return Err(format!("refused application {:?}", truncate(&app)));
                        }
                    }
                    ServerEvent::PublishRequested { stream_key } => {
                        let Some(hub) = hubs.find(&stream_key) else {
                            session
                                .reject_publish("NetStream.Publish.BadName", "invalid stream key");
                            send(&mut socket, &mut session).await?;
                            return Err(format!(
                                "refused publish with a wrong stream key ({})",
                                crate::secret::mask(&stream_key)
                            ));
                        };
                        match hub.start_publish(peer) {
                            Ok(guard) => {
                                info!(key = %hub.key(), "publisher live");
                                history.record(
                                    "ingest_live",
                                    None,
                                    format!("publisher {peer} live on ingest key {}", hub.key()),
                                    None,
                                );
                                session.accept_publish();
                                publishing = Some(Live {
                                    guard,
                                    history: history.clone(),
                                });
                            }
                            Err(e) => {
                                session.reject_publish(
                                    "NetStream.Publish.BadName",
                                    "this stream key is already live",
                                );
                                send(&mut socket, &mut session).await?;
                                return Err(format!("refused second publisher: {e}"));
                            }
                        }
                    }
                    ServerEvent::Metadata { body } => {
                        if let Some(p) = &publishing {
                            p.guard.hub().push_metadata(body);
                        }
                    }
                    ServerEvent::Audio { timestamp, payload } => {
                        if let Some(p) = &publishing {
                            p.guard.hub().push_audio(timestamp, payload);
                        }
                    }
                    ServerEvent::Video { timestamp, payload } => {
                        if let Some(p) = &publishing {
                            p.guard.hub().push_video(timestamp, payload);
                        }
                    }
                    ServerEvent::PublishEnded => {
                        if publishing.take().is_some() {
                            info!("publisher ended the stream");
                        }
                    }
                    ServerEvent::PlayRefused { .. } => {
                        debug!("play request refused (antenne does not serve playback)");
                    }
                }
            }
            if let Some(p) = &publishing {
                p.guard.hub().flush();
            }
            send(&mut socket, &mut session).await?;
            // Decode what followed a decision (connect, publish).
            session.resume().map_err(|e| e.to_string())?;
            if !session.has_events() {
                send(&mut socket, &mut session).await?;
                break;
            }
        }
    }
}

/// A live publisher session; records its end in the history.
struct Live {
    guard: PublishGuard,
    history: History,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.history.record(
            "ingest_offline",
            None,
            format!("publisher left ingest key {}", self.guard.hub().key()),
            None,
        );
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}
