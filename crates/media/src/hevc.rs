//! HEVC (H.265) decoder configuration from untrusted bytes: the parts of a
//! sequence parameter set (ITU-T H.265 §7.3.2.2) that the
//! HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 §8.3.3.1, the `hvcC`
//! body, which Enhanced RTMP's `hvc1` SequenceStart carries) repeats, the
//! record built from one VPS, SPS and PPS ([`decoder_configuration_record`]),
//! and the record read back ([`HevcConfig::parse`]).
//!
//! How HEVC travels in antenne: inside, as Enhanced RTMP `hvc1` bodies
//! (what OBS sends, and what [`crate::ts::to_flv`] makes of an SRT
//! publisher's MPEG-TS); on MPEG-TS (SRT destinations, [`crate::ts::mux`]),
//! as stream type 0x24 with Annex B access units.
//!
//! Invariants: every function takes any bytes without panicking; the SPS
//! is read on its RBSP (emulation prevention bytes removed) with the bit
//! reader of [`crate::fmp4::codec`] (one reader in this crate); lengths are
//! checked against what remains; output is at most the input plus a fixed
//! header.

use bytes::{BufMut, Bytes, BytesMut};

use crate::fmp4::codec::{rbsp, Bits};

/// NAL unit types (H.265 Table 7-1) antenne looks at.
pub const NAL_VPS: u8 = 32;
pub const NAL_SPS: u8 = 33;
pub const NAL_PPS: u8 = 34;
/// Access unit delimiter.
pub const NAL_AUD: u8 = 35;

/// The type of an HEVC NAL unit (with its two-byte header).
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| (b >> 1) & 0x3f)
}

/// Is this NAL unit a parameter set (VPS, SPS, PPS)?
pub fn is_parameter_set(nal: &[u8]) -> bool {
    matches!(nal_type(nal), Some(NAL_VPS | NAL_SPS | NAL_PPS))
}

/// Why an HEVC configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HevcError {
    #[error("the HEVC sequence parameter set is truncated or malformed")]
    BadSps,
    #[error("the HEVC video parameter set is empty, too long or not a VPS")]
    BadVps,
    #[error("the HEVC picture parameter set is empty, too long or not a PPS")]
    BadPps,
    #[error("the HEVC configuration record is truncated or malformed")]
    BadRecord,
}

/// What an HEVC SPS says that the configuration record repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sps {
    /// general_profile_space (2 bits), general_tier_flag (1),
    /// general_profile_idc (5), as one byte.
    pub profile: u8,
    /// general_profile_compatibility_flags.
    pub compatibility: u32,
    /// The 48 bits of general constraint indicator flags.
    pub constraints: [u8; 6],
    pub level: u8,
    /// sps_max_sub_layers_minus1 + 1.
    pub temporal_layers: u8,
    pub temporal_id_nested: bool,
    pub chroma_format_idc: u8,
    pub bit_depth_luma_minus8: u8,
    pub bit_depth_chroma_minus8: u8,
    /// The picture size, conformance window applied.
    pub width: u32,
    pub height: u32,
}

impl Sps {
    /// Reads an SPS NAL unit (with its two-byte header).
    pub fn parse(nal: &[u8]) -> Result<Sps, HevcError> {
        parse_sps(nal).ok_or(HevcError::BadSps)
    }

    /// general_profile_idc.
    pub fn profile_idc(&self) -> u8 {
        self.profile & 0x1f
    }
}

