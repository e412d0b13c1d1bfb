//! SRT (issue 14) with real peers on 127.0.0.1: ffmpeg publishes MPEG-TS
//! over SRT (Debian's ffmpeg uses libsrt, as OBS does) to the real
//! `antenne` binary; nginx-rtmp destinations must receive decodable
//! H.264/AAC; wrong keys and passphrases are refused at the handshake;
//! without libsrt antenne still relays RTMP and says SRT is unavailable.

mod support;

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;
use support::*;

const KEY: &str = "srt_ingest_key_0123456789";
const PASSPHRASE: &str = "srt-passphrase-0123";

#[test]
fn ffmpeg_publishes_over_srt_with_a_passphrase_and_two_destinations_get_decodable_media(
) -> Result<()> {
    let nginx = Nginx::start()?;
    let (antenne, port) = start_with_srt(Antenne::options(), KEY)?;
    let settings = antenne.request("GET", "/api/v1/settings", None)?.1;
    assert_eq!(settings["srt_port"], port, "{settings}");
    set_passphrase(&antenne, PASSPHRASE)?;

    let a = antenne.add_destination("A", &nginx.url(), "srt_dest_a", true)?;
    let b = antenne.add_destination("B", &nginx.url(), "srt_dest_b", true)?;
    // The access-control form, as some encoders send it.
    let stream_id = format!("#!::r=live/{KEY},m=publish");
    // B-frames, as OBS's x264 sends by default: DTS runs behind PTS.
    let publisher = SrtPublisher::start(
        Publisher::options().size(640, 360).arg("-bf").arg("2"),
        &srt_url(port, &stream_id, Some(PASSPHRASE)),
    )?;
    for d in [&a, &b] {
        antenne
            .wait_for_state(&Antenne::id_of(d), "live", Duration::from_secs(30))
            .with_context(|| {
                format!(
                    "ffmpeg:\n{}\nantenne:\n{}",
                    tail(&publisher.log(), 20),
                    tail(&antenne.log(), 30)
                )
            })?;
    }
    assert_eq!(antenne.ingest()?["ingests"][0]["live"], true);
    // The ingest card shows the picture size (from the SPS: MPEG-TS has no
    // onMetaData).
    let mut ingest = json!(null);
    assert!(
        wait_until(Duration::from_secs(20), || {
            ingest = antenne.ingest().unwrap_or_default();
            ingest["ingests"][0]["width"] == 640 && ingest["ingests"][0]["height"] == 360
        }),
        "{ingest}"
    );
    for stream in ["srt_dest_a", "srt_dest_b"] {
        nginx
            .wait_for_recording(stream, 100_000, Duration::from_secs(30))
            .with_context(|| format!("nginx records {stream}"))?;
    }
    std::thread::sleep(Duration::from_secs(4));
    for stream in ["srt_dest_a", "srt_dest_b"] {
        let rec = nginx.latest_recording(stream).context("a recording")?;
        let report = assert_good_recording(&rec, 2000);
        assert_eq!(report.width, Some(640), "{}", report.summary());
    }
    assert!(
        antenne.log().contains("SRT publisher live"),
        "{}",
        tail(&antenne.log(), 20)
    );
    let log = antenne.log();
    assert!(!log.contains(KEY), "the ingest key is not logged");
    assert!(!log.contains(PASSPHRASE), "the passphrase is not logged");
    Ok(())
}

/// Publishes to `url` and expects ffmpeg to fail; returns its log.
fn expect_refused(url: &str) -> Result<String> {
    let mut publisher = SrtPublisher::start(Publisher::options(), url)?;
    let status = publisher.child.wait_timeout(Duration::from_secs(20));
    let log = publisher.log();
    assert!(
        status.is_some_and(|s| !s.success()),
        "ffmpeg is refused ({status:?}): {}",
        tail(&log, 20)
    );
    Ok(log)
}

