//! [`FaultProxy`]: a TCP peer on 127.0.0.1 that stands in front of a real
//! receiver (normally an [`super::Nginx`]) and misbehaves on demand, the way
//! a platform or the network between does. Switching back to
//! [`Fault::None`] "removes the fault": the same port then leads to the real
//! receiver again, so a test can check that a destination recovers by
//! itself.
//!
//! What each [`Fault`] does, and to which connections:
//! - `None`: forwards both ways at full speed (to the backend, connected on
//!   the first byte that must go there).
//! - `BlackHole`: connections stay open but nothing is read from them any
//!   more (existing ones mid-stream, and new ones from their first byte):
//!   the sender's socket fills up, as with a platform that hangs.
//! - `Slow { bytes_per_sec }`: reads (and forwards) at most that rate, with a
//!   small receive buffer: a congested or throttled platform.
//! - `Reset`: every connection is reset (RST, `SO_LINGER` 0), existing ones
//!   at once and new ones right after accept.
//! - `HandshakeOnly`: new connections get a real RTMP handshake
//!   (`antenne_rtmp`'s [`ServerHandshake`](antenne_rtmp::handshake::ServerHandshake)),
//!   then everything they send is read and ignored: `connect` is never
//!   answered. Existing connections are not affected.
//! - `RejectKey`: new connections are served by a fake platform
//!   (`antenne_rtmp`'s [`ServerSession`](antenne_rtmp::ServerSession)) that
//!   accepts `connect` and refuses `publish` with
//!   `NetStream.Publish.BadName`, as platforms do for an unknown stream key.
//!
//! A connection accepted under `HandshakeOnly` or `RejectKey` keeps that
//! behaviour for its life; every other connection follows the current fault
//! as it changes. When the fault goes back to `None`, a connection that was
//! held (`BlackHole`) or throttled (`Slow`) while it had a receiver session
//! is reset rather than resumed, as a platform drops a connection it gave
//! up on: resuming it would feed stale data to the receiver, whose session
//! would hold the stream name while the sender already reconnected.

use anyhow::{Context, Result};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How the proxy misbehaves (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    BlackHole,
    Slow { bytes_per_sec: usize },
    Reset,
    HandshakeOnly,
    RejectKey,
}

/// Description the fake platform gives when it refuses a key.
pub const REJECT_DESCRIPTION: &str = "invalid stream key";

/// Receive buffer of accepted sockets (the kernel doubles it): small, so
/// that a slow or stopped reader pushes back on the sender at once.
const RCVBUF: libc::c_int = 64 * 1024;

