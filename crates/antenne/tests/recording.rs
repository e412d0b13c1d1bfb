//! Recordings end to end: real ffmpeg publishes to the real antenne, which
//! records the ingest as fragmented MP4; ffprobe and ffmpeg check the
//! files like a user's player would. Also what a crash (publisher or
//! antenne SIGKILLed), a publisher's return within the grace period and a
//! nearly full disk do to a recording, and the recordings API.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use support::*;

const KEY: &str = "recording_test_key_0123456789";

fn start_antenne(grace_secs: u64, recordings: Option<&Path>) -> Antenne {
    let mut opts = Antenne::options()
        .ingest_key(KEY)
        .grace_period_secs(grace_secs);
    if let Some(dir) = recordings {
        opts = opts.arg("--recordings-dir").arg(&dir.to_string_lossy());
    }
    Antenne::start_with(opts).expect("antenne starts")
}

/// 640x360, a keyframe every half second (so a recording starts at most
/// half a second before it was asked for).
fn publish(antenne: &Antenne) -> Publisher {
    Publisher::options()
        .gop(15)
        .start(&antenne.ingest_url(KEY))
        .expect("ffmpeg publishes")
}

fn ingest_id(antenne: &Antenne) -> String {
    let v = antenne.ingest().expect("GET /api/v1/ingest");
    v["ingests"][0]["id"]
        .as_str()
        .expect("the ingest has an id")
        .to_owned()
}

fn wait_live(antenne: &Antenne) {
    assert!(
        wait_until(Duration::from_secs(20), || antenne
            .ingest()
            .is_ok_and(|v| v["ingests"][0]["live"] == json!(true))),
        "the ingest goes live"
    );
}

fn recordings(antenne: &Antenne) -> Value {
    antenne
        .request_expect("GET", "/api/v1/recordings", None, 200)
        .expect("GET /api/v1/recordings")
}

fn is_recording(antenne: &Antenne) -> bool {
    recordings(antenne)["ingests"][0]["recording"] == json!(true)
}

fn start_recording(antenne: &Antenne, id: &str) {
    antenne
        .request_expect("POST", &format!("/api/v1/ingest/{id}/recording"), None, 202)
        .expect("recording starts");
}

/// Waits until no file is being written any more.
fn wait_closed(antenne: &Antenne, timeout: Duration) {
    assert!(
        wait_until(timeout, || {
            let v = recordings(antenne);
            v["ingests"][0]["recording"] == json!(false)
                && v["recordings"]
                    .as_array()
                    .is_some_and(|r| r.iter().all(|f| f["recording"] == json!(false)))
        }),
        "the recording ends: {}",
        recordings(antenne)
    );
}

fn mp4_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "mp4"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// ffprobe's format duration, seconds.
fn duration_secs(path: &Path) -> f64 {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0)
}

/// What a user checks: H.264 640x360 + AAC, starts on a keyframe, decodes
/// without error, lasts at least `min_ms`.
fn assert_plays(path: &Path, min_ms: i64) -> StreamReport {
    let report = analyze(path).expect("ffprobe reads the recording");
    let what = format!("{}: {}", path.display(), report.summary());
    assert_eq!(report.video_codec.as_deref(), Some("h264"), "{what}");
    assert_eq!(report.audio_codec.as_deref(), Some("aac"), "{what}");
    assert_eq!(
        (report.width, report.height),
        (Some(640), Some(360)),
        "{what}"
    );
    assert!(report.first_video_is_keyframe(), "{what}");
    assert!(report.video_dts_monotonic(), "{what}");
    assert!(!report.audio_packets.is_empty(), "audio present: {what}");
    assert!(
        report.video_duration_ms() >= min_ms,
        "lasts {min_ms} ms: {what}"
    );
    let errors = decode_errors(path).expect("ffmpeg decodes the recording");
    assert!(errors.trim().is_empty(), "decodes cleanly: {errors}");
    report
}

/// The default recordings directory.
fn default_dir(antenne: &Antenne) -> PathBuf {
    antenne.data_dir().join("recordings")
}

