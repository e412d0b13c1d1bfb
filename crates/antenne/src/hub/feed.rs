//! Which source feeds the hub's outputs: the publisher, or a standby
//! stream played in its place (the publisher is away, or the streamer
//! asked for a break), and the switches between them.
//!
//! Invariants:
//! - Outputs only ever see one source at a time. While the standby feeds
//!   them, the publisher's frames are held back and its headers kept in
//!   `pending`; the switch back happens at the publisher's first video
//!   keyframe, after its headers, never mid-GOP.
//! - Each switch starts a new session of the hub's one timeline, so
//!   timestamps keep going forward across every switch.
//! - A standby session is an id: frames of a session that was replaced
//!   (the publisher came back, the hold ended) are refused, so a late
//!   standby frame can never reach the outputs after the switch.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use antenne_rtmp::chunked::ChunkedPayload;
use bytes::Bytes;
use tokio::sync::watch;

use super::{Frame, FrameKind, Hub, HubState, Subscription};

/// Which source feeds the outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Feed {
    /// Nothing: no publisher, no standby (yet).
    Nothing,
    Publisher,
    /// The standby session with this id.
    Standby(u64),
}

/// Which source feeds the outputs, for the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedKind {
    Nothing,
    Publisher,
    Standby,
}

/// The standby stream's headers: what outputs get when it starts.
#[derive(Debug, Clone)]
pub struct StandbyHeaders {
    /// `onMetaData` body (starting at the `onMetaData` string).
    pub metadata: Bytes,
    /// AVC sequence header tag body.
    pub video: Bytes,
    /// AAC sequence header tag body.
    pub audio: Option<Bytes>,
}

/// What the publisher sends, for a standby stream to match.
#[derive(Debug, Clone, Default)]
pub struct PublisherParams {
    pub video_codec: Option<String>,
    pub audio_codec: Option<String>,
    /// Video sequence header tag body.
    pub video_config: Option<Bytes>,
    /// Audio sequence header tag body.
    pub audio_config: Option<Bytes>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// From `onMetaData`, else measured (frames per second).
    pub frame_rate: Option<f64>,
    /// `frame_rate` is not given by `onMetaData` (measured, or unknown):
    /// it may change without [`Hub::watch_params`] saying so.
    pub frame_rate_measured: bool,
}

impl Hub {
    /// Whether outputs should be connected: a publisher is live, or the
    /// hub holds them open while it is away. Without a hold controller
    /// this is [`Hub::watch_live`].
    pub fn watch_on_air(&self) -> watch::Receiver<bool> {
        self.on_air.subscribe()
    }

    /// Whether frames reach the outputs: a publisher is live, or the
    /// standby picture plays. What an encoder follows (a hold without a
    /// picture gives it nothing to encode).
    pub fn watch_feeding(&self) -> watch::Receiver<bool> {
        self.feeding.subscribe()
    }

    /// Changes when what [`Hub::publisher_params`] reports changes (the
    /// video or audio configuration, or `onMetaData`'s size or frame
    /// rate), never per frame. A measured frame rate is not followed (see
    /// [`PublisherParams::frame_rate_measured`]).
    pub fn watch_params(&self) -> watch::Receiver<u64> {
        self.params.subscribe()
    }

    /// Bumps [`Hub::watch_params`] (the caller saw a change).
    pub(super) fn params_changed(&self) {
        self.params.send_modify(|n| *n += 1);
    }

    /// Whether the standby picture is ready to play when the publisher
    /// leaves (set by the standby module): then an encoder keeps running
    /// through the short wait before it starts.
    pub fn set_picture_ready(&self, ready: bool) {
        let mut st = self.lock();
        if st.picture_ready != ready {
            st.picture_ready = ready;
            self.update_on_air(&st);
        }
    }

    /// A controller (the standby module) holds this hub's outputs open
    /// when the publisher leaves and ends the hold itself
    /// ([`Hub::end_hold`]); outputs then close at once rather than after
    /// their own grace period.
    pub fn set_hold_managed(&self, managed: bool) {
        self.hold_managed.store(managed, Ordering::Relaxed);
    }

