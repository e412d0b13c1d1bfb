//! Moving in from nginx-rtmp: real nginx.conf files (nginx itself checks
//! them with `nginx -t`), read by `antenne import-nginx` and by
//! `POST /api/v1/import/nginx`; the destinations land in the registry as
//! the API would make them, keys never shown in the plan.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use serde_json::{json, Value};
use support::*;

const ANTENNE_BIN: &str = env!("CARGO_BIN_EXE_antenne");
const KEY: &str = "import_test_key_0123456789";

const YT_KEY: &str = "abcd-efgh-ijkl-mnop-qrst";
const TW_KEY: &str = "live_123456789_AbCdEfGhIjKlMnOp";
const FB_KEY: &str = "FB-1234567890123456-0-AbCdEfGhIjKlMnOp";

/// An nginx.conf as people write them for nginx-rtmp: the module loaded,
/// comments, quoting, an include, things antenne does not carry over.
fn nginx_conf(dir: &Path) -> String {
    format!(
        r#"# nginx-rtmp multistreaming
load_module {module};
worker_processes 1;
error_log {dir}/error.log;
pid {dir}/nginx.pid;
events {{
    worker_connections 64;
}}
rtmp {{
    server {{
        listen 1935;
        chunk_size 4096;
        application live {{
            live on;
            record off;
            # YouTube
            push rtmp://a.rtmp.youtube.com/live2/{YT_KEY};
            push "rtmp://live-cdg.twitch.tv/app/{TW_KEY}";
            # Facebook through stunnel
            push rtmp://127.0.0.1:19350/rtmp/{FB_KEY};
            include {dir}/more.conf;
        }}
    }}
}}
"#,
        module = support::nginx::RTMP_MODULE,
        dir = dir.display()
    )
}

const STUNNEL_CONF: &str = "; stunnel for Facebook Live\nforeground = yes\n\n[fb-live]\nclient = yes\naccept = 127.0.0.1:19350\nconnect = live-api-s.facebook.com:443\nverifyChain = no\n";

/// `nginx -t` on the file: the proof the file is one nginx accepts (or
/// refuses). Returns whether it passed and what nginx said. nginx-rtmp
/// resolves each push's host while reading the file, and tests reach no
/// DNS: it runs in its own mount namespace with an /etc/hosts naming the
/// platforms' servers 127.0.0.1 (as `AntenneOptions::hosts_file` does).
fn nginx_test(conf: &Path) -> Result<(bool, String)> {
    require_program(&["nginx"], "nginx")?;
    require_program(&["unshare"], "util-linux")?;
    let dir = conf.parent().context("dir")?;
    let hosts = dir.join("hosts");
    std::fs::write(
        &hosts,
        "127.0.0.1 localhost a.rtmp.youtube.com live-cdg.twitch.tv live-api-s.facebook.com\n",
    )?;
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount --bind \"$0\" /etc/hosts && exec nginx -t -p \"$1\" -c \"$2\"")
        .arg(&hosts)
        .arg(dir)
        .arg(conf)
        .output()
        .context("running nginx -t")?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// A temp dir holding a checked nginx.conf (and stunnel.conf).
fn real_files() -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("more.conf"), "# nothing\n")?;
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, nginx_conf(dir.path()))?;
    std::fs::write(dir.path().join("stunnel.conf"), STUNNEL_CONF)?;
    let (ok, said) = nginx_test(&conf)?;
    anyhow::ensure!(ok, "nginx -t refuses the test's nginx.conf: {said}");
    Ok(dir)
}

fn import_cli(data_dir: &Path, args: &[&str]) -> Result<std::process::Output> {
    Command::new(ANTENNE_BIN)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("import-nginx")
        .args(args)
        .stdin(Stdio::null())
        .env_remove("ANTENNE_INGEST_KEY")
        .output()
        .context("running antenne import-nginx")
}

fn by_name<'a>(list: &'a [Value], name: &str) -> Option<&'a Value> {
    list.iter().find(|d| d["name"] == name)
}