#[test]
fn a_wrong_key_and_a_wrong_passphrase_are_refused_at_the_handshake() -> Result<()> {
    let (antenne, port) = start_with_srt(Antenne::options(), KEY)?;
    set_passphrase(&antenne, PASSPHRASE)?;

    let log = expect_refused(&srt_url(port, "wrong_srt_key_0123456", Some(PASSPHRASE)))?;
    assert!(
        log.to_lowercase().contains("reject"),
        "ffmpeg says the connection was rejected: {}",
        tail(&log, 10)
    );
    assert!(
        wait_until(Duration::from_secs(5), || antenne
            .log()
            .contains("wrong ingest key")),
        "{}",
        tail(&antenne.log(), 20)
    );
    expect_refused(&srt_url(port, KEY, Some("not-the-passphrase")))?;
    expect_refused(&srt_url(port, KEY, None))?;
    assert_eq!(antenne.ingest()?["ingests"][0]["live"], false);
    assert!(
        !antenne.log().contains("SRT publisher live"),
        "{}",
        tail(&antenne.log(), 20)
    );
    Ok(())
}

#[test]
fn without_libsrt_antenne_relays_rtmp_and_says_srt_is_unavailable() -> Result<()> {
    let nginx = Nginx::start()?;
    let (antenne, _) = start_with_srt(
        Antenne::options().env("ANTENNE_LIBSRT", "/nonexistent/libsrt.so.1.5"),
        KEY,
    )?;
    let settings = antenne.request("GET", "/api/v1/settings", None)?.1;
    assert_eq!(settings["srt_port"], serde_json::Value::Null, "{settings}");
    let why = settings["srt_unavailable"].as_str().unwrap_or_default();
    assert!(
        why.contains("SRT unavailable") && why.contains("libsrt1.5-openssl"),
        "{settings}"
    );
    assert!(
        antenne.log().contains("SRT unavailable"),
        "{}",
        antenne.log()
    );

    let d = antenne.add_destination("N", &nginx.url(), "no_srt_dest", true)?;
    let _publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    antenne.wait_for_state(&Antenne::id_of(&d), "live", Duration::from_secs(20))?;
    nginx
        .wait_for_recording("no_srt_dest", 50_000, Duration::from_secs(20))
        .context("nginx records the RTMP relay")?;
    Ok(())
}

/// A UDP relay that drops a share of the datagrams in both directions
/// (pseudo-random, seeded): the lossy path between a publisher and
/// antenne. Netem is not available on every kernel (this test machine's
/// has no sch_netem, nor tc classifiers), so the loss is made here, on the
/// real UDP path libsrt uses. Stops on drop.
struct LossyUdpRelay {
    port: u16,
    dropped: std::sync::Arc<std::sync::atomic::AtomicU64>,
    passed: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl LossyUdpRelay {
    /// Relays 127.0.0.1:<port> to 127.0.0.1:`target`, dropping `percent` %.
    fn start(target: u16, percent: u32) -> Result<LossyUdpRelay> {
        use std::net::UdpSocket;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::{Arc, Mutex};
        let front = UdpSocket::bind("127.0.0.1:0")?;
        let back = UdpSocket::bind("127.0.0.1:0")?;
        back.connect(("127.0.0.1", target))?;
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(100)))?;
        }
        let port = front.local_addr()?.port();
        let (front, back) = (Arc::new(front), Arc::new(back));
        let client = Arc::new(Mutex::new(None));
        let dropped = Arc::new(AtomicU64::new(0));
        let passed = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for inbound in [true, false] {
            let (front, back, client) = (front.clone(), back.clone(), client.clone());
            let (dropped, passed, stop) = (dropped.clone(), passed.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                let mut seed: u64 = if inbound {
                    0x9e37_79b9_7f4a_7c15
                } else {
                    0xd1b5_4a32_d192_ed03
                };
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    let n = if inbound {
                        match front.recv_from(&mut buf) {
                            Ok((n, from)) => {
                                *client.lock().unwrap() = Some(from);
                                n
                            }
                            Err(_) => continue,
                        }
                    } else {
                        match back.recv(&mut buf) {
                            Ok(n) => n,
                            Err(_) => continue,
                        }
                    };
                    // xorshift64
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    if (seed % 100) < u64::from(percent) {
                        dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    passed.fetch_add(1, Ordering::Relaxed);
                    if inbound {
                        let _ = back.send(&buf[..n]);
                    } else if let Some(to) = *client.lock().unwrap() {
                        let _ = front.send_to(&buf[..n], to);
                    }
                }
            }));
        }
        Ok(LossyUdpRelay {
            port,
            dropped,
            passed,
            stop,
            threads,
        })
    }

    fn counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        (
            self.dropped.load(Ordering::Relaxed),
            self.passed.load(Ordering::Relaxed),
        )
    }
}

