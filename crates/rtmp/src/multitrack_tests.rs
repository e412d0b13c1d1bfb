//! Byte-vector tests of [`super`]: every form OBS sends and the spec
//! allows, and hostile bodies.

use super::*;

fn b(v: &[u8]) -> Bytes {
    Bytes::copy_from_slice(v)
}

fn one(body: &[u8], parse: fn(&Bytes) -> Result<Vec<TrackPacket>, MultitrackError>) -> TrackPacket {
    let mut v = parse(&b(body)).expect("parses");
    assert_eq!(v.len(), 1, "one packet");
    v.remove(0)
}

#[test]
fn reads_legacy_avc_as_track_zero_with_its_cts() {
    let p = one(&[0x17, 0x00, 0, 0, 0, 1, 0x64], parse_video);
    assert_eq!(
        (p.track, &p.codec, p.packet),
        (0, b"avc1", PacketType::SequenceStart)
    );
    assert_eq!(&p.payload[..], &[1, 0x64]);
    let p = one(&[0x27, 0x01, 0xff, 0xff, 0xdf, 9, 9], parse_video);
    assert_eq!(
        (p.frame_type, p.cts, p.packet),
        (2, -33, PacketType::CodedFrames)
    );
    assert!(!p.is_keyframe());
    assert!(one(&[0x17, 0x01, 0, 0, 66, 9], parse_video).is_keyframe());
    assert_eq!(
        one(&[0x17, 0x02, 0, 0, 0], parse_video).packet,
        PacketType::SequenceEnd
    );
}

#[test]
fn reads_enhanced_single_track_as_track_zero() {
    // hvc1 CodedFrames (1) carries a CTS, CodedFramesX (3) does not.
    let p = one(&[0x91, b'h', b'v', b'c', b'1', 0, 0, 33, 7], parse_video);
    assert_eq!((p.track, p.cts, &p.payload[..]), (0, 33, &[7][..]));
    assert!(p.is_keyframe());
    let p = one(&[0xa3, b'h', b'v', b'c', b'1', 7, 8], parse_video);
    assert_eq!((p.cts, &p.payload[..]), (0, &[7, 8][..]));
    // av01 CodedFrames has no CTS.
    let p = one(&[0x91, b'a', b'v', b'0', b'1', 5, 6], parse_video);
    assert_eq!((p.cts, &p.payload[..]), (0, &[5, 6][..]));
    let p = one(&[0x94, b'a', b'v', b'0', b'1', 2], parse_video);
    assert_eq!(p.packet, PacketType::Metadata);
}

#[test]
fn reads_obs_one_track_video_as_its_track() {
    // Sequence start, track 1.
    let p = one(
        &[0x96, 0x00, b'a', b'v', b'c', b'1', 1, 1, 0x64, 0],
        parse_video,
    );
    assert_eq!(
        (p.track, &p.codec, p.packet),
        (1, b"avc1", PacketType::SequenceStart)
    );
    assert_eq!(&p.payload[..], &[1, 0x64, 0]);
    // Inter frame, CodedFrames with a CTS of 66.
    let p = one(
        &[0xa6, 0x01, b'a', b'v', b'c', b'1', 1, 0, 0, 66, 0xaa],
        parse_video,
    );
    assert_eq!(
        (p.track, p.frame_type, p.cts, &p.payload[..]),
        (1, 2, 66, &[0xaa][..])
    );
    // Keyframe, CodedFramesX.
    let p = one(&[0x96, 0x03, b'a', b'v', b'c', b'1', 2, 0xbb], parse_video);
    assert_eq!((p.track, p.cts, &p.payload[..]), (2, 0, &[0xbb][..]));
    assert!(p.is_keyframe());
    assert!(is_multitrack(TrackKind::Video, &[0x96, 0x03]));
    assert!(!is_multitrack(TrackKind::Video, &[0x17, 0x01]));
    assert!(!is_multitrack(TrackKind::Video, &[0x91]));
}

#[test]
fn reads_obs_one_track_audio_as_its_track() {
    let p = one(
        &[0x95, 0x00, b'm', b'p', b'4', b'a', 1, 0x12, 0x10],
        parse_audio,
    );
    assert_eq!(
        (p.track, &p.codec, p.packet),
        (1, b"mp4a", PacketType::SequenceStart)
    );
    assert_eq!(&p.payload[..], &[0x12, 0x10]);
    let p = one(&[0x95, 0x01, b'm', b'p', b'4', b'a', 3, 0x21], parse_audio);
    assert_eq!(
        (p.track, p.packet, &p.payload[..]),
        (3, PacketType::CodedFrames, &[0x21][..])
    );
    assert!(is_multitrack(TrackKind::Audio, &[0x95]));
    assert!(!is_multitrack(TrackKind::Audio, &[0xaf, 1]));
    // Legacy AAC and Enhanced single-track Opus are track 0.
    let p = one(&[0xaf, 0x01, 0x21], parse_audio);
    assert_eq!(
        (p.track, &p.codec, &p.payload[..]),
        (0, b"mp4a", &[0x21][..])
    );
    let p = one(&[0x91, b'O', b'p', b'u', b's', 4], parse_audio);
    assert_eq!((p.track, &p.codec), (0, b"Opus"));
}

