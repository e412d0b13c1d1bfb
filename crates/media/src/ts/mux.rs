//! MPEG-TS muxer, sans-IO: FLV tag bodies (what the hub carries: AVC
//! sequence header / NAL units, legacy or Enhanced RTMP `avc1`; HEVC as
//! Enhanced RTMP `hvc1` SequenceStart / CodedFrames / CodedFramesX or as
//! legacy codec id 12; AAC AudioSpecificConfig / raw frames) in, 188-byte
//! transport packets out. What an SRT destination sends.
//!
//! One program: PAT, PMT (PID [`PMT_PID`]) listing the video on
//! [`VIDEO_PID`] (H.264, stream type 0x1B, or HEVC, 0x24; also the PCR PID)
//! and AAC ADTS on [`AUDIO_PID`]; PAT and PMT go out first and again before
//! each keyframe (a receiver joining late starts there), or every
//! [`PSI_EVERY_AUDIO`] audio frames without video; a new PMT version when
//! the video codec changes. Video access units are Annex B with an access
//! unit delimiter first and the parameter sets (SPS and PPS; VPS, SPS and
//! PPS for HEVC) before each keyframe; audio frames get an ADTS header. Each PES packet
//! starts a transport packet (PUSI) carrying the PCR on video and the
//! random access flag on keyframes; continuity counters run per PID.
//!
//! Timestamps: ms in, 90 kHz out, DTS = ms × 90 + [`DELAY_90K`] (PCR = ms
//! × 90, so the PCR leads decoding by that much), wrapped at 33 bits.
//!
//! Invariants: never panics on any body; a body it cannot use (not H.264,
//! HEVC or AAC, truncated, before its sequence header) is refused with an
//! error and writes nothing; output is the body plus bounded headers.

use bytes::Bytes;

use super::psi::crc32_mpeg2;
use super::{PACKET_SIZE, SYNC, WRAP};
use crate::hevc::{self, HevcConfig};

pub const PMT_PID: u16 = 0x1000;
pub const VIDEO_PID: u16 = 0x100;
pub const AUDIO_PID: u16 = 0x101;
/// PAT and PMT again after this many audio frames when there is no video.
pub const PSI_EVERY_AUDIO: u32 = 40;
/// How far decoding time trails the PCR (0.2 s, in 90 kHz).
pub const DELAY_90K: u64 = 18_000;

/// Why a body was not muxed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MuxError {
    #[error("not an H.264 or HEVC video body")]
    NotVideo,
    #[error("not an AAC audio body")]
    NotAac,
    #[error("a malformed sequence header")]
    BadHeader,
    #[error("media before its sequence header")]
    NoHeader,
    #[error("a truncated NAL unit")]
    Truncated,
}

/// The video codecs the muxer takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VideoCodec {
    Avc,
    Hevc,
}

impl VideoCodec {
    fn stream_type(self) -> u8 {
        match self {
            VideoCodec::Avc => 0x1b,
            VideoCodec::Hevc => 0x24,
        }
    }

    /// An access unit delimiter (any picture type), with its start code.
    fn aud(self) -> &'static [u8] {
        match self {
            VideoCodec::Avc => &[0, 0, 0, 1, 0x09, 0xf0],
            VideoCodec::Hevc => &[0, 0, 0, 1, hevc::NAL_AUD << 1, 0x01, 0x50],
        }
    }

    fn is_aud(self, nal: &[u8]) -> bool {
        match self {
            VideoCodec::Avc => nal.first().is_some_and(|b| b & 0x1f == 9),
            VideoCodec::Hevc => hevc::nal_type(nal) == Some(hevc::NAL_AUD),
        }
    }

    fn is_sps(self, nal: &[u8]) -> bool {
        match self {
            VideoCodec::Avc => nal.first().is_some_and(|b| b & 0x1f == 7),
            VideoCodec::Hevc => hevc::nal_type(nal) == Some(hevc::NAL_SPS),
        }
    }
}

