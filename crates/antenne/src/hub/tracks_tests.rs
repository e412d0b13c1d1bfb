//! Unit tests of mixed subscriptions: video from one track, audio from
//! another.

use super::super::*;

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

/// OBS's one-track multitrack video tag for `track`.
fn mt_video(track: u8, first: u8, packet_type: u8, rest: &[u8]) -> Bytes {
    let mut v = vec![first, packet_type, b'a', b'v', b'c', b'1', track];
    v.extend_from_slice(rest);
    Bytes::from(v)
}

/// OBS's one-track multitrack AAC tag for `track`.
fn mt_audio(track: u8, packet_type: u8, rest: &[u8]) -> Bytes {
    let mut v = vec![0x95, packet_type, b'm', b'p', b'4', b'a', track];
    v.extend_from_slice(rest);
    Bytes::from(v)
}

async fn drain(sub: &Subscription) -> Vec<Bytes> {
    let mut out = Vec::new();
    while !sub.queue.lock().frames.is_empty() {
        sub.recv_many(&mut out, 1000).await;
    }
    out.iter().map(|f| f.payload.to_payload()).collect()
}

#[tokio::test]
async fn video_track_one_with_audio_track_zero_joins_on_track_ones_keyframe() {
    let hub = Hub::new(StreamKey::new("k"), QueueLimits::default());
    let _guard = hub.start_publish(addr()).expect("publisher");
    hub.push_video(0, b(AVC_SEQ));
    hub.push_audio(0, b(AAC_SEQ));
    hub.push_video(0, mt_video(1, 0x96, 0, &[0xaa]));
    hub.push_video(0, b(AVC_KEY));
    hub.push_video(0, mt_video(1, 0x96, 1, &[0, 0, 0, 0xbb]));
    hub.push_audio(10, b(AAC_RAW));
    let sub = hub.subscribe_tracks(1, 0);
    // Live from here: track 0's video never comes, its audio does.
    hub.push_video(33, b(AVC_INTER));
    hub.push_audio(20, b(AAC_RAW));
    hub.push_video(66, mt_video(1, 0xa6, 1, &[0, 0, 0, 0xcc]));
    let got = drain(&sub).await;
    let expected: Vec<&[u8]> = vec![
        &[0x17, 0, 0, 0, 0, 0xaa], // track 1's header, flattened
        AAC_SEQ,                   // track 0's audio header
        &[0x17, 1, 0, 0, 0, 0xbb], // track 1's keyframe (the cached GOP)
        AAC_RAW,                   // track 0's audio since then (cached)
        AAC_RAW,                   // live from here
        &[0x27, 1, 0, 0, 0, 0xcc],
    ];
    assert_eq!(got, expected);
    assert_eq!(hub.snapshot().destinations_attached, 1);
}

#[tokio::test]
async fn video_track_zero_with_audio_track_two_takes_no_track_zero_audio() {
    let hub = Hub::new(StreamKey::new("k"), QueueLimits::default());
    let _guard = hub.start_publish(addr()).expect("publisher");
    let sub = hub.subscribe_tracks(0, 2);
    hub.push_video(0, b(AVC_SEQ));
    hub.push_audio(0, b(AAC_SEQ));
    hub.push_audio(0, mt_audio(2, 0, &[0x11, 0x90]));
    // Audio before the first keyframe is not a place to start.
    hub.push_audio(5, mt_audio(2, 1, &[0x21]));
    hub.push_video(10, b(AVC_KEY));
    hub.push_audio(10, b(AAC_RAW));
    hub.push_audio(12, mt_audio(2, 1, &[0x22]));
    hub.push_video(43, b(AVC_INTER));
    let got = drain(&sub).await;
    let expected: Vec<&[u8]> = vec![
        AVC_SEQ,
        &[0xaf, 0, 0x11, 0x90], // track 2's header, replayed on the keyframe
        AVC_KEY,
        &[0xaf, 1, 0x22],
        AVC_INTER,
    ];
    assert_eq!(got, expected);
}

#[tokio::test]
async fn a_mixed_subscription_survives_a_new_publisher_session() {
    let hub = Hub::new(StreamKey::new("k"), QueueLimits::default());
    let guard = hub.start_publish(addr()).expect("publisher");
    let sub = hub.subscribe_tracks(1, 0);
    drop(guard);
    let _guard = hub.start_publish(addr()).expect("publisher again");
    hub.push_audio(0, b(AAC_SEQ));
    hub.push_video(0, mt_video(1, 0x96, 0, &[0xaa]));
    hub.push_video(0, mt_video(1, 0x96, 1, &[0, 0, 0, 0xbb]));
    let got = drain(&sub).await;
    let expected: Vec<&[u8]> = vec![
        &[0x17, 0, 0, 0, 0, 0xaa],
        AAC_SEQ,
        &[0x17, 1, 0, 0, 0, 0xbb],
    ];
    assert_eq!(got, expected);
    drop(sub);
    assert_eq!(hub.snapshot().destinations_attached, 0);
}

#[tokio::test]
async fn tracks_are_known_once_track_zero_has_a_keyframe() {
    let hub = Hub::new(StreamKey::new("k"), QueueLimits::default());
    assert!(!hub.tracks_known());
    let _guard = hub.start_publish(addr()).expect("publisher");
    hub.push_video(0, b(AVC_SEQ));
    hub.push_video(0, mt_video(1, 0x96, 0, &[0xaa]));
    assert!(!hub.tracks_known());
    hub.push_video(0, b(AVC_KEY));
    assert!(hub.tracks_known());
}
