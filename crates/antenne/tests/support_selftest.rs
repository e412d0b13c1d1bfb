//! Self-tests of the test-support module against real peers (nginx-rtmp,
//! stunnel, ffmpeg, ffprobe), without antenne; and of the frame-by-frame
//! comparison the fault matrix relies on ([`match_clip`]).

mod support;

use serde_json::json;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::*;

/// A clean recording of the default test pattern: a good recording
/// ([`assert_good_recording`]) at 640x360, with no gap and a keyframe a
/// second.
fn assert_clean_recording(path: &Path, min_video_ms: i64) {
    let report = assert_good_recording(path, min_video_ms);
    let summary = report.summary();
    assert_eq!((report.width, report.height), (Some(640), Some(360)));
    assert!(report.max_video_gap_ms() <= 100, "{summary}");
    assert!(!report.audio_packets.is_empty(), "{summary}");
    // One keyframe per second.
    let expected_keys = (report.video_duration_ms() / 1000) as usize;
    assert!(report.keyframe_count() >= expected_keys, "{summary}");
}

#[test]
fn free_ports_are_distinct_and_bindable() {
    let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
    let unique: HashSet<u16> = ports.iter().copied().collect();
    assert_eq!(unique.len(), ports.len(), "{ports:?}");
    for p in ports {
        TcpListener::bind(("127.0.0.1", p)).expect("free port is bindable");
    }
}

#[test]
fn child_guard_kills_on_drop_and_on_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("sleep.log");
    let spawn = || {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started; exec sleep 60"]);
        ChildGuard::spawn("sleep", cmd, &log).expect("spawn sleep")
    };
    let alive = |pid: u32| Path::new(&format!("/proc/{pid}")).exists();

    // Plain drop (the child ignores nothing: SIGTERM is enough).
    let mut guard = spawn();
    let pid = guard.pid();
    assert!(guard.is_running());
    assert!(wait_until(Duration::from_secs(5), || guard
        .log()
        .contains("started")));
    drop(guard);
    assert!(!alive(pid), "process {pid} still exists after drop");

    // A child that ignores SIGTERM gets SIGKILL after the grace period.
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "trap '' TERM; echo ready; while :; do sleep 0.1; done",
    ]);
    let mut stubborn = ChildGuard::spawn("stubborn", cmd, &dir.path().join("s.log"))
        .expect("spawn stubborn shell");
    assert!(wait_until(Duration::from_secs(5), || stubborn
        .log()
        .contains("ready")));
    let pid = stubborn.pid();
    stubborn.terminate(Duration::from_millis(300));
    assert!(!stubborn.is_running());
    assert!(!alive(pid), "stubborn process {pid} survived");

    // Panic while the guard is alive: unwinding kills it.
    let mut pid = 0;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let guard = spawn();
        pid = guard.pid();
        panic!("deliberate panic with a live child");
    }));
    assert!(result.is_err());
    assert_ne!(pid, 0);
    assert!(!alive(pid), "process {pid} survived a panic");
}

#[test]
fn wait_until_times_out_and_succeeds() {
    let start = std::time::Instant::now();
    assert!(!wait_until(Duration::from_millis(200), || false));
    assert!(start.elapsed() >= Duration::from_millis(200));
    let mut n = 0;
    assert!(wait_until(Duration::from_secs(5), || {
        n += 1;
        n >= 3
    }));
}

#[test]
fn nginx_records_an_ffmpeg_publish() {
    let nginx = Nginx::start().expect("start nginx");
    assert_eq!(
        nginx.url(),
        format!("rtmp://127.0.0.1:{}/live", nginx.port())
    );
    let mut ffmpeg = Publisher::options()
        .duration(Duration::from_secs(3))
        .start(&nginx.stream_url("selftest"))
        .expect("start ffmpeg");
    let status = ffmpeg
        .wait(Duration::from_secs(12))
        .unwrap_or_else(|| panic!("ffmpeg did not finish; log:\n{}", ffmpeg.log()));
    assert!(status.success(), "ffmpeg failed: {}", ffmpeg.log());

    let recs = nginx.recordings("selftest");
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(nginx.publish_count("selftest"), 1);
    assert_eq!(nginx.publish_count("other"), 0);
    assert!(nginx.recordings("selftes").is_empty());
    assert_clean_recording(&recs[0], 2500);
}