/// A video sequence header, read.
#[derive(Debug, Clone)]
struct VideoConfig {
    codec: VideoCodec,
    /// What goes before a keyframe, in order (SPS, PPS; VPS, SPS, PPS).
    parameter_sets: Vec<Bytes>,
    nal_length: usize,
}

/// What a video tag body carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Packet {
    /// A sequence header (AVCDecoderConfigurationRecord or
    /// HEVCDecoderConfigurationRecord).
    Config,
    /// Length-prefixed NAL units.
    Frame,
    /// End of sequence, metadata, a command frame: nothing to send.
    Nothing,
}

/// A video tag body, legacy (`0x17 0x01 …`, codec id 7 or 12) or
/// Enhanced RTMP single-track (`0x91 hvc1 …`).
#[derive(Debug, Clone, Copy)]
struct VideoBody<'a> {
    codec: VideoCodec,
    packet: Packet,
    keyframe: bool,
    /// Composition time offset, ms.
    cts: i32,
    data: &'a [u8],
}

/// The FLV video frame type of a (generated) keyframe, and of a command
/// frame.
const KEY: [u8; 2] = [1, 4];
const COMMAND: u8 = 5;

fn s24(b: &[u8]) -> i32 {
    i32::from_be_bytes([if b[0] & 0x80 != 0 { 0xff } else { 0 }, b[0], b[1], b[2]])
}

fn read_video(body: &[u8]) -> Result<VideoBody<'_>, MuxError> {
    let (&first, rest) = body.split_first().ok_or(MuxError::NotVideo)?;
    let mut v = VideoBody {
        codec: VideoCodec::Avc,
        packet: Packet::Nothing,
        keyframe: false,
        cts: 0,
        data: &[],
    };
    let frame_type = if first & 0x80 != 0 {
        // Enhanced RTMP: [1][frame type: 3][packet type: 4][FourCC].
        let (fourcc, rest) = rest.split_at_checked(4).ok_or(MuxError::NotVideo)?;
        v.codec = match fourcc {
            b"avc1" => VideoCodec::Avc,
            b"hvc1" => VideoCodec::Hevc,
            _ => return Err(MuxError::NotVideo),
        };
        match first & 0x0f {
            0 => (v.packet, v.data) = (Packet::Config, rest),
            1 => {
                let (cts, data) = rest.split_at_checked(3).ok_or(MuxError::Truncated)?;
                (v.packet, v.cts, v.data) = (Packet::Frame, s24(cts), data);
            }
            // CodedFramesX: no composition offset.
            3 => (v.packet, v.data) = (Packet::Frame, rest),
            // SequenceEnd, Metadata.
            2 | 4 => {}
            _ => return Err(MuxError::NotVideo),
        }
        (first >> 4) & 7
    } else {
        // Legacy: [frame type: 4][codec id: 4][packet type][cts: 24].
        v.codec = match first & 0x0f {
            7 => VideoCodec::Avc,
            12 => VideoCodec::Hevc,
            _ => return Err(MuxError::NotVideo),
        };
        if rest.len() < 4 {
            return Err(MuxError::NotVideo);
        }
        (v.cts, v.data) = (s24(&rest[1..4]), &rest[4..]);
        v.packet = match rest[0] {
            0 => Packet::Config,
            1 => Packet::Frame,
            2 => Packet::Nothing,
            _ => return Err(MuxError::NotVideo),
        };
        first >> 4
    };
    if frame_type == COMMAND {
        v.packet = Packet::Nothing;
    }
    v.keyframe = KEY.contains(&frame_type);
    Ok(v)
}

/// The muxer; one per output connection.
#[derive(Debug, Default)]
pub struct TsMuxer {
    /// Continuity counters: PAT, PMT, video, audio.
    cc: [u8; 4],
    video: Option<VideoConfig>,
    /// The version of the PMT and the video stream type it listed.
    pmt: Option<(u8, u8)>,
    /// Object type, sampling index, channel configuration.
    aac: Option<(u8, u8, u8)>,
    audio_since_psi: u32,
    psi_sent: bool,
}

fn cc_index(pid: u16) -> usize {
    match pid {
        0 => 0,
        PMT_PID => 1,
        VIDEO_PID => 2,
        _ => 3,
    }
}

