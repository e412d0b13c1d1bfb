//! The admin account and the secrets antenne keeps, as the person running
//! it meets them: changing the password (API and the Settings page in
//! real Chromium), logging out everywhere, `antenne reset-password`, a
//! private data directory, secrets read from files instead of flags, and
//! `antenne export` saying which secrets it prints.

mod support;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use support::*;

const KEY: &str = "account_ingest_key_0123456789";
const NEW_PASSWORD: &str = "a brand new passphrase";

/// Runs `antenne <args>` on a data dir, returning (success, stdout, stderr).
fn antenne_cli(data_dir: &Path, args: &[&str]) -> Result<(bool, String, String)> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_antenne"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("ANTENNE_ADMIN_PASSWORD")
        .env_remove("ANTENNE_INGEST_KEY")
        .output()
        .context("antenne runs")?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Logs in; returns the status and the `name=value` of the session cookie.
fn login(antenne: &Antenne, password: &str) -> Result<(u16, Option<String>)> {
    let res = ureq::post(&antenne.url("/api/v1/login"))
        .send_json(json!({"username": "admin", "password": password}));
    match res {
        Ok(r) => Ok((
            r.status(),
            r.header("set-cookie")
                .and_then(|c| c.split(';').next())
                .map(str::to_owned),
        )),
        Err(ureq::Error::Status(code, _)) => Ok((code, None)),
        Err(e) => Err(e.into()),
    }
}

/// A request with a session cookie, from antenne's own page.
fn with_cookie(
    antenne: &Antenne,
    cookie: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value)> {
    let base = antenne.url("");
    let req = ureq::request(method, &antenne.url(path))
        .set("cookie", cookie)
        .set("origin", base.trim_end_matches('/'));
    let res = match body {
        Some(b) => req.send_json(b.clone()),
        None => req.call(),
    };
    let r = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e.into()),
    };
    let status = r.status();
    let text = r.into_string()?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

#[test]
fn a_password_change_ends_every_other_session_and_the_old_password() -> Result<()> {
    let antenne = Antenne::start(KEY)?;
    let mine = login(&antenne, ADMIN_PASSWORD)?.1.context("a cookie")?;
    let other = login(&antenne, ADMIN_PASSWORD)?.1.context("a cookie")?;
    let change = |current: &str, new: &str| {
        with_cookie(
            &antenne,
            &mine,
            "PUT",
            "/api/v1/account/password",
            Some(&json!({ "current_password": current, "new_password": new })),
        )
    };
    let (code, v) = change(ADMIN_PASSWORD, "short")?;
    assert_eq!(code, 400, "too short: {v}");
    assert!(v["error"].as_str().unwrap_or("").contains("10"), "{v}");
    let (code, v) = change("not the password", NEW_PASSWORD)?;
    assert_eq!(code, 403, "wrong current password: {v}");
    assert_eq!(
        with_cookie(&antenne, &other, "GET", "/api/v1/me", None)?.0,
        200
    );

    let (code, v) = change(ADMIN_PASSWORD, NEW_PASSWORD)?;
    assert_eq!(code, 204, "{v}");
    assert_eq!(
        with_cookie(&antenne, &mine, "GET", "/api/v1/me", None)?.0,
        200,
        "the session that changed it goes on"
    );
    assert_eq!(
        with_cookie(&antenne, &other, "GET", "/api/v1/me", None)?.0,
        401,
        "every other session ended"
    );
    assert_eq!(login(&antenne, ADMIN_PASSWORD)?.0, 401, "the old password");
    let third = login(&antenne, NEW_PASSWORD)?
        .1
        .context("new password works")?;

    // Log out everywhere: every session ends, this one included.
    let (code, _) = with_cookie(&antenne, &mine, "DELETE", "/api/v1/sessions", None)?;
    assert_eq!(code, 204);
    for cookie in [&mine, &third] {
        assert_eq!(
            with_cookie(&antenne, cookie, "GET", "/api/v1/me", None)?.0,
            401
        );
    }
    // API tokens are not sessions: they keep working.
    assert_eq!(antenne.request("GET", "/api/v1/me", None)?.0, 200);
    assert!(
        !antenne.log().contains(NEW_PASSWORD),
        "passwords never logged"
    );
    Ok(())
}

