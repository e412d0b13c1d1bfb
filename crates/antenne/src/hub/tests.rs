//! Unit tests of the hub: late joiners, lag, timeline, pass-through,
//! and multitrack routing.

use super::*;
use antenne_rtmp::amf0;

fn addr() -> SocketAddr {
    "127.0.0.1:5000".parse().expect("valid address")
}

const AVC_SEQ: &[u8] = &[0x17, 0, 0, 0, 0, 1];
const AVC_KEY: &[u8] = &[0x17, 1, 0, 0, 0, 2];
const AVC_INTER: &[u8] = &[0x27, 1, 0, 0, 0, 3];
const AAC_SEQ: &[u8] = &[0xaf, 0, 0x12, 0x10];
const AAC_RAW: &[u8] = &[0xaf, 1, 9, 9];

fn b(s: &'static [u8]) -> Bytes {
    Bytes::from_static(s)
}

async fn drain(sub: &Subscription) -> Vec<Frame> {
    let mut out = Vec::new();
    while !sub.queue.lock().frames.is_empty() {
        sub.recv_many(&mut out, 1000).await;
    }
    out
}

/// The sequence headers, then a keyframe at 0.
fn start_stream(hub: &Hub) {
    hub.push_video(0, b(AVC_SEQ));
    hub.push_audio(0, b(AAC_SEQ));
    hub.push_video(0, b(AVC_KEY));
}

/// Kind, header, keyframe of each frame.
fn kinds(frames: &[Frame]) -> Vec<(FrameKind, bool, bool)> {
    frames
        .iter()
        .map(|f| (f.kind, f.header, f.keyframe))
        .collect()
}

#[tokio::test]
async fn late_joiner_starts_with_headers_then_a_keyframe() {
    let hub = Hub::new(StreamKey::new("k"), QueueLimits::default());
    let _guard = hub.start_publish(addr()).expect("first publisher");
    start_stream(&hub);
    hub.push_audio(10, b(AAC_RAW));
    hub.push_video(33, b(AVC_INTER));
    let sub = hub.subscribe();
    assert_eq!(
        kinds(&drain(&sub).await),
        vec![
            (FrameKind::Video, true, false),
            (FrameKind::Audio, true, false),
            (FrameKind::Video, false, true),
            (FrameKind::Audio, false, false),
            (FrameKind::Video, false, false),
        ]
    );
}

#[tokio::test]
async fn without_a_gop_cache_a_late_joiner_waits_for_the_next_keyframe_and_nothing_is_kept() {
    let limits = QueueLimits {
        gop_cache: false,
        ..QueueLimits::default()
    };
    let hub = Hub::new(StreamKey::new("k"), limits);
    let _guard = hub.start_publish(addr()).expect("first publisher");
    start_stream(&hub);
    hub.push_audio(10, b(AAC_RAW));
    hub.push_video(33, b(AVC_INTER));
    assert!(hub.lock().cache.gop.is_empty(), "no GOP kept");
    assert!(
        hub.lock().own_cache.gop.is_empty(),
        "no GOP kept for recordings"
    );
    let sub = hub.subscribe();
    assert!(drain(&sub).await.is_empty(), "nothing to start on yet");
    hub.push_audio(40, b(AAC_RAW));
    hub.push_video(66, b(AVC_INTER));
    hub.push_video(2000, b(AVC_KEY));
    hub.push_video(2033, b(AVC_INTER));
    assert_eq!(
        kinds(&drain(&sub).await),
        vec![
            (FrameKind::Video, true, false),
            (FrameKind::Audio, true, false),
            (FrameKind::Video, false, true),
            (FrameKind::Video, false, false),
        ],
        "headers, then the next keyframe"
    );
}

#[tokio::test]
async fn a_second_publisher_is_refused_while_the_first_is_live() {
    let hub = Hub::new(StreamKey::new("k"), QueueLimits::default());
    let guard = hub.start_publish(addr()).expect("first publisher");
    assert!(hub.start_publish(addr()).is_err());
    drop(guard);
    assert!(hub.start_publish(addr()).is_ok());
}

