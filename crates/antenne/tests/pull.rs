//! Pulling with real peers on 127.0.0.1: ffmpeg publishes to an
//! nginx-rtmp (the streamer's existing server, "Solution 3"), antenne
//! pulls the stream from it (directly, or through stunnel for rtmps) and
//! relays it to an nginx-rtmp destination; ffprobe checks what arrived.
//! Pulling from `srt://` (ffmpeg as an SRT listener) is in `pull/srt.rs`.

#[path = "pull/srt.rs"]
mod srt;
mod support;

use std::time::Duration;

use anyhow::{bail, Result};
use serde_json::{json, Value};
use support::*;

const KEY: &str = "pull_ingest_key_0123456789";
/// The stream name on the source nginx: a secret like any stream key.
const SOURCE_KEY: &str = "obs_source_secret_42";
const DEST_KEY: &str = "pull_dest_key_123456";

fn ingest_id(antenne: &Antenne) -> Result<String> {
    let keys = antenne.request_expect("GET", "/api/v1/ingest-keys", None, 200)?;
    match keys[0]["id"].as_str() {
        Some(id) => Ok(id.to_owned()),
        None => bail!("no ingest key in {keys}"),
    }
}

fn pull_path(id: &str) -> String {
    format!("/api/v1/ingest-keys/{id}/pull")
}

/// Polls the pull until its state is `state`; every state seen on the way
/// is pushed to `seen`.
fn wait_for_pull(
    antenne: &Antenne,
    id: &str,
    state: &str,
    timeout: Duration,
    seen: &mut Vec<String>,
) -> Result<Value> {
    let mut last = Value::Null;
    let found = wait_for(timeout, || {
        let v = antenne
            .request_expect("GET", &pull_path(id), None, 200)
            .ok()?;
        if let Some(s) = v["state"].as_str() {
            if seen.last().map(String::as_str) != Some(s) {
                seen.push(s.to_owned());
            }
        }
        if v["state"] == state {
            Some(v)
        } else {
            last = v;
            None
        }
    });
    match found {
        Some(v) => Ok(v),
        None => bail!(
            "pull not {state} within {timeout:?}; last {last}; seen {seen:?}\n{}",
            tail_of(&antenne.log())
        ),
    }
}