#[test]
fn sessions_survive_a_restart_but_not_a_password_reset() -> Result<()> {
    let mut antenne = Antenne::start(KEY)?;
    let cookie = login(&antenne, ADMIN_PASSWORD)?.1.context("a cookie")?;
    antenne.restart()?;
    assert_eq!(
        with_cookie(&antenne, &cookie, "GET", "/api/v1/me", None)?.0,
        200
    );

    // While antenne runs, reset-password refuses (like import).
    let (ok, _, err) = antenne_cli(&antenne.data_dir(), &["reset-password"])?;
    assert!(!ok && err.contains("another antenne"), "{err}");
    antenne.terminate(Duration::from_secs(5));
    let (ok, out, err) = antenne_cli(&antenne.data_dir(), &["reset-password"])?;
    assert!(ok, "{err}");
    let password = out.trim().to_owned();
    assert!(password.len() >= 10, "prints the new password: {out:?}");
    assert!(err.contains("session"), "says sessions ended: {err}");

    antenne.restart()?;
    assert_eq!(
        with_cookie(&antenne, &cookie, "GET", "/api/v1/me", None)?.0,
        401
    );
    assert_eq!(login(&antenne, ADMIN_PASSWORD)?.0, 401, "the old password");
    assert_eq!(login(&antenne, &password)?.0, 200, "the new one");
    Ok(())
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0)
}

#[cfg(unix)]
#[test]
fn the_data_directory_and_its_files_are_private() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut antenne = Antenne::start(KEY)?;
    let dir = antenne.data_dir();
    let files = [
        "antenne.db",
        "antenne.db-wal",
        "antenne.db-shm",
        "antenne.lock",
    ];
    let check = |dir: &Path| {
        let mut wrong = Vec::new();
        if mode(dir) != 0o700 {
            wrong.push(format!("{}: {:o}", dir.display(), mode(dir)));
        }
        for f in files {
            let m = mode(&dir.join(f));
            if m != 0o600 {
                wrong.push(format!("{f}: {m:o}"));
            }
        }
        wrong
    };
    let wrong = check(&dir);
    assert!(wrong.is_empty(), "{wrong:?}");

    // Modes an older antenne left are fixed at start, and logged.
    antenne.terminate(Duration::from_secs(5));
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    std::fs::set_permissions(
        dir.join("antenne.db"),
        std::fs::Permissions::from_mode(0o644),
    )?;
    antenne.restart()?;
    let wrong = check(&dir);
    assert!(wrong.is_empty(), "{wrong:?}");
    assert!(
        antenne.log().contains("permissions fixed"),
        "{}",
        tail(&antenne.log(), 20)
    );
    Ok(())
}

#[test]
fn secrets_come_from_files_and_help_warns_about_flags() -> Result<()> {
    let (ok, help, _) = antenne_cli(Path::new("/nonexistent"), &["--help"])?;
    assert!(ok);
    for flag in [
        "--admin-password-file",
        "--api-token-file",
        "--ingest-key-file",
    ] {
        assert!(help.contains(flag), "--help lists {flag}");
    }
    assert!(
        help.matches("process list").count() >= 3,
        "--help says flags are visible to other users:\n{help}"
    );

    let secrets = tempfile::tempdir()?;
    let write = |name: &str, text: &str| -> Result<std::path::PathBuf> {
        let p = secrets.path().join(name);
        std::fs::write(&p, text)?;
        Ok(p)
    };
    let pw = write("pw", "password from a file\n")?;
    let token = write("token", "token_from_a_file_0123456789\n")?;
    let keys = write("keys", "file_ingest_key_0123456789\n")?;
    let antenne = Antenne::options()
        .arg("--admin-password-file")
        .arg(pw.to_str().context("path")?)
        .arg("--api-token-file")
        .arg(token.to_str().context("path")?)
        .arg("--ingest-key-file")
        .arg(keys.to_str().context("path")?)
        .start()?;
    assert_eq!(login(&antenne, "password from a file")?.0, 200);
    let agent = ureq::agent();
    let (code, ingest) = http_json_as(
        &agent,
        Some("token_from_a_file_0123456789"),
        "GET",
        &antenne.url("/api/v1/ingest?reveal=keys"),
        None,
    )?;
    assert_eq!(code, 200, "{ingest}");
    assert!(
        ingest.to_string().contains("file_ingest_key_0123456789"),
        "{ingest}"
    );
    // Nothing secret in the process list.
    let pid = antenne.pid().context("pid")?;
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))?;
    for secret in [
        "password from a file",
        "token_from_a_file",
        "file_ingest_key",
    ] {
        assert!(!cmdline.contains(secret), "{cmdline}");
    }
    Ok(())
}

#[test]
fn export_names_every_kind_of_secret_it_prints() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let (ok, _, err) = antenne_cli(&data, &["export"])?;
    assert!(ok, "{err}");
    // OBS connection settings and OBS's own previous stream settings.
    let conn = rusqlite::Connection::open(data.join("antenne.db"))?;
    conn.execute_batch(
        "INSERT INTO settings (key, value) VALUES ('obs_password', 'obs-secret-pw');
         INSERT INTO settings (key, value) VALUES ('obs_previous_service', '{\"key\":\"platform-key\"}');",
    )?;
    drop(conn);
    let (ok, out, err) = antenne_cli(&data, &["export"])?;
    assert!(ok, "{err}");
    assert!(out.contains("obs-secret-pw"), "the backup is complete");
    for kind in [
        "stream key",
        "ingest key",
        "OBS WebSocket password",
        "previous stream settings",
    ] {
        assert!(err.contains(kind), "the warning names {kind:?}: {err}");
    }
    Ok(())
}

