//! SRT destinations (`srt://host:port?streamid=…&passphrase=…&latency=…`):
//! the hub's frames muxed into MPEG-TS ([`TsMuxer`]) and sent over SRT as a
//! caller, under the same supervision, backoff, states and errors as RTMP
//! destinations: [`open`] and [`relay`] are what the supervisor calls for
//! any destination, and pass RTMP ones on to [`super::connection`].
//!
//! libsrt's calls block, so a dedicated std thread per destination owns the
//! SRT socket (connect, then send); the relay task hands it TS messages
//! (7 packets, 1316 bytes: SRT's live-mode payload) through a bounded
//! channel. A full channel for [`Timeouts::stall`] (the peer stopped
//! reading) or a failed send ends the connection with an error, as a stalled
//! RTMP socket does.
//!
//! A server that refuses the handshake (a wrong passphrase or stream id,
//! see [`refusal`]) makes the destination *rejected*, retried slowly with
//! the reason shown, as a platform refusing an RTMP key does.
//!
//! Secrets: the stream id and passphrase are never logged; errors name the
//! host and port only.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use antenne_media::ts::mux::TsMuxer;
use antenne_srt::{CallerOptions, Srt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::connection::{self, Io, LiveEnd, OutputError, Rebaser, Timeouts};
use super::url::{srt_options, Scheme, Target};
use super::OutputStats;
use crate::hub::{Frame, FrameKind, Subscription};

/// TS messages waiting for the sender thread, at most (about 1 s of a
/// 6 Mb/s stream).
const QUEUE: usize = 512;
/// One SRT live-mode message: 7 transport packets.
const MESSAGE: usize = 7 * antenne_media::ts::PACKET_SIZE;

/// An open destination connection, RTMP or SRT.
pub enum Link {
    Rtmp(Box<dyn Io>, Box<antenne_rtmp::ClientSession>),
    Srt(SrtLink),
}

/// A connected SRT caller, owned by its sender thread.
pub struct SrtLink {
    tx: mpsc::Sender<Vec<u8>>,
    /// Why the sender thread stopped, once it has.
    failure: Arc<Mutex<Option<String>>>,
    addr: String,
}

/// Connects a destination: SRT for `srt://`, else RTMP(S).
pub async fn open(
    target: &Target,
    tls: &Arc<rustls::ClientConfig>,
    timeouts: &Timeouts,
) -> Result<Link, OutputError> {
    if target.scheme != Scheme::Srt {
        let (io, session) = connection::open(target, tls, timeouts).await?;
        return Ok(Link::Rtmp(io, Box::new(session)));
    }
    open_srt(target, timeouts).await.map(Link::Srt)
}

/// Relays until cancelled, the ingest is gone past the grace period, or
/// the connection fails.
pub async fn relay(
    link: Link,
    sub: Subscription,
    stats: &OutputStats,
    timeouts: &Timeouts,
    cancel: &CancellationToken,
) -> Result<LiveEnd, OutputError> {
    match link {
        Link::Rtmp(io, session) => {
            connection::relay(io, *session, sub, stats, timeouts, cancel).await
        }
        Link::Srt(link) => relay_srt(link, sub, stats, timeouts, cancel).await,
    }
}

async fn open_srt(target: &Target, timeouts: &Timeouts) -> Result<SrtLink, OutputError> {
    let addr = format!("{}:{}", target.host, target.port);
    let srt = Srt::get().map_err(|why| OutputError::Connect {
        addr: addr.clone(),
        reason: why,
    })?;
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| OutputError::Resolve {
            host: target.host.clone(),
            reason: e.to_string(),
        })?
        .collect();
    let Some(&socket_addr) = resolved.first() else {
        return Err(OutputError::Resolve {
            host: target.host.clone(),
            reason: "no address".into(),
        });
    };
    let o = srt_options(target);
    let options = CallerOptions {
        stream_id: o.stream_id,
        passphrase: o.passphrase,
        latency: o.latency_ms.map(|ms| Duration::from_millis(ms.into())),
        connect_timeout: timeouts.connect,
    };
    let (tx, rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let failure = Arc::new(Mutex::new(None));
    let stall = timeouts.stall;
    let thread_failure = failure.clone();
    std::thread::Builder::new()
        .name("srt-output".into())
        .spawn(move || {
            let socket = match srt.connect(socket_addr, &options) {
                Ok(s) => s,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            if let Err(e) = socket.set_send_timeout(stall) {
                let _ = ready_tx.send(Err(e));
                return;
            }
            if ready_tx.send(Ok(())).is_err() {
                return;
            }
            send_loop(&socket, rx, &thread_failure);
        })
        .map_err(|e| OutputError::Io(format!("cannot start an SRT thread: {e}")))?;
    match ready_rx.await {
        Ok(Ok(())) => Ok(SrtLink { tx, failure, addr }),
        Ok(Err(e)) => Err(match e.reject.and_then(refusal) {
            Some(reason) => OutputError::SrtRejected {
                addr,
                reason: reason.into(),
            },
            None => OutputError::Connect {
                addr,
                reason: e.message,
            },
        }),
        Err(_) => Err(OutputError::Io("the SRT thread ended".into())),
    }
}

/// What an SRT server's refusal (libsrt's `SRT_REJ_*` code, or an
/// access-control code from 1000 up) means for the user, when trying again
/// with the same URL cannot help; `None` for the others, retried as any
/// failure: overloaded, a reason not given, and "already live" (1409),
/// which is what a server says for a while after a connection it has not
/// yet seen drop, when antenne reconnects).
fn refusal(code: i32) -> Option<&'static str> {
    Some(match code {
        // SRT_REJ_BADSECRET
        10 => "wrong passphrase",
        // SRT_REJ_UNSECURE: one side encrypts, the other does not.
        11 => {
            "a passphrase is required by the server (or the server has none and the URL gives one)"
        }
        // SRT_REJ_VERSION
        8 => "the server's SRT version is not compatible",
        1401 => "wrong stream id or key (unauthorized)",
        1403 => "forbidden (the stream id is not allowed to publish)",
        1404 => "unknown stream id (not found)",
        _ => return None,
    })
}

/// Sends what the relay task queues until it stops queueing (the channel
/// closes) or a send fails (recorded in `failure`).
fn send_loop(
    socket: &antenne_srt::Socket,
    mut rx: mpsc::Receiver<Vec<u8>>,
    failure: &Mutex<Option<String>>,
) {
    while let Some(message) = rx.blocking_recv() {
        if let Err(e) = socket.send(&message) {
            *failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.message);
            return;
        }
    }
}

