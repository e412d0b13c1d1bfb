//! antenne's binding to Haivision's libsrt (the SRT library OBS and ffmpeg
//! use, so interoperability holds by construction), loaded at run time with
//! `dlopen` (`libsrt.so.1.5`, `libsrt-gnutls.so.1.5`, then `libsrt.so`; `ANTENNE_LIBSRT` names
//! another file, e.g. `/nonexistent` to test antenne without it). antenne
//! builds without libsrt's headers and runs without the library: [`Srt::get`]
//! then says why SRT is unavailable.
//!
//! Every call here blocks (libsrt's own threads do the network work): call
//! them from dedicated threads, never from an async runtime's.
//!
//! The unsafe code is in this crate only ([`ffi`] resolves the functions,
//! this file calls them); its invariants:
//! - an [`Api`] lives for the whole process (a `OnceLock`), so its function
//!   pointers stay valid;
//! - a [`Socket`] or [`Listener`] owns its SRT socket id and closes it
//!   once, on drop; buffers passed to libsrt are valid for the call's length;
//! - the listen callback's state is owned by its [`Listener`] and freed
//!   after the listener's socket is closed (`srt_close` returns once
//!   libsrt's receive thread no longer uses the listener, callback
//!   included); the callback never unwinds into C.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

mod addr;
mod ffi;
mod listener;
use addr::{from_sockaddr, to_sockaddr};
use ffi::{Api, Sock};
pub use listener::{Decide, Handshake, Listener, ListenerOptions, Verdict};

/// The library names tried, in order, unless `ANTENNE_LIBSRT` names one:
/// Debian's `libsrt1.5-openssl`, then `libsrt1.5-gnutls` (the same API;
/// the one Debian's ffmpeg pulls in), then the development link.
pub const LIBRARY_NAMES: [&str; 3] = ["libsrt.so.1.5", "libsrt-gnutls.so.1.5", "libsrt.so"];
/// What the user should install when libsrt is missing.
pub const INSTALL_HINT: &str = "install libsrt1.5-openssl";

/// The loaded library; cheap to copy.
#[derive(Clone, Copy)]
pub struct Srt {
    api: &'static Api,
}

impl std::fmt::Debug for Srt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Srt")
    }
}

/// An SRT failure, in libsrt's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// libsrt's error code (`SRT_ERRNO`), 0 when not from libsrt.
    pub code: i32,
    pub message: String,
    /// Why the peer refused a [`Srt::connect`]: libsrt's `SRT_REJ_*` code
    /// (e.g. 10, a wrong passphrase) or the listener's access-control code
    /// (1000 and up, e.g. 1401); `None` for any other failure.
    pub reject: Option<i32>,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

static LOADED: OnceLock<Result<Srt, String>> = OnceLock::new();

impl Srt {
    /// libsrt, loaded and started once per process, or why it is not there
    /// (e.g. "SRT unavailable: libsrt.so.1.5: cannot open …; install
    /// libsrt1.5-openssl").
    pub fn get() -> Result<Srt, String> {
        LOADED
            .get_or_init(|| {
                let custom = std::env::var("ANTENNE_LIBSRT")
                    .ok()
                    .filter(|s| !s.is_empty());
                let names: Vec<&str> = match &custom {
                    Some(name) => vec![name.as_str()],
                    None => LIBRARY_NAMES.to_vec(),
                };
                let api = Api::load(&names)
                    .map_err(|e| format!("SRT unavailable: {e}; {INSTALL_HINT}"))?;
                let api: &'static Api = Box::leak(Box::new(api));
                // SAFETY: srt_startup takes no arguments; calling it more
                // than once is allowed (it counts), and it runs once here.
                if unsafe { (api.startup)() } < 0 {
                    return Err("SRT unavailable: srt_startup failed".into());
                }
                // libsrt writes its own log to stderr: errors only (a
                // refused caller is antenne's to report, in its own log).
                // SAFETY: takes a syslog level; 3 is LOG_ERR.
                unsafe { (api.setloglevel)(3) };
                Ok(Srt { api })
            })
            .clone()
    }

