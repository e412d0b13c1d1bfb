//! The MPEG-TS demuxer on a real file: ffmpeg writes a few seconds of
//! lavfi `testsrc` + `sine` as H.264 (with B-frames) + AAC in MPEG-TS, the
//! demuxer reads it in odd-sized pieces, and what it finds must match what
//! ffprobe finds: the same number of video and audio packets, the same
//! keyframes, the same timestamps; the FLV sequence headers built from it
//! must describe the picture and the audio ffmpeg was asked for.

mod support;

use std::path::{Path, PathBuf};
use support::run;

use antenne_media::fmp4::codec::{AacConfig, AvcConfig};
use antenne_media::ts::{convert, AccessUnit, Codec, Demuxer};

fn make_ts(dir: &Path) -> PathBuf {
    let path = dir.join("sample.ts");
    let out = path.to_str().expect("utf-8 path");
    let args = [
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        "4",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "25",
        "-bf",
        "2",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-f",
        "mpegts",
        out,
    ];
    run("ffmpeg", &args);
    path
}

/// (pts, dts, keyframe) of every packet of one stream, per ffprobe.
fn probe(path: &Path, stream: &str) -> Vec<(u64, u64, bool)> {
    let file = path.to_str().expect("utf-8 path");
    let args = [
        "-v",
        "error",
        "-select_streams",
        stream,
        "-show_entries",
        "packet=pts,dts,flags",
        "-of",
        "csv=p=0",
        file,
    ];
    run("ffprobe", &args)
        .0
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let pts = f[0].parse().expect("a pts");
            let dts = f[1].parse().expect("a dts");
            (pts, dts, f[2].contains('K'))
        })
        .collect()
}

#[test]
fn demuxes_an_ffmpeg_file_like_ffprobe() {
    let dir = std::env::temp_dir().join(format!("antenne-ts-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = make_ts(&dir);
    let bytes = std::fs::read(&path).expect("the .ts file");

    let mut demuxer = Demuxer::default();
    let mut units: Vec<AccessUnit> = Vec::new();
    for piece in bytes.chunks(1000) {
        let mut rest = piece;
        while !rest.is_empty() {
            let n = demuxer.feed(rest);
            rest = &rest[n..];
            units.extend(std::iter::from_fn(|| demuxer.poll()));
        }
    }
    demuxer.flush();
    units.extend(std::iter::from_fn(|| demuxer.poll()));
    let stats = demuxer.stats();
    assert_eq!(stats.dropped_pes, 0, "{stats:?}");
    assert_eq!(stats.skipped_bytes, 0, "{stats:?}");

    let video: Vec<_> = units.iter().filter(|u| u.codec == Codec::H264).collect();
    let audio: Vec<_> = units.iter().filter(|u| u.codec == Codec::Aac).collect();
    let want_video = probe(&path, "v:0");
    let want_audio = probe(&path, "a:0");
    assert_eq!(video.len(), 100, "4 s at 25 fps");
    assert_eq!(video.len(), want_video.len(), "video packets");
    let got: Vec<_> = video.iter().map(|u| (u.pts, u.dts, u.keyframe)).collect();
    assert_eq!(got, want_video, "video pts, dts and keyframes");
    assert_eq!(video.iter().filter(|u| u.keyframe).count(), 4);
    assert!(video.iter().any(|u| u.cts_ms() > 0), "B-frames reorder");
    assert_eq!(audio.len(), want_audio.len(), "audio frames");
    let got: Vec<_> = audio.iter().map(|u| u.pts).collect();
    let want: Vec<_> = want_audio.iter().map(|p| p.0).collect();
    assert_eq!(got, want, "audio pts");

    // What the hub would get.
    let (sps, pps) = convert::h264_parameter_sets(&video[0].data);
    let header = convert::avc_sequence_header(sps.expect("an SPS"), pps.expect("a PPS"))
        .expect("a sequence header");
    let avc = AvcConfig::parse(header.slice(5..)).expect("a valid record");
    assert_eq!((avc.width, avc.height), (320, 240));
    let asc = convert::aac_sequence_header(&audio[0].data).expect("an AudioSpecificConfig");
    let aac = AacConfig::parse(asc.slice(2..)).expect("a valid config");
    assert_eq!((aac.sample_rate, aac.object_type), (48000, 2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn finds_the_keyframes_of_an_hevc_file_like_ffprobe() {
    let dir = std::env::temp_dir().join(format!("antenne-ts-hevc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("hevc.ts");
    let out = path.to_str().expect("utf-8 path");
    let args = [
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=128x96:rate=25",
        "-t",
        "2",
        "-c:v",
        "libx265",
        "-preset",
        "ultrafast",
        "-g",
        "10",
        "-x265-params",
        "log-level=error",
        "-f",
        "mpegts",
        out,
    ];
    run("ffmpeg", &args);
    let bytes = std::fs::read(&path).expect("the .ts file");
    let mut demuxer = Demuxer::default();
    let mut units = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let n = demuxer.feed(rest);
        rest = &rest[n..];
        units.extend(std::iter::from_fn(|| demuxer.poll()));
    }
    demuxer.flush();
    units.extend(std::iter::from_fn(|| demuxer.poll()));
    assert!(units.iter().all(|u| u.codec == Codec::Hevc));
    let got: Vec<_> = units.iter().map(|u| (u.pts, u.dts, u.keyframe)).collect();
    let want = probe(&path, "v:0");
    assert_eq!(got.len(), 50, "2 s at 25 fps");
    assert_eq!(got, want, "pts, dts and keyframes");
    assert_eq!(units.iter().filter(|u| u.keyframe).count(), 5);
    let _ = std::fs::remove_dir_all(&dir);
}
