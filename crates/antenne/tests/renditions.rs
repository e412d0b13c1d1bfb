//! Renditions end to end with real ffmpeg: a real ffmpeg publisher feeds
//! antenne's RTMP ingest (built in-process from the library: the API for
//! renditions does not exist yet), a rendition's ffmpeg turns it into a
//! 180x320 vertical stream, and test subscribers of the rendition's hub
//! write what destinations would get to FLV files that ffprobe checks.

#[path = "renditions/measure.rs"]
mod measure;
mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::antenne::encoders::{
    hardware, AudioMode, EncoderConfig, EncoderState, Fit, Rendition, RenditionSpec,
    FFMPEG_NOT_FOUND,
};
use ::antenne::history::History;
use ::antenne::hub::{FrameKind, Hub, Subscription};
use ::antenne::output::connection::Timeouts;
use ::antenne::output::supervisor::{supervise, OutputContext};
use ::antenne::output::OutputStats;
use antenne_media::flv::{self, TagKind};
use bytes::BytesMut;
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

const KEY: &str = "rendition_test_key_0123456789";

impl InProcessIngest {
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
    fn start(ingest: &InProcessIngest, sub: Subscription, path: &Path) -> Recorder {
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

/// Pids of this process's children running `ffmpeg … pipe:0` (encoders)
/// at `kbps` (tests running at once use different bitrates).
fn encoder_pids(kbps: u32) -> Vec<u32> {
    let me = std::process::id().to_string();
    let marker = format!("\0{kbps}k\0");
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
        if ppid == Some(me.as_str()) && cmdline.contains("pipe:0") && cmdline.contains(&marker) {
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

/// A real destination: antenne's output supervisor relaying `hub` to
/// nginx-rtmp under the stream name `name`; stops with the returned token.
fn relay_to(
    ingest: &InProcessIngest,
    hub: Arc<Hub>,
    nginx: &Nginx,
    name: &str,
) -> CancellationToken {
    let target = ::antenne::output::url::parse(&nginx.url(), name).expect("a valid URL");
    let ctx = Arc::new(OutputContext {
        tls: Arc::new(::antenne::app::tls_config(None).expect("TLS roots")),
        timeouts: Timeouts::default(),
        lanes: ::antenne::output::lanes::Lanes::none(),
    });
    let cancel = CancellationToken::new();
    ingest.rt.spawn(supervise(
        name.to_string(),
        target,
        Arc::new(hub),
        Arc::new(OutputStats::new(true)),
        ctx,
        History::disabled(),
        cancel.clone(),
    ));
    cancel
}

#[test]
fn one_ffmpeg_serves_two_consumers_a_vertical_stream_with_a_keyframe_every_two_seconds() {
    const KBPS: u32 = 900;
    let nginx = Nginx::start().expect("nginx-rtmp starts");
    let ingest = InProcessIngest::start(KEY);
    let _publisher = ingest.publish(320, 180);
    let rendition = ingest.rendition(RenditionSpec::vertical(180, 320, KBPS), config());
    let dir = tempfile::tempdir().expect("temp dir");

    // Live input but nobody needs the rendition: no ffmpeg.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(rendition.state(), EncoderState::Stopped);
    assert!(encoder_pids(KBPS).is_empty(), "no encoder without demand");

    // Two consumers: a destination relaying to nginx-rtmp, and a test
    // subscriber writing a file.
    let relay = relay_to(&ingest, rendition.output().clone(), &nginx, "vertical");
    let rec = Recorder::start(
        &ingest,
        rendition.output().subscribe(),
        &dir.path().join("a.flv"),
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
        wait_until(Duration::from_secs(30), || rec.video_frames() >= 210),
        "the subscriber receives the rendition ({} frames)",
        rec.video_frames()
    );
    assert_eq!(encoder_pids(KBPS).len(), 1, "one ffmpeg for both consumers");
    if let EncoderState::Running(p) = rendition.state() {
        println!("encoder progress: {p:?}");
        assert!(p.frames > 0, "ffmpeg reports its progress: {p:?}");
    }
    rec.finish();
    relay.cancel();
    std::thread::sleep(Duration::from_millis(500));

    let relayed = nginx
        .recordings("vertical")
        .last()
        .cloned()
        .expect("nginx-rtmp recorded the relayed rendition");
    for path in [rec.path.clone(), relayed] {
        let report = assert_vertical_h264(&path);
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
    assert!(
        !encoder_pids(KBPS).is_empty(),
        "still needed by one consumer"
    );
    drop(demand_b);
    assert!(
        wait_until(Duration::from_secs(10), || encoder_pids(KBPS).is_empty()
            && rendition.state() == EncoderState::Stopped),
        "the encoder stops without demand: {:?}",
        rendition.state()
    );
}

#[test]
fn an_encoder_killed_with_sigkill_restarts_and_timestamps_stay_monotonic() {
    let nginx = Nginx::start().expect("nginx-rtmp starts");
    let ingest = InProcessIngest::start(KEY);
    let _publisher = ingest.publish(320, 180);
    let rendition = ingest.rendition(RenditionSpec::vertical(180, 320, 1000), config());
    let dir = tempfile::tempdir().expect("temp dir");
    let relay = relay_to(&ingest, rendition.output().clone(), &nginx, "k");
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
    relay.cancel();
    std::thread::sleep(Duration::from_millis(500));

    let seen = rec.seen.lock().expect("not poisoned").clone();
    let ts: Vec<i64> = seen.iter().map(|(t, _, _)| *t).collect();
    assert!(
        ts.windows(2).all(|w| w[1] > w[0]),
        "the consumer's timestamps only go forward across the restart"
    );
    let report = assert_vertical_h264(&rec.path);
    assert!(report.keyframe_count() >= 2, "{}", report.summary());
    // The destination stayed connected through the restart: one publish,
    // one recording, timestamps forward all along.
    assert_eq!(nginx.publish_count("k"), 1, "{}", nginx.error_log());
    let relayed = nginx.recordings("k");
    assert_eq!(relayed.len(), 1, "{relayed:?}");
    let report = assert_vertical_h264(&relayed[0]);
    assert!(report.keyframe_count() >= 2, "{}", report.summary());
}

#[test]
fn without_ffmpeg_the_rendition_is_unavailable_with_a_clear_message() {
    let ingest = InProcessIngest::start(KEY);
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

/// An Enhanced RTMP HEVC ingest that ffmpeg cannot read (here its
/// configuration record is not a real one, so no ffmpeg version reads it;
/// ffmpeg before 6.1 reads no HEVC from FLV at all): the rendition says
/// why it cannot run instead of restarting for ever (whether ffmpeg exits
/// or, given this trickle of bytes, is still probing when the stall
/// timeout ends the run).
#[test]
fn a_rendition_of_an_hevc_ingest_that_ffmpeg_cannot_read_says_why() {
    let ingest = InProcessIngest::start(KEY);
    let live = ingest
        .hub
        .start_publish("127.0.0.1:9".parse().expect("an address"))
        .expect("live");
    let hub = live.hub().clone();
    let stop = CancellationToken::new();
    let feeding = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            // SequenceStart, then coded frames (a keyframe a second).
            let mut header = vec![0x90];
            header.extend_from_slice(b"hvc1\x01");
            header.extend_from_slice(&[0; 30]);
            hub.push_video(0, header.into());
            for i in 0u32.. {
                if stop.is_cancelled() {
                    break;
                }
                let first = if i % 30 == 0 { 0x91 } else { 0xa1 };
                let mut frame = vec![first];
                frame.extend_from_slice(b"hvc1\0\0\0\0\0\0\x05\x26\x01\xaf\x00\x00");
                hub.push_video(i * 33, frame.into());
                hub.flush();
                std::thread::sleep(Duration::from_millis(33));
            }
        })
    };
    let rendition = ingest.rendition(RenditionSpec::vertical(180, 320, 1000), config());
    let _demand = rendition.acquire();
    let state = wait_for(Duration::from_secs(30), || match rendition.state() {
        EncoderState::Unavailable { reason } => Some(reason),
        _ => None,
    });
    stop.cancel();
    feeding.join().expect("the feeding thread");
    let reason = state.unwrap_or_else(|| panic!("not unavailable: {:?}", rendition.state()));
    assert!(
        reason.starts_with(
            "ffmpeg could not read this ingest's HEVC video (Enhanced RTMP: ffmpeg 6.1 or later reads it): "
        ),
        "{reason}"
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

#[test]
fn a_stalled_encoder_is_restarted_and_stops_with_its_ingest() {
    const KBPS: u32 = 1100;
    let ingest = InProcessIngest::start(KEY);
    let mut publisher = ingest.publish(320, 180);
    let config = EncoderConfig {
        stall_timeout: Duration::from_secs(3),
        ..config()
    };
    let rendition = ingest.rendition(RenditionSpec::vertical(180, 320, KBPS), config);
    let _demand = rendition.acquire();
    assert!(
        wait_running(&rendition, Duration::from_secs(20)),
        "the encoder runs: {:?}",
        rendition.state()
    );
    let first = rendition.pid().expect("ffmpeg runs");
    // Frozen, not dead: it writes nothing any more.
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &first.to_string()])
        .status()
        .expect("kill runs");
    assert!(stopped.success());
    let error = wait_for(Duration::from_secs(15), || match rendition.state() {
        EncoderState::Restarting { error, .. } => Some(error),
        _ => None,
    });
    let error = error.expect("the stall is seen");
    assert!(
        error.starts_with("stalled: no output from ffmpeg for 3 s"),
        "{error}"
    );
    assert!(
        wait_until(Duration::from_secs(20), || rendition
            .pid()
            .is_some_and(|p| p != first)
            && matches!(rendition.state(), EncoderState::Running(_))),
        "a new ffmpeg runs: {:?}",
        rendition.state()
    );
    assert!(
        !encoder_pids(KBPS).contains(&first),
        "the frozen ffmpeg was killed and reaped"
    );

    // The ingest goes offline: the encoder stops, its hub goes offline.
    publisher.stop();
    assert!(
        wait_until(Duration::from_secs(10), || rendition.state()
            == EncoderState::Stopped
            && rendition.pid().is_none()
            && !rendition.output().is_live()),
        "the encoder stops with its ingest: {:?}",
        rendition.state()
    );
}

/// Runs the rendition's exact ffmpeg command line on a 2 s 320x180 FLV
/// (stdin from the file, stdout to a file), as the encoder does on pipes.
fn transcode(ffmpeg: &Path, spec: &RenditionSpec, input: &Path, output: &Path) {
    let args = ::antenne::encoders::spec::ffmpeg_args(spec, &Default::default());
    let status = std::process::Command::new(ffmpeg)
        .args(&args)
        .stdin(std::fs::File::open(input).expect("input clip"))
        .stdout(std::fs::File::create(output).expect("output file"))
        .stderr(std::process::Stdio::null())
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg accepts {args:?}");
}

#[test]
fn every_fit_gives_a_decodable_vertical_picture() {
    let ffmpeg = require_program(&["ffmpeg"], "ffmpeg").expect("ffmpeg is installed");
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("in.flv");
    let made = std::process::Command::new(&ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
        .arg("testsrc2=s=320x180:r=30")
        .args(["-f", "lavfi", "-i", "sine=f=440", "-t", "2"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "30"])
        .args(["-c:a", "aac", "-f", "flv"])
        .arg(&input)
        .status()
        .expect("ffmpeg runs");
    assert!(made.success());
    let fits = [
        Fit::Crop { x: 0.0 },
        Fit::Crop { x: 1.0 },
        Fit::PadBlack,
        Fit::PadBlurred,
    ];
    let mut pictures = Vec::new();
    for (i, fit) in fits.into_iter().enumerate() {
        let mut spec = RenditionSpec::vertical(180, 320, 500);
        spec.fit = fit;
        spec.audio = AudioMode::Aac {
            kbps: 64,
            sample_rate: 48_000,
        };
        let output = dir.path().join(format!("out-{i}.flv"));
        transcode(&ffmpeg, &spec, &input, &output);
        let report = assert_vertical_h264(&output);
        assert_eq!(report.audio_codec.as_deref(), Some("aac"), "{fit:?}");
        assert!(
            report.video_duration_ms() >= 1500,
            "{fit:?}: {}",
            report.summary()
        );
        pictures.push(first_picture_md5(&ffmpeg, &output));
    }
    // Left and right crops, black and blurred bars: four different pictures.
    pictures.sort();
    pictures.dedup();
    assert_eq!(pictures.len(), 4, "each fit changes the picture");
}

/// MD5 of the first decoded picture.
fn first_picture_md5(ffmpeg: &Path, path: &Path) -> String {
    let out = std::process::Command::new(ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(path)
        .args(["-frames:v", "1", "-f", "md5", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
