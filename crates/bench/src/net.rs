//! Socket reads with the kernel's receive timestamp.
//!
//! With `SO_TIMESTAMPNS` on a TCP socket, `recvmsg` also returns the
//! CLOCK_REALTIME instant at which the newest segment it read arrived at
//! the socket. The sink uses it as the arrival time of what it read, so the
//! hop latency does not include the sink's own scheduling (at 1,000 streams
//! a read may wait for 999 others). It is the arrival of the *newest*
//! segment read, so it never under-estimates.

use std::io;
use std::os::fd::RawFd;
use std::time::{SystemTime, UNIX_EPOCH};

/// CLOCK_REALTIME now, in ns since the epoch (the clock of receive
/// timestamps).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Asks for receive timestamps on `fd`. Failure only means reads come
/// without them.
pub fn enable_rx_timestamps(fd: RawFd) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: `fd` is an open socket owned by the caller; the option value
    // is a valid c_int that outlives the call.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One non-blocking `recvmsg` into `buf`: bytes read (0 = end of stream)
/// and the kernel receive timestamp (ns since the epoch) when there is one.
/// `WouldBlock` when nothing is there.
pub fn recv_with_timestamp(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<u64>)> {
    // u64 array: cmsg buffers must be aligned for cmsghdr.
    let mut cbuf = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is a valid "no name, no control" header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
    // SAFETY: `msg` points at `iov` (which points at `buf`) and at `cbuf`,
    // all alive and writable for the duration of the call, with their
    // true lengths.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut ts = None;
    // SAFETY: the CMSG_* macros walk the control buffer the kernel filled,
    // within `msg_controllen`; the timestamp is read unaligned from inside it.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let h = &*c;
            if h.cmsg_level == libc::SOL_SOCKET && h.cmsg_type == libc::SCM_TIMESTAMPNS {
                let t: libc::timespec =
                    std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                if t.tv_sec > 0 {
                    ts = Some(t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64);
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, ts))
}
