//! The RTMP ingest: where OBS publishes `rtmp://HOST:1935/live/<key>`.
//!
//! One task per connection drives a sans-IO [`ServerSession`]. The session
//! bounds memory (tight limits until a key is checked, media limits after);
//! this layer bounds time and slots, whatever the client does:
//! - each connection is in a [`Stage`] with its own deadline: handshake and
//!   `connect` within [`CONNECT_DEADLINE`], `publish` with a valid key
//!   within [`PUBLISH_DEADLINE`] of the connection's start, then
//!   [`IDLE_TIMEOUT`] of silence ends a publisher; after a publisher ends
//!   its stream the connection may publish again within
//!   [`REPUBLISH_WINDOW`] or is closed quietly;
//! - every socket write has a deadline ([`WRITE_TIMEOUT`], and no later
//!   than the stage's deadline), so a client that stops reading cannot
//!   hold its slot;
//! - [`MAX_CONNECTIONS`] in all, of which at most [`MAX_PENDING`] that have
//!   not published yet, at most [`MAX_PENDING_PER_ADDRESS`] of them from
//!   one address; refusals are logged once per address every
//!   [`REFUSAL_REPORT_PERIOD`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use antenne_rtmp::{ServerConfig, ServerEvent, ServerSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout_at, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use crate::history::{EventKind, History};
use crate::hub::{Hub, PublishGuard};

mod admission;
use admission::{Admission, Refusals, Slot};

/// The only application name antenne serves.
pub const APP: &str = "live";
/// A connection must have completed the handshake and `connect` by then
/// (OBS and ffmpeg take a few milliseconds).
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(5);
/// A connection must have started publishing by then (counted from its
/// start).
pub const PUBLISH_DEADLINE: Duration = Duration::from_secs(15);
/// A publisher silent for this long is gone.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// After a publisher ended its stream (FCUnpublish, deleteStream), how long
/// its connection may stay open without publishing again.
pub const REPUBLISH_WINDOW: Duration = Duration::from_secs(10);
/// Longest a write to a client may wait for it to read.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent ingest connections, publishing or not.
pub const MAX_CONNECTIONS: usize = 128;
/// Concurrent connections that have not published with a valid key yet:
/// the rest of [`MAX_CONNECTIONS`] stays for publishers.
pub const MAX_PENDING: usize = 64;
/// Concurrent connections that have not published yet from one address
/// (IPv4) or /64 (IPv6).
pub const MAX_PENDING_PER_ADDRESS: usize = 8;
/// Refused connections are logged in one line per address this often.
pub const REFUSAL_REPORT_PERIOD: Duration = Duration::from_secs(10);

pub use crate::hub::Hubs;

/// Accepts publishers until `cancel` fires.
pub async fn serve(listener: TcpListener, hubs: Hubs, history: History, cancel: CancellationToken) {
    let admission = Admission::new(MAX_CONNECTIONS, MAX_PENDING, MAX_PENDING_PER_ADDRESS);
    let mut refusals = Refusals::default();
    let mut report = tokio::time::interval(REFUSAL_REPORT_PERIOD);
    report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (socket, peer) = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = report.tick() => {
                refusals.report(REFUSAL_REPORT_PERIOD.as_secs());
                continue;
            }
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    warn!(error = %e, "ingest accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let slot = match admission.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                refusals.note(peer.ip(), why);
                continue;
            }
        };
        let hubs = hubs.clone();
        let history = history.clone();
        let cancel = cancel.clone();
        let span = tracing::info_span!("ingest", %peer);
        tokio::spawn(
            async move {
                match handle(socket, peer, slot, hubs, &history, cancel).await {
                    Ok(()) => debug!("connection closed"),
                    Err(reason) => warn!(%reason, "ingest connection closed"),
                }
            }
            .instrument(span),
        );
    }
}

/// Where a connection stands; each stage has its own time rule.
enum Stage {
    /// Handshake and `connect`: done by `start + CONNECT_DEADLINE`.
    Connecting,
    /// Connected, not publishing yet: publishes by `start + PUBLISH_DEADLINE`.
    Connected,
    /// Publishing: closed after `IDLE_TIMEOUT` of silence.
    Live(Live),
    /// Published, then ended its stream at `since`: may publish again
    /// within `REPUBLISH_WINDOW`, else closed quietly (not an error: OBS and
    /// GStreamer close on their own right after).
    Ended { since: Instant },
}

/// What happens when a stage's deadline passes.
enum Expiry {
    Fail(String),
    Quiet,
}

impl Stage {
    /// When the next bytes must have arrived, and what passing it means.
    fn read_deadline(&self, start: Instant) -> (Instant, Expiry) {
        match self {
            Stage::Connecting => (
                start + CONNECT_DEADLINE,
                Expiry::Fail(format!(
                    "did not connect within {} s",
                    CONNECT_DEADLINE.as_secs()
                )),
            ),
            Stage::Connected => (
                start + PUBLISH_DEADLINE,
                Expiry::Fail(format!(
                    "did not publish within {} s",
                    PUBLISH_DEADLINE.as_secs()
                )),
            ),
            Stage::Live(_) => (
                Instant::now() + IDLE_TIMEOUT,
                Expiry::Fail(format!(
                    "publisher sent nothing for {} s",
                    IDLE_TIMEOUT.as_secs()
                )),
            ),
            Stage::Ended { since } => (*since + REPUBLISH_WINDOW, Expiry::Quiet),
        }
    }

