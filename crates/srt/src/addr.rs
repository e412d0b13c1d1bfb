//! `SocketAddr` to and from the C socket addresses libsrt takes and gives
//! (IPv4 and IPv6).

use std::ffi::c_int;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

pub(crate) fn to_sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, c_int) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for
            // sockaddr_in.
            unsafe {
                std::ptr::write(
                    &mut storage as *mut libc::sockaddr_storage as *mut libc::sockaddr_in,
                    sin,
                )
            };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for
            // sockaddr_in6.
            unsafe {
                std::ptr::write(
                    &mut storage as *mut libc::sockaddr_storage as *mut libc::sockaddr_in6,
                    sin6,
                )
            };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as c_int)
}

/// Runs a libsrt call that writes an address (`getsockname`, `accept`)
/// into a zeroed `sockaddr_storage` with its length, and reads the address
/// back (`None` when the call wrote none).
///
/// # Safety
/// `call` writes at most the length it is given, and only a
/// sockaddr_in/sockaddr_in6 of its family.
pub(crate) unsafe fn read_sockaddr<R>(
    call: impl FnOnce(*mut libc::sockaddr, *mut c_int) -> R,
) -> (R, Option<SocketAddr>) {
    // SAFETY: all-zero is a valid sockaddr_storage (family 0: no address).
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as c_int;
    let r = call(
        &mut storage as *mut libc::sockaddr_storage as *mut libc::sockaddr,
        &mut len,
    );
    // SAFETY: `storage` is zeroed or holds what `call` wrote, per this
    // function's contract.
    let addr = unsafe {
        from_sockaddr(&storage as *const libc::sockaddr_storage as *const libc::sockaddr)
    };
    (r, addr)
}

/// # Safety
/// `p` is null or points to a sockaddr_in/sockaddr_in6 of its family.
pub(crate) unsafe fn from_sockaddr(p: *const libc::sockaddr) -> Option<SocketAddr> {
    if p.is_null() {
        return None;
    }
    // SAFETY: per this function's contract.
    unsafe {
        match c_int::from((*p).sa_family) {
            libc::AF_INET => {
                let sin = &*(p as *const libc::sockaddr_in);
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                Some(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 => {
                let sin6 = &*(p as *const libc::sockaddr_in6);
                let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                Some(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}