impl TsMuxer {
    pub fn new() -> Self {
        Self::default()
    }

    /// A video tag body (legacy AVC or HEVC, or Enhanced RTMP `avc1` or
    /// `hvc1`) at `dts_ms`; appends its packets to `out`.
    pub fn video(&mut self, dts_ms: i64, body: &[u8], out: &mut Vec<u8>) -> Result<(), MuxError> {
        let v = read_video(body)?;
        match v.packet {
            Packet::Config => {
                self.video = Some(match v.codec {
                    VideoCodec::Avc => parse_avcc(v.data)?,
                    VideoCodec::Hevc => {
                        let c = HevcConfig::parse(v.data).map_err(|_| MuxError::BadHeader)?;
                        VideoConfig {
                            codec: VideoCodec::Hevc,
                            parameter_sets: c.parameter_sets,
                            nal_length: c.nal_length,
                        }
                    }
                });
                Ok(())
            }
            Packet::Frame => {
                let config = self
                    .video
                    .as_ref()
                    .filter(|c| c.codec == v.codec)
                    .ok_or(MuxError::NoHeader)?;
                let codec = config.codec;
                let nals = split_nals(v.data, config.nal_length)?;
                let mut es = Vec::with_capacity(v.data.len() + 64);
                es.extend_from_slice(codec.aud());
                if v.keyframe && !nals.iter().any(|n| codec.is_sps(n)) {
                    for ps in &config.parameter_sets {
                        es.extend_from_slice(&[0, 0, 0, 1]);
                        es.extend_from_slice(ps);
                    }
                }
                for nal in nals {
                    if codec.is_aud(nal) {
                        continue;
                    }
                    es.extend_from_slice(&[0, 0, 0, 1]);
                    es.extend_from_slice(nal);
                }
                if v.keyframe || !self.psi_sent {
                    self.psi(out);
                }
                let dts = to_90k(dts_ms);
                let pts = to_90k(dts_ms + i64::from(v.cts));
                let pcr = (dts + WRAP - DELAY_90K) % WRAP;
                let pes = pes(0xe0, pts, Some(dts), &es, false);
                self.packets(VIDEO_PID, &pes, Some(pcr), v.keyframe, out);
                Ok(())
            }
            Packet::Nothing => Ok(()),
        }
    }

    /// An audio tag body (`0xAF`, AAC packet type, data) at `dts_ms`.
    pub fn audio(&mut self, dts_ms: i64, body: &[u8], out: &mut Vec<u8>) -> Result<(), MuxError> {
        if body.len() < 2 || body[0] >> 4 != 10 {
            return Err(MuxError::NotAac);
        }
        let data = &body[2..];
        match body[1] {
            0 => {
                if data.len() < 2 {
                    return Err(MuxError::BadHeader);
                }
                let object_type = data[0] >> 3;
                let sampling = ((data[0] & 7) << 1) | (data[1] >> 7);
                let channels = (data[1] >> 3) & 0x0f;
                if !(1..=4).contains(&object_type) || sampling > 12 {
                    return Err(MuxError::BadHeader);
                }
                self.aac = Some((object_type, sampling, channels));
                Ok(())
            }
            1 => {
                let (ot, sampling, channels) = self.aac.ok_or(MuxError::NoHeader)?;
                let len = 7 + data.len();
                if len >= 1 << 13 {
                    return Err(MuxError::Truncated);
                }
                let mut es = Vec::with_capacity(len);
                es.extend_from_slice(&[
                    0xff,
                    0xf1,
                    ((ot - 1) << 6) | (sampling << 2) | (channels >> 2),
                    ((channels & 3) << 6) | (len >> 11) as u8,
                    (len >> 3) as u8,
                    ((len as u8 & 7) << 5) | 0x1f,
                    0xfc,
                ]);
                es.extend_from_slice(data);
                self.audio_since_psi += 1;
                if !self.psi_sent
                    || (self.video.is_none() && self.audio_since_psi >= PSI_EVERY_AUDIO)
                {
                    self.psi(out);
                }
                let pts = to_90k(dts_ms);
                // Without video the PCR rides on the audio PES.
                let pcr = self
                    .video
                    .is_none()
                    .then_some((pts + WRAP - DELAY_90K) % WRAP);
                let pes = pes(0xc0, pts, None, &es, true);
                self.packets(AUDIO_PID, &pes, pcr, false, out);
                Ok(())
            }
            _ => Err(MuxError::NotAac),
        }
    }

