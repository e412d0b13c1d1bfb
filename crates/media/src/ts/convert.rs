//! From what MPEG-TS carries to what the hub takes (FLV/RTMP message
//! bodies): H.264 Annex B access units to length-prefixed NAL units (AVCC)
//! behind a `0x17/0x27 0x01` header, SPS + PPS to an
//! AVCDecoderConfigurationRecord behind `0x17 0x00`, and AAC ADTS frames to
//! raw AAC behind `0xAF 0x01` with the AudioSpecificConfig behind
//! `0xAF 0x00`. HEVC access units become Enhanced RTMP `hvc1` bodies:
//! CodedFrames (`0x80 | frameType<<4 | 1`, `hvc1`, composition offset,
//! length-prefixed NAL units) and a SequenceStart (`0x90`, `hvc1`, the
//! HEVCDecoderConfigurationRecord of [`crate::hevc`]). Also the keyframe
//! test for H.264 and HEVC.
//!
//! Invariants: every function takes any bytes without panicking; SPS and
//! AudioSpecificConfig are checked with the parsers of [`crate::fmp4::codec`]
//! (one parser each in this crate); output is at most input plus headers.

use bytes::{BufMut, Bytes, BytesMut};

use crate::fmp4::codec::{sps_size, AacConfig};
use crate::hevc;

use super::AccessUnit;

/// The NAL units of an Annex B byte stream (start codes `00 00 01` or
/// `00 00 00 01`), without their start codes; empty ones are skipped.
pub fn annexb_nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    // Skip to the first start code.
    match find_start_code(rest) {
        Some((at, len)) => rest = &rest[at + len..],
        None => rest = &[],
    }
    std::iter::from_fn(move || loop {
        if rest.is_empty() {
            return None;
        }
        let (nal, next) = match find_start_code(rest) {
            Some((at, len)) => (&rest[..at], &rest[at + len..]),
            None => (rest, &[][..]),
        };
        rest = next;
        // Trailing zeros belong to the next start code (00 00 00 01).
        let end = nal.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        if end > 0 {
            return Some(&nal[..end]);
        }
    })
}

/// Position and length of the first `00 00 01`.
fn find_start_code(data: &[u8]) -> Option<(usize, usize)> {
    data.windows(3)
        .position(|w| w == [0, 0, 1])
        .map(|at| (at, 3))
}

/// Does this H.264 access unit (Annex B) hold an IDR picture?
pub fn h264_is_keyframe(data: &[u8]) -> bool {
    annexb_nal_units(data).any(|n| n[0] & 0x1f == 5)
}

/// Does this HEVC access unit (Annex B) hold an IRAP picture (BLA, IDR,
/// CRA: NAL unit types 16 to 21)?
pub fn hevc_is_keyframe(data: &[u8]) -> bool {
    annexb_nal_units(data).any(|n| (16..=21).contains(&((n[0] >> 1) & 0x3f)))
}

/// The last SPS and PPS of an H.264 access unit, if it carries them
/// (encoders repeat them before each IDR).
pub fn h264_parameter_sets(data: &[u8]) -> (Option<&[u8]>, Option<&[u8]>) {
    let (mut sps, mut pps) = (None, None);
    for nal in annexb_nal_units(data) {
        match nal[0] & 0x1f {
            7 => sps = Some(nal),
            8 => pps = Some(nal),
            _ => {}
        }
    }
    (sps, pps)
}

/// The last VPS, SPS and PPS of an HEVC access unit, each if it carries
/// one (encoders repeat them before each IRAP picture).
pub fn hevc_parameter_sets(data: &[u8]) -> [Option<&[u8]>; 3] {
    let mut sets = [None; 3];
    for nal in annexb_nal_units(data) {
        if let Some(i) = hevc::nal_type(nal)
            .and_then(|t| t.checked_sub(hevc::NAL_VPS))
            .filter(|&i| i < 3)
        {
            sets[usize::from(i)] = Some(nal);
        }
    }
    sets
}

/// The Enhanced RTMP video SequenceStart for HEVC: `0x90` (key frame,
/// SequenceStart), `hvc1`, then the HEVCDecoderConfigurationRecord of one
/// VPS, SPS and PPS.
pub fn hevc_sequence_start(vps: &[u8], sps: &[u8], pps: &[u8]) -> Result<Bytes, ConvertError> {
    let record = hevc::decoder_configuration_record(vps, sps, pps)?;
    let mut out = BytesMut::with_capacity(5 + record.len());
    out.put_u8(0x80 | (1 << 4) | ERTMP_SEQUENCE_START);
    out.put_slice(b"hvc1");
    out.put_slice(&record);
    Ok(out.freeze())
}

/// The Enhanced RTMP video body of an HEVC access unit: `0x80 |
/// frameType<<4 | CodedFrames` (frame type 1 for an IRAP picture, else 2),
/// `hvc1`, the composition offset in ms (24 bits), then its NAL units each
/// behind a 4-byte length. Access unit delimiters and parameter sets are
/// left out: `hvc1` carries them in the SequenceStart only.
pub fn hevc_frame_body(au: &AccessUnit) -> Bytes {
    let mut out = BytesMut::with_capacity(8 + au.data.len() + 16);
    let frame_type = if au.keyframe { 1 } else { 2 };
    out.put_u8(0x80 | (frame_type << 4) | ERTMP_CODED_FRAMES);
    out.put_slice(b"hvc1");
    let cts = au.cts_ms().clamp(-(1 << 23), (1 << 23) - 1);
    out.put_slice(&cts.to_be_bytes()[1..]);
    for nal in annexb_nal_units(&au.data) {
        if hevc::is_parameter_set(nal) || hevc::nal_type(nal) == Some(hevc::NAL_AUD) {
            continue;
        }
        out.put_u32(nal.len() as u32);
        out.put_slice(nal);
    }
    out.freeze()
}

