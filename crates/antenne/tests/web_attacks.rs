//! The web port under attack from an unauthenticated client on loopback:
//! slow or unfinished requests, idle connections by the thousand, login
//! floods, a foreign `Host` (DNS rebinding). Each attack is bounded in
//! count and time; what is asserted is what the requirement says: the
//! attacker's connections are closed, OBS can still publish within 2 s,
//! antenne's memory stays within 100 MiB of idle. Other timings are
//! printed (`cargo test --test web_attacks -- --nocapture`).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use support::*;

const KEY: &str = "attack_ingest_key_0123456789";

/// OBS must be able to publish within this long, whatever else happens.
const PUBLISH_WITHIN: Duration = Duration::from_secs(2);
/// Growth of antenne's memory allowed under an attack.
const RSS_BUDGET_KIB: u64 = 100 * 1024;

fn connect(port: u16) -> Result<TcpStream> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    TcpStream::connect_timeout(&addr, Duration::from_secs(5)).context("connect")
}

/// How long until the server closes `stream` (reading and dropping what it
/// sends), or `None` if it is still open after `limit`.
fn closed_after(mut stream: TcpStream, started: Instant, limit: Duration) -> Option<Duration> {
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(10))))
            .ok()?;
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if started.elapsed() >= limit {
                    return None;
                }
            }
            Err(_) => return Some(started.elapsed()),
        }
    }
}

/// Times `ffmpeg` publishing to antenne until antenne logs the stream live.
fn time_publish(antenne: &Antenne) -> Result<(Duration, Publisher)> {
    let before = antenne.log().matches("publisher live").count();
    let started = Instant::now();
    let publisher = Publisher::options()
        .size(320, 180)
        .fps(15)
        .gop(15)
        .start(&antenne.ingest_url(KEY))?;
    let live = wait_until(Duration::from_secs(20), || {
        antenne.log().matches("publisher live").count() > before
    });
    if !live {
        bail!(
            "the publisher never went live:\n{}",
            tail(&antenne.log(), 30)
        );
    }
    Ok((started.elapsed(), publisher))
}

