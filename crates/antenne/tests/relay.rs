//! End-to-end relay tests with real peers on 127.0.0.1: ffmpeg publishes to
//! antenne, nginx-rtmp receives and records (through stunnel for RTMPS),
//! ffprobe checks what arrived.

mod support;

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;
use support::*;

const KEY: &str = "test_ingest_key_0123456789";

/// What a user checks on a destination's recording: H.264 + AAC, starts on
/// a keyframe, timestamps only go forward, decodes without error, and lasts
/// at least `min_ms`.
fn assert_good_recording(path: &std::path::Path, min_ms: i64) -> StreamReport {
    let report = analyze(path).expect("ffprobe reads the recording");
    let what = format!("{}: {}", path.display(), report.summary());
    assert_eq!(report.video_codec.as_deref(), Some("h264"), "{what}");
    assert_eq!(report.audio_codec.as_deref(), Some("aac"), "{what}");
    assert!(
        report.first_video_is_keyframe(),
        "starts on a keyframe: {what}"
    );
    assert!(
        report.video_dts_monotonic(),
        "video timestamps go forward: {what}"
    );
    assert!(
        report.audio_dts_monotonic(),
        "audio timestamps go forward: {what}"
    );
    assert!(
        report.video_duration_ms() >= min_ms,
        "lasts {min_ms} ms: {what}"
    );
    let errors = decode_errors(path).expect("ffmpeg decodes the recording");
    if !errors.trim().is_empty() {
        let _ = std::fs::create_dir_all(artifacts_dir());
        let _ = std::fs::copy(path, artifacts_dir().join("failed-recording.flv"));
    }
    assert!(
        errors.trim().is_empty(),
        "decodes cleanly ({what}): {errors}"
    );
    report
}

/// A destination untouched by what happened to others: one connection,
/// no reconnect, nothing dropped, no gap in the frames.
fn assert_undisturbed(antenne: &Antenne, id: &str, nginx: &Nginx, stream: &str) {
    let d = antenne.get_destination(id).expect("destination exists");
    assert_eq!(d["status"]["state"], "live", "{d}");
    assert_eq!(d["status"]["reconnects"], 0, "{d}");
    assert_eq!(d["status"]["dropped_frames"], 0, "{d}");
    assert_eq!(nginx.publish_count(stream), 1, "one connection only");
    let rec = nginx.latest_recording(stream).expect("a recording");
    let report = assert_good_recording(&rec, 1000);
    // Frames come every 33 ms; a lost frame would show as a 67 ms step.
    assert!(
        report.max_video_gap_ms() <= 50,
        "no gap on {stream}: {}",
        report.summary()
    );
}

fn live_within(antenne: &Antenne, id: &str) -> serde_json::Value {
    antenne
        .wait_for_state(id, "live", Duration::from_secs(15))
        .expect("destination goes live")
}

#[test]
fn relays_to_rtmp_and_rtmps_destinations() -> Result<()> {
    let nginx_a = Nginx::start()?;
    let nginx_b = Nginx::start()?;
    let nginx_tls = Nginx::start()?;
    let stunnel = Stunnel::start(nginx_tls.port())?;
    let antenne = Antenne::options()
        .ingest_key(KEY)
        .extra_ca_file(stunnel.ca_file())
        .start()?;
    let a = antenne.add_destination("A", &nginx_a.url(), "platform_key_a_123456", true)?;
    let b = antenne.add_destination("B", &nginx_b.url(), "platform_key_b_123456", true)?;
    let c = antenne.add_destination("TLS", &stunnel.url(), "platform_key_c_123456", true)?;
    assert_eq!(Antenne::state_of(&a), Some("idle"), "waits for the ingest");

    let _publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    for d in [&a, &b, &c] {
        live_within(&antenne, &Antenne::id_of(d));
    }
    // Codecs are known once the sequence headers came through.
    wait_until(Duration::from_secs(5), || {
        antenne.ingest().is_ok_and(|i| {
            i["ingests"][0]["audio_codec"].is_string() && i["ingests"][0]["width"].is_u64()
        })
    });
    let ingest = antenne.ingest()?;
    let i = &ingest["ingests"][0];
    assert_eq!(i["live"], true, "{ingest}");
    assert_eq!(i["video_codec"], "h264", "{ingest}");
    assert_eq!(i["audio_codec"], "aac", "{ingest}");
    assert_eq!(
        (i["width"].as_u64(), i["height"].as_u64()),
        (Some(640), Some(360)),
        "{ingest}"
    );

    std::thread::sleep(Duration::from_secs(4));
    for (nginx, stream) in [
        (&nginx_a, "platform_key_a_123456"),
        (&nginx_b, "platform_key_b_123456"),
        (&nginx_tls, "platform_key_c_123456"),
    ] {
        let rec = nginx.latest_recording(stream).expect("recorded");
        let report = assert_good_recording(&rec, 3000);
        assert_eq!(report.width, Some(640));
    }
    for d in [&a, &b, &c] {
        let d = antenne.get_destination(&Antenne::id_of(d))?;
        assert!(d["status"]["bytes_sent"].as_u64() > Some(100_000), "{d}");
        assert!(d["status"]["bitrate_kbps"].as_f64() > Some(100.0), "{d}");
        assert!(d["status"]["connected_since"].is_string(), "{d}");
        assert_eq!(d["key"], "platfor…56", "masked key: {d}");
    }
    // Secrets never in the log.
    let log = antenne.log();
    for secret in [KEY, "platform_key_a_123456", "platform_key_c_123456"] {
        assert!(!log.contains(secret), "{secret} leaked into the log");
    }
    Ok(())
}

