//! OBS under antenne's control, against real OBS Studio (headless, under
//! Xvfb) through obs-websocket v5: connecting, a refused password, "Send
//! OBS to antenne" and streaming through the relay, the rule while OBS is
//! live, OBS crashing beside a relay that must not notice, outputs.
//!
//! One OBS at a time (the support module serialises them): each test costs
//! about a core while OBS encodes.

mod support;

use std::time::Duration;

use anyhow::{bail, Result};
use serde_json::{json, Value};
use support::*;

const KEY: &str = "obs_test_ingest_key_0123456789";

fn obs_view(antenne: &Antenne) -> Result<Value> {
    antenne.request_expect("GET", "/api/v1/obs", None, 200)
}

/// Polls `GET /api/v1/obs` until `ok`; the error shows the last answer, and
/// the logs of antenne and OBS.
fn wait_obs(
    antenne: &Antenne,
    obs: Option<&Obs>,
    timeout: Duration,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let mut last = Value::Null;
    let found = wait_for(timeout, || match obs_view(antenne) {
        Ok(v) if ok(&v) => Some(v),
        Ok(v) => {
            last = v;
            None
        }
        Err(e) => {
            last = Value::String(format!("{e:#}"));
            None
        }
    });
    match found {
        Some(v) => Ok(v),
        None => bail!(
            "OBS not {what} within {timeout:?}; last GET /api/v1/obs: {last}\n\
             antenne log:\n{}\nOBS: {}",
            tail(&antenne.log(), 30),
            obs.map(|o| o.log()).unwrap_or_default()
        ),
    }
}

/// Connects antenne to `obs` and waits until it shows a status.
fn connect(antenne: &Antenne, obs: &Obs) -> Result<Value> {
    let v = antenne.request_expect("PUT", "/api/v1/obs", Some(&obs.settings()), 200)?;
    assert_eq!(v["password_set"], true, "{v}");
    assert!(!v.to_string().contains(OBS_PASSWORD), "password shown: {v}");
    wait_obs(
        antenne,
        Some(obs),
        Duration::from_secs(20),
        "connected",
        |v| v["state"] == "connected" && v["status"]["scenes"].is_array(),
    )
}

fn ingest_live(antenne: &Antenne) -> bool {
    antenne
        .ingest()
        .is_ok_and(|i| i["ingests"][0]["live"] == true)
}