#[test]
fn the_cli_creates_a_destination_for_each_push_after_showing_the_plan() -> Result<()> {
    let files = real_files()?;
    let conf = files.path().join("nginx.conf");
    let stunnel = files.path().join("stunnel.conf");
    let mut antenne = Antenne::start(KEY)?;
    antenne.kill();
    let data = antenne.data_dir();
    let (conf, stunnel) = (
        conf.to_str().context("utf-8")?,
        stunnel.to_str().context("utf-8")?,
    );

    // Without --yes and without a terminal: the plan, then a refusal.
    let out = import_cli(&data, &[conf, "--stunnel", stunnel])?;
    let plan = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{plan}\n{err}");
    assert!(err.contains("--yes"), "{err}");
    assert!(plan.contains("3 destination(s) to create"), "{plan}");
    for key in [YT_KEY, TW_KEY, FB_KEY] {
        assert!(
            !plan.contains(key) && !err.contains(key),
            "a key shows:\n{plan}\n{err}"
        );
    }
    assert!(plan.contains("port 1935, application live"), "{plan}");
    assert!(plan.contains("stays as it is"), "{plan}");
    assert!(plan.contains("line 15: record off"), "{plan}");
    assert!(plan.contains("more.conf is not followed"), "{plan}");

    // On a terminal it asks; "n" creates nothing. (`script` gives the
    // command a terminal, fed from our pipe.)
    require_program(&["script"], "bsdutils")?;
    let line = format!(
        "'{ANTENNE_BIN}' --data-dir '{}' import-nginx '{conf}' --stunnel '{stunnel}'",
        data.display()
    );
    let mut tty = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    {
        use std::io::Write;
        let mut input = tty.stdin.take().context("stdin")?;
        input.write_all(b"n\n")?;
    }
    let out = tty.wait_with_output()?;
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.contains("Create these 3 destination(s)? [y/N]"),
        "{said}"
    );
    assert!(said.contains("nothing was created"), "{said}");

    let out = import_cli(&data, &[conf, "--stunnel", stunnel, "--yes"])?;
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    antenne.restart()?;
    let (status, list) = antenne.request("GET", "/api/v1/destinations?reveal=keys", None)?;
    assert_eq!(status, 200);
    let list = list.as_array().context("list")?.clone();
    assert_eq!(list.len(), 3, "{list:?}");
    let expect = [
        (
            "YouTube",
            "youtube",
            "rtmp://a.rtmp.youtube.com/live2",
            YT_KEY,
        ),
        ("Twitch", "twitch", "rtmp://live-cdg.twitch.tv/app", TW_KEY),
        (
            "Facebook",
            "facebook",
            "rtmps://live-api-s.facebook.com:443/rtmp",
            FB_KEY,
        ),
    ];
    for (name, platform, url, key) in expect {
        let d = by_name(&list, name).with_context(|| format!("{name} in {list:?}"))?;
        assert_eq!(d["platform"], platform, "{d}");
        assert_eq!(d["url"], url, "{d}");
        assert_eq!(d["key"], key, "{d}");
        assert_eq!(d["enabled"], true, "{d}");
    }
    Ok(())
}

#[test]
fn a_file_nginx_refuses_is_an_error_naming_its_line_and_creates_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let good = nginx_conf(dir.path());
    std::fs::write(dir.path().join("more.conf"), "")?;
    // The Twitch push's quote never closed: line 18.
    let broken = good.replacen(&format!("{TW_KEY}\";"), &format!("{TW_KEY};"), 1);
    // The last `}` removed.
    let unclosed = good.trim_end().trim_end_matches('}').to_owned();
    let mut antenne = Antenne::start(KEY)?;
    antenne.kill();
    let data = antenne.data_dir();
    for (text, line) in [(broken, 18), (unclosed, 9)] {
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, &text)?;
        let (ok, said) = nginx_test(&conf)?;
        assert!(!ok, "nginx -t accepts the broken file: {said}");
        let out = import_cli(&data, &[conf.to_str().context("utf-8")?, "--yes"])?;
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{err}");
        assert!(err.contains("nothing was created"), "{err}");
        assert!(err.contains(&format!("nginx.conf line {line}")), "{err}");
        assert!(!err.contains(YT_KEY), "{err}");
    }
    // A stunnel.conf that is not one.
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, nginx_conf(dir.path()))?;
    let bad = dir.path().join("stunnel.conf");
    std::fs::write(&bad, "[fb-live\nclient = yes\n")?;
    let out = import_cli(
        &data,
        &[
            conf.to_str().context("utf-8")?,
            "--stunnel",
            bad.to_str().context("utf-8")?,
            "--yes",
        ],
    )?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success() && err.contains("stunnel.conf line 1"),
        "{err}"
    );

    antenne.restart()?;
    assert_eq!(antenne.list_destinations()?.len(), 0, "nothing was created");
    Ok(())
}

