//! Unit and property tests of the demuxer, on streams built here by a
//! minimal muxer (PAT, PMT with CRC, PES split into packets).

use super::convert::*;
use super::psi::crc32_mpeg2;
use super::*;
use proptest::prelude::*;

const PMT_PID: u16 = 0x1000;
pub(super) const VIDEO: u16 = 0x100;
pub(super) const AUDIO: u16 = 0x101;

/// Writes transport packets, keeping a continuity counter per PID.
#[derive(Default)]
pub(super) struct Mux {
    pub(super) out: Vec<u8>,
    cc: std::collections::HashMap<u16, u8>,
}

impl Mux {
    fn packets(&mut self, pid: u16, mut data: &[u8]) {
        let mut first = true;
        while first || !data.is_empty() {
            let cc = self.cc.entry(pid).or_insert(0);
            let mut p = vec![SYNC, (pid >> 8) as u8, pid as u8, 0x10 | *cc];
            *cc = (*cc + 1) & 0x0f;
            if first {
                p[1] |= 0x40;
            }
            let room = PACKET_SIZE - 4;
            if data.len() < room {
                // Stuffing in an adaptation field.
                let af = room - data.len();
                p[3] |= 0x20;
                p.push((af - 1) as u8);
                if af > 1 {
                    p.push(0);
                    p.extend(std::iter::repeat_n(0xff, af - 2));
                }
            }
            let take = data.len().min(PACKET_SIZE - p.len());
            p.extend_from_slice(&data[..take]);
            data = &data[take..];
            first = false;
            self.out.extend_from_slice(&p);
        }
    }

    fn section(&mut self, pid: u16, table_id: u8, body: &[u8]) {
        let len = 5 + body.len() + 4;
        let mut s = vec![
            table_id,
            0xb0 | (len >> 8) as u8,
            len as u8,
            0,
            1,
            0xc1,
            0,
            0,
        ];
        s.extend_from_slice(body);
        let crc = crc32_mpeg2(&s);
        s.extend_from_slice(&crc.to_be_bytes());
        let mut payload = vec![0];
        payload.extend_from_slice(&s);
        self.packets(pid, &payload);
    }

    fn tables(&mut self) {
        self.tables_for(0x1b);
    }

    /// PAT and PMT with this video stream type (0x1B H.264, 0x24 HEVC).
    pub(super) fn tables_for(&mut self, video_type: u8) {
        self.section(0, 0, &[0, 1, 0xe0 | (PMT_PID >> 8) as u8, PMT_PID as u8]);
        let mut pmt = vec![0xe1, 0x00, 0xf0, 0x00];
        for (t, pid) in [(video_type, VIDEO), (0x0f, AUDIO)] {
            pmt.extend_from_slice(&[t, 0xe0 | (pid >> 8) as u8, pid as u8, 0xf0, 0]);
        }
        self.section(PMT_PID, 2, &pmt);
    }

    pub(super) fn pes(
        &mut self,
        pid: u16,
        stream_id: u8,
        pts: u64,
        dts: u64,
        es: &[u8],
        bounded: bool,
    ) {
        let mut h = vec![0, 0, 1, stream_id, 0, 0, 0x80, 0xc0, 10];
        h.extend_from_slice(&ts_bytes(3, pts));
        h.extend_from_slice(&ts_bytes(1, dts));
        if bounded {
            let n = (h.len() - 6 + es.len()) as u16;
            h[4..6].copy_from_slice(&n.to_be_bytes());
        }
        h.extend_from_slice(es);
        self.packets(pid, &h);
    }
}

fn ts_bytes(prefix: u8, t: u64) -> [u8; 5] {
    [
        prefix << 4 | ((t >> 29) as u8 & 0x0e) | 1,
        (t >> 22) as u8,
        ((t >> 14) as u8 & 0xfe) | 1,
        (t >> 7) as u8,
        ((t << 1) as u8) | 1,
    ]
}

