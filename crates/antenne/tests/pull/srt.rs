//! Pulling from `srt://` with real peers on 127.0.0.1: ffmpeg in SRT
//! listener mode (`-f mpegts 'srt://127.0.0.1:P?mode=listener&passphrase=…'`)
//! serves the stream, antenne calls it, pulls it into the ingest and relays
//! it to an nginx-rtmp destination; ffprobe checks what arrived. (ffmpeg
//! as a listener takes one caller, then ends when it leaves: each test
//! starts its own.) A silent source is srt-live-transmit (srt-tools)
//! listening with nothing to relay.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::support::*;
use super::{ingest_id, pull_path, tail_of, wait_for_pull, DEST_KEY, KEY};

/// The stream id antenne sends to the source: a secret like a key.
const STREAM_ID: &str = "srt_source_stream_id_77";
const PASSPHRASE: &str = "srt-source-passphrase-42";

/// ffmpeg serving the test stream as MPEG-TS over SRT, listening on
/// 127.0.0.1:`port` with `passphrase`. Killed on drop.
struct SrtSource {
    child: ChildGuard,
    _dir: tempfile::TempDir,
}

impl SrtSource {
    fn start(port: u16, passphrase: &str) -> Result<SrtSource> {
        let ffmpeg = require_program(&["ffmpeg"], "ffmpeg")?;
        let dir = tempfile::Builder::new()
            .prefix("antenne-test-srt-source-")
            .tempdir()?;
        let url = format!("srt://127.0.0.1:{port}?mode=listener&passphrase={passphrase}");
        let mut args = Publisher::options().size(320, 180).ffmpeg_args(&url);
        // The support publisher writes FLV; SRT carries MPEG-TS.
        let n = args.len();
        anyhow::ensure!(n >= 3 && args[n - 3] == "-f", "unexpected args {args:?}");
        args[n - 2] = "mpegts".into();
        let mut cmd = Command::new(ffmpeg);
        cmd.args(args).current_dir(dir.path());
        let child = ChildGuard::spawn("ffmpeg-srt-source", cmd, &dir.path().join("ffmpeg.log"))?;
        Ok(SrtSource { child, _dir: dir })
    }

    fn log(&self) -> String {
        self.child.log()
    }
}

fn srt_pull_url(port: u16, passphrase: &str) -> String {
    format!("srt://127.0.0.1:{port}?streamid={STREAM_ID}&passphrase={passphrase}&latency=200")
}

/// antenne (its own SRT listener off: the tests run side by side) with an
/// nginx destination; returns the ingest id and the destination id.
fn antenne_with_destination(dest: &Nginx) -> Result<(Antenne, String, String)> {
    let antenne = Antenne::options()
        .ingest_key(KEY)
        .arg("--srt-listen")
        .arg("")
        .start()?;
    let d = antenne.add_destination("Dest", &dest.url(), DEST_KEY, true)?;
    let id = ingest_id(&antenne)?;
    Ok((antenne, id, Antenne::id_of(&d)))
}

fn set_pull(antenne: &Antenne, id: &str, url: &str) -> Result<Value> {
    let answer = antenne.request_expect(
        "PUT",
        &pull_path(id),
        Some(&json!({"url": url, "enabled": true})),
        200,
    )?;
    assert_eq!(answer["configured"], true, "{answer}");
    Ok(answer)
}

/// Neither the stream id nor the passphrase of the source shows in the
/// pull's answer, the ingest list, the events or the log.
fn assert_secrets_hidden(antenne: &Antenne, id: &str, passphrase: &str) -> Result<()> {
    for path in [
        pull_path(id),
        "/api/v1/ingest".into(),
        "/api/v1/events".into(),
    ] {
        let v = antenne.request_expect("GET", &path, None, 200)?;
        let text = v.to_string();
        assert!(
            !text.contains(STREAM_ID) && !text.contains(passphrase),
            "{path}: {v}"
        );
    }
    let log = antenne.log();
    assert!(!log.contains(STREAM_ID), "stream id in the log");
    assert!(!log.contains(passphrase), "passphrase in the log");
    Ok(())
}

