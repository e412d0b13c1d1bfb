//! `GET /metrics` with the real Prometheus tools: Debian's `promtool`
//! checks the scrape's format, and a real `prometheus` server scrapes
//! antenne (with an API token on the web port, and without one on
//! `--metrics-listen`) while ffmpeg publishes and nginx-rtmp receives; its
//! query API must then show the destination live.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;
use support::*;

const KEY: &str = "metrics_ingest_key_0123456789";
/// The destination's stream key and a token in its URL: neither may show.
const DEST_KEY: &str = "dest_secret_key_4f2a9c";

/// The scrape, as text: (status, body).
fn scrape(url: &str, token: Option<&str>) -> Result<(u16, String)> {
    let mut req = ureq::get(url);
    if let Some(t) = token {
        req = req.set("authorization", &format!("Bearer {t}"));
    }
    match req.call() {
        Ok(r) => Ok((r.status(), r.into_string()?)),
        Err(ureq::Error::Status(code, r)) => Ok((code, r.into_string().unwrap_or_default())),
        Err(e) => Err(e).context(format!("GET {url}")),
    }
}

/// `promtool check metrics` on `text` (stdin): Ok, or its complaints.
fn promtool_check(text: &str) -> Result<()> {
    let promtool = require_program(&["promtool"], "prometheus")?;
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("promtool stdin")?
        .write_all(text.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "promtool check metrics failed ({}): {}{}\n--- scrape:\n{text}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The value of the sample `name{labels…}` whose labels include every
/// `want` pair.
fn sample(text: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| {
            want.iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// antenne with a live destination on nginx-rtmp, and `--metrics-listen`.
struct LiveSetup {
    antenne: Antenne,
    nginx: Nginx,
    _publisher: Publisher,
    id: String,
    metrics_port: u16,
}

fn live_setup() -> Result<LiveSetup> {
    let nginx = Nginx::start()?;
    let metrics_port = free_port();
    let antenne = Antenne::start_with(
        Antenne::options()
            .ingest_key(KEY)
            .arg(&format!("--metrics-listen=127.0.0.1:{metrics_port}")),
    )?;
    let d = antenne.add_destination("Metrics YT", &nginx.url(), DEST_KEY, true)?;
    let id = Antenne::id_of(&d);
    let publisher = Publisher::start(&antenne.ingest_url(KEY))?;
    antenne.wait_for_state(&id, "live", Duration::from_secs(30))?;
    Ok(LiveSetup {
        antenne,
        nginx,
        _publisher: publisher,
        id,
        metrics_port,
    })
}

#[test]
fn the_scrape_needs_a_token_passes_promtool_and_shows_a_live_destination() -> Result<()> {
    let s = live_setup()?;
    let url = s.antenne.url("/metrics");

    let (status, body) = scrape(&url, None)?;
    assert_eq!(status, 401, "no token: {body}");
    let (status, _) = scrape(&url, Some("antenne_not_a_token"))?;
    assert_eq!(status, 401, "a wrong token");

    // Bytes flow: wait until the counter moved and the rate (over a
    // window of a few seconds) shows.
    let mut text = String::new();
    let flowing = wait_until(Duration::from_secs(20), || {
        text = scrape(&url, Some(s.antenne.token()))
            .map(|(_, t)| t)
            .unwrap_or_default();
        sample(
            &text,
            "antenne_destination_sent_bytes_total",
            &[("id", &s.id)],
        )
        .is_some_and(|b| b > 10_000.0)
            && sample(&text, "antenne_ingest_received_bytes_per_second", &[])
                .is_some_and(|b| b > 0.0)
    });
    assert!(flowing, "bytes sent grow, the ingest's rate shows:\n{text}");
    promtool_check(&text)?;

    let d = [("id", s.id.as_str()), ("name", "Metrics YT")];
    let state = |st: &str| {
        let mut want = d.to_vec();
        want.push(("state", st));
        sample(&text, "antenne_destination_state", &want)
    };
    assert_eq!(state("live"), Some(1.0), "{text}");
    for other in ["idle", "connecting", "retrying", "rejected", "disabled"] {
        assert_eq!(state(other), Some(0.0), "{other}: {text}");
    }
    assert!(text.contains("platform=\""), "{text}");
    assert_eq!(
        sample(&text, "antenne_destination_reconnects_total", &d),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "antenne_destination_dropped_frames_total", &d),
        Some(0.0)
    );
    assert!(sample(&text, "antenne_destination_uptime_seconds", &d).is_some_and(|u| u >= 0.0));
    assert_eq!(sample(&text, "antenne_ingest_up", &[]), Some(1.0), "{text}");
    assert!(
        sample(&text, "antenne_ingest_received_bytes_per_second", &[]).is_some_and(|b| b > 0.0),
        "{text}"
    );
    assert!(
        sample(&text, "antenne_ingest_frames_per_second", &[]).is_some_and(|f| f > 0.0),
        "{text}"
    );
    assert!(sample(&text, "process_cpu_seconds_total", &[]).is_some_and(|c| c > 0.0));
    let rss = sample(&text, "process_resident_memory_bytes", &[]).unwrap_or(0.0);
    let seen = s.antenne.rss_kib()? as f64 * 1024.0;
    assert!(
        rss > 1e6 && (rss - seen).abs() < 32e6,
        "rss {rss} vs {seen}"
    );

    // Never a key nor the destination's URL.
    for secret in [DEST_KEY, KEY, &s.nginx.url()] {
        assert!(!text.contains(secret), "{secret} in the scrape:\n{text}");
    }

    // The open address serves the same, without a token, and nothing else.
    let open = format!("http://127.0.0.1:{}/metrics", s.metrics_port);
    let (status, body) = scrape(&open, None)?;
    assert_eq!(status, 200, "{body}");
    promtool_check(&body)?;
    assert!(body.contains("antenne_destination_state{"), "{body}");
    let (status, _) = scrape(
        &format!("http://127.0.0.1:{}/api/v1/destinations", s.metrics_port),
        None,
    )?;
    assert_eq!(status, 404, "the metrics address serves nothing else");
    Ok(())
}

/// A real Prometheus server with its own data dir and port.
struct Prometheus {
    _dir: tempfile::TempDir,
    _child: ChildGuard,
    port: u16,
}

impl Prometheus {
    fn start(scrape_configs: &str) -> Result<Prometheus> {
        let bin = require_program(&["prometheus"], "prometheus")?;
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{scrape_configs}"
            ),
        )?;
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .current_dir(dir.path());
        let child = ChildGuard::spawn("prometheus", cmd, &dir.path().join("prometheus.log"))?;
        let p = Prometheus {
            _dir: dir,
            _child: child,
            port,
        };
        if !wait_until(Duration::from_secs(30), || {
            ureq::get(&format!("http://127.0.0.1:{port}/-/ready"))
                .call()
                .is_ok()
        }) {
            bail!("prometheus not ready:\n{}", tail(&p._child.log(), 30));
        }
        Ok(p)
    }

    /// `/api/v1/query`: the result vector.
    fn query(&self, q: &str) -> Result<Vec<Value>> {
        let v: Value = ureq::get(&format!("http://127.0.0.1:{}/api/v1/query", self.port))
            .query("query", q)
            .call()?
            .into_json()?;
        Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
    }
}

#[test]
fn a_real_prometheus_scrapes_a_live_destination_with_a_token_and_on_the_open_address() -> Result<()>
{
    let s = live_setup()?;
    let prom = Prometheus::start(&format!(
        "  - job_name: with_token\n    authorization:\n      credentials: {token}\n    static_configs:\n      - targets: ['127.0.0.1:{http}']\n  - job_name: open\n    static_configs:\n      - targets: ['127.0.0.1:{open}']\n",
        token = s.antenne.token(),
        http = s.antenne.http_port(),
        open = s.metrics_port,
    ))?;
    for job in ["with_token", "open"] {
        let q = format!(
            "antenne_destination_state{{job=\"{job}\",id=\"{}\",state=\"live\"}}",
            s.id
        );
        let mut last = Vec::new();
        let found = wait_until(Duration::from_secs(60), || {
            last = prom.query(&q).unwrap_or_default();
            last.first()
                .and_then(|r| r["value"][1].as_str())
                .is_some_and(|v| v == "1")
        });
        let targets: Value = ureq::get(&format!("http://127.0.0.1:{}/api/v1/targets", prom.port))
            .call()?
            .into_json()?;
        assert!(
            found,
            "{q}: {last:?}; targets: {targets}\nantenne log:\n{}",
            tail(&s.antenne.log(), 20)
        );
        assert_eq!(last[0]["metric"]["name"], "Metrics YT", "{last:?}");
    }
    // Scraped, not merely present: the scrape health is up for both.
    let up = prom.query("up")?;
    assert_eq!(up.len(), 2, "{up:?}");
    assert!(up.iter().all(|r| r["value"][1] == "1"), "{up:?}");
    Ok(())
}
