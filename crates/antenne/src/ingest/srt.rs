//! The SRT ingest: where OBS (`srt://HOST:9000?streamid=KEY&passphrase=…`)
//! and ffmpeg (`-f mpegts srt://…`) publish MPEG-TS over SRT. The stream id
//! carries the ingest key, plainly (`KEY`) or in SRT's access-control form
//! (`#!::r=live/KEY,m=publish`, or `r=KEY`).
//!
//! libsrt ([`antenne_srt`]) does the network work on its own threads; its
//! calls block, so this module runs them on dedicated std threads, never on
//! the runtime's: one thread accepts, one per publisher receives, demuxes
//! ([`TsToFlv`]) and pushes into the hub (whose pushes are quick and never
//! block on a destination; the hub's queues are the bounded hand-off to the
//! relay tasks).
//!
//! Invariants (callers are untrusted):
//! - the key, the key's passphrase and "already live" are checked in the
//!   listen callback, during the handshake: a caller with a wrong key or
//!   passphrase is refused (and sees why: SRT's reject codes) and never
//!   gets a socket, a thread or a slot;
//! - at most [`MAX_CONNECTIONS`] accepted SRT publishers at once;
//! - an accepted publisher that sends nothing for [`IDLE_TIMEOUT`] is
//!   closed (libsrt also breaks a connection whose peer is silent, not
//!   even keepalives, for [`PEER_IDLE_TIMEOUT`]);
//! - memory per publisher is the demuxer's bound ([`Limits`]) and one
//!   receive buffer;
//! - a passphrase is a secret: never logged, never in an event.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use antenne_media::flv::{Tag, TagKind};
use antenne_media::ts::to_flv::TsToFlv;
use antenne_media::ts::Limits;
use antenne_srt::{Decide, Listener, ListenerOptions, Received, Srt, Verdict};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::history::{EventKind, History};
use crate::hub::Hubs;

/// Concurrent SRT publishers (each holds a thread).
pub const MAX_CONNECTIONS: usize = 32;
/// A publisher that sends no data for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// libsrt breaks a connection whose peer sends nothing at all (not even
/// keepalives, which libsrt sends every second) for this long.
pub const PEER_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often blocked calls come back to check for shutdown.
const POLL: Duration = Duration::from_millis(250);
/// How often the asleep listener's UDP socket comes back to check for
/// shutdown.
const KNOCK_POLL: Duration = Duration::from_secs(5);

// SRT access-control reject codes (srt/access_control.h), which callers
// show (ffmpeg: "Connection rejected"; OBS logs the code).
const REJECT_UNAUTHORIZED: i32 = 1401;
const REJECT_OVERLOAD: i32 = 1402;
const REJECT_BAD_MODE: i32 = 1405;
const REJECT_CONFLICT: i32 = 1409;

/// The SRT passphrase of each ingest key that has one (in memory; saved in
/// the store by [`crate::ingest_keys`]). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Passphrases(Arc<RwLock<HashMap<String, String>>>);

impl Passphrases {
    pub fn get(&self, key: &str) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// Sets (or with `None`, removes) a key's passphrase.
    pub fn set(&self, key: &str, passphrase: Option<String>) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        match passphrase {
            Some(p) => map.insert(key.to_owned(), p),
            None => map.remove(key),
        };
    }
}

/// Checks a passphrase as libsrt requires it: 10 to 79 characters.
pub fn validate_passphrase(p: &str) -> Result<(), String> {
    let n = p.chars().count();
    if !(10..=79).contains(&n) || !p.is_ascii() || p.chars().any(|c| c.is_ascii_control()) {
        return Err("an SRT passphrase has 10 to 79 printable ASCII characters".into());
    }
    Ok(())
}

/// Where the SRT ingest stands, for the ingest card and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SrtStatus {
    /// `--srt-listen` is empty.
    Off,
    Listening(SocketAddr),
    /// libsrt is missing or the port could not be bound: the reason, in
    /// words for the user.
    Unavailable(String),
}

/// What the listener needs.
pub struct SrtIngest {
    pub listen: SocketAddr,
    pub latency: Option<Duration>,
    /// How long libsrt listens without a publisher before the listener goes
    /// to sleep (`None`: never); see [`SrtIngest::start`].
    pub idle_close: Option<Duration>,
    pub hubs: Hubs,
    pub history: History,
    pub passphrases: Passphrases,
}

