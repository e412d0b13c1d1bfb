//! Renditions as a user drives them, through the API of a real antenne:
//! a real ffmpeg publishes a 16:9 test pattern, nginx-rtmp receivers stand
//! for the platforms, ffprobe checks what they got.

#[path = "renditions_api/steps.rs"]
mod steps;
mod support;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;
use steps::*;
use support::*;

const KEY: &str = "renditions_api_key_0123456789";

#[test]
fn destinations_share_one_vertical_encoder_and_a_crop_change_keeps_them_connected() -> Result<()> {
    let nginx = Nginx::start()?;
    let antenne = start_antenne(&[])?;
    // Known frames: what the source destination gets is compared with them.
    let clip = clip(320, 180)?;
    let _publisher = Publisher::options()
        .clip(clip)
        .start(&antenne.ingest_url(KEY))?;
    let r = add_rendition(
        &antenne,
        json!({"width": 180, "height": 320, "video_kbps": 400, "max_fps": 30}),
    )?;
    let rid = r["id"].as_str().context("rendition id")?.to_owned();
    assert_eq!(r["status"]["state"], "stopped", "nobody uses it yet: {r}");
    let source = json!({"rendition": rid});
    let a = add_destination_on(&antenne, &nginx, "vert_a", source.clone())?;
    let b = add_destination_on(&antenne, &nginx, "vert_b", source.clone())?;
    let s = add_destination_on(&antenne, &nginx, "src", json!("ingest"))?;
    for id in [&a, &b, &s] {
        antenne.wait_for_state(id, "live", Duration::from_secs(60))?;
    }
    let running = wait_rendition(&antenne, &rid, "running", Duration::from_secs(30), |r| {
        r["status"]["state"] == "running" && r["pid"].is_u64()
    })?;
    assert_eq!(running["destinations"], 2, "{running}");
    assert_eq!(running["encoder"]["kind"], "libx264", "{running}");
    let pid = running["pid"].as_u64().context("pid")? as u32;
    let children = ffmpeg_children(antenne.pid().context("antenne runs")?);
    assert_eq!(children, vec![pid], "one ffmpeg serves both destinations");

    for stream in ["vert_a", "vert_b"] {
        let path = recording(&nginx, stream)?;
        let (w, h, codec) = size_of(&path)?;
        assert_eq!(
            (w, h, codec.as_deref()),
            (Some(180), Some(320), Some("h264")),
            "{stream}"
        );
        let errors = decode_errors(&path)?;
        assert!(errors.trim().is_empty(), "{stream} decodes: {errors}");
        // It starts on a keyframe, and one comes every 2 s (the spec's
        // default interval): look at 4.5 s of it.
        let report = wait_for(Duration::from_secs(60), || {
            analyze(&path)
                .ok()
                .filter(|r| r.video_duration_ms() >= 4_500)
        })
        .with_context(|| format!("{stream}: 4.5 s recorded"))?;
        assert!(
            report.first_video_is_keyframe(),
            "{stream}: {}",
            report.summary()
        );
        let keys: Vec<i64> = report
            .video_packets
            .iter()
            .filter(|p| p.keyframe)
            .map(|p| p.dts_ms)
            .collect();
        assert!(keys.len() >= 2, "{stream}: {}", report.summary());
        for w in keys.windows(2) {
            assert!(
                (w[1] - w[0] - 2_000).abs() <= 100,
                "{stream}: keyframes at {keys:?} ms"
            );
        }
    }
    let (w, h, _) = size_of(&recording(&nginx, "src")?)?;
    assert_eq!((w, h), (Some(320), Some(180)), "the source destination");

    // The picture before moving the crop: its last second, and the second
    // before (how much the test pattern changes by itself).
    let before_path = recording(&nginx, "vert_a")?;
    let mut last_error = None;
    let profiles = wait_for(Duration::from_secs(60), || {
        column_profiles(&before_path, 180, 320, 30, 2)
            .map_err(|e| last_error = Some(e))
            .ok()
    })
    .with_context(|| format!("two seconds of vert_a decoded: {last_error:?}"))?;
    let (earlier, picture_before) = (&profiles[0], &profiles[1]);

    // Moving the crop while live restarts the encoder only.
    let patched = antenne.request_expect(
        "PATCH",
        &format!("/api/v1/renditions/{rid}"),
        Some(&json!({"spec": {"fit": {"mode": "crop", "x": 0.1}}})),
        200,
    )?;
    assert_eq!(patched["spec"]["fit"]["x"], 0.1, "{patched}");
    assert_eq!(patched["spec"]["width"], 180, "the rest stays: {patched}");
    wait_rendition(&antenne, &rid, "restarted", Duration::from_secs(30), |r| {
        r["status"]["state"] == "running" && r["pid"].as_u64().is_some_and(|p| p as u32 != pid)
    })?;
    // Frames keep coming after the restart, on the same connections.
    let before = recording(&nginx, "vert_a")?.metadata()?.len();
    assert!(
        wait_until(Duration::from_secs(30), || {
            nginx
                .latest_recording("vert_a")
                .and_then(|p| p.metadata().ok())
                .is_some_and(|m| m.len() > before + 20_000)
        }),
        "vert_a keeps receiving after the crop change"
    );
    for stream in ["vert_a", "vert_b", "src"] {
        assert_eq!(
            nginx.publish_count(stream),
            1,
            "{stream}: one publish across the crop change\n{}",
            nginx.error_log()
        );
    }
    // No gap longer than one keyframe interval (2 s) at the receivers,
    // timestamps going forward.
    for stream in ["vert_a", "vert_b"] {
        let report = analyze(&recording(&nginx, stream)?)?;
        assert!(
            report.video_dts_monotonic(),
            "{stream}: {}",
            report.summary()
        );
        let gap = report
            .video_packets
            .windows(2)
            .map(|w| w[1].dts_ms - w[0].dts_ms)
            .max()
            .unwrap_or(0);
        println!("{stream}: longest gap between frames across the crop change {gap} ms");
        assert!(
            gap <= 2_000,
            "{stream}: a {gap} ms gap: {}",
            report.summary()
        );
    }
    // The picture moved: its columns differ far more than the pattern's
    // own change from one second to the next.
    std::thread::sleep(Duration::from_secs(3));
    let after = column_profiles(&recording(&nginx, "vert_a")?, 180, 320, 30, 1)?;
    let (drift, moved) = (
        profile_distance(earlier, picture_before),
        profile_distance(picture_before, &after[0]),
    );
    println!("crop moved: column profile changed by {moved:.1} (by itself: {drift:.1})");
    assert!(
        moved > 3.0 * drift && moved > 4.0,
        "the crop change shows in the picture: {moved:.1} against {drift:.1}"
    );

    // The last destination of the rendition off: its encoder stops.
    antenne.patch_destination(&a, &json!({"enabled": false}))?;
    antenne.patch_destination(&b, &json!({"enabled": false}))?;
    wait_rendition(&antenne, &rid, "stopped", Duration::from_secs(30), |r| {
        r["status"]["state"] == "stopped" && r["pid"].is_null() && r["destinations"] == 0
    })?;
    assert!(
        wait_until(Duration::from_secs(10), || ffmpeg_children(
            antenne.pid().unwrap_or(0)
        )
        .is_empty()),
        "no ffmpeg left"
    );
    // On again: the encoder starts, the destination goes live and gets its
    // first keyframe within 2 s.
    let before = nginx.recordings("vert_a").len();
    let t0 = Instant::now();
    antenne.patch_destination(&a, &json!({"enabled": true}))?;
    let first_keyframe = first_keyframe_after(&nginx, "vert_a", before, t0)?;
    println!("rendition destination on again: first keyframe recorded after {first_keyframe:?}");
    assert!(
        first_keyframe <= Duration::from_secs(2),
        "first keyframe within 2 s of switching on, took {first_keyframe:?}"
    );
    antenne.wait_for_state(&a, "live", Duration::from_secs(60))?;
    wait_rendition(&antenne, &rid, "running", Duration::from_secs(30), |r| {
        r["status"]["state"] == "running"
    })?;
    antenne.wait_for_state(&s, "live", Duration::from_secs(5))?;
    // A rendition in use cannot be deleted.
    let (status, body) = antenne.request("DELETE", &format!("/api/v1/renditions/{rid}"), None)?;
    assert_eq!(status, 409, "{body}");

    // Through all of it (encoder started, restarted, stopped, started) the
    // source destination kept one connection and got the published
    // payloads byte for byte.
    assert_eq!(nginx.publish_count("src"), 1, "{}", nginx.error_log());
    let src = nginx
        .latest_recording("src")
        .context("the source recording")?;
    let compared = assert_same_bytes_as_clip(&src, clip)?;
    assert!(compared > 300, "{compared} frames compared");
    Ok(())
}