#[test]
fn toggling_adding_and_deleting_leave_the_others_untouched() -> Result<()> {
    let nginx = Nginx::start()?;
    let antenne = Antenne::start(KEY)?;
    let ids: Vec<String> = ["s1", "s2", "s3"]
        .iter()
        .map(|s| {
            antenne
                .add_destination(s, &nginx.url(), s, true)
                .map(|d| Antenne::id_of(&d))
        })
        .collect::<Result<_>>()?;
    let _publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    for id in &ids {
        live_within(&antenne, id);
    }
    std::thread::sleep(Duration::from_secs(2));

    // Disable s2: it stops at once.
    let d = antenne.patch_destination(&ids[1], &json!({"enabled": false}))?;
    assert_eq!(d["status"]["state"], "disabled", "{d}");
    assert_eq!(d["enabled"], false);
    // nginx names recordings by the second: re-enable in another second.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(nginx.publish_count("s2"), 1);

    // Re-enable s2: it gets a keyframe at once, from the GOP cache.
    let before = nginx.recordings("s2").len();
    let t0 = Instant::now();
    antenne.patch_destination(&ids[1], &json!({"enabled": true}))?;
    let got = wait_until(Duration::from_secs(5), || {
        let recs = nginx.recordings("s2");
        recs.len() > before
            && recs
                .last()
                .and_then(|p| p.metadata().ok())
                .is_some_and(|m| m.len() > 8_000)
    });
    let first_keyframe_after = t0.elapsed();
    assert!(got, "re-enabled destination receives data");
    println!("re-enabled destination: first keyframe bytes after {first_keyframe_after:?}");
    assert!(
        first_keyframe_after < Duration::from_secs(1),
        "first keyframe within 1 s, took {first_keyframe_after:?}"
    );
    live_within(&antenne, &ids[1]);

    // Add s4, then delete it.
    let d4 = antenne.add_destination("s4", &nginx.url(), "s4", true)?;
    let id4 = Antenne::id_of(&d4);
    live_within(&antenne, &id4);
    std::thread::sleep(Duration::from_secs(2));
    antenne.delete_destination(&id4)?;
    let (status, _) = antenne.request("GET", &format!("/api/v1/destinations/{id4}"), None)?;
    assert_eq!(status, 404);

    std::thread::sleep(Duration::from_secs(2));
    // The re-enabled one and the added one got a good stream from a keyframe.
    let s2 = nginx.latest_recording("s2").expect("s2 recorded again");
    assert_good_recording(&s2, 1000);
    let s4 = nginx.latest_recording("s4").expect("s4 recorded");
    assert_good_recording(&s4, 1000);
    assert_eq!(nginx.publish_count("s2"), 2);
    // The untouched ones never noticed.
    assert_undisturbed(&antenne, &ids[0], &nginx, "s1");
    assert_undisturbed(&antenne, &ids[2], &nginx, "s3");
    Ok(())
}

