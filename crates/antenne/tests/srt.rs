//! SRT (issue 14) with real peers on 127.0.0.1: ffmpeg publishes MPEG-TS
//! over SRT (Debian's ffmpeg uses libsrt, as OBS does) to the real
//! `antenne` binary; nginx-rtmp destinations must receive decodable
//! H.264/AAC; wrong keys and passphrases are refused at the handshake;
//! without libsrt antenne still relays RTMP and says SRT is unavailable.

mod support;

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;
use support::*;

const KEY: &str = "srt_ingest_key_0123456789";
const PASSPHRASE: &str = "srt-passphrase-0123";

/// antenne with its SRT ingest on a free port; returns it with the port.
fn start_with_srt(opts: AntenneOptions) -> Result<(Antenne, u16)> {
    let port = free_port();
    let antenne = opts
        .ingest_key(KEY)
        .arg("--srt-listen")
        .arg(&format!("127.0.0.1:{port}"))
        .start()?;
    Ok((antenne, port))
}

fn ingest_key_id(antenne: &Antenne) -> Result<String> {
    let (_, keys) = antenne.request("GET", "/api/v1/ingest-keys", None)?;
    keys[0]["id"]
        .as_str()
        .map(str::to_owned)
        .context("an ingest key id")
}

fn set_passphrase(antenne: &Antenne, passphrase: &str) -> Result<()> {
    let id = ingest_key_id(antenne)?;
    let (status, body) = antenne.request(
        "PUT",
        &format!("/api/v1/ingest-keys/{id}/srt-passphrase"),
        Some(&json!({ "passphrase": passphrase })),
    )?;
    anyhow::ensure!(status == 204, "setting the passphrase: {status} {body}");
    Ok(())
}

/// ffmpeg publishing the support publisher's test stream as MPEG-TS over
/// SRT. Killed on drop.
struct SrtPublisher {
    child: ChildGuard,
    _dir: tempfile::TempDir,
}

impl SrtPublisher {
    fn start(opts: PublisherOptions, url: &str) -> Result<SrtPublisher> {
        let ffmpeg = require_program(&["ffmpeg"], "ffmpeg")?;
        let dir = tempfile::Builder::new()
            .prefix("antenne-test-srt-ffmpeg-")
            .tempdir()?;
        let mut args = opts.ffmpeg_args(url);
        // The support publisher writes FLV; SRT carries MPEG-TS.
        let n = args.len();
        anyhow::ensure!(n >= 3 && args[n - 3] == "-f", "unexpected args {args:?}");
        args[n - 2] = "mpegts".into();
        let mut cmd = Command::new(ffmpeg);
        cmd.args(args).current_dir(dir.path());
        let child = ChildGuard::spawn("ffmpeg-srt", cmd, &dir.path().join("ffmpeg.log"))?;
        Ok(SrtPublisher { child, _dir: dir })
    }

    fn log(&self) -> String {
        self.child.log()
    }
}

fn srt_url(port: u16, stream_id: &str, passphrase: Option<&str>) -> String {
    let mut url = format!("srt://127.0.0.1:{port}?streamid={stream_id}");
    if let Some(p) = passphrase {
        url.push_str(&format!("&passphrase={p}"));
    }
    url
}

#[test]
fn ffmpeg_publishes_over_srt_with_a_passphrase_and_two_destinations_get_decodable_media(
) -> Result<()> {
    let nginx = Nginx::start()?;
    let (antenne, port) = start_with_srt(Antenne::options())?;
    let settings = antenne.request("GET", "/api/v1/settings", None)?.1;
    assert_eq!(settings["srt_port"], port, "{settings}");
    set_passphrase(&antenne, PASSPHRASE)?;

    let a = antenne.add_destination("A", &nginx.url(), "srt_dest_a", true)?;
    let b = antenne.add_destination("B", &nginx.url(), "srt_dest_b", true)?;
    // The access-control form, as some encoders send it.
    let stream_id = format!("#!::r=live/{KEY},m=publish");
    let publisher = SrtPublisher::start(
        Publisher::options().size(640, 360),
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
    let (antenne, port) = start_with_srt(Antenne::options())?;
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
    let (antenne, _) =
        start_with_srt(Antenne::options().env("ANTENNE_LIBSRT", "/nonexistent/libsrt.so.1.5"))?;
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