#[test]
fn the_password_is_changed_in_settings() -> Result<()> {
    let antenne = Antenne::start(KEY)?;
    let other = login(&antenne, ADMIN_PASSWORD)?.1.context("a cookie")?;
    let browser = Browser::start("en-US")?;
    browser.log_in(&antenne.url("/"), ADMIN_PASSWORD)?;
    browser.click("[data-testid=nav-settings]")?;
    browser.find("[data-testid=account-card]")?;

    // A wrong current password: said so, nothing changes.
    browser.fill("[data-testid=current-password]", "not my password")?;
    browser.fill("[data-testid=new-password]", NEW_PASSWORD)?;
    browser.fill("[data-testid=confirm-password]", NEW_PASSWORD)?;
    browser.click("[data-testid=password-save]")?;
    browser.wait_text(
        "[data-testid=password-error]",
        support::browser::WAIT,
        |t| t.contains("wrong"),
    )?;
    // Too short: refused before asking antenne.
    browser.fill("[data-testid=current-password]", ADMIN_PASSWORD)?;
    browser.fill("[data-testid=new-password]", "short")?;
    browser.fill("[data-testid=confirm-password]", "short")?;
    browser.click("[data-testid=password-save]")?;
    browser.wait_text(
        "[data-testid=password-error]",
        support::browser::WAIT,
        |t| t.contains("10"),
    )?;
    browser.fill("[data-testid=current-password]", ADMIN_PASSWORD)?;
    browser.fill("[data-testid=new-password]", NEW_PASSWORD)?;
    browser.fill("[data-testid=confirm-password]", NEW_PASSWORD)?;
    browser.click("[data-testid=password-save]")?;
    browser.wait_text(
        "[data-testid=password-status]",
        support::browser::WAIT,
        |t| t.contains("changed"),
    )?;
    assert_eq!(
        with_cookie(&antenne, &other, "GET", "/api/v1/me", None)?.0,
        401,
        "the other session ended"
    );
    assert_eq!(login(&antenne, ADMIN_PASSWORD)?.0, 401);

    // This browser stays logged in, then logs out everywhere and back in
    // with the new password.
    browser.goto(&antenne.url("/#/settings"))?;
    browser.find("[data-testid=account-card]")?;
    browser.click("[data-testid=logout-everywhere]")?;
    browser.click("[data-testid=confirm-ok]")?;
    browser.find("[data-testid=login-username]")?;
    browser.fill("[data-testid=login-username]", "admin")?;
    browser.fill("[data-testid=login-password]", NEW_PASSWORD)?;
    browser.click("[data-testid=login-submit]")?;
    browser.find("[data-testid=ingest-card]")?;
    Ok(())
}

#[test]
fn the_live_stream_ends_with_its_session() -> Result<()> {
    use std::io::{Read, Write};
    let antenne = Antenne::start(KEY)?;
    let cookie = login(&antenne, ADMIN_PASSWORD)?.1.context("a cookie")?;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", antenne.http_port()))?;
    write!(
        s,
        "GET /api/v1/events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n"
    )?;
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    let read_until =
        |s: &mut std::net::TcpStream, seen: &mut Vec<u8>, want: &[u8], limit: Duration| -> bool {
            let started = std::time::Instant::now();
            let mut buf = [0u8; 8192];
            while started.elapsed() < limit {
                match s.read(&mut buf) {
                    Ok(0) => return seen.windows(want.len()).any(|w| w == want),
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                    Err(_) => {}
                }
                if seen.windows(want.len()).any(|w| w == want) {
                    return true;
                }
            }
            false
        };
    let mut seen = Vec::new();
    assert!(
        read_until(
            &mut s,
            &mut seen,
            b"event: snapshot",
            Duration::from_secs(10)
        ),
        "the stream runs"
    );
    let (code, _) = with_cookie(&antenne, &cookie, "DELETE", "/api/v1/sessions", None)?;
    assert_eq!(code, 204);
    // The chunked body ends (its last chunk) within a few seconds.
    assert!(
        read_until(&mut s, &mut seen, b"\r\n0\r\n\r\n", Duration::from_secs(5)),
        "the stream ended: {}",
        String::from_utf8_lossy(&seen[seen.len().saturating_sub(300)..])
    );
    Ok(())
}
