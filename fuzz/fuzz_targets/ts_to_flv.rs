//! SRT's whole path through `antenne-media` on arbitrary bytes: the
//! MPEG-TS stream a publisher sends, turned into hub tags by `TsToFlv`
//! (demuxer, sequence headers, 33-bit timestamp unwrapping), then every tag
//! muxed back into MPEG-TS by `TsMuxer` (what an SRT destination sends).
//!
//! Input: byte 0 sets the piece size (1 + byte), the rest is the stream.
//! Checks: no panic; each piece's tags carry at most the piece's bytes plus
//! headers (the demuxer's bound holds the rest); the muxer writes whole
//! 188-byte packets and nothing for a body it refuses.
//!
//! Seeds (fuzz/seeds/ts_to_flv): those of ts_demux (ffmpeg's MPEG-TS),
//! among them HEVC + AAC, which takes the HEVC path (VPS/SPS/PPS to an
//! HEVCDecoderConfigurationRecord, `hvc1` bodies, muxed back as stream
//! type 0x24).
#![no_main]

use antenne_media::flv::TagKind;
use antenne_media::ts::mux::TsMuxer;
use antenne_media::ts::to_flv::TsToFlv;
use antenne_media::ts::{Limits, PACKET_SIZE};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    max_pes: 64 * 1024,
    max_streams: 4,
    max_queued: 16,
};

fuzz_target!(|data: &[u8]| {
    let Some((&step, stream)) = data.split_first() else {
        return;
    };
    let mut converter = TsToFlv::new(LIMITS);
    let mut muxer = TsMuxer::new();
    let mut tags = Vec::new();
    let mut out = Vec::new();
    let mut mux = |tags: &mut Vec<antenne_media::flv::Tag>, out: &mut Vec<u8>| {
        for tag in tags.drain(..) {
            let before = out.len();
            let t = i64::from(tag.timestamp);
            let r = match tag.kind {
                TagKind::Video => muxer.video(t, &tag.body, out),
                TagKind::Audio => muxer.audio(t, &tag.body, out),
                TagKind::Script => Ok(()),
            };
            assert_eq!(out.len() % PACKET_SIZE, 0);
            if r.is_err() {
                assert_eq!(out.len(), before, "a refused body writes nothing");
            }
        }
        out.clear();
    };
    for piece in stream.chunks(step as usize + 1) {
        converter.push(piece, &mut tags);
        mux(&mut tags, &mut out);
        // push takes every unit out: only the input buffer and open PES remain.
        assert!(
            converter.demuxer().buffered() <= 2 * PACKET_SIZE + LIMITS.max_streams * LIMITS.max_pes
        );
    }
    converter.finish(&mut tags);
    mux(&mut tags, &mut out);
});
