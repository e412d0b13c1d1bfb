//! The SRT listener's sleep (issue 16): libsrt's threads wake every 10 ms
//! while it listens, so without a publisher antenne closes it and holds the
//! port with a plain UDP socket; the next caller's handshake wakes it.
//! Real ffmpeg publishes over SRT to the real binary; nginx-rtmp receives.

mod support;

use std::time::Duration;

use anyhow::Result;
use support::*;

const KEY: &str = "srt_idle_key_0123456789";

/// Names of the antenne process's threads.
fn thread_names(antenne: &Antenne) -> Vec<String> {
    let Some(pid) = antenne.pid() else {
        return Vec::new();
    };
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|n| n.trim().to_owned())
        .collect()
}

/// Whether libsrt's receive thread runs (it wakes every 10 ms).
fn libsrt_listening(antenne: &Antenne) -> bool {
    thread_names(antenne)
        .iter()
        .any(|n| n.starts_with("SRT:RcvQ"))
}

#[test]
fn an_idle_srt_listener_sleeps_and_the_next_publisher_wakes_it() -> Result<()> {
    let nginx = Nginx::start()?;
    let (antenne, port) = start_with_srt(Antenne::options().arg("--srt-idle-secs").arg("1"), KEY)?;
    let d = antenne.add_destination("S", &nginx.url(), "srt_idle_dest", true)?;
    let id = Antenne::id_of(&d);
    for round in 0..2 {
        // Without a publisher, libsrt's threads go: nothing wakes 100 times
        // a second any more, and the port stays taken.
        assert!(
            wait_until(Duration::from_secs(20), || !libsrt_listening(&antenne)),
            "round {round}: libsrt still listening: {:?}\n{}",
            thread_names(&antenne),
            tail(&antenne.log(), 20)
        );
        // antenne holds the port again once libsrt has let it go.
        assert!(
            wait_until(Duration::from_secs(5), || std::net::UdpSocket::bind((
                "127.0.0.1",
                port
            ))
            .is_err()),
            "round {round}: the SRT port stays held while asleep"
        );
        let mut publisher = SrtPublisher::start(Publisher::options(), &srt_url(port, KEY, None))?;
        let ingest_live = || {
            antenne
                .ingest()
                .is_ok_and(|i| i["ingests"][0]["live"] == true)
        };
        assert!(
            wait_until(Duration::from_secs(20), ingest_live),
            "round {round}: the publisher goes live: ffmpeg:\n{}\nantenne:\n{}",
            tail(&publisher.log(), 20),
            tail(&antenne.log(), 30)
        );
        antenne.wait_for_state(&id, "live", Duration::from_secs(30))?;
        assert!(libsrt_listening(&antenne), "libsrt serves the publisher");
        // The stream reaches the destination.
        let size = || {
            nginx
                .latest_recording("srt_idle_dest")
                .and_then(|p| std::fs::metadata(p).ok())
                .map_or(0, |m| m.len())
        };
        let before = size();
        assert!(
            wait_until(Duration::from_secs(20), || size() > before + 100_000),
            "round {round}: the destination gets the stream"
        );
        publisher.child.kill();
        assert!(wait_until(Duration::from_secs(20), || !ingest_live()));
    }
    Ok(())
}
