//! One destination's bounded queue and its [`Subscription`] handle.
//!
//! Invariants: the publisher never waits on a queue (offering a frame is
//! a short critical section, no I/O); a queue never holds more than
//! [`QueueLimits::max_lag`] of media time or [`QueueLimits::max_bytes`]:
//! past either it is emptied and skips to the next keyframe, replaying
//! the current headers first, and the frames lost are counted; a
//! subscriber that resumes always starts on a keyframe.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::cache::Cache;
use super::{Frame, FrameKind, Hub, QueueLimits};

/// Audio frames of a stream with video wait for the next video frame
/// before their reader is woken, up to this much media time: a 30 fps
/// stream with 48 kHz AAC then costs each destination 30 wake-ups and
/// writes a second instead of about 70 (see `bench/README.md`).
const AUDIO_WAIT_MS: i64 = 100;

/// What a queue's reader has not been woken for yet.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Unseen {
    #[default]
    Nothing,
    /// Only audio, the first at this time: it can wait for the next
    /// video frame.
    AudioSince(i64),
    /// Something to send as soon as the reader can.
    Urgent,
}

impl Unseen {
    fn with(self, f: &Frame) -> Unseen {
        // A keyframe audio frame is one of a stream without video.
        let audio = f.kind == FrameKind::Audio && !f.header && !f.keyframe;
        match self {
            Unseen::Nothing if audio => Unseen::AudioSince(f.timestamp),
            Unseen::AudioSince(t) if audio && f.timestamp - t < AUDIO_WAIT_MS => self,
            _ => Unseen::Urgent,
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct QueueState {
    pub(super) frames: VecDeque<Frame>,
    pub(super) bytes: usize,
    pub(super) skipping: bool,
    /// What arrived since the reader was last woken.
    unseen: Unseen,
    /// Whether skipped frames count as dropped: not while a new
    /// destination waits for its first keyframe.
    count_skipped: bool,
    dropped: u64,
}

impl QueueState {
    pub(super) fn push(&mut self, f: Frame) {
        self.bytes += f.payload.len();
        self.frames.push_back(f);
    }

    /// Media time queued. Headers are left out: replayed ones carry the
    /// time they were first sent.
    fn lag_ms(&self) -> i64 {
        let first = self.frames.iter().find(|f| !f.header);
        match (first, self.frames.back()) {
            (Some(a), Some(b)) => b.timestamp - a.timestamp,
            _ => 0,
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Queue {
    state: Mutex<QueueState>,
    pub(super) notify: Notify,
}

impl Queue {
    /// A new subscriber's queue: when `live` and `cache` holds a keyframe,
    /// it starts with the cached headers and GOP (its first video frame is
    /// a keyframe at once); otherwise it waits for the next keyframe (the
    /// headers are queued when it comes).
    pub(super) fn starting_on(cache: &Cache, live: bool) -> Arc<Queue> {
        let queue = Arc::new(Queue::default());
        {
            let mut q = queue.lock();
            if live && cache.gop_ready() {
                for f in cache.headers().chain(cache.gop.iter()) {
                    q.push(f.clone());
                }
            } else {
                q.skipping = true;
            }
        }
        queue
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn offer(&self, frame: &Frame, cache: &Cache, limits: &QueueLimits) {
        let mut q = self.lock();
        if q.skipping {
            if !frame.keyframe {
                if !frame.header && q.count_skipped {
                    q.dropped += 1;
                }
                return;
            }
            // Resume on this keyframe, after the current headers (which
            // may have changed while frames were being dropped).
            q.skipping = false;
            q.count_skipped = false;
            for h in cache.headers() {
                q.push(h.clone());
            }
        }
        q.push(frame.clone());
        q.unseen = q.unseen.with(frame);
        if q.lag_ms() > limits.max_lag.as_millis() as i64 || q.bytes > limits.max_bytes {
            let lost = q.frames.iter().filter(|f| !f.header).count() as u64;
            q.dropped += lost;
            q.frames.clear();
            q.bytes = 0;
            q.skipping = true;
            q.count_skipped = true;
        }
    }

    /// Wakes the reader if frames came since it last looked, unless they
    /// are audio that can wait for the next video frame (see
    /// [`AUDIO_WAIT_MS`]).
    pub(super) fn wake(&self) {
        let mut q = self.lock();
        if q.unseen == Unseen::Urgent {
            q.unseen = Unseen::Nothing;
            drop(q);
            self.notify.notify_one();
        }
    }

    /// Wakes the reader for whatever is queued, audio included (the
    /// publisher left: nothing comes after it).
    pub(super) fn wake_now(&self) {
        let mut q = self.lock();
        if q.unseen != Unseen::Nothing {
            q.unseen = Unseen::Nothing;
            drop(q);
            self.notify.notify_one();
        }
    }
}

/// A destination's view of the hub; detaches on drop.
#[derive(Debug)]
pub struct Subscription {
    pub(super) hub: Arc<Hub>,
    pub(super) id: u64,
    pub(super) queue: Arc<Queue>,
}

impl Subscription {
    /// Waits for frames and moves up to `max` of them into `out`.
    /// Cancel-safe.
    pub async fn recv_many(&self, out: &mut Vec<Frame>, max: usize) {
        loop {
            {
                let mut q = self.queue.lock();
                if !q.frames.is_empty() {
                    let n = q.frames.len().min(max);
                    let mut taken = 0;
                    for f in q.frames.drain(..n) {
                        taken += f.payload.len();
                        out.push(f);
                    }
                    q.bytes -= taken;
                    q.unseen = Unseen::Nothing;
                    return;
                }
            }
            self.queue.notify.notified().await;
        }
    }

    /// Frames this destination skipped because it fell behind.
    pub fn dropped(&self) -> u64 {
        self.queue.lock().dropped
    }

    /// Bytes waiting in the queue.
    pub fn queued_bytes(&self) -> usize {
        self.queue.lock().bytes
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(self.id);
    }
}
