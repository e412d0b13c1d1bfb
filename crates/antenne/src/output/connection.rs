//! One connection to a platform: TCP (and TLS for rtmps), the RTMP publish
//! sequence, then the relay loop that writes the hub's frames.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::Arc;
use std::time::Duration;

use antenne_rtmp::message::Status;
use antenne_rtmp::{ClientEvent, ClientSession, PublishTarget, SessionError};
use bytes::{Buf, Bytes};
use futures_util::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use super::url::{Scheme, Target};
use super::OutputStats;
use crate::hub::{Frame, FrameKind, Subscription};

pub use super::dial::Io;
use super::dial::{dial, DialError, DialStep};

/// Time limits of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From TCP connect to `NetStream.Publish.Start`.
    pub connect: Duration,
    /// A socket that accepts nothing for this long is dead.
    pub stall: Duration,
    /// How long connections stay open after the publisher left, for hubs
    /// whose hold is not managed by the standby module (renditions' hubs
    /// while their encoder restarts). Ingest hubs are held by the standby
    /// module for its hold limit, and close as soon as that ends.
    pub grace: Duration,
    /// Time to send the closing commands.
    pub close: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            stall: Duration::from_secs(10),
            grace: Duration::from_secs(30),
            close: Duration::from_secs(2),
        }
    }
}

/// Why a connection failed. The text is what the user sees.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot resolve host {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("connection refused by {0}")]
    Refused(String),
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    /// An SRT server refused the handshake (passphrase, stream id).
    #[error("rejected by the SRT server {addr}: {reason}")]
    SrtRejected { addr: String, reason: String },
    #[error("TLS with {host} failed: {reason}")]
    Tls { host: String, reason: String },
    #[error("timed out after {secs} s {during}")]
    Timeout { secs: u64, during: &'static str },
    #[error("the platform refused the stream: {}", describe(.0))]
    Rejected(Status),
    #[error("the platform ended the stream: {}", describe(.0))]
    StreamFailed(Status),
    #[error("RTMP error from the server: {0}")]
    Protocol(#[from] SessionError),
    #[error("the server closed the connection")]
    Closed,
    #[error("connection lost: {0}")]
    Io(String),
    #[error("stalled: the server accepted no data for {0} s (it stopped reading, or reads far slower than the stream)")]
    Stalled(u64),
    /// The destination's source has nothing to relay now (e.g. no vertical
    /// track nor rendition); see [`super::feed::Feed::pick`].
    #[error("{0}")]
    NoSource(String),
}

impl From<DialError> for OutputError {
    fn from(e: DialError) -> Self {
        match e {
            DialError::Resolve { host, reason } => OutputError::Resolve { host, reason },
            DialError::Refused(addr) => OutputError::Refused(addr),
            DialError::Connect { addr, reason } => OutputError::Connect { addr, reason },
            DialError::Tls { host, reason } => OutputError::Tls { host, reason },
        }
    }
}

/// A server's status, as the user reads it: its description and code.
pub(crate) fn describe(s: &Status) -> String {
    match (s.code.is_empty(), s.description.is_empty()) {
        (false, false) => format!("{} ({})", s.description, s.code),
        (false, true) => s.code.clone(),
        (true, false) => s.description.clone(),
        (true, true) => "no reason given".into(),
    }
}

impl OutputError {
    /// A platform that refuses the key will refuse it again in a second:
    /// retry slowly, and show its message.
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            OutputError::Rejected(_) | OutputError::SrtRejected { .. }
        )
    }
}

fn io_error(e: std::io::Error) -> OutputError {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => OutputError::Closed,
        _ => OutputError::Io(e.to_string()),
    }
}

/// What [`open`] was doing when it ran out of time, by step: the timeout
/// message says where it got stuck.
const OPEN_STEPS: [&str; 5] = [
    "while resolving the host name",
    "while connecting (TCP)",
    "in the TLS handshake",
    "in the RTMP handshake (the server accepted the connection but did not answer it)",
    "waiting for the server to accept the stream (it answered the RTMP handshake, \
     not the connect and publish commands)",
];

