//! The REST API as a script would use it: validation, masking, 404s.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::json;
use support::*;

#[test]
fn invalid_input_gets_a_400_that_says_what_is_wrong() -> Result<()> {
    let antenne = Antenne::start("api_test_key_0123456789")?;
    let cases = [
        (
            json!({"url": "http://example.com/live", "key": "k"}),
            "rtmp://",
        ),
        (json!({"url": "rtmp:///live", "key": "k"}), "no host"),
        (
            json!({"url": "rtmp://127.0.0.1/live", "key": ""}),
            "stream key is empty",
        ),
        (
            json!({"url": "rtmp://127.0.0.1:99999/live", "key": "k"}),
            "port",
        ),
        (json!({"key": "k"}), "url"),
        (
            json!({"url": "rtmp://h/live", "key": "k", "enable": true}),
            "unknown field",
        ),
        (
            json!({"url": "rtmp://h/live", "key": "k", "ingest": "nope"}),
            "ingest key",
        ),
    ];
    for (body, says) in cases {
        let (status, answer) = antenne.request("POST", "/api/v1/destinations", Some(&body))?;
        assert_eq!(status, 400, "{body} -> {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(says),
            "{body}: error {error:?} should mention {says:?}"
        );
    }
    // Malformed JSON.
    let answer = match ureq::post(&antenne.url("/api/v1/destinations"))
        .set("content-type", "application/json")
        .set("authorization", &format!("Bearer {}", antenne.token()))
        .send_string("{not json")
    {
        Err(ureq::Error::Status(400, r)) => r.into_json::<serde_json::Value>()?,
        other => panic!("malformed JSON must answer 400, got {other:?}"),
    };
    assert!(
        answer["error"].as_str().is_some_and(|e| e.contains("JSON")),
        "{answer}"
    );
    assert!(
        antenne.list_destinations()?.is_empty(),
        "nothing was created"
    );
    Ok(())
}

#[test]
fn unknown_ids_answer_404_and_keys_are_masked_unless_revealed() -> Result<()> {
    let antenne = Antenne::start("api_test_key_0123456789")?;
    for (method, body) in [
        ("GET", None),
        ("PATCH", Some(json!({"enabled": false}))),
        ("DELETE", None),
    ] {
        let (status, answer) =
            antenne.request(method, "/api/v1/destinations/nope", body.as_ref())?;
        assert_eq!(status, 404, "{method}: {answer}");
        assert!(answer["error"].is_string());
    }
    let d = antenne.add_destination(
        "YouTube",
        "rtmp://127.0.0.1:1/live2",
        "yt-secret-key-abcd",
        false,
    )?;
    assert_eq!(d["key"], "yt-secr…cd");
    assert_eq!(d["status"]["state"], "disabled");
    let id = Antenne::id_of(&d);
    let (_, revealed) = antenne.request(
        "GET",
        &format!("/api/v1/destinations/{id}?reveal=keys"),
        None,
    )?;
    assert_eq!(revealed["key"], "yt-secret-key-abcd");
    let list = antenne.list_destinations()?;
    assert!(!list.iter().any(|d| d.to_string().contains("yt-secret-key")));
    let (_, ingest) = antenne.request("GET", "/api/v1/ingest", None)?;
    assert!(
        !ingest.to_string().contains("api_test_key_0123456789"),
        "{ingest}"
    );
    let (_, ingest) = antenne.request("GET", "/api/v1/ingest?reveal=keys", None)?;
    assert_eq!(ingest["ingests"][0]["key"], "api_test_key_0123456789");

    // Editing without the key keeps the key; a bad edit changes nothing.
    let d = antenne.patch_destination(&id, &json!({"name": "YT"}))?;
    assert_eq!(d["name"], "YT");
    let (status, _) = antenne.request(
        "PATCH",
        &format!("/api/v1/destinations/{id}"),
        Some(&json!({"url": "ftp://x"})),
    )?;
    assert_eq!(status, 400);
    let (_, d) = antenne.request(
        "GET",
        &format!("/api/v1/destinations/{id}?reveal=keys"),
        None,
    )?;
    assert_eq!(
        (d["key"].as_str(), d["url"].as_str()),
        (Some("yt-secret-key-abcd"), Some("rtmp://127.0.0.1:1/live2"))
    );
    Ok(())
}

