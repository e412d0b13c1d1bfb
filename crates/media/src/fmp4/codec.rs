//! Decoder configuration from untrusted bytes: the H.264
//! AVCDecoderConfigurationRecord (`avcC`) with its first SPS (for the
//! picture size), the AAC AudioSpecificConfig (sample rate, channels), and
//! the FLV/RTMP audio and video packet headers that carry them.
//!
//! Invariants: every function here takes any bytes without panicking;
//! lengths are checked against what remains; Exp-Golomb codes longer than
//! 32 bits are an error; nothing recurses or allocates more than its input.

use bytes::Bytes;

/// Why a decoder configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("the H.264 configuration record is truncated or malformed")]
    BadAvcConfig,
    #[error("the H.264 sequence parameter set is truncated or malformed")]
    BadSps,
    #[error("the AAC AudioSpecificConfig is truncated or malformed")]
    BadAudioConfig,
}

/// H.264 decoder configuration, as MP4's `avcC` box carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    /// The whole AVCDecoderConfigurationRecord (the `avcC` body).
    pub record: Bytes,
    pub width: u32,
    pub height: u32,
    /// profile, compatibility, level (for the RFC 6381 codec string).
    pub profile: [u8; 3],
}

impl AvcConfig {
    /// Parses an AVCDecoderConfigurationRecord and its first SPS.
    pub fn parse(record: Bytes) -> Result<AvcConfig, CodecError> {
        let r = &record[..];
        if r.len() < 8 || r[0] != 1 {
            return Err(CodecError::BadAvcConfig);
        }
        let sps_count = r[5] & 0x1f;
        if sps_count == 0 {
            return Err(CodecError::BadAvcConfig);
        }
        let len = usize::from(u16::from_be_bytes([r[6], r[7]]));
        let sps = r.get(8..8 + len).ok_or(CodecError::BadAvcConfig)?;
        let (width, height) = sps_size(sps)?;
        let profile = [r[1], r[2], r[3]];
        Ok(AvcConfig {
            record,
            width,
            height,
            profile,
        })
    }

    /// RFC 6381 codec string (`avc1.64001f`), for Media Source Extensions.
    pub fn codec_string(&self) -> String {
        let [a, b, c] = self.profile;
        format!("avc1.{a:02x}{b:02x}{c:02x}")
    }
}

/// AAC decoder configuration (AudioSpecificConfig).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacConfig {
    pub config: Bytes,
    pub object_type: u8,
    pub sample_rate: u32,
    pub channels: u16,
}

const AAC_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

impl AacConfig {
    pub fn parse(config: Bytes) -> Result<AacConfig, CodecError> {
        let mut bits = Bits::new(&config);
        let bad = CodecError::BadAudioConfig;
        let mut object_type = bits.read(5).ok_or(bad.clone())? as u8;
        if object_type == 31 {
            object_type = 32 + bits.read(6).ok_or(bad.clone())? as u8;
        }
        let index = bits.read(4).ok_or(bad.clone())? as usize;
        let sample_rate = if index == 15 {
            bits.read(24).ok_or(bad.clone())?
        } else {
            *AAC_RATES.get(index).ok_or(bad.clone())?
        };
        let channels = bits.read(4).ok_or(bad.clone())? as u16;
        if sample_rate == 0 || object_type == 0 {
            return Err(bad);
        }
        Ok(AacConfig {
            config,
            object_type,
            sample_rate,
            // Channel configuration 0 (given in a program config element):
            // stereo is what decoders assume.
            channels: if channels == 0 { 2 } else { channels.min(8) },
        })
    }

    /// RFC 6381 codec string (`mp4a.40.2`).
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }
}

/// A video message body (FLV/RTMP), as far as MP4 needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoPacket {
    /// H.264 sequence header: the AVCDecoderConfigurationRecord.
    AvcConfig(Bytes),
    /// H.264 access unit (length-prefixed NAL units, as MP4 stores them).
    AvcFrame {
        keyframe: bool,
        /// Composition time offset, milliseconds.
        cts: i32,
        data: Bytes,
    },
    /// End of sequence, or a command frame: no media.
    Other,
    /// Another codec (HEVC, AV1, VP6…): not muxed.
    Unsupported,
}

