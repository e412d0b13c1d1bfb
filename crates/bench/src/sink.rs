//! The sink: one listener (plain TCP, and optionally one TLS) taking any
//! number of publishers, counting what each stream receives.
//!
//! Reads go into one 256 KiB buffer per thread (not per connection), with
//! the kernel receive timestamp; the chunk stream is scanned, not decoded
//! (see [`crate::scan`]). TLS is rustls driven by hand over the same reads.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use antenne_rtmp::flv::inspect_video;
use antenne_rtmp::handshake::random_packet;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream};

use crate::net::{enable_rx_timestamps, now_ns, recv_with_timestamp};
use crate::session::{Event, Session};
use crate::stats::{Registry, StreamStats};

const READ_BUF: usize = 256 * 1024;

thread_local! {
    /// (received bytes, TLS plaintext) buffers of this thread.
    static BUFS: RefCell<(Vec<u8>, Vec<u8>)> =
        RefCell::new((vec![0; READ_BUF], vec![0; READ_BUF]));
}

/// Accepts connections until the runtime stops.
pub async fn listen(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    reg: Arc<Registry>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: say so, wait a little, go on.
                eprintln!("sink: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        reg.accepted.fetch_add(1, Relaxed);
        let reg = reg.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let mut conn = Conn {
                reg: reg.clone(),
                stats: None,
                name: None,
                got_keyframe: false,
                pending_bytes: 0,
            };
            if let Err(e) = conn.run(tcp, tls).await {
                reg.closed_with_error.fetch_add(1, Relaxed);
                eprintln!(
                    "sink: closing connection from {peer} (stream {}): {e}",
                    conn.name.as_deref().unwrap_or("-")
                );
            }
        });
    }
}

/// One accepted connection.
struct Conn {
    reg: Arc<Registry>,
    stats: Option<Arc<StreamStats>>,
    name: Option<Arc<str>>,
    got_keyframe: bool,
    /// Bytes received before `publish` (attributed to the stream then).
    pending_bytes: u64,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(s) = self.stats.take() {
            s.open.fetch_sub(1, Relaxed);
        }
    }
}

