//! The control plane under pressure, as a user meets it: a busy or
//! read-only database never stalls the relay nor loses a change, concurrent
//! changes all land, the rules hold for the API, a backup and the start-up
//! alike, and a key inside a destination URL is never shown.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use support::*;

const KEY: &str = "control_plane_key_0123456789";

// === peers of these tests ===

/// A TCP relay in front of a receiver that notes when bytes arrive from
/// antenne: the receiver side of "no gap in what a destination receives".
struct Tap {
    port: u16,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl Tap {
    fn start(backend: u16) -> Result<Tap> {
        let listener = TcpListener::bind(("127.0.0.1", free_port())).context("tap: bind")?;
        let port = listener.local_addr()?.port();
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let seen = arrivals.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                let Ok(mut server) = TcpStream::connect(("127.0.0.1", backend)) else {
                    continue;
                };
                let (Ok(mut client_w), Ok(mut server_r)) = (client.try_clone(), server.try_clone())
                else {
                    continue;
                };
                std::thread::spawn(move || std::io::copy(&mut server_r, &mut client_w));
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        match client.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if let Ok(mut s) = seen.lock() {
                                    s.push(Instant::now());
                                }
                                if server.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = server.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Ok(Tap { port, arrivals })
    }

    fn url(&self) -> String {
        format!("rtmp://127.0.0.1:{}/live", self.port)
    }

    /// The longest time without bytes from antenne between `from` and
    /// `to`, and how many reads arrived in between.
    fn max_gap(&self, from: Instant, to: Instant) -> (Duration, usize) {
        let seen = self.arrivals.lock().map(|s| s.clone()).unwrap_or_default();
        let mut last = from;
        let mut gap = Duration::ZERO;
        let mut n = 0;
        for t in seen.into_iter().filter(|t| *t > from && *t <= to) {
            gap = gap.max(t - last);
            last = t;
            n += 1;
        }
        (gap.max(to - last), n)
    }
}

/// Another process holding SQLite's write lock on antenne's database (the
/// `sqlite3` shell inside `BEGIN EXCLUSIVE`), until dropped.
struct DbLock {
    child: Child,
}

impl DbLock {
    fn take(db: &Path) -> Result<DbLock> {
        let sqlite3 = require_program(&["sqlite3"], "sqlite3")?;
        let mut child = Command::new(sqlite3)
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("sqlite3 runs")?;
        let mut stdin = child.stdin.take().context("sqlite3 stdin")?;
        // The lock is held from BEGIN EXCLUSIVE; the SELECT's answer says
        // the shell got that far.
        stdin.write_all(b"BEGIN EXCLUSIVE;\nSELECT 'locked';\n")?;
        stdin.flush()?;
        let stdout = child.stdout.take().context("sqlite3 stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        // Kept open: the shell holds the transaction until stdin closes.
        std::mem::forget(stdin);
        if line.trim() != "locked" {
            let _ = child.kill();
            bail!("sqlite3 did not take the lock: {line:?}");
        }
        Ok(DbLock { child })
    }
}

impl Drop for DbLock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the live view (SSE) as the web interface does, until dropped.
struct LiveView {
    stop: Arc<AtomicBool>,
    snapshots: Arc<Mutex<Vec<String>>>,
}

impl LiveView {
    fn open(antenne: &Antenne) -> LiveView {
        let stop = Arc::new(AtomicBool::new(false));
        let snapshots = Arc::new(Mutex::new(Vec::new()));
        let (url, token) = (
            antenne.url("/api/v1/events/stream"),
            antenne.token().to_owned(),
        );
        let (s, seen) = (stop.clone(), snapshots.clone());
        std::thread::spawn(move || {
            let Ok(resp) = ureq::get(&url)
                .set("authorization", &format!("Bearer {token}"))
                .call()
            else {
                return;
            };
            for line in BufReader::new(resp.into_reader()).lines() {
                let Ok(line) = line else { return };
                if s.load(Ordering::Relaxed) {
                    return;
                }
                if let Some(data) = line.strip_prefix("data:") {
                    if let Ok(mut v) = seen.lock() {
                        v.push(data.trim().to_owned());
                    }
                }
            }
        });
        LiveView { stop, snapshots }
    }

