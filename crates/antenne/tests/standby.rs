//! "Never dark" end to end: a real ffmpeg publisher, nginx-rtmp receivers
//! recording, ffprobe/ffmpeg reading what they recorded. While the
//! publisher is away the receivers get antenne's standby picture and
//! silence on the same connection; when it comes back they get its
//! stream again from a keyframe.

mod support;

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;
use support::*;

const KEY: &str = "standby_ingest_key_0123456789";
/// The generated card's background (0x1d2733).
const CARD: [u8; 3] = [0x1d, 0x27, 0x33];

fn ingest_id(antenne: &Antenne) -> Result<String> {
    let i = antenne.ingest()?;
    i["ingests"][0]["id"]
        .as_str()
        .map(str::to_owned)
        .context("ingest id")
}

fn standby_state(antenne: &Antenne) -> Option<String> {
    let i = antenne.ingest().ok()?;
    i["ingests"][0]["standby"]["state"]
        .as_str()
        .map(str::to_owned)
}

fn wait_standby_ready(antenne: &Antenne) -> bool {
    wait_until(Duration::from_secs(30), || {
        antenne
            .ingest()
            .is_ok_and(|i| i["ingests"][0]["standby"]["ready"] == true)
    })
}

#[test]
fn destinations_get_the_standby_picture_while_the_publisher_is_away_then_its_stream_again(
) -> Result<()> {
    let nginx = Nginx::start()?;
    let antenne = Antenne::options().ingest_key(KEY).start()?;
    let streams = ["sb_a", "sb_b", "sb_c"];
    let ids: Vec<String> = streams
        .iter()
        .map(|s| {
            antenne
                .add_destination(s, &nginx.url(), s, true)
                .map(|d| Antenne::id_of(&d))
        })
        .collect::<Result<_>>()?;
    let opts = || Publisher::options().size(320, 180).video_kbps(300);
    let mut publisher = opts().start(&antenne.ingest_url(KEY))?;
    for id in &ids {
        antenne.wait_for_state(id, "live", Duration::from_secs(15))?;
    }
    assert!(
        wait_standby_ready(&antenne),
        "standby loop prepared: {}",
        antenne.ingest()?
    );
    std::thread::sleep(Duration::from_secs(2));
    publisher.kill();
    assert!(
        wait_until(Duration::from_secs(10), || standby_state(&antenne)
            .as_deref()
            == Some("standby")),
        "standby on air: {}",
        antenne.ingest()?
    );
    std::thread::sleep(Duration::from_secs(5));
    for id in &ids {
        let d = antenne.get_destination(id)?;
        assert_eq!(d["status"]["state"], "live", "kept open: {d}");
    }
    let _back = opts().start(&antenne.ingest_url(KEY))?;
    assert!(
        wait_until(Duration::from_secs(15), || standby_state(&antenne)
            .as_deref()
            == Some("live")),
        "back on the live stream: {}",
        antenne.ingest()?
    );
    std::thread::sleep(Duration::from_secs(3));

    for (id, stream) in ids.iter().zip(streams) {
        let d = antenne.get_destination(id)?;
        assert_eq!(d["status"]["reconnects"], 0, "{d}");
        assert_eq!(nginx.publish_count(stream), 1, "{stream}: one publish");
        let recs = nginx.recordings(stream);
        assert_eq!(recs.len(), 1, "{stream}: one file: {recs:?}");
        let report = assert_good_recording(&recs[0], 8000);
        let what = format!("{stream}: {}", report.summary());
        assert!(report.max_video_gap_ms() < 2000, "{what}");
        assert!(report.max_audio_gap_ms() < 2000, "audio throughout: {what}");
        let frames = decode_frames(&recs[0])?;
        assert!(
            frames.iter().all(|f| (f.width, f.height) == (320, 180)),
            "{stream}: every frame decodes at 320x180"
        );
        let card = runs(&frames, CARD);
        assert_eq!(card.len(), 1, "{stream}: one standby run: {card:?}");
        let (first, last) = card[0];
        assert!(last - first >= 90, "{stream}: seconds of standby: {card:?}");
        assert!(frames[first].key, "{stream}: standby starts on a keyframe");
        assert!(
            last + 1 < frames.len(),
            "{stream}: the live stream came back"
        );
        assert!(
            frames[last + 1].key,
            "{stream}: the live stream comes back on a keyframe"
        );
        println!(
            "{stream}: {} frames, standby {first}..={last}, max video gap {} ms",
            frames.len(),
            report.max_video_gap_ms()
        );
    }
    let history = antenne
        .request("GET", "/api/v1/events", None)?
        .1
        .to_string();
    assert!(history.contains("standby_started"), "{history}");
    assert!(history.contains("standby_ended"), "{history}");
    Ok(())
}