#[test]
fn a_refused_destination_retries_with_backoff_and_recovers_by_itself() -> Result<()> {
    let healthy = Nginx::start()?;
    let antenne = Antenne::start(KEY)?;
    let port = free_port();
    let ok = antenne.add_destination("ok", &healthy.url(), "ok", true)?;
    let bad = antenne.add_destination(
        "down",
        &format!("rtmp://127.0.0.1:{port}/live"),
        "down",
        true,
    )?;
    let bad_id = Antenne::id_of(&bad);
    let _publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    live_within(&antenne, &Antenne::id_of(&ok));

    let d = antenne.wait_for_state(&bad_id, "retrying", Duration::from_secs(10))?;
    let error = d["status"]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(error.contains("refused"), "clear error: {d}");
    assert!(d["status"]["next_retry_at"].is_string(), "{d}");
    // Backoff grows: after ~4 s there have been at most a handful of tries.
    std::thread::sleep(Duration::from_secs(4));
    let d = antenne.get_destination(&bad_id)?;
    let attempt = d["status"]["attempt"].as_u64().unwrap_or(0);
    assert!(
        (2..=4).contains(&attempt),
        "1 s, 2 s, 4 s…: attempt {attempt}: {d}"
    );

    // The platform comes back on that port: the destination recovers.
    let receiver = Nginx::start_on(port)?;
    live_within(&antenne, &bad_id);
    std::thread::sleep(Duration::from_secs(2));
    assert_good_recording(&receiver.latest_recording("down").expect("recorded"), 1000);
    assert_undisturbed(&antenne, &Antenne::id_of(&ok), &healthy, "ok");
    Ok(())
}

#[test]
fn a_receiver_killed_mid_stream_comes_back_and_antenne_reconnects() -> Result<()> {
    let mut flaky = Nginx::start()?;
    let healthy = Nginx::start()?;
    let antenne = Antenne::start(KEY)?;
    let f = antenne.add_destination("flaky", &flaky.url(), "flaky", true)?;
    let h = antenne.add_destination("healthy", &healthy.url(), "healthy", true)?;
    let _publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    let fid = Antenne::id_of(&f);
    live_within(&antenne, &fid);
    live_within(&antenne, &Antenne::id_of(&h));
    std::thread::sleep(Duration::from_secs(2));

    flaky.kill();
    let d = antenne.wait_for_state(&fid, "retrying", Duration::from_secs(15))?;
    assert!(d["status"]["last_error"].is_string(), "{d}");
    std::thread::sleep(Duration::from_millis(1200));
    flaky.restart()?;
    let d = antenne.wait_for_state(&fid, "live", Duration::from_secs(40))?;
    assert!(d["status"]["reconnects"].as_u64() >= Some(1), "{d}");
    std::thread::sleep(Duration::from_secs(2));
    let rec = flaky
        .latest_recording("flaky")
        .expect("recorded after restart");
    assert_good_recording(&rec, 1000);
    assert_undisturbed(&antenne, &Antenne::id_of(&h), &healthy, "healthy");
    Ok(())
}

#[test]
fn publisher_back_within_the_grace_period_keeps_connections_and_time() -> Result<()> {
    let nginx = Nginx::start()?;
    let antenne = Antenne::options()
        .ingest_key(KEY)
        .grace_period_secs(20)
        .start()?;
    let d = antenne.add_destination("d", &nginx.url(), "d", true)?;
    let id = Antenne::id_of(&d);
    let mut publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    live_within(&antenne, &id);
    std::thread::sleep(Duration::from_secs(3));
    publisher.kill();
    wait_until(Duration::from_secs(10), || {
        antenne
            .ingest()
            .is_ok_and(|i| i["ingests"][0]["live"] == false)
    });
    std::thread::sleep(Duration::from_secs(2));
    let d = antenne.get_destination(&id)?;
    assert_eq!(d["status"]["state"], "live", "connection kept: {d}");
    let _publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    std::thread::sleep(Duration::from_secs(4));

    let d = antenne.get_destination(&id)?;
    assert_eq!(d["status"]["reconnects"], 0, "{d}");
    assert_eq!(
        nginx.publish_count("d"),
        1,
        "the platform saw one connection"
    );
    let rec = nginx.latest_recording("d").expect("recorded");
    let report = assert_good_recording(&rec, 5000);
    // Both sessions are in the one recording, with time going forward
    // across the gap (about the 2+ s the publisher was away).
    let gap = report.max_video_gap_ms();
    assert!(
        (1000..15_000).contains(&gap),
        "one gap for the reconnect: {}",
        report.summary()
    );
    Ok(())
}

