//! HEVC over SRT (issue 14) with real peers on 127.0.0.1: ffmpeg publishes
//! libx265 + AAC in MPEG-TS over SRT with a passphrase to the real
//! `antenne` binary, which carries it inside as Enhanced RTMP `hvc1`. An
//! SRT destination (an `ffmpeg` SRT listener) must receive decodable HEVC,
//! the ingest API must say `hevc`, and an RTMP destination must record the
//! Enhanced RTMP stream (Debian's ffmpeg 5.1 cannot read Enhanced RTMP
//! FLV, so that recording is read with antenne-media's FLV reader and HEVC
//! configuration parser).
//!
//! The RTMP destination is Node-Media-Server 4, not nginx-rtmp: Debian's
//! nginx-rtmp (1.2.2) records no Enhanced RTMP video at all. Its record
//! module skips video until a tag whose first byte's high nibble is 1 (a
//! legacy key frame); an Enhanced RTMP key frame's is 9 (`0x91`), so it
//! never starts (ngx_rtmp_record_module.c, `ngx_rtmp_record_node_av`).
//!
//! Also: an SRT destination that its server refuses (wrong passphrase or
//! stream id) says so.
//!
//! The SRT publisher and receiver here follow tests/srt.rs (which keeps
//! its own copies).

mod support;

use std::time::Duration;

use antenne_media::flv::{FlvReader, Tag, TagKind};
use antenne_media::hevc::HevcConfig;
use anyhow::{Context, Result};
use serde_json::json;
use support::*;

const KEY: &str = "srt_hevc_ingest_key_0123456789";
const PASSPHRASE: &str = "srt-hevc-passphrase-0123";

/// ffmpeg publishing 256x144 at 15 fps, a keyframe every 15 frames, in
/// libx265 (B-frames, closed GOPs) + AAC, as MPEG-TS over SRT.
fn hevc_publisher(url: &str) -> Result<SrtPublisher> {
    let opts = Publisher::options()
        .size(256, 144)
        .fps(15)
        .video_kbps(300)
        // After the support publisher's libx264 options: the last -c:v
        // wins; -g/-keyint_min/-b:v apply to libx265 as they are.
        .arg("-c:v")
        .arg("libx265")
        .arg("-x265-params")
        .arg("log-level=error:bframes=2:rc-lookahead=4:open-gop=0");
    SrtPublisher::start(opts, url)
}

/// The video tags of an FLV file, read with antenne-media's reader.
fn flv_video_tags(path: &std::path::Path) -> Result<Vec<Tag>> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut reader = FlvReader::default();
    let mut rest = &data[..];
    let mut tags = Vec::new();
    loop {
        let n = reader.feed(rest);
        rest = &rest[n..];
        let mut progressed = n > 0;
        while let Some(tag) = reader.poll_tag()? {
            progressed = true;
            if tag.kind == TagKind::Video {
                tags.push(tag);
            }
        }
        if rest.is_empty() || !progressed {
            // The file may end in a tag nginx is still writing.
            return Ok(tags);
        }
    }
}

/// What a viewer of an SRT destination checks: HEVC of this size and AAC,
/// from a keyframe, timestamps going forward, at least 2 s, and ffmpeg
/// decodes it without an error.
fn assert_good_hevc(path: &std::path::Path, size: (u32, u32)) -> Result<()> {
    let report = analyze(path)?;
    let what = report.summary();
    assert_eq!(report.video_codec.as_deref(), Some("hevc"), "{what}");
    assert_eq!(
        (report.width, report.height),
        (Some(size.0), Some(size.1)),
        "{what}"
    );
    assert_eq!(report.audio_codec.as_deref(), Some("aac"), "{what}");
    assert!(
        report.first_video_is_keyframe(),
        "starts on a keyframe: {what}"
    );
    assert!(report.video_dts_monotonic(), "video goes forward: {what}");
    assert!(report.audio_dts_monotonic(), "audio goes forward: {what}");
    assert!(report.keyframe_count() >= 2, "{what}");
    assert!(report.video_duration_ms() >= 2000, "{what}");
    let errors = decode_errors(path)?;
    assert!(
        errors.trim().is_empty(),
        "decodes cleanly ({what}): {errors}"
    );
    Ok(())
}

