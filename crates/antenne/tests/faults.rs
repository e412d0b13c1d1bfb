//! The fault matrix: one fault at a time, with three healthy destinations
//! live next to the faulty one, all on 127.0.0.1 with real peers.
//!
//! For each fault a test checks what a user would: the healthy
//! destinations lose no frame and never reconnect, the faulty one reaches
//! the right state with a clear error in the API, antenne's memory stays
//! bounded, and once the fault is removed the destination recovers by
//! itself. The harness ([`Matrix`]) is `support/fault_matrix.rs`.
//!
//! A test that cannot set up its fault (no root for `chattr`, a tmpfs mount
//! or a private `/etc/hosts`) fails saying so: CI runs as root.

mod support;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;
use support::fault_matrix::*;
use support::*;

// === 1. connection refused ===

#[test]
fn refused_destination_retries_with_backoff_and_recovers_by_itself() -> Result<()> {
    let port = free_port();
    let url = format!("rtmp://127.0.0.1:{port}/live");
    let m = Matrix::start("refused", opts(), &[("refused", &url, "faulty")])?;
    let d = m.wait_faulty(0, "retrying", Duration::from_secs(10));
    let error = Matrix::error_of(&d);
    assert!(
        error.contains(&format!("connection refused by 127.0.0.1:{port}")),
        "clear error: {d}"
    );
    assert!(d["status"]["next_retry_at"].is_string(), "{d}");
    // Backoff: 1 s, 2 s, 4 s… so a handful of attempts in the first
    // seconds, not a busy loop.
    std::thread::sleep(Duration::from_secs(3));
    let d = m.dest(&m.faulty[0]);
    let attempt = d["status"]["attempt"].as_u64().unwrap_or(0);
    let since_publish = m.live_at.elapsed().as_secs_f64() + 1.0;
    println!("[refused] attempt {attempt} about {since_publish:.1} s after the publisher started");
    assert!(
        (2..=5).contains(&attempt),
        "backoff: attempt {attempt}: {d}"
    );

    // The platform comes back on that port.
    let receiver = Nginx::start_on(port)?;
    m.assert_recovered(&m.faulty[0], &receiver, "faulty");
    m.assert_healthy_untouched();
    m.assert_memory_bounded();
    m.finish();
    Ok(())
}

// === 2. connection reset mid-stream ===

#[test]
fn a_connection_reset_mid_stream_is_retried_and_recovers() -> Result<()> {
    let receiver = Nginx::start()?;
    let proxy = FaultProxy::start(receiver.port(), Fault::None)?;
    let m = Matrix::start("reset", opts(), &[("reset", &proxy.url(), "faulty")])?;
    m.antenne
        .wait_for_state(&m.faulty[0], "live", Duration::from_secs(15))?;
    std::thread::sleep(Duration::from_secs(1));
    proxy.set(Fault::Reset);
    let d = m.wait_faulty(0, "retrying", Duration::from_secs(15));
    let error = Matrix::error_of(&d);
    assert!(
        error.contains("connection lost") && error.contains("reset"),
        "clear error: {d}"
    );
    assert!(d["status"]["reconnects"].as_u64() >= Some(1), "{d}");
    // Reset again on the next attempt(s) for a while.
    std::thread::sleep(Duration::from_secs(2));
    proxy.set(Fault::None);
    m.assert_recovered(&m.faulty[0], &receiver, "faulty");
    m.assert_healthy_untouched();
    m.assert_memory_bounded();
    m.finish();
    Ok(())
}

// === 3. black hole ===

