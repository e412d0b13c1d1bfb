//! Rates (bytes or frames per second) over the last second or so, updated on
//! the data path with one atomic addition and read by the API.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts units (bytes, frames) and reports the rate of the last completed
/// window.
#[derive(Debug)]
pub struct RateMeter {
    total: AtomicU64,
    window: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    total_at_start: u64,
    last_rate: f64,
    last_end: Instant,
}

const WINDOW: Duration = Duration::from_secs(1);

impl Default for RateMeter {
    fn default() -> Self {
        let now = Instant::now();
        Self {
            total: AtomicU64::new(0),
            window: Mutex::new(Window {
                started: now,
                total_at_start: 0,
                last_rate: 0.0,
                last_end: now,
            }),
        }
    }
}

impl RateMeter {
    pub fn add(&self, bytes: usize) {
        self.total.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Units per second over the last window; closes the window when it is
    /// over, and reports 0 once nothing has come for two windows.
    pub fn per_second(&self) -> f64 {
        let now = Instant::now();
        let total = self.total();
        let Ok(mut w) = self.window.lock() else {
            return 0.0;
        };
        let elapsed = now.duration_since(w.started);
        if elapsed >= WINDOW {
            w.last_rate = (total - w.total_at_start) as f64 / elapsed.as_secs_f64();
            w.started = now;
            w.total_at_start = total;
            w.last_end = now;
        } else if now.duration_since(w.last_end) > 2 * WINDOW {
            w.last_rate = 0.0;
        }
        w.last_rate
    }

    /// Restarts the window (after a reconnect).
    pub fn reset_window(&self) {
        if let Ok(mut w) = self.window.lock() {
            let now = Instant::now();
            w.started = now;
            w.last_end = now;
            w.total_at_start = self.total();
            w.last_rate = 0.0;
        }
    }
}
