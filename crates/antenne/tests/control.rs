//! The control room as a user (or a script) meets it: state that survives
//! restarts, backups, login and tokens. (A disk that refuses writes is in
//! faults.rs.)

mod support;

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use support::*;

const KEY: &str = "control_ingest_key_0123456789";

/// Runs `antenne <args>` on a data dir, returning (success, stdout, stderr).
fn antenne_cli(
    data_dir: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String, String) {
    use std::io::Write;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_antenne"));
    cmd.arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("antenne runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("writes stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("antenne finishes");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn destinations_survive_a_restart_and_resume_when_the_ingest_returns() -> Result<()> {
    let nginx = Nginx::start()?;
    let mut antenne = Antenne::start(KEY)?;
    let on = antenne.add_destination("On", &nginx.url(), "on_key", true)?;
    antenne.add_destination("Off", &nginx.url(), "off_key", false)?;
    antenne.patch_destination(&Antenne::id_of(&on), &json!({"name": "On (renamed)"}))?;

    // A crash (SIGKILL), not a clean stop: acknowledged changes are on disk.
    antenne.restart()?;
    let list = antenne.list_destinations()?;
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["name"], "On (renamed)");
    assert_eq!(list[0]["enabled"], true);
    assert_eq!(list[1]["enabled"], false);
    assert_eq!(list[1]["status"]["state"], "disabled");
    let (_, revealed) = antenne.request("GET", "/api/v1/destinations?reveal=keys", None)?;
    assert_eq!(revealed[0]["key"], "on_key", "keys kept");

    let _publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    antenne.wait_for_state(&Antenne::id_of(&on), "live", Duration::from_secs(15))?;
    nginx.wait_for_recording("on_key", 50_000, Duration::from_secs(10))?;
    assert!(
        nginx.recordings("off_key").is_empty(),
        "the disabled one stays off"
    );
    Ok(())
}

#[test]
fn export_then_import_restores_everything_and_a_bad_backup_changes_nothing() -> Result<()> {
    let mut antenne = Antenne::start(KEY)?;
    antenne.add_destination(
        "YT",
        "rtmp://a.rtmp.youtube.com/live2",
        "yt_secret_key",
        true,
    )?;
    antenne.add_destination(
        "FB",
        "rtmps://live-api-s.facebook.com:443/rtmp/",
        "fb_secret_key",
        false,
    )?;
    antenne.kill();
    let dir = antenne.data_dir();

    let (ok, backup, warning) = antenne_cli(&dir, &["export"], None);
    assert!(ok, "export works: {warning}");
    assert!(warning.contains("in clear"), "warns about keys: {warning}");
    let parsed: Value = serde_json::from_str(&backup)?;
    assert_eq!(parsed["destinations"].as_array().map(Vec::len), Some(2));
    assert!(backup.contains("yt_secret_key"), "keys included");

    // A backup with one bad destination: refused whole, with every problem.
    let mut bad = parsed.clone();
    bad["destinations"][1]["url"] = json!("http://nope");
    bad["destinations"][0]["name"] = json!("");
    let (ok, _, err) = antenne_cli(&dir, &["import", "-"], Some(&bad.to_string()));
    assert!(!ok);
    assert!(err.contains("nothing was imported"), "{err}");
    assert!(
        err.contains("invalid url") && err.contains("name must be"),
        "says every problem: {err}"
    );
    let (ok, _, err) = antenne_cli(&dir, &["import", "-"], Some("{ not json"));
    assert!(!ok && err.contains("not valid"), "{err}");
    let (_, after, _) = antenne_cli(&dir, &["export"], None);
    assert_eq!(serde_json::from_str::<Value>(&after)?, parsed, "unchanged");

    // Import into an empty data dir: the same state.
    let fresh = tempfile::tempdir()?;
    let (ok, _, err) = antenne_cli(fresh.path(), &["import", "-"], Some(&backup));
    assert!(ok, "{err}");
    let (_, restored, _) = antenne_cli(fresh.path(), &["export"], None);
    let restored: Value = serde_json::from_str(&restored)?;
    assert_eq!(restored["destinations"], parsed["destinations"]);

    // Import refuses to run under a live antenne.
    antenne.restart()?;
    let (ok, _, err) = antenne_cli(&dir, &["import", "-"], Some(&backup));
    assert!(!ok && err.contains("another antenne"), "{err}");
    Ok(())
}

#[test]
fn a_corrupt_database_stops_start_up_with_a_clear_message() -> Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("antenne.db"), vec![0x5au8; 4096])?;
    let (ok, _, err) = antenne_cli(
        dir.path(),
        &[
            "--rtmp-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ],
        None,
    );
    assert!(!ok, "refuses to start");
    assert!(err.contains("damaged"), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("antenne.db"))?.len(),
        4096,
        "left as it was"
    );
    Ok(())
}

