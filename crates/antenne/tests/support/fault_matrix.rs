//! The fault-matrix harness ([`Matrix`]): one fault at a time, with three
//! healthy destinations live next to the faulty one, all on 127.0.0.1 with
//! real peers. The tests themselves are in `faults.rs`.
//!
//! What the harness checks for each fault:
//! - the healthy destinations lose no frame and never reconnect: what each
//!   nginx-rtmp recorded is compared frame by frame with the pre-encoded
//!   clip the publisher sends ([`match_clip`]), and must be one unbroken
//!   run covering the whole window ([`Matrix::assert_healthy_untouched`]);
//! - antenne's resident memory stays bounded
//!   ([`Matrix::assert_memory_bounded`], sampled by [`RssWatch`]);
//! - once the fault is removed, the destination recovers by itself: it goes
//!   `live` and its receiver gets frames that start on a keyframe and
//!   decode ([`Matrix::assert_recovered`]).
//!
//! The misbehaving peers are elsewhere in `support/` ([`FaultProxy`],
//! [`Stunnel`] with bad certificates, [`Tmpfs`]); raw hostile bytes
//! ([`send_raw`]) and the data-directory helpers ([`chattr`],
//! [`assert_changes_refused`]) are here. Timings are printed, not asserted:
//! the machine is shared.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::*;

pub const KEY: &str = "faults_ingest_key_0123456789";
pub const HEALTHY: [&str; 3] = ["healthy_1", "healthy_2", "healthy_3"];

/// How much antenne's RSS may grow over its level once everything is live
/// (a queue is bounded by `--max-lag-ms`: about 1.5 MB per destination for
/// this clip, and kernel buffers are not in the RSS).
pub const RSS_GROWTH_LIMIT_KIB: u64 = 16 * 1024;