#[test]
fn reads_many_tracks_with_their_sizes() {
    // ManyTracks (1), CodedFramesX, one FourCC, then [id][u24 size][data].
    let body = [
        0x96, 0x13, b'a', b'v', b'c', b'1', 1, 0, 0, 2, 0xa1, 0xa2, 2, 0, 0, 1, 0xb1,
    ];
    let v = parse_video(&b(&body)).expect("parses");
    assert_eq!(v.len(), 2);
    assert_eq!((v[0].track, &v[0].payload[..]), (1, &[0xa1, 0xa2][..]));
    assert_eq!((v[1].track, &v[1].payload[..]), (2, &[0xb1][..]));
    // CodedFrames with avc1: the CTS is inside each track's size.
    let body = [
        0x96, 0x11, b'a', b'v', b'c', b'1', 1, 0, 0, 4, 0, 0, 40, 0xa1,
    ];
    let v = parse_video(&b(&body)).expect("parses");
    assert_eq!((v[0].cts, &v[0].payload[..]), (40, &[0xa1][..]));
}

#[test]
fn reads_many_tracks_many_codecs() {
    let body = [
        0x96, 0x23, b'a', b'v', b'c', b'1', 0, 0, 0, 1, 0xa1, b'a', b'v', b'0', b'1', 1, 0, 0, 1,
        0xb1,
    ];
    let v = parse_video(&b(&body)).expect("parses");
    assert_eq!((v[0].track, &v[0].codec), (0, b"avc1"));
    assert_eq!(
        (v[1].track, &v[1].codec, &v[1].payload[..]),
        (1, b"av01", &[0xb1][..])
    );
    let audio = [
        0x95, 0x21, b'm', b'p', b'4', b'a', 0, 0, 0, 1, 0x21, b'O', b'p', b'u', b's', 1, 0, 0, 2,
        7, 8,
    ];
    let v = parse_audio(&b(&audio)).expect("parses");
    assert_eq!(
        (v[1].track, &v[1].codec, &v[1].payload[..]),
        (1, b"Opus", &[7, 8][..])
    );
}

#[test]
fn refuses_hostile_bodies_without_panicking() {
    // A size that lies.
    let lying = [
        0x96, 0x13, b'a', b'v', b'c', b'1', 1, 0xff, 0xff, 0xff, 0xa1,
    ];
    assert!(matches!(
        parse_video(&b(&lying)),
        Err(MultitrackError::BadTrackSize {
            size: 0xff_ffff,
            remaining: 1
        })
    ));
    let lying_audio = [0x95, 0x11, b'm', b'p', b'4', b'a', 1, 0, 0, 9, 1];
    assert!(matches!(
        parse_audio(&b(&lying_audio)),
        Err(MultitrackError::BadTrackSize { .. })
    ));
    // Truncated everywhere.
    for body in [
        &[][..],
        &[0x96],
        &[0x96, 0x01],
        &[0x96, 0x01, b'a', b'v'],
        &[0x96, 0x01, b'a', b'v', b'c', b'1'],
        &[0x96, 0x01, b'a', b'v', b'c', b'1', 1, 0],
        &[0x96, 0x13, b'a', b'v', b'c', b'1', 1, 0],
        &[0x17],
        &[0x17, 1, 0],
        &[0x91, b'h'],
    ] {
        assert!(parse_video(&b(body)).is_err(), "{body:?}");
    }
    for body in [
        &[][..],
        &[0x95],
        &[0x95, 0x01, b'm'],
        &[0x95, 0x01, b'm', b'p', b'4', b'a'],
        &[0xaf],
    ] {
        assert!(parse_audio(&b(body)).is_err(), "{body:?}");
    }
    // Unknown multitrack type, unknown packet types, command frames.
    assert_eq!(
        parse_video(&b(&[0x96, 0x31, b'a', b'v', b'c', b'1', 1])),
        Err(MultitrackError::UnknownMultitrackType(3))
    );
    assert_eq!(
        parse_video(&b(&[0x96, 0x09, b'a', b'v', b'c', b'1', 1])),
        Err(MultitrackError::UnsupportedPacketType(9))
    );
    assert_eq!(
        parse_video(&b(&[0xd6, 0])),
        Err(MultitrackError::CommandFrame)
    );
    assert_eq!(
        parse_video(&b(&[0x22, 0])),
        Err(MultitrackError::UnsupportedLegacyCodec(2))
    );
    // Nested multitrack is not a packet type a track may carry.
    assert!(parse_video(&b(&[0x96, 0x06, b'a', b'v', b'c', b'1', 1])).is_err());
    // Many tracks of zero bytes cannot outnumber the body's bytes.
    let mut body = vec![0x96, 0x13, b'a', b'v', b'c', b'1'];
    for i in 0..50u8 {
        body.extend_from_slice(&[i, 0, 0, 0]);
    }
    assert_eq!(parse_video(&b(&body)).expect("parses").len(), 50);
}