/// The routes anyone may call: the health check, the login itself and the
/// API's description.
const PUBLIC_ROUTES: [&str; 3] = ["/api/v1/health", "/api/v1/login", "/api/v1/openapi.json"];

/// Every operation `openapi.json` documents, as (METHOD, path with each
/// `{param}` filled in).
fn documented_operations(antenne: &Antenne) -> Result<Vec<(String, String, String)>> {
    let (status, doc) = antenne.request_anonymous("GET", "/api/v1/openapi.json", None)?;
    anyhow::ensure!(status == 200, "openapi.json answered {status}: {doc}");
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().context("openapi.json has paths")? {
        let url_path = path
            .split('/')
            .map(|s| if s.starts_with('{') { "x" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().context("operations")?.keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                ops.push((method.to_uppercase(), path.clone(), url_path.clone()));
            }
        }
    }
    Ok(ops)
}

#[test]
fn every_api_route_needs_a_login_or_a_token() -> Result<()> {
    let antenne = Antenne::start(KEY)?;
    let ops = documented_operations(&antenne)?;
    // The whole document, not a sample: it lists 34 operations today.
    assert!(
        ops.len() >= 30,
        "openapi.json lists {} operations",
        ops.len()
    );
    for public in PUBLIC_ROUTES {
        assert!(
            ops.iter().any(|(_, path, _)| path == public),
            "{public} is documented"
        );
    }
    let mut checked = 0;
    for (method, path, url_path) in &ops {
        // A body where one may be expected: the answer must not depend on
        // it. (A fresh connection for each request: antenne refuses before
        // reading the body, and closes that connection.)
        let body = (method != "GET").then(|| json!({}));
        let url = antenne.url(url_path);
        let (status, answer) = http_json(&ureq::agent(), method, &url, body.as_ref())?;
        if PUBLIC_ROUTES.contains(&path.as_str()) {
            // Reached without credentials (the handler answers, whatever
            // it thinks of an empty body).
            assert_ne!(
                answer["error"], "login required",
                "{method} {path} is public: {status} {answer}"
            );
            continue;
        }
        assert_eq!(
            (status, answer["error"].as_str()),
            (401, Some("login required")),
            "{method} {path} without credentials: {answer}"
        );
        // A wrong bearer token is no better.
        let (status, answer) = http_json_as(
            &ureq::agent(),
            Some("antenne_not_a_token"),
            method,
            &url,
            body.as_ref(),
        )?;
        assert_eq!(status, 401, "{method} {path} with a wrong token: {answer}");
        checked += 1;
    }
    assert_eq!(checked, ops.len() - PUBLIC_ROUTES.len(), "{ops:?}");
    let (status, _) = antenne.request_anonymous("GET", "/api/v1/health", None)?;
    assert_eq!(status, 200);
    Ok(())
}

fn login(antenne: &Antenne, password: &str) -> Result<(u16, Option<String>)> {
    let res = ureq::post(&antenne.url("/api/v1/login"))
        .send_json(json!({"username": "admin", "password": password}));
    match res {
        Ok(r) => Ok((r.status(), r.header("set-cookie").map(str::to_owned))),
        Err(ureq::Error::Status(code, _)) => Ok((code, None)),
        Err(e) => Err(e.into()),
    }
}

