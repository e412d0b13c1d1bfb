//! End-to-end relay tests with real peers on 127.0.0.1: ffmpeg publishes to
//! antenne, nginx-rtmp receives and records (through stunnel for RTMPS),
//! ffprobe checks what arrived. What happens when a destination, the
//! publisher or the disk misbehaves is in faults.rs.

mod support;

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;
use support::*;

const KEY: &str = "test_ingest_key_0123456789";

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

#[test]
fn without_a_gop_cache_a_destination_switched_on_while_live_starts_on_the_next_keyframe(
) -> Result<()> {
    let nginx = Nginx::start()?;
    let antenne = Antenne::options()
        .ingest_key(KEY)
        .arg("--no-gop-cache")
        .start()?;
    let _publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    assert!(
        wait_until(Duration::from_secs(15), || antenne
            .ingest()
            .is_ok_and(|i| i["ingests"][0]["live"] == true)),
        "the publisher goes live"
    );
    // Switched on mid-stream: no cached GOP to start on, so it waits for
    // the publisher's next keyframe and starts there.
    std::thread::sleep(Duration::from_millis(700));
    let d = antenne.add_destination("late", &nginx.url(), "platform_key_late_1", true)?;
    live_within(&antenne, &Antenne::id_of(&d));
    nginx.wait_for_recording("platform_key_late_1", 200_000, Duration::from_secs(20))?;
    std::thread::sleep(Duration::from_secs(2));
    let rec = nginx
        .latest_recording("platform_key_late_1")
        .expect("a recording");
    assert_good_recording(&rec, 1000);
    Ok(())
}

/// antenne's threads: name and time spent running (ns, schedstat).
fn threads(antenne: &Antenne) -> Vec<(String, u64)> {
    let pid = antenne.pid().expect("antenne runs");
    let read = |t: &std::path::Path, f: &str| std::fs::read_to_string(t.join(f)).ok();
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|t| {
                    let name = read(&t.path(), "comm")?.trim().to_owned();
                    let ran = read(&t.path(), "schedstat")?
                        .split_whitespace()
                        .next()?
                        .parse()
                        .ok()?;
                    Some((name, ran))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Time the relay thread has run, in ns.
fn lane_ran(antenne: &Antenne) -> Option<u64> {
    let t = threads(antenne);
    t.iter()
        .find(|(n, _)| n == "relay-lane-1")
        .map(|(_, ran)| *ran)
}

#[test]
fn destinations_past_the_threshold_run_on_a_relay_thread_and_arrive_intact() -> Result<()> {
    let nginx = Nginx::start()?;
    // One destination on the worker thread, the next ones spread over it
    // and one relay thread.
    let antenne = Antenne::options()
        .ingest_key(KEY)
        .arg("--relay-threads")
        .arg("1")
        .arg("--relay-threads-after")
        .arg("1")
        .start()?;
    let idle = lane_ran(&antenne);
    assert!(
        idle.is_some(),
        "the relay thread exists: {:?}",
        threads(&antenne)
    );
    let streams = [
        "platform_key_lane_0",
        "platform_key_lane_1",
        "platform_key_lane_2",
    ];
    let mut ids = Vec::new();
    for (i, stream) in streams.iter().enumerate() {
        let d = antenne.add_destination(&format!("D{i}"), &nginx.url(), stream, true)?;
        ids.push(Antenne::id_of(&d));
    }
    let _publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    for id in &ids {
        live_within(&antenne, id);
    }
    let before = lane_ran(&antenne).unwrap_or_default();
    std::thread::sleep(Duration::from_secs(4));
    for (id, stream) in ids.iter().zip(streams) {
        assert_undisturbed(&antenne, id, &nginx, stream);
    }
    // A thread with nothing to do does not run; this one relayed.
    let ran = lane_ran(&antenne).unwrap_or_default() - before;
    assert!(ran > 500_000, "the relay thread ran {ran} ns in 4 s");
    Ok(())
}