fn event_kinds(antenne: &Antenne) -> Result<Vec<String>> {
    let events = antenne.request_expect("GET", "/api/v1/events", None, 200)?;
    Ok(events
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|e| e["kind"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

#[test]
fn connects_shows_status_switches_scenes_and_lists_outputs() -> Result<()> {
    let antenne = Antenne::start(KEY)?;
    let v = obs_view(&antenne)?;
    assert_eq!(v["state"], "not_configured", "{v}");
    assert_eq!(v["status"], Value::Null, "{v}");
    assert_eq!(v["password_set"], false, "{v}");
    // Nothing to command yet.
    let (status, answer) = antenne.request("POST", "/api/v1/obs/stream/start", None)?;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(
        answer["error"], "OBS is not connected (not_configured)",
        "{answer}"
    );

    let obs = Obs::start()?;
    let v = connect(&antenne, &obs)?;
    let s = &v["status"];
    assert!(
        s["obs_version"].as_str().is_some_and(|x| !x.is_empty()),
        "{v}"
    );
    assert!(
        s["websocket_version"]
            .as_str()
            .is_some_and(|x| x.starts_with('5')),
        "{v}"
    );
    assert_eq!(s["scenes"], json!(SCENES), "{v}");
    assert_eq!(s["current_scene"], SCENES[0], "{v}");
    assert_eq!(s["streaming"], false, "{v}");
    assert_eq!(s["recording"], false, "{v}");
    assert_eq!(s["stream_service"]["type"], "rtmp_custom", "{v}");
    assert_eq!(s["stream_service"]["server"], ORIGINAL_SERVER, "{v}");
    assert_ne!(s["stream_service"]["key"], ORIGINAL_KEY, "masked: {v}");
    assert_eq!(v["previous_service"], Value::Null, "{v}");
    assert_eq!(
        v["antenne_service"]["server"],
        format!("rtmp://127.0.0.1:{}/live", antenne.rtmp_port()),
        "{v}"
    );

    // Scenes.
    antenne.request_expect(
        "POST",
        "/api/v1/obs/scene",
        Some(&json!({"name": SCENES[1]})),
        200,
    )?;
    wait_obs(
        &antenne,
        Some(&obs),
        Duration::from_secs(5),
        "on the second scene",
        |v| v["status"]["current_scene"] == SCENES[1],
    )?;
    let (status, answer) = antenne.request(
        "POST",
        "/api/v1/obs/scene",
        Some(&json!({"name": "No such scene"})),
    )?;
    assert_eq!(status, 502, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("OBS answered: ")),
        "{answer}"
    );

    // Outputs (OBS 29 creates its stream output at the first start: see
    // the streaming test). Each name is unique here, so controllable.
    let list = antenne.request_expect("GET", "/api/v1/obs/outputs", None, 200)?;
    let outputs = list["outputs"].as_array().cloned().unwrap_or_default();
    assert!(!outputs.is_empty(), "{list}");
    for o in &outputs {
        assert!(o["kind"].is_string() && o["active"] == false, "{list}");
        assert_eq!(o["controllable"], true, "{list}");
    }
    let name = outputs[0]["name"].as_str().unwrap_or_default();
    let one = antenne.request_expect("GET", &format!("/api/v1/obs/outputs/{name}"), None, 200)?;
    assert_eq!(one["active"], false, "{one}");
    let (status, _) = antenne.request("GET", "/api/v1/obs/outputs/nope", None)?;
    assert_eq!(status, 404);

    let kinds = event_kinds(&antenne)?;
    assert!(kinds.iter().any(|k| k == "obs_connected"), "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "obs_scene"), "{kinds:?}");
    let log = antenne.log();
    for secret in [OBS_PASSWORD, ORIGINAL_KEY, KEY] {
        assert!(!log.contains(secret), "{secret} leaked into the log");
    }
    Ok(())
}

#[test]
fn a_wrong_password_is_auth_failed_until_the_settings_change() -> Result<()> {
    let antenne = Antenne::start(KEY)?;
    // Nothing listening: unreachable, saying why.
    let closed = free_port();
    antenne.request_expect(
        "PUT",
        "/api/v1/obs",
        Some(&json!({"host": "127.0.0.1", "port": closed})),
        200,
    )?;
    let v = wait_obs(
        &antenne,
        None,
        Duration::from_secs(10),
        "unreachable",
        |v| v["state"] == "unreachable",
    )?;
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("Connection refused")),
        "{v}"
    );
    assert_eq!(v["password_set"], false, "{v}");
    let obs = Obs::start()?;
    let mut settings = obs.settings();
    settings["password"] = json!("not-the-password");
    antenne.request_expect("PUT", "/api/v1/obs", Some(&settings), 200)?;
    let v = wait_obs(
        &antenne,
        Some(&obs),
        Duration::from_secs(15),
        "auth_failed",
        |v| v["state"] == "auth_failed",
    )?;
    let error = v["error"].as_str().unwrap_or_default();
    assert!(error.contains("refused the password"), "{v}");
    assert!(error.contains("retries every 5 minutes"), "{v}");
    assert!(!v.to_string().contains("not-the-password"), "{v}");
    // Fixing the password reconnects at once, not in 5 minutes.
    antenne.request_expect("PUT", "/api/v1/obs", Some(&obs.settings()), 200)?;
    wait_obs(
        &antenne,
        Some(&obs),
        Duration::from_secs(10),
        "connected",
        |v| v["state"] == "connected",
    )?;
    // Bad input.
    for body in [
        json!({"host": "ws://127.0.0.1", "port": 4455}),
        json!({"host": "127.0.0.1", "port": 0}),
        json!({"host": "127.0.0.1", "port": 70000}),
        json!({"port": 4455}),
        json!({"host": "127.0.0.1", "passwd": "x"}),
    ] {
        let (status, answer) = antenne.request("PUT", "/api/v1/obs", Some(&body))?;
        assert_eq!(status, 400, "{body} -> {answer}");
    }
    assert!(!antenne.log().contains("not-the-password"));
    Ok(())
}

/// What a viewer gets ([`assert_good_recording`]), in the 640x360 the
/// test OBS outputs.
fn assert_obs_recording(path: &std::path::Path, min_ms: i64) {
    let report = assert_good_recording(path, min_ms);
    assert_eq!(
        (report.width, report.height),
        (Some(640), Some(360)),
        "{}: {}",
        path.display(),
        report.summary()
    );
}

#[test]
fn send_obs_to_antenne_streams_through_the_relay_and_restores() -> Result<()> {
    let nginx = Nginx::start()?;
    let antenne = Antenne::start(KEY)?;
    let dest = antenne.add_destination("Platform", &nginx.url(), "platform_key_obs_0123", true)?;
    let obs = Obs::start()?;
    connect(&antenne, &obs)?;

    let v = antenne.request_expect("POST", "/api/v1/obs/point-to-antenne", None, 200)?;
    assert_eq!(v["result"]["previous_saved"], true, "{v}");
    assert_eq!(v["result"]["restarted"], false, "{v}");
    let server = format!("rtmp://127.0.0.1:{}/live", antenne.rtmp_port());
    let v = wait_obs(
        &antenne,
        Some(&obs),
        Duration::from_secs(5),
        "pointed at antenne",
        |v| v["status"]["stream_service"]["server"] == server.as_str(),
    )?;
    assert_eq!(v["previous_service"]["server"], ORIGINAL_SERVER, "{v}");
    assert_eq!(v["previous_service"]["type"], "rtmp_custom", "{v}");
    assert_ne!(v["previous_service"]["key"], ORIGINAL_KEY, "masked: {v}");
    assert_ne!(v["status"]["stream_service"]["key"], KEY, "masked: {v}");
    // Pointing again keeps the saved settings (OBS points at antenne now).
    let again = antenne.request_expect("POST", "/api/v1/obs/point-to-antenne", None, 200)?;
    assert_eq!(again["result"]["previous_saved"], false, "{again}");
    assert_eq!(again["previous_service"]["server"], ORIGINAL_SERVER);

    antenne.request_expect("POST", "/api/v1/obs/stream/start", None, 200)?;
    assert!(
        wait_until(Duration::from_secs(30), || ingest_live(&antenne)),
        "OBS publishes to antenne's ingest; antenne log:\n{}\nOBS: {}",
        tail(&antenne.log(), 30),
        obs.log()
    );
    antenne.wait_for_state(&Antenne::id_of(&dest), "live", Duration::from_secs(15))?;
    let v = wait_obs(
        &antenne,
        Some(&obs),
        Duration::from_secs(10),
        "streaming with a bitrate",
        |v| {
            v["status"]["streaming"] == true
                && v["status"]["output_bitrate_kbps"].as_f64() > Some(50.0)
        },
    )?;
    assert_ne!(v["status"]["stream_timecode"], "00:00:00.000", "{v}");
    assert!(v["status"]["total_frames"].as_u64() > Some(0), "{v}");
    assert!(v["status"]["cpu_usage"].is_number(), "{v}");
    // The main stream output is listed, active, while OBS streams.
    let list = antenne.request_expect("GET", "/api/v1/obs/outputs", None, 200)?;
    assert!(
        list["outputs"]
            .as_array()
            .is_some_and(|l| l.iter().any(|o| {
                o["kind"] == "rtmp_output" && o["active"] == true && o["controllable"] == true
            })),
        "{list}"
    );
    let ingest = antenne.ingest()?;
    assert_eq!(ingest["ingests"][0]["video_codec"], "h264", "{ingest}");
    assert_eq!(ingest["ingests"][0]["audio_codec"], "aac", "{ingest}");
    // Two keyframes' worth at least (OBS: one every 2 s).
    nginx.wait_for_recording("platform_key_obs_0123", 150_000, Duration::from_secs(20))?;
    std::thread::sleep(Duration::from_secs(3));

    antenne.request_expect("POST", "/api/v1/obs/stream/stop", None, 200)?;
    wait_obs(
        &antenne,
        Some(&obs),
        Duration::from_secs(15),
        "stopped",
        |v| v["status"]["streaming"] == false,
    )?;
    assert!(
        wait_until(Duration::from_secs(10), || !ingest_live(&antenne)),
        "the ingest ends when OBS stops"
    );
    let rec = nginx
        .latest_recording("platform_key_obs_0123")
        .expect("the destination recorded the stream");
    assert_obs_recording(&rec, 3000);
    assert_eq!(nginx.publish_count("platform_key_obs_0123"), 1);

    let v = antenne.request_expect("POST", "/api/v1/obs/restore-previous-service", None, 200)?;
    assert_eq!(v["previous_service"]["server"], ORIGINAL_SERVER, "{v}");
    wait_obs(
        &antenne,
        Some(&obs),
        Duration::from_secs(5),
        "back on its own settings",
        |v| v["status"]["stream_service"]["server"] == ORIGINAL_SERVER,
    )?;
    let kinds = event_kinds(&antenne)?;
    for kind in [
        "obs_pointed",
        "obs_stream_started",
        "obs_stream_stopped",
        "obs_restored",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    let log = antenne.log();
    for secret in [OBS_PASSWORD, ORIGINAL_KEY, KEY, "platform_key_obs_0123"] {
        assert!(!log.contains(secret), "{secret} leaked into the log");
    }
    Ok(())
}

#[test]
fn changing_obs_settings_while_live_needs_a_restart() -> Result<()> {
    // OBS starts out streaming to a platform of its own (nginx here).
    let platform = Nginx::start()?;
    let antenne = Antenne::start(KEY)?;
    let obs = Obs::start_with_service(&platform.url(), "direct_platform_key_0123")?;
    connect(&antenne, &obs)?;
    antenne.request_expect("POST", "/api/v1/obs/stream/start", None, 200)?;
    wait_obs(
        &antenne,
        Some(&obs),
        Duration::from_secs(20),
        "streaming to its platform",
        |v| v["status"]["streaming"] == true,
    )?;
    platform.wait_for_publish_count("direct_platform_key_0123", 1, Duration::from_secs(10))?;

    let (status, answer) = antenne.request("POST", "/api/v1/obs/point-to-antenne", None)?;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["streaming"], true, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("restart")),
        "{answer}"
    );
    let v = obs_view(&antenne)?;
    assert_eq!(
        v["status"]["stream_service"]["server"],
        platform.url(),
        "unchanged: {v}"
    );

    let v = antenne.request_expect(
        "POST",
        "/api/v1/obs/point-to-antenne",
        Some(&json!({"restart": true})),
        200,
    )?;
    assert_eq!(v["result"]["restarted"], true, "{v}");
    assert_eq!(v["previous_service"]["server"], platform.url(), "{v}");
    assert!(
        wait_until(Duration::from_secs(30), || ingest_live(&antenne)),
        "OBS streams to antenne after the restart; antenne log:\n{}\nOBS: {}",
        tail(&antenne.log(), 30),
        obs.log()
    );
    wait_obs(
        &antenne,
        Some(&obs),
        Duration::from_secs(10),
        "streaming to antenne",
        |v| {
            v["status"]["streaming"] == true
                && v["status"]["stream_service"]["server"]
                    == format!("rtmp://127.0.0.1:{}/live", antenne.rtmp_port()).as_str()
        },
    )?;
    // Restoring while live follows the same rule.
    let (status, answer) = antenne.request("POST", "/api/v1/obs/restore-previous-service", None)?;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["streaming"], true, "{answer}");
    antenne.request_expect("POST", "/api/v1/obs/stream/stop", None, 200)?;
    Ok(())
}

