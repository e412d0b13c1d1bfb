//! The raw libsrt surface antenne uses, resolved with `dlopen` at run time.
//!
//! Signatures and constants are those of libsrt 1.5's `srt/srt.h` (Debian's
//! `libsrt-openssl-dev`); `SRTSOCKET` is an `int32_t`, errors are `-1`
//! (`SRT_ERROR`) with the reason in a thread-local (`srt_getlasterror`).
//!
//! Invariant: every function pointer in [`Api`] was resolved from the
//! `Library` stored beside it, which lives as long as the `Api` (itself kept
//! for the whole process in a `OnceLock`), so calling one never calls into
//! an unloaded library.

use std::ffi::{c_char, c_int, c_void};

pub type Sock = i32;
pub const SRT_ERROR: c_int = -1;
pub const INVALID_SOCK: Sock = -1;

// SRT_SOCKOPT (srt.h).
pub const SRTO_SNDTIMEO: c_int = 13;
pub const SRTO_RCVTIMEO: c_int = 14;
pub const SRTO_LATENCY: c_int = 23;
pub const SRTO_PASSPHRASE: c_int = 26;
pub const SRTO_CONNTIMEO: c_int = 36;
pub const SRTO_RCVLATENCY: c_int = 43;
pub const SRTO_STREAMID: c_int = 46;
pub const SRTO_PEERIDLETIMEO: c_int = 55;

// SRT_EPOLL_OPT.
pub const SRT_EPOLL_IN: c_int = 0x1;
pub const SRT_EPOLL_ERR: c_int = 0x8;

// SRT_ERRNO: 1000 × major + minor.
pub const SRT_EASYNCRCV: c_int = 6002;
pub const SRT_ETIMEOUT: c_int = 6003;
pub const SRT_EASYNCSND: c_int = 6001;

#[repr(C)]
pub struct EpollEvent {
    pub fd: Sock,
    pub events: c_int,
}

pub type ListenCallback = unsafe extern "C" fn(
    opaque: *mut c_void,
    ns: Sock,
    hs_version: c_int,
    peer: *const libc::sockaddr,
    stream_id: *const c_char,
) -> c_int;

/// The functions antenne calls, each resolved by name.
pub struct Api {
    pub startup: unsafe extern "C" fn() -> c_int,
    pub setloglevel: unsafe extern "C" fn(c_int),
    pub create_socket: unsafe extern "C" fn() -> Sock,
    pub bind: unsafe extern "C" fn(Sock, *const libc::sockaddr, c_int) -> c_int,
    pub listen: unsafe extern "C" fn(Sock, c_int) -> c_int,
    pub listen_callback: unsafe extern "C" fn(Sock, Option<ListenCallback>, *mut c_void) -> c_int,
    pub accept: unsafe extern "C" fn(Sock, *mut libc::sockaddr, *mut c_int) -> Sock,
    pub connect: unsafe extern "C" fn(Sock, *const libc::sockaddr, c_int) -> c_int,
    pub close: unsafe extern "C" fn(Sock) -> c_int,
    pub getsockname: unsafe extern "C" fn(Sock, *mut libc::sockaddr, *mut c_int) -> c_int,
    pub setsockflag: unsafe extern "C" fn(Sock, c_int, *const c_void, c_int) -> c_int,
    pub getsockflag: unsafe extern "C" fn(Sock, c_int, *mut c_void, *mut c_int) -> c_int,
    pub send: unsafe extern "C" fn(Sock, *const c_char, c_int) -> c_int,
    pub recv: unsafe extern "C" fn(Sock, *mut c_char, c_int) -> c_int,
    pub getlasterror: unsafe extern "C" fn(*mut c_int) -> c_int,
    pub getlasterror_str: unsafe extern "C" fn() -> *const c_char,
    pub setrejectreason: unsafe extern "C" fn(Sock, c_int) -> c_int,
    pub getrejectreason: unsafe extern "C" fn(Sock) -> c_int,
    pub rejectreason_str: unsafe extern "C" fn(c_int) -> *const c_char,
    pub epoll_create: unsafe extern "C" fn() -> c_int,
    pub epoll_add_usock: unsafe extern "C" fn(c_int, Sock, *const c_int) -> c_int,
    pub epoll_uwait: unsafe extern "C" fn(c_int, *mut EpollEvent, c_int, i64) -> c_int,
    pub epoll_release: unsafe extern "C" fn(c_int) -> c_int,
    /// Keeps the code the pointers above point into loaded.
    _lib: libloading::Library,
}

macro_rules! resolve {
    ($lib:expr, $name:literal) => {{
        // SAFETY: the type of the binding this expands into is the C
        // signature of `$name` in srt.h (checked against libsrt 1.5).
        let sym = unsafe { $lib.get(concat!($name, "\0").as_bytes()) }
            .map_err(|e| format!("{} has no {}: {e}", "libsrt", $name))?;
        *sym
    }};
}

impl Api {
    /// Loads the first of `names` that `dlopen` finds and resolves every
    /// function, or says why not.
    pub fn load(names: &[&str]) -> Result<Api, String> {
        let mut errors = Vec::new();
        for name in names {
            // SAFETY: loading libsrt runs its initialisers, which only set up
            // its own globals (no process-wide side effects antenne relies on).
            match unsafe { libloading::Library::new(name) } {
                Ok(lib) => return Self::resolve(lib),
                Err(e) => errors.push(format!("{name}: {e}")),
            }
        }
        Err(errors.join("; "))
    }

    fn resolve(lib: libloading::Library) -> Result<Api, String> {
        Ok(Api {
            startup: resolve!(lib, "srt_startup"),
            setloglevel: resolve!(lib, "srt_setloglevel"),
            create_socket: resolve!(lib, "srt_create_socket"),
            bind: resolve!(lib, "srt_bind"),
            listen: resolve!(lib, "srt_listen"),
            listen_callback: resolve!(lib, "srt_listen_callback"),
            accept: resolve!(lib, "srt_accept"),
            connect: resolve!(lib, "srt_connect"),
            close: resolve!(lib, "srt_close"),
            getsockname: resolve!(lib, "srt_getsockname"),
            setsockflag: resolve!(lib, "srt_setsockflag"),
            getsockflag: resolve!(lib, "srt_getsockflag"),
            send: resolve!(lib, "srt_send"),
            recv: resolve!(lib, "srt_recv"),
            getlasterror: resolve!(lib, "srt_getlasterror"),
            getlasterror_str: resolve!(lib, "srt_getlasterror_str"),
            setrejectreason: resolve!(lib, "srt_setrejectreason"),
            getrejectreason: resolve!(lib, "srt_getrejectreason"),
            rejectreason_str: resolve!(lib, "srt_rejectreason_str"),
            epoll_create: resolve!(lib, "srt_epoll_create"),
            epoll_add_usock: resolve!(lib, "srt_epoll_add_usock"),
            epoll_uwait: resolve!(lib, "srt_epoll_uwait"),
            epoll_release: resolve!(lib, "srt_epoll_release"),
            _lib: lib,
        })
    }
}