    fn last_error(&self) -> Error {
        let mut errno: c_int = 0;
        // SAFETY: both read libsrt's thread-local last error; the string is
        // libsrt's, valid until the next call on this thread, copied here.
        let (code, message) = unsafe {
            let code = (self.api.getlasterror)(&mut errno);
            let p = (self.api.getlasterror_str)();
            let message = if p.is_null() {
                format!("SRT error {code}")
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            };
            (code, message)
        };
        Error {
            code,
            message,
            reject: None,
        }
    }

    fn new_socket(&self) -> Result<Socket, Error> {
        // SAFETY: no arguments; the id returned is owned by the `Socket`.
        let id = unsafe { (self.api.create_socket)() };
        if id == ffi::INVALID_SOCK {
            return Err(self.last_error());
        }
        Ok(Socket { srt: *self, id })
    }

    /// Connects to a listener as a caller, in live mode (what OBS and ffmpeg
    /// use), and returns the connected socket, or the failure (a rejection
    /// says why, e.g. a wrong passphrase).
    pub fn connect(&self, addr: SocketAddr, options: &CallerOptions) -> Result<Socket, Error> {
        let socket = self.new_socket()?;
        if let Some(id) = &options.stream_id {
            socket.set_string(ffi::SRTO_STREAMID, id)?;
        }
        if let Some(p) = &options.passphrase {
            socket.set_string(ffi::SRTO_PASSPHRASE, p)?;
        }
        if let Some(l) = options.latency {
            socket.set_int(ffi::SRTO_LATENCY, millis(l))?;
        }
        socket.set_int(ffi::SRTO_CONNTIMEO, millis(options.connect_timeout))?;
        let (storage, len) = to_sockaddr(addr);
        // SAFETY: `storage` holds a sockaddr of `len` bytes for the call.
        let r = unsafe {
            (self.api.connect)(
                socket.id,
                &storage as *const libc::sockaddr_storage as *const libc::sockaddr,
                len,
            )
        };
        if r == ffi::SRT_ERROR {
            let mut e = self.last_error();
            // SAFETY: plain getter on a socket this function owns.
            let reason = unsafe { (self.api.getrejectreason)(socket.id) };
            if reason > 1 {
                e.message = format!("{} ({})", e.message, self.reject_reason(reason));
                e.reject = Some(reason);
            }
            return Err(e);
        }
        Ok(socket)
    }

    fn reject_reason(&self, code: c_int) -> String {
        if code >= 1000 {
            return match code {
                1401 => "unauthorized: wrong stream id or key".into(),
                1403 => "forbidden".into(),
                1404 => "not found: unknown stream id".into(),
                1409 => "conflict: this stream is already live".into(),
                1402 => "overloaded".into(),
                c => format!("rejected by the peer, code {c}"),
            };
        }
        // SAFETY: srt_rejectreason_str returns a static string for any code.
        unsafe {
            let p = (self.api.rejectreason_str)(code);
            if p.is_null() {
                format!("reason {code}")
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        }
    }
}

fn millis(d: Duration) -> i32 {
    d.as_millis().min(i32::MAX as u128) as i32
}

/// How a caller connects.
#[derive(Debug, Clone)]
pub struct CallerOptions {
    pub stream_id: Option<String>,
    /// 10 to 79 characters (AES encryption), as libsrt requires.
    pub passphrase: Option<String>,
    pub latency: Option<Duration>,
    pub connect_timeout: Duration,
}

impl Default for CallerOptions {
    fn default() -> Self {
        Self {
            stream_id: None,
            passphrase: None,
            latency: None,
            connect_timeout: Duration::from_secs(3),
        }
    }
}

/// A connected SRT socket (live mode: each send is one message of at most
/// [`Socket::MAX_MESSAGE`] bytes). Closed on drop.
pub struct Socket {
    srt: Srt,
    id: Sock,
}

/// What a receive gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    Data(usize),
    /// Nothing within the receive timeout.
    Timeout,
}

impl Socket {
    /// The largest message live mode sends (7 TS packets).
    pub const MAX_MESSAGE: usize = 1316;

    fn set_int(&self, opt: c_int, value: i32) -> Result<(), Error> {
        // SAFETY: an int option, given as 4 bytes valid for the call.
        let r = unsafe {
            (self.srt.api.setsockflag)(
                self.id,
                opt,
                &value as *const i32 as *const c_void,
                std::mem::size_of::<i32>() as c_int,
            )
        };
        if r == ffi::SRT_ERROR {
            return Err(self.srt.last_error());
        }
        Ok(())
    }

