//! The extra tracks of an Enhanced RTMP multitrack ingest (OBS's
//! "multitrack video": track 0 as ordinary tags, tracks 1.. as multitrack
//! tags). Track 0 never comes here: it is the hub's own stream, unchanged.
//!
//! Invariants: a multitrack tag never reaches a plain subscriber (the hub
//! routes it here before anything else sees it); each track has its own
//! cache (metadata, sequence header per kind, GOP from its own keyframe)
//! and its own subscribers, which get the track *flattened* to ordinary
//! single-track bodies ([`antenne_rtmp::multitrack::flatten`]) and start on
//! the track's keyframe; at most [`MAX_TRACKS`] tracks are kept (a
//! publisher cannot make us hold more caches by inventing track ids);
//! each track's `onMetaData` is track 0's with `width`/`height` from the
//! track's own SPS (onMetaData describes track 0 only).
//!
//! A subscription may also *mix* tracks ([`Hub::subscribe_tracks`]):
//! video (and metadata) from one track, audio from another (OBS sends its
//! vertical canvas as video track 1 with no audio of its own; a
//! music-free audio track for one platform is another audio track). Its
//! one queue is registered twice, each registration taking one kind; it
//! resumes only on the video track's keyframes (never on an audio frame)
//! and replays the video track's metadata and video header with the audio
//! track's latest audio header.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use antenne_media::fmp4::AvcConfig;
use antenne_rtmp::chunked::ChunkedPayload;
use antenne_rtmp::multitrack::{self, PacketType, TrackKind, TrackPacket, TrackSize};
use bytes::Bytes;

use super::cache::Cache;
use super::queue::Queue;
use super::{Frame, FrameKind, Hub, HubState, QueueLimits, Subscription};
use crate::rate::RateMeter;

/// Tracks besides track 0 the hub keeps; ids past this are ignored.
pub(super) const MAX_TRACKS: usize = 8;

/// What the API shows of one track (track 0 included).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TrackSnapshot {
    pub track: u8,
    pub video_codec: Option<String>,
    pub audio_codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub frame_rate: Option<f64>,
    /// Measured over the last seconds; for track 0, what the ingest
    /// receives minus the other tracks (see `http::views`).
    pub bitrate_kbps: f64,
}

#[derive(Debug, Default)]
pub(super) struct Track {
    pub(super) cache: Cache,
    pub(super) subscribers: Vec<(u64, Arc<Queue>)>,
    /// Registrations of mixed subscriptions (one kind each).
    mixed: Vec<Mixed>,
    video_codec: Option<String>,
    audio_codec: Option<String>,
    size: TrackSize,
    has_video: bool,
    video_frames: RateMeter,
    bytes_in: RateMeter,
}

#[derive(Debug, Default)]
pub(super) struct Tracks {
    tracks: BTreeMap<u8, Track>,
    /// Mixed subscriptions' registrations on track 0 (the hub's own
    /// stream), offered from [`Hub::fan_out`] via [`Tracks::offer_track0`].
    track0_mixed: Vec<Mixed>,
}

/// Which kind a registration of a mixed subscription takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Take {
    /// Video and metadata; resumes on this track's keyframes.
    Video,
    /// Audio only; never a place to resume.
    Audio,
}

/// One registration of a mixed subscription on one track.
#[derive(Debug)]
struct Mixed {
    sub: (u64, Arc<Queue>),
    take: Take,
    /// The audio track's latest sequence header, shared by the two
    /// registrations: the video side replays it when the queue resumes.
    audio_header: Arc<Mutex<Option<Frame>>>,
}

