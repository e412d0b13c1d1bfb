//! The hub's continuous timeline: maps each publisher session's timestamps
//! (32-bit, starting anywhere, wrapping after 49 days) onto one monotonic
//! millisecond clock.
//!
//! Invariant: across sessions (OBS reconnecting, or an encoder restarted
//! after a crash), the first timestamp of a new session is later than the
//! last one handed out, by the wall-clock time that passed (at least 1 ms,
//! at most 60 s), so destinations that stayed connected never see time go
//! backwards.

use std::time::Instant;

/// Maps a session's ingest timestamps onto the hub's continuous timeline.
#[derive(Debug, Default)]
pub(super) struct Timeline {
    /// Added to the extended ingest timestamp; `None` until the first
    /// media frame of a session.
    offset: Option<i64>,
    /// Last hub timestamp handed out, and when.
    last: Option<(i64, Instant)>,
    /// Extended (wrap-corrected) last ingest timestamp.
    last_ingest: i64,
    epoch: i64,
}

impl Timeline {
    pub(super) fn new_session(&mut self) {
        self.offset = None;
        self.epoch = 0;
        self.last_ingest = 0;
    }

    pub(super) fn map(&mut self, ingest_ts: u32, now: Instant) -> i64 {
        let mut ext = ingest_ts as i64 + self.epoch;
        if self.offset.is_some() && ext < self.last_ingest - (1 << 31) {
            // The 32-bit RTMP timestamp wrapped (after 49 days).
            self.epoch += 1 << 32;
            ext += 1 << 32;
        }
        self.last_ingest = ext;
        let offset = *self.offset.get_or_insert_with(|| match self.last {
            // Carry on after the previous session, plus the time that
            // passed in between (at least one millisecond).
            Some((last, at)) => {
                let gap = now.duration_since(at).as_millis().clamp(1, 60_000) as i64;
                last + gap - ext
            }
            None => -ext,
        });
        let ts = ext + offset;
        if self.last.is_none_or(|(last, _)| ts > last) {
            self.last = Some((ts, now));
        }
        ts
    }

    pub(super) fn now(&self) -> i64 {
        self.last.map(|(ts, _)| ts).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_new_session_starts_after_the_last_timestamp() {
        let mut t = Timeline::default();
        let t0 = Instant::now();
        assert_eq!(t.map(1000, t0), 0);
        assert_eq!(t.map(1040, t0), 40);
        t.new_session();
        let later = t0 + Duration::from_millis(500);
        // The new session (an encoder restarted) starts again near 0.
        assert_eq!(t.map(0, later), 540);
        assert_eq!(t.map(33, later), 573);
    }

    #[test]
    fn a_wrapped_timestamp_keeps_counting_up() {
        let mut t = Timeline::default();
        let t0 = Instant::now();
        let a = t.map(u32::MAX - 10, t0);
        let b = t.map(5, t0);
        assert_eq!(b - a, 16);
    }
}