/// Connects and publishes; returns once the platform said
/// `NetStream.Publish.Start`.
pub async fn open(
    target: &Target,
    tls: &Arc<rustls::ClientConfig>,
    timeouts: &Timeouts,
) -> Result<(Box<dyn Io>, ClientSession), OutputError> {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    let secs = timeouts.connect.as_secs();
    let step = AtomicUsize::new(0);
    let fut = async {
        if target.scheme == Scheme::Srt {
            // Sent by output::srt, never through here.
            return Err(OutputError::Io("srt:// is not RTMP".into()));
        }
        let secure = target.scheme == Scheme::Rtmps;
        let (mut io, _) = dial(target, secure, tls, |s| {
            step.store(
                match s {
                    DialStep::Connecting => 1,
                    DialStep::Tls => 2,
                },
                Relaxed,
            )
        })
        .await?;
        let mut session = ClientSession::new(
            PublishTarget {
                app: target.app.clone(),
                tc_url: target.tc_url(),
                stream_name: target.stream.expose().to_owned(),
            },
            antenne_rtmp::handshake::random_packet(),
        );
        let mut buf = vec![0u8; 8192];
        step.store(3, Relaxed);
        // S0 S1 S2: what the server sends for the RTMP handshake.
        let mut handshake_left = 1 + 2 * antenne_rtmp::handshake::PACKET_SIZE;
        loop {
            if let Some(out) = session.take_output() {
                io.write_all(&out).await.map_err(io_error)?;
                io.flush().await.map_err(io_error)?;
            }
            match session.poll_event() {
                Some(ClientEvent::Published) => return Ok((io, session)),
                Some(ClientEvent::Rejected(st)) => return Err(OutputError::Rejected(st)),
                Some(ClientEvent::StreamFailed(st)) => return Err(OutputError::StreamFailed(st)),
                None => {}
            }
            let n = io.read(&mut buf).await.map_err(io_error)?;
            if n == 0 {
                return Err(OutputError::Closed);
            }
            handshake_left = handshake_left.saturating_sub(n);
            if handshake_left == 0 {
                step.store(4, Relaxed);
            }
            session.feed(&buf[..n])?;
        }
    };
    let result = timeout(timeouts.connect, fut).await;
    result.map_err(|_| OutputError::Timeout {
        secs,
        during: OPEN_STEPS[step.load(Relaxed).min(OPEN_STEPS.len() - 1)],
    })?
}

/// How a live relay ended without error.
#[derive(Debug, PartialEq, Eq)]
pub enum LiveEnd {
    /// Stopped from outside (disabled, deleted, edited, shutdown).
    Cancelled,
    /// The publisher stayed away longer than the hold limit (or the grace
    /// period of a hub without standby).
    IngestGone,
}

/// Per-destination timestamps: start at 0, never go back per track.
#[derive(Debug, Default)]
pub(super) struct Rebaser {
    base: Option<i64>,
    last_audio: u32,
    last_video: u32,
    last: u32,
}

impl Rebaser {
    pub(super) fn map(&mut self, f: &Frame) -> u32 {
        if f.header || f.kind == FrameKind::Metadata {
            // Headers are sent "now" on this destination's clock.
            return self.last;
        }
        let base = *self.base.get_or_insert(f.timestamp);
        let ts = (f.timestamp - base).clamp(0, u32::MAX as i64) as u32;
        let last = match f.kind {
            FrameKind::Video => &mut self.last_video,
            _ => &mut self.last_audio,
        };
        let ts = ts.max(*last);
        *last = ts;
        self.last = self.last.max(ts);
        ts
    }
}

/// Frames taken from the queue at once, at most.
const BATCH: usize = 64;
/// Buffers handed to one vectored write, at most.
const MAX_IOV: usize = 64;

/// Relays the hub's frames until cancelled, the publisher is gone past
/// the grace period, or the connection fails.
///
/// One task owns the socket: it waits for frames (or a server message, a
/// change of the ingest, cancellation), then writes what it got. Writes
/// first try without arming a timer; only a socket that is full arms the
/// stall timeout, so the common path costs no timer per frame.
pub async fn relay(
    mut io: Box<dyn Io>,
    mut session: ClientSession,
    sub: Subscription,
    stats: &OutputStats,
    timeouts: &Timeouts,
    cancel: &CancellationToken,
) -> Result<LiveEnd, OutputError> {
    // The ingest's comings and goings are watched beside the relay loop:
    // it cancels `ingest_gone` once the publisher stayed away past the
    // grace period, so the loop itself polls no timer per frame.
    let ingest_gone = cancel.child_token();
    let grace = if sub.hub().hold_managed() {
        Duration::ZERO
    } else {
        timeouts.grace
    };
    let watcher = tokio::spawn(watch_ingest(
        sub.hub().watch_on_air(),
        grace,
        ingest_gone.clone(),
    ));
    let _stop_watcher = AbortOnDrop(watcher);
    let stopped = ingest_gone.cancelled();
    tokio::pin!(stopped);
    let mut rbuf = vec![0u8; 4096];
    let mut frames: Vec<Frame> = Vec::with_capacity(BATCH);
    let mut parts: VecDeque<Bytes> = VecDeque::new();
    let mut scratch: Vec<Bytes> = Vec::new();
    let mut rebaser = Rebaser::default();
    let dropped_base = stats.dropped();

    let end = loop {
        tokio::select! {
            biased;
            _ = &mut stopped => {
                break if cancel.is_cancelled() { LiveEnd::Cancelled } else { LiveEnd::IngestGone };
            }
            r = io.read(&mut rbuf) => {
                let n = r.map_err(io_error)?;
                if n == 0 {
                    return Err(OutputError::Closed);
                }
                session.feed(&rbuf[..n])?;
                while let Some(ev) = session.poll_event() {
                    match ev {
                        ClientEvent::StreamFailed(st) | ClientEvent::Rejected(st) => {
                            return Err(OutputError::StreamFailed(st))
                        }
                        ClientEvent::Published => {}
                    }
                }
                if let Some(b) = session.take_output() {
                    parts.push_back(b);
                }
            }
            _ = sub.recv_many(&mut frames, BATCH) => {
                for f in frames.drain(..) {
                    let ts = rebaser.map(&f);
                    match f.kind {
                        FrameKind::Video => session.media_chunked(true, ts, &f.payload, &mut scratch),
                        FrameKind::Audio => session.media_chunked(false, ts, &f.payload, &mut scratch),
                        FrameKind::Metadata => {
                            session.metadata_parts(ts, &f.payload.to_payload(), &mut scratch)
                        }
                    }
                }
                parts.extend(scratch.drain(..));
                stats.set_dropped(dropped_base + sub.dropped());
            }
        }
        if !parts.is_empty()
            && write_all(&mut io, &mut parts, stats, timeouts, &ingest_gone).await?
        {
            break if cancel.is_cancelled() {
                LiveEnd::Cancelled
            } else {
                LiveEnd::IngestGone
            };
        }
    };
    // Close cleanly: what is queued is abandoned, the closing commands go
    // out within a short time.
    session.unpublish();
    if let Some(bye) = session.take_output() {
        let _ = timeout(timeouts.close, async {
            // Finish the message being written, so the closing commands
            // are not spliced into the middle of a chunk.
            while !parts.is_empty() {
                if write_some(&mut io, &mut parts).await? == 0 {
                    break;
                }
            }
            io.write_all(&bye).await?;
            io.flush().await
        })
        .await;
    }
    let _ = timeout(timeouts.close, io.shutdown()).await;
    Ok(end)
}