/// Takes the hub's frames, muxes them and queues whole SRT messages.
async fn relay_srt(
    link: SrtLink,
    sub: Subscription,
    stats: &OutputStats,
    timeouts: &Timeouts,
    cancel: &CancellationToken,
) -> Result<LiveEnd, OutputError> {
    let ingest_gone = cancel.child_token();
    let watcher = tokio::spawn(connection::watch_ingest(
        sub.hub().watch_on_air(),
        timeouts.grace,
        ingest_gone.clone(),
    ));
    let _stop_watcher = connection::AbortOnDrop(watcher);
    let mut muxer = TsMuxer::new();
    let mut rebaser = Rebaser::default();
    let mut frames: Vec<Frame> = Vec::with_capacity(64);
    let mut ts: Vec<u8> = Vec::with_capacity(64 * 1024);
    let dropped_base = stats.dropped();
    let failed = |link: &SrtLink| -> OutputError {
        let why = link
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| "the connection ended".into());
        OutputError::Io(format!("{} ({})", why, link.addr))
    };
    loop {
        tokio::select! {
            biased;
            _ = ingest_gone.cancelled() => {
                return Ok(if cancel.is_cancelled() { LiveEnd::Cancelled } else { LiveEnd::IngestGone });
            }
            _ = sub.recv_many(&mut frames, 64) => {}
        }
        for f in frames.drain(..) {
            let t = i64::from(rebaser.map(&f));
            let body = f.payload.to_payload();
            // A body the muxer cannot use (not H.264/HEVC/AAC) is skipped, as a
            // platform would refuse it.
            let _ = match f.kind {
                FrameKind::Video => muxer.video(t, &body, &mut ts),
                FrameKind::Audio => muxer.audio(t, &body, &mut ts),
                FrameKind::Metadata => Ok(()),
            };
        }
        stats.set_dropped(dropped_base + sub.dropped());
        // Whole messages go out now; a partial one waits for the next
        // frames (a frame is many packets: the wait is short).
        let whole = ts.len() - ts.len() % MESSAGE;
        for chunk in ts[..whole].chunks(MESSAGE) {
            let send = link.tx.send(chunk.to_vec());
            tokio::select! {
                biased;
                _ = ingest_gone.cancelled() => {
                    return Ok(if cancel.is_cancelled() { LiveEnd::Cancelled } else { LiveEnd::IngestGone });
                }
                r = tokio::time::timeout(timeouts.stall, send) => match r {
                    Ok(Ok(())) => stats.bytes.add(chunk.len()),
                    Ok(Err(_)) => return Err(failed(&link)),
                    Err(_) => return Err(OutputError::Stalled(timeouts.stall.as_secs())),
                },
            }
        }
        ts.drain(..whole);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_handshake_names_its_cause_and_transient_ones_are_retried() {
        assert_eq!(refusal(10), Some("wrong passphrase"));
        assert!(refusal(11).is_some_and(|r| r.contains("passphrase")));
        assert!(refusal(1401).is_some_and(|r| r.contains("stream id")));
        // Overloaded, already live (a reconnect the server has not seen
        // drop yet), timeouts: retried with the usual backoff.
        for code in [0, 1, 2, 5, 16, 1402, 1409, 1500] {
            assert_eq!(refusal(code), None, "{code}");
        }
        let e = OutputError::SrtRejected {
            addr: "127.0.0.1:9000".into(),
            reason: "wrong passphrase".into(),
        };
        assert!(e.is_rejection());
        assert_eq!(
            e.to_string(),
            "rejected by the SRT server 127.0.0.1:9000: wrong passphrase"
        );
    }
}
