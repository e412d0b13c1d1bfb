//! The RTMP ingest: where OBS publishes `rtmp://HOST:1935/live/<key>`, and
//! with `--rtmps-listen` also `rtmps://HOST:1936/live/<key>` (TLS).
//!
//! One task per connection drives a sans-IO [`ServerSession`] over any
//! byte stream (a TCP socket, or TLS over one: the same code for both).
//! The session bounds memory (tight limits until a key is checked, media
//! limits after); this layer bounds time and slots, whatever the client
//! does:
//! - each connection is in a [`Stage`] with its own deadline: handshake and
//!   `connect` within [`CONNECT_DEADLINE`] (for RTMPS the TLS handshake
//!   too, in the same deadline and the same pending slot), `publish` with
//!   a valid key within [`PUBLISH_DEADLINE`] of the connection's start, then
//!   [`IDLE_TIMEOUT`] of silence ends a publisher; after a publisher ends
//!   its stream the connection may publish again within
//!   [`REPUBLISH_WINDOW`] or is closed quietly;
//! - every socket write has a deadline ([`WRITE_TIMEOUT`], and no later
//!   than the stage's deadline), so a client that stops reading cannot
//!   hold its slot;
//! - [`MAX_CONNECTIONS`] in all, of which at most [`MAX_PENDING`] that have
//!   not published yet, at most [`MAX_PENDING_PER_ADDRESS`] of them from
//!   one address; refusals are logged once per address every
//!   [`REFUSAL_REPORT_PERIOD`] (a timer armed by the first refusal after
//!   a report, none while nothing is refused). RTMP and RTMPS share these
//!   caps.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use antenne_rtmp::{ServerConfig, ServerEvent, ServerSession};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout_at, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use crate::history::{EventKind, History};
use crate::hub::{Hub, PublishGuard};

mod admission;
pub mod pull;
pub mod srt;
pub mod tls;
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

/// The RTMPS listener: TCP connections that start with a TLS handshake.
pub struct Rtmps {
    pub listener: TcpListener,
    pub acceptor: tls::TlsAcceptor,
}

/// Accepts RTMP publishers until `cancel` fires.
pub async fn serve(listener: TcpListener, hubs: Hubs, history: History, cancel: CancellationToken) {
    serve_all(listener, None, hubs, history, cancel).await
}

/// Accepts RTMP publishers on `rtmp`, and RTMPS publishers on `rtmps` when
/// set, until `cancel` fires. Both share one [`Admission`].
pub async fn serve_all(
    rtmp: TcpListener,
    rtmps: Option<Rtmps>,
    hubs: Hubs,
    history: History,
    cancel: CancellationToken,
) {
    let admission = Admission::new(MAX_CONNECTIONS, MAX_PENDING, MAX_PENDING_PER_ADDRESS);
    let mut refusals = Refusals::default();
    // When the refusals since the last report are logged: armed by the
    // first one, so an ingest nobody attacks sets no timer.
    let mut report_at: Option<Instant> = None;
    loop {
        let (accepted, acceptor) = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep_until(report_at.unwrap_or_else(Instant::now)),
                if report_at.is_some() => {
                refusals.report(REFUSAL_REPORT_PERIOD.as_secs());
                report_at = None;
                continue;
            }
            r = rtmp.accept() => (r, None),
            r = accept_tls(rtmps.as_ref()) => (r, rtmps.as_ref().map(|t| t.acceptor.clone())),
        };
        let (socket, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "ingest accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let slot = match admission.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                refusals.note(peer.ip(), why);
                report_at.get_or_insert_with(|| Instant::now() + REFUSAL_REPORT_PERIOD);
                continue;
            }
        };
        let hubs = hubs.clone();
        let history = history.clone();
        let cancel = cancel.clone();
        let scheme = if acceptor.is_some() { "rtmps" } else { "rtmp" };
        let span = tracing::info_span!("ingest", %peer, scheme);
        tokio::spawn(
            async move {
                let conn = Conn {
                    peer,
                    slot,
                    hubs,
                    history: &history,
                    start: Instant::now(),
                };
                match handle(socket, acceptor, conn, cancel).await {
                    Ok(()) => debug!("connection closed"),
                    Err(reason) => warn!(%reason, "ingest connection closed"),
                }
            }
            .instrument(span),
        );
    }
}

/// The next connection on the RTMPS listener; never, without one.
async fn accept_tls(rtmps: Option<&Rtmps>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match rtmps {
        Some(t) => t.listener.accept().await,
        None => std::future::pending().await,
    }
}