impl Drop for LossyUdpRelay {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[test]
fn with_5_percent_loss_on_the_way_in_the_destination_still_decodes_without_errors() -> Result<()> {
    let nginx = Nginx::start()?;
    let (antenne, port) = start_with_srt(Antenne::options(), KEY)?;
    let relay = LossyUdpRelay::start(port, 5)?;
    let d = antenne.add_destination("N", &nginx.url(), "srt_lossy", true)?;
    let publisher = SrtPublisher::start(
        Publisher::options().size(640, 360),
        &srt_url(relay.port, KEY, None),
    )?;
    antenne
        .wait_for_state(&Antenne::id_of(&d), "live", Duration::from_secs(30))
        .with_context(|| {
            format!(
                "ffmpeg:\n{}\nantenne:\n{}",
                tail(&publisher.log(), 20),
                tail(&antenne.log(), 30)
            )
        })?;
    nginx
        .wait_for_recording("srt_lossy", 100_000, Duration::from_secs(30))
        .context("nginx records the stream")?;
    std::thread::sleep(Duration::from_secs(8));
    let (dropped, passed) = relay.counts();
    assert!(
        dropped * 100 >= (dropped + passed) * 3 && dropped > 50,
        "the path lost about 5 % ({dropped} dropped, {passed} passed)"
    );
    let rec = nginx.latest_recording("srt_lossy").context("a recording")?;
    let report = assert_good_recording(&rec, 6000);
    let errors = decode_errors(&rec)?;
    assert!(errors.trim().is_empty(), "decode errors: {errors}");
    eprintln!(
        "5 % loss: {dropped} of {} datagrams dropped; {}",
        dropped + passed,
        report.summary()
    );
    Ok(())
}

#[test]
fn an_srt_destination_reaches_an_ffmpeg_listener_and_reconnects_after_it_restarts() -> Result<()> {
    let port = free_port();
    let secret = "dest-passphrase-42";
    let antenne = Antenne::options()
        .ingest_key(KEY)
        .arg("--srt-listen")
        .arg("")
        .start()?;
    let mut receiver = SrtReceiver::start(port, secret)?;
    let url =
        format!("srt://127.0.0.1:{port}?streamid=dest_stream_id&passphrase={secret}&latency=200");
    let d = antenne.add_destination("SRT out", &url, "", true)?;
    let shown = d["url"].as_str().unwrap_or_default();
    assert!(
        shown.starts_with(&format!("srt://127.0.0.1:{port}"))
            && !shown.contains(secret)
            && !shown.contains("dest_stream_id"),
        "the destination URL is shown masked: {d}"
    );
    let id = Antenne::id_of(&d);
    let _publisher = Publisher::options()
        .size(640, 360)
        .start(&antenne.ingest_url(KEY))?;
    antenne
        .wait_for_state(&id, "live", Duration::from_secs(30))
        .with_context(|| {
            format!(
                "receiver:\n{}\nantenne:\n{}",
                tail(&receiver.child.log(), 20),
                tail(&antenne.log(), 30)
            )
        })?;
    assert!(
        wait_until(Duration::from_secs(30), || receiver.size() > 300_000),
        "the receiver gets the stream: {}",
        tail(&receiver.child.log(), 20)
    );
    receiver.child.terminate(Duration::from_secs(5));
    let report = assert_good_recording(&receiver.out, 2000);
    assert_eq!(report.width, Some(640), "{}", report.summary());
    assert_eq!(
        report.audio_codec.as_deref(),
        Some("aac"),
        "{}",
        report.summary()
    );

    // The receiver went away: antenne retries, then reconnects to the new one.
    drop(receiver);
    let receiver = SrtReceiver::start(port, secret)?;
    assert!(
        wait_until(Duration::from_secs(60), || receiver.size() > 300_000),
        "antenne reconnects to the restarted receiver: {}\nantenne:\n{}",
        tail(&receiver.child.log(), 20),
        tail(&antenne.log(), 30)
    );
    let state = antenne.get_destination(&id)?;
    assert!(
        state["status"]["reconnects"].as_u64().unwrap_or(0) >= 1,
        "{state}"
    );
    let log = antenne.log();
    assert!(!log.contains(secret), "the passphrase is not logged");
    assert!(
        !log.contains("dest_stream_id"),
        "the stream id is not logged"
    );
    Ok(())
}

#[test]
fn real_obs_publishes_over_srt_and_a_destination_receives_it() -> Result<()> {
    let nginx = Nginx::start()?;
    let (antenne, port) = start_with_srt(Antenne::options(), KEY)?;
    set_passphrase(&antenne, PASSPHRASE)?;
    let dest = antenne.add_destination("N", &nginx.url(), "srt_obs_dest", true)?;
    // OBS's custom service with an srt:// server: OBS sends MPEG-TS over
    // SRT (its ffmpeg output, libsrt).
    let obs = Obs::start_with_service(
        &format!("srt://127.0.0.1:{port}?streamid={KEY}&passphrase={PASSPHRASE}"),
        "",
    )?;
    antenne.request_expect("PUT", "/api/v1/obs", Some(&obs.settings()), 200)?;
    let connected = wait_until(Duration::from_secs(20), || {
        antenne
            .request("GET", "/api/v1/obs", None)
            .is_ok_and(|(_, v)| v["state"] == "connected")
    });
    assert!(
        connected,
        "antenne controls OBS: {}",
        tail(&antenne.log(), 20)
    );
    antenne.request_expect("POST", "/api/v1/obs/stream/start", None, 200)?;
    antenne
        .wait_for_state(&Antenne::id_of(&dest), "live", Duration::from_secs(40))
        .with_context(|| {
            format!(
                "OBS publishes over SRT; antenne:\n{}\nOBS: {}",
                tail(&antenne.log(), 30),
                tail(&obs.log(), 30)
            )
        })?;
    assert!(
        antenne.log().contains("SRT publisher live"),
        "{}",
        tail(&antenne.log(), 20)
    );
    nginx
        .wait_for_recording("srt_obs_dest", 100_000, Duration::from_secs(30))
        .context("nginx records OBS's stream")?;
    std::thread::sleep(Duration::from_secs(4));
    let rec = nginx
        .latest_recording("srt_obs_dest")
        .context("a recording")?;
    let report = assert_good_recording(&rec, 2000);
    eprintln!("OBS over SRT: {}", report.summary());
    let _ = antenne.request("POST", "/api/v1/obs/stream/stop", None);
    Ok(())
}

#[test]
fn the_ingest_card_shows_the_srt_url_in_chromium() -> Result<()> {
    let (antenne, port) = start_with_srt(Antenne::options(), KEY)?;
    let browser = Browser::start("en-US")?;
    browser.log_in(&antenne.url("/"), ADMIN_PASSWORD)?;
    let text = browser.wait_text(
        "[data-testid=ingest-card] [data-testid=obs-srt]",
        Duration::from_secs(10),
        |t| t.contains("srt://"),
    )?;
    assert!(
        text.contains(&format!(":{port}?streamid=")),
        "the card names antenne's SRT port: {text:?}"
    );
    Ok(())
}

/// Waits until the ingest is live (or not), with the publisher's log on failure.
fn wait_live(antenne: &Antenne, publisher: &SrtPublisher) -> Result<()> {
    let live = wait_until(Duration::from_secs(30), || {
        antenne
            .ingest()
            .is_ok_and(|v| v["ingests"][0]["live"] == true)
    });
    anyhow::ensure!(
        live,
        "the SRT publisher goes live: ffmpeg:\n{}\nantenne:\n{}",
        tail(&publisher.log(), 20),
        tail(&antenne.log(), 20)
    );
    Ok(())
}

#[test]
fn a_passphrase_set_on_the_ingest_card_is_required_never_shown_and_removable_in_chromium(
) -> Result<()> {
    let (antenne, port) = start_with_srt(Antenne::options(), KEY)?;
    let browser = Browser::start("en-US")?;
    browser.log_in(&antenne.url("/"), ADMIN_PASSWORD)?;
    const STATE: &str = "[data-testid=ingest-card] [data-testid=srt-passphrase-state]";
    const LINE: &str = "[data-testid=ingest-card] [data-testid=obs-srt]";
    const FIELD: &str = "[data-testid=ingest-card] [data-testid=srt-passphrase]";
    const SAVE: &str = "[data-testid=ingest-card] [data-testid=srt-passphrase-save]";
    let long = Duration::from_secs(10);
    browser.wait_text(STATE, long, |t| t.contains("none"))?;

    // A wrong length is refused on the card, with the rule.
    browser.fill(FIELD, "short")?;
    browser.click(SAVE)?;
    let err = "[data-testid=ingest-card] [data-testid=srt-passphrase-error]";
    browser.wait_text(err, long, |t| t.contains("10 to 79"))?;
    assert_eq!(antenne.ingest()?["ingests"][0]["srt_passphrase_set"], false);

    browser.fill(FIELD, PASSPHRASE)?;
    browser.click(SAVE)?;
    browser.wait_text(STATE, long, |t| t.contains("set ("))?;
    browser.wait_text(LINE, long, |t| t.contains("&passphrase="))?;
    assert_eq!(
        browser.value(FIELD)?,
        "",
        "the field is emptied after saving"
    );
    let ingest = antenne.ingest()?;
    assert_eq!(ingest["ingests"][0]["srt_passphrase_set"], true, "{ingest}");
    let (_, keys) = antenne.request("GET", "/api/v1/ingest-keys", None)?;
    assert_eq!(keys[0]["srt_passphrase_set"], true, "{keys}");
    assert!(!format!("{ingest}{keys}").contains(PASSPHRASE));

    // SRT now requires it.
    expect_refused(&srt_url(port, KEY, None))?;
    let with = SrtPublisher::start(Publisher::options(), &srt_url(port, KEY, Some(PASSPHRASE)))?;
    wait_live(&antenne, &with)?;
    drop(with);

    // After a reload the page knows that one is set, never what it is.
    browser.goto(&antenne.url("/"))?;
    browser.wait_text(STATE, long, |t| t.contains("set ("))?;
    let page = browser.js("return document.documentElement.outerHTML", json!([]))?;
    let page = page.as_str().unwrap_or_default();
    assert!(page.contains("srt-passphrase-state"), "the page is loaded");
    assert!(
        !page.contains(PASSPHRASE),
        "the page never holds the passphrase"
    );

    browser.click("[data-testid=ingest-card] [data-testid=srt-passphrase-remove]")?;
    browser.wait_text(STATE, long, |t| t.contains("none"))?;
    browser.wait_text(LINE, long, |t| !t.contains("passphrase"))?;
    assert_eq!(antenne.ingest()?["ingests"][0]["srt_passphrase_set"], false);
    assert!(wait_until(Duration::from_secs(30), || antenne
        .ingest()
        .is_ok_and(|v| v["ingests"][0]["live"] == false)));
    let without = SrtPublisher::start(Publisher::options(), &srt_url(port, KEY, None))?;
    wait_live(&antenne, &without)?;
    Ok(())
}