#[test]
fn nginx_recording_is_readable_while_live() {
    let nginx = Nginx::start().expect("start nginx");
    let mut ffmpeg = Publisher::start(&nginx.stream_url("live1")).expect("start ffmpeg");
    let rec = nginx
        .wait_for_recording("live1", 300_000, Duration::from_secs(10))
        .expect("recording grows while live");
    assert!(ffmpeg.is_running(), "ffmpeg exited: {}", ffmpeg.log());
    let first = analyze(&rec).expect("analyze live recording");
    // Still growing.
    let bigger = rec.metadata().expect("stat").len() + 100_000;
    assert!(wait_until(Duration::from_secs(5), || rec
        .metadata()
        .map(|m| m.len() >= bigger)
        .unwrap_or(false)));
    let second = analyze(&rec).expect("analyze again");
    assert!(second.video_packets.len() > first.video_packets.len());
    assert!(second.first_video_is_keyframe() && second.video_dts_monotonic());
    let errors = decode_errors(&rec).expect("decode");
    assert!(errors.trim().is_empty(), "decode errors: {errors}");
    ffmpeg.stop();
}

#[test]
fn rtmps_through_stunnel_with_verified_ca() {
    let nginx = Nginx::start().expect("start nginx");
    let stunnel = Stunnel::start(nginx.port()).expect("start stunnel");
    assert_eq!(stunnel.backend_port(), nginx.port());
    assert!(stunnel.url().starts_with("rtmps://localhost:"));
    let pem = std::fs::read_to_string(stunnel.ca_file()).expect("read CA");
    assert!(pem.contains("BEGIN CERTIFICATE"));

    // The certificate verifies against the test CA...
    let mut ffmpeg = Publisher::options()
        .duration(Duration::from_secs(3))
        .ca_file(stunnel.ca_file())
        .start(&stunnel.stream_url("tls"))
        .expect("start ffmpeg");
    let status = ffmpeg
        .wait(Duration::from_secs(12))
        .unwrap_or_else(|| panic!("ffmpeg did not finish; log:\n{}", ffmpeg.log()));
    assert!(status.success(), "ffmpeg over TLS failed: {}", ffmpeg.log());
    let rec = nginx
        .wait_for_recording("tls", 100_000, Duration::from_secs(5))
        .expect("recording through TLS");
    assert_clean_recording(&rec, 2500);
    assert!(stunnel.log().contains("TLS accepted"), "{}", stunnel.log());

    // ...and not against another one (so verification is real).
    let mut refused = Publisher::options()
        .duration(Duration::from_secs(1))
        .ca_file(Path::new("/etc/ssl/certs/ca-certificates.crt"))
        .start(&stunnel.stream_url("untrusted"))
        .expect("start ffmpeg");
    let status = refused
        .wait(Duration::from_secs(10))
        .expect("ffmpeg with the wrong CA exits");
    assert!(!status.success(), "{}", refused.log());
    assert_eq!(nginx.publish_count("untrusted"), 0);
}

#[test]
fn nginx_restart_on_same_port() {
    let mut nginx = Nginx::start().expect("start nginx");
    let port = nginx.port();
    let mut first = Publisher::start(&nginx.stream_url("again")).expect("start ffmpeg");
    nginx
        .wait_for_recording("again", 300_000, Duration::from_secs(10))
        .expect("first recording");

    nginx.kill();
    assert!(!nginx.is_running());
    assert!(!port_accepts(port), "port still open after kill");
    let status = first
        .wait(Duration::from_secs(10))
        .expect("ffmpeg notices the receiver died");
    assert!(!status.success());

    nginx.restart().expect("restart nginx");
    assert_eq!(nginx.port(), port);
    assert!(nginx.is_running());
    let _second = Publisher::start(&nginx.stream_url("again")).expect("start ffmpeg again");
    let recs = nginx
        .wait_for_recordings("again", 2, 100_000, Duration::from_secs(10))
        .expect("second recording after restart");
    assert_eq!(recs.len(), 2, "{recs:?}");
    nginx
        .wait_for_publish_count("again", 2, Duration::from_secs(1))
        .expect("two publishes logged");
    assert_eq!(nginx.connect_count(), 2);
    // The first one was cut by SIGKILL (may end in a partial tag).
    assert_clean_recording(&recs[0], 1000);
    assert_clean_recording(&recs[1], 100);
}