/// Enhanced RTMP video packet types.
const ERTMP_SEQUENCE_START: u8 = 0;
const ERTMP_CODED_FRAMES: u8 = 1;

/// Why a conversion was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("the H.264 SPS is malformed: {0}")]
    BadSps(#[from] crate::fmp4::codec::CodecError),
    #[error("the H.264 PPS is empty, too long or not a PPS")]
    BadPps,
    #[error("not an AAC ADTS frame")]
    BadAdts,
    #[error(transparent)]
    Hevc(#[from] hevc::HevcError),
}

/// The FLV video sequence header (`0x17 0x00 0 0 0` then an
/// AVCDecoderConfigurationRecord) for one SPS and one PPS (NAL units with
/// their header byte, as [`h264_parameter_sets`] gives them).
pub fn avc_sequence_header(sps: &[u8], pps: &[u8]) -> Result<Bytes, ConvertError> {
    sps_size(sps)?;
    if sps.len() < 4 || sps.len() > usize::from(u16::MAX) {
        return Err(ConvertError::BadSps(crate::fmp4::codec::CodecError::BadSps));
    }
    if pps.is_empty() || pps[0] & 0x1f != 8 || pps.len() > usize::from(u16::MAX) {
        return Err(ConvertError::BadPps);
    }
    let mut out = BytesMut::with_capacity(16 + sps.len() + pps.len());
    out.put_slice(&[0x17, 0x00, 0, 0, 0]);
    // version, profile, compatibility, level, 4-byte lengths, one SPS.
    out.put_slice(&[1, sps[1], sps[2], sps[3], 0xff, 0xe1]);
    out.put_u16(sps.len() as u16);
    out.put_slice(sps);
    out.put_u8(1);
    out.put_u16(pps.len() as u16);
    out.put_slice(pps);
    Ok(out.freeze())
}

/// The FLV video body of an H.264 access unit: `0x17` (keyframe) or `0x27`,
/// `0x01`, the composition offset in ms (24 bits), then its NAL units each
/// behind a 4-byte length. Access unit delimiters are left out.
pub fn avc_frame_body(au: &AccessUnit) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + au.data.len() + 16);
    out.put_u8(if au.keyframe { 0x17 } else { 0x27 });
    out.put_u8(0x01);
    let cts = au.cts_ms().clamp(-(1 << 23), (1 << 23) - 1);
    out.put_slice(&cts.to_be_bytes()[1..]);
    for nal in annexb_nal_units(&au.data) {
        if nal[0] & 0x1f == 9 {
            continue;
        }
        out.put_u32(nal.len() as u32);
        out.put_slice(nal);
    }
    out.freeze()
}

/// An ADTS header (ISO/IEC 13818-7 / 14496-3 1.A.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adts {
    /// Audio object type (2 is AAC LC).
    pub object_type: u8,
    pub sampling_index: u8,
    pub channel_config: u8,
    /// 7, or 9 with a CRC.
    pub header_len: usize,
    /// Header and payload.
    pub frame_len: usize,
}

/// Sample rates by ADTS sampling frequency index.
const RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

impl Adts {
    /// Parses the header at the start of `data` (the frame itself may be
    /// longer than `data`).
    pub fn parse(data: &[u8]) -> Option<Adts> {
        let h = data.get(..7)?;
        if h[0] != 0xff || h[1] & 0xf6 != 0xf0 {
            return None;
        }
        let header_len = if h[1] & 1 == 1 { 7 } else { 9 };
        let object_type = (h[2] >> 6) + 1;
        let sampling_index = (h[2] >> 2) & 0x0f;
        RATES.get(usize::from(sampling_index))?;
        let channel_config = ((h[2] & 1) << 2) | (h[3] >> 6);
        let frame_len =
            (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        if frame_len < header_len {
            return None;
        }
        Some(Adts {
            object_type,
            sampling_index,
            channel_config,
            header_len,
            frame_len,
        })
    }

    pub fn sample_rate(&self) -> u32 {
        RATES[usize::from(self.sampling_index).min(RATES.len() - 1)]
    }

    /// The two-byte AudioSpecificConfig this header describes.
    pub fn audio_specific_config(&self) -> [u8; 2] {
        let ot = self.object_type;
        [
            ot << 3 | self.sampling_index >> 1,
            (self.sampling_index & 1) << 7 | (self.channel_config & 0x0f) << 3,
        ]
    }
}

/// The FLV audio sequence header (`0xAF 0x00` then the
/// AudioSpecificConfig) for the stream an ADTS frame belongs to.
pub fn aac_sequence_header(frame: &[u8]) -> Result<Bytes, ConvertError> {
    let adts = Adts::parse(frame).ok_or(ConvertError::BadAdts)?;
    let asc = adts.audio_specific_config();
    AacConfig::parse(Bytes::copy_from_slice(&asc)).map_err(|_| ConvertError::BadAdts)?;
    Ok(Bytes::from(vec![0xaf, 0x00, asc[0], asc[1]]))
}

/// The FLV audio body of one ADTS frame: `0xAF 0x01` then the raw AAC.
pub fn aac_frame_body(frame: &[u8]) -> Result<Bytes, ConvertError> {
    let adts = Adts::parse(frame).ok_or(ConvertError::BadAdts)?;
    let raw = frame
        .get(adts.header_len..adts.frame_len)
        .ok_or(ConvertError::BadAdts)?;
    let mut out = BytesMut::with_capacity(2 + raw.len());
    out.put_slice(&[0xaf, 0x01]);
    out.put_slice(raw);
    Ok(out.freeze())
}
