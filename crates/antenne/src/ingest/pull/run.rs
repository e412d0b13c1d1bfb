//! One pull's task: connect (TCP, TLS for rtmps; SRT in [`super::srt`]),
//! play, feed the hub, and on any failure wait with the one backoff and try
//! again, until stopped.
//!
//! Time limits: the connection must be playing within [`CONNECT_TIMEOUT`]
//! (resolving, TCP, TLS, RTMP handshake, connect, play, each counted in);
//! every write must finish within [`WRITE_TIMEOUT`]; a source that sends no
//! media for [`STALL`] is dropped and reconnected (whether it stalled or
//! nobody publishes there). The publish session on the hub lasts as long as
//! media flows: it starts at the first media message and ends when the
//! source says its publisher stopped, or when the connection ends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use antenne_rtmp::message::Status;
use antenne_rtmp::{PlayTarget, PlayerEvent, PlayerSession, SessionError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::{timeout, timeout_at, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::{PullSource, PullState, PullStatus};
use crate::history::{EventKind, History};
use crate::hub::{Hub, PublishGuard};
use crate::output::url::Target;

/// From the first byte to `NetStream.Play.Start`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// No media for this long: the source is dropped and reconnected.
pub const STALL: Duration = Duration::from_secs(20);
/// Longest a write to the source may take.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// A session that fed media this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(5);

/// Why an attempt ended. The text is what the user sees.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error("cannot resolve host {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("TLS with {host} failed: {reason}")]
    Tls { host: String, reason: String },
    #[error("timed out after {} s before the source started playing", CONNECT_TIMEOUT.as_secs())]
    ConnectTimeout,
    #[error("the source refused to play the stream: {}", describe(.0))]
    Rejected(Status),
    #[error("the source ended the stream: {}", describe(.0))]
    StreamFailed(Status),
    #[error("RTMP error from the source: {0}")]
    Protocol(#[from] SessionError),
    #[error("the source closed the connection")]
    Closed,
    #[error("connection lost: {0}")]
    Io(String),
    #[error("the source stopped reading what antenne sends")]
    WriteStalled,
    #[error("the source sent no media for {} s (nobody publishes there, or it stalled)", STALL.as_secs())]
    NoMedia,
    #[error("a publisher is live on this ingest key ({0}): the pull waits for it to stop")]
    Busy(SocketAddr),
    /// libsrt could not be loaded (the text says what to install).
    #[error("{0}")]
    SrtUnavailable(String),
}

use crate::output::connection::describe;

impl From<DialError> for AttemptError {
    fn from(e: DialError) -> Self {
        match e {
            DialError::Resolve { host, reason } => AttemptError::Resolve { host, reason },
            DialError::Refused(addr) => AttemptError::Connect {
                addr,
                reason: "connection refused".into(),
            },
            DialError::Connect { addr, reason } => AttemptError::Connect { addr, reason },
            DialError::Tls { host, reason } => AttemptError::Tls { host, reason },
        }
    }
}

fn io_error(e: std::io::Error) -> AttemptError {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => AttemptError::Closed,
        _ => AttemptError::Io(e.to_string()),
    }
}

use crate::output::dial::{dial, DialError, Io};

/// How long a stopped pull waits for its SRT thread to end its session.
const THREAD_STOP_WAIT: Duration = Duration::from_secs(2);

/// The pull's retry loop, until `cancel` fires; then waits (bounded) for
/// the dedicated threads of SRT attempts to end their publish session.
pub(super) async fn run(
    source: PullSource,
    hub: Arc<Hub>,
    tls: Arc<rustls::ClientConfig>,
    history: History,
    status: watch::Sender<PullStatus>,
    cancel: CancellationToken,
) {
    let threads = TaskTracker::new();
    retry(source, hub, tls, history, status, cancel, &threads).await;
    threads.close();
    let _ = timeout(THREAD_STOP_WAIT, threads.wait()).await;
}

async fn retry(
    source: PullSource,
    hub: Arc<Hub>,
    tls: Arc<rustls::ClientConfig>,
    history: History,
    status: watch::Sender<PullStatus>,
    cancel: CancellationToken,
    threads: &TaskTracker,
) {
    let url = source.redacted();
    let mut backoff = crate::output::supervisor::BACKOFF;
    let mut last_recorded: Option<String> = None;
    let set = |state: PullState| {
        if !cancel.is_cancelled() {
            status.send_modify(|s| s.state = state);
        }
    };
    loop {
        set(PullState::Connecting {
            attempt: backoff.failures() + 1,
        });
        let mut fed_since: Option<Instant> = None;
        let error = tokio::select! {
            _ = cancel.cancelled() => return,
            e = async {
                match &source {
                    PullSource::Rtmp(t) => attempt(t, false, &source, &hub, &tls, &history, &set, &mut fed_since).await,
                    PullSource::Rtmps(t) => attempt(t, true, &source, &hub, &tls, &history, &set, &mut fed_since).await,
                    PullSource::Srt(t) => super::srt::attempt(t, &source, &hub, &history, &set, &mut fed_since, &cancel, threads).await,
                }
            } => e,
        };
        if fed_since.is_some_and(|t| t.elapsed() >= STABLE_AFTER) {
            backoff.reset();
        }
        // What the source said may quote the stream name.
        let message = source.scrub(error.to_string());
        let delay = backoff.next_delay();
        warn!(url = %url, key = %hub.key(), attempt = backoff.failures(), retry_in_ms = delay.as_millis() as u64, error = %message, "pull failed");
        if last_recorded.as_deref() != Some(message.as_str()) {
            history.record(
                EventKind::Failed,
                None,
                format!("pull for ingest key {} from {url}: {message}", hub.key()),
                None,
            );
            last_recorded = Some(message.clone());
        }
        if !cancel.is_cancelled() {
            status.send_modify(|s| {
                s.reconnects += 1;
                s.last_error = Some(message.clone());
                s.state = PullState::Retrying {
                    attempt: backoff.failures(),
                    next_try: SystemTime::now() + delay,
                    error: message.clone(),
                };
            });
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// One RTMP(S) connection, from dialling to its end (always an error: a
/// pull never ends on its own).
#[allow(clippy::too_many_arguments)]
async fn attempt(
    target: &Target,
    secure: bool,
    source: &PullSource,
    hub: &Arc<Hub>,
    tls: &Arc<rustls::ClientConfig>,
    history: &History,
    set: &impl Fn(PullState),
    fed_since: &mut Option<Instant>,
) -> AttemptError {
    let (mut io, mut session, peer) =
        match timeout(CONNECT_TIMEOUT, open(target, secure, tls)).await {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => return e,
            Err(_) => return AttemptError::ConnectTimeout,
        };
    set(PullState::Waiting {
        since: SystemTime::now(),
    });
    let mut live: Option<Live> = None;
    let mut buf = vec![0u8; 64 * 1024];
    let mut last_media = Instant::now();
    loop {
        // What came with Play.Start is handled before the first read.
        let mut fed = false;
        while let Some(event) = session.poll_event() {
            let media = matches!(
                event,
                PlayerEvent::Metadata { .. }
                    | PlayerEvent::Audio { .. }
                    | PlayerEvent::Video { .. }
            );
            if media && live.is_none() {
                match Live::start(hub, peer, source, history) {
                    Ok(l) => {
                        set(PullState::Live {
                            since: SystemTime::now(),
                        });
                        *fed_since = Some(Instant::now());
                        live = Some(l);
                    }
                    Err(e) => return e,
                }
            }
            match event {
                PlayerEvent::Metadata { body } => hub.push_metadata(body),
                PlayerEvent::Audio { timestamp, payload } => hub.push_audio(timestamp, payload),
                PlayerEvent::Video { timestamp, payload } => hub.push_video(timestamp, payload),
                PlayerEvent::Playing => {}
                PlayerEvent::SourceStopped => {
                    if live.take().is_some() {
                        info!(key = %hub.key(), "the pulled source stopped publishing");
                        set(PullState::Waiting {
                            since: SystemTime::now(),
                        });
                    }
                }
                PlayerEvent::Rejected(st) => return AttemptError::Rejected(st),
                PlayerEvent::StreamFailed(st) => return AttemptError::StreamFailed(st),
            }
            fed |= media;
        }
        if fed {
            last_media = Instant::now();
            hub.flush();
        }
        if let Err(e) = send(&mut io, &mut session).await {
            return e;
        }
        let n = match timeout_at(last_media + STALL, io.read(&mut buf)).await {
            Err(_) => return AttemptError::NoMedia,
            Ok(Err(e)) => return io_error(e),
            Ok(Ok(0)) => return AttemptError::Closed,
            Ok(Ok(n)) => n,
        };
        if let Err(e) = session.feed(&buf[..n]) {
            return e.into();
        }
    }
}

/// Sends what the session has to say, within [`WRITE_TIMEOUT`].
async fn send(io: &mut Box<dyn Io>, session: &mut PlayerSession) -> Result<(), AttemptError> {
    if let Some(out) = session.take_output() {
        let write = async {
            io.write_all(&out).await?;
            io.flush().await
        };
        match timeout(WRITE_TIMEOUT, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(io_error(e)),
            Err(_) => return Err(AttemptError::WriteStalled),
        }
    }
    Ok(())
}

/// Dials the source and plays; returns once `NetStream.Play.Start` came.
async fn open(
    target: &Target,
    secure: bool,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<(Box<dyn Io>, PlayerSession, SocketAddr), AttemptError> {
    let (mut io, peer) = dial(target, secure, tls, |_| {}).await?;
    let mut session = PlayerSession::new(
        PlayTarget {
            app: target.app.clone(),
            tc_url: target.tc_url(),
            stream_name: target.stream.expose().to_owned(),
        },
        antenne_rtmp::handshake::random_packet(),
    );
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        send(&mut io, &mut session).await?;
        if session.is_playing() {
            return Ok((io, session, peer));
        }
        // Events before Play.Start are verdicts.
        while let Some(ev) = session.poll_event() {
            match ev {
                PlayerEvent::Rejected(st) => return Err(AttemptError::Rejected(st)),
                PlayerEvent::StreamFailed(st) => return Err(AttemptError::StreamFailed(st)),
                _ => {}
            }
        }
        let n = io.read(&mut buf).await.map_err(io_error)?;
        if n == 0 {
            return Err(AttemptError::Closed);
        }
        session.feed(&buf[..n])?;
    }
}

/// A live publish session fed by the pull; records its start and end.
pub(super) struct Live {
    guard: PublishGuard,
    history: History,
}

impl Live {
    /// Starts the publish session on `hub` (refused while a publisher
    /// pushes to the key) and records it.
    pub(super) fn start(
        hub: &Arc<Hub>,
        peer: SocketAddr,
        source: &PullSource,
        history: &History,
    ) -> Result<Live, AttemptError> {
        let guard = hub
            .start_publish(peer)
            .map_err(|e| AttemptError::Busy(e.publisher))?;
        info!(key = %hub.key(), url = %source.redacted(), "pull live");
        history.record(
            EventKind::IngestLive,
            None,
            format!(
                "ingest key {} live, pulled from {}",
                hub.key(),
                source.redacted()
            ),
            None,
        );
        Ok(Live {
            guard,
            history: history.clone(),
        })
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.history.record(
            EventKind::IngestOffline,
            None,
            format!(
                "ingest key {} offline (the pulled stream ended)",
                self.guard.hub().key()
            ),
            None,
        );
    }
}