/// An SPS ffmpeg's libx264 writes for 320x240 (High profile).
const SPS: [u8; 25] = [
    0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
    0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0x99, 0x60,
];
const PPS: [u8; 6] = [0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

fn idr(size: usize) -> Vec<u8> {
    let mut v = vec![0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1];
    v.extend_from_slice(&SPS);
    v.extend_from_slice(&[0, 0, 1]);
    v.extend_from_slice(&PPS);
    v.extend_from_slice(&[0, 0, 1, 0x65]);
    v.extend((0..size).map(|i| (i % 200 + 1) as u8));
    v
}

fn p_frame(size: usize) -> Vec<u8> {
    let mut v = vec![0, 0, 0, 1, 0x41];
    v.extend((0..size).map(|i| (i % 200 + 1) as u8));
    v
}

/// One AAC LC, 48 kHz, stereo ADTS frame with `n` payload bytes.
pub(super) fn adts(n: usize) -> Vec<u8> {
    let len = 7 + n;
    let mut v = vec![
        0xff,
        0xf1,
        (1 << 6) | (3 << 2),
        (2 << 6) | ((len >> 11) as u8 & 3),
        (len >> 3) as u8,
        ((len as u8 & 7) << 5) | 0x1f,
        0xfc,
    ];
    v.extend(std::iter::repeat_n(0x21, n));
    v
}

fn sample_stream() -> Vec<u8> {
    let mut m = Mux::default();
    m.tables();
    m.pes(VIDEO, 0xe0, 9000 + 3000, 9000, &idr(1000), false);
    let mut two = adts(100);
    two.extend_from_slice(&adts(50));
    m.pes(AUDIO, 0xc0, 9000, 9000, &two, true);
    m.pes(VIDEO, 0xe0, 9000 + 6000, 12000, &p_frame(400), false);
    m.pes(VIDEO, 0xe0, 9000 + 9000, 15000, &p_frame(300), false);
    m.out
}

fn demux_all(d: &mut Demuxer, data: &[u8]) -> Vec<AccessUnit> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let n = d.feed(rest);
        rest = &rest[n..];
        out.extend(std::iter::from_fn(|| d.poll()));
    }
    d.flush();
    out.extend(std::iter::from_fn(|| d.poll()));
    out
}

#[test]
fn demuxes_video_and_audio_with_timestamps_and_keyframes() {
    let mut d = Demuxer::default();
    let units = demux_all(&mut d, &sample_stream());
    assert_eq!(d.streams(), vec![(VIDEO, Codec::H264), (AUDIO, Codec::Aac)]);
    let video: Vec<_> = units.iter().filter(|u| u.codec == Codec::H264).collect();
    let audio: Vec<_> = units.iter().filter(|u| u.codec == Codec::Aac).collect();
    assert_eq!(video.len(), 3);
    assert_eq!(
        video.iter().map(|u| u.keyframe).collect::<Vec<_>>(),
        [true, false, false]
    );
    assert_eq!((video[0].dts_ms(), video[0].pts_ms()), (100, 133));
    assert_eq!(video[0].cts_ms(), 33);
    assert_eq!(video[0].data, Bytes::from(idr(1000)));
    assert_eq!(audio.len(), 2, "two ADTS frames in one PES");
    assert_eq!(audio[0].pts, 9000);
    assert_eq!(audio[1].pts, 9000 + 1920, "1024 samples at 48 kHz later");
    assert_eq!(audio[1].data.len(), 57);
    assert_eq!(d.stats().dropped_pes, 0);
}

#[test]
fn finds_the_sync_byte_again_after_garbage_and_odd_chunks() {
    let mut data = vec![1, 2, 3, 0x47, 9];
    data.extend_from_slice(&sample_stream());
    let mut d = Demuxer::default();
    let mut units = Vec::new();
    for chunk in data.chunks(7) {
        let mut rest = chunk;
        while !rest.is_empty() {
            let n = d.feed(rest);
            rest = &rest[n..];
            units.extend(std::iter::from_fn(|| d.poll()));
        }
    }
    d.flush();
    units.extend(std::iter::from_fn(|| d.poll()));
    // The stray 0x47 is not followed by another 188 bytes later.
    assert_eq!(d.stats().skipped_bytes, 5);
    assert_eq!(units, demux_all(&mut Demuxer::default(), &sample_stream()));
}