    /// Latest a write may finish: `WRITE_TIMEOUT` from now, and before a
    /// connection that has not published reaches its deadline.
    fn write_deadline(&self, start: Instant) -> Instant {
        let write = Instant::now() + WRITE_TIMEOUT;
        match self {
            Stage::Connecting | Stage::Connected => write.min(self.read_deadline(start).0),
            Stage::Live(_) | Stage::Ended { .. } => write,
        }
    }

    fn hub(&self) -> Option<&Arc<Hub>> {
        match self {
            Stage::Live(live) => Some(live.guard.hub()),
            _ => None,
        }
    }
}

/// Sends what the session has to say, by `deadline`.
async fn send(
    socket: &mut TcpStream,
    session: &mut ServerSession,
    deadline: Instant,
) -> Result<(), String> {
    if let Some(out) = session.take_output() {
        match timeout_at(deadline, socket.write_all(&out)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("write failed: {e}")),
            Err(_) => return Err("the client stopped reading what antenne sends".into()),
        }
    }
    Ok(())
}

async fn handle(
    socket: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    hubs: Hubs,
    history: &History,
    cancel: CancellationToken,
) -> Result<(), String> {
    let start = Instant::now();
    tokio::select! {
        // Dropping the connection's future drops its socket and session.
        _ = cancel.cancelled() => Ok(()),
        r = drive(socket, peer, slot, hubs, history, start) => r,
    }
}

/// The connection from its first byte to its end.
async fn drive(
    mut socket: TcpStream,
    peer: SocketAddr,
    mut slot: Slot,
    hubs: Hubs,
    history: &History,
    start: Instant,
) -> Result<(), String> {
    let _ = socket.set_nodelay(true);
    let mut session = ServerSession::new(
        ServerConfig::default(),
        antenne_rtmp::handshake::random_packet(),
    );
    let mut buf = vec![0u8; 64 * 1024];
    let mut stage = Stage::Connecting;
    loop {
        let (deadline, expiry) = stage.read_deadline(start);
        let n = match timeout_at(deadline, socket.read(&mut buf)).await {
            Err(_) => {
                return match expiry {
                    Expiry::Fail(reason) => Err(reason),
                    Expiry::Quiet => {
                        debug!(
                            "closed {} s after the publisher ended its stream",
                            REPUBLISH_WINDOW.as_secs()
                        );
                        Ok(())
                    }
                }
            }
            Ok(Err(e)) => return Err(format!("read failed: {e}")),
            Ok(Ok(0)) => {
                if matches!(stage, Stage::Live(_)) {
                    info!("publisher disconnected");
                }
                return Ok(());
            }
            Ok(Ok(n)) => n,
        };
        session.feed(&buf[..n]).map_err(|e| e.to_string())?;
        loop {
            while let Some(event) = session.poll_event() {
                match event {
                    ServerEvent::ConnectRequested { app, .. } => {
                        if app == APP {
                            session.accept_connect();
                            stage = Stage::Connected;
                        } else {
                            session
                                .reject_connect("unknown application: use rtmp://HOST:PORT/live");
                            send(&mut socket, &mut session, stage.write_deadline(start)).await?;
                            return Err(format!("refused application {:?}", truncate(&app)));
                        }
                    }
                    ServerEvent::PublishRequested { stream_key } => {
                        let Some(hub) = hubs.find(&stream_key) else {
                            session
                                .reject_publish("NetStream.Publish.BadName", "invalid stream key");
                            send(&mut socket, &mut session, stage.write_deadline(start)).await?;
                            return Err(format!(
                                "refused publish with a wrong stream key ({})",
                                crate::secret::mask(&stream_key)
                            ));
                        };
                        match hub.start_publish(peer) {
                            Ok(guard) => {
                                info!(key = %hub.key(), "publisher live");
                                history.record(
                                    EventKind::IngestLive,
                                    None,
                                    format!("publisher {peer} live on ingest key {}", hub.key()),
                                    None,
                                );
                                session.accept_publish();
                                slot.published();
                                stage = Stage::Live(Live {
                                    guard,
                                    history: history.clone(),
                                });
                            }
                            Err(e) => {
                                session.reject_publish(
                                    "NetStream.Publish.BadName",
                                    "this stream key is already live",
                                );
                                send(&mut socket, &mut session, stage.write_deadline(start))
                                    .await?;
                                return Err(format!("refused second publisher: {e}"));
                            }
                        }
                    }
                    ServerEvent::Metadata { body } => {
                        if let Some(hub) = stage.hub() {
                            hub.push_metadata(body);
                        }
                    }
                    ServerEvent::Audio { timestamp, payload } => {
                        if let Some(hub) = stage.hub() {
                            hub.push_audio(timestamp, payload);
                        }
                    }
                    ServerEvent::Video { timestamp, payload } => {
                        if let Some(hub) = stage.hub() {
                            hub.push_video(timestamp, payload);
                        }
                    }
                    ServerEvent::PublishEnded => {
                        if matches!(stage, Stage::Live(_)) {
                            info!("publisher ended the stream");
                            stage = Stage::Ended {
                                since: Instant::now(),
                            };
                        }
                    }
                    ServerEvent::PlayRefused { .. } => {
                        debug!("play request refused (antenne does not serve playback)");
                    }
                }
            }
            if let Some(hub) = stage.hub() {
                hub.flush();
            }
            send(&mut socket, &mut session, stage.write_deadline(start)).await?;
            // Decode what followed a decision (connect, publish).
            session.resume().map_err(|e| e.to_string())?;
            if !session.has_events() {
                send(&mut socket, &mut session, stage.write_deadline(start)).await?;
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
            EventKind::IngestOffline,
            None,
            format!("publisher left ingest key {}", self.guard.hub().key()),
            None,
        );
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}
