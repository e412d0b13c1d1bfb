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

use std::collections::BTreeMap;
use std::sync::Arc;

use antenne_media::fmp4::AvcConfig;
use antenne_rtmp::chunked::ChunkedPayload;
use antenne_rtmp::multitrack::{self, PacketType, TrackKind, TrackPacket, TrackSize};
use bytes::Bytes;

use super::cache::Cache;
use super::queue::Queue;
use super::{Frame, FrameKind, QueueLimits};
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
}

#[derive(Debug, Default)]
pub(super) struct Track {
    pub(super) cache: Cache,
    pub(super) subscribers: Vec<(u64, Arc<Queue>)>,
    video_codec: Option<String>,
    audio_codec: Option<String>,
    size: TrackSize,
    has_video: bool,
    video_frames: RateMeter,
}

#[derive(Debug, Default)]
pub(super) struct Tracks {
    tracks: BTreeMap<u8, Track>,
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
            *t = Track {
                subscribers,
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
        }
    }

    pub(super) fn subscribers(&self) -> impl Iterator<Item = &(u64, Arc<Queue>)> {
        self.tracks.values().flat_map(|t| t.subscribers.iter())
    }

    /// Whether the ingest carries no track besides track 0.
    pub(super) fn is_empty(&self) -> bool {
        !self.tracks.values().any(Track::carried)
    }

    pub(super) fn subscriber_count(&self) -> usize {
        self.tracks.values().map(|t| t.subscribers.len()).sum()
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
            self.cache.push_media(&frame);
        }
        for (_, q) in &self.subscribers {
            q.offer(&frame, &self.cache, limits);
        }
    }
}
