//! antenne-bench: the peers of antenne's relay benchmark, in one process
//! (one clock): an RTMP/RTMPS sink that takes any number of publishers, and
//! a publisher that plays a real FLV clip in real time.
//!
//! `bench/relay_bench.py` drives it through JSON lines on standard input;
//! each command gets one JSON line on standard output. Logs go to standard
//! error. End of standard input ends the process. See bench/README.md.
//!
//! `antenne-bench multitrack-publish --track0 A.flv --track1 B.flv --url
//! rtmp://…` is a separate dev tool: an OBS-style multitrack publisher.

mod clip;
mod control;
mod multitrack;
mod net;
mod publisher;
mod scan;
mod session;
mod sink;
mod stats;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;

/// Benchmark peers for antenne: RTMP(S) sink + real-time FLV publisher,
/// driven by JSON lines on stdin.
#[derive(Debug, Parser)]
#[command(name = "antenne-bench", version)]
struct Cli {
    /// The FLV clip to publish (looped).
    #[arg(long)]
    clip: PathBuf,
    /// Where the sink accepts plain RTMP.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where the sink accepts RTMPS (needs --tls-cert and --tls-key).
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    tls_listen: Option<SocketAddr>,
    /// PEM certificate chain of the TLS listener.
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// PEM private key of the TLS listener.
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// Match video messages by their last eight bytes alone (not their
    /// length): for a relay path through MPEG-TS (an SRT ingest).
    #[arg(long)]
    match_tail_only: bool,
    /// Threads of the sink.
    #[arg(long, default_value_t = 1)]
    sink_threads: usize,
}

fn main() {
    // `antenne-bench multitrack-publish …`: the test publisher of an
    // OBS-style multitrack stream (see multitrack.rs).
    if std::env::args().nth(1).as_deref() == Some("multitrack-publish") {
        if let Err(e) = multitrack::main(std::env::args().skip(1)) {
            eprintln!("antenne-bench multitrack-publish: {e}");
            std::process::exit(1);
        }
        return;
    }
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("antenne-bench: {e}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let data = std::fs::read(&cli.clip).map_err(|e| format!("{}: {e}", cli.clip.display()))?;
    let clip = Arc::new(
        clip::Clip::parse_with(&data, cli.match_tail_only)
            .map_err(|e| format!("{}: {e}", cli.clip.display()))?,
    );
    drop(data);
    let reg = Arc::new(stats::Registry::new(clip.clone()));

    let sink_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.sink_threads.max(1))
        .thread_name("sink")
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    // The publisher has its own thread, so that its send instants do not
    // wait for the sink.
    let pub_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("publisher")
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;

    let tls = match (&cli.tls_listen, &cli.tls_cert, &cli.tls_key) {
        (Some(addr), Some(cert), Some(key)) => {
            Some((*addr, Arc::new(sink::tls_config(cert, key)?)))
        }
        _ => None,
    };
    let (port, tls_port) = sink_rt.block_on(async {
        let l = sink::bind(cli.listen)
            .await
            .map_err(|e| format!("listen {}: {e}", cli.listen))?;
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        tokio::spawn(sink::listen(l, None, reg.clone()));
        let mut tls_port = None;
        if let Some((addr, cfg)) = tls {
            let l = sink::bind(addr)
                .await
                .map_err(|e| format!("listen {addr}: {e}"))?;
            tls_port = Some(l.local_addr().map_err(|e| e.to_string())?.port());
            tokio::spawn(sink::listen(l, Some(cfg), reg.clone()));
        }
        Ok::<_, String>((port, tls_port))
    })?;

    control::say(&serde_json::json!({
        "event": "ready",
        "port": port,
        "tls_port": tls_port,
        "clip": {
            "duration_ms": clip.duration_ms,
            "video_frames": clip.video_frames,
            "keyframes": clip.keyframes,
            "matchable": clip.index.len(),
            "ambiguous": clip.ambiguous,
            "mbps": clip.mbps(),
        },
    }));
    control::run(reg, pub_rt.handle().clone());
    // Do not wait for connections to end.
    sink_rt.shutdown_background();
    pub_rt.shutdown_background();
    Ok(())
}