#[test]
fn past_the_hold_limit_destinations_close_cleanly_and_reconnect_when_the_publisher_returns(
) -> Result<()> {
    let nginx = Nginx::start()?;
    // The old flag still works (as the default hold limit); this ingest's
    // own limit, set through the API, wins.
    let antenne = Antenne::options()
        .ingest_key(KEY)
        .grace_period_secs(600)
        .start()?;
    let settings = format!("/api/v1/ingest/{}/standby/settings", ingest_id(&antenne)?);
    for bad in [
        json!({"hold_limit": 0}),
        json!({"hold_limit": "soon"}),
        json!({"wait_ms": 600_000}),
    ] {
        let (code, body) = antenne.request("PUT", &settings, Some(&bad))?;
        assert_eq!(code, 400, "{bad} refused: {body}");
    }
    let saved = antenne.request_expect("PUT", &settings, Some(&json!({"hold_limit": 4})), 200)?;
    assert_eq!(saved["hold_limit"], 4, "{saved}");
    let d = antenne.add_destination("held", &nginx.url(), "held", true)?;
    let id = Antenne::id_of(&d);
    let opts = || Publisher::options().size(256, 144).video_kbps(200);
    let mut publisher = opts().start(&antenne.ingest_url(KEY))?;
    antenne.wait_for_state(&id, "live", Duration::from_secs(15))?;
    assert!(wait_standby_ready(&antenne), "{}", antenne.ingest()?);
    publisher.kill();
    assert!(
        wait_until(Duration::from_secs(10), || standby_state(&antenne)
            .as_deref()
            == Some("standby")),
        "{}",
        antenne.ingest()?
    );
    let i = antenne.ingest()?;
    assert!(
        i["ingests"][0]["standby"]["ends_at"].is_string(),
        "the card can say when it ends: {i}"
    );
    antenne.wait_for_state(&id, "idle", Duration::from_secs(20))?;
    assert!(
        wait_until(Duration::from_secs(5), || nginx
            .error_log()
            .contains("deleteStream")),
        "clean close: {}",
        nginx.error_log()
    );
    let d = antenne.get_destination(&id)?;
    assert!(d["status"]["last_error"].is_null(), "not an error: {d}");
    let rec = nginx.latest_recording("held").context("recorded")?;
    let frames = decode_frames(&rec)?;
    assert!(
        runs(&frames, CARD).len() == 1,
        "the standby was sent until the limit"
    );
    // nginx names recordings by the second.
    std::thread::sleep(Duration::from_millis(1100));
    let _back = opts().start(&antenne.ingest_url(KEY))?;
    antenne.wait_for_state(&id, "live", Duration::from_secs(15))?;
    nginx.wait_for_publish_count("held", 2, Duration::from_secs(10))?;
    Ok(())
}