#[test]
fn a_lost_packet_drops_that_pes_only() {
    let stream = sample_stream();
    // Remove the second packet of the first video PES (packets: PAT, PMT,
    // video 1..).
    let mut cut = stream[..3 * PACKET_SIZE].to_vec();
    cut.extend_from_slice(&stream[4 * PACKET_SIZE..]);
    let mut d = Demuxer::default();
    let units = demux_all(&mut d, &cut);
    let video: Vec<_> = units.iter().filter(|u| u.codec.is_video()).collect();
    assert_eq!(video.len(), 2, "the damaged picture is not delivered");
    assert!(video.iter().all(|u| !u.keyframe));
    assert_eq!(d.stats().discontinuities, 1);
    assert_eq!(d.stats().dropped_pes, 1);
}

#[test]
fn a_pes_over_the_cap_is_dropped() {
    let mut d = Demuxer::new(Limits {
        max_pes: 800,
        ..Limits::default()
    });
    let units = demux_all(&mut d, &sample_stream());
    let video: Vec<_> = units.iter().filter(|u| u.codec.is_video()).collect();
    assert_eq!(video.len(), 2, "the 1 KB keyframe went over 800 bytes");
    assert!(d.stats().dropped_pes >= 1);
}

#[test]
fn feed_stops_when_the_queue_is_full() {
    let mut d = Demuxer::new(Limits {
        max_queued: 1,
        ..Limits::default()
    });
    let data = sample_stream();
    let n = d.feed(&data);
    assert!(n < data.len());
    // The audio PES ended first, with its two frames.
    assert_eq!(d.queued(), 2);
    assert_eq!(d.feed(&data[n..]), 0, "nothing more until polled");
    d.poll();
    d.poll();
    assert!(d.feed(&data[n..]) > 0);
}

#[test]
fn builds_the_flv_sequence_headers_and_frames() {
    let mut d = Demuxer::default();
    let units = demux_all(&mut d, &sample_stream());
    let key = units.iter().find(|u| u.codec.is_video()).expect("video");
    let (sps, pps) = h264_parameter_sets(&key.data);
    let header = avc_sequence_header(sps.expect("sps"), pps.expect("pps")).expect("header");
    assert_eq!(&header[..5], &[0x17, 0, 0, 0, 0]);
    let record = header.slice(5..);
    let parsed = crate::fmp4::codec::AvcConfig::parse(record).expect("a valid avcC");
    assert_eq!((parsed.width, parsed.height), (320, 240));

    let body = avc_frame_body(key);
    assert_eq!(&body[..5], &[0x17, 0x01, 0, 0, 33]);
    // AUD dropped; SPS, PPS and IDR each behind a 4-byte length.
    assert_eq!(&body[5..9], &(SPS.len() as u32).to_be_bytes());
    assert_eq!(body.len(), 5 + 4 + SPS.len() + 4 + PPS.len() + 4 + 1001);

    let audio = units.iter().find(|u| u.codec == Codec::Aac).expect("audio");
    let asc = aac_sequence_header(&audio.data).expect("asc");
    assert_eq!(&asc[..], &[0xaf, 0x00, 0x11, 0x90]);
    let cfg = crate::fmp4::codec::AacConfig::parse(asc.slice(2..)).expect("valid");
    assert_eq!((cfg.sample_rate, cfg.channels), (48000, 2));
    let raw = aac_frame_body(&audio.data).expect("raw");
    assert_eq!(&raw[..2], &[0xaf, 0x01]);
    assert_eq!(raw.len(), 2 + 100);
}

