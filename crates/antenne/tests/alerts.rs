//! Alert webhooks end to end: antenne relays to a destination that fails
//! (a refused port, then nginx-rtmp killed and restarted), and a real HTTP
//! receiver on 127.0.0.1 checks what arrives: the body, the HMAC signature
//! (recomputed here), retries after 500s, one alert per failure episode and
//! one when it recovers, never a stream key nor the URL's token.

mod support;

use std::time::Duration;

use anyhow::Result;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use support::*;

const KEY: &str = "alerts_ingest_key_0123456789";
/// The destination's stream key and a token in its URL: never in an alert.
const DEST_KEY: &str = "alert_dest_key_5e1f0a";
const URL_TOKEN: &str = "urltoken_c0ffee";

fn add_webhook(antenne: &Antenne, body: &Value) -> Result<Value> {
    antenne.request_expect("POST", "/api/v1/alerts/webhooks", Some(body), 201)
}

/// The requests whose JSON `event` is `event`.
fn with_event(requests: &[ReceivedRequest], event: &str) -> Vec<ReceivedRequest> {
    requests
        .iter()
        .filter(|r| r.json()["event"] == event)
        .cloned()
        .collect()
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn a_failing_destination_alerts_once_per_episode_signed_retried_and_without_its_key() -> Result<()>
{
    let receiver = WebhookReceiver::start()?;
    // The first delivery is refused twice: antenne must retry it.
    receiver.answer_next(&[500, 500]);
    let antenne = Antenne::start(KEY)?;
    let hook = add_webhook(
        &antenne,
        &json!({
            "url": receiver.url("/hooks/antenne"),
            "format": "generic",
            "events": ["destination_failed", "destination_recovered"],
        }),
    )?;
    let secret = hook["secret"].as_str().unwrap_or_default().to_owned();
    assert_eq!(secret.len(), 32, "{hook}");

    // Nothing listens there yet: the destination fails.
    let port = free_port();
    let url = format!("rtmp://127.0.0.1:{port}/live?token={URL_TOKEN}");
    let d = antenne.add_destination("Alert YT", &url, DEST_KEY, true)?;
    let id = Antenne::id_of(&d);
    let _publisher = Publisher::start(&antenne.ingest_url(KEY))?;

    // The failure alert arrives after two 500s: three identical requests.
    let got = wait_until(Duration::from_secs(60), || {
        with_event(&receiver.requests(), "destination_failed")
            .iter()
            .any(|r| r.answered == 200)
    });
    let failed = with_event(&receiver.requests(), "destination_failed");
    assert!(
        got,
        "a failure alert delivered: {failed:?}\n{}",
        tail(&antenne.log(), 20)
    );
    assert_eq!(
        failed.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [500, 500, 200],
        "retried after each 500, then delivered"
    );
    let first = &failed[0];
    assert!(
        failed.iter().all(|r| r.body == first.body),
        "same alert each time"
    );
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/hooks/antenne");
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert_eq!(
        first.header("x-antenne-signature"),
        Some(format!("sha256={}", hmac_hex(&secret, &first.body)).as_str()),
        "the signature is HMAC-SHA256 of the body with the webhook's secret"
    );
    let alert = first.json();
    assert_eq!(alert["event"], "destination_failed", "{alert}");
    assert_eq!(alert["destination"]["id"], id.as_str(), "{alert}");
    assert_eq!(alert["destination"]["name"], "Alert YT", "{alert}");
    assert!(
        alert["at"].as_str().is_some_and(|a| a.ends_with('Z')),
        "{alert}"
    );
    assert!(
        alert["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{alert}"
    );

    // The platform comes up: live, but only for a moment (killed before
    // the recovery hold): still the same episode.
    let mut nginx = Nginx::start_on(port)?;
    antenne.wait_for_state(&id, "live", Duration::from_secs(90))?;
    nginx.kill();
    wait_until(Duration::from_secs(30), || {
        antenne
            .get_destination(&id)
            .is_ok_and(|d| Antenne::state_of(&d) != Some("live"))
    });
    std::thread::sleep(Duration::from_secs(3));
    nginx.restart()?;
    antenne.wait_for_state(&id, "live", Duration::from_secs(90))?;

    // Held live: one recovery alert.
    let recovered = wait_until(Duration::from_secs(60), || {
        !with_event(&receiver.requests(), "destination_recovered").is_empty()
    });
    assert!(recovered, "a recovery alert: {:?}", receiver.requests());
    let d = antenne.get_destination(&id)?;
    assert!(
        d["status"]["reconnects"].as_u64() >= Some(2),
        "the destination failed several times: {d}"
    );
    // Settle, then count: one alert per episode, one recovery.
    std::thread::sleep(Duration::from_secs(3));
    let all = receiver.requests();
    let delivered = |e: &str| {
        with_event(&all, e)
            .iter()
            .filter(|r| r.answered == 200)
            .count()
    };
    assert_eq!(delivered("destination_failed"), 1, "{all:?}");
    assert_eq!(delivered("destination_recovered"), 1, "{all:?}");

    for r in &all {
        let text = r.text();
        for secret in [DEST_KEY, URL_TOKEN, KEY] {
            assert!(!text.contains(secret), "{secret} in an alert: {text}");
        }
    }
    Ok(())
}

#[test]
fn discord_and_slack_get_their_shapes_for_ingest_changes_and_the_test_button() -> Result<()> {
    let discord = WebhookReceiver::start()?;
    let slack = WebhookReceiver::start()?;
    let antenne = Antenne::start(KEY)?;
    let d = add_webhook(
        &antenne,
        &json!({"url": discord.url("/api/webhooks/123/discordtoken_ab12"), "format": "discord",
                "events": ["ingest_live", "ingest_offline"]}),
    )?;
    let s = add_webhook(
        &antenne,
        &json!({"url": slack.url("/services/T0/B0/slacktoken_cd34"), "format": "slack",
                "events": ["ingest_live"]}),
    )?;

    // The list masks each URL's token and the secret, unless revealed.
    let list = antenne.request_expect("GET", "/api/v1/alerts/webhooks", None, 200)?;
    let text = list.to_string();
    assert!(
        !text.contains("discordtoken_ab12") && !text.contains("slacktoken_cd34"),
        "{text}"
    );
    assert!(
        !text.contains(d["secret"].as_str().unwrap_or("-")),
        "{text}"
    );
    let revealed =
        antenne.request_expect("GET", "/api/v1/alerts/webhooks?reveal=keys", None, 200)?;
    assert!(
        revealed.to_string().contains("discordtoken_ab12"),
        "{revealed}"
    );

    // "Send a test".
    let did = Antenne::id_of(&d);
    let answer = antenne.request_expect(
        "POST",
        &format!("/api/v1/alerts/webhooks/{did}/test"),
        None,
        200,
    )?;
    assert_eq!(answer["delivered"], true, "{answer}");
    let test = discord.requests();
    assert_eq!(test.len(), 1, "{test:?}");
    assert!(
        test[0].json()["content"]
            .as_str()
            .is_some_and(|c| c.contains("test")),
        "{:?}",
        test[0].text()
    );
    assert_eq!(
        test[0].header("x-antenne-signature"),
        None,
        "only the generic format is signed"
    );
    // A receiver that fails: the user is told, with its status.
    slack.answer_next(&[500]);
    let sid = Antenne::id_of(&s);
    let (status, answer) =
        antenne.request("POST", &format!("/api/v1/alerts/webhooks/{sid}/test"), None)?;
    assert_eq!(status, 502, "{answer}");
    assert!(
        answer["error"].as_str().is_some_and(|e| e.contains("500")),
        "{answer}"
    );

    // The ingest goes live, then offline.
    let mut publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    let live = |r: &WebhookReceiver, field: &str| {
        r.requests().iter().any(|q| {
            q.json()[field]
                .as_str()
                .is_some_and(|c| c.contains("is live"))
        })
    };
    assert!(wait_until(Duration::from_secs(30), || live(
        &discord, "content"
    )));
    assert!(
        wait_until(Duration::from_secs(30), || live(&slack, "text")),
        "{:?}",
        slack.requests()
    );
    publisher.stop();
    let offline = wait_until(Duration::from_secs(30), || {
        discord.requests().iter().any(|q| {
            q.json()["content"]
                .as_str()
                .is_some_and(|c| c.contains("offline"))
        })
    });
    assert!(offline, "{:?}", discord.requests());
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !slack
            .requests()
            .iter()
            .any(|q| q.text().contains("offline")),
        "slack did not subscribe to ingest_offline"
    );
    for r in discord.requests().iter().chain(slack.requests().iter()) {
        assert!(
            !r.text().contains(KEY),
            "the ingest key in an alert: {}",
            r.text()
        );
    }

    // Deleted: no more alerts, and gone from the list.
    antenne.request_expect(
        "DELETE",
        &format!("/api/v1/alerts/webhooks/{did}"),
        None,
        204,
    )?;
    let list = antenne.request_expect("GET", "/api/v1/alerts/webhooks", None, 200)?;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    Ok(())
}

#[test]
fn settings_alerts_adds_a_webhook_sends_a_test_and_deletes_it_in_a_browser() -> Result<()> {
    let receiver = WebhookReceiver::start()?;
    let antenne = Antenne::start(KEY)?;
    let browser = Browser::start("fr-FR")?;
    browser.log_in(&antenne.url("/"), ADMIN_PASSWORD)?;
    browser.click("[data-testid=nav-settings]")?;
    browser.wait_text("#h-alerts", support::browser::WAIT, |t| t == "Alertes")?;

    // Slack, ingest events only.
    browser.fill(
        "[data-testid=alert-url]",
        &receiver.url("/services/T0/B0/slacktok_77"),
    )?;
    browser.js(
        "const s = document.querySelector('[data-testid=alert-format]'); s.value = 'slack';
         for (const c of document.querySelectorAll('input[name=alert-event]'))
           c.checked = c.value.startsWith('ingest_');",
        json!([]),
    )?;
    browser.click("[data-testid=alert-add]")?;
    browser.find("[data-testid=alert-row]")?;
    let row = browser.text("[data-testid=alert-row]")?;
    assert!(
        !row.contains("slacktok_77"),
        "the URL's token is masked: {row}"
    );
    assert!(
        row.contains("Slack") && row.contains("l’ingest passe en direct"),
        "{row}"
    );
    let hooks = antenne.request_expect("GET", "/api/v1/alerts/webhooks", None, 200)?;
    assert_eq!(hooks[0]["format"], "slack", "{hooks}");
    assert_eq!(
        hooks[0]["events"],
        json!(["ingest_live", "ingest_offline"]),
        "{hooks}"
    );

    // Send a test: the receiver gets it, the page says so.
    browser.click("[data-testid=alert-test]")?;
    browser.wait_text(
        "[data-testid=alert-test-result]",
        support::browser::WAIT,
        |t| t.contains("200"),
    )?;
    let got = receiver.requests();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].json()["text"].is_string(), "{}", got[0].text());

    // A failing receiver: the page shows why.
    receiver.answer_next(&[503]);
    browser.click("[data-testid=alert-test]")?;
    browser.wait_text(
        "[data-testid=alert-test-result]",
        support::browser::WAIT,
        |t| t.contains("503"),
    )?;

    // Delete (confirmed).
    browser.js("window.confirm = () => true;", json!([]))?;
    browser.click("[data-testid=alert-delete]")?;
    let gone = wait_until(support::browser::WAIT, || {
        antenne
            .request_expect("GET", "/api/v1/alerts/webhooks", None, 200)
            .is_ok_and(|v| v.as_array().is_some_and(Vec::is_empty))
    });
    assert!(gone, "deleted");
    Ok(())
}