#[test]
fn obs_crashing_never_disturbs_the_relay() -> Result<()> {
    let nginx = Nginx::start()?;
    let antenne = Antenne::start(KEY)?;
    let dest = antenne.add_destination("Platform", &nginx.url(), "platform_key_crash_01", true)?;
    let id = Antenne::id_of(&dest);
    // The relay is fed by ffmpeg, not by OBS.
    let _publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    antenne.wait_for_state(&id, "live", Duration::from_secs(15))?;

    let mut obs = Obs::start()?;
    connect(&antenne, &obs)?;
    obs.kill();
    let v = wait_obs(
        &antenne,
        None,
        Duration::from_secs(10),
        "unreachable",
        |v| v["state"] == "unreachable",
    )?;
    assert!(
        v["error"].as_str().is_some_and(|e| !e.is_empty()),
        "says why: {v}"
    );
    assert_eq!(v["status"], Value::Null, "{v}");
    let (status, answer) = antenne.request("POST", "/api/v1/obs/stream/start", None)?;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(
        answer["error"], "OBS is not connected (unreachable)",
        "{answer}"
    );

    obs.restart()?;
    wait_obs(
        &antenne,
        Some(&obs),
        Duration::from_secs(40),
        "connected again",
        |v| v["state"] == "connected" && v["status"]["scenes"].is_array(),
    )?;

    let d = antenne.get_destination(&id)?;
    assert_eq!(d["status"]["state"], "live", "{d}");
    assert_eq!(d["status"]["reconnects"], 0, "{d}");
    assert_eq!(nginx.publish_count("platform_key_crash_01"), 1);
    assert!(ingest_live(&antenne));
    let kinds = event_kinds(&antenne)?;
    assert!(kinds.iter().any(|k| k == "obs_lost"), "{kinds:?}");
    Ok(())
}