#[test]
fn a_black_hole_is_detected_by_the_stall_watchdog_and_recovers() -> Result<()> {
    let receiver = Nginx::start()?;
    let proxy = FaultProxy::start(receiver.port(), Fault::None)?;
    let m = Matrix::start(
        "black hole",
        opts().stall_timeout_secs(2),
        &[("hole", &proxy.url(), "faulty")],
    )?;
    m.antenne
        .wait_for_state(&m.faulty[0], "live", Duration::from_secs(15))?;
    std::thread::sleep(Duration::from_secs(1));
    let t = Instant::now();
    proxy.set(Fault::BlackHole);
    let d = m.wait_faulty(0, "retrying", Duration::from_secs(30));
    println!(
        "[black hole] stall detected {:.1} s after the receiver stopped reading",
        t.elapsed().as_secs_f64()
    );
    let error = Matrix::error_of(&d);
    assert!(
        error.contains("stalled") && error.contains("2 s"),
        "clear error: {d}"
    );
    m.assert_memory_bounded();
    proxy.set(Fault::None);
    m.assert_recovered(&m.faulty[0], &receiver, "faulty");
    m.assert_healthy_untouched();
    m.assert_memory_bounded();
    m.finish();
    Ok(())
}

// === 4. very slow reader ===

#[test]
fn a_slow_reader_skips_frames_then_a_few_kbit_s_stalls_and_both_recover() -> Result<()> {
    let receiver = Nginx::start()?;
    let proxy = FaultProxy::start(receiver.port(), Fault::None)?;
    let m = Matrix::start(
        "slow",
        opts().stall_timeout_secs(6).arg("--max-lag-ms").arg("1500"),
        &[("slow", &proxy.url(), "faulty")],
    )?;
    let id = m.faulty[0].clone();
    m.antenne
        .wait_for_state(&id, "live", Duration::from_secs(15))?;

    // About a third of the stream's rate: it keeps up by skipping to
    // keyframes, and stays connected.
    proxy.set(Fault::Slow {
        bytes_per_sec: 128 * 1024,
    });
    let t = Instant::now();
    let skipped = wait_for(Duration::from_secs(25), || {
        let d = m.dest(&id);
        (d["status"]["dropped_frames"].as_u64() > Some(0)).then_some(d)
    });
    let d = skipped.unwrap_or_else(|| panic!("the slow one skips frames: {}", m.dest(&id)));
    println!(
        "[slow] 1 Mbit/s reader: first frames skipped after {:.1} s: {}",
        t.elapsed().as_secs_f64(),
        d["status"]
    );
    assert_eq!(d["status"]["state"], "live", "still connected: {d}");
    assert_eq!(d["status"]["reconnects"], 0, "{d}");
    m.assert_memory_bounded();

    // A few kbit/s: the socket accepts nothing for whole stall periods.
    proxy.set(Fault::Slow { bytes_per_sec: 500 });
    let t = Instant::now();
    let d = m.wait_faulty(0, "retrying", Duration::from_secs(40));
    println!(
        "[slow] 4 kbit/s reader: given up after {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let error = Matrix::error_of(&d);
    assert!(error.contains("stalled"), "clear error: {d}");
    m.assert_memory_bounded();

    proxy.set(Fault::None);
    m.assert_recovered(&id, &receiver, "faulty");
    m.assert_healthy_untouched();
    m.assert_memory_bounded();
    m.finish();
    Ok(())
}

// === 5. TLS failures ===

#[test]
fn tls_failures_say_why_and_recover_once_the_certificate_is_fixed() -> Result<()> {
    let pki_dir = tempfile::tempdir()?;
    let pki = make_test_pki(pki_dir.path())?;
    let receiver = Nginx::start()?;
    let cases = [
        (
            CertKind::UnknownCa,
            "unknown_ca",
            "not signed by a trusted authority",
        ),
        (
            CertKind::Expired,
            "expired",
            "has expired (valid until 2024-02-01)",
        ),
        (
            CertKind::WrongName,
            "wrong_name",
            "not valid for this host name (it is for wrong.example)",
        ),
    ];
    let mut tunnels = Vec::new();
    for (kind, _, _) in &cases {
        let (cert, key) = pki.cert(*kind);
        tunnels.push(Stunnel::start_with(
            receiver.port(),
            cert,
            key,
            &pki.ca_cert,
        )?);
    }
    let urls: Vec<String> = tunnels.iter().map(Stunnel::url).collect();
    let faulty: Vec<(&str, &str, &str)> = cases
        .iter()
        .zip(&urls)
        .map(|((_, stream, _), url)| (*stream, url.as_str(), *stream))
        .collect();
    let m = Matrix::start("tls", opts().extra_ca_file(&pki.ca_cert), &faulty)?;
    for (i, (_, stream, expected)) in cases.iter().enumerate() {
        let d = m.wait_faulty(i, "retrying", Duration::from_secs(15));
        let error = Matrix::error_of(&d);
        assert!(
            error.contains("TLS with localhost failed") && error.contains(expected),
            "{stream}: clear error: {d}"
        );
    }
    m.assert_memory_bounded();
    // Each server gets a good certificate, on the same port.
    let (good, key) = pki.cert(CertKind::Good);
    let tunnels: Vec<Stunnel> = tunnels
        .into_iter()
        .map(|t| t.restart_with(good, key))
        .collect::<Result<_>>()?;
    for (i, (_, stream, _)) in cases.iter().enumerate() {
        m.assert_recovered(&m.faulty[i], &receiver, stream);
    }
    m.assert_healthy_untouched();
    m.assert_memory_bounded();
    drop(tunnels);
    m.finish();
    Ok(())
}

// === 6. a name that does not resolve ===

#[test]
fn a_name_that_does_not_resolve_says_so_and_recovers_when_it_does() -> Result<()> {
    let receiver = Nginx::start()?;
    let dir = tempfile::tempdir()?;
    let hosts = dir.path().join("hosts");
    std::fs::copy("/etc/hosts", &hosts)?;
    // RFC 6761: `.invalid` never resolves, anywhere.
    let url = format!("rtmp://comeback.invalid:{}/live", receiver.port());
    // Both halves or a failure: the recovery needs antenne's own view of
    // /etc/hosts.
    require_private_hosts()?;
    let m = Matrix::start("dns", opts().hosts_file(&hosts), &[("dns", &url, "faulty")])?;
    let d = m.wait_faulty(0, "retrying", Duration::from_secs(15));
    let error = Matrix::error_of(&d);
    assert!(
        error.contains("cannot resolve host comeback.invalid"),
        "clear error: {d}"
    );
    m.assert_memory_bounded();
    // The name comes to resolve (in antenne's own view of /etc/hosts;
    // written in place: the bind mount holds this file).
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(&hosts)?;
    writeln!(f, "127.0.0.1 comeback.invalid")?;
    drop(f);
    m.assert_recovered(&m.faulty[0], &receiver, "faulty");
    m.assert_healthy_untouched();
    m.assert_memory_bounded();
    m.finish();
    Ok(())
}

// === 7. the platform refuses the key ===

#[test]
fn a_refused_key_shows_the_platforms_message_and_retries_slowly() -> Result<()> {
    let receiver = Nginx::start()?;
    let proxy = FaultProxy::start(receiver.port(), Fault::RejectKey)?;
    let m = Matrix::start("rejected", opts(), &[("rejected", &proxy.url(), "bad_key")])?;
    let d = m.wait_faulty(0, "rejected", Duration::from_secs(15));
    let error = Matrix::error_of(&d);
    assert!(
        error.contains("NetStream.Publish.BadName")
            && error.contains(support::fault_proxy::REJECT_DESCRIPTION),
        "the platform's message: {d}"
    );
    let next = d["status"]["next_retry_at"]
        .as_str()
        .and_then(api_time_secs)
        .unwrap_or_else(|| panic!("next_retry_at: {d}"));
    let wait = next - now_secs();
    assert!(
        (120..=200).contains(&wait),
        "a refused key is retried in minutes, not seconds: {wait} s: {d}"
    );
    let tries = proxy.accepted();
    std::thread::sleep(Duration::from_secs(4));
    let d = m.dest(&m.faulty[0]);
    assert_eq!(d["status"]["state"], "rejected", "{d}");
    assert_eq!(
        proxy.accepted(),
        tries,
        "no retry within seconds (a refused key is retried every few minutes)"
    );
    println!(
        "[rejected] {} connection(s) in {:.1} s, next try in {wait} s",
        proxy.accepted(),
        m.live_at.elapsed().as_secs_f64(),
    );
    m.assert_memory_bounded();
    // The user pastes the right key: it goes live at once, without waiting
    // for the slow retry.
    proxy.set(Fault::None);
    m.antenne
        .patch_destination(&m.faulty[0], &json!({"key": "good_key"}))?;
    m.assert_recovered(&m.faulty[0], &receiver, "good_key");
    m.assert_healthy_untouched();
    m.assert_memory_bounded();
    m.finish();
    Ok(())
}

// === 8. a receiver that never answers `connect` ===

#[test]
fn a_server_that_never_answers_connect_times_out_clearly_and_recovers() -> Result<()> {
    let receiver = Nginx::start()?;
    let proxy = FaultProxy::start(receiver.port(), Fault::HandshakeOnly)?;
    let m = Matrix::start("no connect", opts(), &[("mute", &proxy.url(), "faulty")])?;
    let d = m.wait_faulty(0, "retrying", Duration::from_secs(30));
    let error = Matrix::error_of(&d);
    assert!(
        error.contains("timed out after") && error.contains("connect and publish"),
        "clear error: {d}"
    );
    m.assert_memory_bounded();
    proxy.set(Fault::None);
    m.assert_recovered(&m.faulty[0], &receiver, "faulty");
    m.assert_healthy_untouched();
    m.assert_memory_bounded();
    m.finish();
    Ok(())
}

// === 9. publisher gone and back within the grace period ===

#[test]
fn publisher_back_within_the_grace_period_keeps_connections_and_time() -> Result<()> {
    // Without the standby picture: the recording must be exactly the two
    // clips (the standby case is tests/standby.rs).
    let mut m = Matrix::start(
        "grace kept",
        opts().grace_period_secs(20).arg("--no-standby"),
        &[],
    )?;
    // Another encoder setting on return: its own sequence headers.
    let second = clip(426, 240)?;
    std::thread::sleep(Duration::from_secs(1));
    if let Some(mut p) = m.publisher.take() {
        p.kill();
    }
    let t = Instant::now();
    assert!(wait_until(Duration::from_secs(10), || m
        .antenne
        .ingest()
        .is_ok_and(|i| i["ingests"][0]["live"] == false)));
    std::thread::sleep(Duration::from_secs(2));
    for h in &m.healthy {
        let d = m.dest(&h.id);
        assert_eq!(d["status"]["state"], "live", "connection kept: {d}");
    }
    m.publisher = Some(
        Publisher::options()
            .clip(second)
            .start(&m.antenne.ingest_url(KEY))?,
    );
    println!(
        "[grace kept] publisher away {:.1} s",
        t.elapsed().as_secs_f64()
    );
    assert!(wait_until(Duration::from_secs(10), || m
        .antenne
        .ingest()
        .is_ok_and(|i| i["ingests"][0]["width"] == 426)));
    std::thread::sleep(Duration::from_secs(3));

    for h in &m.healthy {
        let d = m.dest(&h.id);
        let what = format!("{}: {d}", h.stream);
        assert_eq!(d["status"]["state"], "live", "{what}");
        assert_eq!(d["status"]["reconnects"], 0, "{what}");
        assert_eq!(h.nginx.publish_count(h.stream), 1, "one connection: {what}");
        let recs = h.nginx.recordings(h.stream);
        assert_eq!(recs.len(), 1, "{what}: {recs:?}");
        let report = assert_good_recording(&recs[0], 0);
        let segments = match_clip(&report, &[m.clip, second])
            .unwrap_or_else(|e| panic!("{what}: recording differs from what was sent: {e}"));
        assert_eq!(segments.len(), 2, "{what}: before and after: {segments:?}");
        let (a, b) = (&segments[0], &segments[1]);
        assert_eq!(a.clip, 0, "{segments:?}");
        assert_eq!(
            (b.clip, b.clip_frame),
            (1, 0),
            "{what}: the returning publisher's stream from its first frame: {segments:?}"
        );
        let gap = b.first_dts_ms - a.last_dts_ms;
        assert!(
            (1000..15_000).contains(&gap),
            "{what}: time goes on across the gap ({gap} ms)"
        );
        // Fresh sequence headers: the second encoder's, sent before its
        // first frame.
        let headers = flv_video_headers(&recs[0])?;
        let fresh = headers
            .iter()
            .find(|(_, body)| body == &second.video_header)
            .unwrap_or_else(|| panic!("{what}: the new sequence header was not sent"));
        let frames_before = fresh.0 - headers.iter().filter(|(i, _)| *i < fresh.0).count();
        assert_eq!(
            frames_before, b.start,
            "{what}: the new header comes between the old frames and the new ones"
        );
        println!(
            "[grace kept] {}: {} + {} frames, {gap} ms gap, {} sequence header(s)",
            h.stream,
            a.frames,
            b.frames,
            headers.len()
        );
    }
    m.assert_memory_bounded();
    m.finish();
    Ok(())
}

// === 10. publisher gone past the grace period ===

#[test]
fn publisher_gone_past_the_grace_period_closes_cleanly_then_resumes() -> Result<()> {
    // Without the standby picture: each recording must be exactly the clip
    // (the standby case is tests/standby.rs).
    let mut m = Matrix::start(
        "grace over",
        opts().grace_period_secs(2).arg("--no-standby"),
        &[],
    )?;
    if let Some(mut p) = m.publisher.take() {
        p.kill();
    }
    let t = Instant::now();
    for h in &m.healthy {
        m.antenne
            .wait_for_state(&h.id, "idle", Duration::from_secs(15))?;
    }
    println!(
        "[grace over] idle {:.1} s after the publisher left",
        t.elapsed().as_secs_f64()
    );
    for h in &m.healthy {
        // nginx saw the stream end (FCUnpublish / deleteStream), not a drop.
        assert!(
            wait_until(Duration::from_secs(5), || h
                .nginx
                .error_log()
                .contains("deleteStream")),
            "clean close: {}",
            h.nginx.error_log()
        );
        let d = m.dest(&h.id);
        assert!(d["status"]["last_error"].is_null(), "not an error: {d}");
    }
    // nginx names recordings by the second.
    std::thread::sleep(Duration::from_millis(1100));
    m.publisher = Some(
        Publisher::options()
            .clip(m.clip)
            .start(&m.antenne.ingest_url(KEY))?,
    );
    for h in &m.healthy {
        m.antenne
            .wait_for_state(&h.id, "live", Duration::from_secs(15))?;
        h.nginx
            .wait_for_publish_count(h.stream, 2, Duration::from_secs(10))?;
    }
    std::thread::sleep(Duration::from_secs(2));
    for h in &m.healthy {
        let recs = h.nginx.recordings(h.stream);
        assert_eq!(recs.len(), 2, "{recs:?}");
        for rec in &recs {
            let report = assert_good_recording(rec, 0);
            let segments =
                match_clip(&report, &[m.clip]).unwrap_or_else(|e| panic!("{}: {e}", rec.display()));
            assert_eq!(segments.len(), 1, "{}: {segments:?}", rec.display());
        }
        let d = m.dest(&h.id);
        assert_eq!(
            d["status"]["reconnects"], 0,
            "a clean close is no failure: {d}"
        );
    }
    m.assert_memory_bounded();
    m.finish();
    Ok(())
}

// === 11. hostile input on the ingest ===

#[test]
fn hostile_input_on_the_ingest_closes_that_connection_and_nothing_else() -> Result<()> {
    let m = Matrix::start("hostile", opts(), &[])?;
    let port = m.antenne.rtmp_port();
    for (what, bytes, logged) in hostile_inputs() {
        let t = Instant::now();
        let (local, closed) = send_raw(port, &bytes)?;
        assert!(closed, "{what}: connection closed by antenne");
        let peer = format!("127.0.0.1:{local}");
        let line = wait_for(Duration::from_secs(3), || {
            m.antenne
                .log()
                .lines()
                .find(|l| l.contains(&peer) && l.contains("ingest connection closed"))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("{what}: no log line for {peer}: {}", m.antenne.log()));
        assert!(line.contains(logged), "{what}: says why: {line}");
        println!(
            "[hostile] {what}: closed in {} ms: {}",
            t.elapsed().as_millis(),
            line.trim()
        );
    }
    // antenne still serves: the API answers, the publisher is still the
    // one live, and the relay never stopped.
    assert_eq!(m.antenne.health()?, 200);
    let ingest = m.antenne.ingest()?;
    assert_eq!(ingest["ingests"][0]["live"], true, "{ingest}");
    std::thread::sleep(Duration::from_secs(1));
    m.assert_healthy_untouched();
    m.assert_memory_bounded();
    m.finish();
    Ok(())
}

// === 12. the data directory becomes read-only or full ===

#[test]
fn a_read_only_data_dir_refuses_changes_clearly_and_loses_nothing() -> Result<()> {
    // The database and its journal made immutable (chattr +i): every write
    // fails as on a read-only disk. (Tests run as root, which ignores
    // permissions; a mount cannot be remounted read-only while files on it
    // are open for writing; and tmpfs does not apply +i to open files, so
    // this runs on the usual disk.)
    let mut m = Matrix::start("read-only", opts(), &[])?;
    let spare = Antenne::id_of(&m.antenne.add_destination(
        "Spare",
        "rtmp://127.0.0.1:1/live",
        "spare_key",
        false,
    )?);
    let before = saved_state(&m.antenne);
    let data = m.antenne.data_dir();
    let db = data.join("antenne.db");
    let wal = data.join("antenne.db-wal");
    // No read-only disk, no test: a failure, not a pass.
    if let Err(e) = chattr("+i", &[&db, &wal]) {
        let _ = chattr("-i", &[&db, &wal]);
        return Err(e.context(
            "the read-only case needs `chattr +i` on the data dir (root, and a file system \
             with immutable flags such as ext4, xfs or btrfs)",
        ));
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_changes_refused(&m, &spare, "not writable (read-only", &before)
    }));
    chattr("-i", &[&db, &wal])?;
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    m.assert_healthy_untouched();
    m.assert_memory_bounded();
    m.rss.take();
    m.antenne.restart()?;
    assert_eq!(saved_state(&m.antenne), before, "same state after restart");
    assert!(!m.antenne.log().contains("damaged"), "{}", m.antenne.log());
    m.finish();
    Ok(())
}