    pub fn hold_managed(&self) -> bool {
        self.hold_managed.load(Ordering::Relaxed)
    }

    /// Sets `on_air` from the state (under the hub's lock, so updates keep
    /// their order).
    pub(super) fn update_on_air(&self, st: &HubState) {
        let on = st.publisher.is_some() || st.holding;
        self.on_air
            .send_if_modified(|v| std::mem::replace(v, on) != on);
        let feeding = st.publisher.is_some()
            || matches!(st.feed, Feed::Standby(_))
            || (st.holding && st.picture_ready);
        self.feeding
            .send_if_modified(|v| std::mem::replace(v, feeding) != feeding);
    }

    /// Keeps and passes on a publisher frame for the publisher's own
    /// stream (recording, preview), whichever source feeds the outputs.
    /// `timestamp`: the publisher's and when it came (the instant the
    /// outputs' timeline also uses), `None` for metadata ("now").
    pub(super) fn offer_own(
        &self,
        st: &mut HubState,
        frame: &Frame,
        timestamp: Option<(u32, Instant)>,
    ) {
        let mut f = frame.clone();
        f.timestamp = match timestamp {
            Some((ts, at)) => st.own_timeline.map(ts, at),
            None => st.own_timeline.now(),
        };
        if f.header {
            let slot = match f.kind {
                FrameKind::Metadata => &mut st.own_cache.metadata,
                FrameKind::Video => &mut st.own_cache.video_header,
                FrameKind::Audio => &mut st.own_cache.audio_header,
            };
            *slot = Some(f.clone());
        } else if self.limits.gop_cache {
            st.own_cache.push_media(&f);
        }
        for (_, q) in &st.own_subscribers {
            q.offer(&f, &st.own_cache, &self.limits);
        }
    }

    /// Attaches a reader of the publisher's own stream (recording,
    /// preview): never the standby picture, and the publisher's frames
    /// during a break. Starts like [`Hub::subscribe`], on the cached
    /// keyframe while live.
    pub fn subscribe_publisher(self: &Arc<Self>) -> Subscription {
        let mut st = self.lock();
        let id = st.next_id();
        let queue = super::queue::Queue::starting_on(&st.own_cache, st.publisher.is_some());
        st.own_subscribers.push((id, queue.clone()));
        drop(st);
        self.subscription(id, queue)
    }

    /// Whether a frame of the publisher reaches the outputs. While they
    /// are on standby its headers are kept for the switch and its frames
    /// held back, until its first keyframe once no break is asked for.
    pub(super) fn admit(&self, st: &mut HubState, frame: &Frame) -> bool {
        let Feed::Standby(_) = st.feed else {
            return true;
        };
        if frame.header {
            let slot = match frame.kind {
                FrameKind::Metadata => &mut st.pending.metadata,
                FrameKind::Video => &mut st.pending.video_header,
                FrameKind::Audio => &mut st.pending.audio_header,
            };
            *slot = Some(frame.clone());
            return false;
        }
        let switch = frame.kind == FrameKind::Video
            && frame.keyframe
            && !st.on_break
            && st.publisher.is_some()
            && st.pending.video_header.is_some();
        if switch {
            self.switch_to_publisher(st);
        }
        switch
    }

    /// The outputs go back to the publisher: a new timeline session, its
    /// headers, then (by the caller) its keyframe.
    fn switch_to_publisher(&self, st: &mut HubState) {
        st.feed = Feed::Publisher;
        st.timeline.new_session();
        let pending = std::mem::take(&mut st.pending);
        st.cache.reset();
        st.cache.metadata = pending.metadata;
        st.cache.video_header = pending.video_header;
        st.cache.audio_header = pending.audio_header;
        let headers: Vec<Frame> = st.cache.headers().cloned().collect();
        for h in headers {
            self.fan_out(st, h);
        }
    }

