//! Multitrack ingest end to end: `antenne-bench multitrack-publish` (a
//! dev-only publisher that frames two ordinary ffmpeg clips as OBS's
//! multitrack output does; it is not OBS) publishes clip 1 (320×180) as
//! track 0 and clip 2 (180×320) as track 1.
//!
//! - In-process: a test subscriber of track 1 and a plain subscriber write
//!   what destinations would get to FLV files.
//! - Through the real antenne binary and its API, with nginx-rtmp
//!   receivers standing for the platforms: a `"vertical"` destination gets
//!   track 1 copied, a main-picture one track 0; without a track 1 the
//!   vertical destination falls back to the ingest's crop rendition.
//!
//! ffmpeg's framemd5 of what arrived must equal that of the clip it came
//! from (no re-encode, frame for frame).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ::antenne::hub::{FrameKind, Subscription};
use antenne_media::flv::{self, TagKind};
use anyhow::{bail, Context, Result};
use bytes::BytesMut;
use serde_json::{json, Value};
use support::*;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

const KEY: &str = "multitrack_test_key_0123456789";

/// Makes an H.264 (with B-frames, so CTS matters) + AAC FLV clip of 4 s.
fn make_clip(dir: &Path, name: &str, pattern: &str, size: &str, fps: u32) -> PathBuf {
    make_clip_of(dir, name, pattern, size, fps, 4)
}

/// Makes such a clip of `secs` seconds.
fn make_clip_of(dir: &Path, name: &str, pattern: &str, size: &str, fps: u32, secs: u32) -> PathBuf {
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
        // Clip 2 sounds another note, so its audio track can be told apart.
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency={}:sample_rate=48000",
            if pattern == "testsrc" { 880 } else { 440 }
        ))
        .args(["-c:v", "libx264", "-preset", "veryfast", "-bf", "2"])
        .args(["-t", &secs.to_string()])
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
    framemd5(path, "0:v:0")
}

/// The same for the decoded frames of stream `map` (`0:a:0`, …).
fn framemd5(path: &Path, map: &str) -> Vec<String> {
    let ffmpeg = require_program(&["ffmpeg"], "ffmpeg").expect("ffmpeg is installed");
    let out = Command::new(ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(path)
        .args(["-map", map, "-f", "framemd5", "-"])
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

/// The two clips the publisher sends: 320×180 at 30 fps and 180×320 at
/// 15 fps.
fn clips(dir: &Path) -> (PathBuf, PathBuf) {
    (
        make_clip(dir, "clip1.flv", "testsrc2", "320x180", 30),
        make_clip(dir, "clip2.flv", "testsrc", "180x320", 15),
    )
}

/// Starts the multitrack publisher: OBS's framing with one AAC (track 1
/// carries video only).
fn multitrack_publish(
    bench: &Path,
    clip1: &Path,
    clip2: &Path,
    url: &str,
    log: &Path,
) -> ChildGuard {
    let mut cmd = Command::new(bench);
    cmd.arg("multitrack-publish")
        .arg("--track0")
        .arg(clip1)
        .arg("--track1")
        .arg(clip2)
        .arg("--track1-video-only")
        .args(["--url", url]);
    ChildGuard::spawn("multitrack-publish", cmd, log).expect("the publisher starts")
}

fn add_destination(
    antenne: &Antenne,
    nginx: &Nginx,
    stream: &str,
    source: Value,
) -> Result<String> {
    let body = json!({"name": stream, "url": nginx.url(), "key": stream, "source": source});
    let d = antenne.request_expect("POST", "/api/v1/destinations", Some(&body), 201)?;
    if d["source"] != source {
        bail!("the destination's source is not {source}: {d}");
    }
    Ok(Antenne::id_of(&d))
}

/// Waits for the destination's `relaying` to be `want`.
fn wait_relaying(antenne: &Antenne, id: &str, want: &Value) -> Result<()> {
    let mut last = Value::Null;
    let ok = wait_until(Duration::from_secs(30), || {
        last = antenne.get_destination(id).unwrap_or(Value::Null);
        &last["relaying"] == want
    });
    if !ok {
        bail!(
            "destination {id} never relayed {want}; last: {last}\n{}",
            antenne.log()
        );
    }
    Ok(())
}

/// Processes whose parent is `parent`.
fn children_of(parent: u32) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = entry.file_name();
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        if rest.split(' ').nth(1).and_then(|p| p.parse().ok()) == Some(parent) {
            let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            out.push(format!("{:?}: {}", pid, String::from_utf8_lossy(&cmd)));
        }
    }
    out
}

