//! `antenne-bench multitrack-publish`: a dev-only test publisher that
//! mimics the framing of OBS's multitrack video output (flv-mux.c). It is
//! not OBS: it only re-frames two ordinary FLV clips (H.264 + AAC, as
//! ffmpeg writes them) and plays them in real time on one connection, clip
//! 1 as track 0 (legacy tags, unchanged) and clip 2 as track 1 (Enhanced
//! RTMP one-track multitrack tags), interleaved by timestamp on one clock.
//!
//! Invariants: every track's sequence headers go before its first frame
//! (they sort first at their timestamp); clip 2's `onMetaData` is not sent
//! (OBS's describes track 0 only); payloads are never re-encoded.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use antenne_rtmp::multitrack::{self, PacketType, TrackKind};
use bytes::{BufMut, Bytes, BytesMut};
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::clip::{Clip, Kind, Tag};
use crate::publisher::{self, AbortOnDrop};

/// Publishes two FLV clips as one OBS-style multitrack stream.
#[derive(Debug, Parser)]
#[command(name = "antenne-bench multitrack-publish")]
pub struct Cli {
    /// Track 0: sent as ordinary (legacy) tags.
    #[arg(long)]
    track0: PathBuf,
    /// Track 1: sent as Enhanced RTMP one-track multitrack tags.
    #[arg(long)]
    track1: PathBuf,
    /// `rtmp://host:port/app/stream`.
    #[arg(long)]
    url: String,
    /// Sends no audio on track 1, as OBS does with one AAC encoder in its
    /// Config Override (the vertical canvas then has video only; the
    /// audio is track 0's).
    #[arg(long)]
    track1_video_only: bool,
}

pub fn main(args: impl Iterator<Item = String>) -> Result<(), String> {
    let cli = Cli::try_parse_from(args).map_err(|e| e.to_string())?;
    let read = |p: &PathBuf| {
        let data = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
        Clip::parse(&data).map_err(|e| format!("{}: {e}", p.display()))
    };
    let tags = interleave(
        &read(&cli.track0)?,
        &read(&cli.track1)?,
        cli.track1_video_only,
    )?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(publish(&cli.url, tags))
}

/// Clip 1 as is, clip 2 as track 1, ordered by timestamp (stable: at equal
/// timestamps track 0 first, each clip in its own order).
fn interleave(track0: &Clip, track1: &Clip, video_only: bool) -> Result<Vec<Tag>, String> {
    let mut tags: Vec<Tag> = track0.tags.clone();
    for t in &track1.tags {
        let payload = match t.kind {
            Kind::Meta => continue,
            Kind::Audio if video_only => continue,
            Kind::Video => as_track(TrackKind::Video, &t.payload, 1)?,
            Kind::Audio => as_track(TrackKind::Audio, &t.payload, 1)?,
        };
        tags.push(Tag {
            payload,
            ..t.clone()
        });
    }
    tags.sort_by_key(|t| t.ts);
    Ok(tags)
}

/// A legacy AVC/AAC body as OBS frames it for track `id` > 0.
pub fn as_track(kind: TrackKind, body: &Bytes, id: u8) -> Result<Bytes, String> {
    let parsed = match kind {
        TrackKind::Video => multitrack::parse_video(body),
        TrackKind::Audio => multitrack::parse_audio(body),
    };
    let p = parsed
        .map_err(|e| format!("clip tag: {e}"))?
        .into_iter()
        .next()
        .ok_or("clip tag: no packet")?;
    let mut out = BytesMut::with_capacity(body.len() + 8);
    match kind {
        TrackKind::Video => {
            // CodedFramesX (3) when the CTS is 0, as OBS does.
            let packet_type = match (p.packet, p.cts) {
                (PacketType::SequenceStart, _) => 0,
                (PacketType::CodedFrames, 0) => 3,
                (PacketType::CodedFrames, _) => 1,
                (PacketType::SequenceEnd, _) => 2,
                (PacketType::Metadata, _) => 4,
            };
            let frame_type = if p.packet == PacketType::SequenceStart {
                1
            } else {
                p.frame_type
            };
            out.put_u8(0x80 | frame_type << 4 | 6);
            out.put_u8(packet_type);
            out.put_slice(&p.codec);
            out.put_u8(id);
            if packet_type == 1 {
                out.put_slice(&p.cts.to_be_bytes()[1..]);
            }
        }
        TrackKind::Audio => {
            let packet_type = match p.packet {
                PacketType::SequenceStart => 0,
                _ => 1,
            };
            out.put_u8(0x95);
            out.put_u8(packet_type);
            out.put_slice(&p.codec);
            out.put_u8(id);
        }
    }
    out.put_slice(&p.payload);
    Ok(out.freeze())
}

async fn publish(url: &str, tags: Vec<Tag>) -> Result<(), String> {
    let (tcp, session) = publisher::connect(url).await?;
    let (mut rd, mut wr) = tcp.into_split();
    let session = Arc::new(Mutex::new(session));
    let reader = {
        let session = session.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n @ 1..) = rd.read(&mut buf).await {
                let mut s = session.lock().unwrap_or_else(|p| p.into_inner());
                if s.feed(&buf[..n]).is_err() {
                    break;
                }
            }
        })
    };
    let _abort = AbortOnDrop(reader.abort_handle());
    let start = Instant::now();
    let mut parts = Vec::new();
    let mut out = BytesMut::new();
    for tag in &tags {
        tokio::time::sleep_until(start + Duration::from_millis(u64::from(tag.ts))).await;
        if reader.is_finished() {
            return Err("the relay closed the connection".into());
        }
        {
            let mut s = session.lock().unwrap_or_else(|p| p.into_inner());
            match tag.kind {
                Kind::Meta => s.metadata_parts(tag.ts, &tag.payload, &mut parts),
                Kind::Audio => s.media_parts(false, tag.ts, &tag.payload, &mut parts),
                Kind::Video => s.media_parts(true, tag.ts, &tag.payload, &mut parts),
            }
        }
        out.clear();
        for p in parts.drain(..) {
            out.extend_from_slice(&p);
        }
        wr.write_all(&out)
            .await
            .map_err(|e| format!("write to the relay: {e}"))?;
    }
    wr.flush().await.map_err(|e| e.to_string())?;
    // Let the relay take the last frames before the connection closes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_legacy_tags_as_obs_does_for_track_one() {
        let t = |kind, v: &[u8]| as_track(kind, &Bytes::copy_from_slice(v), 1).expect("frames");
        assert_eq!(
            &t(TrackKind::Video, &[0x17, 0, 0, 0, 0, 1, 0x64])[..],
            &[0x96, 0, b'a', b'v', b'c', b'1', 1, 1, 0x64]
        );
        assert_eq!(
            &t(TrackKind::Video, &[0x27, 1, 0, 0, 66, 9])[..],
            &[0xa6, 1, b'a', b'v', b'c', b'1', 1, 0, 0, 66, 9]
        );
        assert_eq!(
            &t(TrackKind::Video, &[0x17, 1, 0, 0, 0, 9])[..],
            &[0x96, 3, b'a', b'v', b'c', b'1', 1, 9]
        );
        assert_eq!(
            &t(TrackKind::Audio, &[0xaf, 1, 7])[..],
            &[0x95, 1, b'm', b'p', b'4', b'a', 1, 7]
        );
    }
}
