//! What keeps password guessing cheap for antenne and expensive for the
//! guesser: failed logins counted per address (and kept across restarts),
//! and a global cap on password checks running at once.
//!
//! Invariants:
//! - An attempt is counted *before* its password is checked, so parallel
//!   requests from one address cannot get past [`MAX_FAILURES`]; a success
//!   forgets the address, a check that never ran is uncounted.
//! - At most [`CONCURRENT_CHECKS`] argon2 checks run at once (each takes
//!   ~19 MiB); a request waits at most [`CHECK_WAIT`] for its turn, then is
//!   answered "busy". Memory stays bounded whatever the number of clients.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Failed logins allowed per address within [`FAILURE_WINDOW`].
pub const MAX_FAILURES: u32 = 5;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Password checks (argon2) running at once, for every client together.
pub const CONCURRENT_CHECKS: usize = 2;
/// How long a login waits for a free check before "busy".
pub const CHECK_WAIT: Duration = Duration::from_secs(10);

/// Why an attempt may not go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too many failures from this address: seconds to wait.
    RateLimited(u64),
    /// Too many password checks at once.
    Busy,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    /// Unix seconds of the first failure in the window.
    since: i64,
}

/// Failure counts and the check cap.
pub struct Throttle {
    failures: Mutex<HashMap<IpAddr, Failures>>,
    checks: Arc<Semaphore>,
}

/// What to write to the store after an attempt: (address, count, since).
pub type Record = (String, u32, i64);

impl Throttle {
    /// Starts from the failures kept in the store.
    pub fn new(loaded: Vec<(String, u32, i64)>) -> Throttle {
        let failures = loaded
            .into_iter()
            .filter_map(|(ip, count, since)| Some((ip.parse().ok()?, Failures { count, since })))
            .collect();
        Throttle {
            failures: Mutex::new(failures),
            checks: Arc::new(Semaphore::new(CONCURRENT_CHECKS)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Failures>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts an attempt from `ip` at `now`, or refuses it.
    pub fn begin(&self, ip: IpAddr, now: i64) -> Result<(), Refusal> {
        let window = FAILURE_WINDOW.as_secs() as i64;
        let mut f = self.lock();
        f.retain(|_, v| now - v.since < window);
        let entry = f.entry(ip).or_insert(Failures {
            count: 0,
            since: now,
        });
        if entry.count >= MAX_FAILURES {
            let wait = (entry.since + window - now).max(1) as u64;
            return Err(Refusal::RateLimited(wait));
        }
        entry.count += 1;
        Ok(())
    }

    /// Uncounts an attempt whose password was never checked.
    pub fn undo(&self, ip: IpAddr) {
        let mut f = self.lock();
        if let Some(v) = f.get_mut(&ip) {
            v.count = v.count.saturating_sub(1);
            if v.count == 0 {
                f.remove(&ip);
            }
        }
    }

    /// The attempt failed (it is counted already): what to keep.
    pub fn failed(&self, ip: IpAddr) -> Record {
        let f = self.lock();
        let v = f
            .get(&ip)
            .copied()
            .unwrap_or(Failures { count: 0, since: 0 });
        (ip.to_string(), v.count, v.since)
    }

    /// The attempt succeeded: the address starts afresh.
    pub fn succeeded(&self, ip: IpAddr) -> Record {
        self.lock().remove(&ip);
        (ip.to_string(), 0, 0)
    }

    /// Forgets every failure (a password reset).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Waits for a free password check.
    pub async fn permit(&self) -> Result<OwnedSemaphorePermit, Refusal> {
        match tokio::time::timeout(CHECK_WAIT, self.checks.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(Refusal::Busy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_attempts_before_they_are_checked() {
        let t = Throttle::new(vec![]);
        let ip = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..MAX_FAILURES {
            assert_eq!(t.begin(ip, 1000), Ok(()));
        }
        assert!(matches!(t.begin(ip, 1001), Err(Refusal::RateLimited(_))));
        // Another address is not affected; the window ends.
        assert_eq!(t.begin(IpAddr::from([10, 0, 0, 2]), 1001), Ok(()));
        let later = 1000 + FAILURE_WINDOW.as_secs() as i64;
        assert_eq!(t.begin(ip, later), Ok(()));
    }

    #[test]
    fn starts_from_failures_kept_across_restarts() {
        let t = Throttle::new(vec![("10.0.0.1".into(), MAX_FAILURES, 1000)]);
        let ip = IpAddr::from([10, 0, 0, 1]);
        assert!(matches!(t.begin(ip, 1010), Err(Refusal::RateLimited(890))));
        t.clear();
        assert_eq!(t.begin(ip, 1010), Ok(()));
        assert_eq!(t.succeeded(ip).1, 0);
    }

    #[tokio::test]
    async fn caps_checks_running_at_once() {
        let t = Throttle::new(vec![]);
        let held: Vec<_> =
            futures_util::future::join_all((0..CONCURRENT_CHECKS).map(|_| t.permit()))
                .await
                .into_iter()
                .map(|p| p.expect("a free check"))
                .collect();
        let waiting = tokio::time::timeout(Duration::from_millis(100), t.permit()).await;
        assert!(waiting.is_err(), "a third check waits");
        drop(held);
        assert!(t.permit().await.is_ok());
    }
}
