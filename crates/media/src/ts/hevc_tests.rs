//! HEVC through the SRT path: MPEG-TS (stream type 0x24) to Enhanced RTMP
//! `hvc1` bodies ([`TsToFlv`]) and back to MPEG-TS ([`TsMuxer`]), on
//! libx265's parameter sets and streams built by the minimal muxer of
//! [`super::tests`].

use super::mux::TsMuxer;
use super::tests::{adts, convert_all, Mux, AUDIO, VIDEO};
use super::to_flv::TsToFlv;
use super::*;
use crate::flv::{Tag, TagKind};
use crate::hevc::tests::{FFMPEG_RECORD, PPS, SPS, VPS};
use crate::hevc::HevcConfig;

const AUD: [u8; 3] = [0x46, 0x01, 0x50];
/// A prefix SEI (type 39), kept in frames.
const SEI: [u8; 6] = [0x4e, 0x01, 0x05, 0x01, 0xaa, 0x80];

fn annexb(nals: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for nal in nals {
        v.extend_from_slice(&[0, 0, 0, 1]);
        v.extend_from_slice(nal);
    }
    v
}

/// An IDR_W_RADL slice (type 19) of `size` bytes after its header.
fn idr_slice(size: usize) -> Vec<u8> {
    let mut v = vec![19 << 1, 0x01];
    v.extend((0..size).map(|i| (i % 200 + 1) as u8));
    v
}

/// A TRAIL_R slice (type 1).
fn trail_slice(size: usize) -> Vec<u8> {
    let mut v = vec![1 << 1, 0x01];
    v.extend((0..size).map(|i| (i % 100 + 7) as u8));
    v
}

/// What libx265 writes before an IRAP picture: AUD, VPS, SPS, PPS, SEI.
fn irap(sps: &[u8], size: usize) -> Vec<u8> {
    annexb(&[&AUD, &VPS, sps, &PPS, &SEI, &idr_slice(size)])
}

fn trail(size: usize) -> Vec<u8> {
    annexb(&[&AUD, &trail_slice(size)])
}

/// 90 kHz: an IRAP at 0.1 s shown 66 ms later, two pictures after it, and
/// one AAC frame.
fn hevc_stream() -> Vec<u8> {
    let mut m = Mux::default();
    m.tables_for(0x24);
    m.pes(VIDEO, 0xe0, 9000 + 6000, 9000, &irap(&SPS, 3000), false);
    m.pes(AUDIO, 0xc0, 9000, 9000, &adts(40), true);
    m.pes(VIDEO, 0xe0, 12000 + 6000, 12000, &trail(400), false);
    m.pes(VIDEO, 0xe0, 15000 + 6000, 15000, &trail(300), false);
    m.out
}

fn video(tags: &[Tag]) -> Vec<&Tag> {
    tags.iter().filter(|t| t.kind == TagKind::Video).collect()
}

/// Length-prefixed NAL units of a CodedFrames body (after the 8-byte
/// header), as (type, length).
fn nal_summary(data: &[u8]) -> Vec<(u8, usize)> {
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 4 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        out.push(((rest[4] >> 1) & 0x3f, len));
        rest = &rest[4 + len..];
    }
    assert!(rest.is_empty(), "lengths cover the body");
    out
}