#[test]
fn publisher_gone_past_the_grace_period_closes_cleanly_then_resumes() -> Result<()> {
    let nginx = Nginx::start()?;
    let antenne = Antenne::options()
        .ingest_key(KEY)
        .grace_period_secs(2)
        .start()?;
    let d = antenne.add_destination("d", &nginx.url(), "d", true)?;
    let id = Antenne::id_of(&d);
    let mut publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    live_within(&antenne, &id);
    std::thread::sleep(Duration::from_secs(2));
    publisher.kill();
    antenne.wait_for_state(&id, "idle", Duration::from_secs(10))?;
    // nginx saw the stream end (FCUnpublish / deleteStream).
    assert!(
        wait_until(Duration::from_secs(5), || nginx
            .error_log()
            .contains("deleteStream")),
        "clean close: {}",
        nginx.error_log()
    );
    let _publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    live_within(&antenne, &id);
    nginx.wait_for_publish_count("d", 2, Duration::from_secs(5))?;
    std::thread::sleep(Duration::from_secs(2));
    assert_good_recording(&nginx.latest_recording("d").expect("recorded"), 1000);
    Ok(())
}

#[test]
fn wrong_ingest_key_and_second_publisher_are_refused() -> Result<()> {
    let antenne = Antenne::start(KEY)?;
    let wrong_key = "wrong_key_abcdefghijkl";
    let mut intruder = Publisher::start(&antenne.ingest_url(wrong_key))?;
    let status = intruder.wait(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| !s.success()),
        "ffmpeg refused: {}",
        intruder.log()
    );
    assert!(
        wait_until(Duration::from_secs(3), || antenne
            .log()
            .contains("wrong stream key")),
        "log line: {}",
        antenne.log()
    );
    assert!(
        !antenne.log().contains(wrong_key),
        "keys are masked in logs"
    );
    assert_eq!(antenne.ingest()?["ingests"][0]["live"], false);

    let _first = Publisher::start(&antenne.ingest_url(KEY))?;
    assert!(wait_until(Duration::from_secs(10), || antenne
        .ingest()
        .is_ok_and(|i| i["ingests"][0]["live"] == true)));
    let mut second = Publisher::start(&antenne.ingest_url(KEY))?;
    let status = second.wait(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| !s.success()),
        "second publisher refused"
    );
    assert!(antenne.log().contains("already live"), "{}", antenne.log());
    Ok(())
}

