//! The muxer's tests: what it writes reads back through the demuxer and
//! [`TsToFlv`], and what it refuses writes nothing.

use super::super::to_flv::TsToFlv;
use super::super::{Codec, Demuxer};
use super::*;
use crate::flv::TagKind;

/// An SPS ffmpeg's libx264 writes for 320x240 (High profile).
const SPS: [u8; 25] = [
    0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
    0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0x99, 0x60,
];
const PPS: [u8; 6] = [0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

fn avc_header() -> Vec<u8> {
    let mut b = vec![0x17, 0, 0, 0, 0, 1, SPS[1], SPS[2], SPS[3], 0xff, 0xe1];
    b.extend_from_slice(&(SPS.len() as u16).to_be_bytes());
    b.extend_from_slice(&SPS);
    b.push(1);
    b.extend_from_slice(&(PPS.len() as u16).to_be_bytes());
    b.extend_from_slice(&PPS);
    b
}

fn frame(key: bool, cts: u8, size: usize) -> Vec<u8> {
    let mut b = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, cts];
    b.extend_from_slice(&(size as u32 + 1).to_be_bytes());
    b.push(if key { 0x65 } else { 0x41 });
    b.extend((0..size).map(|i| (i % 200 + 1) as u8));
    b
}

fn stream() -> Vec<u8> {
    let mut m = TsMuxer::new();
    let mut out = Vec::new();
    m.video(0, &avc_header(), &mut out).unwrap();
    m.audio(0, &[0xaf, 0, 0x11, 0x90], &mut out).unwrap();
    m.video(0, &frame(true, 66, 3000), &mut out).unwrap();
    m.audio(0, &[0xaf, 1, 1, 2, 3], &mut out).unwrap();
    m.video(33, &frame(false, 0, 183 - 23), &mut out).unwrap();
    m.audio(21, &[0xaf, 1, 4, 5, 6], &mut out).unwrap();
    m.video(66, &frame(false, 0, 10), &mut out).unwrap();
    m.video(100, &frame(true, 0, 500), &mut out).unwrap();
    out
}

#[test]
fn writes_whole_packets_with_continuous_counters() {
    let out = stream();
    assert_eq!(out.len() % PACKET_SIZE, 0);
    let mut d = Demuxer::default();
    d.feed(&out);
    d.flush();
    let s = d.stats();
    assert_eq!(
        (s.discontinuities, s.dropped_pes, s.skipped_bytes),
        (0, 0, 0)
    );
}

#[test]
fn the_demuxer_reads_back_what_it_wrote() {
    let mut d = Demuxer::default();
    d.feed(&stream());
    d.flush();
    let units: Vec<_> = std::iter::from_fn(|| d.poll()).collect();
    let video: Vec<_> = units.iter().filter(|u| u.codec == Codec::H264).collect();
    let audio: Vec<_> = units.iter().filter(|u| u.codec == Codec::Aac).collect();
    assert_eq!(video.len(), 4);
    assert_eq!(audio.len(), 2);
    assert!(video[0].keyframe && !video[1].keyframe && video[3].keyframe);
    assert_eq!(video[0].dts, DELAY_90K);
    assert_eq!(video[0].cts_ms(), 66);
    assert_eq!(video[1].dts, DELAY_90K + 33 * 90);
    assert_eq!(audio[1].pts, DELAY_90K + 21 * 90);
    // AUD, then SPS and PPS before the keyframe.
    assert_eq!(&video[0].data[..6], &[0, 0, 0, 1, 0x09, 0xf0]);
    assert_eq!(&video[0].data[10..10 + SPS.len()], &SPS);
}

#[test]
fn round_trips_through_ts_to_flv() {
    let mut c = TsToFlv::default();
    let mut tags = Vec::new();
    c.push(&stream(), &mut tags);
    c.finish(&mut tags);
    let video: Vec<_> = tags.iter().filter(|t| t.kind == TagKind::Video).collect();
    assert_eq!(video[0].body[..], avc_header()[..]);
    let times: Vec<u32> = video.iter().map(|t| t.timestamp).collect();
    assert_eq!(times, vec![0, 0, 33, 66, 100]);
    let audio: Vec<_> = tags.iter().filter(|t| t.kind == TagKind::Audio).collect();
    assert_eq!(audio[0].body[..], [0xaf, 0, 0x11, 0x90]);
    assert_eq!(audio[2].body[..], [0xaf, 1, 4, 5, 6]);
}

#[test]
fn refuses_media_before_its_header_and_bodies_it_cannot_read() {
    let mut m = TsMuxer::new();
    let mut out = Vec::new();
    assert_eq!(
        m.video(0, &frame(true, 0, 10), &mut out),
        Err(MuxError::NoHeader)
    );
    assert_eq!(m.audio(0, &[0xaf, 1, 1], &mut out), Err(MuxError::NoHeader));
    assert_eq!(
        m.video(0, &[0x12, 1, 0, 0, 0], &mut out),
        Err(MuxError::NotVideo)
    );
    assert_eq!(
        m.video(0, &[0x17, 0, 0, 0, 0, 1], &mut out),
        Err(MuxError::BadHeader)
    );
    m.video(0, &avc_header(), &mut out).unwrap();
    let mut cut = frame(true, 0, 10);
    cut.truncate(12);
    assert_eq!(m.video(0, &cut, &mut out), Err(MuxError::Truncated));
    assert!(out.is_empty());
}

#[test]
fn enhanced_rtmp_avc1_gives_the_same_stream_as_legacy_avc() {
    let enhanced = |legacy: &[u8]| {
        // 0x17 0x00 → 0x90 avc1; 0x17/0x27 0x01 cts → 0x91/0xa1 avc1 cts.
        let frame_type = legacy[0] >> 4;
        let mut b = vec![0x80 | frame_type << 4 | legacy[1], b'a', b'v', b'c', b'1'];
        if legacy[1] == 1 {
            b.extend_from_slice(&legacy[2..5]);
        }
        b.extend_from_slice(&legacy[5..]);
        b
    };
    let bodies = [avc_header(), frame(true, 66, 300), frame(false, 0, 40)];
    let mut legacy_out = Vec::new();
    let mut m = TsMuxer::new();
    for (i, b) in bodies.iter().enumerate() {
        m.video(i as i64 * 33, b, &mut legacy_out).unwrap();
    }
    let mut enhanced_out = Vec::new();
    let mut m = TsMuxer::new();
    for (i, b) in bodies.iter().enumerate() {
        m.video(i as i64 * 33, &enhanced(b), &mut enhanced_out)
            .unwrap();
    }
    assert!(!legacy_out.is_empty());
    assert_eq!(legacy_out, enhanced_out);
}