#[test]
fn the_api_answers_the_plan_then_creates_on_request() -> Result<()> {
    let files = real_files()?;
    let conf = std::fs::read_to_string(files.path().join("nginx.conf"))?;
    let antenne = Antenne::start(KEY)?;
    antenne.add_destination("YouTube", "rtmp://127.0.0.1:1/live", "old", false)?;

    let body = json!({"nginx": conf, "stunnel": STUNNEL_CONF});
    let (status, plan) = antenne.request("POST", "/api/v1/import/nginx", Some(&body))?;
    assert_eq!(status, 200, "{plan}");
    let text = plan.to_string();
    for key in [YT_KEY, TW_KEY, FB_KEY] {
        assert!(!text.contains(key), "a key shows: {text}");
    }
    let names: Vec<&str> = plan["destinations"]
        .as_array()
        .context("destinations")?
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(names, ["YouTube 2", "Twitch", "Facebook"], "{plan}");
    assert_eq!(plan["destinations"][2]["via_stunnel"], "fb-live");
    assert_eq!(plan["ingests"][0]["application"], "live");
    assert!(
        plan["notes"].as_array().is_some_and(|n| n.len() == 2),
        "{plan}"
    );
    assert_eq!(
        antenne.list_destinations()?.len(),
        1,
        "a dry run creates nothing"
    );

    let mut create = body.clone();
    create["dry_run"] = json!(false);
    let (status, done) = antenne.request("POST", "/api/v1/import/nginx", Some(&create))?;
    assert_eq!(status, 201, "{done}");
    assert_eq!(done["created"].as_array().map(Vec::len), Some(3), "{done}");
    assert!(!done.to_string().contains(FB_KEY));
    let (_, list) = antenne.request("GET", "/api/v1/destinations?reveal=keys", None)?;
    let list = list.as_array().context("list")?.clone();
    let fb = by_name(&list, "Facebook").context("Facebook")?;
    assert_eq!(fb["url"], "rtmps://live-api-s.facebook.com:443/rtmp");
    assert_eq!(fb["key"], FB_KEY);

    // A broken upload: 400 naming the line, nothing created.
    let broken =
        json!({"nginx": "rtmp {\n  server {\n    listen 1935\n  }\n}\n", "dry_run": false});
    let (status, answer) = antenne.request("POST", "/api/v1/import/nginx", Some(&broken))?;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("nginx.conf line 3")),
        "{answer}"
    );
    assert_eq!(antenne.list_destinations()?.len(), 4);
    Ok(())
}

#[test]
fn the_settings_page_previews_then_creates_from_a_pasted_nginx_conf() -> Result<()> {
    let files = real_files()?;
    let conf = std::fs::read_to_string(files.path().join("nginx.conf"))?;
    let antenne = Antenne::start(KEY)?;
    let browser = Browser::start("en-US")?;
    browser.log_in(&antenne.url("/"), ADMIN_PASSWORD)?;
    browser.click("[data-testid=nav-settings]")?;
    browser.find("[data-testid=import-nginx-card]")?;

    // Set the textareas' values directly (typing 1 KB through WebDriver is
    // slow and the text holds newlines).
    browser.js(
        "document.querySelector('[data-testid=import-nginx-text]').value = arguments[0];\
         document.querySelector('[data-testid=import-stunnel-text]').value = arguments[1];",
        json!([conf, STUNNEL_CONF]),
    )?;
    browser.click("[data-testid=import-preview]")?;
    let plan = browser.wait_text("[data-testid=import-dests]", support::browser::WAIT, |t| {
        t.contains("Facebook")
    })?;
    assert!(
        plan.contains("YouTube") && plan.contains("Twitch"),
        "{plan}"
    );
    assert!(
        plan.contains("rtmps://live-api-s.facebook.com:443/rtmp"),
        "{plan}"
    );
    for key in [YT_KEY, TW_KEY, FB_KEY] {
        assert!(!plan.contains(key), "a key shows: {plan}");
    }
    let notes = browser.text("[data-testid=import-notes]")?;
    assert!(
        notes.contains("record off") && notes.contains("not followed"),
        "{notes}"
    );
    assert_eq!(
        antenne.list_destinations()?.len(),
        0,
        "a preview creates nothing"
    );

    assert_eq!(
        browser.text("[data-testid=import-create]")?,
        "Create 3 destination(s)"
    );
    browser.click("[data-testid=import-create]")?;
    browser.wait_text("[data-testid=import-status]", support::browser::WAIT, |t| {
        t == "3 destination(s) created."
    })?;
    let list = antenne.list_destinations()?;
    let names: Vec<&str> = list.iter().filter_map(|d| d["name"].as_str()).collect();
    assert_eq!(names, ["YouTube", "Twitch", "Facebook"]);
    browser.screenshot(&artifacts_dir().join("import-nginx-settings.png"))?;

    // A broken file: the error names the line, nothing more is created.
    browser.js(
        "document.querySelector('[data-testid=import-nginx-text]').value = arguments[0];",
        json!(["rtmp {\n  server {\n    listen 1935\n  }\n}\n"]),
    )?;
    browser.click("[data-testid=import-preview]")?;
    let error = browser.wait_text("[data-testid=import-error]", support::browser::WAIT, |t| {
        !t.is_empty()
    })?;
    assert!(error.contains("nginx.conf line 3"), "{error}");
    assert_eq!(antenne.list_destinations()?.len(), 3);
    Ok(())
}