#[test]
fn hevc_published_over_srt_reaches_srt_and_rtmp_destinations_as_hevc() -> Result<()> {
    let nms = NodeMediaServer::start()?;
    let (antenne, port) = start_with_srt(Antenne::options(), KEY)?;
    set_passphrase(&antenne, PASSPHRASE)?;

    let dest_port = free_port();
    let secret = "hevc-dest-passphrase-42";
    let receiver = SrtReceiver::start(dest_port, secret)?;
    let url =
        format!("srt://127.0.0.1:{dest_port}?streamid=hevc_dest&passphrase={secret}&latency=200");
    let srt_dest = antenne.add_destination("SRT out", &url, "", true)?;
    let rtmp_dest = antenne.add_destination("nms", &nms.url(), "hevc_rtmp", true)?;

    let publisher = hevc_publisher(&format!(
        "srt://127.0.0.1:{port}?streamid={KEY}&passphrase={PASSPHRASE}"
    ))?;
    // Destinations go live on the standby picture too: the publisher first.
    assert!(
        wait_until(Duration::from_secs(30), || antenne
            .ingest()
            .is_ok_and(|i| i["ingests"][0]["live"] == true)),
        "the SRT publisher is live: ffmpeg:\n{}\nantenne:\n{}",
        tail(&publisher.log(), 20),
        tail(&antenne.log(), 30)
    );
    for d in [&srt_dest, &rtmp_dest] {
        antenne
            .wait_for_state(&Antenne::id_of(d), "live", Duration::from_secs(60))
            .with_context(|| {
                format!(
                    "ffmpeg:\n{}\nreceiver:\n{}\nantenne:\n{}",
                    tail(&publisher.log(), 20),
                    tail(&receiver.child.log(), 20),
                    tail(&antenne.log(), 30)
                )
            })?;
    }

    // (b) The ingest card's API says what the publisher sends.
    let mut ingest = json!(null);
    let hevc = wait_until(Duration::from_secs(30), || {
        ingest = antenne.ingest().unwrap_or_default();
        let i = &ingest["ingests"][0];
        i["video_codec"] == "hevc"
            && i["audio_codec"] == "aac"
            // The size, from the SPS: MPEG-TS has no onMetaData.
            && i["width"] == 256
            && i["height"] == 144
    });
    assert!(
        hevc,
        "the ingest shows codecs hevc and aac: {ingest}\nffmpeg:\n{}\nantenne:\n{}",
        tail(&publisher.log(), 20),
        tail(&antenne.log(), 30)
    );
    // The hub sees the keyframes: one a second (15 frames at 15 fps).
    let keyframes = wait_until(Duration::from_secs(30), || {
        ingest = antenne.ingest().unwrap_or_default();
        ingest["ingests"][0]["keyframe_interval_s"].is_number()
    });
    let interval = ingest["ingests"][0]["keyframe_interval_s"]
        .as_f64()
        .unwrap_or_default();
    assert!(
        keyframes && (0.9..=1.1).contains(&interval),
        "keyframes every second: {ingest}"
    );

    // (a) The SRT destination: decodable HEVC 256x144 from a keyframe.
    assert!(
        wait_until(Duration::from_secs(60), || receiver.size() > 150_000),
        "the SRT receiver gets the stream: {}\nantenne:\n{}",
        tail(&receiver.child.log(), 20),
        tail(&antenne.log(), 30)
    );
    assert!(
        wait_until(Duration::from_secs(30), || nms.latest_size("hevc_rtmp")
            > 60_000),
        "NMS records the stream: {}",
        tail(&nms.log(), 20)
    );
    let mut receiver = receiver;
    receiver.child.terminate(Duration::from_secs(5));
    assert_good_hevc(&receiver.out, (256, 144))?;

    // (c) The RTMP destination recorded the Enhanced RTMP stream: an hvc1
    // SequenceStart whose record describes the picture, then a keyframe.
    let rec = nms
        .recordings("hevc_rtmp")
        .pop()
        .context("an NMS recording")?;
    let video = flv_video_tags(&rec)?;
    anyhow::ensure!(video.len() > 10, "video tags in {}", rec.display());
    let first = &video[0].body;
    assert_eq!(
        first[..5],
        *b"\x90hvc1",
        "the first video tag is an hvc1 SequenceStart"
    );
    let config = HevcConfig::parse(&first[5..]).context("its record parses")?;
    assert_eq!((config.sps.width, config.sps.height), (256, 144));
    assert_eq!(config.parameter_sets.len(), 3, "VPS, SPS, PPS");
    let second = &video[1].body;
    assert_eq!(
        (second[0], &second[1..5]),
        (0x91, &b"hvc1"[..]),
        "then a keyframe's CodedFrames"
    );
    let keyframes = video.iter().filter(|t| t.body[0] == 0x91).count();
    assert!(keyframes >= 2, "{keyframes} keyframes recorded");
    assert!(
        video.iter().all(|t| t.body.get(1..5) == Some(&b"hvc1"[..])),
        "every video tag is hvc1"
    );

    let log = antenne.log();
    assert!(!log.contains(PASSPHRASE), "the passphrase is not logged");
    assert!(
        !log.contains(secret),
        "the destination passphrase is not logged"
    );
    Ok(())
}

