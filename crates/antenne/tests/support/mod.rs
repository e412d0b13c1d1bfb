//! Integration-test support: real peers (nginx-rtmp receiver, stunnel TLS
//! front, ffmpeg publisher, ffprobe analysis) and a guard for the real
//! `antenne` binary.
//!
//! Rules every peer follows:
//! - it listens on 127.0.0.1 only, on a port from [`free_port`];
//! - it runs in its own [`tempfile::TempDir`] (config, logs, recordings);
//! - its process is owned by a [`ChildGuard`], which kills and reaps it on
//!   drop, also when the test panics, so tests can run in parallel and leave
//!   no process behind.
//!
//! Usage from a test file: `mod support;` then `use support::*;`.
//!
//! Overview:
//! - [`free_port`], [`wait_until`], [`wait_for`], [`find_program`]
//! - [`ChildGuard`]: process guard with a log file
//! - [`Nginx`]: nginx-rtmp receiver that records every publish to FLV
//! - [`Stunnel`]: TLS front (test CA + `localhost` certificate) for rtmps
//! - [`Publisher`] / [`PublisherOptions`]: ffmpeg test-pattern publisher
//! - [`probe`]: ffprobe/ffmpeg based analysis of recordings
//! - [`Antenne`] / [`AntenneOptions`]: the real `antenne` binary plus API helpers
//! - [`Obs`]: real OBS Studio under Xvfb, obs-websocket on a free port
//! - [`clip`]: pre-encoded clips of known frames and [`match_clip`], the
//!   frame-by-frame comparison of a recording with what was published
//! - [`FaultProxy`] / [`Fault`]: a misbehaving peer in front of a real
//!   receiver (black hole, slow reader, reset, handshake only, key refused)
//! - [`TestPki`] / [`CertKind`]: certificates good and bad for [`Stunnel`]
//!   and [`NginxTlsFront`] (pki.rs)
//! - [`NginxTlsFront`]: nginx's `stream` module as a TLS front (rtmps)
//! - [`GstPublisher`] / [`GstSink`]: GStreamer publisher (`rtmp2sink`,
//!   librtmp's `rtmpsink`)
//! - [`NodeMediaServer`]: Node-Media-Server v4 receiver (from npm, cached)
//! - [`FfmpegListen`]: `ffmpeg -listen 1` as an RTMP receiver
//! - [`Tmpfs`]: a small tmpfs mount (a disk that can be filled)
//! - [`fault_matrix`]: the fault-matrix harness (healthy destinations next
//!   to a faulty one), used as `use support::fault_matrix::*;`
//! - [`assert_good_recording`]: the one "a viewer gets a good stream" check
//! - [`raw_rtmp`]: a raw-socket RTMP client from any 127.0.0.N (attacks)
//! - [`SrtPublisher`] / [`srt_url`]: ffmpeg publishing MPEG-TS over SRT
//! - [`WebhookReceiver`]: an HTTP receiver recording requests, answering
//!   the statuses a test queues (alert webhooks)
#![allow(dead_code)]
// Each test file uses a subset of the re-exports below.
#![allow(unused_imports)]

pub mod antenne;
pub mod browser;
pub mod child;
pub mod clip;
pub mod fault_matrix;
pub mod fault_proxy;
pub mod ffmpeg_listen;
pub mod frames;
pub mod gstreamer;
pub mod in_process;
pub mod nginx;
pub mod nginx_stream;
pub mod node_media_server;
pub mod obs;
pub mod pki;
pub mod probe;
pub mod publisher;
pub mod raw_rtmp;
pub mod srt;
pub mod stunnel;
pub mod tmpfs;
pub mod webhook;