#[test]
fn hevc_irap_pictures_are_keyframes() {
    // NAL header: type in bits 1..6 of the first byte.
    assert!(hevc_is_keyframe(&[0, 0, 1, 19 << 1, 1, 0xaa]));
    assert!(hevc_is_keyframe(&[0, 0, 0, 1, 21 << 1, 1, 0xaa]));
    assert!(!hevc_is_keyframe(&[0, 0, 1, 1 << 1, 1, 0xaa]));
    assert!(!hevc_is_keyframe(&[0, 0, 1, 32 << 1, 1, 0xaa]));
}

#[test]
fn splits_annexb_with_three_and_four_byte_start_codes() {
    let nals: Vec<_> = annexb_nal_units(&[0, 0, 0, 1, 9, 0xf0, 0, 0, 1, 0x65, 1, 2]).collect();
    assert_eq!(nals, vec![&[9, 0xf0][..], &[0x65, 1, 2][..]]);
    assert_eq!(annexb_nal_units(&[1, 2, 3]).count(), 0);
}

#[test]
fn a_composition_offset_survives_the_33_bit_wrap() {
    let au = AccessUnit {
        pid: 1,
        codec: Codec::H264,
        pts: 900,
        dts: WRAP - 900,
        keyframe: false,
        data: Bytes::new(),
    };
    assert_eq!(au.cts_ms(), 20);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 0..40),
        prefix_real in any::<bool>(),
    ) {
        let limits = Limits { max_pes: 4096, max_streams: 4, max_queued: 8 };
        let mut d = Demuxer::new(limits);
        if prefix_real {
            let s = sample_stream();
            let n = d.feed(&s[..2 * PACKET_SIZE]);
            prop_assert_eq!(n, 2 * PACKET_SIZE);
        }
        for chunk in &chunks {
            let mut rest = &chunk[..];
            let mut rounds = 0;
            while !rest.is_empty() {
                let n = d.feed(rest);
                rest = &rest[n..];
                // One PES may end with several ADTS frames (7 bytes each
                // at least) past the threshold.
                prop_assert!(d.queued() <= limits.max_queued + limits.max_pes / 7);
                // Each PES is bounded; each queued unit came from one.
                prop_assert!(
                    d.buffered() <= 2 * PACKET_SIZE + 4 * 4096 + limits.max_queued * 4096
                );
                while let Some(au) = d.poll() {
                    let _ = avc_frame_body(&au);
                    let _ = aac_frame_body(&au.data);
                    let _ = aac_sequence_header(&au.data);
                    if let (Some(s), Some(p)) = h264_parameter_sets(&au.data) {
                        let _ = avc_sequence_header(s, p);
                    }
                }
                rounds += 1;
                prop_assert!(rounds < 10_000);
            }
        }
        d.flush();
        while d.poll().is_some() {}
    }

    #[test]
    fn any_chunking_gives_the_same_units(cut in 1usize..400) {
        let s = sample_stream();
        let whole = demux_all(&mut Demuxer::default(), &s);
        let mut d = Demuxer::default();
        let mut units = Vec::new();
        for chunk in s.chunks(cut) {
            let n = d.feed(chunk);
            prop_assert_eq!(n, chunk.len());
            units.extend(std::iter::from_fn(|| d.poll()));
        }
        d.flush();
        units.extend(std::iter::from_fn(|| d.poll()));
        prop_assert_eq!(units, whole);
    }
}

/// The audio and video tags `data` converts to (the `onMetaData` that goes
/// with each video header is tested on its own).
pub(super) fn convert_all(data: &[u8]) -> Vec<crate::flv::Tag> {
    let mut tags = convert_with_metadata(data);
    tags.retain(|t| t.kind != crate::flv::TagKind::Script);
    tags
}

pub(super) fn convert_with_metadata(data: &[u8]) -> Vec<crate::flv::Tag> {
    let mut c = to_flv::TsToFlv::default();
    let mut tags = Vec::new();
    c.push(data, &mut tags);
    c.finish(&mut tags);
    tags
}