#[test]
fn relays_a_stream_pulled_from_an_srt_listener_with_a_passphrase() -> Result<()> {
    let port = free_port();
    let source = SrtSource::start(port, PASSPHRASE)?;
    let dest = Nginx::start()?;
    let (antenne, id, dest_id) = antenne_with_destination(&dest)?;
    let answer = set_pull(&antenne, &id, &srt_pull_url(port, PASSPHRASE))?;
    let shown = answer["url"].as_str().unwrap_or_default();
    assert!(
        shown.starts_with(&format!("srt://127.0.0.1:{port}?")),
        "{answer}"
    );
    let mut seen = vec![];
    let pull = wait_for_pull(&antenne, &id, "live", Duration::from_secs(30), &mut seen)
        .with_context(|| format!("source ffmpeg:\n{}", tail(&source.log(), 20)))?;
    assert!(pull["since"].is_string(), "{pull}");
    antenne.wait_for_state(&dest_id, "live", Duration::from_secs(20))?;
    assert_eq!(antenne.ingest()?["ingests"][0]["pull"]["state"], "live");
    dest.wait_for_recording(DEST_KEY, 100_000, Duration::from_secs(30))?;
    std::thread::sleep(Duration::from_secs(3));
    let rec = dest.latest_recording(DEST_KEY).context("recorded")?;
    // H.264 + AAC, starting on a keyframe, timestamps forward, decodable.
    let report = assert_good_recording(&rec, 2000);
    assert_eq!(report.width, Some(320), "{}", report.summary());
    assert_eq!(
        report.audio_codec.as_deref(),
        Some("aac"),
        "{}",
        report.summary()
    );
    let revealed =
        antenne.request_expect("GET", &format!("{}?reveal=keys", pull_path(&id)), None, 200)?;
    assert_eq!(revealed["url"], srt_pull_url(port, PASSPHRASE));
    assert_secrets_hidden(&antenne, &id, PASSPHRASE)?;

    // Switched off: when the answer comes, the pull's thread has ended
    // its publish session.
    let off = antenne.request_expect(
        "PUT",
        &pull_path(&id),
        Some(&json!({"enabled": false})),
        200,
    )?;
    assert_eq!(off["state"], "off", "{off}");
    assert_eq!(antenne.ingest()?["ingests"][0]["live"], false);
    Ok(())
}

#[test]
fn an_srt_pull_retries_when_the_source_goes_away_and_is_live_again() -> Result<()> {
    let port = free_port();
    let mut source = SrtSource::start(port, PASSPHRASE)?;
    let dest = Nginx::start()?;
    let (antenne, id, dest_id) = antenne_with_destination(&dest)?;
    set_pull(&antenne, &id, &srt_pull_url(port, PASSPHRASE))?;
    let mut seen = vec![];
    wait_for_pull(&antenne, &id, "live", Duration::from_secs(30), &mut seen)?;
    antenne.wait_for_state(&dest_id, "live", Duration::from_secs(20))?;
    std::thread::sleep(Duration::from_secs(2));

    // The source goes away: the pull retries, with the reason.
    source.child.kill();
    let mut seen = vec![];
    let retrying = wait_for_pull(
        &antenne,
        &id,
        "retrying",
        Duration::from_secs(30),
        &mut seen,
    )?;
    assert!(retrying["error"].is_string(), "{retrying}");
    assert!(retrying["retry_in_seconds"].is_u64(), "{retrying}");
    assert_eq!(antenne.ingest()?["ingests"][0]["live"], false);

    // It comes back on the same port: live again, the destination fed.
    let restarted = std::time::Instant::now();
    let source = SrtSource::start(port, PASSPHRASE)?;
    let live = wait_for_pull(&antenne, &id, "live", Duration::from_secs(60), &mut seen)
        .with_context(|| format!("source ffmpeg:\n{}", tail(&source.log(), 20)))?;
    assert!(live["reconnects"].as_u64() >= Some(1), "{live}");
    assert!(live["last_error"].is_string(), "{live}");
    eprintln!(
        "SRT pull live again {} ms after the source restarted (states seen: {seen:?})",
        restarted.elapsed().as_millis()
    );
    let size = |n: &Nginx| {
        n.latest_recording(DEST_KEY)
            .and_then(|p| p.metadata().ok())
            .map_or(0, |m| m.len())
    };
    let before = size(&dest);
    assert!(
        wait_until(Duration::from_secs(20), || size(&dest) > before + 50_000),
        "the destination receives again: {before} → {}\n{}",
        size(&dest),
        tail_of(&antenne.log())
    );
    // The destination stayed connected (grace) and got one continuous
    // stream: one publish, timestamps only forward, decodable.
    let d = antenne.get_destination(&dest_id)?;
    assert_eq!(d["status"]["state"], "live", "{d}");
    assert_eq!(dest.publish_count(DEST_KEY), 1, "one connection: {d}");
    let rec = dest.latest_recording(DEST_KEY).context("recorded")?;
    assert_good_recording(&rec, 4000);
    assert_secrets_hidden(&antenne, &id, PASSPHRASE)
}