#[test]
fn probe_parses_ffprobe_json() {
    let v = json!({
        "streams": [
            {"index": 0, "codec_type": "video", "codec_name": "h264", "width": 1280, "height": 720},
            {"index": 1, "codec_type": "audio", "codec_name": "aac"}
        ],
        "packets": [
            {"stream_index": 1, "dts_time": "0.000000", "pts_time": "0.000000", "size": "10", "flags": "K_"},
            {"stream_index": 0, "dts_time": "0.000000", "pts_time": "0.066000", "size": "100", "flags": "K_"},
            {"stream_index": 0, "dts_time": "0.033000", "pts_time": "0.033000", "size": "50", "flags": "__"},
            {"stream_index": 0, "pts_time": "0.200000", "size": "50", "flags": "__"},
            {"stream_index": 1, "dts_time": "0.023000", "size": "10", "flags": "K_"},
            {"stream_index": 1, "size": "10", "flags": "K_"}
        ]
    });
    let r = probe::parse_ffprobe_json(&v);
    assert_eq!(r.video_codec.as_deref(), Some("h264"));
    assert_eq!(r.audio_codec.as_deref(), Some("aac"));
    assert_eq!((r.width, r.height), (Some(1280), Some(720)));
    assert_eq!(r.video_packets.len(), 3);
    assert_eq!(r.audio_packets.len(), 2);
    assert_eq!(r.video_packets[0].pts_ms, 66);
    assert!(r.first_video_is_keyframe());
    assert!(r.video_dts_monotonic());
    assert!(r.audio_dts_monotonic());
    assert_eq!(r.max_video_gap_ms(), 167);
    assert_eq!(r.video_duration_ms(), 200);
    assert_eq!(r.keyframe_count(), 1);
    assert_eq!(r.payload_bytes(), 220);
}

/// A one-shot HTTP server answering `status` with `body` once.
fn one_shot_http(
    status: &'static str,
    body: &'static str,
) -> (u16, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handle = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        // Read the head, then the body if Content-Length says so.
        loop {
            let n = conn.read(&mut buf).expect("read request");
            req.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&req).to_string();
            if let Some(head_end) = text.find("\r\n\r\n") {
                let len = text[..head_end]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if req.len() >= head_end + 4 + len || n == 0 {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        let resp = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(resp.as_bytes()).expect("write response");
        String::from_utf8_lossy(&req).to_string()
    });
    (port, handle)
}