    /// Starts a standby session in place of the publisher: its headers go
    /// out now; its frames follow through [`Hub::push_standby`]. `None`
    /// when the standby is not wanted any more (the publisher is back and
    /// no break is asked for, or the hold ended).
    pub fn start_standby(&self, headers: &StandbyHeaders) -> Option<u64> {
        let mut st = self.lock();
        if st.publisher.is_some() && !st.on_break {
            return None;
        }
        if st.publisher.is_none() && !st.holding {
            return None;
        }
        if st.feed == Feed::Publisher {
            // A break while live: the publisher's headers, for the way back.
            st.pending.reset();
            st.pending.metadata = st.cache.metadata.clone();
            st.pending.video_header = st.cache.video_header.clone();
            st.pending.audio_header = st.cache.audio_header.clone();
        }
        st.next_standby += 1;
        let id = st.next_standby;
        st.feed = Feed::Standby(id);
        st.timeline.new_session();
        st.cache.reset();
        let now = st.timeline.now();
        let header = |kind, payload| Frame {
            kind,
            timestamp: now,
            payload,
            keyframe: false,
            header: true,
        };
        st.cache.metadata = Some(header(
            FrameKind::Metadata,
            ChunkedPayload::whole(headers.metadata.clone()),
        ));
        st.cache.video_header = Some(header(
            FrameKind::Video,
            antenne_rtmp::client::prepare_media(true, headers.video.clone()),
        ));
        st.cache.audio_header = headers.audio.clone().map(|a| {
            header(
                FrameKind::Audio,
                antenne_rtmp::client::prepare_media(false, a),
            )
        });
        let out: Vec<Frame> = st.cache.headers().cloned().collect();
        for h in out {
            self.fan_out(&st, h);
        }
        for (_, q) in &st.subscribers {
            q.wake();
        }
        self.update_on_air(&st);
        Some(id)
    }

    /// Plays one standby frame (its timestamp on the session's own clock,
    /// from 0). `false` once the session no longer feeds the outputs: the
    /// player stops.
    pub fn push_standby(
        &self,
        session: u64,
        kind: FrameKind,
        timestamp: u32,
        payload: &ChunkedPayload,
        keyframe: bool,
    ) -> bool {
        let mut st = self.lock();
        if st.feed != Feed::Standby(session) {
            return false;
        }
        let frame = Frame {
            kind,
            timestamp: st.timeline.map(timestamp, Instant::now()),
            payload: payload.clone(),
            keyframe,
            header: false,
        };
        st.cache.push_media(&frame);
        self.fan_out(&st, frame);
        for (_, q) in &st.subscribers {
            q.wake();
        }
        true
    }

    /// The hold is over: without a publisher, the outputs close.
    pub fn end_hold(&self) {
        let mut st = self.lock();
        st.holding = false;
        if st.publisher.is_none() {
            st.feed = Feed::Nothing;
            st.cache.clear_gop();
        }
        self.update_on_air(&st);
    }

    /// Asks for (or ends) a break: while on, the outputs stay on standby
    /// even with the publisher sending; once off, they switch back at its
    /// next keyframe.
    pub fn set_break(&self, on: bool) {
        self.lock().on_break = on;
    }

    pub fn on_break(&self) -> bool {
        self.lock().on_break
    }

    /// Which source feeds the outputs now.
    pub fn feed(&self) -> FeedKind {
        match self.lock().feed {
            Feed::Nothing => FeedKind::Nothing,
            Feed::Publisher => FeedKind::Publisher,
            Feed::Standby(_) => FeedKind::Standby,
        }
    }