pub use antenne::{http_json, http_json_as, Antenne, AntenneOptions, ADMIN_PASSWORD};
pub use browser::{artifacts_dir, Browser};
pub use child::ChildGuard;
pub use clip::{clip, flv_tags, flv_video_headers, match_clip, Clip, Segment};
pub use fault_proxy::{Fault, FaultProxy};
pub use ffmpeg_listen::FfmpegListen;
pub use frames::{decode_frames, runs, Decoded};
pub use gstreamer::{GstPublisher, GstSink};
pub use in_process::InProcessIngest;
pub use nginx::Nginx;
pub use nginx_stream::NginxTlsFront;
pub use node_media_server::NodeMediaServer;
pub use obs::{Obs, OBS_PASSWORD, ORIGINAL_KEY, ORIGINAL_SERVER, SCENES};
pub use pki::{make_test_pki, CertKind, TestPki};
pub use probe::{analyze, decode_errors, AudioPacket, StreamReport, VideoPacket};
pub use probe::{assert_decodable_recording, assert_good_recording};
pub use publisher::{Publisher, PublisherOptions};
pub use srt::{ingest_key_id, set_passphrase, srt_url, start_with_srt, SrtPublisher, SrtReceiver};
pub use stunnel::Stunnel;
pub use tmpfs::Tmpfs;
pub use webhook::{ReceivedRequest, WebhookReceiver};

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Ports already handed out by [`free_port`] in this test process: never
/// handed out twice, so parallel tests cannot pick the same port.
fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// The range free ports are picked from: below the kernel's ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`), so that the local end of an
/// outgoing connection (ffmpeg -> nginx, antenne -> destination, ...) can
/// never take a port a test picked but has not bound yet.
fn port_range() -> (u16, u16) {
    let (eph_lo, eph_hi) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<u32>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999));
    if eph_lo >= 21_000 {
        (20_000, (eph_lo - 1).min(u32::from(u16::MAX)) as u16)
    } else if eph_hi <= 64_000 {
        ((eph_hi + 1) as u16, u16::MAX)
    } else {
        (10_000, 20_000)
    }
}

/// A TCP port on 127.0.0.1 that was free when checked (bind then drop) and
/// that no other caller in this process has received. Picked outside the
/// ephemeral range, starting at a random offset (so that two test processes
/// running at once are unlikely to collide). Peers still retry with another
/// port if their own bind fails.
///
/// Panics if no port is free in the whole range (the machine is broken).
pub fn free_port() -> u16 {
    let (lo, hi) = port_range();
    let span = u32::from(hi - lo) + 1;
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let start = (hasher.finish() % u64::from(span)) as u32;
    let mut taken = handed_out().lock().unwrap_or_else(|e| e.into_inner());
    for i in 0..span {
        let port = (u32::from(lo) + (start + i) % span) as u16;
        if taken.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            taken.insert(port);
            return port;
        }
    }
    panic!("free_port: no free TCP port on 127.0.0.1 in {lo}..={hi}");
}

/// Polls `cond` every 50 ms until it returns true (-> true) or `timeout`
/// elapsed (-> false). `cond` is always evaluated at least once, and once
/// more at the deadline.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    wait_for(timeout, || cond().then_some(())).is_some()
}

/// Like [`wait_until`] but for a value: polls `f` every 50 ms until it
/// returns `Some` (-> that value) or `timeout` elapsed (-> None).
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50).min(deadline - now));
    }
}

/// True if something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_accepts(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// The first of `names` found as an executable file in `$PATH` (or as given,
/// if it contains a `/`).
pub fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        if name.contains('/') {
            let p = PathBuf::from(name);
            if p.is_file() {
                return Some(p);
            }
            continue;
        }
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Like [`find_program`], with an error telling how to install it.
pub fn require_program(names: &[&str], package: &str) -> anyhow::Result<PathBuf> {
    find_program(names).ok_or_else(|| {
        anyhow::anyhow!(
            "none of {names:?} found in PATH: install the Debian package `{package}` \
             (bash scripts/test.sh installs it)"
        )
    })
}

/// The last `max_lines` lines of `text` (for error messages).
pub fn tail(text: &str, max_lines: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(max_lines);
    lines[start..].join("\n")
}

/// True if this process may run a program in its own mount namespace with
/// a file bind-mounted over `/etc/hosts` (what
/// [`AntenneOptions::hosts_file`] does): `unshare` is there and allowed.
pub fn can_private_hosts() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount --bind /etc/hosts /etc/hosts")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// [`can_private_hosts`] as a requirement of a test: an error saying why
/// (unshare's own words) where this process may not run a program with its
/// own `/etc/hosts`, so the test fails instead of passing untested.
pub fn require_private_hosts() -> anyhow::Result<()> {
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount --bind /etc/hosts /etc/hosts")
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run unshare (Debian package util-linux): {e}"))?;
    if !out.status.success() {
        anyhow::bail!(
            "this test needs antenne in its own mount namespace with a private /etc/hosts \
             (root: unshare --mount, mount --bind), refused here ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