/// An RTMP receiver that accepts a publish like a platform, then reads
/// `bytes_per_tick` every 100 ms with a tiny receive buffer: a congested
/// or throttled platform.
struct SlowSink {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SlowSink {
    fn start(bytes_per_tick: usize) -> Result<SlowSink> {
        use antenne_rtmp::{ServerConfig, ServerEvent, ServerSession};
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let small: libc::c_int = 64 * 1024;
        // SAFETY-free: setsockopt through libc on our own listener.
        let rc = unsafe {
            libc::setsockopt(
                listener.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                &small as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "SO_RCVBUF");
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut sock = loop {
                if flag.load(Ordering::Relaxed) {
                    return;
                }
                match listener.accept() {
                    Ok((s, _)) => break s,
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            };
            let _ = sock.set_nonblocking(false);
            let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
            let mut session = ServerSession::new(ServerConfig::default(), [1; 1536]);
            let mut buf = vec![0u8; 65536];
            let mut published = false;
            while !flag.load(Ordering::Relaxed) {
                if published && bytes_per_tick == 0 {
                    // A black hole: connected, reads nothing.
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                let want = if published { bytes_per_tick } else { buf.len() };
                let n = match sock.read(&mut buf[..want]) {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(_) => continue,
                };
                if session.feed(&buf[..n]).is_err() {
                    return;
                }
                loop {
                    while let Some(ev) = session.poll_event() {
                        match ev {
                            ServerEvent::ConnectRequested { .. } => session.accept_connect(),
                            ServerEvent::PublishRequested { .. } => {
                                session.accept_publish();
                                published = true;
                            }
                            _ => {}
                        }
                    }
                    if let Some(out) = session.take_output() {
                        let _ = sock.write_all(&out);
                    }
                    if session.resume().is_err() {
                        return;
                    }
                    if !session.has_events() {
                        break;
                    }
                }
                if published {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
        Ok(SlowSink {
            port,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for SlowSink {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_very_slow_receiver_skips_frames_without_disturbing_the_others() -> Result<()> {
    let nginx = Nginx::start()?;
    // 16 KB every 100 ms: about 1.3 Mbit/s for a 3 Mbit/s stream. (Far
    // slower and the socket makes no progress for whole stall periods,
    // since Linux wakes a writer only once half its send buffer drained:
    // then the stall watchdog reconnects it, which is another test.)
    let sink = SlowSink::start(16 * 1024)?;
    let antenne = Antenne::options()
        .ingest_key(KEY)
        .arg("--max-lag-ms")
        .arg("1500")
        .start()?;
    let ids: Vec<String> = ["h1", "h2", "h3"]
        .iter()
        .map(|s| {
            antenne
                .add_destination(s, &nginx.url(), s, true)
                .map(|d| Antenne::id_of(&d))
        })
        .collect::<Result<_>>()?;
    let slow = antenne.add_destination(
        "slow",
        &format!("rtmp://127.0.0.1:{}/live", sink.port),
        "slow",
        true,
    )?;
    let slow_id = Antenne::id_of(&slow);
    let _publisher = Publisher::options()
        .video_kbps(3000)
        .start(&antenne.ingest_url(KEY))?;
    for id in ids.iter().chain([&slow_id]) {
        live_within(&antenne, id);
    }
    std::thread::sleep(Duration::from_secs(3));
    let rss_start = antenne.rss_kib()?;
    std::thread::sleep(Duration::from_secs(12));
    let rss_end = antenne.rss_kib()?;
    let d = antenne.get_destination(&slow_id)?;
    println!("slow destination after 15 s: {d}; antenne RSS {rss_start} KiB -> {rss_end} KiB");
    assert!(
        d["status"]["dropped_frames"].as_u64() > Some(0),
        "the slow one skips: {d}"
    );
    // What is queued is bounded by the lag limit (1.5 s of a 3 Mbit/s
    // stream is under 1 MiB): memory does not keep growing.
    assert!(
        rss_end < rss_start + 16 * 1024,
        "memory bounded: {rss_start} KiB -> {rss_end} KiB"
    );
    for (id, s) in ids.iter().zip(["h1", "h2", "h3"]) {
        assert_undisturbed(&antenne, id, &nginx, s);
    }
    Ok(())
}

#[test]
fn a_receiver_that_stops_reading_is_detected_as_stalled_and_retried() -> Result<()> {
    let nginx = Nginx::start()?;
    let sink = SlowSink::start(0)?;
    let antenne = Antenne::options()
        .ingest_key(KEY)
        .stall_timeout_secs(2)
        .start()?;
    let ok = antenne.add_destination("ok", &nginx.url(), "ok", true)?;
    let hole = antenne.add_destination(
        "hole",
        &format!("rtmp://127.0.0.1:{}/live", sink.port),
        "hole",
        true,
    )?;
    let _publisher = Publisher::options()
        .video_kbps(3000)
        .start(&antenne.ingest_url(KEY))?;
    live_within(&antenne, &Antenne::id_of(&ok));
    let d = antenne.wait_for_state(&Antenne::id_of(&hole), "retrying", Duration::from_secs(30))?;
    let error = d["status"]["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("stalled"), "clear error: {d}");
    assert_undisturbed(&antenne, &Antenne::id_of(&ok), &nginx, "ok");
    Ok(())
}

#[test]
fn a_platform_that_refuses_the_key_puts_the_destination_in_rejected() -> Result<()> {
    let nginx = Nginx::start()?;
    let antenne = Antenne::start(KEY)?;
    // nginx-rtmp refuses a second publisher on a stream name that is live:
    // the second destination is refused with NetStream.Publish.BadName.
    let first = antenne.add_destination("first", &nginx.url(), "same", true)?;
    let _publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    live_within(&antenne, &Antenne::id_of(&first));
    let second = antenne.add_destination("second", &nginx.url(), "same", true)?;
    let d = antenne.wait_for_state(
        &Antenne::id_of(&second),
        "rejected",
        Duration::from_secs(15),
    )?;
    let error = d["status"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("NetStream.Publish.BadName"),
        "platform's message shown: {d}"
    );
    assert!(d["status"]["next_retry_at"].is_string(), "{d}");
    let d = antenne.get_destination(&Antenne::id_of(&first))?;
    assert_eq!(
        d["status"]["state"], "live",
        "the first one is untouched: {d}"
    );
    Ok(())
}

/// Raw bytes to the ingest port, as an attacker would send them.
fn send_raw(port: u16, bytes: &[u8]) -> std::io::Result<bool> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    // The peer may close while we write: that is the expected outcome.
    let _ = s.write_all(bytes);
    let mut buf = [0u8; 65536];
    // Closed by antenne (EOF or reset) within the timeout.
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return Ok(false)
            }
            Err(_) => return Ok(true),
        }
    }
}

fn handshake_then(chunks: &[u8]) -> Vec<u8> {
    let mut v = vec![3u8];
    v.extend_from_slice(&[0u8; 1536]); // C1
    v.extend_from_slice(&[0u8; 1536]); // C2
    v.extend_from_slice(chunks);
    v
}

#[test]
fn hostile_input_on_the_ingest_closes_that_connection_and_nothing_else() -> Result<()> {
    use antenne_rtmp::chunk::ChunkEncoder;
    let nginx = Nginx::start()?;
    let antenne = Antenne::start(KEY)?;
    let d = antenne.add_destination("d", &nginx.url(), "d", true)?;
    let _publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    live_within(&antenne, &Antenne::id_of(&d));
    let port = antenne.rtmp_port();

    let mut enc = ChunkEncoder::new();
    let chunk = |enc: &mut ChunkEncoder, csid: u32, type_id: u8, body: &[u8]| {
        let mut out = bytes::BytesMut::new();
        enc.encode_into(csid, 0, type_id, 0, body, &mut out);
        out.to_vec()
    };
    // A 16 MiB message announced in a chunk header.
    let huge = handshake_then(&[0x03, 0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0]);
    // Chunk size 0 and 2^31.
    let zero = handshake_then(&chunk(&mut enc, 2, 1, &0u32.to_be_bytes()));
    let big = handshake_then(&chunk(&mut enc, 2, 1, &0x8000_0000u32.to_be_bytes()));
    // 100,000 chunk stream ids.
    let mut many = Vec::new();
    for csid in 64..100_064u32 {
        many.extend(chunk(&mut enc, csid.min(65_599), 8, &[0xaf, 1]));
    }
    let many = handshake_then(&many);
    // A `connect` whose command object nests 100,000 strict arrays.
    let mut nested = vec![0x02, 0, 7];
    nested.extend_from_slice(b"connect");
    nested.extend_from_slice(&[0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
    for _ in 0..100_000 {
        nested.extend_from_slice(&[0x0a, 0, 0, 0, 1]);
    }
    let mut enc_big = ChunkEncoder::new();
    enc_big.set_chunk_size(1 << 20);
    let mut set = chunk(&mut enc, 2, 1, &(1u32 << 20).to_be_bytes());
    let mut body = bytes::BytesMut::new();
    enc_big.encode_into(3, 0, 20, 0, &nested, &mut body);
    set.extend_from_slice(&body);
    let nested = handshake_then(&set);
    // Garbage from the first byte (version 0x47: "GET / HTTP/1.1").
    let garbage = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(200);

    for (what, bytes) in [
        ("16 MiB message", huge),
        ("chunk size 0", zero),
        ("chunk size 2^31", big),
        ("100,000 chunk streams", many),
        ("nested AMF0 connect", nested),
        ("HTTP garbage", garbage),
    ] {
        let closed = send_raw(port, &bytes)?;
        assert!(closed, "{what}: connection closed by antenne");
    }
    assert!(
        wait_until(Duration::from_secs(3), || {
            let log = antenne.log();
            [
                "exceeds the limit",
                "invalid chunk size",
                "chunk streams",
                "nesting deeper",
                "version",
            ]
            .iter()
            .all(|l| log.contains(l))
        }),
        "a log line for each: {}",
        antenne.log()
    );
    // antenne still serves: the API answers and the relay never stopped.
    assert_eq!(antenne.health()?, 200);
    std::thread::sleep(Duration::from_secs(1));
    assert_undisturbed(&antenne, &Antenne::id_of(&d), &nginx, "d");
    Ok(())
}
