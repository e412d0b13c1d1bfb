use super::*;

const AVCC: &[u8] = &[
    0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50,
    0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83,
    0x19, 0x60, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0, 0xfd, 0xf8, 0xf8, 0x00,
];

pub(crate) fn muxer() -> Muxer {
    let v = AvcConfig::parse(Bytes::from_static(AVCC)).expect("avcC");
    let a = AacConfig::parse(Bytes::from_static(&[0x12, 0x10])).expect("ASC");
    Muxer::new(Some(v), Some(a), MuxerLimits::default())
}

/// Top-level boxes: (type, size).
fn boxes(mut data: &[u8]) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    while data.len() >= 8 {
        let size = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
        assert!(size >= 8 && size <= data.len(), "box size in bounds");
        out.push((String::from_utf8_lossy(&data[4..8]).into_owned(), size));
        data = &data[size..];
    }
    assert!(data.is_empty(), "no trailing bytes");
    out
}

fn find(data: &[u8], kind: &[u8; 4]) -> bool {
    data.windows(4).any(|w| w == kind)
}

#[test]
fn init_segment_is_ftyp_then_moov_with_mvex() {
    let m = muxer();
    let init = m.init_segment();
    let b = boxes(&init);
    assert_eq!(
        b.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["ftyp", "moov"]
    );
    for kind in [b"mvex", b"trex", b"avcC", b"esds", b"avc1", b"mp4a"] {
        assert!(find(&init, kind), "{}", String::from_utf8_lossy(kind));
    }
    assert_eq!(
        m.mime_type(),
        "video/mp4; codecs=\"avc1.64001f, mp4a.40.2\""
    );
}

#[test]
fn cuts_a_fragment_at_each_keyframe_after_a_second() {
    let mut m = muxer();
    let mut fragments = Vec::new();
    // 3 s at 10 fps, keyframe every second; audio every 23 ms.
    for i in 0..30i64 {
        let t = i * 100;
        if let Some(f) = m.push_video(t, 0, i % 10 == 0, Bytes::from(vec![0u8; 100])) {
            fragments.push(f);
        }
        for k in 0..4 {
            let _ = m.push_audio(t + k * 23, Bytes::from(vec![1u8; 10]));
        }
    }
    assert_eq!(fragments.len(), 2, "cut at 1 s and 2 s");
    fragments.extend(m.finish());
    assert_eq!(fragments.len(), 3);
    for f in &fragments {
        let b = boxes(f);
        assert_eq!(
            b.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["moof", "mdat"]
        );
        // 10 video frames of 100 bytes, ~40 audio frames of 10 bytes.
        assert!(b[1].1 >= 8 + 1000 + 300, "mdat holds the samples");
    }
    assert!((2900..=3100).contains(&m.duration_ms()));
}

#[test]
fn drops_frames_before_the_first_keyframe() {
    let mut m = muxer();
    assert!(m
        .push_video(0, 0, false, Bytes::from_static(&[1]))
        .is_none());
    assert!(m.push_audio(0, Bytes::from_static(&[1])).is_none());
    assert!(m.finish().is_none(), "nothing to write");
}

#[test]
fn audio_only_streams_cut_every_second() {
    let a = AacConfig::parse(Bytes::from_static(&[0x12, 0x10])).expect("ASC");
    let mut m = Muxer::new(None, Some(a), MuxerLimits::default());
    let cuts = (0..100)
        .filter_map(|i| m.push_audio(i * 23, Bytes::from_static(&[1, 2])))
        .count();
    assert_eq!(cuts, 2);
}

#[test]
fn output_starts_at_zero_whatever_the_input_time() {
    let mut m = muxer();
    let mut frag = None;
    for i in 0..=10i64 {
        let t = 3_600_000 + i * 100;
        frag = frag.or(m.push_video(t, 0, i % 10 == 0, Bytes::from_static(&[0; 4])));
    }
    let frag = frag.expect("a fragment");
    let moof = &frag[8..read::box_header(&frag).expect("moof").1 as usize];
    assert_eq!(read::fragment_spans(moof), vec![(1, 0, 90_000)]);
}
