//! The listening side: [`Srt::listen`] binds a live-mode listener whose
//! callback ([`Decide`]) sees each caller's handshake (stream id, address)
//! in libsrt's thread and accepts it, with the passphrase it must use, or
//! refuses it with an access-control code, before any socket is handed
//! out; [`Listener::accept`] then takes the accepted connections.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::addr::read_sockaddr;
use super::ffi::Sock;
use super::{ffi, from_sockaddr, millis, to_sockaddr, Error, Socket, Srt};

impl Srt {
    /// Binds a live-mode listener on `addr`; `decide` sees each caller's
    /// handshake (in libsrt's thread: it must be quick and must not block)
    /// before the connection is accepted.
    pub fn listen(
        &self,
        addr: SocketAddr,
        backlog: usize,
        options: &ListenerOptions,
        decide: Decide,
    ) -> Result<Listener, Error> {
        let socket = self.new_socket()?;
        if let Some(l) = options.latency {
            socket.set_int(ffi::SRTO_RCVLATENCY, millis(l))?;
        }
        socket.set_int(ffi::SRTO_PEERIDLETIMEO, millis(options.peer_idle_timeout))?;
        let (storage, len) = to_sockaddr(addr);
        // SAFETY: `storage` holds a sockaddr of `len` bytes for the call.
        let r = unsafe {
            (self.api.bind)(
                socket.id,
                &storage as *const libc::sockaddr_storage as *const libc::sockaddr,
                len,
            )
        };
        if r == ffi::SRT_ERROR {
            return Err(self.last_error());
        }
        let state = Arc::new(CallbackState { srt: *self, decide });
        // SAFETY: the listener keeps `state` alive until after its socket
        // is closed (field order in `Listener`), and libsrt calls the
        // callback only for a listening socket; the trampoline matches
        // srt_listen_callback_fn.
        let r = unsafe {
            (self.api.listen_callback)(
                socket.id,
                Some(trampoline),
                Arc::as_ptr(&state) as *mut c_void,
            )
        };
        if r == ffi::SRT_ERROR {
            return Err(self.last_error());
        }
        // SAFETY: a socket this function owns.
        if unsafe { (self.api.listen)(socket.id, backlog.min(1024) as c_int) } == ffi::SRT_ERROR {
            return Err(self.last_error());
        }
        // SAFETY: no arguments; the id is released in Listener's drop.
        let epoll = unsafe { (self.api.epoll_create)() };
        if epoll < 0 {
            return Err(self.last_error());
        }
        let events = ffi::SRT_EPOLL_IN | ffi::SRT_EPOLL_ERR;
        // SAFETY: valid epoll id and socket; `events` outlives the call.
        if unsafe { (self.api.epoll_add_usock)(epoll, socket.id, &events) } < 0 {
            let e = self.last_error();
            // SAFETY: the epoll id created above, released once.
            unsafe { (self.api.epoll_release)(epoll) };
            return Err(e);
        }
        Ok(Listener {
            socket,
            epoll,
            _state: state,
        })
    }
}

/// How a listener accepts.
#[derive(Debug, Clone)]
pub struct ListenerOptions {
    /// The receiver latency (the larger of it and the caller's is used).
    pub latency: Option<Duration>,
    /// A connection whose peer is silent (not even keepalives) this long
    /// breaks.
    pub peer_idle_timeout: Duration,
}

/// A caller's handshake, as the listen callback sees it.
#[derive(Debug, Clone)]
pub struct Handshake {
    pub peer: Option<SocketAddr>,
    /// The caller's `streamid` (SRTO_STREAMID), empty without one.
    pub stream_id: String,
}

/// What the listen callback decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accept, with this passphrase required (a caller without it, or with
    /// another, is refused by libsrt).
    Accept { passphrase: Option<String> },
    /// Refuse, with an access-control code (`SRT_REJX_*`, 1000 to 1999,
    /// e.g. 1401 unauthorized) the caller sees.
    Reject(i32),
}

/// The listen callback: sees each caller's handshake in libsrt's thread
/// (quick, never blocking). Shared, so one callback serves a listener that
/// is closed and bound again.
pub type Decide = Arc<dyn Fn(&Handshake) -> Verdict + Send + Sync>;

struct CallbackState {
    srt: Srt,
    decide: Decide,
}