/// Cancels `gone` once the ingest has been off the air (no publisher, no
/// hold) for `grace` without coming back.
pub(super) async fn watch_ingest(
    mut live: watch::Receiver<bool>,
    grace: Duration,
    gone: CancellationToken,
) {
    loop {
        while *live.borrow_and_update() {
            if live.changed().await.is_err() {
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(grace) => {
                gone.cancel();
                return;
            }
            r = live.changed() => if r.is_err() { return },
        }
    }
}

/// Aborts a task when dropped.
pub(super) struct AbortOnDrop(pub(super) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Writes all of `parts`. A socket that accepts nothing for the stall
/// timeout is an error; returns `true` if cancelled meanwhile (what is
/// left of `parts` is then a partial message).
async fn write_all(
    io: &mut Box<dyn Io>,
    parts: &mut VecDeque<Bytes>,
    stats: &OutputStats,
    timeouts: &Timeouts,
    cancel: &CancellationToken,
) -> Result<bool, OutputError> {
    while !parts.is_empty() {
        // Fast path: the socket has room (the usual case), no timer.
        let n = match write_some(io, parts).now_or_never() {
            Some(r) => r.map_err(io_error)?,
            None => tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ok(true),
                r = timeout(timeouts.stall, write_some(io, parts)) => match r {
                    Ok(r) => r.map_err(io_error)?,
                    Err(_) => return Err(OutputError::Stalled(timeouts.stall.as_secs())),
                },
            },
        };
        if n == 0 {
            return Err(OutputError::Closed);
        }
        stats.bytes.add(n);
    }
    Ok(false)
}

/// One vectored write; advances `parts` by what was written. Cancel-safe:
/// a write that does not complete writes nothing.
async fn write_some<W: AsyncWrite + Unpin + ?Sized>(
    wr: &mut W,
    parts: &mut VecDeque<Bytes>,
) -> std::io::Result<usize> {
    let n = {
        // On the stack: no allocation per write.
        let mut slices = [IoSlice::new(&[]); MAX_IOV];
        let mut count = 0;
        for (slot, b) in slices.iter_mut().zip(parts.iter()) {
            *slot = IoSlice::new(b);
            count += 1;
        }
        wr.write_vectored(&slices[..count]).await?
    };
    let mut left = n;
    while left > 0 {
        let Some(front) = parts.front_mut() else {
            break;
        };
        if front.len() <= left {
            left -= front.len();
            parts.pop_front();
        } else {
            front.advance(left);
            left = 0;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: FrameKind, ts: i64, header: bool) -> Frame {
        Frame {
            kind,
            timestamp: ts,
            payload: antenne_rtmp::chunked::ChunkedPayload::whole(Bytes::new()),
            keyframe: false,
            header,
        }
    }

    #[test]
    fn rebases_to_zero_and_never_goes_back() {
        let mut r = Rebaser::default();
        assert_eq!(r.map(&frame(FrameKind::Metadata, 10, true)), 0);
        assert_eq!(r.map(&frame(FrameKind::Video, 0, true)), 0);
        assert_eq!(r.map(&frame(FrameKind::Video, 5000, false)), 0);
        // Audio slightly before the keyframe is clamped to 0.
        assert_eq!(r.map(&frame(FrameKind::Audio, 4990, false)), 0);
        assert_eq!(r.map(&frame(FrameKind::Audio, 5023, false)), 23);
        assert_eq!(r.map(&frame(FrameKind::Video, 5033, false)), 33);
        // A frame from the past keeps the last timestamp of its track.
        assert_eq!(r.map(&frame(FrameKind::Video, 5010, false)), 33);
        assert_eq!(r.map(&frame(FrameKind::Video, 0, true)), 33);
    }
}