    /// PAT and PMT.
    fn psi(&mut self, out: &mut Vec<u8>) {
        self.psi_sent = true;
        self.audio_since_psi = 0;
        let pat = section(0, 1, 0, &[0, 1, 0xe0 | (PMT_PID >> 8) as u8, PMT_PID as u8]);
        self.packets(0, &pat, None, false, out);
        // PCR PID: video. Without video yet, audio carries the PCR.
        let pcr_pid = if self.video.is_none() && self.aac.is_some() {
            AUDIO_PID
        } else {
            VIDEO_PID
        };
        let video_type = self
            .video
            .as_ref()
            .map_or(VideoCodec::Avc, |c| c.codec)
            .stream_type();
        // A new version when the video codec changed, so that receivers
        // read the PMT again.
        let version = match self.pmt {
            Some((v, t)) if t != video_type => (v + 1) & 0x1f,
            Some((v, _)) => v,
            None => 0,
        };
        self.pmt = Some((version, video_type));
        let mut pmt = vec![0xe0 | (pcr_pid >> 8) as u8, pcr_pid as u8, 0xf0, 0x00];
        for (t, pid) in [(video_type, VIDEO_PID), (0x0f, AUDIO_PID)] {
            pmt.extend_from_slice(&[t, 0xe0 | (pid >> 8) as u8, pid as u8, 0xf0, 0]);
        }
        let pmt = section(2, 1, version, &pmt);
        self.packets(PMT_PID, &pmt, None, false, out);
    }

    /// Splits a PES (or a section with its pointer field) into packets.
    fn packets(
        &mut self,
        pid: u16,
        mut data: &[u8],
        pcr: Option<u64>,
        random_access: bool,
        out: &mut Vec<u8>,
    ) {
        let mut first = true;
        while first || !data.is_empty() {
            let cc = &mut self.cc[cc_index(pid)];
            let counter = *cc;
            *cc = (*cc + 1) & 0x0f;
            // Adaptation field content after its length byte.
            let mut af: Vec<u8> = Vec::new();
            if first && (pcr.is_some() || random_access) {
                let mut flags = 0;
                if random_access {
                    flags |= 0x40;
                }
                if pcr.is_some() {
                    flags |= 0x10;
                }
                af.push(flags);
                if let Some(base) = pcr {
                    af.extend_from_slice(&[
                        (base >> 25) as u8,
                        (base >> 17) as u8,
                        (base >> 9) as u8,
                        (base >> 1) as u8,
                        ((base as u8 & 1) << 7) | 0x7e,
                        0,
                    ]);
                }
            }
            let room = PACKET_SIZE - 4 - if af.is_empty() { 0 } else { 1 + af.len() };
            let take = data.len().min(room);
            let stuffing = room - take;
            let has_af = !af.is_empty() || stuffing > 0;
            if stuffing > 0 {
                if af.is_empty() {
                    // One byte: the length alone (0). More: flags too.
                    if stuffing >= 2 {
                        af.push(0);
                        af.extend(std::iter::repeat_n(0xff, stuffing - 2));
                    }
                } else {
                    af.extend(std::iter::repeat_n(0xff, stuffing));
                }
            }
            let start = out.len();
            out.extend_from_slice(&[
                SYNC,
                (u8::from(first) << 6) | (pid >> 8) as u8 & 0x1f,
                pid as u8,
                (if has_af { 0x30 } else { 0x10 }) | counter,
            ]);
            if has_af {
                out.push(af.len() as u8);
                out.extend_from_slice(&af);
            }
            out.extend_from_slice(&data[..take]);
            debug_assert_eq!(out.len() - start, PACKET_SIZE);
            data = &data[take..];
            first = false;
        }
    }
}