/// The number of video streams ffprobe finds in `path`.
fn video_stream_count(path: &Path) -> usize {
    let ffprobe = require_program(&["ffprobe"], "ffmpeg").expect("ffprobe is installed");
    let out = Command::new(ffprobe)
        .args([
            "-v",
            "error",
            "-select_streams",
            "v",
            "-show_entries",
            "stream=index",
        ])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

/// One publisher session through antenne to the two receivers; returns
/// the recordings' paths once both streams were closed (grace period 1 s).
fn one_session(
    antenne: &Antenne,
    nginx: &Nginx,
    (bench, clip1, clip2): (&Path, &Path, &Path),
    (vert, main): (&str, &str),
    session: usize,
) -> Result<(PathBuf, PathBuf)> {
    let log = antenne.dir().join(format!("publisher{session}.log"));
    let mut publisher = multitrack_publish(bench, clip1, clip2, &antenne.ingest_url(KEY), &log);
    antenne.wait_for_state(vert, "live", Duration::from_secs(30))?;
    wait_relaying(
        antenne,
        vert,
        &json!({"kind": "track", "track": 1, "width": 180, "height": 320}),
    )?;
    // No encoder: antenne runs no child process for a copied track. The
    // standby picture's one-off encode (a still image, `-tune stillimage`)
    // may be running as the publisher's parameters become known: it is
    // not the track's.
    let children: Vec<String> = children_of(antenne.pid().context("antenne runs")?)
        .into_iter()
        .filter(|c| !c.contains("stillimage"))
        .collect();
    if !children.is_empty() {
        bail!("antenne started processes for a copied track: {children:?}");
    }
    let ingest = antenne.ingest()?;
    let tracks = ingest.to_string();
    if !tracks.contains("\"tracks\"") || !tracks.contains("\"height\":320") {
        bail!("the ingest lists its tracks: {ingest}");
    }
    let status = publisher
        .wait_timeout(Duration::from_secs(60))
        .with_context(|| format!("the publisher ends\n{}", publisher.log()))?;
    if !status.success() {
        bail!("the publisher failed\n{}", publisher.log());
    }
    // After the grace period each destination closes its stream: nginx
    // has the whole recording.
    for id in [vert, main] {
        antenne.wait_for_state(id, "idle", Duration::from_secs(30))?;
    }
    let count = session + 1;
    let vert_rec = nginx.wait_for_recordings("vert", count, 1, Duration::from_secs(10))?;
    let main_rec = nginx.wait_for_recordings("main", count, 1, Duration::from_secs(10))?;
    Ok((vert_rec[session].clone(), main_rec[session].clone()))
}

#[test]
fn a_vertical_destination_gets_obs_vertical_track_copied_and_starts_on_its_keyframe_again_after_a_reconnect(
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (clip1, clip2) = clips(dir.path());
    let bench = bench_binary();
    let nginx = Nginx::start()?;
    let antenne = Antenne::options()
        .ingest_key(KEY)
        .grace_period_secs(1)
        .start()?;
    let vert = add_destination(&antenne, &nginx, "vert", json!("vertical"))?;
    let main = add_destination(&antenne, &nginx, "main", json!("ingest"))?;
    let want1 = video_framemd5(&clip1);
    let want2 = video_framemd5(&clip2);
    let want_audio = framemd5(&clip1, "0:a:0");
    // Two publisher sessions: the second is a reconnect of OBS after the
    // destinations closed; each must start again on headers + keyframe.
    for session in 0..2 {
        let (vert_rec, main_rec) = one_session(
            &antenne,
            &nginx,
            (&bench, &clip1, &clip2),
            (&vert, &main),
            session,
        )?;
        let got = analyze(&vert_rec)?;
        assert_eq!(
            (got.width, got.height),
            (Some(180), Some(320)),
            "session {session}"
        );
        assert_eq!(video_stream_count(&vert_rec), 1, "one video stream");
        assert!(
            got.first_video_is_keyframe(),
            "session {session}: starts on a keyframe"
        );
        assert_eq!(
            framemd5(&vert_rec, "0:a:0"),
            want_audio,
            "session {session}: track 0's audio rides along, from the first picture on"
        );
        assert_eq!(
            video_framemd5(&vert_rec),
            want2,
            "session {session}: the vertical destination got clip 2's video, frame for frame"
        );
        let got = analyze(&main_rec)?;
        assert_eq!(
            (got.width, got.height),
            (Some(320), Some(180)),
            "session {session}"
        );
        assert!(got.first_video_is_keyframe(), "session {session}");
        assert_eq!(
            video_framemd5(&main_rec),
            want1,
            "session {session}: the main-picture destination got clip 1's video"
        );
    }
    Ok(())
}

#[test]
fn without_a_vertical_track_the_vertical_destination_relays_the_crop_rendition() -> Result<()> {
    let nginx = Nginx::start()?;
    let antenne = Antenne::options()
        .ingest_key(KEY)
        .grace_period_secs(30)
        .start()?;
    // Nothing vertical yet: a plain error, retried.
    let vert = add_destination(&antenne, &nginx, "vert", json!("vertical"))?;
    let _publisher = Publisher::options()
        .size(320, 180)
        .fps(30)
        .video_kbps(600)
        .start(&antenne.ingest_url(KEY))?;
    let mut last = Value::Null;
    let said = wait_until(Duration::from_secs(30), || {
        last = antenne.get_destination(&vert).unwrap_or(Value::Null);
        last["status"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("no vertical track from OBS and no vertical rendition"))
    });
    assert!(said, "the destination says what is missing: {last}");
    let r = antenne.request_expect(
        "POST",
        "/api/v1/renditions",
        Some(&json!({"name": "Vertical", "spec": {"width": 180, "height": 320, "video_kbps": 400, "max_fps": 30}})),
        201,
    )?;
    let rid = r["id"].as_str().context("rendition id")?.to_owned();
    // Tried again with the destination's backoff: the rendition is found.
    antenne.wait_for_state(&vert, "live", Duration::from_secs(90))?;
    wait_relaying(
        &antenne,
        &vert,
        &json!({"kind": "rendition", "rendition": rid, "width": 180, "height": 320}),
    )?;
    let path = nginx
        .wait_for_recording("vert", 60_000, Duration::from_secs(60))
        .with_context(|| nginx.error_log())?;
    let got = analyze(&path)?;
    assert_eq!(
        (got.width, got.height),
        (Some(180), Some(320)),
        "cropped on the server"
    );
    assert!(got.first_video_is_keyframe());
    let rendition =
        antenne.request_expect("GET", &format!("/api/v1/renditions/{rid}"), None, 200)?;
    assert_eq!(rendition["status"]["state"], "running", "{rendition}");
    // In use by the vertical destination: not deleted under it.
    let (status, body) = antenne.request("DELETE", &format!("/api/v1/renditions/{rid}"), None)?;
    assert_eq!(status, 409, "{body}");
    Ok(())
}

#[test]
fn the_api_keeps_accepting_rendition_sources_and_refuses_track_zero() -> Result<()> {
    let nginx = Nginx::start()?;
    let antenne = Antenne::options().ingest_key(KEY).start()?;
    let t1 = add_destination(&antenne, &nginx, "t1", json!({"track": 1}))?;
    let d = antenne.patch_destination(&t1, &json!({"audio_track": 2}))?;
    assert_eq!(d["audio_track"], 2, "{d}");
    assert_eq!(d["source"], json!({"track": 1}), "{d}");
    let body = json!({"name": "x", "url": nginx.url(), "key": "x", "source": {"track": 0}});
    let (status, answer) = antenne.request("POST", "/api/v1/destinations", Some(&body))?;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("main picture")),
        "{answer}"
    );
    let body =
        json!({"name": "x", "url": nginx.url(), "key": "x", "source": {"rendition": "nope"}});
    let (status, answer) = antenne.request("POST", "/api/v1/destinations", Some(&body))?;
    assert_eq!(
        status, 400,
        "a rendition source is still read as one: {answer}"
    );
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("no rendition")),
        "{answer}"
    );
    // Kept across a restart.
    let mut antenne = antenne;
    antenne.restart()?;
    let d = antenne.get_destination(&t1)?;
    assert_eq!(
        (d["source"].clone(), d["audio_track"].clone()),
        (json!({"track": 1}), json!(2)),
        "{d}"
    );
    Ok(())
}