#[test]
fn without_ffmpeg_the_rendition_says_so_and_the_source_destination_is_live() -> Result<()> {
    let nginx = Nginx::start()?;
    let antenne = start_antenne(&["--ffmpeg", "/nonexistent/ffmpeg"])?;
    let _publisher = publish(&antenne)?;
    let r = add_rendition(
        &antenne,
        json!({"width": 180, "height": 320, "video_kbps": 400}),
    )?;
    let rid = r["id"].as_str().context("rendition id")?.to_owned();
    add_destination_on(&antenne, &nginx, "vert", json!({"rendition": rid}))?;
    let s = add_destination_on(&antenne, &nginx, "src", json!("ingest"))?;
    let r = wait_rendition(
        &antenne,
        &rid,
        "unavailable",
        Duration::from_secs(30),
        |r| r["status"]["state"] == "unavailable",
    )?;
    assert_eq!(
        r["status"]["reason"], "ffmpeg not found: install it (apt install ffmpeg)",
        "{r}"
    );
    antenne.wait_for_state(&s, "live", Duration::from_secs(60))?;
    Ok(())
}

#[test]
fn refuses_a_bad_spec_and_a_source_that_is_not_a_rendition() -> Result<()> {
    let antenne = start_antenne(&[])?;
    let (status, body) = antenne.request(
        "POST",
        "/api/v1/renditions",
        Some(&json!({"spec": {"width": 181, "height": 320, "video_kbps": 400}})),
    )?;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("width"),
        "{body}"
    );
    let (status, body) = antenne.request(
        "POST",
        "/api/v1/destinations",
        Some(
            &json!({"url": "rtmp://127.0.0.1/live", "key": "k", "source": {"rendition": "rnope"}}),
        ),
    )?;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("rnope"),
        "{body}"
    );
    assert!(antenne.list_destinations()?.is_empty());
    // `auto` shows the encoder it resolved to (hardware probed once).
    let auto = json!({"spec": {"width": 180, "height": 320, "video_kbps": 400, "encoder": {"kind": "auto"}}});
    let r = antenne.request_expect("POST", "/api/v1/renditions", Some(&auto), 201)?;
    assert_eq!(r["spec"]["encoder"]["kind"], "auto", "{r}");
    let kind = r["encoder"]["kind"].as_str().unwrap_or("");
    assert!(["libx264", "nvenc", "vaapi", "qsv"].contains(&kind), "{r}");
    Ok(())
}