    /// What the current (or last) publisher sends.
    pub fn publisher_params(&self) -> PublisherParams {
        let measured = self.video_frames.per_second();
        let st = self.lock();
        PublisherParams {
            video_codec: st.info.video_codec.clone(),
            audio_codec: st.info.audio_codec.clone(),
            video_config: st.info.video_config.clone(),
            audio_config: st.info.audio_config.clone(),
            width: st.info.width,
            height: st.info.height,
            frame_rate: st
                .info
                .metadata_frame_rate
                .or((measured > 0.0).then_some(measured)),
            frame_rate_measured: st.info.metadata_frame_rate.is_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::QueueLimits;
    use crate::secret::StreamKey;

    const AVC_SEQ: &[u8] = &[0x17, 0, 0, 0, 0, 1];
    const AVC_KEY: &[u8] = &[0x17, 1, 0, 0, 0, 2];
    const AVC_INTER: &[u8] = &[0x27, 1, 0, 0, 0, 3];
    const STANDBY_SEQ: &[u8] = &[0x17, 0, 0, 0, 0, 9];

    fn standby_headers() -> StandbyHeaders {
        StandbyHeaders {
            metadata: Bytes::from_static(b"meta"),
            video: Bytes::from_static(STANDBY_SEQ),
            audio: None,
        }
    }

    fn frame(video: bool, body: &'static [u8]) -> ChunkedPayload {
        antenne_rtmp::client::prepare_media(video, Bytes::from_static(body))
    }

    async fn drain(sub: &Subscription) -> Vec<Frame> {
        let mut out = Vec::new();
        while !sub.queue.lock().frames.is_empty() {
            sub.recv_many(&mut out, 1000).await;
        }
        out
    }

    fn held_hub() -> Arc<Hub> {
        let hub = Hub::new(StreamKey::new("k"), QueueLimits::default());
        hub.set_hold_managed(true);
        hub
    }

    #[test]
    fn params_change_with_a_new_configuration_never_per_frame() {
        let hub = held_hub();
        let mut params = hub.watch_params();
        let _guard = hub
            .start_publish("127.0.0.1:1".parse().expect("addr"))
            .expect("publisher");
        hub.push_video(0, Bytes::from_static(AVC_SEQ));
        assert!(params.has_changed().expect("sender alive"), "first header");
        params.borrow_and_update();
        hub.push_video(0, Bytes::from_static(AVC_KEY));
        hub.push_video(40, Bytes::from_static(AVC_INTER));
        hub.push_video(80, Bytes::from_static(AVC_SEQ));
        assert!(
            !params.has_changed().expect("sender alive"),
            "frames and the same header again change nothing"
        );
        hub.push_video(120, Bytes::from_static(&[0x17, 0, 0, 0, 0, 7]));
        assert!(params.has_changed().expect("sender alive"), "new header");
        params.borrow_and_update();
        hub.push_audio(0, Bytes::from_static(&[0xaf, 0, 0x12, 0x10]));
        assert!(params.has_changed().expect("sender alive"), "audio header");
        params.borrow_and_update();
        hub.push_audio(20, Bytes::from_static(&[0xaf, 1, 0x21]));
        assert!(!params.has_changed().expect("sender alive"), "audio frame");
    }

    #[tokio::test]
    async fn the_hold_keeps_outputs_on_air_until_it_ends() {
        let hub = held_hub();
        let _output = hub.subscribe();
        let on_air = hub.watch_on_air();
        let guard = hub.start_publish("127.0.0.1:1".parse().expect("addr"));
        assert!(*on_air.borrow());
        drop(guard);
        assert!(!hub.is_live());
        assert!(*on_air.borrow(), "held while the publisher is away");
        hub.end_hold();
        assert!(!*on_air.borrow());
    }

    #[tokio::test]
    async fn with_no_output_attached_nothing_is_held_when_the_publisher_leaves() {
        let hub = held_hub();
        let on_air = hub.watch_on_air();
        let guard = hub.start_publish("127.0.0.1:1".parse().expect("addr"));
        assert!(*on_air.borrow());
        drop(guard);
        assert!(!*on_air.borrow(), "nothing to hold, no standby to play");
    }

    #[tokio::test]
    async fn standby_frames_follow_the_publisher_and_it_comes_back_at_its_keyframe() {
        let hub = held_hub();
        let guard = hub
            .start_publish("127.0.0.1:1".parse().expect("addr"))
            .expect("publisher");
        hub.push_video(0, Bytes::from_static(AVC_SEQ));
        hub.push_video(0, Bytes::from_static(AVC_KEY));
        hub.push_video(1000, Bytes::from_static(AVC_INTER));
        let sub = hub.subscribe();
        let before = drain(&sub).await;
        let last = before.last().expect("frames").timestamp;
        drop(guard);
        let session = hub.start_standby(&standby_headers()).expect("held");
        assert_eq!(hub.feed(), FeedKind::Standby);
        assert!(hub.push_standby(session, FrameKind::Video, 0, &frame(true, AVC_KEY), true));
        assert!(hub.push_standby(
            session,
            FrameKind::Video,
            33,
            &frame(true, AVC_INTER),
            false
        ));
        let standby = drain(&sub).await;
        // Its headers, then its frames, after the publisher's.
        assert!(standby[1].header && standby[1].kind == FrameKind::Video);
        assert!(standby
            .iter()
            .filter(|f| !f.header)
            .all(|f| f.timestamp > last));

        // The publisher is back: held back until its keyframe.
        let _guard = hub
            .start_publish("127.0.0.1:1".parse().expect("addr"))
            .expect("publisher again");
        hub.push_video(0, Bytes::from_static(AVC_SEQ));
        hub.push_video(0, Bytes::from_static(AVC_INTER));
        assert!(drain(&sub).await.is_empty(), "nothing before its keyframe");
        assert!(hub.push_standby(
            session,
            FrameKind::Video,
            66,
            &frame(true, AVC_INTER),
            false
        ));
        let standby_last = drain(&sub).await.last().expect("frame").timestamp;
        hub.push_video(40, Bytes::from_static(AVC_KEY));
        let back = drain(&sub).await;
        assert!(back[0].header, "its headers first: {back:?}");
        let key = back.iter().find(|f| !f.header).expect("keyframe");
        assert!(key.keyframe && key.timestamp > standby_last);
        assert_eq!(hub.feed(), FeedKind::Publisher);
        // The replaced session's frames are refused.
        assert!(!hub.push_standby(
            session,
            FrameKind::Video,
            99,
            &frame(true, AVC_INTER),
            false
        ));
    }

    #[tokio::test]
    async fn the_publishers_own_stream_never_carries_the_standby() {
        let hub = held_hub();
        let _guard = hub
            .start_publish("127.0.0.1:1".parse().expect("addr"))
            .expect("publisher");
        hub.push_video(0, Bytes::from_static(AVC_SEQ));
        hub.push_video(0, Bytes::from_static(AVC_KEY));
        let own = hub.subscribe_publisher();
        assert_eq!(drain(&own).await.len(), 2, "header and keyframe");
        hub.set_break(true);
        let session = hub.start_standby(&standby_headers()).expect("break");
        assert!(hub.push_standby(
            session,
            FrameKind::Video,
            0,
            &frame(true, STANDBY_SEQ),
            true
        ));
        hub.push_video(33, Bytes::from_static(AVC_INTER));
        let got = drain(&own).await;
        assert_eq!(got.len(), 1, "only the publisher's frame: {got:?}");
        assert_eq!(got[0].payload.len(), AVC_INTER.len());
    }

    #[tokio::test]
    async fn a_break_holds_the_publisher_back_until_it_ends() {
        let hub = held_hub();
        let _guard = hub
            .start_publish("127.0.0.1:1".parse().expect("addr"))
            .expect("publisher");
        hub.push_video(0, Bytes::from_static(AVC_SEQ));
        hub.push_video(0, Bytes::from_static(AVC_KEY));
        let sub = hub.subscribe();
        drain(&sub).await;
        assert!(
            hub.start_standby(&standby_headers()).is_none(),
            "not while live"
        );
        hub.set_break(true);
        let session = hub.start_standby(&standby_headers()).expect("break");
        hub.push_video(33, Bytes::from_static(AVC_KEY));
        assert!(hub.push_standby(session, FrameKind::Video, 0, &frame(true, AVC_KEY), true));
        let got = drain(&sub).await;
        assert!(got
            .iter()
            .all(|f| f.header || f.payload.len() == AVC_KEY.len()));
        assert_eq!(hub.feed(), FeedKind::Standby);
        hub.set_break(false);
        hub.push_video(66, Bytes::from_static(AVC_INTER));
        assert_eq!(hub.feed(), FeedKind::Standby, "not mid-GOP");
        hub.push_video(100, Bytes::from_static(AVC_KEY));
        assert_eq!(hub.feed(), FeedKind::Publisher);
        let back = drain(&sub).await;
        let headers: Vec<_> = back.iter().filter(|f| f.header).collect();
        assert_eq!(headers.len(), 1, "the publisher's header again: {back:?}");
    }
}
