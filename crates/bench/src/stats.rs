//! What the sink counts, per stream name, and the measurement window.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

use crate::clip::Clip;

/// The measurement window, by send instant (ns since the epoch): a video
/// message counts (published, received, latency) when the publisher sent
/// it inside `[t0, t1)`.
#[derive(Debug)]
pub struct Window {
    t0: AtomicU64,
    t1: AtomicU64,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            t0: AtomicU64::new(u64::MAX),
            t1: AtomicU64::new(u64::MAX),
        }
    }
}

impl Window {
    pub fn contains(&self, sent_ns: u64) -> bool {
        sent_ns >= self.t0.load(Relaxed) && sent_ns < self.t1.load(Relaxed)
    }

    pub fn close_all(&self) {
        self.t0.store(u64::MAX, Relaxed);
        self.t1.store(u64::MAX, Relaxed);
    }

    pub fn open_at(&self, t0: u64) {
        self.t1.store(u64::MAX, Relaxed);
        self.t0.store(t0, Relaxed);
    }

    pub fn end_at(&self, t1: u64) {
        self.t1.store(t1, Relaxed);
    }

    pub fn bounds(&self) -> (u64, u64) {
        (self.t0.load(Relaxed), self.t1.load(Relaxed))
    }
}

/// Latency samples (µs) of one stream.
#[derive(Debug, Default)]
pub struct Samples {
    /// Publisher write → arrival at the sink's socket (kernel receive
    /// timestamp; the sink's read time when the kernel gave none).
    pub socket_us: Vec<u32>,
    /// Publisher write → the sink read and scanned the message.
    pub read_us: Vec<u32>,
    /// Samples that had a kernel timestamp.
    pub with_kernel_ts: u64,
}

/// Counters of one stream name (all its connections).
#[derive(Debug, Default)]
pub struct StreamStats {
    pub bytes: AtomicU64,
    pub video: AtomicU64,
    pub audio: AtomicU64,
    pub data: AtomicU64,
    pub keyframes: AtomicU64,
    /// Connections publishing this name right now.
    pub open: AtomicU32,
    /// Connections that ever published this name.
    pub connections: AtomicU32,
    /// Matched video messages sent inside the window.
    pub win_video: AtomicU64,
    /// `bytes` when the window opened.
    pub win_bytes0: AtomicU64,
    pub samples: Mutex<Samples>,
}

impl StreamStats {
    pub fn samples(&self) -> MutexGuard<'_, Samples> {
        // A panic while holding the lock cannot leave the samples invalid.
        self.samples.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Shared by the sink's connections, the publisher and the control loop.
#[derive(Debug)]
pub struct Registry {
    streams: Mutex<HashMap<String, Arc<StreamStats>>>,
    pub window: Window,
    pub clip: Arc<Clip>,
    /// (stream name, arrival ns) of the first keyframe of each connection.
    pub first_keyframes: broadcast::Sender<(Arc<str>, u64)>,
    pub accepted: AtomicU64,
    pub closed_with_error: AtomicU64,
}

impl Registry {
    pub fn new(clip: Arc<Clip>) -> Self {
        Self {
            streams: Mutex::new(HashMap::new()),
            window: Window::default(),
            clip,
            first_keyframes: broadcast::channel(4096).0,
            accepted: AtomicU64::new(0),
            closed_with_error: AtomicU64::new(0),
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<StreamStats>>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn stream(&self, name: &str) -> Arc<StreamStats> {
        self.map().entry(name.to_owned()).or_default().clone()
    }

    pub fn get(&self, name: &str) -> Option<Arc<StreamStats>> {
        self.map().get(name).cloned()
    }

    /// Streams whose name starts with `prefix`.
    pub fn with_prefix(&self, prefix: &str) -> Vec<(String, Arc<StreamStats>)> {
        self.map()
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn window_bounds() {
        let w = Window::default();
        assert!(!w.contains(5));
        w.open_at(10);
        assert!(!w.contains(9) && w.contains(10) && w.contains(u64::MAX - 1));
        w.end_at(20);
        assert!(w.contains(19) && !w.contains(20));
        w.close_all();
        assert!(!w.contains(15));
    }
}