#[test]
fn hevc_becomes_an_hvc1_sequence_start_then_coded_frames() {
    let tags = convert_all(&hevc_stream());
    let v = video(&tags);
    assert_eq!(v.len(), 4);
    // SequenceStart, key frame: `0x90 hvc1` + the record ffmpeg would write.
    assert_eq!(v[0].body[..5], *b"\x90hvc1");
    assert_eq!(v[0].body[5..], FFMPEG_RECORD[..]);
    assert_eq!(v[0].timestamp, 0);
    // CodedFrames, key frame, composition offset 66 ms; the SEI and the
    // slice, without AUD and parameter sets.
    assert_eq!(v[1].body[..8], [0x91, b'h', b'v', b'c', b'1', 0, 0, 66]);
    assert_eq!(nal_summary(&v[1].body[8..]), vec![(39, 6), (19, 3002)]);
    // Inter frames.
    assert_eq!(v[2].body[..8], [0xa1, b'h', b'v', b'c', b'1', 0, 0, 66]);
    assert_eq!(nal_summary(&v[2].body[8..]), vec![(1, 402)]);
    let times: Vec<u32> = v.iter().map(|t| t.timestamp).collect();
    assert_eq!(times, vec![0, 0, 33, 66]);
    // The audio is there too.
    assert!(tags.iter().any(|t| t.body[..2] == [0xaf, 0x00]));
}

#[test]
fn the_hub_reads_these_bodies_as_hevc_keyframes() {
    let tags = convert_all(&hevc_stream());
    let v = video(&tags);
    let record = HevcConfig::parse(&v[0].body[5..]).expect("a record that parses");
    assert_eq!((record.sps.width, record.sps.height), (128, 72));
    // Enhanced RTMP: IsExHeader, frame type 1, SequenceStart / CodedFrames.
    assert_eq!((v[0].body[0] >> 4, v[0].body[0] & 0x0f), (0x9, 0));
    assert_eq!((v[1].body[0] >> 4, v[1].body[0] & 0x0f), (0x9, 1));
    assert_eq!((v[2].body[0] >> 4, v[2].body[0] & 0x0f), (0xa, 1));
}

#[test]
fn hevc_parameter_sets_repeated_send_one_header_and_a_changed_one_another() {
    // Level 3.1 instead of 3 (the level byte is the SPS's 18th).
    let mut sps2 = SPS;
    assert_eq!(sps2[17], 30);
    sps2[17] = 93;
    let mut m = Mux::default();
    m.tables_for(0x24);
    m.pes(VIDEO, 0xe0, 0, 0, &irap(&SPS, 10), false);
    m.pes(VIDEO, 0xe0, 3000, 3000, &trail(10), false);
    m.pes(VIDEO, 0xe0, 6000, 6000, &irap(&SPS, 10), false);
    m.pes(VIDEO, 0xe0, 9000, 9000, &irap(&sps2, 10), false);
    let tags = convert_all(&m.out);
    let headers: Vec<&Tag> = tags.iter().filter(|t| t.body[0] == 0x90).collect();
    assert_eq!((tags.len(), headers.len()), (6, 2));
    assert_eq!(headers[1].timestamp, 100);
    let c = HevcConfig::parse(&headers[1].body[5..]).expect("the new record");
    assert_eq!(c.sps.level, 93);
}

#[test]
fn hevc_before_its_parameter_sets_or_with_a_bad_sps_is_dropped() {
    let mut bad_sps = SPS[..10].to_vec();
    bad_sps[2] = 0xff;
    let mut m = Mux::default();
    m.tables_for(0x24);
    m.pes(VIDEO, 0xe0, 0, 0, &trail(10), false);
    m.pes(VIDEO, 0xe0, 3000, 3000, &irap(&bad_sps, 10), false);
    m.pes(VIDEO, 0xe0, 6000, 6000, &trail(10), false);
    m.pes(VIDEO, 0xe0, 9000, 9000, &irap(&SPS, 10), false);
    let mut c = TsToFlv::default();
    let mut tags = Vec::new();
    c.push(&m.out, &mut tags);
    c.finish(&mut tags);
    tags.retain(|t| t.kind != crate::flv::TagKind::Script);
    assert_eq!(c.stats().video_dropped, 3);
    assert_eq!(tags.len(), 2);
    assert_eq!(tags[0].body[0], 0x90);
    assert_eq!(tags[0].timestamp, 100);
}