fn to_90k(ms: i64) -> u64 {
    ((ms.max(0) as u64) * 90 + DELAY_90K) % WRAP
}

/// A PSI section (pointer field first) with its CRC.
fn section(table_id: u8, id: u16, version: u8, body: &[u8]) -> Vec<u8> {
    let len = 5 + body.len() + 4;
    let mut s = vec![
        table_id,
        0xb0 | (len >> 8) as u8,
        len as u8,
        (id >> 8) as u8,
        id as u8,
        0xc1 | (version & 0x1f) << 1,
        0,
        0,
    ];
    s.extend_from_slice(body);
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    let mut out = vec![0];
    out.extend_from_slice(&s);
    out
}

fn timestamp(prefix: u8, t: u64) -> [u8; 5] {
    [
        (prefix << 4) | ((t >> 29) as u8 & 0x0e) | 1,
        (t >> 22) as u8,
        ((t >> 14) as u8 & 0xfe) | 1,
        (t >> 7) as u8,
        ((t << 1) as u8) | 1,
    ]
}

/// A PES packet; its length is written when it fits (always for audio),
/// else 0 (allowed for video).
fn pes(stream_id: u8, pts: u64, dts: Option<u64>, es: &[u8], bounded: bool) -> Vec<u8> {
    let mut h = Vec::with_capacity(19 + es.len());
    h.extend_from_slice(&[0, 0, 1, stream_id, 0, 0, 0x80]);
    match dts {
        Some(dts) if dts != pts => {
            h.extend_from_slice(&[0xc0, 10]);
            h.extend_from_slice(&timestamp(3, pts));
            h.extend_from_slice(&timestamp(1, dts));
        }
        _ => {
            h.extend_from_slice(&[0x80, 5]);
            h.extend_from_slice(&timestamp(2, pts));
        }
    }
    let len = h.len() - 6 + es.len();
    if bounded && len <= usize::from(u16::MAX) {
        h[4..6].copy_from_slice(&(len as u16).to_be_bytes());
    }
    h.extend_from_slice(es);
    h
}

/// SPS, PPS and NAL length size of an AVCDecoderConfigurationRecord.
fn parse_avcc(r: &[u8]) -> Result<VideoConfig, MuxError> {
    let bad = MuxError::BadHeader;
    if r.len() < 7 || r[0] != 1 {
        return Err(bad);
    }
    let nal_length = usize::from(r[4] & 3) + 1;
    let mut at = 5;
    let mut lists = [Vec::new(), Vec::new()];
    for (i, list) in lists.iter_mut().enumerate() {
        let count =
            usize::from(*r.get(at).ok_or(MuxError::BadHeader)?) & if i == 0 { 0x1f } else { 0xff };
        at += 1;
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes([
                *r.get(at).ok_or(MuxError::BadHeader)?,
                *r.get(at + 1).ok_or(MuxError::BadHeader)?,
            ]));
            at += 2;
            let ps = r.get(at..at + len).ok_or(MuxError::BadHeader)?;
            list.push(Bytes::copy_from_slice(ps));
            at += len;
        }
    }
    let [sps, pps] = lists;
    if sps.is_empty() || pps.is_empty() {
        return Err(bad);
    }
    Ok(VideoConfig {
        codec: VideoCodec::Avc,
        parameter_sets: sps.into_iter().chain(pps).collect(),
        nal_length,
    })
}

/// The NAL units of length-prefixed (AVCC) data.
fn split_nals(mut data: &[u8], size: usize) -> Result<Vec<&[u8]>, MuxError> {
    let mut nals = Vec::new();
    while !data.is_empty() {
        if data.len() < size {
            return Err(MuxError::Truncated);
        }
        let len = data[..size]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let nal = data.get(size..size + len).ok_or(MuxError::Truncated)?;
        if !nal.is_empty() {
            nals.push(nal);
        }
        data = &data[size + len..];
    }
    Ok(nals)
}

#[cfg(test)]
mod tests;
