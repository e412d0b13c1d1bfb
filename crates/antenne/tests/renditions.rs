//! Renditions end to end with real ffmpeg: a real ffmpeg publisher feeds
//! antenne's RTMP ingest (built in-process from the library: the API for
//! renditions does not exist yet), a rendition's ffmpeg turns it into a
//! 180x320 vertical stream, and test subscribers of the rendition's hub
//! write what destinations would get to FLV files that ffprobe checks.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::antenne::encoders::{
    hardware, EncoderConfig, EncoderState, Rendition, RenditionSpec, FFMPEG_NOT_FOUND,
};
use ::antenne::history::History;
use ::antenne::hub::{FrameKind, Hub, Hubs, QueueLimits, Subscription};
use ::antenne::secret::StreamKey;
use antenne_media::flv::{self, TagKind};
use bytes::BytesMut;
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

const KEY: &str = "rendition_test_key_0123456789";

/// An ingest in this process: a tokio runtime, one hub, the RTMP listener.
struct Ingest {
    rt: Runtime,
    hub: Arc<Hub>,
    port: u16,
    cancel: CancellationToken,
}

impl Ingest {
    fn start() -> Ingest {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let hub = Hub::new(StreamKey::new(KEY), QueueLimits::default());
        let hubs = Hubs::new(vec![hub.clone()]);
        let cancel = CancellationToken::new();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a port for the ingest");
        let port = listener.local_addr().expect("bound").port();
        rt.spawn(::antenne::ingest::serve(
            listener,
            hubs,
            History::disabled(),
            cancel.clone(),
        ));
        Ingest {
            rt,
            hub,
            port,
            cancel,
        }
    }

    fn url(&self) -> String {
        format!("rtmp://127.0.0.1:{}/live/{KEY}", self.port)
    }

    /// A 320x180 test pattern at 30 fps, one keyframe a second.
    fn publish(&self, width: u32, height: u32) -> Publisher {
        let publisher = Publisher::options()
            .size(width, height)
            .fps(30)
            .video_kbps(600)
            .start(&self.url())
            .expect("ffmpeg publishes");
        assert!(
            wait_until(Duration::from_secs(15), || self.hub.is_live()),
            "the publisher goes live on the ingest"
        );
        publisher
    }

    fn rendition(&self, spec: RenditionSpec, config: EncoderConfig) -> Rendition {
        let _enter = self.rt.enter();
        Rendition::start("vertical", spec, self.hub.clone(), config).expect("a valid spec")
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn config() -> EncoderConfig {
    EncoderConfig {
        ffmpeg: require_program(&["ffmpeg"], "ffmpeg").expect("ffmpeg is installed"),
        stall_timeout: Duration::from_secs(8),
        ..EncoderConfig::default()
    }
}

/// What a test subscriber saw of each video frame: hub timestamp, and when
/// it arrived.
type Seen = Arc<Mutex<Vec<(i64, bool, Instant)>>>;

/// A destination stand-in: writes what it gets from `sub` to an FLV file.
struct Recorder {
    path: PathBuf,
    seen: Seen,
    stop: CancellationToken,
}

impl Recorder {
    fn start(ingest: &Ingest, sub: Subscription, path: &Path) -> Recorder {
        let seen: Seen = Arc::default();
        let stop = CancellationToken::new();
        ingest
            .rt
            .spawn(record(sub, path.to_path_buf(), seen.clone(), stop.clone()));
        Recorder {
            path: path.to_path_buf(),
            seen,
            stop,
        }
    }

    fn video_frames(&self) -> usize {
        self.seen.lock().expect("not poisoned").len()
    }

    /// Stops and waits for the file to be written out.
    fn finish(&self) {
        self.stop.cancel();
        std::thread::sleep(Duration::from_millis(300));
    }
}

async fn record(sub: Subscription, path: PathBuf, seen: Seen, stop: CancellationToken) {
    let mut file = tokio::fs::File::create(&path)
        .await
        .expect("recording file");
    file.write_all(&flv::stream_header(true, true))
        .await
        .expect("write");
    let mut frames = Vec::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = sub.recv_many(&mut frames, 64) => {}
        }
        let mut out = BytesMut::new();
        for f in frames.drain(..) {
            let kind = match f.kind {
                FrameKind::Audio => TagKind::Audio,
                FrameKind::Video => TagKind::Video,
                FrameKind::Metadata => TagKind::Script,
            };
            if f.kind == FrameKind::Video && !f.header {
                seen.lock()
                    .expect("not poisoned")
                    .push((f.timestamp, f.keyframe, Instant::now()));
            }
            let ts = u32::try_from(f.timestamp).expect("hub timestamps start at 0");
            flv::write_tag(&mut out, kind, ts, &f.payload.to_payload()).expect("tag fits");
        }
        file.write_all(&out).await.expect("write");
    }
    file.flush().await.expect("flush");
}