#[test]
fn a_streamer_adds_a_vertical_rendition_from_a_template_and_fixes_a_tiktok_warning() -> Result<()> {
    let nginx = Nginx::start()?;
    let antenne = start_antenne(&[])?;
    let browser = Browser::start("en-US")?;
    browser.goto(&antenne.url("/"))?;
    browser.fill("[data-testid=login-username]", "admin")?;
    browser.fill("[data-testid=login-password]", ADMIN_PASSWORD)?;
    browser.click("[data-testid=login-submit]")?;
    browser.find("[data-testid=ingest-card]")?;
    let _publisher = publish(&antenne)?;
    browser.wait_attr(
        "[data-testid=ingest-state]",
        "data-state",
        "live",
        Duration::from_secs(30),
    )?;

    // A rendition from the vertical template.
    browser.find("[data-testid=rendition-template]")?;
    browser.js(
        "const s = document.querySelector('[data-testid=rendition-template]'); s.value = 'vertical';",
        json!([]),
    )?;
    browser.click("[data-testid=rendition-add]")?;
    browser.wait_text(
        "[data-testid=rendition-card]",
        support::browser::WAIT,
        |t| t.contains("Vertical 9:16 (TikTok, Instagram, Shorts)") && t.contains("720×1280"),
    )?;
    let list = antenne.request_expect("GET", "/api/v1/renditions", None, 200)?;
    let rid = list[0]["id"].as_str().context("a rendition")?.to_owned();
    assert_eq!(list[0]["spec"]["fit"]["mode"], "crop", "{list}");

    // A TikTok destination relaying the 16:9 ingest gets a plain warning.
    let body = json!({"name": "TikTok", "platform": "tiktok", "url": nginx.url(), "key": "tt"});
    let d = antenne.request_expect("POST", "/api/v1/destinations", Some(&body), 201)?;
    let did = Antenne::id_of(&d);
    browser.wait_text("[data-testid=guardrail]", Duration::from_secs(30), |t| {
        t.contains("TikTok expects vertical video; your stream is 320×180")
    })?;
    // One click: the existing vertical rendition becomes its source.
    browser.click("[data-testid=guardrail-fix]")?;
    let fixed = wait_for(Duration::from_secs(20), || {
        let d = antenne.get_destination(&did).ok()?;
        (d["source"] == json!({"rendition": rid})).then_some(d)
    });
    assert!(fixed.is_some(), "the destination now relays the rendition");
    let count = antenne.request_expect("GET", "/api/v1/renditions", None, 200)?;
    assert_eq!(
        count.as_array().map(Vec::len),
        Some(1),
        "picked, not created"
    );
    antenne.wait_for_state(&did, "live", Duration::from_secs(90))?;
    browser.wait_text(
        "[data-testid=rendition-state]",
        Duration::from_secs(30),
        |t| t.contains("Encoding"),
    )?;

    // Moving the crop in the page restarts the encoder only: no new
    // publish at the receiver.
    let publishes = nginx.publish_count("tt");
    browser.js(
        "const s = document.querySelector('[data-testid=rendition-crop]'); s.value = '0.25'; s.dispatchEvent(new Event('change'));",
        json!([]),
    )?;
    let moved = wait_for(Duration::from_secs(20), || {
        let r = rendition(&antenne, &rid).ok()?;
        (r["spec"]["fit"]["x"] == 0.25).then_some(r)
    });
    assert!(moved.is_some(), "the crop moved");
    antenne.wait_for_state(&did, "live", Duration::from_secs(5))?;
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        nginx.publish_count("tt"),
        publishes,
        "{}",
        nginx.error_log()
    );

    // The destination dialog shows the source.
    browser.click("[data-testid=destination-card] [data-testid=dest-edit]")?;
    assert_eq!(browser.value("[data-testid=dest-source]")?, rid);
    Ok(())
}

