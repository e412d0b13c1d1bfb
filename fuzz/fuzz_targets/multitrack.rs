//! Enhanced RTMP multitrack parsing and flattening (multitrack.rs) of
//! arbitrary audio and video bodies: legacy, single-track and every
//! multitrack form, including ManyTracks sizes that lie.
//!
//! Input: `[kind: bit 0 = audio][tag body…]`.
//!
//! Checks: no panic; never more packets than body bytes, no payload longer
//! than the body; a flattened packet is its payload plus at most 8 header
//! bytes, is not multitrack, and parses back as track 0 with the same
//! codec, packet type and payload; `onMetaData` rewriting never panics.
#![no_main]

use antenne_rtmp::multitrack::{
    flatten, is_multitrack, parse_audio, parse_video, rewrite_metadata, TrackKind, TrackSize,
};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let kind = if kind & 1 == 1 {
        TrackKind::Audio
    } else {
        TrackKind::Video
    };
    let body = Bytes::copy_from_slice(body);
    let parse = |b: &Bytes| match kind {
        TrackKind::Audio => parse_audio(b),
        TrackKind::Video => parse_video(b),
    };
    let _ = is_multitrack(kind, &body);
    if let Ok(packets) = parse(&body) {
        assert!(!packets.is_empty());
        assert!(packets.len() <= body.len());
        for p in &packets {
            assert_eq!(p.kind, kind);
            assert!(p.payload.len() <= body.len());
            let Some(flat) = flatten(p) else { continue };
            assert!(flat.len() <= p.payload.len() + 8);
            assert!(!is_multitrack(kind, &flat));
            let back = parse(&flat).expect("a flattened packet parses");
            assert_eq!(back.len(), 1);
            let b = &back[0];
            assert_eq!(b.track, 0);
            assert_eq!((b.codec, b.packet), (p.codec, p.packet));
            assert_eq!(b.payload, p.payload);
        }
    }
    let size = TrackSize {
        width: Some(180),
        height: Some(320),
        frame_rate: None,
    };
    let _ = rewrite_metadata(&body, size);
});
