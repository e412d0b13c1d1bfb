//! The hub of one stream: where a publisher's stream meets the
//! destinations. The publisher is OBS on an ingest key, or an encoder
//! ([`crate::encoders`]) whose ffmpeg produces a rendition: destinations
//! attach to either the same way.
//!
//! Layout: `cache` (headers and GOP for late joiners), `queue` (one
//! bounded queue per destination), `timeline` (one monotonic clock
//! across publisher sessions), `registry` ([`Hubs`], the ingest hubs).
//!
//! - It keeps what a late joiner needs: the latest metadata, the audio and
//!   video sequence headers, and the current GOP (from the last keyframe).
//!   Payloads are [`Bytes`]: every destination shares the same buffers.
//!   Audio and video payloads are laid out as RTMP chunks once, here
//!   ([`ChunkedPayload`]), so a destination adds only its own 12-byte
//!   message header to each and writes two buffers per message.
//! - It keeps one continuous timeline across publisher sessions: when OBS
//!   drops and comes back, timestamps carry on from where they were (plus
//!   the wall-clock time that passed), so destinations that stayed
//!   connected never see time go backwards.
//! - Each destination reads through its own bounded [`Subscription`]. The
//!   publisher never waits: a destination that falls more than
//!   [`QueueLimits::max_lag`] behind has its queue emptied and skips to the
//!   next keyframe (with the current headers replayed first), and the
//!   frames it missed are counted.
//! - While the publisher is away, or on a break the streamer asked for,
//!   the outputs can be fed a standby stream instead ([`feed`]): the hub
//!   knows which source feeds them ([`Feed`]), holds the publisher's
//!   frames back meanwhile, and switches back at its first keyframe.

mod cache;
mod feed;
mod info;
mod queue;
mod registry;
mod timeline;
mod tracks;

pub use feed::{FeedKind, PublisherParams, StandbyHeaders};
pub use queue::Subscription;
pub use registry::Hubs;
pub use tracks::TrackSnapshot;

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use antenne_rtmp::amf0::{self, Amf0Value};
use antenne_rtmp::chunked::ChunkedPayload;
use antenne_rtmp::multitrack::{self, TrackKind};
use antenne_rtmp::{client, flv};
use bytes::Bytes;
use tokio::sync::watch;

use crate::rate::RateMeter;
use crate::secret::StreamKey;

use cache::Cache;
use feed::Feed;
pub use info::IngestSnapshot;
use info::StreamInfo;
use queue::Queue;
use timeline::Timeline;
use tracks::Tracks;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Audio,
    Video,
    /// `onMetaData` body (without `@setDataFrame`).
    Metadata,
}

/// One message of the stream, on the hub's timeline (milliseconds).
#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: FrameKind,
    pub timestamp: i64,
    /// Audio and video: laid out for every output's chunk stream and
    /// chunk size. Metadata: whole (see [`ChunkedPayload::whole`]).
    pub payload: ChunkedPayload,
    /// A point where a destination may start: a video keyframe, or any
    /// audio frame of a stream without video.
    pub keyframe: bool,
    /// Decoder configuration (sequence header).
    pub header: bool,
}

/// Bounds of one destination's queue.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    /// Media time between the oldest and newest queued frame past which
    /// the destination skips to the next keyframe.
    pub max_lag: Duration,
    /// Bytes queued past which the same happens (protects against absurd
    /// bitrates).
    pub max_bytes: usize,
    /// Whether the hub keeps the current GOP for outputs that join later
    /// (they then start on its keyframe at once); without it they wait
    /// for the publisher's next keyframe, and an ingest holds no more
    /// than its headers (`--no-gop-cache`).
    pub gop_cache: bool,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            max_lag: Duration::from_secs(4),
            max_bytes: 32 * 1024 * 1024,
            gop_cache: true,
        }
    }
}

/// The hub refuses a second publisher on a live key.
#[derive(Debug, thiserror::Error)]
#[error("stream key {key} is already live from {publisher}")]
pub struct AlreadyLive {
    pub key: StreamKey,
    pub publisher: SocketAddr,
}

#[derive(Debug)]
struct Publisher {
    addr: SocketAddr,
    since: SystemTime,
}

#[derive(Debug)]
struct HubState {
    publisher: Option<Publisher>,
    cache: Cache,
    subscribers: Vec<(u64, Arc<Queue>)>,
    next_subscriber: u64,
    timeline: Timeline,
    info: StreamInfo,
    /// Tracks 1.. of a multitrack ingest.
    tracks: Tracks,
    /// Which source feeds the outputs.
    feed: Feed,
    /// The publisher's headers while the outputs are on standby, sent
    /// when they switch back to it.
    pending: Cache,
    /// The publisher left and the outputs are held open (by the standby
    /// controller, until its hold limit).
    holding: bool,
    /// The standby module has a picture ready for this hub.
    picture_ready: bool,
    /// The streamer asked for a break: outputs stay on standby while the
    /// publisher keeps sending.
    on_break: bool,
    next_standby: u64,
    /// The publisher's own stream, never the standby: what recording and
    /// preview get ([`Hub::subscribe_publisher`]). Its own cache and
    /// timeline, since it goes on while the outputs are on standby.
    own_cache: Cache,
    own_timeline: Timeline,
    own_subscribers: Vec<(u64, Arc<Queue>)>,
}