/// Pids of this process's children running `ffmpeg … pipe:0` (encoders).
fn encoder_pids() -> Vec<u32> {
    let me = std::process::id().to_string();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid …
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().nth(1));
        let cmdline = std::fs::read_to_string(entry.path().join("cmdline")).unwrap_or_default();
        if ppid == Some(me.as_str()) && cmdline.contains("pipe:0") {
            pids.push(pid);
        }
    }
    pids
}

fn wait_running(r: &Rendition, timeout: Duration) -> bool {
    wait_until(timeout, || matches!(r.state(), EncoderState::Running(_)))
}

/// What a user checks of a vertical rendition's recording.
fn assert_vertical_h264(path: &Path) -> StreamReport {
    let report = analyze(path).expect("ffprobe reads the recording");
    let what = format!("{}: {}", path.display(), report.summary());
    assert_eq!(report.video_codec.as_deref(), Some("h264"), "{what}");
    assert_eq!(
        (report.width, report.height),
        (Some(180), Some(320)),
        "{what}"
    );
    assert!(
        report.first_video_is_keyframe(),
        "starts on a keyframe: {what}"
    );
    assert!(report.video_dts_monotonic(), "video goes forward: {what}");
    assert!(report.audio_dts_monotonic(), "audio goes forward: {what}");
    let errors = decode_errors(path).expect("ffmpeg decodes the recording");
    assert!(errors.trim().is_empty(), "decodes cleanly: {errors}");
    report
}

fn keyframe_times(report: &StreamReport) -> Vec<i64> {
    report
        .video_packets
        .iter()
        .filter(|p| p.keyframe)
        .map(|p| p.dts_ms)
        .collect()
}

#[test]
fn one_ffmpeg_serves_two_consumers_a_vertical_stream_with_a_keyframe_every_two_seconds() {
    let ingest = Ingest::start();
    let _publisher = ingest.publish(320, 180);
    let rendition = ingest.rendition(RenditionSpec::vertical(180, 320, 1000), config());
    let dir = tempfile::tempdir().expect("temp dir");

    // Live input but nobody needs the rendition: no ffmpeg.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(rendition.state(), EncoderState::Stopped);
    assert!(encoder_pids().is_empty(), "no encoder without demand");

    let a = Recorder::start(
        &ingest,
        rendition.output().subscribe(),
        &dir.path().join("a.flv"),
    );
    let b = Recorder::start(
        &ingest,
        rendition.output().subscribe(),
        &dir.path().join("b.flv"),
    );
    let demand_a = rendition.acquire();
    let demand_b = rendition.acquire();
    assert!(
        wait_running(&rendition, Duration::from_secs(20)),
        "the encoder runs: {:?}",
        rendition.state()
    );
    // About 7 s of output (a few keyframe intervals).
    assert!(
        wait_until(Duration::from_secs(30), || a.video_frames() >= 210
            && b.video_frames() >= 210),
        "both consumers receive the rendition ({} and {} frames)",
        a.video_frames(),
        b.video_frames()
    );
    assert_eq!(encoder_pids().len(), 1, "one ffmpeg for both consumers");
    a.finish();
    b.finish();

    for rec in [&a, &b] {
        let report = assert_vertical_h264(&rec.path);
        let keys = keyframe_times(&report);
        assert!(keys.len() >= 3, "several keyframes: {keys:?}");
        for pair in keys.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                (1500..=2500).contains(&gap),
                "a keyframe every ~2 s: {keys:?}"
            );
        }
    }

    // Nobody needs it any more: ffmpeg stops.
    drop(demand_a);
    assert!(!encoder_pids().is_empty(), "still needed by one consumer");
    drop(demand_b);
    assert!(
        wait_until(Duration::from_secs(10), || encoder_pids().is_empty()
            && rendition.state() == EncoderState::Stopped),
        "the encoder stops without demand: {:?}",
        rendition.state()
    );
}