#[test]
fn a_bitrate_capped_rendition_stays_within_its_cap_at_the_receiver() -> Result<()> {
    const CAP_KBPS: f64 = 200.0;
    let nginx = Nginx::start()?;
    let antenne = start_antenne(&[])?;
    let _publisher = publish(&antenne)?;
    let r = add_rendition(
        &antenne,
        json!({"width": 180, "height": 320, "video_kbps": CAP_KBPS as u32}),
    )?;
    let rid = r["id"].as_str().context("rendition id")?.to_owned();
    let d = add_destination_on(&antenne, &nginx, "capped", json!({"rendition": rid}))?;
    antenne.wait_for_state(&d, "live", Duration::from_secs(60))?;
    // 20 s past the first 2 s (the encoder's start).
    let report = wait_for(Duration::from_secs(120), || {
        let path = nginx.latest_recording("capped")?;
        let report = analyze(&path).ok()?;
        (report.video_duration_ms() >= 22_000).then_some(report)
    })
    .with_context(|| {
        format!(
            "22 s of the rendition recorded; log:\n{}",
            nginx.error_log()
        )
    })?;
    let start = report.video_packets[0].dts_ms + 2_000;
    let window: Vec<_> = report
        .video_packets
        .iter()
        .filter(|p| p.dts_ms >= start)
        .collect();
    let (first, last) = (window[0].dts_ms, window[window.len() - 1].dts_ms);
    let bits: u64 = window.iter().map(|p| p.size * 8).sum();
    let kbps = bits as f64 / (last - first) as f64;
    println!(
        "capped rendition: {kbps:.0} kbit/s of video over {} ms (cap {CAP_KBPS})",
        last - first
    );
    assert!(
        kbps <= CAP_KBPS * 1.15,
        "{kbps:.0} kbit/s over a cap of {CAP_KBPS} kbit/s: {}",
        report.summary()
    );
    assert!(
        kbps > CAP_KBPS * 0.2,
        "some video came through: {kbps:.0} kbit/s"
    );
    Ok(())
}

