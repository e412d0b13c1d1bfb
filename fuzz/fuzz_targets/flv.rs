//! FLV tag inspection (flv.rs) of arbitrary audio and video bodies,
//! legacy and Enhanced RTMP.
//!
//! Checks: no panic; an empty body is `None`, anything else is `Some`;
//! an Enhanced RTMP header's FourCC is read from bytes 1..5.
#![no_main]

use antenne_rtmp::flv::{inspect_audio, inspect_video, AudioCodec, VideoCodec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let video = inspect_video(data);
    let audio = inspect_audio(data);
    assert_eq!(video.is_none(), data.is_empty());
    assert_eq!(audio.is_none(), data.is_empty());
    if let Some(v) = video {
        let _ = v.codec.name();
        if let (VideoCodec::FourCc(cc), Some(bytes)) = (v.codec, data.get(1..5)) {
            assert_eq!(&cc[..], bytes);
        }
        if data[0] & 0x80 == 0 {
            assert!(matches!(v.codec, VideoCodec::Legacy(id) if id == data[0] & 0x0f));
        }
    }
    if let Some(a) = audio {
        let _ = a.codec.name();
        if let (AudioCodec::FourCc(cc), Some(bytes)) = (a.codec, data.get(1..5)) {
            assert_eq!(&cc[..], bytes);
        }
    }
});