fn tail_of(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// A source nginx with ffmpeg publishing `SOURCE_KEY` to it, antenne
/// pulling it, and a destination nginx.
struct Setup {
    source: Nginx,
    publisher: Publisher,
    dest: Nginx,
    antenne: Antenne,
    id: String,
    dest_id: String,
}

fn setup() -> Result<Setup> {
    let source = Nginx::start()?;
    let publisher = Publisher::start(&source.stream_url(SOURCE_KEY))?;
    source.wait_for_publish_count(SOURCE_KEY, 1, Duration::from_secs(15))?;
    let dest = Nginx::start()?;
    let antenne = Antenne::options().ingest_key(KEY).start()?;
    let d = antenne.add_destination("Dest", &dest.url(), DEST_KEY, true)?;
    let id = ingest_id(&antenne)?;
    let url = source.stream_url(SOURCE_KEY);
    let answer = antenne.request_expect(
        "PUT",
        &pull_path(&id),
        Some(&json!({"url": url, "enabled": true})),
        200,
    )?;
    assert_eq!(answer["configured"], true, "{answer}");
    assert!(
        !answer.to_string().contains(SOURCE_KEY),
        "the key is masked in the answer: {answer}"
    );
    Ok(Setup {
        source,
        publisher,
        dest,
        antenne,
        id,
        dest_id: Antenne::id_of(&d),
    })
}

#[test]
fn relays_a_stream_pulled_from_nginx_rtmp() -> Result<()> {
    let s = setup()?;
    let mut seen = vec![];
    let pull = wait_for_pull(
        &s.antenne,
        &s.id,
        "live",
        Duration::from_secs(20),
        &mut seen,
    )?;
    assert!(pull["since"].is_string(), "{pull}");
    s.antenne
        .wait_for_state(&s.dest_id, "live", Duration::from_secs(20))?;
    let ingest = s.antenne.ingest()?;
    let i = &ingest["ingests"][0];
    assert_eq!(i["live"], true, "{ingest}");
    assert_eq!(i["pull"]["state"], "live", "{ingest}");
    s.dest
        .wait_for_recording(DEST_KEY, 300_000, Duration::from_secs(30))?;
    std::thread::sleep(Duration::from_secs(3));
    let rec = s.dest.latest_recording(DEST_KEY).expect("recorded");
    let report = assert_good_recording(&rec, 2000);
    assert_eq!(report.width, Some(640), "{}", report.summary());

    // The source's key: masked everywhere unless revealed.
    let masked = s
        .antenne
        .request_expect("GET", &pull_path(&s.id), None, 200)?;
    assert!(!masked.to_string().contains(SOURCE_KEY), "{masked}");
    let revealed = s.antenne.request_expect(
        "GET",
        &format!("{}?reveal=keys", pull_path(&s.id)),
        None,
        200,
    )?;
    assert_eq!(revealed["url"], s.source.stream_url(SOURCE_KEY));
    let events = s
        .antenne
        .request_expect("GET", "/api/v1/events", None, 200)?;
    assert!(!events.to_string().contains(SOURCE_KEY), "{events}");
    assert!(!ingest.to_string().contains(SOURCE_KEY), "{ingest}");
    assert!(!s.antenne.log().contains(SOURCE_KEY), "key in the log");
    Ok(())
}

#[test]
fn reconnects_when_the_source_goes_away_and_the_destination_stays_connected() -> Result<()> {
    let mut s = setup()?;
    let mut seen = vec![];
    wait_for_pull(
        &s.antenne,
        &s.id,
        "live",
        Duration::from_secs(20),
        &mut seen,
    )?;
    s.antenne
        .wait_for_state(&s.dest_id, "live", Duration::from_secs(20))?;
    std::thread::sleep(Duration::from_secs(2));

    // The publisher at the source stops and comes back: the pull waits on
    // its connection, then is live again.
    s.publisher.kill();
    let mut seen = vec![];
    wait_for_pull(
        &s.antenne,
        &s.id,
        "waiting",
        Duration::from_secs(15),
        &mut seen,
    )?;
    s.publisher = Publisher::start(&s.source.stream_url(SOURCE_KEY))?;
    wait_for_pull(
        &s.antenne,
        &s.id,
        "live",
        Duration::from_secs(20),
        &mut seen,
    )?;
    std::thread::sleep(Duration::from_secs(2));

    // The source server itself goes away: the pull retries with backoff,
    // showing the error, and comes back when the server does.
    s.publisher.kill();
    s.source.kill();
    let mut seen = vec![];
    let retrying = wait_for_pull(
        &s.antenne,
        &s.id,
        "retrying",
        Duration::from_secs(15),
        &mut seen,
    )?;
    assert!(retrying["error"].is_string(), "{retrying}");
    assert!(retrying["retry_in_seconds"].is_u64(), "{retrying}");
    s.source.restart()?;
    let restarted = std::time::Instant::now();
    s.publisher = Publisher::start(&s.source.stream_url(SOURCE_KEY))?;
    let live = wait_for_pull(
        &s.antenne,
        &s.id,
        "live",
        Duration::from_secs(45),
        &mut seen,
    )?;
    assert!(live["reconnects"].as_u64() >= Some(1), "{live}");
    assert!(live["last_error"].is_string(), "{live}");
    // A figure, not a pass/fail bound: it depends on the backoff's draw.
    eprintln!(
        "pull live again {} ms after the source server restarted (states seen: {seen:?})",
        restarted.elapsed().as_millis()
    );
    // The destination gets the stream again.
    let size = |n: &Nginx| {
        n.latest_recording(DEST_KEY)
            .and_then(|p| p.metadata().ok())
            .map_or(0, |m| m.len())
    };
    let before = size(&s.dest);
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        size(&s.dest) > before + 100_000,
        "the destination receives again: {before} → {}",
        size(&s.dest)
    );

    // The destination stayed connected (grace) and got one continuous
    // stream: one publish, timestamps only forward, decodable.
    let d = s.antenne.get_destination(&s.dest_id)?;
    assert_eq!(d["status"]["state"], "live", "{d}");
    assert_eq!(s.dest.publish_count(DEST_KEY), 1, "one connection: {d}");
    let rec = s.dest.latest_recording(DEST_KEY).expect("recorded");
    assert_good_recording(&rec, 5000);
    assert!(!s.antenne.log().contains(SOURCE_KEY), "key in the log");
    Ok(())
}