/// TS → FLV (TsToFlv) → TS (TsMuxer) → access units: the pictures come back
/// as Annex B with an AUD first and VPS, SPS, PPS before the IRAP, on a
/// stream the PMT lists as HEVC.
#[test]
fn hevc_round_trips_ts_to_flv_to_ts() {
    let tags = convert_all(&hevc_stream());
    let mut muxer = TsMuxer::new();
    let mut ts = Vec::new();
    for t in &tags {
        let r = match t.kind {
            TagKind::Video => muxer.video(t.timestamp.into(), &t.body, &mut ts),
            TagKind::Audio => muxer.audio(t.timestamp.into(), &t.body, &mut ts),
            TagKind::Script => Ok(()),
        };
        r.expect("the muxer takes what TsToFlv makes");
    }
    let mut d = Demuxer::default();
    d.feed(&ts);
    d.flush();
    assert_eq!(d.streams(), vec![(VIDEO, Codec::Hevc), (AUDIO, Codec::Aac)]);
    let units: Vec<AccessUnit> = std::iter::from_fn(|| d.poll()).collect();
    let v: Vec<&AccessUnit> = units.iter().filter(|u| u.codec == Codec::Hevc).collect();
    assert_eq!(v.len(), 3);
    assert!(v[0].keyframe && !v[1].keyframe);
    assert_eq!(v[0].cts_ms(), 66);
    assert_eq!(v[0].data[..], irap(&SPS, 3000)[..]);
    assert_eq!(v[1].data[..], trail(400)[..]);
    // And back to FLV: the same bodies as the first time.
    let again = convert_all(&ts);
    assert_eq!(
        video(&again).iter().map(|t| &t.body).collect::<Vec<_>>(),
        video(&tags).iter().map(|t| &t.body).collect::<Vec<_>>()
    );
}