#[test]
fn a_long_keyframe_interval_warns_a_facebook_destination_and_one_click_makes_a_rendition(
) -> Result<()> {
    let nginx = Nginx::start()?;
    let antenne = start_antenne(&[])?;
    // A keyframe every 5 s: Facebook wants one at least every 4 s.
    let _publisher = Publisher::options()
        .size(320, 180)
        .fps(30)
        .video_kbps(300)
        .gop(150)
        .start(&antenne.ingest_url(KEY))?;
    // Off: the rendition it will relay is not encoded (nothing to check
    // here but the warning and its fix).
    let body = json!({"name": "Facebook", "platform": "facebook", "url": nginx.url(),
        "key": "fb", "enabled": false});
    let d = antenne.request_expect("POST", "/api/v1/destinations", Some(&body), 201)?;
    let did = Antenne::id_of(&d);
    let want = "Facebook wants a keyframe at least every 4 s; your stream has one every 5 s";
    let warned = wait_for(Duration::from_secs(60), || {
        let g = antenne
            .request_expect("GET", "/api/v1/guardrails", None, 200)
            .ok()?;
        g.as_array()?
            .iter()
            .find(|g| g["destination_id"] == did.as_str() && g["message"] == want)
            .cloned()
    });
    let warned = warned.with_context(|| {
        let ingest = antenne.ingest().unwrap_or_default();
        format!("no keyframe warning; the ingest: {ingest}")
    })?;
    assert_eq!(warned["fix"], "bitrate_cap", "{warned}");
    let ingest = antenne.ingest()?;
    assert_eq!(
        ingest["ingests"][0]["keyframe_interval_s"], 5.0,
        "the measured interval: {ingest}"
    );

    // The page shows it; one click creates the rendition (none yet) and
    // makes it the destination's source.
    let browser = Browser::start("en-US")?;
    browser.log_in(&antenne.url("/"), ADMIN_PASSWORD)?;
    browser.wait_text("[data-testid=guardrail]", Duration::from_secs(30), |t| {
        t.contains(want)
    })?;
    browser.click("[data-testid=guardrail-fix]")?;
    let fixed = wait_for(Duration::from_secs(20), || {
        let d = antenne.get_destination(&did).ok()?;
        d["source"]["rendition"].as_str().map(str::to_owned)
    })
    .context("the destination relays a rendition")?;
    let r = rendition(&antenne, &fixed)?;
    assert_eq!(r["spec"]["keyframe_interval_s"], 2.0, "{r}");
    assert_eq!(r["spec"]["video_kbps"], 6000, "{r}");
    // Its stream keeps to Facebook's limits: the warning is gone.
    let cleared = wait_until(Duration::from_secs(20), || {
        antenne
            .request_expect("GET", "/api/v1/guardrails", None, 200)
            .is_ok_and(|g| {
                g.as_array()
                    .is_some_and(|g| g.iter().all(|g| g["destination_id"] != did.as_str()))
            })
    });
    assert!(cleared, "no warning left for the destination");
    browser.wait_text("body", Duration::from_secs(20), |t| !t.contains(want))?;
    Ok(())
}

#[test]
fn an_ingest_key_with_renditions_is_not_deleted_until_they_are() -> Result<()> {
    // Keys kept in the store (no --ingest-key), so they can change.
    let antenne = Antenne::options().start()?;
    let added = antenne.request_expect(
        "POST",
        "/api/v1/ingest-keys",
        Some(&json!({"key": "second_key_0123456789"})),
        201,
    )?;
    let kid = added["id"].as_str().context("an id")?.to_owned();
    let body = json!({"name": "Vertical", "ingest": kid,
        "spec": {"width": 180, "height": 320, "video_kbps": 400}});
    let r = antenne.request_expect("POST", "/api/v1/renditions", Some(&body), 201)?;
    let rid = r["id"].as_str().context("rendition id")?.to_owned();
    assert_eq!(r["ingest_id"], kid.as_str(), "{r}");
    let body = json!({"name": "TikTok", "url": "rtmp://127.0.0.1:1/live", "key": "tt",
        "ingest": "second_key_0123456789", "source": {"rendition": rid}, "enabled": false});
    let d = antenne.request_expect("POST", "/api/v1/destinations", Some(&body), 201)?;
    let did = Antenne::id_of(&d);

    let delete_key = || antenne.request("DELETE", &format!("/api/v1/ingest-keys/{kid}"), None);
    let refused = |what: &str| -> Result<()> {
        let (status, body) = delete_key()?;
        assert_eq!(status, 409, "{what}: {body}");
        assert_eq!(
            body["error"],
            "destinations or renditions use this ingest key: move or delete them first",
            "{what}"
        );
        Ok(())
    };
    refused("a destination relays its rendition")?;
    antenne.delete_destination(&did)?;
    refused("its rendition is still there")?;
    // Nothing was lost meanwhile.
    rendition(&antenne, &rid)?;
    antenne.request_expect("DELETE", &format!("/api/v1/renditions/{rid}"), None, 204)?;
    let (status, body) = delete_key()?;
    assert_eq!(status, 204, "{body}");
    let keys = antenne.request_expect("GET", "/api/v1/ingest-keys", None, 200)?;
    assert!(
        keys.as_array()
            .is_some_and(|k| k.iter().all(|k| k["id"] != kid.as_str())),
        "{keys}"
    );
    Ok(())
}