/// Reads a video message body. `None`: too short to be one.
pub fn video_packet(body: &Bytes) -> Option<VideoPacket> {
    let first = *body.first()?;
    if first & 0x80 != 0 || first & 0x0f != 7 {
        // Enhanced RTMP (HEVC, AV1, …) or a legacy codec other than AVC.
        return Some(VideoPacket::Unsupported);
    }
    if first >> 4 == 5 {
        return Some(VideoPacket::Other);
    }
    if body.len() < 5 {
        return None;
    }
    let raw = u32::from_be_bytes([0, body[2], body[3], body[4]]);
    // Sign-extend the 24-bit composition time.
    let cts = ((raw << 8) as i32) >> 8;
    Some(match body[1] {
        0 => VideoPacket::AvcConfig(body.slice(5..)),
        1 => VideoPacket::AvcFrame {
            keyframe: first >> 4 == 1,
            cts,
            data: body.slice(5..),
        },
        _ => VideoPacket::Other,
    })
}

/// An audio message body (FLV/RTMP), as far as MP4 needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioPacket {
    /// AAC sequence header: the AudioSpecificConfig.
    AacConfig(Bytes),
    /// A raw AAC frame.
    AacFrame(Bytes),
    /// Another codec (MP3, Opus, …): not muxed.
    Unsupported,
}

pub fn audio_packet(body: &Bytes) -> Option<AudioPacket> {
    let first = *body.first()?;
    if first >> 4 != 10 {
        return Some(AudioPacket::Unsupported);
    }
    Some(match body.get(1)? {
        0 => AudioPacket::AacConfig(body.slice(2..)),
        _ => AudioPacket::AacFrame(body.slice(2..)),
    })
}

// === SPS ===

