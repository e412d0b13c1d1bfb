//! MPEG-TS muxer, sans-IO: FLV tag bodies (what the hub carries: AVC
//! sequence header / NAL units, AAC AudioSpecificConfig / raw frames) in,
//! 188-byte transport packets out. What an SRT destination sends.
//!
//! One program: PAT, PMT (PID [`PMT_PID`]) listing H.264 on [`VIDEO_PID`]
//! (also the PCR PID) and AAC ADTS on [`AUDIO_PID`]; PAT and PMT go out
//! first and again before each keyframe (a receiver joining late starts
//! there), or every [`PSI_EVERY_AUDIO`] audio frames without video. Video
//! access units are Annex B with an access unit delimiter, SPS and PPS
//! before each keyframe; audio frames get an ADTS header. Each PES packet
//! starts a transport packet (PUSI) carrying the PCR on video and the
//! random access flag on keyframes; continuity counters run per PID.
//!
//! Timestamps: ms in, 90 kHz out, DTS = ms × 90 + [`DELAY_90K`] (PCR = ms
//! × 90, so the PCR leads decoding by that much), wrapped at 33 bits.
//!
//! Invariants: never panics on any body; a body it cannot use (not AVC or
//! AAC, truncated, before its sequence header) is refused with an error
//! and writes nothing; output is the body plus bounded headers.

use bytes::Bytes;

use super::psi::crc32_mpeg2;
use super::{PACKET_SIZE, SYNC, WRAP};

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
    #[error("not an H.264 (AVC) video body")]
    NotAvc,
    #[error("not an AAC audio body")]
    NotAac,
    #[error("a malformed sequence header")]
    BadHeader,
    #[error("media before its sequence header")]
    NoHeader,
    #[error("a truncated NAL unit")]
    Truncated,
}

#[derive(Debug, Clone)]
struct Avc {
    sps: Vec<Bytes>,
    pps: Vec<Bytes>,
    nal_length: usize,
}

/// The muxer; one per output connection.
#[derive(Debug, Default)]
pub struct TsMuxer {
    /// Continuity counters: PAT, PMT, video, audio.
    cc: [u8; 4],
    avc: Option<Avc>,
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