impl HubState {
    /// The id of the next subscriber.
    fn next_id(&mut self) -> u64 {
        let id = self.next_subscriber;
        self.next_subscriber += 1;
        id
    }

    /// Every queue a frame may reach: destinations, the publisher's own
    /// stream, the tracks of a multitrack ingest.
    fn queues(&self) -> impl Iterator<Item = &Arc<Queue>> {
        self.subscribers
            .iter()
            .chain(self.own_subscribers.iter())
            .chain(self.tracks.subscribers())
            .map(|(_, q)| q)
    }
}

/// The hub of one ingest key.
#[derive(Debug)]
pub struct Hub {
    key: StreamKey,
    state: Mutex<HubState>,
    live: watch::Sender<bool>,
    /// Whether the outputs have something to send: a publisher, or a hold
    /// (see [`Hub::set_hold_managed`]).
    on_air: watch::Sender<bool>,
    /// Whether frames reach the outputs: a publisher, or the standby
    /// picture playing (not a hold without a picture).
    feeding: watch::Sender<bool>,
    /// Bumped when what the standby loop is made from changes (a new
    /// video or audio configuration, another frame rate in `onMetaData`):
    /// never per frame. See [`Hub::watch_params`].
    params: watch::Sender<u64>,
    hold_managed: AtomicBool,
    bytes_in: RateMeter,
    video_frames: RateMeter,
    limits: QueueLimits,
}

impl Hub {
    pub fn new(key: StreamKey, limits: QueueLimits) -> Arc<Hub> {
        Arc::new(Hub {
            key,
            state: Mutex::new(HubState {
                publisher: None,
                cache: Cache::default(),
                subscribers: Vec::new(),
                next_subscriber: 0,
                timeline: Timeline::default(),
                info: StreamInfo::default(),
                tracks: Tracks::default(),
                feed: Feed::Nothing,
                pending: Cache::default(),
                holding: false,
                picture_ready: false,
                on_break: false,
                next_standby: 0,
                own_cache: Cache::default(),
                own_timeline: Timeline::default(),
                own_subscribers: Vec::new(),
            }),
            live: watch::channel(false).0,
            on_air: watch::channel(false).0,
            feeding: watch::channel(false).0,
            params: watch::channel(0).0,
            hold_managed: AtomicBool::new(false),
            bytes_in: RateMeter::default(),
            video_frames: RateMeter::default(),
            limits,
        })
    }