/// Samples a process's VmRSS every 200 ms in the background.
pub struct RssWatch {
    stop: Arc<AtomicBool>,
    max: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

impl RssWatch {
    pub fn start(pid: u32) -> RssWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let max = Arc::new(AtomicU64::new(rss_of(pid).unwrap_or(0)));
        let (s, m) = (stop.clone(), max.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(r) = rss_of(pid) {
                    m.fetch_max(r, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        RssWatch {
            stop,
            max,
            thread: Some(thread),
        }
    }

    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One healthy destination and its own receiver.
pub struct Healthy {
    pub nginx: Nginx,
    pub id: String,
    pub stream: &'static str,
}

/// Three healthy destinations (each to its own nginx-rtmp), the faulty
/// ones, antenne, and a publisher looping a known clip.
pub struct Matrix {
    pub name: &'static str,
    pub started: Instant,
    pub antenne: Antenne,
    pub healthy: Vec<Healthy>,
    pub faulty: Vec<String>,
    pub publisher: Option<Publisher>,
    pub clip: &'static Clip,
    /// When every healthy destination was live.
    pub live_at: Instant,
    pub rss_baseline: u64,
    pub rss: Option<RssWatch>,
}

impl Matrix {
    /// Starts everything and waits until the healthy destinations are live
    /// (plus 2 s, so that memory has settled). `faulty`: (name, url, key).
    pub fn start(
        name: &'static str,
        opts: AntenneOptions,
        faulty: &[(&str, &str, &str)],
    ) -> Result<Matrix> {
        let started = Instant::now();
        let clip = clip(640, 360)?;
        let antenne = opts.ingest_key(KEY).start()?;
        let mut healthy = Vec::new();
        for stream in HEALTHY {
            let nginx = Nginx::start()?;
            let d = antenne.add_destination(stream, &nginx.url(), stream, true)?;
            healthy.push(Healthy {
                nginx,
                id: Antenne::id_of(&d),
                stream,
            });
        }
        let mut faulty_ids = Vec::new();
        for (n, url, key) in faulty {
            faulty_ids.push(Antenne::id_of(&antenne.add_destination(n, url, key, true)?));
        }
        let publisher = Publisher::options()
            .clip(clip)
            .start(&antenne.ingest_url(KEY))?;
        for h in &healthy {
            antenne.wait_for_state(&h.id, "live", Duration::from_secs(20))?;
        }
        let live_at = Instant::now();
        std::thread::sleep(Duration::from_secs(2));
        let rss_baseline = antenne.rss_kib()?;
        let rss = RssWatch::start(antenne.pid().context("antenne runs")?);
        println!(
            "[{name}] matrix live after {:.1} s, antenne RSS {rss_baseline} KiB",
            started.elapsed().as_secs_f64()
        );
        Ok(Matrix {
            name,
            started,
            antenne,
            healthy,
            faulty: faulty_ids,
            publisher: Some(publisher),
            clip,
            live_at,
            rss_baseline,
            rss: Some(rss),
        })
    }

    pub fn dest(&self, id: &str) -> Value {
        self.antenne
            .get_destination(id)
            .expect("destination exists")
    }

    /// Waits until faulty destination `i` is in `state`; prints the error.
    pub fn wait_faulty(&self, i: usize, state: &str, timeout: Duration) -> Value {
        let t = Instant::now();
        let d = self
            .antenne
            .wait_for_state(&self.faulty[i], state, timeout)
            .unwrap_or_else(|e| panic!("[{}] {e:#}", self.name));
        println!(
            "[{}] faulty #{i} {state} after {:.1} s: error {:?}, last_error {:?}",
            self.name,
            t.elapsed().as_secs_f64(),
            d["status"]["error"],
            d["status"]["last_error"]
        );
        d
    }

    /// `status.error` (retrying, rejected) of a destination object.
    pub fn error_of(d: &Value) -> String {
        d["status"]["error"].as_str().unwrap_or_default().to_owned()
    }

    /// The healthy destinations never noticed: still live on their first
    /// connection, nothing dropped, and their receivers recorded every
    /// frame of the clip since they joined, in one unbroken run.
    pub fn assert_healthy_untouched(&self) {
        let window_ms = self.live_at.elapsed().as_millis() as i64;
        for h in &self.healthy {
            let d = self.dest(&h.id);
            let what = format!("[{}] {}: {d}", self.name, h.stream);
            assert_eq!(d["status"]["state"], "live", "{what}");
            assert_eq!(d["status"]["reconnects"], 0, "no reconnect: {what}");
            assert_eq!(d["status"]["dropped_frames"], 0, "nothing skipped: {what}");
            assert!(d["status"]["last_error"].is_null(), "no error: {what}");
            assert_eq!(h.nginx.publish_count(h.stream), 1, "one connection: {what}");
            let recs = h.nginx.recordings(h.stream);
            assert_eq!(recs.len(), 1, "one recording: {recs:?}");
            let report = assert_good_recording(&recs[0], 0);
            let segments = match_clip(&report, &[self.clip])
                .unwrap_or_else(|e| panic!("{what}: recording differs from the clip: {e}"));
            assert_eq!(
                segments.len(),
                1,
                "{what}: one unbroken run of frames, got {segments:?}"
            );
            let s = &segments[0];
            println!(
                "[{}] {}: {} frames in one run, {} ms of media over a {} ms window, \
                 every frame as published",
                self.name,
                h.stream,
                s.frames,
                s.duration_ms(),
                window_ms
            );
            // Nothing stopped flowing at some point: the run covers the
            // window, give or take start-up and the last second in flight.
            assert!(
                s.duration_ms() >= window_ms - 3000,
                "{what}: {} ms recorded for a {window_ms} ms window",
                s.duration_ms()
            );
        }
    }

    /// antenne's RSS never grew past its level at start by more than
    /// [`RSS_GROWTH_LIMIT_KIB`].
    pub fn assert_memory_bounded(&self) {
        let max = self.rss.as_ref().map(RssWatch::max).unwrap_or(0);
        let now = self.antenne.rss_kib().unwrap_or(0);
        println!(
            "[{}] antenne RSS: {} KiB when live, peak {max} KiB, now {now} KiB (growth {} KiB)",
            self.name,
            self.rss_baseline,
            max.saturating_sub(self.rss_baseline)
        );
        assert!(
            max < self.rss_baseline + RSS_GROWTH_LIMIT_KIB,
            "[{}] memory bounded: {} KiB -> peak {max} KiB",
            self.name,
            self.rss_baseline
        );
    }

    /// Waits until destination `id` is live again and `nginx` has at least
    /// 2 s of its new session for `stream`, then checks that recording:
    /// starts on a keyframe, decodes, and holds the clip's frames.
    pub fn assert_recovered(&self, id: &str, nginx: &Nginx, stream: &str) {
        let t = Instant::now();
        let d = self
            .antenne
            .wait_for_state(id, "live", Duration::from_secs(40))
            .unwrap_or_else(|e| panic!("[{}] recovers: {e:#}", self.name));
        let live_after = t.elapsed();
        let (rec, report) = wait_recording(nginx, stream, 2000, Duration::from_secs(15))
            .unwrap_or_else(|e| panic!("[{}] {stream} records after recovery: {e:#}", self.name));
        assert!(
            report.first_video_is_keyframe(),
            "[{}] {stream} starts on a keyframe: {}",
            self.name,
            report.summary()
        );
        assert_good_recording(&rec, 2000);
        let segments = match_clip(&report, &[self.clip])
            .unwrap_or_else(|e| panic!("[{}] {stream} after recovery: {e}", self.name));
        println!(
            "[{}] {stream} live again after {:.1} s (reconnects {}), receiver got {} frames \
             from a keyframe in {} run(s)",
            self.name,
            live_after.as_secs_f64(),
            d["status"]["reconnects"],
            report.video_packets.len(),
            segments.len()
        );
    }

    pub fn finish(mut self) {
        self.rss.take();
        println!(
            "[{}] done in {:.1} s",
            self.name,
            self.started.elapsed().as_secs_f64()
        );
    }
}

/// Waits until the newest recording of `stream` holds `min_ms` of video.
pub fn wait_recording(
    nginx: &Nginx,
    stream: &str,
    min_ms: i64,
    timeout: Duration,
) -> Result<(PathBuf, StreamReport)> {
    let mut last = String::new();
    let found = wait_for(timeout, || {
        std::thread::sleep(Duration::from_millis(200));
        let rec = nginx.latest_recording(stream)?;
        match analyze(&rec) {
            Ok(r) if r.video_duration_ms() >= min_ms => Some((rec, r)),
            Ok(r) => {
                last = r.summary();
                None
            }
            Err(e) => {
                last = format!("{e:#}");
                None
            }
        }
    });
    found.with_context(|| {
        format!(
            "no recording of {stream} with {min_ms} ms of video: {last}; nginx log:\n{}",
            tail(&nginx.log(), 20)
        )
    })
}

pub fn opts() -> AntenneOptions {
    Antenne::options()
}

/// Seconds since the epoch of an RFC 3339 time as the API writes them
/// (`2026-01-31T12:00:00Z`).
pub fn api_time_secs(t: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((mo + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
/// Raw bytes to the ingest port, as an attacker would send them. Returns
/// the local port (to find the log line) and whether antenne closed the
/// connection within 5 s.
pub fn send_raw(port: u16, bytes: &[u8]) -> std::io::Result<(u16, bool)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    let local = s.local_addr()?.port();
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    // The peer may close while we write: that is the expected outcome.
    let _ = s.write_all(bytes);
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok((local, true)),
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return Ok((local, false))
            }
            Err(_) => return Ok((local, true)),
        }
    }
}

pub fn handshake_then(chunks: &[u8]) -> Vec<u8> {
    let mut v = vec![3u8];
    v.extend_from_slice(&[0u8; 1536]); // C1
    v.extend_from_slice(&[0u8; 1536]); // C2
    v.extend_from_slice(chunks);
    v
}

/// Hostile first bytes on the ingest port, each with the reason antenne's
/// log line must give when it closes that connection: a 16 MiB message,
/// chunk sizes 0 and 2^31, 100,000 chunk streams, a `connect` nesting
/// 100,000 AMF0 arrays, and HTTP instead of RTMP.
pub fn hostile_inputs() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    use antenne_rtmp::chunk::ChunkEncoder;
    let mut enc = ChunkEncoder::new();
    let chunk = |enc: &mut ChunkEncoder, csid: u32, type_id: u8, body: &[u8]| {
        let mut out = bytes::BytesMut::new();
        enc.encode_into(csid, 0, type_id, 0, body, &mut out);
        out.to_vec()
    };
    // A 16 MiB message announced in a chunk header.
    let huge = handshake_then(&[0x03, 0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0]);
    // Chunk size 0 and 2^31.
    let zero = handshake_then(&chunk(&mut enc, 2, 1, &0u32.to_be_bytes()));
    let big = handshake_then(&chunk(&mut enc, 2, 1, &0x8000_0000u32.to_be_bytes()));
    // 100,000 chunk stream ids.
    let mut many = Vec::new();
    for csid in 64..100_064u32 {
        many.extend(chunk(&mut enc, csid.min(65_599), 8, &[0xaf, 1]));
    }
    let many = handshake_then(&many);
    // A `connect` whose command object nests 100,000 strict arrays.
    let mut nested = vec![0x02, 0, 7];
    nested.extend_from_slice(b"connect");
    nested.extend_from_slice(&[0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
    for _ in 0..100_000 {
        nested.extend_from_slice(&[0x0a, 0, 0, 0, 1]);
    }
    let mut enc_big = ChunkEncoder::new();
    enc_big.set_chunk_size(1 << 20);
    let mut set = chunk(&mut enc, 2, 1, &(1u32 << 20).to_be_bytes());
    let mut body = bytes::BytesMut::new();
    enc_big.encode_into(3, 0, 20, 0, &nested, &mut body);
    set.extend_from_slice(&body);
    let nested = handshake_then(&set);
    // Garbage from the first byte (version 0x47: "GET / HTTP/1.1").
    let garbage = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(200);

    vec![
        ("16 MiB message", huge, "exceeds the limit"),
        ("chunk size 0", zero, "invalid chunk size"),
        ("chunk size 2^31", big, "invalid chunk size"),
        ("100,000 chunk streams", many, "chunk streams"),
        ("nested AMF0 connect", nested, "nesting deeper"),
        ("HTTP garbage", garbage, "version"),
    ]
}

/// `chattr FLAG` on each path (`+i`: immutable, every write fails as on
/// a read-only disk); an error with chattr's own words when refused.
pub fn chattr(flag: &str, paths: &[&Path]) -> Result<()> {
    for p in paths {
        let out = std::process::Command::new("chattr")
            .arg(flag)
            .arg(p)
            .output()
            .context("cannot run chattr (Debian package e2fsprogs)")?;
        if !out.status.success() {
            bail!(
                "chattr {flag} {} failed ({}): {}",
                p.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    Ok(())
}

/// Every change refused with a clear message, nothing changed in memory.
pub fn assert_changes_refused(m: &Matrix, id: &str, expected: &str, before: &[Value]) {
    let antenne = &m.antenne;
    let (status, body) = antenne
        .request(
            "PATCH",
            &format!("/api/v1/destinations/{id}"),
            Some(&json!({"name": "Changed"})),
        )
        .expect("PATCH answered");
    assert_eq!(status, 503, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("cannot save") && error.contains(expected),
        "clear error: {body}"
    );
    println!("[{}] PATCH refused: {error}", m.name);
    let (status, body) = antenne
        .request(
            "POST",
            "/api/v1/destinations",
            Some(&json!({"url": "rtmp://127.0.0.1:1/live", "key": "new", "enabled": false})),
        )
        .expect("POST answered");
    assert_eq!(status, 503, "{body}");
    let (status, body) = antenne
        .request("DELETE", &format!("/api/v1/destinations/{id}"), None)
        .expect("DELETE answered");
    assert_eq!(status, 503, "{body}");
    assert_eq!(saved_state(antenne), before, "nothing changed");
}

/// What the store holds of each destination (no live status).
pub fn saved_state(antenne: &Antenne) -> Vec<Value> {
    let (_, list) = antenne
        .request("GET", "/api/v1/destinations?reveal=keys", None)
        .expect("list");
    list.as_array()
        .expect("an array")
        .iter()
        .map(|d| json!([d["id"], d["name"], d["url"], d["key"], d["enabled"]]))
        .collect()
}