#[tokio::test]
async fn drops_until_keyframe_when_queue_full() {
    let limits = QueueLimits {
        max_lag: Duration::from_millis(500),
        max_bytes: usize::MAX,
        ..QueueLimits::default()
    };
    let hub = Hub::new(StreamKey::new("k"), limits);
    let _guard = hub.start_publish(addr()).expect("publisher");
    hub.push_video(0, b(AVC_SEQ));
    let sub = hub.subscribe();
    // 1.5 s of frames at 10 fps, keyframe every second, nobody
    // reading.
    for i in 0..15u32 {
        let payload = if i % 10 == 0 { AVC_KEY } else { AVC_INTER };
        hub.push_video(i * 100, b(payload));
    }
    let frames = drain(&sub).await;
    assert!(sub.dropped() > 0, "frames were dropped");
    // The queue never held more than the lag limit.
    let first_media = frames.iter().find(|f| !f.header).expect("some media");
    assert!(first_media.keyframe, "restarts on a keyframe");
    assert!(
        frames.iter().any(|f| f.header),
        "headers replayed before the keyframe"
    );
    let span = frames.last().map(|f| f.timestamp).unwrap_or(0) - first_media.timestamp;
    assert!(span <= 500, "queue stayed within the lag limit ({span} ms)");
}

#[tokio::test]
async fn timeline_continues_across_publisher_sessions() {
    let hub = Hub::new(StreamKey::new("k"), QueueLimits::default());
    let sub = hub.subscribe();
    let guard = hub.start_publish(addr()).expect("publisher");
    hub.push_video(5000, b(AVC_KEY));
    hub.push_video(5033, b(AVC_INTER));
    drop(guard);
    let _guard = hub.start_publish(addr()).expect("publisher again");
    // The new session starts its timestamps at 0 again.
    hub.push_video(0, b(AVC_KEY));
    hub.push_video(33, b(AVC_INTER));
    let frames = drain(&sub).await;
    let ts: Vec<i64> = frames.iter().map(|f| f.timestamp).collect();
    assert_eq!(ts[0], 0);
    assert_eq!(ts[1], 33);
    assert!(ts[2] > ts[1], "time goes on after a reconnect: {ts:?}");
    assert_eq!(ts[3] - ts[2], 33);
}

#[tokio::test]
async fn enhanced_rtmp_hevc_passes_through_untouched() {
    // OBS 30+: ExHeader | KeyFrame | SequenceStart / CodedFrames, "hvc1".
    const HEVC_SEQ: &[u8] = &[0x90, b'h', b'v', b'c', b'1', 1, 2, 3];
    const HEVC_KEY: &[u8] = &[0x91, b'h', b'v', b'c', b'1', 0, 0, 9, 9];
    const HEVC_INTER: &[u8] = &[0xa1, b'h', b'v', b'c', b'1', 0, 0, 7];
    let hub = Hub::new(StreamKey::new("k"), QueueLimits::default());
    let _guard = hub.start_publish(addr()).expect("publisher");
    hub.push_video(0, b(HEVC_SEQ));
    hub.push_video(0, b(HEVC_KEY));
    hub.push_video(33, b(HEVC_INTER));
    assert_eq!(hub.snapshot().video_codec.as_deref(), Some("hevc"));
    let sub = hub.subscribe();
    let frames = drain(&sub).await;
    let payloads: Vec<Bytes> = frames.iter().map(|f| f.payload.to_payload()).collect();
    assert_eq!(payloads, vec![HEVC_SEQ, HEVC_KEY, HEVC_INTER]);
    assert!(frames[1].keyframe && frames[0].header);
}

#[tokio::test]
async fn unsubscribes_on_drop() {
    let hub = Hub::new(StreamKey::new("k"), QueueLimits::default());
    let sub = hub.subscribe();
    assert_eq!(hub.snapshot().destinations_attached, 1);
    drop(sub);
    assert_eq!(hub.snapshot().destinations_attached, 0);
}

/// x264's avcC for 1280x720 High profile, as ffmpeg writes it.
const AVCC_1280X720: &[u8] = &[
    0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50,
    0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83,
    0x19, 0x60, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0, 0xfd, 0xf8, 0xf8, 0x00,
];

/// OBS's one-track multitrack video tag for track 1.
fn mt_video(first: u8, packet_type: u8, rest: &[u8]) -> Bytes {
    let mut v = vec![first, packet_type, b'a', b'v', b'c', b'1', 1];
    v.extend_from_slice(rest);
    Bytes::from(v)
}