#[test]
fn browser_sessions_are_httponly_strict_and_guarded_against_other_sites() -> Result<()> {
    let antenne = Antenne::start(KEY)?;
    let (status, cookie) = login(&antenne, ADMIN_PASSWORD)?;
    assert_eq!(status, 200);
    let cookie = cookie.expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap_or_default().to_owned();
    let base = antenne.url("");
    let origin = base.trim_end_matches('/');

    let get = ureq::get(&antenne.url("/api/v1/me"))
        .set("cookie", &session)
        .call()?;
    assert_eq!(get.into_json::<Value>()?["username"], "admin");
    let body = json!({"url": "rtmp://127.0.0.1:1/live", "key": "k", "enabled": false});
    // From another site: refused.
    let res = ureq::post(&antenne.url("/api/v1/destinations"))
        .set("cookie", &session)
        .set("origin", "http://evil.example")
        .send_json(body.clone());
    assert!(matches!(res, Err(ureq::Error::Status(403, _))), "{res:?}");
    // From antenne's own page: accepted.
    let res = ureq::post(&antenne.url("/api/v1/destinations"))
        .set("cookie", &session)
        .set("origin", origin)
        .send_json(body)?;
    assert_eq!(res.status(), 201);
    // The page itself needs the session.
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let res = agent.get(&antenne.url("/")).call()?;
    assert_eq!(
        (res.status(), res.header("location")),
        (303, Some("/login"))
    );
    let res = agent
        .get(&antenne.url("/"))
        .set("cookie", &session)
        .call()?;
    assert_eq!(res.status(), 200);
    assert!(res.into_string()?.contains("<html"));

    // Logout ends the session.
    ureq::post(&antenne.url("/api/v1/logout"))
        .set("cookie", &session)
        .set("origin", origin)
        .call()?;
    let res = ureq::get(&antenne.url("/api/v1/me"))
        .set("cookie", &session)
        .call();
    assert!(matches!(res, Err(ureq::Error::Status(401, _))));
    Ok(())
}

#[test]
fn failed_logins_are_rate_limited() -> Result<()> {
    let antenne = Antenne::start(KEY)?;
    for _ in 0..5 {
        assert_eq!(login(&antenne, "wrong")?.0, 401);
    }
    assert_eq!(
        login(&antenne, ADMIN_PASSWORD)?.0,
        429,
        "even the right password waits"
    );
    assert!(antenne.log().contains("failed login"));
    assert!(
        !antenne.log().contains(ADMIN_PASSWORD),
        "passwords never logged"
    );
    Ok(())
}

#[test]
fn api_tokens_created_in_the_ui_work_until_deleted() -> Result<()> {
    let antenne = Antenne::start(KEY)?;
    let (status, created) = antenne.request(
        "POST",
        "/api/v1/tokens",
        Some(&json!({"name": "stream deck"})),
    )?;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap_or_default().to_owned();
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    let get = |t: &str| -> Result<u16> {
        Ok(http_json_as(
            &ureq::agent(),
            Some(t),
            "GET",
            &antenne.url("/api/v1/destinations"),
            None,
        )?
        .0)
    };
    assert_eq!(get(&token)?, 200);
    let (_, list) = antenne.request("GET", "/api/v1/tokens", None)?;
    assert_eq!(list[0]["name"], "stream deck");
    assert!(
        !list.to_string().contains(&token),
        "the secret is shown once only"
    );
    let (status, _) = antenne.request("DELETE", &format!("/api/v1/tokens/{id}"), None)?;
    assert_eq!(status, 204);
    assert_eq!(get(&token)?, 401);
    Ok(())
}

#[test]
fn the_event_history_tells_who_did_what() -> Result<()> {
    let nginx = Nginx::start()?;
    let antenne = Antenne::start(KEY)?;
    let d = antenne.add_destination("Twitch", &nginx.url(), "tw", true)?;
    let id = Antenne::id_of(&d);
    let _publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    antenne.wait_for_state(&id, "live", Duration::from_secs(15))?;
    antenne.patch_destination(&id, &json!({"enabled": false}))?;
    let found = wait_for(Duration::from_secs(5), || {
        let (_, events) = antenne
            .request("GET", &format!("/api/v1/events?destination={id}"), None)
            .ok()?;
        let kinds: Vec<String> = events
            .as_array()?
            .iter()
            .filter_map(|e| e["kind"].as_str().map(str::to_owned))
            .collect();
        (kinds.contains(&"toggled_off".to_owned()) && kinds.contains(&"went_live".to_owned()))
            .then_some(events)
    })
    .expect("toggle and live events recorded");
    let toggled = found
        .as_array()
        .and_then(|a| a.iter().find(|e| e["kind"] == "toggled_off"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(toggled["actor"], "token ANTENNE_API_TOKEN", "{toggled}");
    assert_eq!(toggled["destination_name"], "Twitch");
    let (_, all) = antenne.request("GET", "/api/v1/events", None)?;
    assert!(all.to_string().contains("ingest_live"), "{all}");
    Ok(())
}
