//! The controls a streamer reaches for first, used as a streamer does:
//! "Turn all on" / "Turn all off" per ingest (in the page, with real
//! receivers and a real publisher, and in the API), the phone layout with
//! the switches on the first screen, and the order of the destinations
//! (moved in the page, kept across a restart and in `antenne export`).

mod support;

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use support::*;

const KEY: &str = "controls_ingest_key_0123456789";
const OTHER_KEY: &str = "controls_other_ingest_key_987";

/// Opens the dashboard, logging in through the login page if asked to,
/// and waits for it.
fn login(browser: &Browser, antenne: &Antenne) -> Result<()> {
    browser.goto(&antenne.url("/"))?;
    let page = wait_for(support::browser::WAIT, || {
        let v = browser
            .js(
                "return document.querySelector('[data-testid=login-username]') ? 'login' \
                 : document.querySelector('[data-testid=ingest-card]') ? 'dashboard' : null;",
                json!([]),
            )
            .ok()?;
        v.as_str().map(str::to_owned)
    });
    if page.as_deref() == Some("dashboard") {
        return Ok(());
    }
    browser.fill("[data-testid=login-username]", "admin")?;
    browser.fill("[data-testid=login-password]", ADMIN_PASSWORD)?;
    browser.click("[data-testid=login-submit]")?;
    browser.find("[data-testid=ingest-card]")?;
    Ok(())
}

/// The id (as `GET /api/v1/ingest-keys` shows it) of the ingest `key`.
fn ingest_id(antenne: &Antenne, key: &str) -> Result<String> {
    let (_, list) = antenne.request("GET", "/api/v1/ingest-keys?reveal=keys", None)?;
    list.as_array()
        .context("ingest keys")?
        .iter()
        .find(|k| k["key"] == key)
        .and_then(|k| k["id"].as_str())
        .map(str::to_owned)
        .with_context(|| format!("no ingest key {key} in {list}"))
}

/// History events of `kind`, newest first.
fn events_of(antenne: &Antenne, kind: &str) -> Result<Vec<Value>> {
    let (status, list) = antenne.request("GET", "/api/v1/events?limit=500", None)?;
    anyhow::ensure!(status == 200, "events: {status} {list}");
    Ok(list
        .as_array()
        .context("events")?
        .iter()
        .filter(|e| e["kind"] == kind)
        .cloned()
        .collect())
}