#[test]
fn pulls_over_rtmps_through_stunnel() -> Result<()> {
    let source = Nginx::start()?;
    let stunnel = Stunnel::start(source.port())?;
    let _publisher = Publisher::start(&source.stream_url(SOURCE_KEY))?;
    let dest = Nginx::start()?;
    let antenne = Antenne::options()
        .ingest_key(KEY)
        .extra_ca_file(stunnel.ca_file())
        .start()?;
    let d = antenne.add_destination("Dest", &dest.url(), DEST_KEY, true)?;
    let id = ingest_id(&antenne)?;
    let url = stunnel.stream_url(SOURCE_KEY);
    assert!(url.starts_with("rtmps://"), "{url}");
    antenne.request_expect(
        "PUT",
        &pull_path(&id),
        Some(&json!({"url": url, "enabled": true})),
        200,
    )?;
    let mut seen = vec![];
    wait_for_pull(&antenne, &id, "live", Duration::from_secs(30), &mut seen)?;
    antenne.wait_for_state(&Antenne::id_of(&d), "live", Duration::from_secs(20))?;
    dest.wait_for_recording(DEST_KEY, 300_000, Duration::from_secs(30))?;
    std::thread::sleep(Duration::from_secs(2));
    let rec = dest.latest_recording(DEST_KEY).expect("recorded");
    assert_good_recording(&rec, 2000);
    Ok(())
}

