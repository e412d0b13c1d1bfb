//! Who may hold an ingest connection: a cap on all connections, a lower cap
//! on connections that have not published yet, and a cap per address on
//! those; refusals are counted per address and logged in aggregate.
//!
//! Invariants: a connection holds one [`Slot`] for its whole life; its
//! "not yet published" share (counted in the pending cap and in its
//! address's count) is given back as soon as it publishes with a valid key
//! ([`Slot::published`]) or ends, so unauthenticated clients, from one
//! address or many, can never take the slots of publishers already live.
//! The per-address table holds only addresses with a pending connection.
//! The lock is a std mutex held for a map update, never across I/O.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::warn;

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Every slot is taken.
    Full,
    /// Every slot for connections that have not published yet is taken.
    PendingFull,
    /// This address has too many connections that have not published yet.
    AddressFull,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refused::Full => "all ingest connections are taken",
            Refused::PendingFull => "too many connections that have not published",
            Refused::AddressFull => {
                "too many connections from this address that have not published"
            }
        })
    }
}

type Counts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// The caps; one per listener.
#[derive(Debug)]
pub(crate) struct Admission {
    total: Arc<Semaphore>,
    pending: Arc<Semaphore>,
    per_address: usize,
    counts: Counts,
}

impl Admission {
    pub(crate) fn new(total: usize, pending: usize, per_address: usize) -> Self {
        Self {
            total: Arc::new(Semaphore::new(total)),
            pending: Arc::new(Semaphore::new(pending.min(total))),
            per_address,
            counts: Counts::default(),
        }
    }

    /// A slot for a new connection from `ip`, or why not.
    pub(crate) fn admit(&self, ip: IpAddr) -> Result<Slot, Refused> {
        let key = address_key(ip);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.get(&key).copied().unwrap_or(0);
        if count >= self.per_address {
            return Err(Refused::AddressFull);
        }
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refused::Full)?;
        let pending = self
            .pending
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refused::PendingFull)?;
        counts.insert(key, count + 1);
        Ok(Slot {
            _total: total,
            pending: Some(Pending {
                _permit: pending,
                key,
                counts: self.counts.clone(),
            }),
        })
    }
}

/// The address connections are counted under: IPv4 as is (IPv4-mapped
/// IPv6 included), IPv6 by /64, the smallest network one host gets.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// One connection's place; dropping it frees it.
#[derive(Debug)]
pub(crate) struct Slot {
    _total: OwnedSemaphorePermit,
    pending: Option<Pending>,
}

impl Slot {
    /// The connection published with a valid key: it no longer counts as
    /// pending (for good: after its stream ends it keeps only its slot).
    pub(crate) fn published(&mut self) {
        self.pending = None;
    }
}

#[derive(Debug)]
struct Pending {
    _permit: OwnedSemaphorePermit,
    key: IpAddr,
    counts: Counts,
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// Addresses listed one per line in a report; the others are summed up.
const LISTED: usize = 16;
/// Addresses tracked between reports; refusals from more are counted
/// together.
const TRACKED: usize = 1024;

/// Refusals since the last report, per address: one warning line per
/// address and period instead of one per refused connection.
#[derive(Debug, Default)]
pub(crate) struct Refusals {
    by_address: HashMap<IpAddr, (u64, Refused)>,
    untracked: u64,
}

impl Refusals {
    pub(crate) fn note(&mut self, ip: IpAddr, why: Refused) {
        let key = address_key(ip);
        if let Some((n, last)) = self.by_address.get_mut(&key) {
            *n += 1;
            *last = why;
        } else if self.by_address.len() < TRACKED {
            self.by_address.insert(key, (1, why));
        } else {
            self.untracked += 1;
        }
    }

    /// Logs what was refused since the last report (covering `period_s`
    /// seconds) and starts counting again.
    pub(crate) fn report(&mut self, period_s: u64) {
        let mut rows: Vec<_> = self.by_address.drain().collect();
        rows.sort_by_key(|(_, (count, _))| std::cmp::Reverse(*count));
        let mut others = std::mem::take(&mut self.untracked);
        let mut other_addresses = 0;
        for (i, (address, (count, why))) in rows.into_iter().enumerate() {
            if i < LISTED {
                warn!(%address, count, reason = %why,
                    "refused {count} ingest connections from {address} in the last {period_s} s");
            } else {
                others += count;
                other_addresses += 1;
            }
        }
        if others > 0 {
            warn!(
                count = others,
                "refused {others} more ingest connections from {other_addresses}+ other addresses \
                 in the last {period_s} s"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_cannot_take_the_pending_slots_of_others() {
        let admission = Admission::new(4, 3, 2);
        let a: IpAddr = "192.0.2.1".parse().expect("address");
        let b: IpAddr = "192.0.2.2".parse().expect("address");
        let first = admission.admit(a).expect("first from a");
        let _second = admission.admit(a).expect("second from a");
        assert_eq!(admission.admit(a).err(), Some(Refused::AddressFull));
        let mut from_b = admission.admit(b).expect("b has its own share");
        assert_eq!(admission.admit(b).err(), Some(Refused::PendingFull));
        // Publishing frees the pending share, not the slot.
        from_b.published();
        let _b2 = admission
            .admit(b)
            .expect("b again once its first published");
        assert_eq!(admission.admit(b).err(), Some(Refused::Full));
        drop(first);
        let _a3 = admission
            .admit(a)
            .expect("a again once one of its own ended");
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix() {
        let admission = Admission::new(8, 8, 1);
        let _one = admission
            .admit("2001:db8::1".parse().expect("address"))
            .expect("first");
        assert_eq!(
            admission
                .admit("2001:db8::ffff:2".parse().expect("address"))
                .err(),
            Some(Refused::AddressFull)
        );
        admission
            .admit("2001:db8:0:1::1".parse().expect("address"))
            .expect("another /64");
    }
}
