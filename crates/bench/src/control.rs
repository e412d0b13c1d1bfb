//! The command loop: one JSON object per line on stdin, one JSON answer per
//! line on stdout.
//!
//! | cmd | fields | does |
//! |---|---|---|
//! | `publish` | `url` | (re)starts the publisher; answers once the relay accepted it |
//! | `unpublish` | | stops the publisher |
//! | `status` | `prefix` | streams with that prefix: seen, publishing, receiving video |
//! | `window_start` | `prefix` | opens the measurement window |
//! | `window_end` | `prefix`, `drain_ms` | closes it, waits `drain_ms`, reports |
//! | `enable_test` | `api`, `token`, `id`, `stream`, `repeat`, `timeout_s` | times PATCH enabled=true → first keyframe at the sink |
//! | `quit` | | ends the process |
//!
//! A command's `seq`, if any, is copied into its answer.

use std::io::{BufRead, Write};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Handle;

use crate::net::now_ns;
use crate::publisher::{self, PublisherState};
use crate::stats::{percentile, Registry};

/// Writes one JSON line on stdout.
pub fn say(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

struct Ctl {
    reg: Arc<Registry>,
    pub_rt: Handle,
    publisher: Option<(tokio::task::JoinHandle<()>, Arc<PublisherState>)>,
}

pub fn run(reg: Arc<Registry>, pub_rt: Handle) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("antenne-bench: control runtime: {e}");
            return;
        }
    };
    let mut ctl = Ctl {
        reg,
        pub_rt,
        publisher: None,
    };
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let cmd: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                say(&json!({"ok": false, "error": format!("bad JSON: {e}")}));
                continue;
            }
        };
        let name = cmd["cmd"].as_str().unwrap_or("").to_owned();
        if name == "quit" {
            say(&json!({"ok": true}));
            break;
        }
        let answer = rt.block_on(ctl.handle(&name, &cmd));
        let mut v = match answer {
            Ok(mut v) => {
                v["ok"] = json!(true);
                v
            }
            Err(e) => json!({"ok": false, "error": e}),
        };
        // Echoed so that a caller that gave up waiting can skip stale answers.
        if !cmd["seq"].is_null() {
            v["seq"] = cmd["seq"].clone();
        }
        say(&v);
    }
    ctl.stop_publisher();
}

fn str_field<'a>(cmd: &'a Value, key: &str) -> Result<&'a str, String> {
    cmd[key]
        .as_str()
        .ok_or_else(|| format!("missing string field {key:?}"))
}

impl Ctl {
    fn stop_publisher(&mut self) {
        if let Some((task, _)) = self.publisher.take() {
            task.abort();
        }
    }

    async fn handle(&mut self, name: &str, cmd: &Value) -> Result<Value, String> {
        match name {
            "publish" => {
                self.stop_publisher();
                let url = str_field(cmd, "url")?.to_owned();
                let state = Arc::new(PublisherState::default());
                let (reg, st) = (self.reg.clone(), state.clone());
                let task = self
                    .pub_rt
                    .spawn(async move { publisher::start(&url, reg, st).await })
                    .await
                    .map_err(|e| e.to_string())??;
                self.publisher = Some((task, state));
                Ok(json!({}))
            }
            "unpublish" => {
                self.stop_publisher();
                Ok(json!({}))
            }
            "status" => Ok(self.status(cmd["prefix"].as_str().unwrap_or(""))),
            "window_start" => {
                let prefix = cmd["prefix"].as_str().unwrap_or("");
                self.reg.window.close_all();
                for (_, s) in self.reg.with_prefix(prefix) {
                    s.win_video.store(0, Relaxed);
                    s.win_bytes0.store(s.bytes.load(Relaxed), Relaxed);
                    let mut smp = s.samples();
                    smp.socket_us.clear();
                    smp.read_us.clear();
                    smp.with_kernel_ts = 0;
                }
                if let Some((_, p)) = &self.publisher {
                    p.win_video_sent.store(0, Relaxed);
                }
                self.reg.window.open_at(now_ns());
                Ok(json!({}))
            }
            "window_end" => {
                let prefix = cmd["prefix"].as_str().unwrap_or("");
                let drain = cmd["drain_ms"].as_u64().unwrap_or(1000);
                Ok(self.window_end(prefix, drain).await)
            }
            "enable_test" => self.enable_test(cmd).await,
            _ => Err(format!("unknown command {name:?}")),
        }
    }