#[test]
fn a_break_sends_the_standby_picture_while_the_publisher_keeps_sending_then_its_stream_again(
) -> Result<()> {
    let nginx = Nginx::start()?;
    let antenne = Antenne::options().ingest_key(KEY).start()?;
    let d = antenne.add_destination("brb", &nginx.url(), "brb", true)?;
    let id = Antenne::id_of(&d);
    let _publisher = Publisher::options()
        .size(320, 180)
        .video_kbps(300)
        .start(&antenne.ingest_url(KEY))?;
    antenne.wait_for_state(&id, "live", Duration::from_secs(15))?;
    assert!(wait_standby_ready(&antenne), "{}", antenne.ingest()?);
    let ingest = ingest_id(&antenne)?;
    std::thread::sleep(Duration::from_secs(2));
    let path = format!("/api/v1/ingest/{ingest}/standby/break");
    let (code, body) = antenne.request("POST", &path, Some(&json!({})))?;
    assert_eq!(code, 200, "{body}");
    assert!(
        wait_until(Duration::from_secs(5), || standby_state(&antenne)
            .as_deref()
            == Some("standby")),
        "{}",
        antenne.ingest()?
    );
    std::thread::sleep(Duration::from_secs(4));
    let i = antenne.ingest()?;
    assert_eq!(i["ingests"][0]["live"], true, "OBS untouched: {i}");
    assert_eq!(i["ingests"][0]["standby"]["on_break"], true, "{i}");
    let (code, body) = antenne.request("DELETE", &path, None)?;
    assert_eq!(code, 200, "{body}");
    assert!(
        wait_until(Duration::from_secs(10), || standby_state(&antenne)
            .as_deref()
            == Some("live")),
        "{}",
        antenne.ingest()?
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(nginx.publish_count("brb"), 1, "no reconnect");
    let recs = nginx.recordings("brb");
    assert_eq!(recs.len(), 1, "{recs:?}");
    let report = assert_good_recording(&recs[0], 6000);
    assert!(report.max_video_gap_ms() < 2000, "{}", report.summary());
    let frames = decode_frames(&recs[0])?;
    let card = runs(&frames, CARD);
    assert_eq!(card.len(), 1, "one break: {card:?}");
    let (first, last) = card[0];
    assert!(last - first >= 60, "seconds of standby: {card:?}");
    assert!(frames[first].key, "the break starts on a keyframe");
    assert!(last + 1 < frames.len(), "the live stream came back");
    assert!(
        frames[last + 1].key,
        "the live stream comes back on a keyframe"
    );
    Ok(())
}

#[test]
fn each_ingest_gets_a_standby_picture_of_its_own_size() -> Result<()> {
    const KEY2: &str = "standby_second_key_0123456789";
    let nginx = Nginx::start()?;
    let antenne = Antenne::options()
        .ingest_key(KEY)
        .ingest_key(KEY2)
        .start()?;
    let mut ids = Vec::new();
    for (key, stream) in [(KEY, "size_a"), (KEY2, "size_b")] {
        let body = json!({"name": stream, "url": nginx.url(), "key": stream, "enabled": true, "ingest": key});
        let d = antenne.request_expect("POST", "/api/v1/destinations", Some(&body), 201)?;
        ids.push(Antenne::id_of(&d));
    }
    let sizes = [(320, 180), (256, 144)];
    let mut publishers = Vec::new();
    for (key, (w, h)) in [KEY, KEY2].iter().zip(sizes) {
        publishers.push(
            Publisher::options()
                .size(w, h)
                .video_kbps(200)
                .start(&antenne.ingest_url(key))?,
        );
    }
    for id in &ids {
        antenne.wait_for_state(id, "live", Duration::from_secs(15))?;
    }
    assert!(
        wait_until(Duration::from_secs(30), || antenne.ingest().is_ok_and(
            |i| {
                i["ingests"].as_array().is_some_and(|a| {
                    a.len() == 2 && a.iter().all(|x| x["standby"]["ready"] == true)
                })
            }
        )),
        "{}",
        antenne.ingest()?
    );
    std::thread::sleep(Duration::from_secs(1));
    for p in &mut publishers {
        p.kill();
    }
    std::thread::sleep(Duration::from_secs(5));
    for (stream, (w, h)) in ["size_a", "size_b"].iter().zip(sizes) {
        let rec = nginx.latest_recording(stream).context("recorded")?;
        let frames = decode_frames(&rec)?;
        let card = runs(&frames, CARD);
        assert_eq!(card.len(), 1, "{stream}: standby sent: {card:?}");
        let (first, last) = card[0];
        assert!(last - first >= 60, "{stream}: {card:?}");
        assert!(
            frames.iter().all(|f| (f.width, f.height) == (w, h)),
            "{stream}: standby at {w}x{h}"
        );
    }
    Ok(())
}

#[test]
fn without_ffmpeg_the_ingest_says_why_and_destinations_wait_without_a_picture() -> Result<()> {
    let nginx = Nginx::start()?;
    let antenne = Antenne::options()
        .ingest_key(KEY)
        .arg("--ffmpeg")
        .arg("/nonexistent/ffmpeg")
        .arg("--hold-limit")
        .arg("30")
        .start()?;
    let d = antenne.add_destination("plain", &nginx.url(), "plain", true)?;
    let id = Antenne::id_of(&d);
    let mut publisher = Publisher::options()
        .size(256, 144)
        .video_kbps(200)
        .start(&antenne.ingest_url(KEY))?;
    antenne.wait_for_state(&id, "live", Duration::from_secs(15))?;
    assert!(
        wait_until(Duration::from_secs(20), || antenne.ingest().is_ok_and(
            |i| i["ingests"][0]["standby"]["unavailable"].is_string()
        )),
        "{}",
        antenne.ingest()?
    );
    let i = antenne.ingest()?;
    let why = i["ingests"][0]["standby"]["unavailable"]
        .as_str()
        .unwrap_or("");
    assert!(why.contains("ffmpeg"), "names ffmpeg: {why}");
    let (code, body) = antenne.request(
        "POST",
        &format!("/api/v1/ingest/{}/standby/break", ingest_id(&antenne)?),
        Some(&json!({})),
    )?;
    assert_eq!(code, 409, "no break without a picture: {body}");
    assert!(body.to_string().contains("ffmpeg"), "{body}");
    std::thread::sleep(Duration::from_secs(1));
    publisher.kill();
    std::thread::sleep(Duration::from_secs(4));
    // As before: the connection is held, nothing is sent.
    let d = antenne.get_destination(&id)?;
    assert_eq!(d["status"]["state"], "live", "held open: {d}");
    assert_eq!(standby_state(&antenne).as_deref(), Some("holding"));
    let rec = nginx.latest_recording("plain").context("recorded")?;
    let frames = decode_frames(&rec)?;
    assert!(runs(&frames, CARD).is_empty(), "no standby picture");
    Ok(())
}

#[test]
fn the_uploaded_picture_is_what_the_platforms_see() -> Result<()> {
    const RED: [u8; 3] = [0xd0, 0x20, 0x40];
    let nginx = Nginx::start()?;
    let antenne = Antenne::options().ingest_key(KEY).start()?;
    let ingest = ingest_id(&antenne)?;
    let png = antenne.dir().join("picture.png");
    let made = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg("color=c=0xd02040:s=64x36")
        .args(["-frames:v", "1"])
        .arg(&png)
        .status()?;
    assert!(made.success(), "test picture made");
    let url = antenne.url(&format!("/api/v1/ingest/{ingest}/standby/image"));
    let auth = format!("Bearer {}", antenne.token());
    let put = |body: &[u8]| -> Result<u16> {
        Ok(
            match ureq::put(&url).set("Authorization", &auth).send_bytes(body) {
                Ok(r) => r.status(),
                Err(ureq::Error::Status(code, _)) => code,
                Err(e) => return Err(e.into()),
            },
        )
    };
    assert_eq!(put(b"GIF89a not a png")?, 400, "not PNG or JPEG");
    assert_eq!(put(b"\x89PNG\r\n\x1a\nbroken")?, 400, "does not decode");
    assert_eq!(put(&std::fs::read(&png)?)?, 204);
    let settings = antenne.request(
        "GET",
        &format!("/api/v1/ingest/{ingest}/standby/settings"),
        None,
    )?;
    assert_eq!(settings.1["image"], true, "{settings:?}");
    let preview = ureq::get(&antenne.url(&format!("/api/v1/ingest/{ingest}/standby/preview")))
        .set("Authorization", &auth)
        .call()?;
    assert_eq!(preview.content_type(), "image/png");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut preview.into_reader(), &mut bytes)?;
    assert!(bytes.starts_with(b"\x89PNG"), "a PNG preview");

    let d = antenne.add_destination("pic", &nginx.url(), "pic", true)?;
    let id = Antenne::id_of(&d);
    let mut publisher = Publisher::options()
        .size(320, 180)
        .video_kbps(300)
        .start(&antenne.ingest_url(KEY))?;
    antenne.wait_for_state(&id, "live", Duration::from_secs(15))?;
    assert!(wait_standby_ready(&antenne), "{}", antenne.ingest()?);
    std::thread::sleep(Duration::from_secs(1));
    publisher.kill();
    assert!(
        wait_until(Duration::from_secs(10), || standby_state(&antenne)
            .as_deref()
            == Some("standby")),
        "{}",
        antenne.ingest()?
    );
    std::thread::sleep(Duration::from_secs(3));
    let rec = nginx.latest_recording("pic").context("recorded")?;
    let frames = decode_frames(&rec)?;
    let red = runs(&frames, RED);
    assert_eq!(
        red.len(),
        1,
        "the picture was sent: {red:?} {:?}",
        frames.last()
    );
    assert!(red[0].1 - red[0].0 >= 60, "{red:?}");
    assert!(runs(&frames, CARD).is_empty(), "not antenne's card");
    Ok(())
}

