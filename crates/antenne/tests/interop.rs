//! Interoperability with RTMP stacks other than ffmpeg's and nginx-rtmp's,
//! all real peers on 127.0.0.1:
//! - publishers: GStreamer's `rtmp2sink` and librtmp's `rtmpsink`, each for
//!   longer than the ingest's 15 s publish deadline and ending cleanly;
//! - destinations: Node-Media-Server v4 (npm) and `ffmpeg -listen 1`, live,
//!   decodable, switched off and on; a refusal in between stays visible as
//!   a past error (API and web page) once the destination is live again;
//! - rtmps through nginx's `stream` module as TLS front: a CA-signed
//!   certificate works with `--extra-ca-file`; the CA:TRUE certificate of
//!   plain `openssl req -x509` is refused with a message saying how to fix
//!   it, and the fix it gives works.

mod support;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{json, Value};
use support::*;

const KEY: &str = "interop_ingest_key_0123456789";

/// antenne's log lines at warning level or worse.
fn warnings(antenne: &Antenne) -> Vec<String> {
    antenne
        .log()
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .map(str::to_owned)
        .collect()
}

fn wait_bytes(what: &str, timeout: Duration, mut size: impl FnMut() -> u64, min: u64) {
    let mut last = 0;
    let ok = wait_until(timeout, || {
        last = size();
        last >= min
    });
    assert!(ok, "{what}: {last} bytes, wanted {min} within {timeout:?}");
}

// === publishers ===

/// A GStreamer publisher goes through antenne to nginx-rtmp for 17 s (past
/// the 15 s publish deadline), then ends with end-of-stream: it exits 0,
/// nginx got decodable media, and antenne logged no warning.
fn gstreamer_publishes_past_the_deadline_and_ends_cleanly(sink: GstSink) -> Result<()> {
    let nginx = Nginx::start()?;
    let antenne = Antenne::start(KEY)?;
    let stream = format!("gst_{}", sink.name());
    let d = antenne.add_destination("nginx", &nginx.url(), &stream, true)?;
    let id = Antenne::id_of(&d);

    let started = Instant::now();
    let mut publisher = GstPublisher::start(sink, &antenne.ingest_url(KEY))?;
    antenne
        .wait_for_state(&id, "live", Duration::from_secs(30))
        .with_context(|| format!("{} log:\n{}", sink.name(), tail(&publisher.log(), 30)))?;
    let ingest = antenne.ingest()?;
    assert!(
        ingest.to_string().contains("\"live\":true"),
        "the ingest is live: {ingest}"
    );
    // Past the 15 s publish deadline.
    let publish_for = Duration::from_secs(17);
    if let Some(left) = publish_for.checked_sub(started.elapsed()) {
        std::thread::sleep(left);
    }
    assert!(
        publisher.is_running(),
        "{} still publishing after 17 s: {}",
        sink.name(),
        tail(&publisher.log(), 30)
    );
    let status = publisher.finish(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "{} ends cleanly and exits 0 (status {status:?}); log:\n{}\nantenne's warnings:\n{}",
        sink.name(),
        tail(&publisher.log(), 30),
        warnings(&antenne).join("\n")
    );
    // antenne notices the publisher left and says so (info, not warning).
    let offline = wait_until(Duration::from_secs(10), || {
        antenne
            .ingest()
            .is_ok_and(|i| !i.to_string().contains("\"live\":true"))
    });
    assert!(offline, "the ingest goes offline: {}", antenne.ingest()?);
    std::thread::sleep(Duration::from_secs(1));

    let rec = nginx.wait_for_recording(&stream, 100_000, Duration::from_secs(10))?;
    assert_decodable_recording(&rec, 10_000);
    let warned = warnings(&antenne);
    assert!(
        warned.is_empty(),
        "no warning in antenne's log for a {} publisher; got:\n{}",
        sink.name(),
        warned.join("\n")
    );
    Ok(())
}

#[test]
fn a_gstreamer_rtmp2sink_publisher_is_relayed_and_ends_without_warning() -> Result<()> {
    gstreamer_publishes_past_the_deadline_and_ends_cleanly(GstSink::Rtmp2)
}

#[test]
fn a_librtmp_rtmpsink_publisher_is_relayed_and_ends_without_warning() -> Result<()> {
    gstreamer_publishes_past_the_deadline_and_ends_cleanly(GstSink::Librtmp)
}

// === receivers ===

fn switch(antenne: &Antenne, id: &str, on: bool) -> Result<Value> {
    antenne.patch_destination(id, &json!({ "enabled": on }))
}

