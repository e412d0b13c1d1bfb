//! The MPEG-TS muxer of `antenne-media` (what an SRT destination sends) on
//! arbitrary FLV/RTMP tag bodies: whatever an RTMP publisher sends reaches
//! it through the hub untouched (legacy AVC, legacy HEVC codec id 12,
//! Enhanced RTMP `avc1`/`hvc1` SequenceStart, CodedFrames, CodedFramesX,
//! anything else).
//!
//! Input: records `[flags][time delta][length: u16 BE][body…]`, flags bit
//! 0 = audio; a record cut short takes what remains.
//!
//! Checks: no panic; the muxer writes whole 188-byte packets, nothing for
//! a body it refuses, and at most the body, the parameter sets it holds
//! (no longer than the largest body given) and bounded headers; the
//! demuxer reads what it wrote without a continuity error or a lost sync.
//!
//! Seeds (fuzz/seeds/ts_mux): the tags `TsToFlv` makes of the ts_to_flv
//! seeds (H.264 + AAC, HEVC + AAC), as records; the same HEVC tags as
//! legacy codec id 12 and as CodedFramesX.
#![no_main]

use antenne_media::ts::mux::TsMuxer;
use antenne_media::ts::{Demuxer, Limits, PACKET_SIZE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut muxer = TsMuxer::new();
    let mut out = Vec::new();
    let mut rest = data;
    let mut t: i64 = 0;
    let mut largest = 0usize;
    while rest.len() >= 4 {
        let (flags, delta) = (rest[0], rest[1]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let body = &rest[4..(4 + len).min(rest.len())];
        rest = &rest[4 + body.len()..];
        t += i64::from(delta);
        largest = largest.max(body.len());
        let before = out.len();
        let r = if flags & 1 == 1 {
            muxer.audio(t, body, &mut out)
        } else {
            muxer.video(t, body, &mut out)
        };
        let written = out.len() - before;
        assert_eq!(written % PACKET_SIZE, 0);
        if r.is_err() {
            assert_eq!(written, 0, "a refused body writes nothing");
        }
        // Body and parameter sets in Annex B (a 4-byte start code for a
        // length of 1 or 2 bytes: at most 3 times as long), AUD, PES
        // header, PAT + PMT; each packet carries at least 176 bytes of
        // payload but the last.
        let payload = 3 * (body.len() + largest) + 64;
        assert!(written <= PACKET_SIZE * (3 + payload / 176 + 1));
    }
    let mut d = Demuxer::new(Limits {
        max_queued: usize::MAX,
        ..Limits::default()
    });
    let n = d.feed(&out);
    assert_eq!(n, out.len());
    d.flush();
    let s = d.stats();
    assert_eq!((s.skipped_bytes, s.discontinuities), (0, 0), "{s:?}");
});