#[test]
fn the_ingest_card_shows_the_standby_and_its_be_right_back_button_works() -> Result<()> {
    let nginx = Nginx::start()?;
    let antenne = Antenne::options().ingest_key(KEY).start()?;
    let d = antenne.add_destination("ui", &nginx.url(), "ui", true)?;
    let id = Antenne::id_of(&d);
    let _publisher = Publisher::options()
        .size(256, 144)
        .video_kbps(200)
        .start(&antenne.ingest_url(KEY))?;
    antenne.wait_for_state(&id, "live", Duration::from_secs(15))?;
    assert!(wait_standby_ready(&antenne), "{}", antenne.ingest()?);
    let browser = Browser::start("en-US")?;
    browser.log_in(&antenne.url("/"), ADMIN_PASSWORD)?;
    let card = "[data-testid=ingest-card]";
    let button = format!("{card} [data-testid=standby-break]");
    browser.wait_text(
        &format!("{card} [data-testid=standby-state]"),
        Duration::from_secs(10),
        |t| t.contains("Standby picture ready"),
    )?;
    browser.wait_attr(&button, "aria-pressed", "false", Duration::from_secs(5))?;
    browser.click(&button)?;
    browser.wait_attr(&button, "aria-pressed", "true", Duration::from_secs(10))?;
    browser.wait_text(
        &format!("{card} [data-testid=standby-state]"),
        Duration::from_secs(10),
        |t| t.contains("Be right back since"),
    )?;
    assert_eq!(standby_state(&antenne).as_deref(), Some("standby"));
    // The picture's preview loads in the settings.
    browser.click(&format!("{card} .standby-settings summary"))?;
    let loaded = wait_until(Duration::from_secs(15), || {
        browser
            .js(
                "const i = document.querySelector('[data-testid=standby-preview]'); \
                 return i && i.complete ? i.naturalWidth : 0;",
                json!([]),
            )
            .is_ok_and(|v| v.as_u64() == Some(256))
    });
    assert!(loaded, "the preview shows the picture at the ingest's size");
    browser.click(&button)?;
    browser.wait_attr(&button, "aria-pressed", "false", Duration::from_secs(10))?;
    assert!(
        wait_until(Duration::from_secs(10), || standby_state(&antenne)
            .as_deref()
            == Some("live")),
        "{}",
        antenne.ingest()?
    );
    let events = antenne
        .request("GET", "/api/v1/events", None)?
        .1
        .to_string();
    assert!(events.contains("standby_started"), "{events}");
    Ok(())
}