    fn set_string(&self, opt: c_int, value: &str) -> Result<(), Error> {
        // SAFETY: a string option, given as `len` bytes valid for the call.
        let r = unsafe {
            (self.srt.api.setsockflag)(
                self.id,
                opt,
                value.as_ptr() as *const c_void,
                value.len() as c_int,
            )
        };
        if r == ffi::SRT_ERROR {
            return Err(self.srt.last_error());
        }
        Ok(())
    }

    /// The stream id the caller sent (for an accepted socket).
    pub fn stream_id(&self) -> String {
        let mut buf = [0u8; 513];
        let mut len = buf.len() as c_int;
        // SAFETY: `buf` is writable for `len` bytes; libsrt writes `len`.
        let r = unsafe {
            (self.srt.api.getsockflag)(
                self.id,
                ffi::SRTO_STREAMID,
                buf.as_mut_ptr() as *mut c_void,
                &mut len,
            )
        };
        if r == ffi::SRT_ERROR {
            return String::new();
        }
        let len = (len.max(0) as usize).min(buf.len());
        String::from_utf8_lossy(&buf[..len])
            .trim_end_matches('\0')
            .to_string()
    }

    /// Blocks at most `timeout` in each later [`Socket::recv`].
    pub fn set_recv_timeout(&self, timeout: Duration) -> Result<(), Error> {
        self.set_int(ffi::SRTO_RCVTIMEO, millis(timeout).max(1))
    }

    /// Blocks at most `timeout` in each later [`Socket::send`].
    pub fn set_send_timeout(&self, timeout: Duration) -> Result<(), Error> {
        self.set_int(ffi::SRTO_SNDTIMEO, millis(timeout).max(1))
    }

    /// Receives one message into `buf` (give it at least
    /// [`Socket::MAX_MESSAGE`] bytes). An error means the connection ended.
    pub fn recv(&self, buf: &mut [u8]) -> Result<Received, Error> {
        let len = buf.len().min(i32::MAX as usize) as c_int;
        // SAFETY: `buf` is writable for `len` bytes.
        let n = unsafe { (self.srt.api.recv)(self.id, buf.as_mut_ptr() as *mut c_char, len) };
        if n == ffi::SRT_ERROR {
            let e = self.srt.last_error();
            if e.code == ffi::SRT_EASYNCRCV || e.code == ffi::SRT_ETIMEOUT {
                return Ok(Received::Timeout);
            }
            return Err(e);
        }
        Ok(Received::Data(n.max(0) as usize))
    }

    /// Sends one message (at most [`Socket::MAX_MESSAGE`] bytes). An error
    /// means the connection ended or the peer stopped reading.
    pub fn send(&self, data: &[u8]) -> Result<(), Error> {
        let len = data.len().min(Self::MAX_MESSAGE) as c_int;
        // SAFETY: `data` is readable for `len` bytes.
        let n = unsafe { (self.srt.api.send)(self.id, data.as_ptr() as *const c_char, len) };
        if n == ffi::SRT_ERROR {
            let mut e = self.srt.last_error();
            if e.code == ffi::SRT_EASYNCSND || e.code == ffi::SRT_ETIMEOUT {
                e.message = "the peer stopped reading (send timed out)".into();
            }
            return Err(e);
        }
        Ok(())
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: the id this value owns, closed once.
        unsafe { (self.srt.api.close)(self.id) };
    }
}

/// The ingest key an SRT stream id carries: the whole id (`KEY`), or the
/// `r` of the access-control form (`#!::r=live/KEY,m=publish`, or
/// `#!::r=KEY`); `None` for an access-control id without `r` or with a mode
/// other than `publish`.
pub fn key_from_stream_id(id: &str) -> Option<&str> {
    let Some(fields) = id.strip_prefix("#!::") else {
        return Some(id);
    };
    let mut resource = None;
    for field in fields.split(',') {
        let (k, v) = field.split_once('=')?;
        match k {
            "r" => resource = Some(v),
            "m" if v != "publish" => return None,
            _ => {}
        }
    }
    let r = resource?;
    Some(r.strip_prefix("live/").unwrap_or(r))
}

#[cfg(test)]
mod tests;