#[test]
fn refuses_a_bad_pull_url_with_a_clear_error_and_never_shows_the_key() -> Result<()> {
    let antenne = Antenne::options().ingest_key(KEY).start()?;
    let id = ingest_id(&antenne)?;
    let none = antenne.request_expect("GET", &pull_path(&id), None, 200)?;
    assert_eq!(none["configured"], false, "{none}");
    for (url, expect) in [
        ("http://127.0.0.1/live/x", "rtmp://"),
        ("rtmp://127.0.0.1:1935/live", "stream"),
        ("rtmp://127.0.0.1:70000/live/x", "port"),
        ("rtmp://127.0.0.1/live/a b", "spaces"),
    ] {
        let (status, body) = antenne.request(
            "PUT",
            &pull_path(&id),
            Some(&json!({"url": url, "enabled": true})),
        )?;
        assert_eq!(status, 400, "{url}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(expect), "{url}: {error}");
    }
    let (status, _) = antenne.request(
        "PUT",
        "/api/v1/ingest-keys/0000000000/pull",
        Some(&json!({"url": "rtmp://127.0.0.1/live/x"})),
    )?;
    assert_eq!(status, 404);
    let (status, body) =
        antenne.request("PUT", &pull_path(&id), Some(&json!({"enabled": true})))?;
    assert_eq!(status, 400, "no URL and none configured: {body}");
    let after = antenne.request_expect("GET", &pull_path(&id), None, 200)?;
    assert_eq!(after["configured"], false, "nothing saved: {after}");

    // A good URL to a port where nothing listens: saved, retrying with the
    // reason, the key masked in every answer, event and log line.
    let port = free_port();
    let url = format!("rtmp://127.0.0.1:{port}/live/{SOURCE_KEY}");
    let set = antenne.request_expect(
        "PUT",
        &pull_path(&id),
        Some(&json!({"url": url, "enabled": true})),
        200,
    )?;
    assert!(!set.to_string().contains(SOURCE_KEY), "{set}");
    let mut seen = vec![];
    let retrying = wait_for_pull(
        &antenne,
        &id,
        "retrying",
        Duration::from_secs(15),
        &mut seen,
    )?;
    assert!(
        retrying["error"]
            .as_str()
            .is_some_and(|e| e.contains("127.0.0.1")),
        "{retrying}"
    );
    // Switched off without sending the URL (and its key) again.
    let off = antenne.request_expect(
        "PUT",
        &pull_path(&id),
        Some(&json!({"enabled": false})),
        200,
    )?;
    assert_eq!(off["state"], "off", "{off}");
    for path in [
        pull_path(&id),
        "/api/v1/ingest".into(),
        "/api/v1/events".into(),
    ] {
        let v = antenne.request_expect("GET", &path, None, 200)?;
        assert!(!v.to_string().contains(SOURCE_KEY), "{path}: {v}");
    }
    assert!(!antenne.log().contains(SOURCE_KEY), "key in the log");
    antenne.request_expect("DELETE", &pull_path(&id), None, 204)?;
    let gone = antenne.request_expect("GET", &pull_path(&id), None, 200)?;
    assert_eq!(gone["configured"], false, "{gone}");
    Ok(())
}

#[test]
fn the_ingest_card_sets_up_a_pull_shows_its_state_and_the_rtmps_server() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let pki = make_test_pki(dir.path())?;
    let rtmps_port = free_port();
    let mut source = Nginx::start()?;
    let _publisher = Publisher::start(&source.stream_url(SOURCE_KEY))?;
    source.wait_for_publish_count(SOURCE_KEY, 1, Duration::from_secs(15))?;
    let antenne = Antenne::options()
        .ingest_key(KEY)
        .arg("--rtmps-listen")
        .arg(&format!("127.0.0.1:{rtmps_port}"))
        .env("ANTENNE_TLS_CERT", &pki.server_cert.display().to_string())
        .env("ANTENNE_TLS_KEY", &pki.server_key.display().to_string())
        .start()?;
    let browser = Browser::start("en-US")?;
    browser.log_in(&antenne.url("/"), ADMIN_PASSWORD)?;
    let card = "[data-testid=ingest-card]";

    // The RTMPS server beside the RTMP one, with its copy button.
    let tls = browser.wait_text(
        &format!("{card} [data-testid=obs-server-tls]"),
        Duration::from_secs(10),
        |t| t.starts_with("rtmps://"),
    )?;
    assert_eq!(tls, format!("rtmps://127.0.0.1:{rtmps_port}/live"));
    browser.find(&format!("{card} [data-action=copy-server-tls]"))?;

    // Pull from the source: the card goes to "Pulling".
    browser.wait_text(
        &format!("{card} [data-testid=pull-state]"),
        Duration::from_secs(10),
        |t| t == "Not pulling",
    )?;
    browser.fill(
        &format!("{card} [data-testid=pull-url]"),
        &source.stream_url(SOURCE_KEY),
    )?;
    browser.click(&format!("{card} [data-testid=pull-save]"))?;
    browser.wait_attr(
        &format!("{card} [data-testid=pull-state]"),
        "data-state",
        "live",
        Duration::from_secs(30),
    )?;
    assert_eq!(
        browser.text(&format!("{card} [data-testid=pull-state]"))?,
        "Pulling"
    );
    browser.wait_attr(
        &format!("{card} [data-testid=ingest-state]"),
        "data-state",
        "live",
        Duration::from_secs(15),
    )?;
    let current = browser.text(&format!("{card} [data-testid=pull-current]"))?;
    assert!(current.contains("rtmp://127.0.0.1:"), "{current}");
    let html = browser.js("return document.documentElement.outerHTML", json!([]))?;
    assert!(
        !html.to_string().contains(SOURCE_KEY),
        "the source key is not in the page"
    );

    // The source goes away: retrying, with a countdown and the error.
    source.kill();
    browser.wait_attr(
        &format!("{card} [data-testid=pull-state]"),
        "data-state",
        "retrying",
        Duration::from_secs(30),
    )?;
    let error = browser.wait_text(
        &format!("{card} [data-testid=pull-error]"),
        Duration::from_secs(10),
        |t| !t.is_empty(),
    )?;
    assert!(
        error.contains("127.0.0.1") || error.contains("closed"),
        "{error}"
    );
    let detail = browser.text(&format!("{card} [data-testid=pull-detail]"))?;
    assert!(detail.contains("next try in"), "{detail}");
    browser.screenshot(&artifacts_dir().join("pull-card.png"))?;

    // Switched off from the card.
    browser.click(&format!("{card} [data-testid=pull-enabled]"))?;
    browser.wait_text(
        &format!("{card} [data-testid=pull-state]"),
        Duration::from_secs(10),
        |t| t == "Off",
    )?;
    Ok(())
}