/// A destination whose SRT server refuses the handshake shows why, in the
/// user's words, and is "rejected" (retried slowly, as a platform refusing
/// an RTMP key), not "retrying" with a bare connect error.
#[test]
fn an_srt_destination_refused_for_its_passphrase_or_stream_id_says_why() -> Result<()> {
    // A second antenne is the SRT server: its ingest checks the stream id
    // (its key) and the passphrase during the handshake.
    let (server, port) = start_with_srt(Antenne::options(), KEY)?;
    set_passphrase(&server, PASSPHRASE)?;
    let source_key = "srt_refused_source_key_0123";
    let antenne = Antenne::options()
        .ingest_key(source_key)
        .arg("--srt-listen")
        .arg("")
        .start()?;
    let url = |stream_id: &str, passphrase: Option<&str>| {
        let mut u = format!("srt://127.0.0.1:{port}?streamid={stream_id}");
        if let Some(p) = passphrase {
            u.push_str(&format!("&passphrase={p}"));
        }
        u
    };
    let cases = [
        (url(KEY, Some("not-the-passphrase-0")), "wrong passphrase"),
        (url(KEY, None), "a passphrase is required by the server"),
        (
            url("not_the_key_0123456789", Some(PASSPHRASE)),
            "wrong stream id or key",
        ),
    ];
    let mut ids = Vec::new();
    for (i, (u, _)) in cases.iter().enumerate() {
        let d = antenne.add_destination(&format!("SRT {i}"), u, "", true)?;
        ids.push(Antenne::id_of(&d));
    }
    let _publisher = Publisher::options()
        .size(160, 90)
        .start(&antenne.ingest_url(source_key))?;
    for (id, (_, why)) in ids.iter().zip(&cases) {
        let d = antenne
            .wait_for_state(id, "rejected", Duration::from_secs(60))
            .with_context(|| format!("{why}: antenne:\n{}", tail(&antenne.log(), 20)))?;
        let error = d["status"]["error"].as_str().unwrap_or_default();
        let expected = format!("rejected by the SRT server 127.0.0.1:{port}: {why}");
        assert!(error.starts_with(&expected), "{why}: {d}");
        assert!(
            d["status"]["next_retry_at"].is_string(),
            "a slow retry is planned: {d}"
        );
    }
    // The server saw the wrong key; nothing went live there.
    assert_eq!(server.ingest()?["ingests"][0]["live"], false);
    let log = antenne.log();
    assert!(!log.contains(PASSPHRASE), "the passphrase is not logged");
    assert!(!log.contains("not-the-passphrase-0"));
    Ok(())
}

/// HEVC as OBS 30+ sends it over RTMP (Enhanced RTMP `hvc1`) reaches an
/// SRT destination. The RTMP publisher is a first antenne relaying an SRT
/// HEVC ingest to a second antenne's RTMP ingest (Debian's ffmpeg 5.1
/// cannot publish HEVC over RTMP), whose SRT destination an ffmpeg SRT
/// listener receives.
#[test]
fn hevc_over_enhanced_rtmp_reaches_an_srt_destination() -> Result<()> {
    let second_key = "rtmp_hevc_second_key_0123456";
    let second = Antenne::options()
        .ingest_key(second_key)
        .arg("--srt-listen")
        .arg("")
        .start()?;
    let dest_port = free_port();
    let secret = "second-dest-passphrase-7";
    let receiver = SrtReceiver::start(dest_port, secret)?;
    let srt_dest = second.add_destination(
        "SRT out",
        &format!("srt://127.0.0.1:{dest_port}?streamid=out&passphrase={secret}"),
        "",
        true,
    )?;

    let (first, port) = start_with_srt(Antenne::options(), KEY)?;
    set_passphrase(&first, PASSPHRASE)?;
    let rtmp = second.ingest_url(second_key);
    let base = rtmp.trim_end_matches(second_key).trim_end_matches('/');
    first.add_destination("second antenne", base, second_key, true)?;
    let publisher = hevc_publisher(&format!(
        "srt://127.0.0.1:{port}?streamid={KEY}&passphrase={PASSPHRASE}"
    ))?;

    // The second antenne's ingest: live, HEVC, over RTMP.
    let mut ingest = json!(null);
    let hevc = wait_until(Duration::from_secs(60), || {
        ingest = second.ingest().unwrap_or_default();
        let i = &ingest["ingests"][0];
        i["live"] == true && i["video_codec"] == "hevc" && i["audio_codec"] == "aac"
    });
    assert!(
        hevc,
        "the second antenne takes HEVC over RTMP: {ingest}\nffmpeg:\n{}\nfirst:\n{}\nsecond:\n{}",
        tail(&publisher.log(), 10),
        tail(&first.log(), 20),
        tail(&second.log(), 20)
    );
    second.wait_for_state(&Antenne::id_of(&srt_dest), "live", Duration::from_secs(30))?;
    assert!(
        wait_until(Duration::from_secs(60), || receiver.size() > 150_000),
        "the SRT receiver gets the stream: {}\nsecond:\n{}",
        tail(&receiver.child.log(), 20),
        tail(&second.log(), 30)
    );
    let mut receiver = receiver;
    receiver.child.terminate(Duration::from_secs(5));
    assert_good_hevc(&receiver.out, (256, 144))
}