    fn publisher_json(&self) -> Value {
        match &self.publisher {
            None => json!(null),
            Some((_, p)) => json!({
                "running": p.running.load(Relaxed),
                "video_sent": p.video_sent.load(Relaxed),
                "bytes_sent": p.bytes_sent.load(Relaxed),
                "late": p.late.load(Relaxed),
                "error": p.error(),
            }),
        }
    }

    fn status(&self, prefix: &str) -> Value {
        let streams = self.reg.with_prefix(prefix);
        let open = streams
            .iter()
            .filter(|(_, s)| s.open.load(Relaxed) > 0)
            .count();
        let receiving = streams
            .iter()
            .filter(|(_, s)| s.open.load(Relaxed) > 0 && s.video.load(Relaxed) > 0)
            .count();
        json!({
            "seen": streams.len(),
            "open": open,
            "receiving": receiving,
            "accepted": self.reg.accepted.load(Relaxed),
            "closed_with_error": self.reg.closed_with_error.load(Relaxed),
            "publisher": self.publisher_json(),
        })
    }

    async fn window_end(&self, prefix: &str, drain_ms: u64) -> Value {
        let t1 = now_ns();
        self.reg.window.end_at(t1);
        let (t0, _) = self.reg.window.bounds();
        let streams = self.reg.with_prefix(prefix);
        let wall_s = (t1.saturating_sub(t0)) as f64 / 1e9;
        let rates: Vec<f64> = streams
            .iter()
            .map(|(_, s)| {
                let b = s.bytes.load(Relaxed) - s.win_bytes0.load(Relaxed);
                b as f64 * 8.0 / wall_s.max(1e-9) / 1e6
            })
            .collect();
        // Let what was sent before t1 arrive: at least `drain_ms`, then
        // until the count stops growing (a saturated relay delivers late,
        // which is not a drop), 10 s at most.
        let received = || -> u64 { streams.iter().map(|(_, s)| s.win_video.load(Relaxed)).sum() };
        tokio::time::sleep(Duration::from_millis(drain_ms)).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = received();
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = received();
            if now == last {
                break;
            }
            last = now;
        }
        let drained_s = (now_ns().saturating_sub(t1)) as f64 / 1e9;
        let published = self
            .publisher
            .as_ref()
            .map(|(_, p)| p.win_video_sent.load(Relaxed))
            .unwrap_or(0);
        let (mut missing, mut extra, mut short) = (0u64, 0u64, 0u64);
        let mut socket = Vec::new();
        let mut read = Vec::new();
        let mut kernel = 0u64;
        for (_, s) in &streams {
            let got = s.win_video.load(Relaxed);
            if got < published {
                missing += published - got;
                short += 1;
            } else {
                extra += got - published;
            }
            let smp = s.samples();
            socket.extend_from_slice(&smp.socket_us);
            read.extend_from_slice(&smp.read_us);
            kernel += smp.with_kernel_ts;
        }
        socket.sort_unstable();
        read.sort_unstable();
        let ms = |v: Option<u32>| v.map(|us| us as f64 / 1000.0);
        let lat = |v: &[u32]| {
            json!({
                "n": v.len(),
                "p50": ms(percentile(v, 50.0)),
                "p99": ms(percentile(v, 99.0)),
                "max": ms(v.last().copied()),
            })
        };
        let min_rate = rates.iter().copied().fold(f64::INFINITY, f64::min);
        json!({
            "wall_s": wall_s,
            "drained_s": drained_s,
            "streams": streams.len(),
            "open": streams.iter().filter(|(_, s)| s.open.load(Relaxed) > 0).count(),
            "rx_mbps_min": if rates.is_empty() { None } else { Some(min_rate) },
            "rx_mbps_mean": if rates.is_empty() { None } else { Some(rates.iter().sum::<f64>() / rates.len() as f64) },
            "video_published": published,
            "video_missing": missing,
            "video_extra": extra,
            "streams_short": short,
            "lat_socket_ms": lat(&socket),
            "lat_read_ms": lat(&read),
            "kernel_ts_share": if socket.is_empty() { None } else { Some(kernel as f64 / socket.len() as f64) },
            "publisher": self.publisher_json(),
        })
    }

    async fn wait_closed(&self, stream: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let open = self
                .reg
                .get(stream)
                .map(|s| s.open.load(Relaxed))
                .unwrap_or(0);
            if open == 0 {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn enable_test(&self, cmd: &Value) -> Result<Value, String> {
        let api = str_field(cmd, "api")?;
        let token = str_field(cmd, "token")?;
        let id = str_field(cmd, "id")?;
        let stream = str_field(cmd, "stream")?;
        let repeat = cmd["repeat"].as_u64().unwrap_or(20);
        let timeout = Duration::from_secs_f64(cmd["timeout_s"].as_f64().unwrap_or(10.0));
        let path = format!("/api/v1/destinations/{id}");
        let mut samples = Vec::new();
        let mut api_us = Vec::new();
        let mut errors = Vec::new();
        for _ in 0..repeat {
            if !self.wait_closed(stream, timeout).await {
                errors.push("the previous connection did not close".to_string());
                break;
            }
            let mut rx = self.reg.first_keyframes.subscribe();
            let t0 = now_ns();
            let (code, body) = http(api, "PATCH", &path, token, r#"{"enabled":true}"#).await?;
            api_us.push(((now_ns() - t0) / 1000) as u32);
            if code != 200 {
                return Err(format!("PATCH enabled=true answered {code}: {body}"));
            }
            let got = tokio::time::timeout(timeout, async {
                loop {
                    match rx.recv().await {
                        Ok((name, ts)) if &*name == stream && ts >= t0 => return Some(ts),
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(_) => return None,
                    }
                }
            })
            .await;
            match got {
                Ok(Some(ts)) => samples.push(((ts - t0) / 1000) as u32),
                _ => errors.push(format!("no keyframe within {timeout:?}")),
            }
            let (code, body) = http(api, "PATCH", &path, token, r#"{"enabled":false}"#).await?;
            if code != 200 {
                return Err(format!("PATCH enabled=false answered {code}: {body}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !self.wait_closed(stream, timeout).await {
            errors.push("the last connection did not close".to_string());
        }
        let mut sorted = samples.clone();
        sorted.sort_unstable();
        api_us.sort_unstable();
        let ms = |v: Option<u32>| v.map(|us| us as f64 / 1000.0);
        Ok(json!({
            "samples_ms": samples.iter().map(|&us| us as f64 / 1000.0).collect::<Vec<_>>(),
            "p50_ms": ms(percentile(&sorted, 50.0)),
            "max_ms": ms(sorted.last().copied()),
            "api_p50_ms": ms(percentile(&api_us, 50.0)),
            "errors": errors,
        }))
    }
}

/// A minimal HTTP/1.1 request (Connection: close): (status, body).
async fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> Result<(u16, String), String> {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("API {addr}: {e}"))?;
    let _ = s.set_nodelay(true);
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("API write: {e}"))?;
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut resp))
        .await
        .map_err(|_| "API: no answer in 10 s".to_string())?
        .map_err(|e| format!("API read: {e}"))?;
    let text = String::from_utf8_lossy(&resp);
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            format!(
                "API: bad answer {:?}",
                text.chars().take(80).collect::<String>()
            )
        })?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_owned();
    Ok((code, body))
}