struct Shared {
    fault: Mutex<Fault>,
    stop: AtomicBool,
    accepted: AtomicU64,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn fault(&self) -> Fault {
        self.fault.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// A misbehaving TCP peer in front of 127.0.0.1:`backend`. Stops (and
/// closes every connection) on drop.
pub struct FaultProxy {
    port: u16,
    backend: u16,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

fn set_int_opt(fd: libc::c_int, level: libc::c_int, name: libc::c_int, value: libc::c_int) {
    // SAFETY: setsockopt(2) on a socket we own, with a c_int value.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &value as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Makes the last close of `sock` (every fd of it) a reset rather than a
/// FIN.
fn reset(sock: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt(2) on a socket we own, with a `linger` value.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(sock);
}

impl FaultProxy {
    /// Listens on a free port, forwarding to 127.0.0.1:`backend`, with
    /// `fault` from the start.
    pub fn start(backend: u16, fault: Fault) -> Result<FaultProxy> {
        let mut last = None;
        for _ in 0..3 {
            let port = super::free_port();
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => return Self::serve(l, backend, fault),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("an attempt")).context("fault proxy: cannot bind")
    }

    fn serve(listener: TcpListener, backend: u16, fault: Fault) -> Result<FaultProxy> {
        // Accepted sockets inherit the listener's buffer size (which sets
        // the TCP window they advertise).
        set_int_opt(
            listener.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            RCVBUF,
        );
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let shared = Arc::new(Shared {
            fault: Mutex::new(fault),
            stop: AtomicBool::new(false),
            accepted: AtomicU64::new(0),
            threads: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let accept = std::thread::spawn(move || {
            while !s.stopped() {
                match listener.accept() {
                    Ok((sock, _)) => {
                        s.accepted.fetch_add(1, Ordering::Relaxed);
                        let conn_shared = s.clone();
                        let t = std::thread::spawn(move || connection(sock, backend, conn_shared));
                        s.threads.lock().unwrap_or_else(|e| e.into_inner()).push(t);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(FaultProxy {
            port,
            backend,
            shared,
            accept: Some(accept),
        })
    }

    /// The port destinations connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The receiver it forwards to.
    pub fn backend(&self) -> u16 {
        self.backend
    }

    /// `rtmp://127.0.0.1:PORT/live`.
    pub fn url(&self) -> String {
        format!("rtmp://127.0.0.1:{}/live", self.port)
    }

    /// Changes the fault (see the module doc for who it applies to).
    pub fn set(&self, fault: Fault) {
        *self.shared.fault.lock().unwrap_or_else(|e| e.into_inner()) = fault;
    }

    /// TCP connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let threads = std::mem::take(
            &mut *self
                .shared
                .threads
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for t in threads {
            let _ = t.join();
        }
    }
}

/// What one connection does under the current fault, until it ends.
fn connection(client: TcpStream, backend_port: u16, shared: Arc<Shared>) {
    let _ = client.set_nodelay(true);
    let _ = client.set_read_timeout(Some(Duration::from_millis(50)));
    match shared.fault() {
        Fault::HandshakeOnly => return handshake_only(client, &shared),
        Fault::RejectKey => return reject_key(client, &shared),
        _ => {}
    }
    let mut backend: Option<TcpStream> = None;
    let mut pump: Option<JoinHandle<()>> = None;
    let backend_gone = Arc::new(AtomicBool::new(false));
    // A connection that was held (black hole) or throttled mid-stream is
    // dropped when the fault is removed: its receiver session would
    // otherwise get stale data and hold the stream name while the sender
    // already reconnected.
    let mut suffered = false;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if shared.stopped() || backend_gone.load(Ordering::Relaxed) {
            break;
        }
        let fault = shared.fault();
        if matches!(fault, Fault::BlackHole | Fault::Slow { .. }) && backend.is_some() {
            suffered = true;
        }
        let limit = match fault {
            Fault::Reset => break,
            Fault::None if suffered => break,
            Fault::BlackHole => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Fault::Slow { bytes_per_sec } => (bytes_per_sec / 10).clamp(1, buf.len()),
            _ => buf.len(),
        };
        let n = match (&client).read(&mut buf[..limit]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        if backend.is_none() {
            let Ok(b) = TcpStream::connect(("127.0.0.1", backend_port)) else {
                break;
            };
            let _ = b.set_nodelay(true);
            let (Ok(from), Ok(to)) = (b.try_clone(), client.try_clone()) else {
                break;
            };
            let gone = backend_gone.clone();
            pump = Some(std::thread::spawn(move || copy_back(from, to, gone)));
            backend = Some(b);
        }
        if let Some(b) = backend.as_mut() {
            if b.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        if matches!(shared.fault(), Fault::Slow { .. }) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let drop_it = suffered || shared.fault() == Fault::Reset;
    if let Some(b) = backend.take() {
        let _ = b.shutdown(Shutdown::Both);
    }
    if let Some(p) = pump.take() {
        let _ = p.join();
    }
    if drop_it {
        reset(client);
    } else {
        let _ = client.shutdown(Shutdown::Both);
    }
}

/// Backend to client, until either side closes; then sets `gone`.
fn copy_back(mut from: TcpStream, mut to: TcpStream, gone: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    gone.store(true, Ordering::Relaxed);
}

/// Answers the RTMP handshake, then reads and ignores everything.
fn handshake_only(mut client: TcpStream, shared: &Shared) {
    use antenne_rtmp::handshake::{HandshakeProgress, ServerHandshake};
    let mut hs = ServerHandshake::new(antenne_rtmp::handshake::random_packet());
    let mut pending = Vec::new();
    let mut done = false;
    let mut buf = vec![0u8; 16 * 1024];
    while !shared.stopped() {
        let n = match client.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => return,
        };
        if done {
            continue;
        }
        pending.extend_from_slice(&buf[..n]);
        let mut out = bytes::BytesMut::new();
        match hs.feed(&pending, &mut out) {
            Ok((HandshakeProgress::Done { .. }, _)) => done = true,
            Ok((HandshakeProgress::NeedMore, used)) => {
                pending.drain(..used);
            }
            Err(_) => return,
        }
        if !out.is_empty() && client.write_all(&out).is_err() {
            return;
        }
    }
}

/// A fake platform that refuses every stream key.
fn reject_key(mut client: TcpStream, shared: &Shared) {
    use antenne_rtmp::{ServerConfig, ServerEvent, ServerSession};
    let mut session = ServerSession::new(
        ServerConfig::default(),
        antenne_rtmp::handshake::random_packet(),
    );
    let mut buf = vec![0u8; 16 * 1024];
    while !shared.stopped() {
        let n = match client.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => return,
        };
        if session.feed(&buf[..n]).is_err() {
            return;
        }
        loop {
            while let Some(ev) = session.poll_event() {
                match ev {
                    ServerEvent::ConnectRequested { .. } => session.accept_connect(),
                    ServerEvent::PublishRequested { .. } => {
                        session.reject_publish("NetStream.Publish.BadName", REJECT_DESCRIPTION)
                    }
                    _ => {}
                }
            }
            if let Some(out) = session.take_output() {
                if client.write_all(&out).is_err() {
                    return;
                }
            }
            if session.resume().is_err() {
                return;
            }
            if !session.has_events() {
                break;
            }
        }
    }
}
