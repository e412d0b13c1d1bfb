//! Pulling from `srt://host:port?streamid=…&passphrase=…&latency=…`:
//! antenne connects as an SRT caller (the source is a listener: ffmpeg
//! with `mode=listener`, another relay, a platform's SRT output) and feeds
//! the MPEG-TS it receives into the ingest's hub through the SRT ingest's
//! own receive loop ([`crate::ingest::srt::receive_tags`]).
//!
//! libsrt's calls block, so each attempt runs on a dedicated std thread
//! (tracked by the pull's [`TaskTracker`], so a stopped pull waits for its
//! session to end); the thread reports to the pull's task, which owns the
//! states, the backoff and the history, through a small channel. The
//! publish session starts at the first media and ends with the thread.
//!
//! Time limits: libsrt's connection timeout is [`CONNECT_TIMEOUT`]; a
//! source that sends nothing for [`STALL`] is dropped (libsrt itself
//! breaks a connection whose peer is silent, not even keepalives, for 5 s).
//! Secrets: the stream id and passphrase are never logged; errors name the
//! host and port only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use antenne_srt::{CallerOptions, Srt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use super::run::{AttemptError, Live, CONNECT_TIMEOUT, STALL};
use super::{PullSource, PullState};
use crate::history::History;
use crate::hub::Hub;
use crate::ingest::srt::{push_tags, receive_tags, ReceiveEnd};
use crate::output::url::{srt_options, Target};

/// What the attempt's thread tells the pull's task.
#[derive(Debug)]
enum Event {
    /// The source accepted the caller; no media yet.
    Connected,
    /// The first media came: the ingest is live.
    Live,
    /// The attempt is over (the thread has ended its session).
    Ended(AttemptError),
}

/// One SRT connection, from dialling to its end (always an error).
#[allow(clippy::too_many_arguments)]
pub(super) async fn attempt(
    target: &Target,
    source: &PullSource,
    hub: &Arc<Hub>,
    history: &History,
    set: &impl Fn(PullState),
    fed_since: &mut Option<Instant>,
    cancel: &CancellationToken,
    threads: &TaskTracker,
) -> AttemptError {
    let srt = match Srt::get() {
        Ok(srt) => srt,
        Err(why) => return AttemptError::SrtUnavailable(why),
    };
    let peer = match resolve(target).await {
        Ok(a) => a,
        Err(e) => return e,
    };
    let o = srt_options(target);
    let options = CallerOptions {
        stream_id: o.stream_id,
        passphrase: o.passphrase,
        latency: o.latency_ms.map(|ms| Duration::from_millis(ms.into())),
        connect_timeout: CONNECT_TIMEOUT,
    };
    let (tx, mut rx) = mpsc::channel(4);
    // Stops the thread when this attempt is dropped (the pull stopped).
    let stop = cancel.child_token();
    let _stop_on_drop = stop.clone().drop_guard();
    let job = Job {
        srt,
        peer,
        options,
        source: source.clone(),
        hub: hub.clone(),
        history: history.clone(),
        cancel: stop,
        tx,
    };
    let token = threads.token();
    let spawned = std::thread::Builder::new()
        .name("srt-pull".into())
        .spawn(move || {
            let _tracked = token;
            job.run()
        });
    if let Err(e) = spawned {
        return AttemptError::Io(format!("cannot start an SRT thread: {e}"));
    }
    loop {
        match rx.recv().await {
            Some(Event::Connected) => set(PullState::Waiting {
                since: SystemTime::now(),
            }),
            Some(Event::Live) => {
                set(PullState::Live {
                    since: SystemTime::now(),
                });
                *fed_since = Some(Instant::now());
            }
            Some(Event::Ended(e)) => return e,
            None => return AttemptError::Io("the SRT thread ended".into()),
        }
    }
}

async fn resolve(target: &Target) -> Result<SocketAddr, AttemptError> {
    let resolve_error = |reason: String| AttemptError::Resolve {
        host: target.host.clone(),
        reason,
    };
    let mut addrs = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| resolve_error(e.to_string()))?;
    addrs
        .next()
        .ok_or_else(|| resolve_error("no address".into()))
}

/// What the attempt's thread owns.
struct Job {
    srt: Srt,
    peer: SocketAddr,
    options: CallerOptions,
    source: PullSource,
    hub: Arc<Hub>,
    history: History,
    cancel: CancellationToken,
    tx: mpsc::Sender<Event>,
}

impl Job {
    fn run(self) {
        let error = self.connect_and_receive();
        let _ = self.tx.blocking_send(Event::Ended(error));
    }

    /// Blocks until the connection fails or the pull stops; the publish
    /// session (if it started) has ended when this returns.
    fn connect_and_receive(&self) -> AttemptError {
        let addr = self.peer.to_string();
        let socket = match self.srt.connect(self.peer, &self.options) {
            Ok(s) => s,
            Err(e) => {
                return AttemptError::Connect {
                    addr,
                    reason: e.message,
                }
            }
        };
        if self.cancel.is_cancelled() {
            return AttemptError::Closed;
        }
        info!(url = %self.source.redacted(), key = %self.hub.key(), "SRT pull connected");
        let _ = self.tx.blocking_send(Event::Connected);
        let mut live: Option<Live> = None;
        let end = receive_tags(&socket, &self.cancel, STALL, |tags| {
            if live.is_none() {
                // A stopped pull never starts a session.
                if self.cancel.is_cancelled() {
                    return Err(AttemptError::Closed);
                }
                live = Some(Live::start(
                    &self.hub,
                    self.peer,
                    &self.source,
                    &self.history,
                )?);
                let _ = self.tx.blocking_send(Event::Live);
            }
            push_tags(&self.hub, tags);
            Ok(())
        });
        drop(live);
        match end {
            ReceiveEnd::Stopped(e) => e,
            ReceiveEnd::Idle(_) => AttemptError::NoMedia,
            ReceiveEnd::Closed | ReceiveEnd::Cancelled => AttemptError::Closed,
            ReceiveEnd::Lost(e) => AttemptError::Io(format!("{} ({addr})", e.message)),
            ReceiveEnd::Setup(e) => AttemptError::Io(e.message),
        }
    }
}
