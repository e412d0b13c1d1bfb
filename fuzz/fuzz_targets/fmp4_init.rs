//! The H.264 and AAC configuration parsing of `antenne-media` (what a
//! recording or a preview reads from a publisher's sequence headers) on
//! arbitrary bytes, then the muxer fed with what parsed.
//!
//! Input: byte 0 chooses the split point between a video and an audio
//! sequence-header body; both are read as FLV/RTMP message bodies, their
//! configurations parsed, and a muxer built from whatever parsed writes an
//! init segment and a fragment. Checks: no panic; a parsed picture size is
//! within 1..=16384; every box written has a size within the output.
#![no_main]

use antenne_media::fmp4::{codec, AacConfig, AudioPacket, AvcConfig, Muxer, VideoPacket};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fn boxes_in_bounds(mut data: &[u8]) {
    while data.len() >= 8 {
        let size = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
        assert!(size >= 8 && size <= data.len(), "box size out of bounds");
        data = &data[size..];
    }
    assert!(data.is_empty());
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(rest.len());
    let video_body = Bytes::copy_from_slice(&rest[..split]);
    let audio_body = Bytes::copy_from_slice(&rest[split..]);
    let video = match codec::video_packet(&video_body) {
        Some(VideoPacket::AvcConfig(c)) => AvcConfig::parse(c).ok(),
        _ => None,
    };
    if let Some(v) = &video {
        assert!((1..=16384).contains(&v.width) && (1..=16384).contains(&v.height));
    }
    let audio = match codec::audio_packet(&audio_body) {
        Some(AudioPacket::AacConfig(c)) => AacConfig::parse(c).ok(),
        _ => None,
    };
    let _ = codec::sps_size(&rest[..split]);
    let mut mux = Muxer::new(video, audio, Default::default());
    boxes_in_bounds(&mux.init_segment());
    let _ = mux.push_video(0, -5, true, video_body);
    let _ = mux.push_audio(0, audio_body);
    if let Some(f) = mux.finish() {
        boxes_in_bounds(&f);
    }
});