#[test]
fn a_full_disk_refuses_changes_clearly_and_loses_nothing() -> Result<()> {
    // A small tmpfs as the data directory, filled up while antenne runs:
    // the real ENOSPC path, down to SQLite's own handling of it.
    // No tmpfs, no test: a failure, not a pass.
    let disk = Tmpfs::mount(8 * 1024)
        .context("the full-disk case needs a tmpfs mount (root, CAP_SYS_ADMIN)")?;
    let mut m = Matrix::start("full", opts().data_dir(disk.path()), &[])?;
    let spare = Antenne::id_of(&m.antenne.add_destination(
        "Spare",
        "rtmp://127.0.0.1:1/live",
        "spare_key",
        false,
    )?);
    let before = saved_state(&m.antenne);
    let filled = disk.fill()?;
    println!(
        "[full] disk filled with {} KiB, {} bytes left",
        filled / 1024,
        disk.available()
    );
    assert_changes_refused(&m, &spare, "the disk is full", &before);
    // Live streams do not depend on the disk.
    m.assert_healthy_untouched();
    m.assert_memory_bounded();
    m.rss.take();
    // A restart on the full disk: it starts, with the same state.
    m.antenne.restart()?;
    assert_eq!(saved_state(&m.antenne), before, "same state after restart");
    disk.free()?;
    m.antenne.restart()?;
    assert_eq!(saved_state(&m.antenne), before, "same state after restart");
    assert!(!m.antenne.log().contains("damaged"), "{}", m.antenne.log());
    // And the disk takes changes again.
    m.antenne
        .patch_destination(&spare, &json!({"name": "Renamed"}))?;
    m.antenne.restart()?;
    let after = saved_state(&m.antenne);
    assert_eq!(after.len(), before.len());
    assert!(after.iter().any(|d| d[1] == "Renamed"), "{after:?}");
    m.finish();
    drop(disk);
    Ok(())
}