/// Time until `GET /api/v1/health` on a new connection answers 200.
fn time_health(port: u16, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .build();
    let url = format!("http://127.0.0.1:{port}/api/v1/health");
    while started.elapsed() < limit {
        if let Ok(r) = agent.get(&url).call() {
            if r.status() == 200 {
                return Some(started.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Sets antenne's open-file limit (soft and hard) as a small system would.
fn limit_open_files(antenne: &Antenne, n: u64) -> Result<()> {
    let pid = antenne.pid().context("antenne runs")?;
    let out = std::process::Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={n}:{n}"))
        .output()
        .context("prlimit (util-linux) runs")?;
    if !out.status.success() {
        bail!("prlimit failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

#[test]
fn closes_slow_unfinished_and_idle_connections() -> Result<()> {
    let antenne = Antenne::start(KEY)?;
    let port = antenne.http_port();
    let limit = Duration::from_secs(45);
    let mut attacks: Vec<(&str, std::thread::JoinHandle<Option<Duration>>)> = Vec::new();

    let silent = connect(port)?;
    attacks.push((
        "sends nothing",
        std::thread::spawn(move || closed_after(silent, Instant::now(), limit)),
    ));

    let mut half = connect(port)?;
    half.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")?;
    attacks.push((
        "sends half a request head",
        std::thread::spawn(move || closed_after(half, Instant::now(), limit)),
    ));

    let mut trickle = connect(port)?;
    attacks.push((
        "trickles its request head, a byte a second",
        std::thread::spawn(move || {
            let started = Instant::now();
            for b in b"GET /api/v1/health HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
                if started.elapsed() > limit || trickle.write_all(&[*b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            closed_after(trickle, started, limit)
        }),
    ));

    let mut body = connect(port)?;
    body.write_all(
        b"POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"username\"",
    )?;
    attacks.push((
        "never finishes its body",
        std::thread::spawn(move || closed_after(body, Instant::now(), limit)),
    ));

    let mut idle = connect(port)?;
    idle.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")?;
    attacks.push((
        "stays idle after a request (keep-alive)",
        std::thread::spawn(move || closed_after(idle, Instant::now(), limit)),
    ));

    let mut failures = Vec::new();
    for (what, t) in attacks {
        match t.join().expect("attack thread") {
            Some(after) => eprintln!("a client that {what}: closed after {after:.1?}"),
            None => failures.push(format!(
                "a client that {what} is still connected after {limit:?}"
            )),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(antenne.health()?, 200);
    Ok(())
}

#[test]
fn a_client_that_never_reads_its_answers_is_disconnected() -> Result<()> {
    let antenne = Antenne::start(KEY)?;
    let port = antenne.http_port();
    // 400 pipelined requests for the 80 KB script (32 MB of answers) and
    // not one byte read: antenne's writes stall once the socket buffers
    // are full.
    let requests = 400;
    let mut s = connect(port)?;
    let one = format!("GET /assets/app.js HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    s.write_all(one.repeat(requests).as_bytes())?;
    let answer_size = {
        let agent = ureq::agent();
        let r = agent.get(&antenne.url("/assets/app.js")).call()?;
        r.into_string()?.len()
    };
    std::thread::sleep(Duration::from_secs(45));
    // Now read: a connection that was closed ends early, having delivered
    // only what the buffers held.
    let started = Instant::now();
    let mut total = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
    eprintln!(
        "a client that never read: {total} bytes of {} reached it after 45 s; reading ended {:.1?} later",
        answer_size * requests,
        started.elapsed()
    );
    assert!(
        total < answer_size * requests / 2,
        "antenne kept the connection and went on writing ({total} bytes)"
    );
    assert_eq!(antenne.health()?, 200);
    Ok(())
}

#[test]
fn a_thousand_idle_connections_starve_neither_rtmp_nor_the_web_port() -> Result<()> {
    let antenne = Antenne::start(KEY)?;
    let port = antenne.http_port();
    // A small system: 1,024 open files at most.
    limit_open_files(&antenne, 1024)?;
    let idle_rss = antenne.rss_kib()?;

    let started = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..1100 {
        if let Ok(s) = connect(port) {
            idle.push(s);
        }
    }
    eprintln!(
        "opened {} idle connections in {:.1?}",
        idle.len(),
        started.elapsed()
    );
    std::thread::sleep(Duration::from_millis(500));
    let (publish, mut publisher) = time_publish(&antenne)?;
    let rss = antenne.rss_kib()?;
    let health = time_health(port, Duration::from_secs(30));
    eprintln!(
        "under 1,100 idle connections: publish went live after {publish:.2?}, /health answered after {health:.2?}, RSS {idle_rss} KiB idle, {rss} KiB under attack"
    );
    assert!(
        publish <= PUBLISH_WITHIN,
        "OBS took {publish:?} to publish:\n{}",
        tail(&antenne.log(), 20)
    );
    assert!(publisher.is_running(), "{}", publisher.log());
    assert!(
        health.is_some(),
        "/health never answered:\n{}",
        tail(&antenne.log(), 20)
    );
    assert!(
        rss < idle_rss + RSS_BUDGET_KIB,
        "RSS {rss} KiB, idle {idle_rss} KiB"
    );
    assert!(
        !antenne.log().contains("Too many open files"),
        "{}",
        tail(&antenne.log(), 20)
    );
    drop(idle);
    Ok(())
}

/// `POST /api/v1/login` with a foreign `Host` and `Origin`, as a page on
/// an attacker's domain rebound to 127.0.0.1 would send it.
fn rebound_login(port: u16, password: &str) -> Result<(u16, String)> {
    let body = json!({ "username": "admin", "password": password }).to_string();
    let mut s = connect(port)?;
    write!(
        s,
        "POST /api/v1/login HTTP/1.1\r\nHost: rebind.evil.example:{port}\r\nOrigin: http://rebind.evil.example:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.read_to_string(&mut answer)?;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no status line")?;
    Ok((status, answer))
}

/// `GET /api/v1/health` naming `host`; returns the whole answer.
fn health_as(port: u16, host: &str) -> Result<String> {
    let mut s = connect(port)?;
    write!(
        s,
        "GET /api/v1/health HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.read_to_string(&mut answer)?;
    Ok(answer)
}

#[test]
fn refuses_requests_for_a_foreign_host_name() -> Result<()> {
    let antenne = Antenne::start(KEY)?;
    let port = antenne.http_port();
    // The real password, through a rebound name: no cookie.
    let (status, answer) = rebound_login(port, ADMIN_PASSWORD)?;
    assert_eq!(status, 421, "{answer}");
    assert!(
        !answer.to_ascii_lowercase().contains("set-cookie"),
        "{answer}"
    );
    assert!(
        answer.contains("--allowed-hosts"),
        "says what to do: {answer}"
    );
    // Wrong passwords through a rebound name do not lock the admin out.
    for _ in 0..6 {
        assert_eq!(rebound_login(port, "wrong password")?.0, 421);
    }
    let agent = ureq::agent();
    let (code, _) = http_json(
        &agent,
        "POST",
        &antenne.url("/api/v1/login"),
        Some(&json!({ "username": "admin", "password": ADMIN_PASSWORD })),
    )?;
    assert_eq!(code, 200, "the admin still logs in");
    // Names antenne is served under still work.
    for host in ["localhost", "127.0.0.1"] {
        let answer = health_as(port, host)?;
        assert!(answer.starts_with("HTTP/1.1 200"), "{host}: {answer}");
    }
    // The public host set in Settings is allowed too.
    assert!(health_as(port, "antenne.example.org")?.starts_with("HTTP/1.1 421"));
    let (code, v): (u16, Value) = antenne.request(
        "PUT",
        "/api/v1/settings",
        Some(&json!({ "public_host": "antenne.example.org" })),
    )?;
    assert!(code < 300, "{code} {v}");
    let answer = health_as(port, "antenne.example.org")?;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    Ok(())
}

#[test]
fn serves_the_host_names_given_with_allowed_hosts() -> Result<()> {
    let antenne = Antenne::options()
        .ingest_key(KEY)
        .arg("--allowed-hosts")
        .arg("studio.example.net,Other.Example.net")
        .start()?;
    let port = antenne.http_port();
    for host in ["studio.example.net", "other.example.net"] {
        let answer = health_as(port, host)?;
        assert!(answer.starts_with("HTTP/1.1 200"), "{host}: {answer}");
    }
    let answer = health_as(port, "evil.example.net")?;
    assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");
    Ok(())
}

/// Sends one wrong login from `from` and returns the status (0 when the
/// connection failed).
async fn wrong_login(from: std::net::Ipv4Addr, port: u16, password: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind((from, 0).into())?;
        let mut s = socket.connect(([127, 0, 0, 1], port).into()).await?;
        let body = json!({ "username": "admin", "password": password }).to_string();
        let req = format!(
            "POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).await?;
        let text = String::from_utf8_lossy(&answer);
        Ok::<u16, std::io::Error>(
            text.split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0),
        )
    };
    tokio::time::timeout(Duration::from_secs(60), attempt)
        .await
        .ok()
        .and_then(|r| r.ok())
        .unwrap_or(0)
}

/// Runs `n` wrong logins at once from each of `sources`; returns how many
/// got each status.
fn login_flood(
    rt: &tokio::runtime::Runtime,
    port: u16,
    sources: &[std::net::Ipv4Addr],
    n: usize,
) -> std::collections::BTreeMap<u16, usize> {
    rt.block_on(async {
        let mut tasks = Vec::new();
        for ip in sources {
            for i in 0..n {
                let ip = *ip;
                tasks.push(tokio::spawn(async move {
                    wrong_login(ip, port, &format!("wrong password {i}")).await
                }));
            }
        }
        let mut counts = std::collections::BTreeMap::new();
        for t in tasks {
            *counts.entry(t.await.unwrap_or(0)).or_insert(0) += 1;
        }
        counts
    })
}

/// Samples antenne's RSS every 100 ms until `stop`; returns the highest.
fn sample_rss(pid: u32, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> u64 {
    let mut max = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
            {
                max = max.max(kib);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    max
}

#[test]
fn a_login_flood_checks_few_passwords_and_keeps_memory_bounded() -> Result<()> {
    let mut antenne = Antenne::start(KEY)?;
    let port = antenne.http_port();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let idle_rss = antenne.rss_kib()?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (pid, stop) = (antenne.pid().context("pid")?, stop.clone());
        std::thread::spawn(move || sample_rss(pid, stop))
    };

    // 256 wrong logins at once from one address: five are checked.
    let started = Instant::now();
    let one = login_flood(&rt, port, &[std::net::Ipv4Addr::new(127, 0, 0, 1)], 256);
    eprintln!(
        "256 parallel wrong logins from one address: {one:?} in {:.1?}",
        started.elapsed()
    );
    assert_eq!(one.get(&401).copied().unwrap_or(0), 5, "{one:?}");
    assert_eq!(one.get(&429).copied().unwrap_or(0), 251, "{one:?}");

    // 240 wrong logins at once from 60 addresses (each under its limit;
    // under the web port's connection cap too), while OBS publishes:
    // password checks are capped, memory too.
    let sources: Vec<_> = (1..=60)
        .map(|i| std::net::Ipv4Addr::new(127, 0, 1, i))
        .collect();
    let flood = {
        let sources = sources.clone();
        let handle = rt.handle().clone();
        std::thread::spawn(move || {
            let rt2 = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("rt");
            let _g = handle.enter();
            let started = Instant::now();
            let counts = login_flood(&rt2, port, &sources, 4);
            (counts, started.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let (publish, _publisher) = time_publish(&antenne)?;
    let health = time_health(port, Duration::from_secs(30));
    let (many, took) = flood.join().expect("flood thread");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().expect("sampler");
    eprintln!(
        "240 parallel wrong logins from 60 addresses: {many:?} in {took:.1?}; meanwhile publish went live after {publish:.2?}, /health answered after {health:.2?}; RSS idle {idle_rss} KiB, peak {peak} KiB"
    );
    assert!(
        many.keys().all(|s| [401, 429, 503].contains(s)),
        "every attempt is answered: {many:?}"
    );
    assert!(publish <= PUBLISH_WITHIN, "OBS took {publish:?} to publish");
    assert!(
        peak < idle_rss + RSS_BUDGET_KIB,
        "RSS peaked at {peak} KiB, idle {idle_rss} KiB"
    );

    // The failures survive a restart: the address is still locked out.
    antenne.restart()?;
    let after = login_flood(&rt, port, &[std::net::Ipv4Addr::new(127, 0, 0, 1)], 1);
    assert_eq!(after.get(&429), Some(&1), "{after:?}");
    Ok(())
}