#[test]
fn http_json_returns_error_statuses_instead_of_failing() {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .build();

    let (port, server) = one_shot_http("404 Not Found", r#"{"error":"no such destination"}"#);
    let (status, body) = http_json(&agent, "GET", &format!("http://127.0.0.1:{port}/x"), None)
        .expect("404 is not a transport error");
    assert_eq!(status, 404);
    assert_eq!(body["error"], "no such destination");
    server.join().expect("server thread");

    let (port, server) = one_shot_http("201 Created", r#"{"id":"abc"}"#);
    let sent = json!({"name": "n", "enabled": true});
    let (status, body) = http_json(
        &agent,
        "POST",
        &format!("http://127.0.0.1:{port}/api/v1/destinations"),
        Some(&sent),
    )
    .expect("post");
    assert_eq!((status, body["id"].as_str()), (201, Some("abc")));
    let request = server.join().expect("server thread");
    assert!(
        request.starts_with("POST /api/v1/destinations "),
        "{request}"
    );
    assert!(request.contains(r#""enabled":true"#), "{request}");

    let (port, server) = one_shot_http("204 No Content", "");
    let (status, body) =
        http_json(&agent, "DELETE", &format!("http://127.0.0.1:{port}/"), None).expect("delete");
    assert_eq!((status, body), (204, serde_json::Value::Null));
    server.join().expect("server thread");

    // Nothing listening: a transport error.
    let port = free_port();
    assert!(http_json(&agent, "GET", &format!("http://127.0.0.1:{port}/"), None).is_err());
}

#[test]
fn flv_partial_last_tag_is_tolerated() {
    let nginx = Nginx::start().expect("start nginx");
    let mut ffmpeg = Publisher::options()
        .duration(Duration::from_secs(2))
        .start(&nginx.stream_url("cut"))
        .expect("start ffmpeg");
    let status = ffmpeg
        .wait(Duration::from_secs(10))
        .expect("ffmpeg finishes");
    assert!(status.success(), "{}", ffmpeg.log());
    let rec = nginx.latest_recording("cut").expect("a recording");
    let (complete, total) = probe::flv_complete_len(&rec).expect("parse flv");
    assert_eq!(complete, total, "a finished recording has only whole tags");

    // Cut the file in the middle of its last-but-some tag.
    let dir = tempfile::tempdir().expect("tempdir");
    let data = std::fs::read(&rec).expect("read recording");
    let cut = dir.path().join("cut.flv");
    std::fs::write(&cut, &data[..data.len() - 777]).expect("write cut copy");
    let (complete, total) = probe::flv_complete_len(&cut).expect("parse cut flv");
    assert!(complete < total && complete > total - 200_000);
    assert_clean_recording(&cut, 1500);
}

#[test]
fn publish_count_is_exact_even_when_recordings_collide() {
    let nginx = Nginx::start().expect("start nginx");
    for _ in 0..2 {
        let mut ffmpeg = Publisher::options()
            .duration(Duration::from_millis(300))
            .start(&nginx.stream_url("short"))
            .expect("start ffmpeg");
        let status = ffmpeg
            .wait(Duration::from_secs(10))
            .expect("ffmpeg finishes");
        assert!(status.success(), "{}", ffmpeg.log());
    }
    nginx
        .wait_for_publish_count("short", 2, Duration::from_secs(2))
        .expect("two publishes");
    // Two sessions starting within the same second share one file name (the
    // second overwrites the first): 1 or 2 files depending on timing.
    let recs = nginx.recordings("short");
    assert!((1..=2).contains(&recs.len()), "{recs:?}");
}

#[test]
fn nginx_start_on_a_chosen_port() {
    let port = free_port();
    let nginx = Nginx::start_on(port).expect("start nginx on a chosen port");
    assert_eq!(nginx.port(), port);
    assert!(port_accepts(port));
    // The port is taken now: a second one on it cannot start.
    let err = Nginx::start_on(port).err().expect("port already in use");
    assert!(
        format!("{err:#}").contains("Address already in use"),
        "{err:#}"
    );
}

#[test]
fn the_frame_comparison_catches_a_lost_or_altered_frame() -> anyhow::Result<()> {
    let clip = clip(640, 360)?;
    let mut rec = clip.report.clone();
    // A recording that starts at the clip's third keyframe.
    let start = rec
        .video_packets
        .iter()
        .enumerate()
        .filter(|(_, p)| p.keyframe)
        .nth(2)
        .map(|(i, _)| i)
        .expect("keyframes");
    rec.video_packets.drain(..start);
    rec.video_packets.truncate(200);
    let segments = match_clip(&rec, &[clip]).map_err(anyhow::Error::msg)?;
    assert_eq!(segments.len(), 1);
    assert_eq!((segments[0].clip_frame, segments[0].frames), (start, 200));

    let mut lost = rec.clone();
    lost.video_packets.remove(100);
    assert!(match_clip(&lost, &[clip]).is_err(), "a lost frame is seen");
    let mut doubled = rec.clone();
    let again = doubled.video_packets[100].clone();
    doubled.video_packets.insert(101, again);
    assert!(
        match_clip(&doubled, &[clip]).is_err(),
        "a doubled frame is seen"
    );
    let mut altered = rec.clone();
    altered.video_packets[150].size += 1;
    assert!(
        match_clip(&altered, &[clip]).is_err(),
        "an altered frame is seen"
    );
    let mut late = rec.clone();
    late.video_packets.drain(..1);
    assert!(
        match_clip(&late, &[clip]).is_err(),
        "a start off a keyframe is seen"
    );
    // A skipped GOP keeps every frame consistent but breaks the run: the
    // healthy check wants exactly one run.
    let mut skipped = rec.clone();
    let next_key = (1..skipped.video_packets.len())
        .find(|&i| skipped.video_packets[i].keyframe)
        .expect("a second keyframe");
    let gop = (next_key + 1..skipped.video_packets.len())
        .find(|&i| skipped.video_packets[i].keyframe)
        .expect("a third keyframe");
    let shift = skipped.video_packets[gop].dts_ms - skipped.video_packets[next_key].dts_ms;
    skipped.video_packets.drain(next_key..gop);
    for p in &mut skipped.video_packets[next_key..] {
        p.dts_ms -= shift - 1000;
    }
    let segments = match_clip(&skipped, &[clip]).map_err(anyhow::Error::msg)?;
    assert_eq!(segments.len(), 2, "a skip shows as a second run");
    Ok(())
}