#[test]
fn drops_a_source_that_sends_no_media_and_tries_again() -> Result<()> {
    // nginx-rtmp accepts to play a stream nobody publishes, then sends
    // nothing: the watchdog drops it after 20 s.
    let source = Nginx::start()?;
    let antenne = Antenne::options().ingest_key(KEY).start()?;
    let id = ingest_id(&antenne)?;
    antenne.request_expect(
        "PUT",
        &pull_path(&id),
        Some(&json!({"url": source.stream_url(SOURCE_KEY)})),
        200,
    )?;
    let mut seen = vec![];
    wait_for_pull(&antenne, &id, "waiting", Duration::from_secs(15), &mut seen)?;
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
    let ingest = antenne.ingest()?;
    assert_eq!(ingest["ingests"][0]["live"], false, "{ingest}");
    Ok(())
}

#[test]
fn push_and_pull_on_one_key_take_turns() -> Result<()> {
    let s = setup()?;
    let mut seen = vec![];
    wait_for_pull(
        &s.antenne,
        &s.id,
        "live",
        Duration::from_secs(20),
        &mut seen,
    )?;

    // While the pull is live, OBS pushing to the same key is refused.
    let mut pusher = Publisher::start(&s.antenne.ingest_url(KEY))?;
    let exit = pusher.wait(Duration::from_secs(20));
    assert!(
        exit.is_some_and(|e| !e.success()),
        "the pusher is refused: {exit:?}\n{}",
        pusher.log()
    );
    assert!(s.antenne.log().contains("refused second publisher"));
    let pull = s
        .antenne
        .request_expect("GET", &pull_path(&s.id), None, 200)?;
    assert_eq!(pull["state"], "live", "the pull goes on: {pull}");

    // Pull off: OBS pushes; pull on again: it waits for the pusher.
    let off = s.antenne.request_expect(
        "PUT",
        &pull_path(&s.id),
        Some(&json!({"enabled": false})),
        200,
    )?;
    assert_eq!(off["state"], "off", "{off}");
    let _pusher = Publisher::start(&s.antenne.ingest_url(KEY))?;
    assert!(
        wait_until(Duration::from_secs(20), || s
            .antenne
            .ingest()
            .is_ok_and(|i| i["ingests"][0]["live"] == true)),
        "the pushed stream is live"
    );
    s.antenne.request_expect(
        "PUT",
        &pull_path(&s.id),
        Some(&json!({"enabled": true})),
        200,
    )?;
    let mut seen = vec![];
    let waiting = wait_for_pull(
        &s.antenne,
        &s.id,
        "retrying",
        Duration::from_secs(30),
        &mut seen,
    )?;
    assert!(
        waiting["error"]
            .as_str()
            .is_some_and(|e| e.contains("a publisher is live on this ingest key")),
        "{waiting}"
    );
    Ok(())
}