#[test]
fn a_generated_ingest_key_is_kept_in_the_data_dir() -> Result<()> {
    let mut antenne = Antenne::options().start()?;
    let (_, first) = antenne.request("GET", "/api/v1/ingest?reveal=keys", None)?;
    let key = first["ingests"][0]["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(key.starts_with("live_") && key.len() > 20, "{first}");
    assert!(antenne.log().contains(&key), "printed once at first start");
    antenne.restart()?;
    let (_, second) = antenne.request("GET", "/api/v1/ingest?reveal=keys", None)?;
    assert_eq!(second["ingests"][0]["key"], key.as_str());
    Ok(())
}

/// The `/api/` paths the server declares: the path of every
/// `.route("…", …)` in `src/http/` (read from the source, as axum cannot
/// list a router's routes). Fails on a route whose path is not a string
/// literal, or on `nest`/`route_service`, which this reader does not follow:
/// extend it rather than let a route go unchecked.
fn api_paths_in_source() -> Result<BTreeSet<String>> {
    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                rust_files(&path, out)?;
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http"),
        &mut files,
    )?;
    let mut paths = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        for unsupported in [".nest(", ".nest_service(", ".route_service("] {
            anyhow::ensure!(
                !text.contains(unsupported),
                "{}: `{unsupported}` is not read by this test: extend api_paths_in_source",
                file.display()
            );
        }
        for (at, _) in text.match_indices(".route(") {
            let rest = text[at + ".route(".len()..].trim_start();
            let line = text[..at].lines().count();
            let path = rest
                .strip_prefix('"')
                .and_then(|r| r.split_once('"'))
                .map(|(p, _)| p)
                .with_context(|| {
                    format!(
                        "{}:{line}: a route whose path is not a string literal: \
                         extend api_paths_in_source",
                        file.display()
                    )
                })?;
            if path.starts_with("/api/") {
                paths.insert(path.to_owned());
            }
        }
    }
    Ok(paths)
}

/// `path` with each `{param}` filled in.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if s.starts_with('{') {
                "does-not-exist"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn the_openapi_document_matches_the_server() -> Result<()> {
    let antenne = Antenne::start("api_test_key_0123456789")?;
    let (status, doc) = antenne.request_anonymous("GET", "/api/v1/openapi.json", None)?;
    assert_eq!(status, 200);
    let paths = doc["paths"].as_object().expect("paths");
    const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .expect("operations")
                .keys()
                .map(|m| (m.to_uppercase(), path.clone()))
        })
        .filter(|(m, _)| METHODS.contains(&m.as_str()))
        .collect();

    // Both directions, paths: every route the server declares is
    // documented, every documented path is declared.
    let declared = api_paths_in_source()?;
    let documented_paths: BTreeSet<String> = paths.keys().cloned().collect();
    assert_eq!(
        declared.difference(&documented_paths).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "routes the server has that openapi.json does not document"
    );
    assert_eq!(
        documented_paths.difference(&declared).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "paths openapi.json documents that the server does not declare"
    );

    // Both directions, methods, asked of the running server: with a token
    // and without a body (so that nothing is created), a method the path
    // serves answers (its handler's answer: 200, 400, 404, 409…), one it
    // does not serve answers 405, and an unknown path 404 "no such route".
    // GET is asked as HEAD (served alike, and without the endless body of
    // the event stream).
    let mut served = BTreeSet::new();
    for path in &declared {
        for method in METHODS {
            let status = if method == "GET" {
                let head = ureq::head(&antenne.url(&concrete(path)))
                    .set("authorization", &format!("Bearer {}", antenne.token()))
                    .call();
                match head {
                    Ok(r) => r.status(),
                    Err(ureq::Error::Status(code, _)) => code,
                    Err(e) => return Err(e).context(format!("HEAD {path}")),
                }
            } else {
                let (status, answer) = antenne.request(method, &concrete(path), None)?;
                assert_ne!(
                    answer["error"], "no such route",
                    "{method} {path}: the path is routed"
                );
                status
            };
            if status != 405 {
                served.insert((method.to_owned(), path.clone()));
            }
        }
    }
    assert_eq!(
        served.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "operations the server serves that openapi.json does not document"
    );
    assert_eq!(
        documented.difference(&served).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "operations openapi.json documents that the server does not serve"
    );
    assert!(documented.len() >= 30, "{documented:?}");

    // Each answer is one the document lists for that operation.
    for (method, path) in &documented {
        let url_path = concrete(path);
        if url_path == "/api/v1/events/stream" {
            continue; // endless; covered by the browser test
        }
        // A valid-looking body where one is required, so the answer
        // shows the route rather than the body check.
        let body = match (method.as_str(), path.as_str()) {
            ("POST", "/api/v1/login") => Some(json!({"username": "admin", "password": "wrong"})),
            ("POST", "/api/v1/destinations") => {
                Some(json!({"url": "rtmp://127.0.0.1:1/live", "key": "k", "enabled": false}))
            }
            ("PATCH", _) => Some(json!({"name": "x"})),
            ("PUT", _) => Some(json!({"public_host": "example.org"})),
            ("POST", "/api/v1/tokens") => Some(json!({"name": "t"})),
            ("POST", "/api/v1/ingest-keys") => Some(json!({"name": "second"})),
            _ => None,
        };
        let (status, answer) = antenne.request(method, &url_path, body.as_ref())?;
        let op = &paths[path.as_str()][method.to_lowercase()];
        let documented = op["responses"].as_object().expect("responses");
        assert!(
            documented.contains_key(&status.to_string()),
            "{method} {path} answered {status} ({answer}), documented: {:?}",
            documented.keys().collect::<Vec<_>>()
        );
    }
    Ok(())
}

