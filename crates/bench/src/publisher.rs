//! The publisher: plays the clip to the relay in real time, in a loop with
//! continuing timestamps, as OBS would (antenne's own client session speaks
//! OBS's command sequence). The instant just before each video message is
//! written is recorded in [`Clip::sent_ns`] for the sink to match.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use antenne_rtmp::client::{ClientEvent, ClientSession, PublishTarget};
use antenne_rtmp::handshake::random_packet;
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::clip::Kind;
use crate::net::now_ns;
use crate::stats::Registry;

/// What the control loop sees of the publisher.
#[derive(Debug, Default)]
pub struct PublisherState {
    pub running: AtomicBool,
    pub video_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    /// Matchable video messages sent inside the window.
    pub win_video_sent: AtomicU64,
    /// Messages written later than their due time by more than 50 ms (the
    /// relay did not take them in time).
    pub late: AtomicU64,
    pub error: Mutex<Option<String>>,
}

impl PublisherState {
    pub fn set_error(&self, e: String) {
        *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }

    pub fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// `rtmp://host:port/app/stream` → (host:port, target).
pub fn parse_url(url: &str) -> Result<(String, PublishTarget), String> {
    let rest = url
        .strip_prefix("rtmp://")
        .ok_or_else(|| format!("{url}: only rtmp:// is supported"))?;
    let (hostport, path) = rest
        .split_once('/')
        .ok_or_else(|| format!("{url}: no application"))?;
    let (app, stream) = path
        .rsplit_once('/')
        .ok_or_else(|| format!("{url}: no stream name"))?;
    if app.is_empty() || stream.is_empty() {
        return Err(format!("{url}: empty application or stream name"));
    }
    let hostport = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:1935")
    };
    Ok((
        hostport.clone(),
        PublishTarget {
            app: app.to_owned(),
            tc_url: format!("rtmp://{hostport}/{app}"),
            stream_name: stream.to_owned(),
        },
    ))
}

/// Connects and publishes; returns once the relay said
/// `NetStream.Publish.Start`, with the task that streams.
pub async fn start(
    url: &str,
    reg: Arc<Registry>,
    state: Arc<PublisherState>,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let (tcp, session) = connect(url).await?;
    state.running.store(true, Relaxed);
    Ok(tokio::spawn(async move {
        if let Err(e) = stream(tcp, session, reg, state.clone()).await {
            eprintln!("publisher: {e}");
            state.set_error(e);
        }
        state.running.store(false, Relaxed);
    }))
}

/// Connects and publishes; returns once the relay said
/// `NetStream.Publish.Start`.
pub async fn connect(url: &str) -> Result<(TcpStream, ClientSession), String> {
    let (addr, target) = parse_url(url)?;
    let mut tcp = TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let mut session = ClientSession::new(target, random_packet());
    let mut buf = vec![0u8; 64 * 1024];
    let published = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(out) = session.take_output() {
                tcp.write_all(&out).await.map_err(|e| e.to_string())?;
            }
            match session.poll_event() {
                Some(ClientEvent::Published) => return Ok(()),
                Some(ClientEvent::Rejected(s) | ClientEvent::StreamFailed(s)) => {
                    return Err(format!("relay refused: {} {}", s.code, s.description))
                }
                None => {}
            }
            let n = tcp.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("relay closed the connection".to_string());
            }
            session.feed(&buf[..n]).map_err(|e| e.to_string())?;
        }
    })
    .await;
    match published {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("publishing to {url}: {e}")),
        Err(_) => return Err(format!("publishing to {url}: no answer in 10 s")),
    }
    Ok((tcp, session))
}

async fn stream(
    tcp: TcpStream,
    session: ClientSession,
    reg: Arc<Registry>,
    state: Arc<PublisherState>,
) -> Result<(), String> {
    let (mut rd, mut wr) = tcp.into_split();
    let session = Arc::new(Mutex::new(session));
    // The relay's acknowledgements and pings: fed to the session, whose
    // answers leave with the next media message.
    let reader = {
        let session = session.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => return "the relay closed the connection".to_string(),
                    Ok(n) => {
                        let mut s = session.lock().unwrap_or_else(|p| p.into_inner());
                        if let Err(e) = s.feed(&buf[..n]) {
                            return format!("relay sent invalid RTMP: {e}");
                        }
                    }
                }
            }
        })
    };
    let _abort_reader = AbortOnDrop(reader.abort_handle());
    let clip = reg.clip.clone();
    let start = Instant::now();
    let mut parts = Vec::new();
    let mut out = BytesMut::new();
    for round in 0u64.. {
        let base = round * clip.duration_ms as u64;
        for tag in &clip.tags {
            if tag.header && round > 0 {
                continue;
            }
            let ts_ms = base + tag.ts as u64;
            let due = start + Duration::from_millis(ts_ms);
            tokio::time::sleep_until(due).await;
            if reader.is_finished() {
                return Err("the relay closed the connection".into());
            }
            let ts = ts_ms as u32;
            {
                let mut s = session.lock().unwrap_or_else(|p| p.into_inner());
                match tag.kind {
                    Kind::Meta => s.metadata_parts(ts, &tag.payload, &mut parts),
                    Kind::Audio => s.media_parts(false, ts, &tag.payload, &mut parts),
                    Kind::Video => s.media_parts(true, ts, &tag.payload, &mut parts),
                }
            }
            out.clear();
            for p in parts.drain(..) {
                out.extend_from_slice(&p);
            }
            let now = now_ns();
            if let Some(v) = tag.vidx {
                clip.sent_ns[v as usize].store(now, Relaxed);
                if reg.window.contains(now) {
                    state.win_video_sent.fetch_add(1, Relaxed);
                }
            }
            if Instant::now() > due + Duration::from_millis(50) {
                state.late.fetch_add(1, Relaxed);
            }
            wr.write_all(&out)
                .await
                .map_err(|e| format!("write to the relay: {e}"))?;
            if tag.kind == Kind::Video {
                state.video_sent.fetch_add(1, Relaxed);
            }
            state.bytes_sent.fetch_add(out.len() as u64, Relaxed);
        }
    }
    Ok(())
}

pub(crate) struct AbortOnDrop(pub(crate) tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let (a, t) = parse_url("rtmp://127.0.0.1:1935/live/bench").expect("valid");
        assert_eq!(a, "127.0.0.1:1935");
        assert_eq!((t.app.as_str(), t.stream_name.as_str()), ("live", "bench"));
        assert_eq!(t.tc_url, "rtmp://127.0.0.1:1935/live");
        let (a, _) = parse_url("rtmp://localhost/live/x").expect("valid");
        assert_eq!(a, "localhost:1935");
        assert!(parse_url("rtmps://h/live/x").is_err());
        assert!(parse_url("rtmp://h/live").is_err());
    }
}