#[test]
fn a_renditions_destinations_get_the_standby_too() -> Result<()> {
    let nginx = Nginx::start()?;
    let antenne = Antenne::options().ingest_key(KEY).start()?;
    let body = json!({"name": "Vertical", "spec": {"width": 180, "height": 320, "video_kbps": 300, "max_fps": 30}});
    let r = antenne.request_expect("POST", "/api/v1/renditions", Some(&body), 201)?;
    let rid = r["id"].as_str().context("rendition id")?.to_owned();
    let body =
        json!({"name": "vert", "url": nginx.url(), "key": "vert", "source": {"rendition": rid}});
    let d = antenne.request_expect("POST", "/api/v1/destinations", Some(&body), 201)?;
    let id = Antenne::id_of(&d);
    let mut publisher = Publisher::options()
        .size(320, 180)
        .video_kbps(300)
        .start(&antenne.ingest_url(KEY))?;
    antenne.wait_for_state(&id, "live", Duration::from_secs(60))?;
    assert!(wait_standby_ready(&antenne), "{}", antenne.ingest()?);
    std::thread::sleep(Duration::from_secs(2));
    let before = analyze(&nginx.latest_recording("vert").context("recorded")?)?.video_duration_ms();
    publisher.kill();
    assert!(
        wait_until(Duration::from_secs(10), || standby_state(&antenne)
            .as_deref()
            == Some("standby")),
        "{}",
        antenne.ingest()?
    );
    std::thread::sleep(Duration::from_secs(5));
    let d = antenne.get_destination(&id)?;
    assert_eq!(d["status"]["state"], "live", "{d}");
    assert_eq!(nginx.publish_count("vert"), 1, "no reconnect");
    let rec = nginx.latest_recording("vert").context("recorded")?;
    let report = assert_good_recording(&rec, 0);
    assert!(
        report.video_duration_ms() >= before + 4000,
        "the rendition kept going on the standby: {} ms before, {}",
        before,
        report.summary()
    );
    assert!(report.max_video_gap_ms() < 2000, "{}", report.summary());
    assert_eq!((report.width, report.height), (Some(180), Some(320)));
    Ok(())
}