/// Bit reader over an RBSP (emulation prevention bytes removed); also
/// what [`crate::hevc`] reads the HEVC SPS with.
pub(crate) struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bits<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Bits { data, pos: 0 }
    }

    pub(crate) fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(b))
    }

    pub(crate) fn read(&mut self, n: u32) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Some(v)
    }

    /// Unsigned Exp-Golomb.
    pub(crate) fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.read(zeros)?;
        Some(((1u64 << zeros) - 1 + u64::from(rest)).min(u64::from(u32::MAX)) as u32)
    }

    /// An SPS's cropping window (H.264 `frame_cropping`, HEVC
    /// `conformance_window`): a flag, then left, right, top and bottom
    /// offsets (in chroma units) when it is set; zeros when it is not.
    pub(crate) fn crop_window(&mut self) -> Option<[u64; 4]> {
        let mut offsets = [0u64; 4];
        if self.bit()? == 1 {
            for o in &mut offsets {
                *o = self.ue()?.into();
            }
        }
        Some(offsets)
    }

    /// Signed Exp-Golomb.
    fn se(&mut self) -> Option<i64> {
        let k = i64::from(self.ue()?);
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

/// Removes emulation prevention bytes (`00 00 03` → `00 00`).
pub(crate) fn rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// The picture size an SPS NAL unit (with its header byte) describes.
pub fn sps_size(sps: &[u8]) -> Result<(u32, u32), CodecError> {
    sps_size_inner(sps).ok_or(CodecError::BadSps)
}

fn sps_size_inner(sps: &[u8]) -> Option<(u32, u32)> {
    if sps.first()? & 0x1f != 7 {
        return None;
    }
    let data = rbsp(&sps[1..]);
    let mut b = Bits::new(&data);
    let profile = b.read(8)?;
    b.read(16)?; // constraint flags, level
    b.ue()?; // seq_parameter_set_id
    let mut chroma = 1;
    let mut separate_planes = false;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma = b.ue()?;
        if chroma > 3 {
            return None;
        }
        if chroma == 3 {
            separate_planes = b.bit()? == 1;
        }
        b.ue()?; // bit_depth_luma_minus8
        b.ue()?; // bit_depth_chroma_minus8
        b.bit()?; // qpprime_y_zero_transform_bypass
        if b.bit()? == 1 {
            let lists = if chroma == 3 { 12 } else { 8 };
            for i in 0..lists {
                if b.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i64, 8i64);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + b.se()? + 256).rem_euclid(256);
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    b.ue()?; // log2_max_frame_num_minus4
    match b.ue()? {
        0 => {
            b.ue()?;
        }
        1 => {
            b.bit()?;
            b.se()?;
            b.se()?;
            let n = b.ue()?;
            if n > 255 {
                return None;
            }
            for _ in 0..n {
                b.se()?;
            }
        }
        _ => {}
    }
    b.ue()?; // max_num_ref_frames
    b.bit()?; // gaps_in_frame_num_allowed
    let width_mbs = u64::from(b.ue()?) + 1;
    let height_units = u64::from(b.ue()?) + 1;
    let frame_mbs_only = u64::from(b.bit()?);
    if frame_mbs_only == 0 {
        b.bit()?; // mb_adaptive_frame_field
    }
    b.bit()?; // direct_8x8_inference
    let [l, r, t, bo] = b.crop_window()?;
    let (sub_w, sub_h) = match (chroma, separate_planes) {
        (0, _) | (3, true) => (1, 1),
        (1, _) => (2, 2),
        (2, _) => (2, 1),
        _ => (1, 1),
    };
    let crop_x = sub_w * (l + r);
    let crop_y = sub_h * (2 - frame_mbs_only) * (t + bo);
    let width = (width_mbs * 16).checked_sub(crop_x)?;
    let height = ((2 - frame_mbs_only) * height_units * 16).checked_sub(crop_y)?;
    if width == 0 || height == 0 || width > 16384 || height > 16384 {
        return None;
    }
    Some((width as u32, height as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x264's avcC for 1280x720 High profile, as ffmpeg writes it.
    const AVCC_1280X720: &[u8] = &[
        0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40,
        0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0,
        0xf1, 0x83, 0x19, 0x60, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0, 0xfd, 0xf8,
        0xf8, 0x00,
    ];

    #[test]
    fn reads_the_picture_size_from_an_sps() {
        let c = AvcConfig::parse(Bytes::from_static(AVCC_1280X720)).expect("valid avcC");
        assert_eq!((c.width, c.height), (1280, 720));
        assert_eq!(c.codec_string(), "avc1.64001f");
    }

    #[test]
    fn reads_an_aac_lc_config() {
        let c = AacConfig::parse(Bytes::from_static(&[0x12, 0x10])).expect("valid ASC");
        assert_eq!((c.object_type, c.sample_rate, c.channels), (2, 44100, 2));
        assert_eq!(c.codec_string(), "mp4a.40.2");
    }

    #[test]
    fn refuses_truncated_configs_without_panicking() {
        for n in 0..AVCC_1280X720.len() {
            let _ = AvcConfig::parse(Bytes::copy_from_slice(&AVCC_1280X720[..n]));
        }
        assert!(AvcConfig::parse(Bytes::from_static(&AVCC_1280X720[..12])).is_err());
        assert!(AacConfig::parse(Bytes::new()).is_err());
        assert!(AacConfig::parse(Bytes::from_static(&[0xff])).is_err());
    }

    #[test]
    fn reads_flv_packet_headers() {
        let key = Bytes::from_static(&[0x17, 1, 0xff, 0xff, 0xfe, 9]);
        assert_eq!(
            video_packet(&key),
            Some(VideoPacket::AvcFrame {
                keyframe: true,
                cts: -2,
                data: Bytes::from_static(&[9])
            })
        );
        let hevc = Bytes::from_static(&[0x90, b'h', b'v', b'c', b'1']);
        assert_eq!(video_packet(&hevc), Some(VideoPacket::Unsupported));
        let mp3 = Bytes::from_static(&[0x2f, 1, 2]);
        assert_eq!(audio_packet(&mp3), Some(AudioPacket::Unsupported));
        assert_eq!(video_packet(&Bytes::new()), None);
    }
}