#[test]
fn node_media_server_receives_a_decodable_stream_switched_off_and_on() -> Result<()> {
    let nms = NodeMediaServer::start()?;
    let antenne = Antenne::start(KEY)?;
    let _publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    let d = antenne.add_destination("nms", &nms.url(), "nms_stream", true)?;
    let id = Antenne::id_of(&d);

    antenne.wait_for_state(&id, "live", Duration::from_secs(30))?;
    wait_bytes(
        "first publish to NMS",
        Duration::from_secs(20),
        || nms.latest_size("nms_stream"),
        800_000,
    );
    assert_eq!(nms.publish_count("nms_stream"), 1, "{}", nms.log());

    switch(&antenne, &id, false)?;
    antenne.wait_for_state(&id, "disabled", Duration::from_secs(10))?;
    let closed = wait_until(Duration::from_secs(10), || nms.log().contains("close"));
    assert!(
        closed,
        "NMS sees the stream closed: {}",
        tail(&nms.log(), 20)
    );
    let before = nms.latest_size("nms_stream");

    switch(&antenne, &id, true)?;
    let d = antenne.wait_for_state(&id, "live", Duration::from_secs(30))?;
    let ok = wait_until(Duration::from_secs(10), || {
        nms.publish_count("nms_stream") >= 2
    });
    assert!(ok, "NMS sees a second publish: {}", tail(&nms.log(), 20));
    wait_bytes(
        "second publish to NMS",
        Duration::from_secs(20),
        || nms.latest_size("nms_stream"),
        before + 800_000,
    );
    // Switching off and on is not a reconnect, and nothing failed.
    assert_eq!(d["status"]["reconnects"], 0, "{d}");
    assert!(d["status"]["last_error"].is_null(), "{d}");
    for rec in nms.recordings("nms_stream") {
        assert_decodable_recording(&rec, 2_000);
    }
    Ok(())
}