    /// A video tag body (`0x17/0x27`, AVC packet type, composition time,
    /// data) at `dts_ms`; appends its packets to `out`.
    pub fn video(&mut self, dts_ms: i64, body: &[u8], out: &mut Vec<u8>) -> Result<(), MuxError> {
        let (&first, rest) = body.split_first().ok_or(MuxError::NotAvc)?;
        if first & 0x0f != 7 || rest.len() < 4 {
            return Err(MuxError::NotAvc);
        }
        let keyframe = first >> 4 == 1;
        let packet_type = rest[0];
        let cts = i32::from_be_bytes([
            if rest[1] & 0x80 != 0 { 0xff } else { 0 },
            rest[1],
            rest[2],
            rest[3],
        ]);
        let data = &rest[4..];
        match packet_type {
            0 => {
                self.avc = Some(parse_avcc(data)?);
                Ok(())
            }
            1 => {
                let avc = self.avc.as_ref().ok_or(MuxError::NoHeader)?;
                let mut es = Vec::with_capacity(data.len() + 64);
                es.extend_from_slice(&[0, 0, 0, 1, 0x09, 0xf0]);
                let nals = split_nals(data, avc.nal_length)?;
                let has_sps = nals
                    .iter()
                    .any(|n| n.first().is_some_and(|b| b & 0x1f == 7));
                if keyframe && !has_sps {
                    for ps in avc.sps.iter().chain(avc.pps.iter()) {
                        es.extend_from_slice(&[0, 0, 0, 1]);
                        es.extend_from_slice(ps);
                    }
                }
                for nal in nals {
                    if nal.first().is_some_and(|b| b & 0x1f == 9) {
                        continue;
                    }
                    es.extend_from_slice(&[0, 0, 0, 1]);
                    es.extend_from_slice(nal);
                }
                if keyframe || !self.psi_sent {
                    self.psi(out);
                }
                let dts = to_90k(dts_ms);
                let pts = to_90k(dts_ms + i64::from(cts));
                let pcr = (dts + WRAP - DELAY_90K) % WRAP;
                let pes = pes(0xe0, pts, Some(dts), &es, false);
                self.packets(VIDEO_PID, &pes, Some(pcr), keyframe, out);
                Ok(())
            }
            // End of sequence: nothing to send.
            2 => Ok(()),
            _ => Err(MuxError::NotAvc),
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
                if !self.psi_sent || (self.avc.is_none() && self.audio_since_psi >= PSI_EVERY_AUDIO)
                {
                    self.psi(out);
                }
                let pts = to_90k(dts_ms);
                // Without video the PCR rides on the audio PES.
                let pcr = self
                    .avc
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
        let pat = section(0, 1, &[0, 1, 0xe0 | (PMT_PID >> 8) as u8, PMT_PID as u8]);
        self.packets(0, &pat, None, false, out);
        // PCR PID: video. Without video yet, audio carries the PCR.
        let pcr_pid = if self.avc.is_none() && self.aac.is_some() {
            AUDIO_PID
        } else {
            VIDEO_PID
        };
        let mut pmt = vec![0xe0 | (pcr_pid >> 8) as u8, pcr_pid as u8, 0xf0, 0x00];
        for (t, pid) in [(0x1b, VIDEO_PID), (0x0f, AUDIO_PID)] {
            pmt.extend_from_slice(&[t, 0xe0 | (pid >> 8) as u8, pid as u8, 0xf0, 0]);
        }
        let pmt = section(2, 1, &pmt);
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
fn section(table_id: u8, id: u16, body: &[u8]) -> Vec<u8> {
    let len = 5 + body.len() + 4;
    let mut s = vec![
        table_id,
        0xb0 | (len >> 8) as u8,
        len as u8,
        (id >> 8) as u8,
        id as u8,
        0xc1,
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
fn parse_avcc(r: &[u8]) -> Result<Avc, MuxError> {
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
    Ok(Avc {
        sps,
        pps,
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
mod tests {
    use super::super::to_flv::TsToFlv;
    use super::super::{Codec, Demuxer};
    use super::*;
    use crate::flv::TagKind;

    /// An SPS ffmpeg's libx264 writes for 320x240 (High profile).
    const SPS: [u8; 25] = [
        0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
        0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0x99, 0x60,
    ];
    const PPS: [u8; 6] = [0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

    fn avc_header() -> Vec<u8> {
        let mut b = vec![0x17, 0, 0, 0, 0, 1, SPS[1], SPS[2], SPS[3], 0xff, 0xe1];
        b.extend_from_slice(&(SPS.len() as u16).to_be_bytes());
        b.extend_from_slice(&SPS);
        b.push(1);
        b.extend_from_slice(&(PPS.len() as u16).to_be_bytes());
        b.extend_from_slice(&PPS);
        b
    }

    fn frame(key: bool, cts: u8, size: usize) -> Vec<u8> {
        let mut b = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, cts];
        b.extend_from_slice(&(size as u32 + 1).to_be_bytes());
        b.push(if key { 0x65 } else { 0x41 });
        b.extend((0..size).map(|i| (i % 200 + 1) as u8));
        b
    }

    fn stream() -> Vec<u8> {
        let mut m = TsMuxer::new();
        let mut out = Vec::new();
        m.video(0, &avc_header(), &mut out).unwrap();
        m.audio(0, &[0xaf, 0, 0x11, 0x90], &mut out).unwrap();
        m.video(0, &frame(true, 66, 3000), &mut out).unwrap();
        m.audio(0, &[0xaf, 1, 1, 2, 3], &mut out).unwrap();
        m.video(33, &frame(false, 0, 183 - 23), &mut out).unwrap();
        m.audio(21, &[0xaf, 1, 4, 5, 6], &mut out).unwrap();
        m.video(66, &frame(false, 0, 10), &mut out).unwrap();
        m.video(100, &frame(true, 0, 500), &mut out).unwrap();
        out
    }

    #[test]
    fn writes_whole_packets_with_continuous_counters() {
        let out = stream();
        assert_eq!(out.len() % PACKET_SIZE, 0);
        let mut d = Demuxer::default();
        d.feed(&out);
        d.flush();
        let s = d.stats();
        assert_eq!(
            (s.discontinuities, s.dropped_pes, s.skipped_bytes),
            (0, 0, 0)
        );
    }

    #[test]
    fn the_demuxer_reads_back_what_it_wrote() {
        let mut d = Demuxer::default();
        d.feed(&stream());
        d.flush();
        let units: Vec<_> = std::iter::from_fn(|| d.poll()).collect();
        let video: Vec<_> = units.iter().filter(|u| u.codec == Codec::H264).collect();
        let audio: Vec<_> = units.iter().filter(|u| u.codec == Codec::Aac).collect();
        assert_eq!(video.len(), 4);
        assert_eq!(audio.len(), 2);
        assert!(video[0].keyframe && !video[1].keyframe && video[3].keyframe);
        assert_eq!(video[0].dts, DELAY_90K);
        assert_eq!(video[0].cts_ms(), 66);
        assert_eq!(video[1].dts, DELAY_90K + 33 * 90);
        assert_eq!(audio[1].pts, DELAY_90K + 21 * 90);
        // AUD, then SPS and PPS before the keyframe.
        assert_eq!(&video[0].data[..6], &[0, 0, 0, 1, 0x09, 0xf0]);
        assert_eq!(&video[0].data[10..10 + SPS.len()], &SPS);
    }

    #[test]
    fn round_trips_through_ts_to_flv() {
        let mut c = TsToFlv::default();
        let mut tags = Vec::new();
        c.push(&stream(), &mut tags);
        c.finish(&mut tags);
        let video: Vec<_> = tags.iter().filter(|t| t.kind == TagKind::Video).collect();
        assert_eq!(video[0].body[..], avc_header()[..]);
        let times: Vec<u32> = video.iter().map(|t| t.timestamp).collect();
        assert_eq!(times, vec![0, 0, 33, 66, 100]);
        let audio: Vec<_> = tags.iter().filter(|t| t.kind == TagKind::Audio).collect();
        assert_eq!(audio[0].body[..], [0xaf, 0, 0x11, 0x90]);
        assert_eq!(audio[2].body[..], [0xaf, 1, 4, 5, 6]);
    }

    #[test]
    fn refuses_media_before_its_header_and_bodies_it_cannot_read() {
        let mut m = TsMuxer::new();
        let mut out = Vec::new();
        assert_eq!(
            m.video(0, &frame(true, 0, 10), &mut out),
            Err(MuxError::NoHeader)
        );
        assert_eq!(m.audio(0, &[0xaf, 1, 1], &mut out), Err(MuxError::NoHeader));
        assert_eq!(
            m.video(0, &[0x12, 1, 0, 0, 0], &mut out),
            Err(MuxError::NotAvc)
        );
        assert_eq!(
            m.video(0, &[0x17, 0, 0, 0, 0, 1], &mut out),
            Err(MuxError::BadHeader)
        );
        m.video(0, &avc_header(), &mut out).unwrap();
        let mut cut = frame(true, 0, 10);
        cut.truncate(12);
        assert_eq!(m.video(0, &cut, &mut out), Err(MuxError::Truncated));
        assert!(out.is_empty());
    }
}