#[test]
fn records_a_live_ingest_to_an_mp4_that_plays_in_any_player() {
    let antenne = start_antenne(5, None);
    let _publisher = publish(&antenne);
    wait_live(&antenne);
    let id = ingest_id(&antenne);
    start_recording(&antenne, &id);
    let started = Instant::now();
    assert!(is_recording(&antenne));
    std::thread::sleep(Duration::from_secs(12));
    antenne
        .request_expect(
            "DELETE",
            &format!("/api/v1/ingest/{id}/recording"),
            None,
            204,
        )
        .expect("recording stops");
    let asked = started.elapsed().as_secs_f64();
    wait_closed(&antenne, Duration::from_secs(15));
    let files = mp4_files(&default_dir(&antenne));
    assert_eq!(files.len(), 1, "one file: {files:?}");
    let name = files[0].file_name().and_then(|n| n.to_str()).unwrap_or("");
    assert!(
        name.starts_with(&format!("{id}_")),
        "named by ingest id: {name}"
    );
    assert!(!name.contains(KEY), "the key is not in the name");
    assert_plays(&files[0], 10_000);
    let d = duration_secs(&files[0]);
    assert!(
        (d - asked).abs() <= 1.0,
        "lasts {d:.2} s for {asked:.2} s of recording"
    );
    let listed = &recordings(&antenne)["recordings"][0];
    assert_eq!(listed["ingest"], json!(id));
    assert!(
        (listed["duration_seconds"].as_f64().unwrap_or(0.0) - d).abs() <= 0.5,
        "{listed}"
    );
    let events = antenne
        .request_expect("GET", "/api/v1/events", None, 200)
        .expect("events");
    let text = events.to_string();
    assert!(
        text.contains("recording_started") && text.contains("recording_stopped"),
        "{text}"
    );
}

#[test]
fn a_publisher_killed_mid_recording_leaves_a_file_that_plays() {
    let antenne = start_antenne(2, None);
    let mut publisher = publish(&antenne);
    wait_live(&antenne);
    start_recording(&antenne, &ingest_id(&antenne));
    std::thread::sleep(Duration::from_secs(6));
    publisher.kill();
    // The grace period passes, the file is closed.
    wait_closed(&antenne, Duration::from_secs(20));
    let files = mp4_files(&default_dir(&antenne));
    assert_eq!(files.len(), 1, "{files:?}");
    assert_plays(&files[0], 4_500);
}