#[test]
fn a_destination_via_obs_main_output_is_streamed_by_obs_itself() -> Result<()> {
    // Direct mode: antenne does not relay it; its switch drives OBS, which
    // streams straight to the platform (here nginx-rtmp).
    let platform = Nginx::start()?;
    let antenne = Antenne::start(KEY)?;
    let obs = Obs::start()?;
    connect(&antenne, &obs)?;
    let body = serde_json::json!({
        "name": "Direct", "url": platform.url(), "key": "direct_via_obs_key_0123",
        "enabled": true, "via_obs": "main",
    });
    let (status, d) = antenne.request("POST", "/api/v1/destinations", Some(&body))?;
    assert_eq!(status, 201, "{d}");
    let id = Antenne::id_of(&d);
    let d = antenne.wait_for_state(&id, "live", Duration::from_secs(30))?;
    assert_eq!(d["via_obs"], "main");
    platform.wait_for_recording("direct_via_obs_key_0123", 100_000, Duration::from_secs(30))?;
    assert!(!ingest_live(&antenne), "antenne's ingest is not involved");
    let v = obs_view(&antenne)?;
    assert_eq!(v["status"]["streaming"], true, "{v}");
    assert_eq!(
        v["status"]["stream_service"]["server"],
        platform.url().as_str(),
        "{v}"
    );

    // A second main-output destination cannot be switched on meanwhile.
    let mut second = body.clone();
    second["key"] = serde_json::json!("other_key_0123456789");
    let (status, answer) = antenne.request("POST", "/api/v1/destinations", Some(&second))?;
    assert_eq!(status, 409, "{answer}");

    // Switching it off stops OBS streaming.
    antenne.patch_destination(&id, &serde_json::json!({"enabled": false}))?;
    wait_obs(
        &antenne,
        Some(&obs),
        Duration::from_secs(20),
        "stopped",
        |v| v["status"]["streaming"] == false,
    )?;
    let rec = platform
        .latest_recording("direct_via_obs_key_0123")
        .expect("recorded");
    assert_obs_recording(&rec, 1000);
    Ok(())
}