#[test]
fn flattens_h264_and_aac_to_legacy_bodies() {
    let seq = one(
        &[0x96, 0x00, b'a', b'v', b'c', b'1', 1, 1, 0x64],
        parse_video,
    );
    assert_eq!(
        &flatten(&seq).expect("body")[..],
        &[0x17, 0, 0, 0, 0, 1, 0x64]
    );
    let inter = one(
        &[
            0xa6, 0x01, b'a', b'v', b'c', b'1', 1, 0xff, 0xff, 0xdf, 0xaa,
        ],
        parse_video,
    );
    assert_eq!(
        &flatten(&inter).expect("body")[..],
        &[0x27, 1, 0xff, 0xff, 0xdf, 0xaa]
    );
    let key = one(&[0x96, 0x03, b'a', b'v', b'c', b'1', 1, 0xbb], parse_video);
    assert_eq!(&flatten(&key).expect("body")[..], &[0x17, 1, 0, 0, 0, 0xbb]);
    let end = one(&[0x96, 0x02, b'a', b'v', b'c', b'1', 1], parse_video);
    assert_eq!(&flatten(&end).expect("body")[..], &[0x17, 2, 0, 0, 0]);
    let meta = one(&[0x96, 0x04, b'a', b'v', b'c', b'1', 1, 2], parse_video);
    assert_eq!(flatten(&meta), None);
    let aseq = one(
        &[0x95, 0x00, b'm', b'p', b'4', b'a', 1, 0x12, 0x10],
        parse_audio,
    );
    assert_eq!(&flatten(&aseq).expect("body")[..], &[0xaf, 0, 0x12, 0x10]);
    let araw = one(&[0x95, 0x01, b'm', b'p', b'4', b'a', 1, 0x21], parse_audio);
    assert_eq!(&flatten(&araw).expect("body")[..], &[0xaf, 1, 0x21]);
    // Legacy in, legacy out: track 0 flattens to itself.
    let legacy = [0x27, 1, 0, 0, 33, 1, 2];
    assert_eq!(
        &flatten(&one(&legacy, parse_video)).expect("body")[..],
        &legacy
    );
}

#[test]
fn flattens_other_codecs_to_enhanced_single_track() {
    let hevc = one(
        &[0xa6, 0x01, b'h', b'v', b'c', b'1', 1, 0, 0, 33, 7],
        parse_video,
    );
    assert_eq!(
        &flatten(&hevc).expect("body")[..],
        &[0xa1, b'h', b'v', b'c', b'1', 0, 0, 33, 7]
    );
    let av1 = one(&[0x96, 0x00, b'a', b'v', b'0', b'1', 1, 0x81], parse_video);
    assert_eq!(
        &flatten(&av1).expect("body")[..],
        &[0x90, b'a', b'v', b'0', b'1', 0x81]
    );
    let opus = one(&[0x95, 0x01, b'O', b'p', b'u', b's', 1, 4], parse_audio);
    assert_eq!(
        &flatten(&opus).expect("body")[..],
        &[0x91, b'O', b'p', b'u', b's', 4]
    );
}

#[test]
fn rewrites_metadata_to_the_track_size() {
    let meta = Amf0Value::EcmaArray(vec![
        ("width".into(), Amf0Value::Number(320.0)),
        ("height".into(), Amf0Value::Number(180.0)),
        ("framerate".into(), Amf0Value::Number(30.0)),
        ("encoder".into(), Amf0Value::string("obs")),
    ]);
    let body = amf0::encode_all([&Amf0Value::string("onMetaData"), &meta]);
    let size = TrackSize {
        width: Some(180),
        height: Some(320),
        frame_rate: None,
    };
    let out = rewrite_metadata(&body, size).expect("rewritten");
    let values = amf0::decode_all(&out).expect("amf0");
    assert_eq!(values[0].as_str(), Some("onMetaData"));
    let m = &values[1];
    assert_eq!(m.get("width").and_then(Amf0Value::as_number), Some(180.0));
    assert_eq!(m.get("height").and_then(Amf0Value::as_number), Some(320.0));
    assert_eq!(
        m.get("framerate"),
        None,
        "track 0's rate is not this track's"
    );
    assert_eq!(m.get("encoder").and_then(Amf0Value::as_str), Some("obs"));
    assert_eq!(rewrite_metadata(&[0x02, 0, 1], size), None);
}
