//! The web interface in real headless Chromium, as a streamer uses it: log
//! in, add a platform from its preset, switch it on while OBS (here ffmpeg)
//! publishes and watch it go live without reloading, switch it off, read
//! the page in French, log out.

mod support;

use std::time::Duration;

use anyhow::Result;
use support::*;

const KEY: &str = "browser_ingest_key_0123456789";

#[test]
fn a_streamer_logs_in_adds_a_platform_and_switches_it_live() -> Result<()> {
    let nginx = Nginx::start()?;
    let antenne = Antenne::start(KEY)?;
    let browser = Browser::start("en-US")?;
    let home = antenne.url("/");

    // The dashboard needs a login.
    browser.goto(&home)?;
    browser.find("[data-testid=login-username]")?;
    assert!(browser.url()?.ends_with("/login"), "{}", browser.url()?);
    browser.fill("[data-testid=login-username]", "admin")?;
    browser.fill("[data-testid=login-password]", "wrong password")?;
    browser.click("[data-testid=login-submit]")?;
    browser.wait_text("[data-testid=login-error]", support::browser::WAIT, |t| {
        !t.trim().is_empty()
    })?;
    browser.fill("[data-testid=login-password]", ADMIN_PASSWORD)?;
    browser.click("[data-testid=login-submit]")?;
    browser.find("[data-testid=ingest-card]")?;
    // Without the session, the API answers 401.
    let (status, _) = antenne.request_anonymous("GET", "/api/v1/destinations", None)?;
    assert_eq!(status, 401);

    // OBS settings shown: server URL with antenne's RTMP port.
    let want = format!(":{}/live", antenne.rtmp_port());
    let server = wait_for(support::browser::WAIT, || {
        let v = browser.text("[data-testid=obs-server]").ok()?;
        v.contains(&want).then_some(v)
    });
    assert!(
        server.is_some(),
        "OBS server URL shown: {:?}",
        browser.text("[data-testid=obs-server]")
    );

    // OBS goes live: the ingest card follows without a reload.
    browser.js("window.__noReload = 42;", serde_json::json!([]))?;
    let _publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    browser.wait_attr(
        "[data-testid=ingest-state]",
        "data-state",
        "live",
        Duration::from_secs(15),
    )?;

    // Add YouTube from its preset: the URL is filled in; it is pointed at
    // a local receiver here since the test cannot reach YouTube.
    browser.click("[data-testid=add-destination]")?;
    browser.js(
        "const s = document.querySelector('[data-testid=preset-select]'); s.value = 'youtube'; s.dispatchEvent(new Event('change', {bubbles: true}));",
        serde_json::json!([]),
    )?;
    assert_eq!(
        browser.value("[data-testid=dest-url]")?,
        "rtmp://a.rtmp.youtube.com/live2"
    );
    assert_eq!(browser.value("[data-testid=dest-name]")?, "YouTube");
    browser.fill("[data-testid=dest-url]", &nginx.url())?;
    browser.fill("[data-testid=dest-key]", "yt_stream_key_42")?;
    if browser
        .attr("[data-testid=dest-enabled]", "checked")?
        .is_some()
    {
        browser.click("[data-testid=dest-enabled]")?;
    }
    browser.click("[data-testid=dest-submit]")?;
    let card = "[data-testid=destination-card]";
    browser.wait_attr(
        &format!("{card} [data-testid=dest-state]"),
        "data-state",
        "disabled",
        support::browser::WAIT,
    )?;
    let page = browser.text(card)?;
    assert!(
        !page.contains("yt_stream_key_42"),
        "the key is masked on the page: {page}"
    );

    // Switch it on: it turns live on the page, without a reload.
    browser.click(&format!("{card} [data-testid=dest-toggle]"))?;
    browser.wait_attr(
        &format!("{card} [data-testid=dest-state]"),
        "data-state",
        "live",
        Duration::from_secs(15),
    )?;
    browser.wait_attr(
        &format!("{card} [data-testid=dest-toggle]"),
        "aria-checked",
        "true",
        support::browser::WAIT,
    )?;
    browser.wait_text(
        &format!("{card} [data-testid=dest-bitrate]"),
        Duration::from_secs(10),
        |t| t.chars().any(|c| c.is_ascii_digit() && c != '0'),
    )?;
    assert_eq!(
        browser.js("return window.__noReload;", serde_json::json!([]))?,
        42,
        "no reload"
    );
    nginx.wait_for_recording("yt_stream_key_42", 30_000, Duration::from_secs(10))?;
    browser.screenshot(&artifacts_dir().join("dashboard-en.png"))?;

    // Switch it off.
    browser.click(&format!("{card} [data-testid=dest-toggle]"))?;
    browser.wait_attr(
        &format!("{card} [data-testid=dest-state]"),
        "data-state",
        "disabled",
        support::browser::WAIT,
    )?;
    let d = antenne.list_destinations()?;
    assert_eq!(d[0]["enabled"], false);

    // French.
    browser.click("[data-testid=lang-fr]")?;
    browser.wait_text("[data-testid=nav-dashboard]", support::browser::WAIT, |t| {
        t.contains("Tableau de bord")
    })?;
    assert_eq!(browser.attr("html", "lang")?.as_deref(), Some("fr"));
    browser.screenshot(&artifacts_dir().join("dashboard-fr.png"))?;
    browser.set_window_size(390, 844)?;
    browser.screenshot(&artifacts_dir().join("dashboard-phone-fr.png"))?;
    browser.set_window_size(1280, 900)?;

    // The events page shows what happened, by whom.
    browser.click("[data-testid=nav-events]")?;
    browser.find("[data-testid=event-row]")?;
    let events = browser.text("main")?;
    assert!(
        events.contains("YouTube") && events.contains("admin"),
        "{events}"
    );

    // Log out: the dashboard needs a login again.
    browser.click("[data-testid=logout]")?;
    browser.find("[data-testid=login-username]")?;
    browser.goto(&home)?;
    browser.find("[data-testid=login-username]")?;
    assert!(browser.url()?.ends_with("/login"));
    Ok(())
}
