//! The OBS dock (`/dock`) in real headless Chromium at OBS's dock size
//! (300 × 700): behind the login (and back to the dock after it), the
//! ingest's state, each destination's state and error, its switch, and a
//! new key pasted for a platform that gives one for each live; the API
//! confirms every change. A real publisher (ffmpeg) and receiver (nginx).

mod support;

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;
use support::*;

const KEY: &str = "dock_test_key_0123456789";
const LIVE: Duration = Duration::from_secs(20);

#[test]
fn the_dock_switches_destinations_and_takes_a_new_key_at_300_px() -> Result<()> {
    let nginx = Nginx::start()?;
    let antenne = Antenne::start(KEY)?;
    // Twitch to a real receiver, off; Instagram (a new key each live) to a
    // port where nothing listens, on: it fails and says why.
    let (status, twitch) = antenne.request(
        "POST",
        "/api/v1/destinations",
        Some(&json!({"name": "Twitch", "platform": "twitch", "url": nginx.url(), "key": "tw", "enabled": false})),
    )?;
    assert_eq!(status, 201, "{twitch}");
    let closed = free_port();
    let (status, insta) = antenne.request(
        "POST",
        "/api/v1/destinations",
        Some(&json!({"name": "Instagram", "platform": "instagram", "url": format!("rtmp://127.0.0.1:{closed}/rtmp"), "key": "IG-old-key-0001", "enabled": true})),
    )?;
    assert_eq!(status, 201, "{insta}");
    let (tw_id, ig_id) = (Antenne::id_of(&twitch), Antenne::id_of(&insta));

    let browser = Browser::start("en-US")?;
    browser.set_window_size(300, 700)?;

    // Not logged in: the login page, then back to the dock.
    browser.goto(&antenne.url("/dock"))?;
    browser.find("[data-testid=login-username]")?;
    assert!(
        browser.url()?.ends_with("/login?next=/dock"),
        "{}",
        browser.url()?
    );
    browser.fill("[data-testid=login-username]", "admin")?;
    browser.fill("[data-testid=login-password]", ADMIN_PASSWORD)?;
    browser.click("[data-testid=login-submit]")?;
    browser.find("[data-testid=dock-list] [data-testid=dock-dest]")?;
    assert!(browser.url()?.ends_with("/dock"), "{}", browser.url()?);

    let tw = format!("[data-testid=dock-dest][data-id={tw_id}]");
    let ig = format!("[data-testid=dock-dest][data-id={ig_id}]");
    assert_eq!(browser.text(&format!("{tw} .dest-name"))?, "Twitch");
    assert_eq!(browser.text(&format!("{ig} .dest-name"))?, "Instagram");
    browser.wait_attr("[data-testid=dock-ingest]", "data-state", "offline", LIVE)?;
    // Only Instagram offers a new key.
    assert!(browser
        .attr(&format!("{tw} .dest-key"), "hidden")?
        .is_some());
    assert!(browser
        .attr(&format!("{ig} .dest-key"), "hidden")?
        .is_none());

    // OBS goes live: the dock follows (live stream, no reload).
    let _publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    browser.wait_attr("[data-testid=dock-ingest]", "data-state", "live", LIVE)?;
    // Instagram cannot connect: its state and error show.
    let error = browser.wait_text(&format!("{ig} .dest-error"), LIVE, |t| !t.is_empty())?;
    assert!(!error.contains("IG-old"), "no key in the error: {error}");

    // Switch Twitch on from the dock: the API confirms, it goes live.
    browser.click(&format!("{tw} [data-testid=dock-switch]"))?;
    browser.wait_attr(
        &format!("{tw} [data-testid=dock-switch]"),
        "aria-checked",
        "true",
        LIVE,
    )?;
    assert_eq!(antenne.get_destination(&tw_id)?["enabled"], true);
    browser.wait_attr(&format!("{tw} .badge"), "data-state", "live", LIVE)?;
    browser.wait_text(&format!("{tw} .badge"), LIVE, |t| t == "Live")?;
    browser.wait_text(&format!("{ig} .dest-error"), LIVE, |t| !t.is_empty())?;
    browser.screenshot(&artifacts_dir().join("dock-300x700-live.png"))?;

    // Paste Instagram's new key.
    browser.click(&format!("{ig} [data-testid=dock-new-key]"))?;
    browser.fill(
        &format!("{ig} [data-testid=dock-key-input]"),
        "IG-new-key-0002",
    )?;
    browser.click(&format!("{ig} [data-testid=dock-key-save]"))?;
    browser.wait_text(&format!("{ig} [data-testid=dock-key-msg]"), LIVE, |t| {
        t == "New key saved."
    })?;
    let (_, list) = antenne.request("GET", "/api/v1/destinations?reveal=keys", None)?;
    let saved = list
        .as_array()
        .and_then(|l| l.iter().find(|d| d["id"] == ig_id.as_str()))
        .context("Instagram listed")?;
    assert_eq!(saved["key"], "IG-new-key-0002");
    assert!(
        browser
            .attr(&format!("{ig} .key-form"), "hidden")?
            .is_some(),
        "the key form closes once saved"
    );
    let shown = browser.js(
        "return getComputedStyle(document.querySelector(arguments[0])).display;",
        json!([format!("{ig} .key-form")]),
    )?;
    assert_eq!(shown, "none", "the closed form is not displayed");

    // All off asks first, in the dock, naming what it stops; cancel keeps
    // them on; confirm switches every one off in one request.
    browser.click("[data-testid=dock-all-off]")?;
    let question = browser.wait_text("[data-testid=dock-all-off-question]", LIVE, |t| {
        !t.is_empty()
    })?;
    assert!(
        question.contains("Twitch") && question.contains("Instagram"),
        "{question}"
    );
    browser.click("[data-testid=dock-all-off-no]")?;
    assert_eq!(antenne.get_destination(&tw_id)?["enabled"], true);
    browser.click("[data-testid=dock-all-off]")?;
    browser.click("[data-testid=dock-all-off-yes]")?;
    browser.wait_attr(
        &format!("{tw} [data-testid=dock-switch]"),
        "aria-checked",
        "false",
        LIVE,
    )?;
    for id in [&tw_id, &ig_id] {
        assert_eq!(antenne.get_destination(id)?["enabled"], false, "{id} off");
    }
    // All on: both back on, Twitch live again at its receiver.
    browser.click("[data-testid=dock-all-on]")?;
    browser.wait_attr(&format!("{tw} .badge"), "data-state", "live", LIVE)?;
    for id in [&tw_id, &ig_id] {
        assert_eq!(antenne.get_destination(id)?["enabled"], true, "{id} on");
    }

    // Readable at 300 px: nothing wider than the window.
    let overflow = browser.js(
        "return document.documentElement.scrollWidth - window.innerWidth;",
        json!([]),
    )?;
    assert!(
        overflow.as_i64().is_some_and(|o| o <= 0),
        "the dock is wider than the window by {overflow} px"
    );
    let shot = artifacts_dir().join("dock-300x700.png");
    browser.screenshot(&shot)?;
    eprintln!("screenshot: {}", shot.display());
    Ok(())
}