#[test]
fn antenne_killed_mid_recording_leaves_a_file_that_plays_to_its_last_fragment() {
    let mut antenne = start_antenne(5, None);
    let publisher = publish(&antenne);
    wait_live(&antenne);
    start_recording(&antenne, &ingest_id(&antenne));
    std::thread::sleep(Duration::from_secs(6));
    antenne.kill();
    drop(publisher);
    let files = mp4_files(&default_dir(&antenne));
    assert_eq!(files.len(), 1, "{files:?}");
    // As it is on disk after the crash: every complete fragment reads.
    let report = analyze(&files[0]).expect("ffprobe reads the crashed file");
    assert!(report.video_duration_ms() >= 4_000, "{}", report.summary());
    // The next start cuts a fragment the crash left half written; then it
    // decodes cleanly.
    antenne.restart().expect("antenne restarts");
    assert_plays(&files[0], 4_000);
    let listed = recordings(&antenne);
    assert_eq!(
        listed["recordings"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
}

#[test]
fn a_publisher_back_within_the_grace_period_continues_the_same_file() {
    let antenne = start_antenne(15, None);
    let mut publisher = publish(&antenne);
    wait_live(&antenne);
    start_recording(&antenne, &ingest_id(&antenne));
    std::thread::sleep(Duration::from_secs(4));
    publisher.kill();
    assert!(wait_until(Duration::from_secs(10), || antenne
        .ingest()
        .is_ok_and(|v| v["ingests"][0]["live"] == json!(false))));
    let _publisher = publish(&antenne);
    wait_live(&antenne);
    std::thread::sleep(Duration::from_secs(4));
    assert!(is_recording(&antenne), "still recording across the drop");
    antenne
        .request_expect(
            "DELETE",
            &format!("/api/v1/ingest/{}/recording", ingest_id(&antenne)),
            None,
            204,
        )
        .expect("stops");
    wait_closed(&antenne, Duration::from_secs(15));
    let files = mp4_files(&default_dir(&antenne));
    assert_eq!(files.len(), 1, "one file across the drop: {files:?}");
    assert_plays(&files[0], 7_000);
}

/// Leaves `keep` bytes free on the file system of `dir`.
fn fill_to(dir: &Path, keep: u64) -> Result<()> {
    let free = fs_free(dir)?;
    if free <= keep {
        bail!("only {free} bytes free");
    }
    let f = std::fs::File::create(dir.join("filler"))?;
    // tmpfs allocates on write: write it.
    let mut left = free - keep;
    let block = vec![0x5au8; 1 << 20];
    let mut w = std::io::BufWriter::new(f);
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        std::io::Write::write_all(&mut w, &block[..n])?;
        left -= n as u64;
    }
    std::io::Write::flush(&mut w)?;
    Ok(())
}

fn fs_free(dir: &Path) -> Result<u64> {
    let out = std::process::Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(dir)
        .output()
        .context("df")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .context("df output")
}

#[test]
fn low_free_space_stops_the_recording_with_an_event_and_relaying_goes_on() {
    let tmpfs = Tmpfs::mount(64 * 1024).expect("a 64 MiB tmpfs (needs root)");
    let nginx = Nginx::start().expect("nginx-rtmp receiver");
    let antenne = start_antenne(5, Some(tmpfs.path()));
    antenne
        .request_expect(
            "PUT",
            "/api/v1/recordings/settings",
            Some(&json!({"min_free_mib": 40})),
            200,
        )
        .expect("settings saved");
    let dest = antenne
        .add_destination("nginx", &nginx.url(), "out", true)
        .expect("destination");
    let dest_id = Antenne::id_of(&dest);
    let _publisher = publish(&antenne);
    wait_live(&antenne);
    antenne
        .wait_for_state(&dest_id, "live", Duration::from_secs(20))
        .expect("the destination goes live");
    // About 3 MiB above the limit: a few seconds of recording.
    fill_to(tmpfs.path(), 43 << 20).expect("fills the tmpfs");
    start_recording(&antenne, &ingest_id(&antenne));
    assert!(
        wait_until(Duration::from_secs(60), || !is_recording(&antenne)),
        "recording stops under the limit"
    );
    let status = recordings(&antenne);
    let error = status["ingests"][0]["last_error"].as_str().unwrap_or("");
    assert!(error.contains("MiB free"), "says why: {status}");
    let events = antenne
        .request_expect("GET", "/api/v1/events", None, 200)
        .expect("events")
        .to_string();
    assert!(
        events.contains("recording_failed") && events.contains("MiB free"),
        "{events}"
    );
    // Starting again is refused while the disk is short.
    let (code, _) = antenne
        .request(
            "POST",
            &format!("/api/v1/ingest/{}/recording", ingest_id(&antenne)),
            None,
        )
        .expect("request");
    assert_eq!(code, 507);
    // What was recorded plays.
    let files = mp4_files(tmpfs.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert_plays(&files[0], 1_000);
    // The relay never noticed.
    std::thread::sleep(Duration::from_secs(3));
    let d = antenne.get_destination(&dest_id).expect("destination");
    assert_eq!(Antenne::state_of(&d), Some("live"), "{d}");
    assert_eq!(d["status"]["dropped_frames"], json!(0), "{d}");
    assert_eq!(d["status"]["reconnects"], json!(0), "{d}");
    let received = nginx.recordings("out");
    let last = received.last().expect("nginx recorded the relay");
    let report = assert_good_recording(last, 8_000);
    assert!(report.max_video_gap_ms() < 200, "{}", report.summary());
}

/// GET with the API token, raw bytes.
fn get_bytes(antenne: &Antenne, path: &str, range: Option<&str>) -> Result<(u16, Vec<u8>)> {
    let mut req =
        ureq::get(&antenne.url(path)).set("Authorization", &format!("Bearer {}", antenne.token()));
    if let Some(r) = range {
        req = req.set("Range", r);
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, _)) => return Ok((code, Vec::new())),
        Err(e) => return Err(e.into()),
    };
    let code = resp.status();
    let mut body = Vec::new();
    resp.into_reader().read_to_end(&mut body)?;
    Ok((code, body))
}