/// The forms of HEVC an RTMP publisher may send (Enhanced RTMP
/// CodedFramesX, legacy codec id 12) come out of the muxer as the same
/// transport stream as CodedFrames.
#[test]
fn the_muxer_takes_every_form_of_hevc_body() {
    let slices = |key: bool| {
        let s = if key { idr_slice(50) } else { trail_slice(20) };
        let mut v = (s.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(&s);
        v
    };
    let enhanced = |first: u8, cts: Option<u8>, data: &[u8]| {
        let mut b = vec![first, b'h', b'v', b'c', b'1'];
        if let Some(c) = cts {
            b.extend_from_slice(&[0, 0, c]);
        }
        b.extend_from_slice(data);
        b
    };
    let legacy = |first: u8, kind: u8, data: &[u8]| {
        let mut b = vec![first, kind, 0, 0, 0];
        b.extend_from_slice(data);
        b
    };
    let forms: [Vec<Vec<u8>>; 3] = [
        vec![
            enhanced(0x90, None, &FFMPEG_RECORD),
            enhanced(0x91, Some(0), &slices(true)),
            enhanced(0xa1, Some(0), &slices(false)),
        ],
        vec![
            enhanced(0x90, None, &FFMPEG_RECORD),
            enhanced(0x93, None, &slices(true)),
            enhanced(0xa3, None, &slices(false)),
        ],
        vec![
            legacy(0x1c, 0, &FFMPEG_RECORD),
            legacy(0x1c, 1, &slices(true)),
            legacy(0x2c, 1, &slices(false)),
        ],
    ];
    let outputs: Vec<Vec<u8>> = forms
        .iter()
        .map(|bodies| {
            let mut m = TsMuxer::new();
            let mut out = Vec::new();
            for (i, b) in bodies.iter().enumerate() {
                m.video(i as i64 * 40, b, &mut out).expect("an HEVC body");
            }
            out
        })
        .collect();
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
    let mut d = Demuxer::default();
    d.feed(&outputs[0]);
    d.flush();
    let units: Vec<AccessUnit> = std::iter::from_fn(|| d.poll()).collect();
    assert_eq!(units.len(), 2);
    assert_eq!(
        units[0].data[..],
        annexb(&[&AUD, &VPS, &SPS, &PPS, &idr_slice(50)])[..]
    );
    assert_eq!(units[1].data[..], annexb(&[&AUD, &trail_slice(20)])[..]);
}

/// A publisher switching from H.264 to HEVC: the PMT gets a new version
/// with stream type 0x24, and a demuxer follows.
#[test]
fn a_codec_change_gets_a_new_pmt_version() {
    let mut m = TsMuxer::new();
    let mut out = Vec::new();
    let avc_record = [
        0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x0d, 0xff, 0xe1, 0, 2, 0x67, 0x64, 1, 0, 2, 0x68, 0xeb,
    ];
    m.video(0, &avc_record, &mut out).expect("an AVC header");
    m.video(0, &[0x17, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 1], &mut out)
        .expect("an AVC keyframe");
    let mut d = Demuxer::default();
    d.feed(&out);
    assert_eq!(d.streams()[0], (mux::VIDEO_PID, Codec::H264));
    out.clear();
    let mut header = b"\x90hvc1".to_vec();
    header.extend_from_slice(&FFMPEG_RECORD);
    m.video(40, &header, &mut out).expect("an HEVC header");
    // An H.264 frame after it has no header of its own any more.
    assert_eq!(
        m.video(40, &[0x27, 1, 0, 0, 0, 0, 0, 0, 2, 0x41, 1], &mut out),
        Err(mux::MuxError::NoHeader)
    );
    let mut frame = b"\x91hvc1\0\0\0".to_vec();
    let slice = idr_slice(10);
    frame.extend_from_slice(&(slice.len() as u32).to_be_bytes());
    frame.extend_from_slice(&slice);
    m.video(40, &frame, &mut out).expect("an HEVC keyframe");
    d.feed(&out);
    d.flush();
    assert_eq!(d.streams()[0], (mux::VIDEO_PID, Codec::Hevc));
    let last = std::iter::from_fn(|| d.poll()).last().expect("a unit");
    assert_eq!(last.codec, Codec::Hevc);
    assert!(last.keyframe);
}

#[test]
fn the_muxer_refuses_hevc_it_cannot_use_and_writes_nothing() {
    let mut m = TsMuxer::new();
    let mut out = Vec::new();
    let mut frame = b"\x91hvc1\0\0\0".to_vec();
    frame.extend_from_slice(&[0, 0, 0, 3, 0x26, 1, 9]);
    assert_eq!(m.video(0, &frame, &mut out), Err(mux::MuxError::NoHeader));
    let mut header = b"\x90hvc1".to_vec();
    header.extend_from_slice(&FFMPEG_RECORD[..40]);
    assert_eq!(m.video(0, &header, &mut out), Err(mux::MuxError::BadHeader));
    assert_eq!(
        m.video(0, b"\x90av01\x81", &mut out),
        Err(mux::MuxError::NotVideo)
    );
    assert_eq!(
        m.video(0, b"\x91hv", &mut out),
        Err(mux::MuxError::NotVideo)
    );
    assert_eq!(
        m.video(0, b"\x91hvc1\0", &mut out),
        Err(mux::MuxError::Truncated)
    );
    let mut header = b"\x90hvc1".to_vec();
    header.extend_from_slice(&FFMPEG_RECORD);
    m.video(0, &header, &mut out).expect("the header");
    frame.truncate(frame.len() - 1);
    assert_eq!(m.video(0, &frame, &mut out), Err(mux::MuxError::Truncated));
    assert!(out.is_empty());
    // Every truncation of a SequenceStart and of a frame: no panic.
    let mut full = b"\x91hvc1\0\0\0".to_vec();
    full.extend_from_slice(&[0, 0, 0, 3, 0x26, 1, 9]);
    for n in 0..header.len() {
        let _ = TsMuxer::new().video(0, &header[..n], &mut Vec::new());
    }
    for n in 0..full.len() {
        let _ = m.video(0, &full[..n], &mut Vec::new());
    }
}