    pub fn key(&self) -> &StreamKey {
        &self.key
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // A panic while holding the lock leaves consistent-enough state
        // (frames are whole); keep serving rather than poisoning the relay.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a publisher is live, as a watch.
    pub fn watch_live(&self) -> watch::Receiver<bool> {
        self.live.subscribe()
    }

    pub fn is_live(&self) -> bool {
        *self.live.borrow()
    }

    /// Starts a publisher session; the guard ends it when dropped.
    pub fn start_publish(self: &Arc<Self>, addr: SocketAddr) -> Result<PublishGuard, AlreadyLive> {
        let mut st = self.lock();
        if let Some(p) = &st.publisher {
            return Err(AlreadyLive {
                key: self.key.clone(),
                publisher: p.addr,
            });
        }
        st.publisher = Some(Publisher {
            addr,
            since: SystemTime::now(),
        });
        st.holding = false;
        if matches!(st.feed, Feed::Standby(_)) {
            // The outputs stay on standby until this publisher's first
            // keyframe; its headers are kept for the switch.
            st.pending.reset();
        } else {
            st.feed = Feed::Publisher;
            st.cache.reset();
            st.timeline.new_session();
        }
        st.own_cache.reset();
        st.own_timeline.new_session();
        st.info = StreamInfo::default();
        st.tracks.reset();
        self.update_on_air(&st);
        drop(st);
        self.bytes_in.reset_window();
        self.live.send_replace(true);
        Ok(PublishGuard { hub: self.clone() })
    }

    fn end_publish(&self) {
        let mut st = self.lock();
        st.publisher = None;
        if st.feed == Feed::Publisher {
            st.feed = Feed::Nothing;
            st.cache.clear_gop();
        } else {
            st.pending.reset();
        }
        st.own_cache.clear_gop();
        st.tracks.clear_gops();
        // Audio that waited for a video frame goes now: none comes after.
        for q in st.queues() {
            q.wake_now();
        }
        // A hold keeps outputs open: with none attached there is nothing to
        // keep, and no standby picture plays to nobody until the limit.
        let attached = !st.subscribers.is_empty() || st.tracks.subscribers().next().is_some();
        st.holding = self.hold_managed() && attached;
        self.live.send_replace(false);
        self.update_on_air(&st);
    }

    /// Takes a video message from the publisher.
    pub fn push_video(&self, timestamp: u32, payload: Bytes) {
        if multitrack::is_multitrack(TrackKind::Video, &payload) {
            return self.push_tracks(TrackKind::Video, timestamp, payload);
        }
        let Some(tag) = flv::inspect_video(&payload) else {
            return;
        };
        if tag.end_of_sequence {
            // End-of-sequence and command frames are not media: a
            // destination that stays connected gets fresh headers later.
            return;
        }
        self.bytes_in.add(payload.len());
        // Laid out (a copy for frames over one chunk) before taking the
        // lock that the API and joining destinations also take.
        let body = payload.clone();
        let payload = client::prepare_media(true, payload);
        let mut st = self.lock();
        st.info.has_video = true;
        if tag.sequence_header {
            st.info.video_codec = Some(tag.codec.name());
            if st.info.video_config.as_ref() != Some(&body) {
                st.info.video_config = Some(body);
                self.params_changed();
            }
        }
        let mut frame = Frame {
            kind: FrameKind::Video,
            timestamp: 0,
            payload,
            keyframe: tag.keyframe && !tag.sequence_header,
            header: tag.sequence_header,
        };
        let now = Instant::now();
        self.offer_own(&mut st, &frame, Some((timestamp, now)));
        if frame.keyframe {
            // The publisher's own keyframe interval (also while the
            // standby is on the air).
            st.info.keyframe_at(i64::from(timestamp));
        }
        if !self.admit(&mut st, &frame) {
            return;
        }
        frame.timestamp = st.timeline.map(timestamp, now);
        if tag.sequence_header {
            st.cache.video_header = Some(frame.clone());
        } else {
            self.video_frames.add(1);
            if self.limits.gop_cache {
                st.cache.push_media(&frame);
            }
        }
        self.fan_out(&st, frame);
    }

    /// Takes an audio message from the publisher.
    pub fn push_audio(&self, timestamp: u32, payload: Bytes) {
        if multitrack::is_multitrack(TrackKind::Audio, &payload) {
            return self.push_tracks(TrackKind::Audio, timestamp, payload);
        }
        let Some(tag) = flv::inspect_audio(&payload) else {
            return;
        };
        self.bytes_in.add(payload.len());
        let body = payload.clone();
        let payload = client::prepare_media(false, payload);
        let mut st = self.lock();
        if tag.sequence_header {
            st.info.audio_codec = Some(tag.codec.name());
            if st.info.audio_config.as_ref() != Some(&body) {
                st.info.audio_config = Some(body);
                self.params_changed();
            }
        }
        let mut frame = Frame {
            kind: FrameKind::Audio,
            timestamp: 0,
            payload,
            // Without video, any audio frame is a place to start.
            keyframe: !st.info.has_video && !tag.sequence_header,
            header: tag.sequence_header,
        };
        let now = Instant::now();
        self.offer_own(&mut st, &frame, Some((timestamp, now)));
        if !self.admit(&mut st, &frame) {
            return;
        }
        frame.timestamp = st.timeline.map(timestamp, now);
        if tag.sequence_header {
            st.cache.audio_header = Some(frame.clone());
        } else if self.limits.gop_cache {
            st.cache.push_media(&frame);
        }
        self.fan_out(&st, frame);
    }

    /// Takes `onMetaData` (the body starting at `onMetaData`).
    pub fn push_metadata(&self, body: Bytes) {
        // Decoded before taking the lock the outputs share, and bounded like
        // a command: a publisher's metadata cannot make us hold much more
        // than it sent.
        let described = amf0::decode_all_bounded(&body, antenne_rtmp::message::MAX_COMMAND_VALUES)
            .ok()
            .and_then(|values| {
                let meta = values.get(1)?;
                let num = |k: &str| meta.get(k).and_then(Amf0Value::as_number);
                Some((
                    num("width").map(|w| w as u32),
                    num("height").map(|h| h as u32),
                    num("framerate").or_else(|| num("fps")),
                ))
            });
        let mut st = self.lock();
        if let Some((width, height, frame_rate)) = described {
            let changed = (st.info.width, st.info.height, st.info.metadata_frame_rate)
                != (width, height, frame_rate);
            st.info.width = width;
            st.info.height = height;
            st.info.metadata_frame_rate = frame_rate;
            if changed {
                self.params_changed();
            }
        }
        let frame = Frame {
            kind: FrameKind::Metadata,
            timestamp: st.timeline.now(),
            payload: ChunkedPayload::whole(body),
            keyframe: false,
            header: true,
        };
        st.tracks.set_metadata(&frame);
        self.offer_own(&mut st, &frame, None);
        if !self.admit(&mut st, &frame) {
            return;
        }
        st.cache.metadata = Some(frame.clone());
        self.fan_out(&st, frame);
    }

    /// Queues a frame for every destination. They are woken by
    /// [`Hub::flush`], once per batch of frames rather than per frame.
    fn fan_out(&self, st: &HubState, frame: Frame) {
        for (_, q) in &st.subscribers {
            q.offer(&frame, &st.cache, &self.limits);
        }
        st.tracks.offer_track0(&frame, &st.cache, &self.limits);
    }

    /// Wakes the destinations that have frames waiting. The ingest calls it
    /// after each read from the publisher's socket: frames that arrive
    /// together cost one wake-up per destination, not one each.
    pub fn flush(&self) {
        let st = self.lock();
        for q in st.queues() {
            q.wake();
        }
    }

    /// Attaches a destination. While live, its queue starts with the
    /// metadata, the sequence headers and the current GOP, so its first
    /// video frame is a keyframe and it needs not wait for the next one.
    pub fn subscribe(self: &Arc<Self>) -> Subscription {
        let mut st = self.lock();
        let id = st.next_id();
        let queue = Queue::starting_on(&st.cache, st.feed != Feed::Nothing);
        st.subscribers.push((id, queue.clone()));
        drop(st);
        self.subscription(id, queue)
    }

    /// The handle of a queue just registered (outside the hub's lock);
    /// wakes its reader for what it starts with.
    fn subscription(self: &Arc<Self>, id: u64, queue: Arc<Queue>) -> Subscription {
        queue.notify.notify_one();
        Subscription {
            hub: self.clone(),
            id,
            queue,
        }
    }

    /// Takes a multitrack tag: each track's packets go to that track's
    /// cache and subscribers, flattened. Track 0 packets inside a multitrack
    /// tag (ManyTracks forms) go to the hub's own stream, flattened too.
    fn push_tracks(&self, kind: TrackKind, timestamp: u32, payload: Bytes) {
        let parsed = match kind {
            TrackKind::Video => multitrack::parse_video(&payload),
            TrackKind::Audio => multitrack::parse_audio(&payload),
        };
        let Ok(packets) = parsed else {
            return;
        };
        self.bytes_in.add(payload.len());
        let mut st = self.lock();
        let ts = st.timeline.map(timestamp, Instant::now());
        let HubState { tracks, cache, .. } = &mut *st;
        for p in packets.iter().filter(|p| p.track != 0) {
            if let Some(track) = tracks.get_or_add(p.track) {
                track.push(p, ts, cache.metadata.as_ref(), &self.limits);
            }
        }
        drop(st);
        for p in packets.iter().filter(|p| p.track == 0) {
            if let Some(body) = multitrack::flatten(p) {
                match kind {
                    TrackKind::Video => self.push_video(timestamp, body),
                    TrackKind::Audio => self.push_audio(timestamp, body),
                }
            }
        }
    }

    /// Attaches a destination to one track, flattened to an ordinary
    /// single-track stream (its own sequence headers, `onMetaData` with its
    /// own size, starting on its own keyframe). Track 0 is
    /// [`Hub::subscribe`]. A track that does not exist yet is waited for;
    /// past [`tracks::MAX_TRACKS`] tracks, the subscription gets nothing.
    pub fn subscribe_track(self: &Arc<Self>, track: u8) -> Subscription {
        if track == 0 {
            return self.subscribe();
        }
        let mut st = self.lock();
        let id = st.next_id();
        let live = st.publisher.is_some();
        let queue = match st.tracks.get_or_add(track) {
            Some(t) => {
                let queue = Queue::starting_on(&t.cache, live);
                t.subscribers.push((id, queue.clone()));
                queue
            }
            None => Queue::starting_on(&Cache::default(), false),
        };
        drop(st);
        self.subscription(id, queue)
    }

    pub(crate) fn unsubscribe(&self, id: u64) {
        let mut st = self.lock();
        st.subscribers.retain(|(i, _)| *i != id);
        st.own_subscribers.retain(|(i, _)| *i != id);
        st.tracks.unsubscribe(id);
    }
}

/// Ends the publisher session when dropped.
#[derive(Debug)]
pub struct PublishGuard {
    hub: Arc<Hub>,
}

impl PublishGuard {
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }
}

impl Drop for PublishGuard {
    fn drop(&mut self) {
        self.hub.end_publish();
    }
}

#[cfg(test)]
mod tests;