impl Conn {
    async fn run(
        &mut self,
        mut tcp: TcpStream,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<(), String> {
        let fd = tcp.as_raw_fd();
        // Without timestamps, arrival = read time: still a valid upper bound.
        let _ = enable_rx_timestamps(fd);
        let _ = tcp.set_nodelay(true);
        let mut session = Session::new(random_packet());
        let mut tls = match tls {
            Some(cfg) => {
                Some(rustls::ServerConnection::new(cfg).map_err(|e| format!("TLS set-up: {e}"))?)
            }
            None => None,
        };
        let mut wbuf: Vec<u8> = Vec::new();
        loop {
            tcp.readable().await.map_err(|e| e.to_string())?;
            let read = tcp.try_io(Interest::READABLE, || {
                BUFS.with(|b| recv_with_timestamp(fd, &mut b.borrow_mut().0))
            });
            let (n, kernel_ts) = match read {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(()),
                Err(e) => return Err(format!("read: {e}")),
            };
            if n == 0 {
                return Ok(());
            }
            let read_ns = now_ns();
            let arrival = kernel_ts.unwrap_or(read_ns);
            let closed = BUFS.with(|b| {
                let mut b = b.borrow_mut();
                let (raw, plain) = &mut *b;
                match &mut tls {
                    None => {
                        self.feed(
                            &mut session,
                            &raw[..n],
                            arrival,
                            read_ns,
                            kernel_ts.is_some(),
                        )?;
                        Ok::<bool, String>(false)
                    }
                    Some(t) => {
                        let mut rd = &raw[..n];
                        while !rd.is_empty() {
                            t.read_tls(&mut rd).map_err(|e| format!("TLS read: {e}"))?;
                            t.process_new_packets().map_err(|e| format!("TLS: {e}"))?;
                            loop {
                                match t.reader().read(plain) {
                                    Ok(0) => return Ok(true),
                                    Ok(k) => self.feed(
                                        &mut session,
                                        &plain[..k],
                                        arrival,
                                        read_ns,
                                        kernel_ts.is_some(),
                                    )?,
                                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                    Err(e) => return Err(format!("TLS: {e}")),
                                }
                            }
                        }
                        Ok(false)
                    }
                }
            })?;
            let out = session.output();
            match &mut tls {
                None => wbuf.extend_from_slice(out),
                Some(t) => {
                    if !out.is_empty() {
                        t.writer()
                            .write_all(out)
                            .map_err(|e| format!("TLS write: {e}"))?;
                    }
                    while t.wants_write() {
                        t.write_tls(&mut wbuf)
                            .map_err(|e| format!("TLS write: {e}"))?;
                    }
                }
            }
            out.clear();
            if !wbuf.is_empty() {
                tcp.write_all(&wbuf)
                    .await
                    .map_err(|e| format!("write: {e}"))?;
                wbuf.clear();
            }
            if closed {
                return Ok(());
            }
        }
    }

    fn feed(
        &mut self,
        session: &mut Session,
        data: &[u8],
        arrival: u64,
        read_ns: u64,
        kernel: bool,
    ) -> Result<(), String> {
        match &self.stats {
            Some(s) => {
                s.bytes.fetch_add(data.len() as u64, Relaxed);
            }
            None => self.pending_bytes += data.len() as u64,
        }
        let reg = &self.reg;
        let stats = &mut self.stats;
        let name = &mut self.name;
        let got_keyframe = &mut self.got_keyframe;
        let pending = &mut self.pending_bytes;
        session
            .feed(data, |ev| match ev {
                Event::Published { name: n } => {
                    let s = reg.stream(n);
                    s.open.fetch_add(1, Relaxed);
                    s.connections.fetch_add(1, Relaxed);
                    s.bytes.fetch_add(std::mem::take(pending), Relaxed);
                    if let Some(old) = stats.replace(s) {
                        old.open.fetch_sub(1, Relaxed);
                    }
                    *name = Some(n.into());
                }
                Event::Unpublished => {
                    if let Some(s) = stats.take() {
                        s.open.fetch_sub(1, Relaxed);
                    }
                }
                Event::Media {
                    type_id,
                    len,
                    head,
                    tail,
                } => {
                    let Some(s) = stats.as_ref() else { return };
                    match type_id {
                        8 => {
                            s.audio.fetch_add(1, Relaxed);
                        }
                        9 => {
                            s.video.fetch_add(1, Relaxed);
                            let key = inspect_video(head)
                                .is_some_and(|v| v.keyframe && !v.sequence_header);
                            if key {
                                s.keyframes.fetch_add(1, Relaxed);
                                if !*got_keyframe {
                                    *got_keyframe = true;
                                    if let Some(n) = name.as_ref() {
                                        let _ = reg.first_keyframes.send((n.clone(), arrival));
                                    }
                                }
                            }
                            if let Some(sent) = reg.clip.sent_at(len, tail) {
                                if reg.window.contains(sent) {
                                    s.win_video.fetch_add(1, Relaxed);
                                    let us = |t: u64| (t.saturating_sub(sent) / 1000) as u32;
                                    let mut smp = s.samples();
                                    smp.socket_us.push(us(arrival));
                                    smp.read_us.push(us(read_ns));
                                    smp.with_kernel_ts += kernel as u64;
                                }
                            }
                        }
                        _ => {
                            s.data.fetch_add(1, Relaxed);
                        }
                    }
                }
            })
            .map_err(|e| e.to_string())
    }
}

/// Binds a listener (with receive timestamps inherited by its connections).
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let l = TcpListener::bind(addr).await?;
    let _ = enable_rx_timestamps(l.as_raw_fd());
    Ok(l)
}

/// TLS server configuration from PEM files.
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<rustls::ServerConfig, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate: {e}"))
}
