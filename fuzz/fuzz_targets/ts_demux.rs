//! The MPEG-TS demuxer of `antenne-media` (groundwork for SRT ingest) on
//! arbitrary bytes, fed in arbitrary pieces, and the FLV conversions on
//! whatever it finds.
//!
//! Input: byte 0 sets the piece size (1 + byte, so 1 to 256 bytes), the
//! rest is the stream. Checks: no panic; `feed` always makes progress when
//! nothing waits; what the demuxer holds stays within its limits; every
//! access unit is within the PES cap.
//!
//! Seeds (fuzz/seeds/ts_demux): ffmpeg's MPEG-TS, step byte first:
//! `ffmpeg -f lavfi -i testsrc=size=64x48:rate=10 -f lavfi -i
//! sine=sample_rate=8000 -t 0.5 -c:v libx264 -preset ultrafast -g 3 -bf 1
//! -c:a aac -b:a 16k -f mpegts h264.ts` (steps 188 and 7, and its first
//! 4 packets behind garbage), and the same picture in HEVC (`-t 0.3 -c:v
//! libx265 -g 2`, video only, step 256), and HEVC + AAC (`-f lavfi -i
//! testsrc2=s=64x48:r=10 -f lavfi -i sine=sample_rate=8000 -t 0.4 -c:v
//! libx265 -x265-params keyint=2:bframes=1 -c:a aac -b:a 16k`, step 188).
#![no_main]

use antenne_media::ts::{convert, Demuxer, Limits, PACKET_SIZE};
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
    let mut demuxer = Demuxer::new(LIMITS);
    let mut rest = stream;
    let check = |d: &mut Demuxer| {
        assert!(d.queued() <= LIMITS.max_queued + LIMITS.max_pes / 7);
        assert!(
            d.buffered()
                <= 2 * PACKET_SIZE
                    + LIMITS.max_streams * LIMITS.max_pes
                    + (LIMITS.max_queued + LIMITS.max_pes / 7) * LIMITS.max_pes
        );
        while let Some(au) = d.poll() {
            assert!(au.data.len() <= LIMITS.max_pes);
            if au.codec.is_video() {
                let _ = convert::avc_frame_body(&au);
                if let (Some(s), Some(p)) = convert::h264_parameter_sets(&au.data) {
                    let _ = convert::avc_sequence_header(s, p);
                }
            } else {
                let _ = convert::aac_sequence_header(&au.data);
                let _ = convert::aac_frame_body(&au.data);
            }
        }
    };
    while !rest.is_empty() {
        let n = demuxer.feed(&rest[..rest.len().min(step as usize + 1)]);
        assert!(n > 0, "an empty queue always takes bytes");
        rest = &rest[n..];
        check(&mut demuxer);
    }
    demuxer.flush();
    check(&mut demuxer);
});