impl SrtIngest {
    /// Binds the listener and serves publishers on a dedicated thread until
    /// `cancel` fires. Never fails the process: without libsrt, or when the
    /// port is taken, the status says why and RTMP serves as before.
    ///
    /// libsrt's receive thread and its epoll wait wake every 10 ms while a
    /// listener is open, publisher or not: over 200 wake-ups a second, which
    /// cost more than an idle RTMP ingest. So after [`SrtIngest::idle_close`]
    /// without a publisher the listener is closed and a plain UDP socket
    /// (which costs nothing while nothing comes) holds the port; the first
    /// datagram that arrives, a caller's handshake, brings libsrt back on
    /// the same port. The caller repeats its handshake every 250 ms, so it
    /// connects at its next try.
    pub fn start(self, cancel: CancellationToken) -> SrtStatus {
        let srt = match Srt::get() {
            Ok(srt) => srt,
            Err(why) => {
                warn!("{why}");
                return SrtStatus::Unavailable(why);
            }
        };
        let active = Arc::new(AtomicUsize::new(0));
        let decide: Decide = {
            let hubs = self.hubs.clone();
            let passphrases = self.passphrases.clone();
            let active = active.clone();
            let refusals = RefusalLog::default();
            Arc::new(move |h: &antenne_srt::Handshake| {
                let Some(key) = antenne_srt::key_from_stream_id(&h.stream_id) else {
                    refusals.note(h.peer, "not a publish stream id");
                    return Verdict::Reject(REJECT_BAD_MODE);
                };
                let Some(hub) = hubs.find(key) else {
                    refusals.note(h.peer, "wrong ingest key");
                    return Verdict::Reject(REJECT_UNAUTHORIZED);
                };
                if hub.is_live() {
                    return Verdict::Reject(REJECT_CONFLICT);
                }
                if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                    return Verdict::Reject(REJECT_OVERLOAD);
                }
                Verdict::Accept {
                    passphrase: passphrases.get(key),
                }
            })
        };
        let options = ListenerOptions {
            latency: self.latency,
            peer_idle_timeout: PEER_IDLE_TIMEOUT,
        };
        let listener = match srt.listen(self.listen, MAX_CONNECTIONS, &options, decide.clone()) {
            Ok(l) => l,
            Err(e) => {
                let why = format!("SRT unavailable: cannot listen on {}: {e}", self.listen);
                warn!("{why}");
                return SrtStatus::Unavailable(why);
            }
        };
        let addr = listener.local_addr().unwrap_or(self.listen);
        info!(srt = %addr, "SRT ingest listening");
        let door = Door {
            srt,
            addr,
            options,
            decide,
            idle_close: self.idle_close,
            active,
            cancel,
        };
        let spawned = std::thread::Builder::new()
            .name("srt-accept".into())
            .spawn(move || door.run(listener, self));
        match spawned {
            Ok(_) => SrtStatus::Listening(addr),
            Err(e) => SrtStatus::Unavailable(format!("SRT unavailable: no thread: {e}")),
        }
    }
}

/// The listener's life on its thread: awake (libsrt listening, accepting)
/// or asleep (a plain UDP socket on the same port, waiting for a knock).
struct Door {
    srt: Srt,
    addr: SocketAddr,
    options: ListenerOptions,
    decide: Decide,
    idle_close: Option<Duration>,
    active: Arc<AtomicUsize>,
    cancel: CancellationToken,
}

impl Door {
    fn run(self, listener: Listener, ingest: SrtIngest) {
        let mut listener = Some(listener);
        // The last time a publisher was connected or accepted.
        let mut busy_at = Instant::now();
        while !self.cancel.is_cancelled() {
            let Some(awake) = &listener else {
                if !self.wait_for_knock() {
                    return;
                }
                match self.srt.listen(
                    self.addr,
                    MAX_CONNECTIONS,
                    &self.options,
                    self.decide.clone(),
                ) {
                    Ok(l) => {
                        debug!(srt = %self.addr, "SRT listener awake: a caller knocked");
                        listener = Some(l);
                        busy_at = Instant::now();
                    }
                    Err(e) => {
                        warn!(srt = %self.addr, error = %e, "SRT listener cannot listen again");
                        std::thread::sleep(POLL);
                    }
                }
                continue;
            };
            match awake.accept(POLL) {
                Ok(None) => {
                    if self.active.load(Ordering::Relaxed) > 0 {
                        busy_at = Instant::now();
                    } else if self.idle_close.is_some_and(|d| busy_at.elapsed() >= d) {
                        debug!(srt = %self.addr, "SRT listener asleep: no publisher");
                        listener = None;
                    }
                }
                Ok(Some((socket, peer))) => {
                    busy_at = Instant::now();
                    let guard = ActiveGuard::new(&self.active);
                    let conn = Publisher {
                        socket,
                        peer,
                        hubs: ingest.hubs.clone(),
                        history: ingest.history.clone(),
                        cancel: self.cancel.clone(),
                    };
                    let r =
                        std::thread::Builder::new()
                            .name("srt-ingest".into())
                            .spawn(move || {
                                let _guard = guard;
                                conn.run()
                            });
                    if let Err(e) = r {
                        warn!(error = %e, "cannot start an SRT ingest thread");
                    }
                }
                Err(e) => {
                    warn!(error = %e, "SRT accept failed");
                    std::thread::sleep(POLL);
                }
            }
        }
    }

