//! Repackages an FLV file (H.264 + AAC) as fragmented MP4, through the
//! same muxer recordings use: `cargo run -p antenne-media --example
//! flv_to_fmp4 IN.flv OUT.mp4`. For checking the muxer with ffprobe.

use antenne_media::flv::{FlvReader, ReaderLimits, TagKind};
use antenne_media::fmp4::{codec, AacConfig, AudioPacket, AvcConfig, Muxer, VideoPacket};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (input, output) = match &args[..] {
        [_, i, o] => (i, o),
        _ => return Err("usage: flv_to_fmp4 IN.flv OUT.mp4".into()),
    };
    let data = std::fs::read(input)?;
    let mut reader = FlvReader::new(ReaderLimits::default());
    let mut tags = Vec::new();
    let mut rest = &data[..];
    while !rest.is_empty() {
        let n = reader.feed(rest);
        rest = &rest[n..];
        while let Some(tag) = reader.poll_tag()? {
            tags.push(tag);
        }
    }
    let (mut video, mut audio) = (None, None);
    for t in &tags {
        match t.kind {
            TagKind::Video => {
                if let Some(VideoPacket::AvcConfig(c)) = codec::video_packet(&t.body) {
                    video.get_or_insert(AvcConfig::parse(c)?);
                }
            }
            TagKind::Audio => {
                if let Some(AudioPacket::AacConfig(c)) = codec::audio_packet(&t.body) {
                    audio.get_or_insert(AacConfig::parse(c)?);
                }
            }
            TagKind::Script => {}
        }
    }
    let mut mux = Muxer::new(video, audio, Default::default());
    let mut out = mux.init_segment().to_vec();
    for t in &tags {
        let ts = i64::from(t.timestamp);
        let frag = match t.kind {
            TagKind::Video => match codec::video_packet(&t.body) {
                Some(VideoPacket::AvcFrame {
                    keyframe,
                    cts,
                    data,
                }) => mux.push_video(ts, cts, keyframe, data),
                _ => None,
            },
            TagKind::Audio => match codec::audio_packet(&t.body) {
                Some(AudioPacket::AacFrame(data)) => mux.push_audio(ts, data),
                _ => None,
            },
            TagKind::Script => None,
        };
        out.extend(frag.iter().flat_map(|f| f.iter()));
    }
    out.extend(mux.finish().iter().flat_map(|f| f.iter()));
    std::fs::write(output, out)?;
    Ok(())
}