#[test]
fn an_encoder_killed_with_sigkill_restarts_and_timestamps_stay_monotonic() {
    let ingest = Ingest::start();
    let _publisher = ingest.publish(320, 180);
    let rendition = ingest.rendition(RenditionSpec::vertical(180, 320, 1000), config());
    let dir = tempfile::tempdir().expect("temp dir");
    let rec = Recorder::start(
        &ingest,
        rendition.output().subscribe(),
        &dir.path().join("k.flv"),
    );
    let _demand = rendition.acquire();
    assert!(
        wait_until(Duration::from_secs(30), || rec.video_frames() >= 60),
        "the rendition flows: {:?}",
        rendition.state()
    );
    let first = rendition.pid().expect("ffmpeg runs");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &first.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let mut states = rendition.watch_state();
    let restarting = wait_until(Duration::from_secs(10), || {
        matches!(*states.borrow_and_update(), EncoderState::Restarting { .. })
            || rendition.pid().is_some_and(|p| p != first)
    });
    assert!(restarting, "the crash is seen: {:?}", rendition.state());
    let before = rec.video_frames();
    assert!(
        wait_until(Duration::from_secs(30), || rendition
            .pid()
            .is_some_and(|p| p != first)
            && rec.video_frames() >= before + 90),
        "a new ffmpeg carries on: {:?}",
        rendition.state()
    );
    rec.finish();

    let seen = rec.seen.lock().expect("not poisoned").clone();
    let ts: Vec<i64> = seen.iter().map(|(t, _, _)| *t).collect();
    assert!(
        ts.windows(2).all(|w| w[1] > w[0]),
        "the consumer's timestamps only go forward across the restart"
    );
    let report = assert_vertical_h264(&rec.path);
    assert!(report.keyframe_count() >= 2, "{}", report.summary());
}

#[test]
fn without_ffmpeg_the_rendition_is_unavailable_with_a_clear_message() {
    let ingest = Ingest::start();
    // A live input without a publisher process: ffmpeg is never reached.
    let _live = ingest
        .hub
        .start_publish("127.0.0.1:9".parse().expect("an address"))
        .expect("live");
    let config = EncoderConfig {
        ffmpeg: PathBuf::from("/nonexistent/antenne-test/ffmpeg"),
        ..EncoderConfig::default()
    };
    let rendition = ingest.rendition(RenditionSpec::vertical(180, 320, 1000), config);
    let _demand = rendition.acquire();
    let state = wait_for(Duration::from_secs(10), || match rendition.state() {
        EncoderState::Unavailable { reason } => Some(reason),
        _ => None,
    });
    assert_eq!(state.as_deref(), Some(FFMPEG_NOT_FOUND));
    assert_eq!(
        FFMPEG_NOT_FOUND,
        "ffmpeg not found: install it (apt install ffmpeg)"
    );
}

#[test]
fn hardware_probe_says_clearly_what_is_not_available() {
    let ffmpeg = require_program(&["ffmpeg"], "ffmpeg").expect("ffmpeg is installed");
    let rt = Runtime::new().expect("runtime");
    let report = rt.block_on(hardware::probe(&ffmpeg));
    let summary = report.summary();
    println!("{summary}");
    // Every candidate is accounted for, with a reason when it failed.
    assert_eq!(
        report.available.len() + report.unavailable.len(),
        3,
        "{summary}"
    );
    assert!(report.unavailable.iter().all(|(_, why)| !why.is_empty()));
    if report.available.is_empty() {
        assert!(
            summary.starts_with("hardware encoders: none available ("),
            "{summary}"
        );
        assert!(summary.ends_with("renditions use libx264"), "{summary}");
    }
}
