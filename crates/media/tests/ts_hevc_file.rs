//! HEVC through the whole SRT path on a real file: ffmpeg writes libx265
//! (B-frames) + AAC in MPEG-TS; [`TsToFlv`] turns it into the hub's tags
//! (Enhanced RTMP `hvc1`), [`TsMuxer`] turns those back into MPEG-TS (what
//! an SRT destination sends). ffprobe must find the same pictures,
//! keyframes and timing in the output, and ffmpeg must decode it without a
//! single error.

mod support;

use std::path::Path;
use support::run;

use antenne_media::flv::{Tag, TagKind};
use antenne_media::hevc::HevcConfig;
use antenne_media::ts::mux::TsMuxer;
use antenne_media::ts::to_flv::TsToFlv;

/// (pts, dts, keyframe) of every video packet, per ffprobe, in ms.
fn probe_video(path: &Path) -> Vec<(i64, i64, bool)> {
    let file = path.to_str().expect("utf-8 path");
    let (out, _) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts,dts,flags",
            "-of",
            "csv=p=0",
            file,
        ],
    );
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let pts: i64 = f[0].parse().expect("a pts");
            let dts: i64 = f[1].parse().expect("a dts");
            (pts / 90, dts / 90, f[2].contains('K'))
        })
        .collect()
}

fn stream_info(path: &Path) -> String {
    let file = path.to_str().expect("utf-8 path");
    run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
            file,
        ],
    )
    .0
}

#[test]
fn a_libx265_stream_survives_ts_to_hub_tags_and_back_and_decodes_cleanly() {
    let dir = std::env::temp_dir().join(format!("antenne-ts-hevc-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let input = dir.join("in.ts");
    run(
        "ffmpeg",
        &[
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=256x144:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "3",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=error:keyint=25:bframes=3",
            "-c:a",
            "aac",
            "-f",
            "mpegts",
            input.to_str().expect("utf-8 path"),
        ],
    );
    let bytes = std::fs::read(&input).expect("the .ts file");

    // TS → the hub's tags, in odd pieces as SRT messages come.
    let mut converter = TsToFlv::default();
    let mut tags: Vec<Tag> = Vec::new();
    for piece in bytes.chunks(1316) {
        converter.push(piece, &mut tags);
    }
    converter.finish(&mut tags);
    assert_eq!(converter.stats().video_dropped, 0);
    let video: Vec<&Tag> = tags.iter().filter(|t| t.kind == TagKind::Video).collect();
    assert_eq!(
        video[0].body[..5],
        *b"\x90hvc1",
        "an hvc1 SequenceStart first"
    );
    let config = HevcConfig::parse(&video[0].body[5..]).expect("its record parses");
    assert_eq!((config.sps.width, config.sps.height), (256, 144));
    assert_eq!(
        video.iter().filter(|t| t.body[0] == 0x90).count(),
        1,
        "one header: the parameter sets never change"
    );
    assert!(video.iter().all(|t| &t.body[1..5] == b"hvc1"));

    // The hub's tags → TS, as an SRT destination sends it.
    let mut muxer = TsMuxer::new();
    let mut ts = Vec::new();
    for t in &tags {
        let r = match t.kind {
            TagKind::Video => muxer.video(t.timestamp.into(), &t.body, &mut ts),
            TagKind::Audio => muxer.audio(t.timestamp.into(), &t.body, &mut ts),
            TagKind::Script => Ok(()),
        };
        r.expect("the muxer takes every tag");
    }
    let output = dir.join("out.ts");
    std::fs::write(&output, &ts).expect("write out.ts");

    let info = stream_info(&output);
    assert!(info.contains("hevc,256,144"), "{info}");
    assert!(info.contains("aac"), "{info}");
    let want = probe_video(&input);
    let got = probe_video(&output);
    assert_eq!(got.len(), 75, "3 s at 25 fps");
    assert_eq!(got.len(), want.len(), "the same pictures");
    let keys = |v: &[(i64, i64, bool)]| v.iter().map(|p| p.2).collect::<Vec<_>>();
    assert_eq!(keys(&got), keys(&want), "the same keyframes");
    assert!(got[0].2, "starts on a keyframe");
    // Timing, relative to the first picture (ms: FLV's unit).
    let rel = |v: &[(i64, i64, bool)]| {
        let base = v[0].1;
        v.iter()
            .map(|p| (p.0 - base, p.1 - base))
            .collect::<Vec<_>>()
    };
    for ((gp, gd), (wp, wd)) in rel(&got).into_iter().zip(rel(&want)) {
        assert!(
            (gp - wp).abs() <= 2 && (gd - wd).abs() <= 2,
            "{gp} {gd} vs {wp} {wd}"
        );
    }
    assert!(got.windows(2).all(|w| w[1].1 > w[0].1), "DTS go forward");
    assert!(got.iter().any(|p| p.0 > p.1), "B-frames reorder");

    let (_, errors) = run(
        "ffmpeg",
        &[
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-i",
            output.to_str().expect("utf-8 path"),
            "-f",
            "null",
            "-",
        ],
    );
    assert!(errors.trim().is_empty(), "decodes cleanly: {errors}");
    let _ = std::fs::remove_dir_all(&dir);
}