#[test]
fn ffmpeg_listen_receives_a_decodable_stream_switched_off_and_on() -> Result<()> {
    let mut listener = FfmpegListen::start("listen_stream")?;
    let antenne = Antenne::start(KEY)?;
    let _publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    let d = antenne.add_destination("ffmpeg", &listener.url(), "listen_stream", true)?;
    let id = Antenne::id_of(&d);

    antenne.wait_for_state(&id, "live", Duration::from_secs(30))?;
    wait_bytes(
        "first run of ffmpeg -listen",
        Duration::from_secs(20),
        || listener.recording_size(),
        800_000,
    );
    let first = listener.recording();
    switch(&antenne, &id, false)?;
    antenne.wait_for_state(&id, "disabled", Duration::from_secs(10))?;
    // The stream ended: ffmpeg finishes its file and exits 0.
    let status = listener.wait_exit(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "ffmpeg -listen exits 0 when the stream ends ({status:?}): {}",
        tail(&listener.log(), 20)
    );
    assert_good_recording(&first, 3_000);

    // Switched on before the receiver is back: refused, retried.
    switch(&antenne, &id, true)?;
    let failed = antenne.wait_for_state(&id, "retrying", Duration::from_secs(30))?;
    let error = failed["status"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("refused"), "says it was refused: {failed}");

    listener.relisten(Duration::from_secs(1))?;
    let d = antenne.wait_for_state(&id, "live", Duration::from_secs(60))?;
    wait_bytes(
        "second run of ffmpeg -listen",
        Duration::from_secs(20),
        || listener.recording_size(),
        800_000,
    );
    // Live again: the refusal is kept as the last error, with its time,
    // and the attempts after it count as reconnects.
    let st = &d["status"];
    assert!(
        st["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("refused")),
        "last_error kept once live: {d}"
    );
    assert!(st["last_error_at"].is_string(), "last_error_at: {d}");
    assert!(st["error"].is_null(), "no current error once live: {d}");
    // One reconnect per failed attempt: as many as the failures antenne
    // logged.
    let failures = antenne.log().matches("destination failed").count() as u64;
    assert!(failures >= 1, "the refusals are logged");
    assert_eq!(
        st["reconnects"].as_u64(),
        Some(failures),
        "one reconnect per failed attempt: {d}"
    );
    // The card shows the refusal as past, with how long ago.
    let browser = Browser::start("en-US")?;
    browser.log_in(&antenne.url("/"), ADMIN_PASSWORD)?;
    browser.wait_attr(
        "[data-testid=dest-state]",
        "data-state",
        "live",
        support::browser::WAIT,
    )?;
    // "now" for the first seconds, then "… ago".
    let past = browser.wait_text(
        "[data-testid=dest-past-error]",
        Duration::from_secs(30),
        |t| t.starts_with("Last error") && t.contains("ago") && t.contains("refused"),
    )?;
    assert!(!past.contains("next try"), "{past}");
    browser.js(
        "document.querySelector('[data-testid=destination-card]').scrollIntoView();",
        json!([]),
    )?;
    let _ = std::fs::create_dir_all(artifacts_dir());
    browser.screenshot(&artifacts_dir().join("interop-past-error.png"))?;
    drop(browser);

    let second = listener.recording();
    switch(&antenne, &id, false)?;
    let status = listener.wait_exit(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "second run exits 0 ({status:?}): {}",
        tail(&listener.log(), 20)
    );
    assert_good_recording(&second, 3_000);
    Ok(())
}

// === rtmps through nginx's stream module ===

#[test]
fn rtmps_through_an_nginx_stream_tls_front_with_a_ca_signed_certificate() -> Result<()> {
    let pki_dir = tempfile::tempdir()?;
    let pki = make_test_pki(pki_dir.path())?;
    let nginx = Nginx::start()?;
    let (cert, key) = pki.cert(CertKind::Good);
    let front = NginxTlsFront::start(nginx.port(), cert, key)?;
    let antenne = Antenne::options()
        .ingest_key(KEY)
        .extra_ca_file(&pki.ca_cert)
        .start()?;
    let _publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    let d = antenne.add_destination("tls", &front.url(), "tls_stream", true)?;
    let id = Antenne::id_of(&d);
    antenne
        .wait_for_state(&id, "live", Duration::from_secs(30))
        .with_context(|| format!("nginx TLS front log:\n{}", tail(&front.log(), 20)))?;
    let rec = nginx.wait_for_recording("tls_stream", 800_000, Duration::from_secs(20))?;
    assert_good_recording(&rec, 2_000);
    let d = antenne.get_destination(&id)?;
    assert!(d["status"]["last_error"].is_null(), "{d}");
    Ok(())
}

#[test]
fn a_self_signed_ca_certificate_is_refused_with_a_message_saying_how_to_fix_it() -> Result<()> {
    let pki_dir = tempfile::tempdir()?;
    let pki = make_test_pki(pki_dir.path())?;
    let nginx = Nginx::start()?;
    let (bad, bad_key) = pki.cert(CertKind::SelfSignedCa);
    let (fixed, fixed_key) = pki.cert(CertKind::SelfSigned);
    let bad_front = NginxTlsFront::start(nginx.port(), bad, bad_key)?;
    let fixed_front = NginxTlsFront::start(nginx.port(), fixed, fixed_key)?;
    // The user trusts both self-signed certificates, as one would.
    let trusted = pki_dir.path().join("trusted.pem");
    let pem = format!(
        "{}{}",
        std::fs::read_to_string(bad)?,
        std::fs::read_to_string(fixed)?
    );
    std::fs::write(&trusted, pem)?;
    let antenne = Antenne::options()
        .ingest_key(KEY)
        .extra_ca_file(&trusted)
        .start()?;
    let _publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    let bad_id = Antenne::id_of(&antenne.add_destination(
        "ca-true",
        &bad_front.url(),
        "bad_stream",
        true,
    )?);
    let fixed_id = Antenne::id_of(&antenne.add_destination(
        "ca-false",
        &fixed_front.url(),
        "fixed_stream",
        true,
    )?);

    // Still refused (verification is not weakened), in plain words.
    let d = antenne.wait_for_state(&bad_id, "retrying", Duration::from_secs(30))?;
    let last = d["status"]["last_error"].as_str().unwrap_or_default();
    for words in [
        "CA certificate",
        "CA:TRUE",
        "openssl req -x509",
        "issue its certificate from a CA",
        "--extra-ca-file",
        "basicConstraints=critical,CA:FALSE",
    ] {
        assert!(last.contains(words), "last_error says {words:?}: {last}");
    }
    assert!(!last.contains("CaUsedAsEndEntity"), "no raw error: {last}");
    assert_eq!(d["status"]["error"].as_str(), Some(last), "{d}");
    assert!(
        antenne.log().contains("CA:TRUE"),
        "the log says it too:\n{}",
        tail(&antenne.log(), 20)
    );
    assert_eq!(nginx.publish_count("bad_stream"), 0, "nothing got through");

    // The fix the message gives works.
    antenne.wait_for_state(&fixed_id, "live", Duration::from_secs(30))?;
    let rec = nginx.wait_for_recording("fixed_stream", 800_000, Duration::from_secs(20))?;
    assert_good_recording(&rec, 2_000);
    Ok(())
}