impl Mixed {
    fn offer(&self, frame: &Frame, own: &Cache, limits: &QueueLimits) {
        let (_, q) = &self.sub;
        match (self.take, frame.kind) {
            (Take::Video, FrameKind::Audio) | (Take::Audio, FrameKind::Video) => {}
            (Take::Audio, FrameKind::Metadata) => {}
            (Take::Video, _) => {
                let mut headers = Cache::default();
                headers.metadata = own.metadata.clone();
                headers.video_header = own.video_header.clone();
                headers.audio_header = lock(&self.audio_header).clone();
                q.offer(frame, &headers, limits);
            }
            (Take::Audio, FrameKind::Audio) => {
                if frame.header {
                    *lock(&self.audio_header) = Some(frame.clone());
                }
                let mut f = frame.clone();
                f.keyframe = false;
                q.offer(&f, &Cache::default(), limits);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn codec_name(kind: TrackKind, codec: [u8; 4]) -> String {
    use antenne_rtmp::flv::{AudioCodec, VideoCodec};
    match kind {
        TrackKind::Video => VideoCodec::FourCc(codec).name(),
        TrackKind::Audio => AudioCodec::FourCc(codec).name(),
    }
}

impl Tracks {
    /// A new publisher session: caches and descriptions go, subscribers
    /// stay (they wait for the track's next keyframe).
    pub(super) fn reset(&mut self) {
        for t in self.tracks.values_mut() {
            let subscribers = std::mem::take(&mut t.subscribers);
            let mixed = std::mem::take(&mut t.mixed);
            *t = Track {
                subscribers,
                mixed,
                ..Track::default()
            };
        }
    }

    pub(super) fn clear_gops(&mut self) {
        for t in self.tracks.values_mut() {
            t.cache.clear_gop();
        }
    }

    /// The track, created if there is room.
    pub(super) fn get_or_add(&mut self, id: u8) -> Option<&mut Track> {
        if !self.tracks.contains_key(&id) && self.tracks.len() >= MAX_TRACKS {
            return None;
        }
        Some(self.tracks.entry(id).or_default())
    }

    pub(super) fn unsubscribe(&mut self, id: u64) {
        for t in self.tracks.values_mut() {
            t.subscribers.retain(|(i, _)| *i != id);
            t.mixed.retain(|m| m.sub.0 != id);
        }
        self.track0_mixed.retain(|m| m.sub.0 != id);
    }

    /// Every queue fed from here (plain track subscribers and mixed
    /// registrations), for waking.
    pub(super) fn subscribers(&self) -> impl Iterator<Item = &(u64, Arc<Queue>)> {
        self.tracks
            .values()
            .flat_map(|t| t.subscribers.iter().chain(t.mixed.iter().map(|m| &m.sub)))
            .chain(self.track0_mixed.iter().map(|m| &m.sub))
    }

    /// A frame of track 0 (the hub's own stream): offered to the mixed
    /// subscriptions that take a kind from track 0.
    pub(super) fn offer_track0(&self, frame: &Frame, cache: &Cache, limits: &QueueLimits) {
        for m in &self.track0_mixed {
            m.offer(frame, cache, limits);
        }
    }

    /// Whether the ingest carries no track besides track 0.
    pub(super) fn is_empty(&self) -> bool {
        !self.tracks.values().any(Track::carried)
    }

    /// Destinations attached here (a mixed subscription counts once, by
    /// its video side).
    pub(super) fn subscriber_count(&self) -> usize {
        let video_side = |m: &&Mixed| m.take == Take::Video;
        self.tracks
            .values()
            .map(|t| t.subscribers.len() + t.mixed.iter().filter(video_side).count())
            .sum::<usize>()
            + self.track0_mixed.iter().filter(video_side).count()
    }

    /// Track 0's `onMetaData` changed: every track gets its own version.
    pub(super) fn set_metadata(&mut self, track0: &Frame) {
        let body = track0.payload.to_payload();
        for t in self.tracks.values_mut() {
            t.cache.metadata = t.metadata_from(&body, track0.timestamp);
        }
    }

    pub(super) fn snapshots(&self) -> Vec<TrackSnapshot> {
        self.tracks
            .iter()
            .filter(|(_, t)| t.carried())
            .map(|(&track, t)| {
                let fps = t.video_frames.per_second();
                TrackSnapshot {
                    track,
                    video_codec: t.video_codec.clone(),
                    audio_codec: t.audio_codec.clone(),
                    width: t.size.width,
                    height: t.size.height,
                    frame_rate: (fps > 0.0).then_some(fps),
                    bitrate_kbps: t.bytes_in.per_second() * 8.0 / 1000.0,
                }
            })
            .collect()
    }
}

impl Track {
    /// Whether the publisher sent this track (rather than a subscriber
    /// waiting for it).
    fn carried(&self) -> bool {
        self.video_codec.is_some() || self.audio_codec.is_some()
    }

    fn metadata_from(&self, track0_body: &Bytes, timestamp: i64) -> Option<Frame> {
        let body = multitrack::rewrite_metadata(track0_body, self.size)?;
        Some(Frame {
            kind: FrameKind::Metadata,
            timestamp,
            payload: ChunkedPayload::whole(body),
            keyframe: false,
            header: true,
        })
    }

    /// Takes one packet of this track: caches it and offers the flattened
    /// frame to the track's subscribers. `track0_metadata` is the hub's
    /// current `onMetaData`, rewritten when this track's size becomes known.
    pub(super) fn push(
        &mut self,
        p: &TrackPacket,
        timestamp: i64,
        track0_metadata: Option<&Frame>,
        limits: &QueueLimits,
    ) {
        if matches!(p.packet, PacketType::SequenceEnd | PacketType::Metadata) {
            return;
        }
        let Some(body) = multitrack::flatten(p) else {
            return;
        };
        self.bytes_in.add(p.payload.len());
        let header = p.packet == PacketType::SequenceStart;
        let video = p.kind == TrackKind::Video;
        if video {
            self.has_video = true;
        }
        let frame = Frame {
            kind: if video {
                FrameKind::Video
            } else {
                FrameKind::Audio
            },
            timestamp,
            payload: antenne_rtmp::client::prepare_media(video, body),
            keyframe: if video {
                p.is_keyframe()
            } else {
                !self.has_video && !header
            },
            header,
        };
        if header {
            let name = Some(codec_name(p.kind, p.codec));
            if video {
                self.video_codec = name;
                if &p.codec == b"avc1" {
                    let cfg = AvcConfig::parse(p.payload.clone()).ok();
                    self.size.width = cfg.as_ref().map(|c| c.width);
                    self.size.height = cfg.as_ref().map(|c| c.height);
                }
                self.cache.video_header = Some(frame.clone());
                if let Some(m) = track0_metadata {
                    let body = m.payload.to_payload();
                    self.cache.metadata = self.metadata_from(&body, m.timestamp);
                }
            } else {
                self.audio_codec = name;
                self.cache.audio_header = Some(frame.clone());
            }
        } else {
            if video {
                self.video_frames.add(1);
            }
            if limits.gop_cache {
                self.cache.push_media(&frame);
            }
        }
        for (_, q) in &self.subscribers {
            q.offer(&frame, &self.cache, limits);
        }
        for m in &self.mixed {
            m.offer(&frame, &self.cache, limits);
        }
    }
}

impl Hub {
    /// Attaches a destination to video track `video` with the audio of
    /// track `audio` (0: the hub's own stream), as one ordinary
    /// single-track stream: the video track's metadata and video header,
    /// the audio track's audio header, starting on the video track's
    /// keyframe (the cached GOP's video when live). With `video == audio`
    /// this is [`Hub::subscribe_track`]. Tracks that do not exist yet are
    /// waited for; past [`MAX_TRACKS`], that side gets nothing.
    pub fn subscribe_tracks(self: &Arc<Self>, video: u8, audio: u8) -> Subscription {
        if video == audio {
            return self.subscribe_track(video);
        }
        let queue = Arc::new(Queue::default());
        let mut st = self.lock();
        let id = st.next_id();
        let live = st.publisher.is_some();
        let HubState { tracks, cache, .. } = &mut *st;
        let audio_header = match audio {
            0 => cache.audio_header.clone(),
            n => tracks
                .tracks
                .get(&n)
                .and_then(|t| t.cache.audio_header.clone()),
        };
        let audio_header = Arc::new(Mutex::new(audio_header));
        let registration = |take| Mixed {
            sub: (id, queue.clone()),
            take,
            audio_header: audio_header.clone(),
        };
        // The audio track's frames since its own start point: those from
        // the video keyframe on join the cached GOP, so the audio starts
        // with the picture.
        let audio_gop: Vec<Frame> = match audio {
            0 => Some(&cache.gop),
            n => tracks.tracks.get(&n).map(|t| &t.cache.gop),
        }
        .into_iter()
        .flatten()
        .filter(|f| f.kind == FrameKind::Audio && !f.header)
        .cloned()
        .collect();
        {
            let mut q = queue.lock();
            q.skipping = true;
            let video_cache = match video {
                0 => Some(&*cache),
                n => tracks.get_or_add(n).map(|t| &t.cache),
            };
            if let Some(c) = video_cache.filter(|c| live && c.gop_ready()) {
                q.skipping = false;
                let audio_header = lock(&audio_header).clone();
                let headers = c.metadata.iter().chain(c.video_header.iter());
                for f in headers.chain(audio_header.iter()) {
                    q.push(f.clone());
                }
                let start = c.gop.first().map_or(i64::MAX, |f| f.timestamp);
                let mut gop: Vec<&Frame> = c
                    .gop
                    .iter()
                    .filter(|f| f.kind != FrameKind::Audio)
                    .chain(audio_gop.iter().filter(|f| f.timestamp >= start))
                    .collect();
                // Stable: at one timestamp, video before audio.
                gop.sort_by_key(|f| f.timestamp);
                for f in gop {
                    q.push(f.clone());
                }
            }
        }
        for (track, take) in [(video, Take::Video), (audio, Take::Audio)] {
            if track == 0 {
                tracks.track0_mixed.push(registration(take));
            } else if let Some(t) = tracks.get_or_add(track) {
                t.mixed.push(registration(take));
            }
        }
        drop(st);
        self.subscription(id, queue)
    }

    /// Whether the ingest is live and has sent its first keyframe on
    /// track 0: OBS sends every track's sequence header before its first
    /// frame, so from then on [`Hub::snapshot`]'s `tracks` says which
    /// tracks the ingest carries and their sizes.
    pub fn tracks_known(&self) -> bool {
        let st = self.lock();
        st.publisher.is_some() && st.cache.gop_ready()
    }
}

#[cfg(test)]
#[path = "tracks_tests.rs"]
mod tests;