#[tokio::test]
async fn a_plain_subscriber_never_gets_another_track() {
    let hub = Hub::new(StreamKey::new("k"), QueueLimits::default());
    let _guard = hub.start_publish(addr()).expect("publisher");
    let plain = hub.subscribe();
    hub.push_video(0, b(AVC_SEQ));
    hub.push_video(0, mt_video(0x96, 0, AVCC_1280X720));
    hub.push_video(0, b(AVC_KEY));
    hub.push_video(0, mt_video(0x96, 1, &[0, 0, 0, 0xee]));
    hub.push_audio(
        0,
        Bytes::from_static(&[0x95, 0x01, b'm', b'p', b'4', b'a', 1, 7]),
    );
    hub.push_video(33, b(AVC_INTER));
    let payloads: Vec<Bytes> = drain(&plain)
        .await
        .iter()
        .map(|f| f.payload.to_payload())
        .collect();
    assert_eq!(payloads, vec![AVC_SEQ, AVC_KEY, AVC_INTER]);
}

#[tokio::test]
async fn a_track_subscriber_gets_its_track_flattened_from_its_keyframe() {
    let hub = Hub::new(StreamKey::new("k"), QueueLimits::default());
    let _guard = hub.start_publish(addr()).expect("publisher");
    let meta = amf0::encode_all([
        &Amf0Value::string("onMetaData"),
        &Amf0Value::object([("width", Amf0Value::Number(320.0))]),
    ]);
    hub.push_metadata(meta.freeze());
    hub.push_video(0, b(AVC_SEQ));
    hub.push_video(0, b(AVC_KEY));
    hub.push_video(0, mt_video(0x96, 0, AVCC_1280X720));
    // An inter frame before track 1's first keyframe: not a start.
    hub.push_video(0, mt_video(0xa6, 1, &[0, 0, 0, 0xdd]));
    hub.push_video(33, mt_video(0x96, 1, &[0, 0, 33, 0xee]));
    hub.push_video(66, mt_video(0xa6, 3, &[0xff]));
    let sub = hub.subscribe_track(1);
    let frames = drain(&sub).await;
    let meta = amf0::decode_all(&frames[0].payload.to_payload()).expect("amf0");
    assert_eq!(
        meta[1].get("width").and_then(Amf0Value::as_number),
        Some(1280.0)
    );
    let payloads: Vec<Vec<u8>> = frames[1..]
        .iter()
        .map(|f| f.payload.to_payload().to_vec())
        .collect();
    let mut seq = vec![0x17, 0, 0, 0, 0];
    seq.extend_from_slice(AVCC_1280X720);
    assert_eq!(
        payloads,
        vec![
            seq,
            vec![0x17, 1, 0, 0, 33, 0xee],
            vec![0x27, 1, 0, 0, 0, 0xff]
        ]
    );
    assert!(frames[2].keyframe);
    let snap = hub.snapshot();
    assert_eq!(snap.tracks.len(), 2);
    assert_eq!(
        (snap.tracks[1].width, snap.tracks[1].height),
        (Some(1280), Some(720))
    );
    assert_eq!(snap.tracks[1].video_codec.as_deref(), Some("h264"));
    assert_eq!(snap.destinations_attached, 1);
}

#[tokio::test]
async fn invented_track_ids_cannot_grow_the_hub() {
    let hub = Hub::new(StreamKey::new("k"), QueueLimits::default());
    let _guard = hub.start_publish(addr()).expect("publisher");
    for id in 1..=255u8 {
        let mut v = vec![0x96, 0, b'a', b'v', b'c', b'1', id];
        v.extend_from_slice(AVCC_1280X720);
        hub.push_video(0, Bytes::from(v));
    }
    assert_eq!(hub.snapshot().tracks.len(), 1 + super::tracks::MAX_TRACKS);
}