    /// Holds the port with a plain UDP socket until a datagram comes (true)
    /// or `cancel` fires (false). libsrt releases its UDP socket a little
    /// after the listener closes: until then the bind is retried.
    fn wait_for_knock(&self) -> bool {
        let socket = loop {
            match std::net::UdpSocket::bind(self.addr) {
                Ok(s) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {}
                Err(e) => warn!(srt = %self.addr, error = %e, "SRT port cannot be held"),
            }
            if self.cancel.is_cancelled() {
                return false;
            }
            std::thread::sleep(POLL);
        };
        if let Err(e) = socket.set_read_timeout(Some(KNOCK_POLL)) {
            warn!(error = %e, "SRT port: no read timeout");
        }
        let mut byte = [0u8; 1];
        loop {
            match socket.recv_from(&mut byte) {
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if self.cancel.is_cancelled() {
                        return false;
                    }
                }
                // A datagram (truncated to one byte), or an error a
                // datagram caused: either way someone knocked.
                _ => return true,
            }
        }
    }
}

/// Refused callers, logged at most once per [`REFUSAL_LOG_PERIOD`] (with
/// how many were refused since), so a flood of handshakes cannot flood
/// the log; every refusal is logged at debug level.
#[derive(Default)]
struct RefusalLog {
    state: std::sync::Mutex<(Option<Instant>, u64)>,
}

/// Refused SRT callers are logged at most this often.
const REFUSAL_LOG_PERIOD: Duration = Duration::from_secs(10);

impl RefusalLog {
    fn note(&self, peer: Option<SocketAddr>, why: &str) {
        debug!(?peer, "SRT caller refused: {why}");
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.1 += 1;
        if st.0.is_none_or(|t| t.elapsed() >= REFUSAL_LOG_PERIOD) {
            warn!(
                ?peer,
                refused = st.1,
                "SRT caller refused: {why} (callers refused since the last such line: {})",
                st.1
            );
            *st = (Some(Instant::now()), 0);
        }
    }
}

/// Counts an accepted publisher while it lives.
struct ActiveGuard(Arc<AtomicUsize>);

