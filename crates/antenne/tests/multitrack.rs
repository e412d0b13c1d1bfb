//! Multitrack ingest end to end: `antenne-bench multitrack-publish` (a
//! dev-only publisher that frames two ordinary ffmpeg clips as OBS's
//! multitrack output does; it is not OBS) publishes to antenne's RTMP
//! ingest, built in-process from the library (the API for choosing a
//! track does not exist yet). A test subscriber of track 1 and a plain
//! subscriber write what destinations would get to FLV files; ffmpeg's
//! framemd5 of each must equal that of the clip it came from.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ::antenne::hub::{FrameKind, Subscription};
use antenne_media::flv::{self, TagKind};
use bytes::BytesMut;
use support::*;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

const KEY: &str = "multitrack_test_key_0123456789";

/// Makes an H.264 (with B-frames, so CTS matters) + AAC FLV clip.
fn make_clip(dir: &Path, name: &str, pattern: &str, size: &str, fps: u32) -> PathBuf {
    let ffmpeg = require_program(&["ffmpeg"], "ffmpeg").expect("ffmpeg is installed");
    let path = dir.join(name);
    let status = Command::new(ffmpeg)
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("{pattern}=size={size}:rate={fps}"))
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args([
            "-t", "4", "-c:v", "libx264", "-preset", "veryfast", "-bf", "2",
        ])
        .args(["-g", &fps.to_string(), "-pix_fmt", "yuv420p"])
        .args(["-c:a", "aac", "-b:a", "64k", "-f", "flv"])
        .arg(&path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg made {name}");
    path
}

/// The decoded video frames' hashes and sizes (`ffmpeg -f framemd5`),
/// without the timestamps (the hub's timeline starts where it likes).
fn video_framemd5(path: &Path) -> Vec<String> {
    let ffmpeg = require_program(&["ffmpeg"], "ffmpeg").expect("ffmpeg is installed");
    let out = Command::new(ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(path)
        .args(["-map", "0:v:0", "-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "framemd5 of {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let cols: Vec<&str> = l.split(',').map(str::trim).collect();
            format!("{} {}", cols[4], cols[5])
        })
        .collect()
}

/// The antenne-bench binary, built next to this test's binary.
fn bench_binary() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", "antenne-bench"])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "antenne-bench builds");
    let exe = std::env::current_exe().expect("test binary path");
    // target/debug/deps/multitrack-… → target/debug/antenne-bench
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    dir.join("antenne-bench")
}

/// Writes what `sub` gets to an FLV file until `stop`.
async fn record(sub: Subscription, path: PathBuf, stop: CancellationToken) {
    let mut file = tokio::fs::File::create(&path)
        .await
        .expect("recording file");
    file.write_all(&flv::stream_header(true, true))
        .await
        .expect("write");
    let mut frames = Vec::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = sub.recv_many(&mut frames, 64) => {}
        }
        let mut out = BytesMut::new();
        for f in frames.drain(..) {
            let kind = match f.kind {
                FrameKind::Audio => TagKind::Audio,
                FrameKind::Video => TagKind::Video,
                FrameKind::Metadata => TagKind::Script,
            };
            let ts = u32::try_from(f.timestamp).expect("hub timestamps start at 0");
            flv::write_tag(&mut out, kind, ts, &f.payload.to_payload()).expect("tag fits");
        }
        file.write_all(&out).await.expect("write");
    }
    file.flush().await.expect("flush");
}

#[test]
fn a_track_subscriber_gets_track_one_and_a_plain_one_track_zero() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clip1 = make_clip(dir.path(), "clip1.flv", "testsrc2", "320x180", 30);
    let clip2 = make_clip(dir.path(), "clip2.flv", "testsrc", "180x320", 15);
    let bench = bench_binary();
    let ingest = InProcessIngest::start(KEY);
    // Attached before the publisher: both start on their track's first
    // keyframe, so they get whole clips.
    let stop = CancellationToken::new();
    let (track1_flv, plain_flv) = (dir.path().join("track1.flv"), dir.path().join("plain.flv"));
    let (track1, plain) = (ingest.hub.subscribe_track(1), ingest.hub.subscribe());
    let t1 = ingest
        .rt
        .spawn(record(track1, track1_flv.clone(), stop.clone()));
    let t0 = ingest
        .rt
        .spawn(record(plain, plain_flv.clone(), stop.clone()));

    let mut cmd = Command::new(&bench);
    cmd.arg("multitrack-publish")
        .arg("--track0")
        .arg(&clip1)
        .arg("--track1")
        .arg(&clip2)
        .args(["--url", &ingest.url()]);
    let mut publisher = ChildGuard::spawn("multitrack-publish", cmd, &dir.path().join("pub.log"))
        .expect("the publisher starts");
    let tracks = wait_for(Duration::from_secs(15), || {
        let snap = ingest.hub.snapshot();
        (snap.tracks.len() == 2 && snap.tracks[1].height.is_some()).then_some(snap.tracks)
    })
    .unwrap_or_else(|| panic!("the snapshot lists two tracks\n{}", publisher.log()));
    assert_eq!((tracks[1].width, tracks[1].height), (Some(180), Some(320)));
    assert_eq!(tracks[1].video_codec.as_deref(), Some("h264"));
    assert_eq!(tracks[1].audio_codec.as_deref(), Some("aac"));
    assert_eq!(tracks[0].video_codec.as_deref(), Some("h264"));
    let status = publisher
        .wait_timeout(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("the publisher ends\n{}", publisher.log()));
    assert!(
        status.success(),
        "the publisher succeeded\n{}",
        publisher.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    stop.cancel();
    ingest.rt.block_on(async {
        t1.await.expect("track 1 recorder");
        t0.await.expect("plain recorder");
    });

    let got1 = analyze(&track1_flv).expect("ffprobe reads track 1");
    assert_eq!((got1.width, got1.height), (Some(180), Some(320)));
    assert!(
        got1.first_video_is_keyframe(),
        "track 1 starts on a keyframe"
    );
    assert_eq!(
        video_framemd5(&track1_flv),
        video_framemd5(&clip2),
        "track 1 is clip 2's video, frame for frame"
    );
    let got0 = analyze(&plain_flv).expect("ffprobe reads track 0");
    assert_eq!((got0.width, got0.height), (Some(320), Some(180)));
    assert_eq!(
        video_framemd5(&plain_flv),
        video_framemd5(&clip1),
        "a plain subscriber gets clip 1's video only"
    );
}