#[test]
fn the_dashboard_lists_obs_tracks_offers_them_as_sources_and_says_the_vertical_is_native(
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let clip1 = make_clip_of(dir.path(), "long1.flv", "testsrc2", "320x180", 30, 40);
    let clip2 = make_clip_of(dir.path(), "long2.flv", "testsrc", "180x320", 15, 40);
    let bench = bench_binary();
    let nginx = Nginx::start()?;
    let antenne = Antenne::options()
        .ingest_key(KEY)
        .grace_period_secs(30)
        .start()?;
    let vert = add_destination(&antenne, &nginx, "vert", json!("vertical"))?;
    let browser = Browser::start("en-US")?;
    browser.log_in(&antenne.url("/"), ADMIN_PASSWORD)?;
    let _publisher = multitrack_publish(
        &bench,
        &clip1,
        &clip2,
        &antenne.ingest_url(KEY),
        &dir.path().join("pub.log"),
    );
    let wait = Duration::from_secs(30);
    browser.wait_text("[data-testid=ingest-track][data-track='1']", wait, |t| {
        t.contains("Track 1")
            && t.contains("H.264")
            && t.contains("180×320")
            && t.contains("kbit/s")
    })?;
    browser.wait_text("[data-testid=dest-relaying]", wait, |t| {
        t == "Native vertical 180×320 from OBS"
    })?;
    // The Config Override, with its copy button, in the OBS section.
    browser.find("[data-testid=obs-multitrack-copy]")?;
    let override_text = browser.js(
        "return document.querySelector('[data-testid=obs-multitrack-json]').textContent;",
        json!([]),
    )?;
    let parsed: Value = serde_json::from_str(override_text.as_str().unwrap_or_default())
        .context("the override is JSON")?;
    assert_eq!(
        parsed["encoder_configurations"][1]["canvas_index"], 1,
        "{parsed}"
    );

    // The dialog offers the main picture, vertical, OBS's track 1 and
    // shows the current choice; choosing track 1 saves it.
    browser.click("[data-testid=destination-card] [data-testid=dest-edit]")?;
    assert_eq!(browser.value("[data-testid=dest-source]")?, "vertical");
    let labels = browser.js(
        "return [...document.querySelectorAll('#dest-source option')].map(o => o.textContent);",
        json!([]),
    )?;
    let labels: Vec<String> = serde_json::from_value(labels)?;
    assert_eq!(labels[0], "Main picture", "{labels:?}");
    assert!(labels[1].starts_with("Vertical (auto"), "{labels:?}");
    assert!(
        labels
            .iter()
            .any(|l| l.starts_with("Track 1 from OBS") && l.contains("180×320")),
        "{labels:?}"
    );
    browser.js(
        "const s = document.querySelector('#dest-source'); s.value = 'track:1'; s.dispatchEvent(new Event('change'));",
        json!([]),
    )?;
    browser.click("#dest-submit")?;
    let saved = wait_for(Duration::from_secs(20), || {
        let d = antenne.get_destination(&vert).ok()?;
        (d["source"] == json!({"track": 1})).then_some(d)
    });
    assert!(saved.is_some(), "the dialog saved {{\"track\": 1}}");
    Ok(())
}