#[test]
fn renditions_need_a_login_survive_a_restart_and_are_in_the_history() -> Result<()> {
    let mut antenne = start_antenne(&[])?;
    let (status, _) = antenne.request_anonymous("GET", "/api/v1/renditions", None)?;
    assert_eq!(status, 401, "behind login");
    let body = json!({"width": 180, "height": 320, "video_kbps": 400});
    let (status, _) = antenne.request_anonymous(
        "POST",
        "/api/v1/renditions",
        Some(&json!({"name": "x", "spec": body})),
    )?;
    assert_eq!(status, 401, "behind login");
    assert!(antenne
        .request_expect("GET", "/api/v1/renditions", None, 200)?
        .as_array()
        .is_some_and(Vec::is_empty));
    let r = add_rendition(&antenne, body)?;
    let rid = r["id"].as_str().context("rendition id")?.to_owned();
    antenne.request_expect(
        "PATCH",
        &format!("/api/v1/renditions/{rid}"),
        Some(&json!({"spec": {"video_kbps": 500}})),
        200,
    )?;
    in_history(&antenne, &["rendition_added", "rendition_edited"])?;
    antenne.restart()?;
    let r = rendition(&antenne, &rid)?;
    assert_eq!(r["spec"]["video_kbps"], 500, "saved: {r}");
    assert_eq!(r["name"], "Vertical", "{r}");
    antenne.request_expect("DELETE", &format!("/api/v1/renditions/{rid}"), None, 204)?;
    in_history(
        &antenne,
        &["rendition_added", "rendition_edited", "rendition_deleted"],
    )?;
    Ok(())
}

#[test]
fn a_rendition_destination_stays_connected_across_an_obs_drop_within_the_grace_period() -> Result<()>
{
    let nginx = Nginx::start()?;
    // Without the standby picture (which keeps the encoder running while
    // OBS is away: tests/standby.rs), the encoder stops with its ingest.
    let antenne = start_antenne(&["--no-standby"])?;
    let mut publisher = publish(&antenne)?;
    let r = add_rendition(
        &antenne,
        json!({"width": 180, "height": 320, "video_kbps": 400}),
    )?;
    let rid = r["id"].as_str().context("rendition id")?.to_owned();
    let d = add_destination_on(&antenne, &nginx, "vert", json!({"rendition": rid}))?;
    antenne.wait_for_state(&d, "live", Duration::from_secs(60))?;
    let first = recording(&nginx, "vert")?;

    // OBS drops: the encoder stops with its ingest; the destination waits.
    publisher.kill();
    wait_rendition(&antenne, &rid, "stopped", Duration::from_secs(30), |r| {
        r["status"]["state"] == "stopped" && r["pid"].is_null()
    })?;
    std::thread::sleep(Duration::from_secs(3));
    // OBS is back: the encoder starts again, frames flow on the same
    // connection, timestamps going forward.
    let size = first.metadata()?.len();
    let _publisher = publish(&antenne)?;
    wait_rendition(&antenne, &rid, "running", Duration::from_secs(30), |r| {
        r["status"]["state"] == "running"
    })?;
    let grew = wait_until(Duration::from_secs(30), || {
        first.metadata().is_ok_and(|m| m.len() > size + 30_000)
    });
    assert!(grew, "the recording goes on after OBS came back");
    assert_eq!(nginx.publish_count("vert"), 1, "{}", nginx.error_log());
    assert_eq!(nginx.recordings("vert"), vec![first.clone()]);
    let report = analyze(&first)?;
    assert!(report.video_dts_monotonic(), "{}", report.summary());
    Ok(())
}