fn names(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|d| d["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Runs `antenne export` on a data dir; the backup as JSON.
fn export(data_dir: &std::path::Path) -> Result<Value> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_antenne"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("export")
        .output()
        .context("antenne export runs")?;
    anyhow::ensure!(
        out.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[test]
fn turning_all_on_and_off_in_the_page_switches_every_destination_with_one_event() -> Result<()> {
    let receivers = [Nginx::start()?, Nginx::start()?, Nginx::start()?];
    let antenne = Antenne::start(KEY)?;
    let dest_names = ["YouTube main", "Twitch", "Kick backup"];
    let mut ids = Vec::new();
    for (i, (name, nginx)) in dest_names.iter().zip(&receivers).enumerate() {
        let d = antenne.add_destination(name, &nginx.url(), &format!("all_key_{i}"), false)?;
        ids.push(Antenne::id_of(&d));
    }
    let _publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    let browser = Browser::start("en-US")?;
    login(&browser, &antenne)?;
    browser.wait_attr(
        "[data-testid=ingest-state]",
        "data-state",
        "live",
        Duration::from_secs(15),
    )?;

    // Turn all on: every destination reaches live, each receiver gets
    // the stream, and the history has one event naming them all.
    browser.click("[data-testid=all-on]")?;
    for (i, id) in ids.iter().enumerate() {
        antenne.wait_for_state(id, "live", Duration::from_secs(20))?;
        browser.wait_attr(
            &format!("[data-testid=destination-card][data-id={id}] [data-testid=dest-state]"),
            "data-state",
            "live",
            Duration::from_secs(15),
        )?;
        receivers[i].wait_for_recording(
            &format!("all_key_{i}"),
            30_000,
            Duration::from_secs(15),
        )?;
    }
    let on = events_of(&antenne, "all_on")?;
    assert_eq!(on.len(), 1, "one event for the whole change: {on:?}");
    for name in dest_names {
        assert!(
            on[0]["message"].as_str().unwrap_or_default().contains(name),
            "the event names {name}: {}",
            on[0]
        );
    }
    assert_eq!(on[0]["actor"], "admin");
    assert!(
        events_of(&antenne, "toggled_on")?.is_empty(),
        "no event per destination"
    );
    browser.screenshot(&artifacts_dir().join("controls-all-on-en.png"))?;

    // Turn all off asks first, naming what it will stop; cancelling
    // changes nothing.
    browser.click("[data-testid=all-off]")?;
    browser.wait_attr("#confirm-dialog", "open", "true", support::browser::WAIT)?;
    let text = browser.text("#confirm-dialog")?;
    for name in dest_names {
        assert!(text.contains(name), "the dialog names {name}: {text}");
    }
    browser.screenshot(&artifacts_dir().join("controls-all-off-confirm-en.png"))?;
    browser.click("[data-testid=confirm-cancel]")?;
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        antenne
            .list_destinations()?
            .iter()
            .all(|d| d["enabled"] == true),
        "cancel leaves them on"
    );

    browser.click("[data-testid=all-off]")?;
    browser.wait_attr("#confirm-dialog", "open", "true", support::browser::WAIT)?;
    browser.click("[data-testid=confirm-ok]")?;
    for id in &ids {
        browser.wait_attr(
            &format!("[data-testid=destination-card][data-id={id}] [data-testid=dest-toggle]"),
            "aria-checked",
            "false",
            support::browser::WAIT,
        )?;
        antenne.wait_for_state(id, "disabled", Duration::from_secs(10))?;
    }
    for (i, nginx) in receivers.iter().enumerate() {
        // The receiver saw the stream end (deleteStream), not a drop.
        assert!(
            wait_until(Duration::from_secs(10), || nginx
                .error_log()
                .contains("deleteStream")),
            "receiver {i} saw the unpublish: {}",
            nginx.error_log()
        );
    }
    assert!(antenne
        .list_destinations()?
        .iter()
        .all(|d| d["enabled"] == false));
    let off = events_of(&antenne, "all_off")?;
    assert_eq!(off.len(), 1, "{off:?}");
    for name in dest_names {
        assert!(
            off[0]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(name),
            "{}",
            off[0]
        );
    }
    Ok(())
}

#[test]
fn on_a_phone_the_switches_come_first_and_the_details_open_on_tap() -> Result<()> {
    let nginx = Nginx::start()?;
    let antenne = Antenne::start(KEY)?;
    antenne.add_destination("YouTube", &nginx.url(), "phone_key_1", false)?;
    antenne.add_destination("Twitch", &nginx.url(), "phone_key_2", false)?;
    let browser = Browser::start("en-US")?;
    login(&browser, &antenne)?;
    browser.find("[data-testid=dest-toggle]")?;
    browser.screenshot(&artifacts_dir().join("controls-desktop-en.png"))?;

    let first_switch = r#"
        const sw = document.querySelector('[data-testid=dest-toggle]');
        const r = sw.getBoundingClientRect();
        const ingest = document.querySelector('[data-testid=ingest-card]');
        return {top: r.top + window.scrollY, bottom: r.bottom + window.scrollY,
                width: window.innerWidth, height: window.innerHeight,
                ingestShown: ingest.checkVisibility(),
                foldOpen: document.querySelector('[data-testid=dash-fold]').open};
    "#;
    for lang in ["en", "fr"] {
        browser.set_window_size(1280, 900)?;
        browser.click(&format!("[data-testid=lang-{lang}]"))?;
        browser.wait_attr("html", "lang", lang, support::browser::WAIT)?;
        if lang == "fr" {
            browser.screenshot(&artifacts_dir().join("controls-desktop-fr.png"))?;
        }
        browser.set_window_size(390, 844)?;
        std::thread::sleep(Duration::from_millis(300));
        let at = browser.js(first_switch, json!([]))?;
        println!("[{lang}] at 390x844: {at}");
        assert!(
            at["width"].as_f64().unwrap_or(0.0) <= 400.0,
            "a phone-sized viewport: {at}"
        );
        let bottom = at["bottom"].as_f64().context("switch position")?;
        assert!(
            bottom <= 844.0 && bottom <= at["height"].as_f64().unwrap_or(0.0),
            "[{lang}] the first switch is on the first screen: {at}"
        );
        assert_eq!(
            at["ingestShown"], false,
            "[{lang}] the ingest details are folded: {at}"
        );
        browser.screenshot(&artifacts_dir().join(format!("controls-phone-{lang}.png")))?;

        // A tap on the summary opens the ingest details and OBS settings.
        browser.click("[data-testid=dash-fold-summary]")?;
        let at = browser.js(first_switch, json!([]))?;
        assert_eq!(at["ingestShown"], true, "[{lang}] opened: {at}");
        assert!(
            !browser.text("[data-testid=obs-server]")?.is_empty(),
            "[{lang}] the OBS settings are there"
        );
        browser.screenshot(&artifacts_dir().join(format!("controls-phone-open-{lang}.png")))?;
        browser.click("[data-testid=dash-fold-summary]")?;
    }
    Ok(())
}

#[test]
fn an_order_set_in_the_page_survives_a_restart_and_is_in_the_export() -> Result<()> {
    let mut antenne = Antenne::start(KEY)?;
    for name in ["Alpha", "Bravo", "Charlie"] {
        antenne.add_destination(name, "rtmp://127.0.0.1:9/live", "order_key", false)?;
    }
    let browser = Browser::start("en-US")?;
    login(&browser, &antenne)?;
    browser.find("[data-testid=destination-card]")?;
    let page_order = r#"return Array.from(document.querySelectorAll('[data-testid=destination-card] [data-role=name]')).map(e => e.textContent);"#;

    // Charlie one up, with its keyboard-reachable button; the focus stays
    // on the button of the card that moved.
    let charlie = "[data-testid=destination-card]:nth-child(3)";
    browser.click(&format!("{charlie} [data-testid=dest-up]"))?;
    let moved = wait_for(support::browser::WAIT, || {
        let list = names(&antenne.list_destinations().ok()?);
        (list == ["Alpha", "Charlie", "Bravo"]).then_some(list)
    });
    assert!(
        moved.is_some(),
        "saved: {:?}",
        names(&antenne.list_destinations()?)
    );
    assert_eq!(
        browser.js(page_order, json!([]))?,
        json!(["Alpha", "Charlie", "Bravo"])
    );
    let focused = browser.js(
        "const a = document.activeElement; return [a.dataset.testid, a.closest('[data-testid=destination-card]')?.querySelector('[data-role=name]')?.textContent];",
        json!([]),
    )?;
    assert_eq!(focused, json!(["dest-up", "Charlie"]));
    // The top card's "up" says it cannot go further.
    assert_eq!(
        browser
            .attr(
                "[data-testid=destination-card]:nth-child(1) [data-testid=dest-up]",
                "aria-disabled"
            )?
            .as_deref(),
        Some("true")
    );
    assert_eq!(events_of(&antenne, "reordered")?.len(), 1);

    // The order survives a crash and a reload.
    antenne.restart()?;
    assert_eq!(
        names(&antenne.list_destinations()?),
        ["Alpha", "Charlie", "Bravo"]
    );
    login(&browser, &antenne)?;
    let shown = wait_for(support::browser::WAIT, || {
        let v = browser.js(page_order, json!([])).ok()?;
        (v == json!(["Alpha", "Charlie", "Bravo"])).then_some(v)
    });
    assert!(shown.is_some(), "{:?}", browser.js(page_order, json!([])));

    // And it is in the backup.
    antenne.kill();
    let backup = export(&antenne.data_dir())?;
    let list = backup["destinations"].as_array().context("destinations")?;
    assert_eq!(names(list), ["Alpha", "Charlie", "Bravo"]);
    Ok(())
}

#[test]
fn turn_all_on_leaves_a_second_obs_main_off_and_says_why() -> Result<()> {
    let antenne = Antenne::start(KEY)?;
    let mk = |name: &str, via: Option<&str>| {
        antenne.request_expect(
            "POST",
            "/api/v1/destinations",
            Some(
                &json!({"name": name, "url": "rtmp://127.0.0.1:9/live", "key": "k",
                         "enabled": false, "via_obs": via}),
            ),
            201,
        )
    };
    let first = mk("OBS first", Some("main"))?;
    let second = mk("OBS second", Some("main"))?;
    let relayed = mk("Relayed", None)?;
    let id = ingest_id(&antenne, KEY)?;
    let done = antenne.request_expect(
        "POST",
        &format!("/api/v1/ingest-keys/{id}/destinations/enable-all"),
        None,
        200,
    )?;
    assert_eq!(done["enabled"], true);
    assert_eq!(
        names(done["changed"].as_array().context("changed")?),
        ["OBS first", "Relayed"]
    );
    let skipped = done["skipped"].as_array().context("skipped")?;
    assert_eq!(skipped.len(), 1, "{done}");
    assert_eq!(skipped[0]["id"], second["id"]);
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("OBS first"),
        "the reason names the one using OBS's output: {done}"
    );
    let enabled = |d: &Value| {
        antenne
            .get_destination(&Antenne::id_of(d))
            .map(|v| v["enabled"].clone())
    };
    assert_eq!(enabled(&first)?, true);
    assert_eq!(enabled(&second)?, false);
    assert_eq!(enabled(&relayed)?, true);
    let on = events_of(&antenne, "all_on")?;
    assert_eq!(on.len(), 1, "{on:?}");
    assert!(
        on[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("OBS second"),
        "the event says what was left off: {}",
        on[0]
    );

    // Again: nothing more to switch; no new event.
    let again = antenne.request_expect(
        "POST",
        &format!("/api/v1/ingest-keys/{id}/destinations/enable-all"),
        None,
        200,
    )?;
    assert_eq!(again["changed"], json!([]));
    assert_eq!(events_of(&antenne, "all_on")?.len(), 1);
    Ok(())
}

#[test]
fn turning_all_off_touches_only_the_named_ingest() -> Result<()> {
    let nginx = Nginx::start()?;
    let antenne = Antenne::start_with(Antenne::options().ingest_key(KEY).ingest_key(OTHER_KEY))?;
    let mk = |name: &str, ingest: &str| {
        antenne.request_expect(
            "POST",
            "/api/v1/destinations",
            Some(&json!({"name": name, "url": nginx.url(), "key": name,
                         "enabled": true, "ingest": ingest})),
            201,
        )
    };
    let a1 = mk("a1", KEY)?;
    let a2 = mk("a2", KEY)?;
    let b1 = mk("b1", OTHER_KEY)?;
    let id = ingest_id(&antenne, KEY)?;
    let done = antenne.request_expect(
        "POST",
        &format!("/api/v1/ingest-keys/{id}/destinations/disable-all"),
        None,
        200,
    )?;
    assert_eq!(
        names(done["changed"].as_array().context("changed")?),
        ["a1", "a2"]
    );
    for (d, want) in [(&a1, false), (&a2, false), (&b1, true)] {
        let now = antenne.get_destination(&Antenne::id_of(d))?;
        assert_eq!(now["enabled"], want, "{now}");
    }
    let all = done["destinations"].as_array().context("destinations")?;
    assert_eq!(all.len(), 3);
    assert!(
        !done.to_string().contains(KEY),
        "no ingest key in clear in the answer: {done}"
    );
    Ok(())
}

#[test]
fn bulk_and_order_requests_naming_unknown_things_are_refused_and_change_nothing() -> Result<()> {
    let antenne = Antenne::start(KEY)?;
    let a = antenne.add_destination("A", "rtmp://127.0.0.1:9/live", "k", false)?;
    let b = antenne.add_destination("B", "rtmp://127.0.0.1:9/live", "k", false)?;
    let (a, b) = (Antenne::id_of(&a), Antenne::id_of(&b));

    let (status, answer) = antenne.request(
        "POST",
        "/api/v1/ingest-keys/nope/destinations/enable-all",
        None,
    )?;
    assert_eq!(status, 404, "{answer}");
    assert!(antenne
        .list_destinations()?
        .iter()
        .all(|d| d["enabled"] == false));

    for (body, why) in [
        (json!({"ids": [a]}), "missing"),
        (json!({"ids": [a, b, a]}), "twice"),
        (json!({"ids": [a, b, "d0000000000"]}), "no destination"),
        (json!({"order": [b, a]}), "unknown field"),
    ] {
        let (status, answer) = antenne.request("PUT", "/api/v1/destinations/order", Some(&body))?;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap_or_default().contains(why),
            "{body}: {answer}"
        );
        assert_eq!(names(&antenne.list_destinations()?), ["A", "B"]);
    }
    let list = antenne.request_expect(
        "PUT",
        "/api/v1/destinations/order",
        Some(&json!({"ids": [b, a]})),
        200,
    )?;
    assert_eq!(names(list.as_array().context("list")?), ["B", "A"]);
    assert_eq!(names(&antenne.list_destinations()?), ["B", "A"]);
    // A new destination goes last.
    antenne.add_destination("C", "rtmp://127.0.0.1:9/live", "k", false)?;
    assert_eq!(names(&antenne.list_destinations()?), ["B", "A", "C"]);
    Ok(())
}