#[test]
fn only_one_destination_can_use_obs_main_output_at_a_time() -> Result<()> {
    let mut antenne = Antenne::start("api_test_key_0123456789")?;
    let body = |name: &str| json!({"name": name, "url": "rtmp://127.0.0.1:1/live", "key": name, "via_obs": "main"});
    let (status, first) = antenne.request("POST", "/api/v1/destinations", Some(&body("first")))?;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["via_obs"], "main");
    // Not relayed by antenne: its state is OBS's, and OBS is not set up.
    assert_eq!(first["status"]["state"], "idle", "{first}");
    assert_eq!(first["status"]["error"], "OBS is not connected", "{first}");
    let (status, answer) =
        antenne.request("POST", "/api/v1/destinations", Some(&body("second")))?;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("\"first\"")),
        "{answer}"
    );
    // Off, the second may exist; switching it on while the first is on is refused.
    let mut off = body("second");
    off["enabled"] = json!(false);
    let (status, second) = antenne.request("POST", "/api/v1/destinations", Some(&off))?;
    assert_eq!(status, 201, "{second}");
    let id2 = Antenne::id_of(&second);
    let (status, _) = antenne.request(
        "PATCH",
        &format!("/api/v1/destinations/{id2}"),
        Some(&json!({"enabled": true})),
    )?;
    assert_eq!(status, 409);
    // Back to relaying (via_obs null): no conflict any more, and it stays so after a restart.
    let d = antenne.patch_destination(&id2, &json!({"via_obs": null, "enabled": true}))?;
    assert_eq!(d["via_obs"], serde_json::Value::Null);
    antenne.restart()?;
    let list = antenne.list_destinations()?;
    assert_eq!(list[0]["via_obs"], "main");
    assert_eq!(list[1]["via_obs"], serde_json::Value::Null);
    Ok(())
}

#[test]
fn runtime_figures_are_behind_login_and_read_the_process() -> Result<()> {
    let antenne = Antenne::start("api_test_key_0123456789")?;
    let (status, _) = antenne.request_anonymous("GET", "/api/v1/runtime", None)?;
    assert_eq!(status, 401);
    let (status, r) = antenne.request("GET", "/api/v1/runtime", None)?;
    assert_eq!(status, 200, "{r}");
    // At least the RTMP listener, the HTTP server and the history writer.
    assert!(r["tasks"].as_u64() >= Some(2), "{r}");
    // The listening sockets, SQLite's files and the log are open.
    assert!(r["open_fds"].as_u64() >= Some(4), "{r}");
    let rss = r["rss_kib"].as_u64().unwrap_or_default();
    let seen = antenne.rss_kib()?;
    assert!(
        rss > 1024 && rss.abs_diff(seen) < 16 * 1024,
        "{r} vs {seen} KiB"
    );
    Ok(())
}