#[test]
fn a_destination_takes_the_main_picture_with_obs_second_audio_track() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (clip1, clip2) = clips(dir.path());
    let bench = bench_binary();
    let nginx = Nginx::start()?;
    let antenne = Antenne::options()
        .ingest_key(KEY)
        .grace_period_secs(1)
        .start()?;
    let body = json!({"name": "yt", "url": nginx.url(), "key": "yt", "source": "ingest", "audio_track": 1});
    let d = antenne.request_expect("POST", "/api/v1/destinations", Some(&body), 201)?;
    assert_eq!(d["audio_track"], 1, "{d}");
    let id = Antenne::id_of(&d);
    // Clip 2's audio goes as audio track 1 (no --track1-video-only).
    let mut cmd = Command::new(&bench);
    cmd.arg("multitrack-publish")
        .arg("--track0")
        .arg(&clip1)
        .arg("--track1")
        .arg(&clip2)
        .args(["--url", &antenne.ingest_url(KEY)]);
    let mut publisher = ChildGuard::spawn("multitrack-publish", cmd, &dir.path().join("pub.log"))?;
    antenne.wait_for_state(&id, "live", Duration::from_secs(30))?;
    let status = publisher
        .wait_timeout(Duration::from_secs(60))
        .with_context(|| format!("the publisher ends\n{}", publisher.log()))?;
    assert!(status.success(), "{}", publisher.log());
    antenne.wait_for_state(&id, "idle", Duration::from_secs(30))?;
    let rec = nginx.wait_for_recording("yt", 1, Duration::from_secs(10))?;
    let got = analyze(&rec)?;
    assert_eq!((got.width, got.height), (Some(320), Some(180)));
    assert!(got.first_video_is_keyframe());
    assert_eq!(
        video_framemd5(&rec),
        video_framemd5(&clip1),
        "clip 1's video"
    );
    let want = framemd5(&clip2, "0:a:0");
    assert_ne!(want, framemd5(&clip1, "0:a:0"), "the clips' audio differ");
    assert_eq!(
        framemd5(&rec, "0:a:0"),
        want,
        "clip 2's audio (audio track 1), frame for frame"
    );
    Ok(())
}