#[test]
fn an_srt_pull_with_a_wrong_passphrase_retries_with_a_clear_error_and_hides_it() -> Result<()> {
    let port = free_port();
    let source = SrtSource::start(port, PASSPHRASE)?;
    let dest = Nginx::start()?;
    let (antenne, id, _) = antenne_with_destination(&dest)?;
    let wrong = "not-the-right-passphrase-9";
    set_pull(&antenne, &id, &srt_pull_url(port, wrong))?;
    let mut seen = vec![];
    let retrying = wait_for_pull(
        &antenne,
        &id,
        "retrying",
        Duration::from_secs(30),
        &mut seen,
    )
    .with_context(|| format!("source ffmpeg:\n{}", tail(&source.log(), 20)))?;
    let error = retrying["error"].as_str().unwrap_or_default();
    eprintln!("wrong passphrase: {error}");
    assert!(
        error.contains(&format!("127.0.0.1:{port}")) && error.to_lowercase().contains("reject"),
        "the error names the source and says it refused: {retrying}"
    );
    assert!(!seen.contains(&"live".to_string()), "never live: {seen:?}");
    assert_eq!(antenne.ingest()?["ingests"][0]["live"], false);
    assert_secrets_hidden(&antenne, &id, wrong)?;
    assert_secrets_hidden(&antenne, &id, PASSPHRASE)
}

#[test]
fn without_libsrt_an_srt_pull_says_what_to_install() -> Result<()> {
    let antenne = Antenne::options()
        .ingest_key(KEY)
        .arg("--srt-listen")
        .arg("")
        .env("ANTENNE_LIBSRT", "/nonexistent/libsrt.so.1.5")
        .start()?;
    let id = ingest_id(&antenne)?;
    set_pull(&antenne, &id, &srt_pull_url(free_port(), PASSPHRASE))?;
    let mut seen = vec![];
    let retrying = wait_for_pull(
        &antenne,
        &id,
        "retrying",
        Duration::from_secs(15),
        &mut seen,
    )?;
    let error = retrying["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("SRT unavailable") && error.contains("install libsrt1.5-openssl"),
        "{retrying}"
    );
    assert_secrets_hidden(&antenne, &id, PASSPHRASE)
}

#[test]
fn drops_an_srt_source_that_sends_nothing_and_tries_again() -> Result<()> {
    // srt-live-transmit accepts the caller and relays a UDP input nobody
    // sends to: the connection stays up (libsrt's keepalives), no media
    // comes, and the pull's 20 s watchdog drops it.
    let program = require_program(&["srt-live-transmit"], "srt-tools")?;
    let dir = tempfile::Builder::new()
        .prefix("antenne-test-srt-silent-")
        .tempdir()?;
    let (udp, port) = (free_port(), free_port());
    let mut cmd = Command::new(program);
    cmd.arg(format!("udp://127.0.0.1:{udp}"))
        .arg(format!(
            "srt://127.0.0.1:{port}?mode=listener&passphrase={PASSPHRASE}"
        ))
        .current_dir(dir.path());
    let silent = ChildGuard::spawn("srt-live-transmit", cmd, &dir.path().join("slt.log"))?;
    let antenne = Antenne::options()
        .ingest_key(KEY)
        .arg("--srt-listen")
        .arg("")
        .start()?;
    let id = ingest_id(&antenne)?;
    set_pull(&antenne, &id, &srt_pull_url(port, PASSPHRASE))?;
    let mut seen = vec![];
    wait_for_pull(&antenne, &id, "waiting", Duration::from_secs(15), &mut seen)
        .with_context(|| format!("srt-live-transmit:\n{}", tail(&silent.log(), 20)))?;
    let retrying = wait_for_pull(
        &antenne,
        &id,
        "retrying",
        Duration::from_secs(40),
        &mut seen,
    )?;
    assert!(
        retrying["error"]
            .as_str()
            .is_some_and(|e| e.contains("no media for 20 s")),
        "{retrying}"
    );
    assert_eq!(antenne.ingest()?["ingests"][0]["live"], false);
    assert_secrets_hidden(&antenne, &id, PASSPHRASE)
}