fn parse_sps(nal: &[u8]) -> Option<Sps> {
    if nal_type(nal)? != NAL_SPS || nal.len() < 3 {
        return None;
    }
    let data = rbsp(&nal[2..]);
    let mut b = Bits::new(&data);
    b.read(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = b.read(3)?;
    if max_sub_layers_minus1 > 6 {
        return None;
    }
    let temporal_id_nested = b.bit()? == 1;
    // profile_tier_level(1, sps_max_sub_layers_minus1)
    let profile = b.read(8)? as u8;
    let compatibility = b.read(32)?;
    let mut constraints = [0u8; 6];
    for c in &mut constraints {
        *c = b.read(8)? as u8;
    }
    let level = b.read(8)? as u8;
    let mut present = [(false, false); 7];
    for p in present.iter_mut().take(max_sub_layers_minus1 as usize) {
        *p = (b.bit()? == 1, b.bit()? == 1);
    }
    if max_sub_layers_minus1 > 0 {
        for _ in max_sub_layers_minus1..8 {
            b.read(2)?; // reserved_zero_2bits
        }
    }
    for &(profile_present, level_present) in present.iter().take(max_sub_layers_minus1 as usize) {
        if profile_present {
            // sub_layer profile space, tier, idc, compatibility, flags.
            for _ in 0..11 {
                b.read(8)?;
            }
        }
        if level_present {
            b.read(8)?;
        }
    }
    if b.ue()? > 15 {
        return None; // sps_seq_parameter_set_id
    }
    let chroma_format_idc = b.ue()?;
    if chroma_format_idc > 3 {
        return None;
    }
    let separate_planes = chroma_format_idc == 3 && b.bit()? == 1;
    let width = u64::from(b.ue()?);
    let height = u64::from(b.ue()?);
    let [l, r, t, bo] = b.crop_window()?;
    let (sub_w, sub_h) = match (chroma_format_idc, separate_planes) {
        (1, _) => (2, 2),
        (2, _) => (2, 1),
        _ => (1, 1),
    };
    let width = width.checked_sub(sub_w * (l + r))?;
    let height = height.checked_sub(sub_h * (t + bo))?;
    if width == 0 || height == 0 || width > 16384 || height > 16384 {
        return None;
    }
    let bit_depth_luma_minus8 = b.ue()?;
    let bit_depth_chroma_minus8 = b.ue()?;
    // Three bits each in the record (H.265 allows 0 to 8: 16-bit video).
    if bit_depth_luma_minus8 > 7 || bit_depth_chroma_minus8 > 7 {
        return None;
    }
    Some(Sps {
        profile,
        compatibility,
        constraints,
        level,
        temporal_layers: max_sub_layers_minus1 as u8 + 1,
        temporal_id_nested,
        chroma_format_idc: chroma_format_idc as u8,
        bit_depth_luma_minus8: bit_depth_luma_minus8 as u8,
        bit_depth_chroma_minus8: bit_depth_chroma_minus8 as u8,
        width: width as u32,
        height: height as u32,
    })
}

/// A parameter set of type `want` that a record can hold (two-byte
/// header, at most 65535 bytes).
fn check_set(nal: &[u8], want: u8) -> bool {
    nal.len() >= 3 && nal.len() <= usize::from(u16::MAX) && nal_type(nal) == Some(want)
}

/// The HEVCDecoderConfigurationRecord for one VPS, SPS and PPS (NAL units
/// with their headers): general profile, tier, level and constraints,
/// chroma format and bit depths from the SPS, no spatial segmentation or
/// parallelism information, frame rate unknown, 4-byte NAL lengths, then
/// one complete array each of VPS, SPS and PPS.
pub fn decoder_configuration_record(
    vps: &[u8],
    sps: &[u8],
    pps: &[u8],
) -> Result<Bytes, HevcError> {
    if !check_set(vps, NAL_VPS) {
        return Err(HevcError::BadVps);
    }
    if !check_set(sps, NAL_SPS) {
        return Err(HevcError::BadSps);
    }
    if !check_set(pps, NAL_PPS) {
        return Err(HevcError::BadPps);
    }
    let s = Sps::parse(sps)?;
    let mut out = BytesMut::with_capacity(23 + 15 + vps.len() + sps.len() + pps.len());
    out.put_u8(1); // configurationVersion
    out.put_u8(s.profile);
    out.put_u32(s.compatibility);
    out.put_slice(&s.constraints);
    out.put_u8(s.level);
    out.put_u16(0xf000); // min_spatial_segmentation_idc 0
    out.put_u8(0xfc); // parallelismType 0 (unknown)
    out.put_u8(0xfc | s.chroma_format_idc);
    out.put_u8(0xf8 | s.bit_depth_luma_minus8);
    out.put_u8(0xf8 | s.bit_depth_chroma_minus8);
    out.put_u16(0); // avgFrameRate: unknown
                    // constantFrameRate 0, numTemporalLayers, temporalIdNested,
                    // lengthSizeMinusOne 3.
    out.put_u8((s.temporal_layers << 3) | (u8::from(s.temporal_id_nested) << 2) | 3);
    out.put_u8(3); // numOfArrays
    for (kind, nal) in [(NAL_VPS, vps), (NAL_SPS, sps), (NAL_PPS, pps)] {
        out.put_u8(0x80 | kind); // array_completeness 1
        out.put_u16(1);
        out.put_u16(nal.len() as u16);
        out.put_slice(nal);
    }
    Ok(out.freeze())
}

/// An HEVCDecoderConfigurationRecord, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcConfig {
    /// Bytes of each NAL unit's length in the frames (1, 2 or 4).
    pub nal_length: usize,
    /// The parameter sets of the arrays, VPS first, then SPS, then PPS
    /// (the order a decoder needs them in).
    pub parameter_sets: Vec<Bytes>,
    /// The first SPS.
    pub sps: Sps,
}

impl HevcConfig {
    /// Reads a record; it must hold at least a VPS, an SPS that parses and
    /// a PPS. Other arrays (SEI) are skipped.
    pub fn parse(record: &[u8]) -> Result<HevcConfig, HevcError> {
        let bad = HevcError::BadRecord;
        if record.len() < 23 || record[0] != 1 {
            return Err(bad);
        }
        let nal_length = usize::from(record[21] & 3) + 1;
        if nal_length == 3 {
            return Err(bad);
        }
        let mut sets: [Vec<Bytes>; 3] = Default::default();
        let mut at = 23;
        let u16_at = |at: usize| -> Result<usize, HevcError> {
            let b = record.get(at..at + 2).ok_or(HevcError::BadRecord)?;
            Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
        };
        for _ in 0..record[22] {
            let kind = *record.get(at).ok_or(HevcError::BadRecord)? & 0x3f;
            let count = u16_at(at + 1)?;
            at += 3;
            for _ in 0..count {
                let len = u16_at(at)?;
                let nal = record
                    .get(at + 2..at + 2 + len)
                    .ok_or(HevcError::BadRecord)?;
                at += 2 + len;
                if let Some(list) = kind
                    .checked_sub(NAL_VPS)
                    .and_then(|i| sets.get_mut(usize::from(i)))
                {
                    if nal_type(nal) == Some(kind) {
                        list.push(Bytes::copy_from_slice(nal));
                    }
                }
            }
        }
        if sets.iter().any(Vec::is_empty) {
            return Err(bad);
        }
        let sps = Sps::parse(&sets[1][0]).map_err(|_| HevcError::BadRecord)?;
        Ok(HevcConfig {
            nal_length,
            parameter_sets: sets.into_iter().flatten().collect(),
            sps,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;