impl ActiveGuard {
    fn new(active: &Arc<AtomicUsize>) -> Self {
        active.fetch_add(1, Ordering::Relaxed);
        Self(active.clone())
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One accepted publisher, on its own thread.
struct Publisher {
    socket: antenne_srt::Socket,
    peer: Option<SocketAddr>,
    hubs: Hubs,
    history: History,
    cancel: CancellationToken,
}

impl Publisher {
    fn run(self) {
        let peer = self
            .peer
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let stream_id = self.socket.stream_id();
        // Checked in the callback already; the key may have been deleted
        // since.
        let Some(hub) = antenne_srt::key_from_stream_id(&stream_id).and_then(|k| self.hubs.find(k))
        else {
            debug!(%peer, "SRT publisher closed: its ingest key is gone");
            return;
        };
        let guard = match hub.start_publish(peer) {
            Ok(g) => g,
            Err(e) => {
                warn!(%peer, "SRT publisher refused: {e}");
                return;
            }
        };
        info!(%peer, key = %hub.key(), "SRT publisher live");
        self.history.record(
            EventKind::IngestLive,
            None,
            format!("publisher {peer} live over SRT on ingest key {}", hub.key()),
            None,
        );
        let reason = receive_into_hub(&self.socket, guard.hub(), &self.cancel);
        info!(%peer, key = %hub.key(), "SRT publisher left: {reason}");
        self.history.record(
            EventKind::IngestOffline,
            None,
            format!("publisher left ingest key {}", hub.key()),
            None,
        );
        drop(guard);
    }
}

/// Receives MPEG-TS from a connected SRT socket (an accepted publisher)
/// into `hub` until the peer leaves, nothing comes for [`IDLE_TIMEOUT`], or
/// `cancel` fires; says why it ended. Blocks: call it on a dedicated
/// thread, with the hub's [`crate::hub::PublishGuard`] held.
pub fn receive_into_hub(
    socket: &antenne_srt::Socket,
    hub: &Arc<crate::hub::Hub>,
    cancel: &CancellationToken,
) -> String {
    let end = receive_tags(socket, cancel, IDLE_TIMEOUT, |tags| {
        push_tags(hub, tags);
        Ok::<(), std::convert::Infallible>(())
    });
    end.to_string()
}

/// Pushes demultiplexed tags into `hub` (draining `tags`) and wakes its
/// outputs.
pub fn push_tags(hub: &crate::hub::Hub, tags: &mut Vec<Tag>) {
    for tag in tags.drain(..) {
        match tag.kind {
            TagKind::Video => hub.push_video(tag.timestamp, tag.body),
            TagKind::Audio => hub.push_audio(tag.timestamp, tag.body),
            TagKind::Script => hub.push_metadata(tag.body),
        }
    }
    hub.flush();
}

/// Why [`receive_tags`] ended.
#[derive(Debug)]
pub enum ReceiveEnd<E> {
    Cancelled,
    /// Nothing came for this long.
    Idle(Duration),
    Closed,
    /// libsrt says the connection ended (broken, peer gone…).
    Lost(antenne_srt::Error),
    /// Cannot even set up the receive timeout.
    Setup(antenne_srt::Error),
    /// `on_tags` said stop.
    Stopped(E),
}

impl<E: std::fmt::Display> std::fmt::Display for ReceiveEnd<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReceiveEnd::Cancelled => f.write_str("antenne is stopping"),
            ReceiveEnd::Idle(d) => write!(f, "sent nothing for {} s", d.as_secs()),
            ReceiveEnd::Closed => f.write_str("the connection closed"),
            ReceiveEnd::Lost(e) => write!(f, "the connection ended ({e})"),
            ReceiveEnd::Setup(e) => write!(f, "cannot set a receive timeout: {e}"),
            ReceiveEnd::Stopped(e) => e.fmt(f),
        }
    }
}

/// The receive loop of a connected SRT socket, whichever side connected
/// (an accepted publisher, or a pull's caller): MPEG-TS in, demultiplexed
/// ([`TsToFlv`], bounded by [`Limits`]) into FLV tags handed to `on_tags`
/// (a batch per SRT message; `Err` stops the loop), until the peer leaves,
/// nothing comes for `idle`, or `cancel` fires (seen within [`POLL`]).
/// Blocks: call it on a dedicated thread.
pub fn receive_tags<E>(
    socket: &antenne_srt::Socket,
    cancel: &CancellationToken,
    idle: Duration,
    mut on_tags: impl FnMut(&mut Vec<Tag>) -> Result<(), E>,
) -> ReceiveEnd<E> {
    if let Err(e) = socket.set_recv_timeout(POLL) {
        return ReceiveEnd::Setup(e);
    }
    let mut converter = TsToFlv::new(Limits::default());
    let mut buf = vec![0u8; 1500];
    let mut tags = Vec::new();
    let mut last_data = Instant::now();
    loop {
        if cancel.is_cancelled() {
            return ReceiveEnd::Cancelled;
        }
        match socket.recv(&mut buf) {
            Ok(Received::Timeout) => {
                if last_data.elapsed() >= idle {
                    return ReceiveEnd::Idle(idle);
                }
            }
            Ok(Received::Data(0)) => return ReceiveEnd::Closed,
            Ok(Received::Data(n)) => {
                last_data = Instant::now();
                converter.push(&buf[..n], &mut tags);
                if tags.is_empty() {
                    continue;
                }
                if let Err(e) = on_tags(&mut tags) {
                    return ReceiveEnd::Stopped(e);
                }
                tags.clear();
            }
            Err(e) => return ReceiveEnd::Lost(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrases_follow_libsrts_rules() {
        assert!(validate_passphrase("0123456789").is_ok());
        assert!(validate_passphrase("short").is_err());
        assert!(validate_passphrase(&"x".repeat(80)).is_err());
        assert!(validate_passphrase("0123456789\n").is_err());
    }
}