/// What a connection carries besides its stream.
struct Conn<'a> {
    peer: SocketAddr,
    slot: Slot,
    hubs: Hubs,
    history: &'a History,
    /// When it was accepted: the stage deadlines count from here.
    start: Instant,
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
    /// When the next bytes must have arrived (a wait that begins now).
    fn read_deadline(&self, start: Instant) -> Instant {
        match self {
            Stage::Connecting => start + CONNECT_DEADLINE,
            Stage::Connected => start + PUBLISH_DEADLINE,
            Stage::Live(_) => Instant::now() + IDLE_TIMEOUT,
            Stage::Ended { since } => *since + REPUBLISH_WINDOW,
        }
    }

    /// What passing the read deadline means.
    fn expiry(&self) -> Expiry {
        match self {
            Stage::Connecting => Expiry::Fail(format!(
                "did not connect within {} s",
                CONNECT_DEADLINE.as_secs()
            )),
            Stage::Connected => Expiry::Fail(format!(
                "did not publish within {} s",
                PUBLISH_DEADLINE.as_secs()
            )),
            Stage::Live(_) => Expiry::Fail(format!(
                "publisher sent nothing for {} s",
                IDLE_TIMEOUT.as_secs()
            )),
            Stage::Ended { .. } => Expiry::Quiet,
        }
    }

    /// Latest a write may finish: `WRITE_TIMEOUT` from now, and before a
    /// connection that has not published reaches its deadline.
    fn write_deadline(&self, start: Instant) -> Instant {
        let write = Instant::now() + WRITE_TIMEOUT;
        match self {
            Stage::Connecting | Stage::Connected => write.min(self.read_deadline(start)),
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
async fn send<S: AsyncWrite + Unpin>(
    socket: &mut S,
    session: &mut ServerSession,
    deadline: Instant,
) -> Result<(), String> {
    if let Some(out) = session.take_output() {
        // The flush pushes out what TLS still holds (a no-op for TCP).
        let write = async {
            socket.write_all(&out).await?;
            socket.flush().await
        };
        match timeout_at(deadline, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("write failed: {e}")),
            Err(_) => return Err("the client stopped reading what antenne sends".into()),
        }
    }
    Ok(())
}

async fn handle(
    socket: TcpStream,
    acceptor: Option<tls::TlsAcceptor>,
    conn: Conn<'_>,
    cancel: CancellationToken,
) -> Result<(), String> {
    let _ = socket.set_nodelay(true);
    let run = async {
        match acceptor {
            None => drive(socket, conn).await,
            Some(acceptor) => {
                // The handshake is part of connecting: same deadline, and
                // the connection holds its pending slot meanwhile.
                let deadline = conn.start + CONNECT_DEADLINE;
                let tls = match timeout_at(deadline, acceptor.accept(socket)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => return Err(format!("TLS handshake failed: {e}")),
                    Err(_) => {
                        return Err(format!(
                            "did not finish the TLS handshake within {} s",
                            CONNECT_DEADLINE.as_secs()
                        ))
                    }
                };
                drive(tls, conn).await
            }
        }
    };
    tokio::select! {
        // Dropping the connection's future drops its socket and session.
        _ = cancel.cancelled() => Ok(()),
        r = run => r,
    }
}

/// The connection from its first byte to its end.
async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    mut socket: S,
    conn: Conn<'_>,
) -> Result<(), String> {
    let Conn {
        peer,
        mut slot,
        hubs,
        history,
        start,
    } = conn;
    let mut session = ServerSession::new(
        ServerConfig::default(),
        antenne_rtmp::handshake::random_packet(),
    );
    let mut buf = vec![0u8; 64 * 1024];
    let mut stage = Stage::Connecting;
    // One timer for the read deadline, moved only when it fires or must
    // come sooner: a fresh timeout per read cost a timer-wheel insertion
    // and removal per read. The deadline is the same: the stage's, counted
    // from when the wait began.
    let timer = tokio::time::sleep_until(stage.read_deadline(start));
    tokio::pin!(timer);
    loop {
        let deadline = stage.read_deadline(start);
        if deadline < timer.deadline() {
            timer.as_mut().reset(deadline);
        }
        let read = loop {
            tokio::select! {
                biased;
                r = socket.read(&mut buf) => break Some(r),
                () = &mut timer => {
                    if Instant::now() >= deadline {
                        break None;
                    }
                    timer.as_mut().reset(deadline);
                }
            }
        };
        let n = match read {
            None => {
                return match stage.expiry() {
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
            Some(Err(e)) => return Err(format!("read failed: {e}")),
            Some(Ok(0)) => {
                if matches!(stage, Stage::Live(_)) {
                    info!("publisher disconnected");
                }
                return Ok(());
            }
            Some(Ok(n)) => n,
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
