//! Real sessions, captured on the wire by fuzz/make_seeds.py (ffmpeg,
//! nginx-rtmp's push, OBS Studio 29), replayed through our sessions: the
//! fuzz seeds are known to reach the deep states (publishing, media), and
//! what real publishers and servers send keeps working.

use std::path::{Path, PathBuf};

use antenne_rtmp::flv::{inspect_audio, inspect_video};
use antenne_rtmp::handshake::PACKET_SIZE;
use antenne_rtmp::ServerSession;
use antenne_rtmp::{ClientEvent, ClientSession, PublishTarget, ServerConfig, ServerEvent};

fn seeds(target: &str, name_contains: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains(name_contains))
        })
        .map(|p| {
            let bytes = std::fs::read(&p).expect("seed readable");
            (p, bytes)
        })
        .collect();
    out.sort();
    out
}

fn simple_handshake() -> Vec<u8> {
    let mut v = vec![3u8];
    v.extend_from_slice(&[0u8; 2 * PACKET_SIZE]);
    v
}

#[derive(Default, Debug)]
struct Seen {
    app: Option<String>,
    key: Option<String>,
    metadata: usize,
    video: usize,
    video_sequence_headers: usize,
    keyframes: usize,
    audio: usize,
    audio_sequence_headers: usize,
}

/// Feeds a publisher's bytes to a server session that accepts everything.
fn publish(bytes: &[u8], piece: usize) -> Seen {
    let mut s = ServerSession::new(ServerConfig::default(), [5; PACKET_SIZE]);
    let mut seen = Seen::default();
    for p in bytes.chunks(piece) {
        s.feed(p).expect("a real publisher's bytes are accepted");
        while let Some(ev) = s.poll_event() {
            match ev {
                ServerEvent::ConnectRequested { app, .. } => {
                    seen.app = Some(app);
                    s.accept_connect();
                    s.resume().expect("resumes after connect");
                }
                ServerEvent::PublishRequested { stream_key } => {
                    seen.key = Some(stream_key);
                    s.accept_publish();
                    s.resume().expect("resumes after publish");
                }
                ServerEvent::Metadata { .. } => seen.metadata += 1,
                ServerEvent::Video { payload, .. } => {
                    seen.video += 1;
                    let tag = inspect_video(&payload).expect("video tag");
                    seen.video_sequence_headers += usize::from(tag.sequence_header);
                    seen.keyframes += usize::from(tag.keyframe && !tag.sequence_header);
                }
                ServerEvent::Audio { payload, .. } => {
                    seen.audio += 1;
                    let tag = inspect_audio(&payload).expect("audio tag");
                    seen.audio_sequence_headers += usize::from(tag.sequence_header);
                }
                ServerEvent::PublishEnded | ServerEvent::PlayRefused { .. } => {}
            }
        }
        while s.take_output().is_some() {}
    }
    seen
}

#[test]
fn captured_publishers_publish_to_our_server() {
    // server_session seeds: [flags][split seed][bytes]; flags 0x03 accept
    // everything after a made-up handshake, 0x83 carry the real one.
    let all = seeds("server_session", "-publish");
    assert!(
        all.len() >= 6,
        "seeds missing: run python3 fuzz/make_seeds.py"
    );
    let mut publishers = std::collections::BTreeSet::new();
    for (path, seed) in &all {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let (flags, stream) = (seed[0], &seed[2..]);
        let bytes = if flags & 0x80 == 0 {
            let mut b = simple_handshake();
            b.extend_from_slice(stream);
            b
        } else {
            stream.to_vec()
        };
        for piece in [usize::MAX, 1000, 7] {
            let seen = publish(&bytes, piece);
            assert_eq!(seen.app.as_deref(), Some("live"), "{name}: {seen:?}");
            assert!(
                seen.key
                    .as_deref()
                    .is_some_and(|k| k.ends_with("_key") || k == "pushed_by_nginx"),
                "{name}: {seen:?}"
            );
            assert!(seen.metadata >= 1, "{name}: no metadata: {seen:?}");
            assert!(
                seen.video_sequence_headers >= 1 || name.contains("flv1"),
                "{name}: no video sequence header: {seen:?}"
            );
            assert!(seen.keyframes >= 1, "{name}: no keyframe: {seen:?}");
            assert!(seen.audio >= 1, "{name}: no audio: {seen:?}");
        }
        publishers.insert(name.split("-publish").next().unwrap_or("?").to_owned());
    }
    // ffmpeg (two codec sets), nginx-rtmp's push, and OBS when it was there.
    assert!(publishers.len() >= 3, "{publishers:?}");
}

#[test]
fn a_captured_server_accepts_our_publish() {
    // client_session seeds: [flags][split seed][bytes] of what nginx-rtmp
    // answered a publisher whose commands match ours (connect 1,
    // createStream 4, publish 5).
    let all = seeds("client_session", "-answers");
    assert!(
        !all.is_empty(),
        "seeds missing: run python3 fuzz/make_seeds.py"
    );
    let mut published = 0;
    for (path, seed) in &all {
        let (flags, stream) = (seed[0], &seed[2..]);
        let bytes = if flags & 0x80 == 0 {
            let mut b = simple_handshake();
            b.extend_from_slice(stream);
            b
        } else {
            stream.to_vec()
        };
        let mut c = ClientSession::new(
            PublishTarget {
                app: "live".into(),
                tc_url: "rtmp://127.0.0.1/live".into(),
                stream_name: "k".into(),
            },
            [6; PACKET_SIZE],
        );
        c.feed(&bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        while let Some(ev) = c.poll_event() {
            if ev == ClientEvent::Published {
                published += 1;
            }
        }
    }
    assert!(published >= 1, "no captured answer led to Published");
}

#[test]
fn a_captured_nginx_rtmp_plays_to_our_player() {
    // player_session seeds: [flags][split seed][bytes] of what nginx-rtmp
    // 1.2 sent ffmpeg playing `live/obs` while ffmpeg published H.264 + AAC
    // there (connect 1, createStream 2, as ours), S0 S1 S2 included.
    let all = seeds("player_session", "nginx-play");
    assert!(!all.is_empty(), "player_session seeds missing");
    for (path, seed) in &all {
        let mut p = antenne_rtmp::PlayerSession::new(
            antenne_rtmp::PlayTarget {
                app: "live".into(),
                tc_url: "rtmp://127.0.0.1:1935/live".into(),
                stream_name: "obs".into(),
            },
            [6; PACKET_SIZE],
        );
        // In pieces of 1000 bytes, as a socket would deliver them.
        for piece in seed[2..].chunks(1000) {
            p.feed(piece)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        let events: Vec<_> = std::iter::from_fn(|| p.poll_event()).collect();
        use antenne_rtmp::PlayerEvent as E;
        assert_eq!(events.first(), Some(&E::Playing), "{}", path.display());
        assert!(events.iter().any(|e| matches!(e, E::Metadata { .. })));
        let video: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                E::Video { timestamp, payload } => Some((*timestamp, payload.clone())),
                _ => None,
            })
            .collect();
        let audio = events
            .iter()
            .filter(|e| matches!(e, E::Audio { .. }))
            .count();
        assert!(
            video.len() > 5 && audio > 5,
            "{} video, {audio} audio",
            video.len()
        );
        let first = inspect_video(&video[0].1).expect("a video tag");
        assert!(first.sequence_header, "the AVC sequence header comes first");
        assert!(
            video.windows(2).all(|w| w[0].0 <= w[1].0),
            "video timestamps only go forward"
        );
    }
}
