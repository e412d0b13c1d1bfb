//! Inspection of FLV audio and video tag bodies (the payload of RTMP audio
//! and video messages): is it a keyframe, a sequence header, which codec.
//!
//! Bodies are never rewritten: Enhanced RTMP (FourCC codecs such as HEVC and
//! AV1, sent by OBS 30+) passes through as it came; we only read the first
//! bytes to know how to cache and cut the stream.

/// What the first bytes of a video tag body say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoTag {
    pub keyframe: bool,
    /// Decoder configuration (AVC sequence header, Enhanced RTMP
    /// `SequenceStart`): must be cached and replayed to late joiners.
    pub sequence_header: bool,
    /// End-of-sequence marker: not media.
    pub end_of_sequence: bool,
    pub codec: VideoCodec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// Legacy FLV codec id (7 = AVC, 12 = HEVC by the unofficial
    /// extension, …).
    Legacy(u8),
    /// Enhanced RTMP FourCC (`hvc1`, `av01`, `vp09`, `avc1`).
    FourCc([u8; 4]),
}

impl VideoCodec {
    pub fn name(&self) -> String {
        match self {
            VideoCodec::Legacy(7) => "h264".into(),
            VideoCodec::Legacy(12) => "hevc".into(),
            VideoCodec::Legacy(2) => "h263".into(),
            VideoCodec::Legacy(4) => "vp6".into(),
            VideoCodec::Legacy(id) => format!("flv-codec-{id}"),
            VideoCodec::FourCc(cc) => match cc {
                b"avc1" => "h264".into(),
                b"hvc1" => "hevc".into(),
                b"av01" => "av1".into(),
                b"vp09" => "vp9".into(),
                other => String::from_utf8_lossy(other).into_owned(),
            },
        }
    }
}

/// Reads a video tag body; `None` for an empty body.
pub fn inspect_video(body: &[u8]) -> Option<VideoTag> {
    let first = *body.first()?;
    if first & 0x80 != 0 {
        // Enhanced RTMP: [1 bit IsExHeader][3 bits FrameType][4 bits PacketType][FourCC]
        let frame_type = (first >> 4) & 0x07;
        let packet_type = first & 0x0f;
        let fourcc = body
            .get(1..5)
            .map(|b| [b[0], b[1], b[2], b[3]])
            .unwrap_or([0; 4]);
        const SEQUENCE_START: u8 = 0;
        const SEQUENCE_END: u8 = 2;
        const METADATA: u8 = 4;
        // Frame type 5 is a command frame (no media).
        return Some(VideoTag {
            keyframe: frame_type == 1,
            sequence_header: packet_type == SEQUENCE_START,
            end_of_sequence: packet_type == SEQUENCE_END
                || packet_type == METADATA
                || frame_type == 5,
            codec: VideoCodec::FourCc(fourcc),
        });
    }
    let frame_type = first >> 4;
    let codec_id = first & 0x0f;
    // AVC/HEVC (legacy) carry an AVCPacketType byte: 0 = sequence header,
    // 1 = NALUs, 2 = end of sequence.
    let packet_type = if codec_id == 7 || codec_id == 12 {
        body.get(1).copied()
    } else {
        None
    };
    Some(VideoTag {
        keyframe: frame_type == 1,
        sequence_header: packet_type == Some(0),
        end_of_sequence: packet_type == Some(2) || frame_type == 5,
        codec: VideoCodec::Legacy(codec_id),
    })
}

/// What the first bytes of an audio tag body say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioTag {
    pub sequence_header: bool,
    pub codec: AudioCodec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    Legacy(u8),
    FourCc([u8; 4]),
}

impl AudioCodec {
    pub fn name(&self) -> String {
        match self {
            AudioCodec::Legacy(10) => "aac".into(),
            AudioCodec::Legacy(2) => "mp3".into(),
            AudioCodec::Legacy(11) => "speex".into(),
            AudioCodec::Legacy(id) => format!("flv-audio-{id}"),
            AudioCodec::FourCc(cc) => match cc {
                b"Opus" => "opus".into(),
                b"fLaC" => "flac".into(),
                b"ac-3" => "ac3".into(),
                b"ec-3" => "eac3".into(),
                b".mp3" => "mp3".into(),
                b"mp4a" => "aac".into(),
                other => String::from_utf8_lossy(other).into_owned(),
            },
        }
    }
}

/// Reads an audio tag body; `None` for an empty body.
pub fn inspect_audio(body: &[u8]) -> Option<AudioTag> {
    let first = *body.first()?;
    let format = first >> 4;
    if format == 9 {
        // Enhanced RTMP audio: [4 bits 9][4 bits AudioPacketType][FourCC]
        let packet_type = first & 0x0f;
        let fourcc = body
            .get(1..5)
            .map(|b| [b[0], b[1], b[2], b[3]])
            .unwrap_or([0; 4]);
        return Some(AudioTag {
            sequence_header: packet_type == 0,
            codec: AudioCodec::FourCc(fourcc),
        });
    }
    Some(AudioTag {
        sequence_header: format == 10 && body.get(1) == Some(&0),
        codec: AudioCodec::Legacy(format),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_avc_keyframes_and_sequence_headers() {
        let seq = inspect_video(&[0x17, 0x00, 0, 0, 0]).expect("tag");
        assert!(seq.keyframe && seq.sequence_header);
        assert_eq!(seq.codec.name(), "h264");
        let key = inspect_video(&[0x17, 0x01, 0, 0, 0]).expect("tag");
        assert!(key.keyframe && !key.sequence_header);
        let inter = inspect_video(&[0x27, 0x01, 0, 0, 0]).expect("tag");
        assert!(!inter.keyframe);
        assert!(inspect_video(&[]).is_none());
    }

    #[test]
    fn reads_enhanced_rtmp_hevc() {
        // IsExHeader | KeyFrame<<4 | SequenceStart, "hvc1"
        let seq = inspect_video(&[0x80 | 0x10, b'h', b'v', b'c', b'1']).expect("tag");
        assert!(seq.keyframe && seq.sequence_header);
        assert_eq!(seq.codec.name(), "hevc");
        // CodedFramesX (3), inter frame
        let inter = inspect_video(&[0x80 | 0x20 | 3, b'a', b'v', b'0', b'1']).expect("tag");
        assert!(!inter.keyframe && !inter.sequence_header);
        assert_eq!(inter.codec.name(), "av1");
    }

    #[test]
    fn reads_aac_sequence_headers() {
        assert!(
            inspect_audio(&[0xaf, 0x00, 0x12, 0x10])
                .expect("tag")
                .sequence_header
        );
        assert!(
            !inspect_audio(&[0xaf, 0x01, 1])
                .expect("tag")
                .sequence_header
        );
        assert_eq!(inspect_audio(&[0xaf, 1]).expect("tag").codec.name(), "aac");
    }

    #[test]
    fn truncated_bodies_do_not_panic() {
        assert!(inspect_video(&[0x80]).is_some());
        assert!(inspect_audio(&[0x90]).is_some());
        assert!(inspect_video(&[0x17]).is_some());
    }
}