#[test]
fn recordings_are_listed_downloaded_and_deleted_through_the_api() {
    let antenne = start_antenne(1, None);
    let id = ingest_id(&antenne);
    // Whenever live: no start needed.
    antenne
        .request_expect(
            "PUT",
            "/api/v1/recordings/settings",
            Some(&json!({"auto": [id]})),
            200,
        )
        .expect("settings saved");
    let mut publisher = publish(&antenne);
    wait_live(&antenne);
    assert!(
        wait_until(Duration::from_secs(10), || is_recording(&antenne)),
        "records when live"
    );
    std::thread::sleep(Duration::from_secs(4));
    let file = recordings(&antenne)["recordings"][0]["id"]
        .as_str()
        .expect("listed")
        .to_owned();
    let (code, _) = antenne
        .request("DELETE", &format!("/api/v1/recordings/{file}"), None)
        .expect("request");
    assert_eq!(code, 409, "a file being written is not deleted");
    publisher.kill();
    wait_closed(&antenne, Duration::from_secs(20));

    let list = recordings(&antenne);
    let listed = &list["recordings"][0];
    assert_eq!(listed["ingest"], json!(id), "{list}");
    assert!(
        listed["duration_seconds"].as_f64().unwrap_or(0.0) >= 3.0,
        "{list}"
    );
    assert!(
        listed["started_at"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z')),
        "{list}"
    );
    let path = default_dir(&antenne).join(&file);
    let on_disk = std::fs::read(&path).expect("the file");
    assert_eq!(listed["size_bytes"], json!(on_disk.len()));

    let (code, body) =
        get_bytes(&antenne, &format!("/api/v1/recordings/{file}"), None).expect("download");
    assert_eq!(code, 200);
    assert!(body == on_disk, "downloaded bytes equal the file");
    let (code, body) = get_bytes(
        &antenne,
        &format!("/api/v1/recordings/{file}"),
        Some("bytes=100-199"),
    )
    .expect("range");
    assert_eq!((code, body.as_slice()), (206, &on_disk[100..200]));

    // Never a path: the database next door stays out of reach.
    for bad in [
        "..%2Fantenne.db",
        "%2E%2E%2Fantenne.db",
        "antenne.db",
        "..%2F..%2Fetc%2Fpasswd",
    ] {
        let (code, body) =
            get_bytes(&antenne, &format!("/api/v1/recordings/{bad}"), None).expect("request");
        assert_eq!(code, 404, "{bad}");
        assert!(body.is_empty());
        let (code, _) = antenne
            .request("DELETE", &format!("/api/v1/recordings/{bad}"), None)
            .expect("request");
        assert_eq!(code, 404, "{bad}");
    }
    assert!(antenne.data_dir().join("antenne.db").exists());

    // Without credentials: refused.
    let (code, _) = antenne
        .request_anonymous("GET", &format!("/api/v1/recordings/{file}"), None)
        .expect("request");
    assert_eq!(code, 401);

    antenne
        .request_expect("DELETE", &format!("/api/v1/recordings/{file}"), None, 204)
        .expect("deleted");
    assert!(!path.exists());
    assert_eq!(recordings(&antenne)["recordings"], json!([]));
}

/// Logs in as admin in a fresh Chromium and waits for the dashboard.
fn logged_in_browser(antenne: &Antenne) -> Browser {
    let browser = Browser::start("en-US").expect("chromium + chromedriver");
    browser
        .log_in(&antenne.url("/"), ADMIN_PASSWORD)
        .expect("logs in to the dashboard");
    browser
}

#[test]
fn the_page_records_an_ingest_then_plays_and_deletes_the_recording() {
    let antenne = start_antenne(5, None);
    let _publisher = publish(&antenne);
    wait_live(&antenne);
    let browser = logged_in_browser(&antenne);
    let toggle = "[data-testid=ingest-card] [data-testid=rec-toggle]";
    browser
        .wait_attr(toggle, "data-recording", "false", Duration::from_secs(15))
        .expect("a Record button on the ingest card");
    browser.click(toggle).expect("starts recording");
    browser
        .wait_attr(toggle, "data-recording", "true", Duration::from_secs(15))
        .expect("the card shows the recording");
    assert!(is_recording(&antenne));
    std::thread::sleep(Duration::from_secs(4));
    browser.click(toggle).expect("stops recording");
    browser
        .wait_attr(toggle, "data-recording", "false", Duration::from_secs(15))
        .expect("the card shows it stopped");
    wait_closed(&antenne, Duration::from_secs(15));
    // Listed; Play puts it in the page's <video>, which plays.
    let row = "[data-testid=recording-row]";
    browser
        .wait_text(row, Duration::from_secs(15), |t| t.contains("MiB"))
        .expect("the recording is listed");
    browser
        .click(&format!("{row} [data-rec-list=play]"))
        .expect("play");
    let played = wait_for(Duration::from_secs(20), || {
        let v = browser
            .js(
                "const v = document.querySelector('[data-testid=rec-player]');\
                 v.muted = true; if (v.paused) v.play().catch(() => {});\
                 return [v.currentTime, v.videoWidth, v.error ? v.error.code : 0];",
                json!([]),
            )
            .ok()?;
        (v[0].as_f64()? > 1.0).then_some(v)
    });
    let played = played.expect("the recording plays in the page");
    assert_eq!(played[1], json!(640), "{played}");
    assert_eq!(played[2], json!(0), "no media error: {played}");
    // Delete (confirmed).
    browser
        .js("window.confirm = () => true;", json!([]))
        .expect("js");
    browser
        .click(&format!("{row} [data-rec-list=delete]"))
        .expect("delete");
    assert!(
        wait_until(Duration::from_secs(15), || recordings(&antenne)
            ["recordings"]
            == json!([])),
        "deleted from the page"
    );
    assert!(mp4_files(&default_dir(&antenne)).is_empty());
}