    fn snapshots(&self) -> Vec<String> {
        self.snapshots.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for LiveView {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn chattr(flag: &str, paths: &[&Path]) -> bool {
    paths.iter().all(|p| {
        Command::new("chattr")
            .arg(flag)
            .arg(p)
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Runs `antenne <args>` on a data dir: (success, stdout, stderr).
fn antenne_cli(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_antenne"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("antenne runs");
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes()).expect("writes stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("antenne finishes");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// === a busy database ===

#[test]
fn a_busy_database_stalls_neither_the_relay_nor_the_lists() -> Result<()> {
    let nginx = Nginx::start()?;
    let antenne = Antenne::start(KEY)?;
    let (tap_a, tap_b) = (Tap::start(nginx.port())?, Tap::start(nginx.port())?);
    let a = Antenne::id_of(&antenne.add_destination("A", &tap_a.url(), "a_key", true)?);
    let b = Antenne::id_of(&antenne.add_destination("B", &tap_b.url(), "b_key", true)?);
    let _publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    antenne.wait_for_state(&a, "live", Duration::from_secs(20))?;
    antenne.wait_for_state(&b, "live", Duration::from_secs(20))?;
    nginx.wait_for_recording("b_key", 50_000, Duration::from_secs(15))?;
    let live = LiveView::open(&antenne);
    std::thread::sleep(Duration::from_secs(2));
    let (calm_gap, _) = tap_b.max_gap(Instant::now() - Duration::from_secs(2), Instant::now());

    let lock = DbLock::take(&antenne.data_dir().join("antenne.db"))?;
    let start = Instant::now();
    let (patch, lists) = std::thread::scope(|s| {
        let patch = s.spawn(|| {
            let t = Instant::now();
            let r = antenne.request(
                "PATCH",
                &format!("/api/v1/destinations/{a}"),
                Some(&json!({"name": "A renamed"})),
            );
            (r, t.elapsed())
        });
        // While the PATCH waits on the database: the list answers.
        let mut lists = Vec::new();
        while !patch.is_finished() && lists.len() < 8 {
            std::thread::sleep(Duration::from_millis(400));
            let t = Instant::now();
            let r = antenne.request("GET", "/api/v1/destinations", None);
            lists.push((r.map(|(status, _)| status), t.elapsed()));
        }
        (patch.join(), lists)
    });
    let end = Instant::now();
    drop(lock);
    let (patch, patch_took) = patch.expect("PATCH thread");
    let (status, body) = patch?;
    println!("PATCH under a held lock: {status} after {patch_took:?}: {body}");
    assert_eq!(
        status, 503,
        "a change that cannot be saved is refused: {body}"
    );
    assert!(
        patch_took >= Duration::from_secs(3),
        "the PATCH waited on the database ({patch_took:?}): the lock was held"
    );
    assert!(lists.len() >= 3, "listed while the PATCH waited: {lists:?}");
    for (status, took) in &lists {
        assert_eq!(status.as_ref().ok(), Some(&200), "{lists:?}");
        assert!(
            *took < Duration::from_secs(1),
            "GET /destinations answers within 1 s while a save waits: {lists:?}"
        );
    }
    let (gap, reads) = tap_b.max_gap(start, end);
    println!(
        "untouched destination: longest gap {gap:?} over {:?} ({reads} reads); before the lock {calm_gap:?}",
        end - start
    );
    assert!(reads > 0, "bytes reached the untouched destination");
    assert!(
        gap <= Duration::from_millis(200),
        "the untouched destination received nothing for {gap:?}"
    );
    assert_eq!(nginx.publish_count("b_key"), 1, "B never reconnected");
    assert!(
        live.snapshots().len() >= 3,
        "the live view kept ticking: {} snapshots",
        live.snapshots().len()
    );
    let d = antenne.get_destination(&a)?;
    assert_eq!(d["name"], "A", "the refused change changed nothing: {d}");
    // Once the database is free, the same change goes through.
    let d = antenne.patch_destination(&a, &json!({"name": "A renamed"}))?;
    assert_eq!(d["name"], "A renamed");
    Ok(())
}

// === concurrent changes ===

#[test]
fn concurrent_edits_of_one_destination_all_survive() -> Result<()> {
    let antenne = Antenne::start(KEY)?;
    let id = Antenne::id_of(&antenne.add_destination(
        "Start",
        "rtmp://127.0.0.1:1/live",
        "key_0",
        false,
    )?);
    for round in 1..=15 {
        let name = format!("Name {round}");
        let key = format!("key_{round}");
        let url = format!("rtmp://127.0.0.1:{}/live", 1000 + round);
        let platform = if round % 2 == 0 { "twitch" } else { "custom" };
        let patches = [
            json!({"name": name}),
            json!({"key": key}),
            json!({"url": url}),
            json!({"platform": platform}),
        ];
        let path = format!("/api/v1/destinations/{id}");
        std::thread::scope(|s| {
            let handles: Vec<_> = patches
                .iter()
                .map(|p| s.spawn(|| antenne.request("PATCH", &path, Some(p))))
                .collect();
            for h in handles {
                let (status, body) = h.join().expect("thread").expect("PATCH answered");
                assert_eq!(status, 200, "{body}");
            }
        });
        let d = antenne.request_expect("GET", &format!("{path}?reveal=keys"), None, 200)?;
        let got = (&d["name"], &d["key"], &d["url"], &d["platform"]);
        assert_eq!(
            got,
            (&json!(name), &json!(key), &json!(url), &json!(platform)),
            "round {round}: every concurrent change survives"
        );
    }
    Ok(())
}

#[test]
fn of_concurrent_creates_on_obs_main_exactly_one_succeeds() -> Result<()> {
    let antenne = Antenne::start(KEY)?;
    for round in 0..3 {
        let statuses: Vec<u16> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let antenne = &antenne;
                    s.spawn(move || {
                        let body = json!({
                            "name": format!("OBS {round}.{i}"),
                            "url": "rtmp://127.0.0.1:1/live",
                            "key": format!("k{i}"),
                            "via_obs": "main",
                            "enabled": true,
                        });
                        antenne
                            .request("POST", "/api/v1/destinations", Some(&body))
                            .map(|(status, _)| status)
                            .expect("POST answered")
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        let created = statuses.iter().filter(|s| **s == 201).count();
        let refused = statuses.iter().filter(|s| **s == 409).count();
        assert_eq!((created, refused), (1, 7), "round {round}: {statuses:?}");
        let enabled_main = antenne
            .list_destinations()?
            .iter()
            .filter(|d| d["enabled"] == true && d["via_obs"] == "main")
            .count();
        assert_eq!(enabled_main, 1);
        // Free OBS's output for the next round.
        for d in antenne.list_destinations()? {
            antenne.delete_destination(&Antenne::id_of(&d))?;
        }
    }
    Ok(())
}

// === ingest keys ===

#[test]
fn deleting_an_ingest_key_that_cannot_be_saved_keeps_it_served() -> Result<()> {
    // Keys kept in the store (no --ingest-key), so they can change.
    let antenne = Antenne::options().start()?;
    let added = antenne.request_expect(
        "POST",
        "/api/v1/ingest-keys",
        Some(&json!({"key": "second_key_0123456789"})),
        201,
    )?;
    let id = added["id"].as_str().context("an id")?.to_owned();
    let data = antenne.data_dir();
    let (db, wal) = (data.join("antenne.db"), data.join("antenne.db-wal"));
    assert!(chattr("+i", &[&db, &wal]), "chattr +i on the database");
    let result = antenne.request("DELETE", &format!("/api/v1/ingest-keys/{id}"), None);
    let listed = antenne.request("GET", "/api/v1/ingest-keys", None);
    assert!(chattr("-i", &[&db, &wal]), "chattr -i");
    let (status, body) = result?;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot save")),
        "{body}"
    );
    let (_, listed) = listed?;
    assert!(
        listed
            .as_array()
            .is_some_and(|l| l.iter().any(|k| k["id"] == id.as_str())),
        "nothing changed: the key is still served: {listed}"
    );
    // It still takes a stream.
    let _publisher = Publisher::start(&antenne.ingest_url("second_key_0123456789"))?;
    let live = wait_until(Duration::from_secs(15), || {
        antenne.ingest().is_ok_and(|v| {
            v["ingests"].as_array().is_some_and(|l| {
                l.iter()
                    .any(|i| i["id"] == id.as_str() && i["live"] == true)
            })
        })
    });
    assert!(live, "publishing to the kept key works");
    // Once the disk takes writes again, the delete goes through.
    drop(_publisher);
    wait_until(Duration::from_secs(10), || {
        antenne
            .request("DELETE", &format!("/api/v1/ingest-keys/{id}"), None)
            .is_ok_and(|(s, _)| s == 204)
    })
    .then_some(())
    .context("the delete goes through once the disk takes writes")?;
    Ok(())
}

// === one set of rules: API, import, start-up ===

fn backup_with_two_obs_mains(second_enabled: bool) -> Value {
    let dest = |id: &str, name: &str, enabled: bool| {
        json!({
            "id": id, "name": name, "platform": "custom",
            "url": "rtmp://127.0.0.1:1/live", "key": format!("{id}_key"),
            "enabled": enabled, "ingest": KEY, "via_obs": "main",
        })
    };
    json!({
        "antenne_backup": 1,
        "ingest_keys": [{"key": KEY, "name": ""}],
        "destinations": [dest("d1", "First", true), dest("d2", "Second", second_enabled)],
        "settings": {},
    })
}

#[test]
fn import_refuses_what_the_api_refuses() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let bad = backup_with_two_obs_mains(true);
    let (ok, _, err) = antenne_cli(dir.path(), &["import", "-"], Some(&bad.to_string()));
    assert!(!ok, "refused: {err}");
    assert!(err.contains("nothing was imported"), "{err}");
    assert!(
        err.contains("Second") && err.contains("single stream output") && err.contains("First"),
        "says which destination and why: {err}"
    );
    let (_, after, _) = antenne_cli(dir.path(), &["export"], None);
    let after: Value = serde_json::from_str(&after)?;
    assert_eq!(after["destinations"], json!([]), "nothing imported");
    // The same with the second switched off is fine.
    let good = backup_with_two_obs_mains(false);
    let (ok, _, err) = antenne_cli(dir.path(), &["import", "-"], Some(&good.to_string()));
    assert!(ok, "{err}");
    Ok(())
}

#[test]
fn start_up_loads_a_second_obs_main_switched_off() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let good = backup_with_two_obs_mains(false);
    let (ok, _, err) = antenne_cli(dir.path(), &["import", "-"], Some(&good.to_string()));
    assert!(ok, "{err}");
    // Edited behind antenne's back: both on.
    let sqlite3 = require_program(&["sqlite3"], "sqlite3")?;
    let status = Command::new(sqlite3)
        .arg(dir.path().join("antenne.db"))
        .arg("UPDATE destinations SET enabled = 1;")
        .status()?;
    assert!(status.success());
    let antenne = Antenne::options()
        .ingest_key(KEY)
        .data_dir(dir.path())
        .start()?;
    let list = antenne.list_destinations()?;
    let on: Vec<_> = list.iter().map(|d| (&d["name"], &d["enabled"])).collect();
    assert_eq!(
        on,
        [
            (&json!("First"), &json!(true)),
            (&json!("Second"), &json!(false))
        ],
        "{list:?}"
    );
    assert!(
        antenne.log().contains("single stream output"),
        "says why in the log"
    );
    Ok(())
}

// === keys inside destination URLs ===

#[test]
fn keys_inside_destination_urls_are_masked_everywhere() -> Result<()> {
    let antenne = Antenne::start(KEY)?;
    let live = LiveView::open(&antenne);
    // (url, key, the secret in the URL)
    let cases = [
        (
            "rtmp://127.0.0.1:1/app?token=tok_supersecret_1",
            "k1",
            "tok_supersecret_1",
        ),
        (
            "rtmp://user:pass_supersecret_2@127.0.0.1:1/live",
            "k2",
            "pass_supersecret_2",
        ),
        (
            "rtmp://127.0.0.1:1/live/name_supersecret_3",
            "",
            "name_supersecret_3",
        ),
    ];
    let mut ids = Vec::new();
    for (url, key, secret) in cases {
        let body = json!({"name": "Masked", "url": url, "key": key, "enabled": true});
        let created = antenne.request_expect("POST", "/api/v1/destinations", Some(&body), 201)?;
        assert!(
            !created.to_string().contains(secret),
            "POST answer: {created}"
        );
        let id = Antenne::id_of(&created);
        let one = antenne.get_destination(&id)?;
        assert!(!one.to_string().contains(secret), "GET answer: {one}");
        assert!(
            one["url"]
                .as_str()
                .is_some_and(|u| u.contains("127.0.0.1:1")),
            "{one}"
        );
        let revealed = antenne.request_expect(
            "GET",
            &format!("/api/v1/destinations/{id}?reveal=keys"),
            None,
            200,
        )?;
        assert_eq!(revealed["url"], url, "?reveal=keys shows it");
        // The masked URL sent back (an edit form left as shown) is refused
        // rather than saved over the real one.
        let (status, body) = antenne.request(
            "PATCH",
            &format!("/api/v1/destinations/{id}"),
            Some(&json!({"url": one["url"]})),
        )?;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains("masked")),
            "{body}"
        );
        ids.push(id);
    }
    // Toggled and edited: more history and log lines.
    for id in &ids {
        antenne.patch_destination(id, &json!({"enabled": false}))?;
        antenne.patch_destination(id, &json!({"enabled": true, "name": "Masked again"}))?;
    }
    std::thread::sleep(Duration::from_secs(3));
    let list = antenne.request_expect("GET", "/api/v1/destinations", None, 200)?;
    let events = antenne.request_expect("GET", "/api/v1/events?limit=1000", None, 200)?;
    let snapshots = live.snapshots();
    assert!(!snapshots.is_empty(), "the live view sent snapshots");
    let log = antenne.log();
    for (_, _, secret) in cases {
        assert!(!list.to_string().contains(secret), "list: {list}");
        assert!(!events.to_string().contains(secret), "history: {events}");
        assert!(
            !snapshots.iter().any(|s| s.contains(secret)),
            "live view: {snapshots:?}"
        );
        assert!(!log.contains(secret), "log: {}", tail(&log, 40));
    }
    Ok(())
}