/// `srt_listen_callback_fn`: turns the C arguments into a [`Handshake`],
/// asks the callback, and applies its [`Verdict`] to the new socket.
unsafe extern "C" fn trampoline(
    opaque: *mut c_void,
    ns: Sock,
    _hs_version: c_int,
    peer: *const libc::sockaddr,
    stream_id: *const c_char,
) -> c_int {
    let run = || {
        // SAFETY: `opaque` is the `CallbackState` given to
        // srt_listen_callback, which its listener keeps alive while its
        // socket is open.
        let state = unsafe { &*(opaque as *const CallbackState) };
        let stream_id = if stream_id.is_null() {
            String::new()
        } else {
            // SAFETY: libsrt passes a NUL-terminated string (≤ 512 bytes)
            // valid for the callback's duration; copied here.
            unsafe { CStr::from_ptr(stream_id) }
                .to_string_lossy()
                .into_owned()
        };
        // SAFETY: libsrt passes the caller's address (or null).
        let peer = unsafe { from_sockaddr(peer) };
        let handshake = Handshake { peer, stream_id };
        match (state.decide)(&handshake) {
            Verdict::Accept { passphrase } => {
                if let Some(p) = passphrase {
                    let Ok(c) = CString::new(p) else { return -1 };
                    let bytes = c.as_bytes();
                    // SAFETY: `ns` is the pending socket libsrt handed us;
                    // the buffer is valid for `bytes.len()` bytes.
                    let r = unsafe {
                        (state.srt.api.setsockflag)(
                            ns,
                            ffi::SRTO_PASSPHRASE,
                            bytes.as_ptr() as *const c_void,
                            bytes.len() as c_int,
                        )
                    };
                    if r == ffi::SRT_ERROR {
                        return -1;
                    }
                }
                0
            }
            Verdict::Reject(code) => {
                // SAFETY: `ns` is the pending socket libsrt handed us.
                unsafe { (state.srt.api.setrejectreason)(ns, code) };
                -1
            }
        }
    };
    // Never unwind into C: a panic refuses the caller.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or(-1)
}

/// A listening socket.
pub struct Listener {
    // Dropped in this order: the socket is closed before the callback's
    // state is freed (srt_close returns once libsrt's receive thread is
    // done with the listener, callback included).
    socket: Socket,
    epoll: c_int,
    _state: Arc<CallbackState>,
}

impl Listener {
    /// The address it listens on (its port when bound to port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        let srt = self.socket.srt;
        // SAFETY: getsockname writes at most `len` bytes: the bound address.
        let (r, addr) =
            unsafe { read_sockaddr(|p, len| (srt.api.getsockname)(self.socket.id, p, len)) };
        if r == ffi::SRT_ERROR {
            return Err(srt.last_error());
        }
        addr.ok_or_else(|| Error {
            code: 0,
            message: "the listener has no address".into(),
            reject: None,
        })
    }

    /// The next accepted connection, or `None` when none came within
    /// `timeout` (so the caller can check whether to stop).
    pub fn accept(&self, timeout: Duration) -> Result<Option<(Socket, Option<SocketAddr>)>, Error> {
        let srt = self.socket.srt;
        let mut event = ffi::EpollEvent { fd: 0, events: 0 };
        // SAFETY: `event` is writable for one entry.
        let n =
            unsafe { (srt.api.epoll_uwait)(self.epoll, &mut event, 1, timeout.as_millis() as i64) };
        if n <= 0 {
            if n < 0 {
                let e = srt.last_error();
                if e.code != ffi::SRT_ETIMEOUT {
                    return Err(e);
                }
            }
            return Ok(None);
        }
        // SAFETY: accept writes at most `len` bytes: the peer's address. The
        // new id is owned by the returned `Socket`.
        let (id, peer) =
            unsafe { read_sockaddr(|p, len| (srt.api.accept)(self.socket.id, p, len)) };
        if id == ffi::INVALID_SOCK {
            let e = srt.last_error();
            if e.code == ffi::SRT_EASYNCRCV {
                return Ok(None);
            }
            return Err(e);
        }
        Ok(Some((Socket { srt, id }, peer)))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // SAFETY: the epoll id this value owns, released once (the socket
        // closes in its own drop).
        unsafe { (self.socket.srt.api.epoll_release)(self.epoll) };
    }
}