#[test]
fn each_new_video_header_comes_after_an_onmetadata_with_the_picture_size() {
    let tags = convert_with_metadata(&sample_stream());
    let at = tags
        .iter()
        .position(|t| t.kind == crate::flv::TagKind::Video)
        .expect("video");
    let meta = &tags[at - 1];
    assert_eq!(meta.kind, crate::flv::TagKind::Script);
    assert_eq!(&meta.body[..13], b"\x02\x00\x0aonMetaData");
    let key = idr(10);
    let sps = h264_parameter_sets(&key).0.expect("an SPS");
    let (w, h) = crate::fmp4::codec::sps_size(sps).expect("size");
    let number = |key: &str| {
        let k = [&(key.len() as u16).to_be_bytes()[..], key.as_bytes(), &[0]].concat();
        let i = meta.body.windows(k.len()).position(|x| x == k).expect(key) + k.len();
        f64::from_be_bytes(meta.body[i..i + 8].try_into().expect("8 bytes"))
    };
    assert_eq!(
        (number("width"), number("height")),
        (f64::from(w), f64::from(h))
    );
    assert_eq!(
        tags.iter()
            .filter(|t| t.kind == crate::flv::TagKind::Script)
            .count(),
        1,
        "one header, one onMetaData"
    );
}

#[test]
fn a_transport_stream_becomes_flv_tags_starting_at_zero_with_headers_first() {
    let tags = convert_all(&sample_stream());
    let summary: Vec<(crate::flv::TagKind, u32, u8, u8)> = tags
        .iter()
        .map(|t| (t.kind, t.timestamp, t.body[0], t.body[1]))
        .collect();
    use crate::flv::TagKind::{Audio, Video};
    assert_eq!(
        summary,
        // In the order the PES packets end (the audio one has a length;
        // a video one ends when the next starts).
        vec![
            (Audio, 0, 0xaf, 0x00),
            (Audio, 0, 0xaf, 0x01),
            // The second ADTS frame of the PES: 1024 samples at 48 kHz later.
            (Audio, 21, 0xaf, 0x01),
            (Video, 0, 0x17, 0x00),
            (Video, 0, 0x17, 0x01),
            (Video, 33, 0x27, 0x01),
            (Video, 66, 0x27, 0x01),
        ]
    );
}

#[test]
fn repeated_parameter_sets_send_one_sequence_header() {
    let mut m = Mux::default();
    m.tables();
    m.pes(VIDEO, 0xe0, 0, 0, &idr(100), false);
    m.pes(VIDEO, 0xe0, 3000, 3000, &idr(100), false);
    m.pes(VIDEO, 0xe0, 6000, 6000, &p_frame(10), false);
    let tags = convert_all(&m.out);
    let headers = tags.iter().filter(|t| t.body[1] == 0).count();
    assert_eq!((tags.len(), headers), (4, 1));
}

#[test]
fn video_before_the_first_sps_is_dropped() {
    let mut m = Mux::default();
    m.tables();
    m.pes(VIDEO, 0xe0, 0, 0, &p_frame(10), false);
    m.pes(VIDEO, 0xe0, 3000, 3000, &idr(10), false);
    let mut c = to_flv::TsToFlv::default();
    let mut tags = Vec::new();
    c.push(&m.out, &mut tags);
    c.finish(&mut tags);
    tags.retain(|t| t.kind != crate::flv::TagKind::Script);
    assert_eq!(c.stats().video_dropped, 1);
    assert_eq!(tags[0].body[..2], [0x17, 0x00]);
    assert_eq!(tags[0].timestamp, 33);
}

#[test]
fn timestamps_stay_continuous_across_the_33_bit_wrap() {
    let mut m = Mux::default();
    m.tables();
    let start = WRAP - 3000;
    for i in 0..4u64 {
        let t = (start + i * 3000) % WRAP;
        let es = if i == 0 { idr(10) } else { p_frame(10) };
        m.pes(VIDEO, 0xe0, t, t, &es, false);
    }
    let times: Vec<u32> = convert_all(&m.out)
        .iter()
        .skip(1)
        .map(|t| t.timestamp)
        .collect();
    assert_eq!(times, vec![0, 33, 66, 100]);
}