#[tokio::test]
async fn track_zero_inside_a_many_tracks_tag_reaches_plain_subscribers_flattened() {
    let hub = Hub::new(StreamKey::new("k"), QueueLimits::default());
    let _guard = hub.start_publish(addr()).expect("publisher");
    hub.push_video(0, b(AVC_SEQ));
    let plain = hub.subscribe();
    // ManyTracks, CodedFramesX, keyframe: track 0 [0xee], track 1 [0xff].
    hub.push_video(
        0,
        Bytes::from_static(&[
            0x96, 0x13, b'a', b'v', b'c', b'1', 0, 0, 0, 1, 0xee, 1, 0, 0, 1, 0xff,
        ]),
    );
    let payloads: Vec<Bytes> = drain(&plain)
        .await
        .iter()
        .map(|f| f.payload.to_payload())
        .collect();
    assert_eq!(payloads, vec![AVC_SEQ, &[0x17, 1, 0, 0, 0, 0xee][..]]);
}

#[tokio::test]
async fn measures_the_longest_recent_keyframe_interval() {
    let hub = Hub::new(StreamKey::new("k"), QueueLimits::default());
    let _guard = hub.start_publish(addr()).expect("first publisher");
    hub.push_video(0, b(AVC_SEQ));
    hub.push_video(0, b(AVC_KEY));
    assert_eq!(hub.snapshot().keyframe_interval_s, None, "one keyframe");
    hub.push_video(2_000, b(AVC_INTER));
    hub.push_video(5_000, b(AVC_KEY));
    hub.push_video(7_000, b(AVC_KEY));
    assert_eq!(hub.snapshot().keyframe_interval_s, Some(5.0));
    drop(_guard);
    let _again = hub.start_publish(addr()).expect("a new session");
    assert_eq!(hub.snapshot().keyframe_interval_s, None, "forgotten");
}

/// Whether the destination's reader was woken since last asked.
fn woken(sub: &Subscription) -> bool {
    use futures_util::FutureExt;
    sub.queue.notify.notified().now_or_never().is_some()
}

#[tokio::test]
async fn audio_waits_for_the_next_video_frame_before_waking_a_destination() {
    let hub = Hub::new(StreamKey::new("k"), QueueLimits::default());
    let guard = hub.start_publish(addr()).expect("first publisher");
    start_stream(&hub);
    let sub = hub.subscribe();
    hub.flush();
    assert!(woken(&sub), "a new destination starts at once");
    assert_eq!(drain(&sub).await.len(), 3);

    hub.push_audio(10, b(AAC_RAW));
    hub.flush();
    hub.push_audio(31, b(AAC_RAW));
    hub.flush();
    assert!(!woken(&sub), "audio alone waits for the video frame");
    hub.push_video(33, b(AVC_INTER));
    hub.flush();
    assert!(woken(&sub), "the video frame wakes it");
    let ts: Vec<_> = drain(&sub).await.iter().map(|f| f.kind).collect();
    assert_eq!(
        ts,
        vec![FrameKind::Audio, FrameKind::Audio, FrameKind::Video],
        "in the order they came"
    );

    // Video stops: audio waits no more than 100 ms of media time.
    for t in (40..=130).step_by(21) {
        hub.push_audio(t, b(AAC_RAW));
        hub.flush();
        assert!(!woken(&sub), "audio at {t} ms waits");
    }
    hub.push_audio(145, b(AAC_RAW));
    hub.flush();
    assert!(woken(&sub), "100 ms of audio wakes it");
    assert_eq!(drain(&sub).await.len(), 6);

    // The publisher leaves: what waited goes at once.
    hub.push_audio(160, b(AAC_RAW));
    hub.flush();
    assert!(!woken(&sub));
    drop(guard);
    assert!(woken(&sub), "the publisher's last audio is not held back");
    assert_eq!(drain(&sub).await.len(), 1);
}

#[tokio::test]
async fn audio_without_video_wakes_a_destination_at_once() {
    let hub = Hub::new(StreamKey::new("k"), QueueLimits::default());
    let _guard = hub.start_publish(addr()).expect("first publisher");
    hub.push_audio(0, b(AAC_SEQ));
    hub.push_audio(0, b(AAC_RAW));
    let sub = hub.subscribe();
    hub.flush();
    assert!(woken(&sub));
    drain(&sub).await;
    hub.push_audio(21, b(AAC_RAW));
    hub.flush();
    assert!(woken(&sub), "an audio-only stream is not held back");
}
