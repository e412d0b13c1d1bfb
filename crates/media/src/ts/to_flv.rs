//! A whole transport stream to the FLV tag bodies the hub takes, with one
//! timeline: what SRT ingest runs on the bytes a publisher sends.
//!
//! [`TsToFlv`] demuxes ([`super::Demuxer`]), then for H.264 sends an AVC
//! sequence header whenever the SPS/PPS change (encoders repeat them before
//! each IDR; the header goes out only when they differ) and holds video
//! back until the first one; for AAC an AudioSpecificConfig whenever the
//! ADTS header's configuration changes. Other codecs (HEVC) are counted and
//! not converted.
//!
//! Timestamps: 90 kHz DTS are unwrapped across the 33-bit wrap (each to the
//! nearest of the last one seen, audio and video alike), made relative to
//! the first one (so a stream starts at 0 as an RTMP one does) and given in
//! ms; a unit from before the first is clamped to 0. The composition offset
//! is PTS − DTS.
//!
//! Invariants (the input is untrusted): never panics; holds what the
//! demuxer holds (bounded by its [`Limits`]) plus one SPS, one PPS and one
//! AAC configuration; [`TsToFlv::push`] returns at most what the bytes
//! given carried, plus headers.

use bytes::Bytes;

use super::convert::{
    aac_frame_body, aac_sequence_header, avc_frame_body, avc_sequence_header, h264_parameter_sets,
    Adts,
};
use super::{AccessUnit, Codec, Demuxer, Limits, WRAP};
use crate::flv::{Tag, TagKind};

/// What [`TsToFlv`] dropped, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ConvertStats {
    /// Video before the first SPS/PPS, or with malformed ones.
    pub video_dropped: u64,
    /// ADTS frames that did not parse.
    pub audio_dropped: u64,
    /// Units of a codec the hub does not take (HEVC).
    pub unsupported: u64,
}

/// The converter; one per publisher connection.
#[derive(Debug)]
pub struct TsToFlv {
    demuxer: Demuxer,
    /// The first DTS (unwrapped): time 0.
    base: Option<i64>,
    /// The last DTS seen (unwrapped), to unwrap the next.
    last: i64,
    sps_pps: Option<(Bytes, Bytes)>,
    aac_config: Option<[u8; 2]>,
    stats: ConvertStats,
}

impl Default for TsToFlv {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl TsToFlv {
    pub fn new(limits: Limits) -> Self {
        Self {
            demuxer: Demuxer::new(limits),
            base: None,
            last: 0,
            sps_pps: None,
            aac_config: None,
            stats: ConvertStats::default(),
        }
    }

    /// Takes bytes of the stream (any chunking) and appends the tags they
    /// complete to `out`.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<Tag>) {
        loop {
            let n = self.demuxer.feed(data);
            data = &data[n..];
            while let Some(au) = self.demuxer.poll() {
                self.convert(au, out);
            }
            if data.is_empty() {
                break;
            }
        }
    }

    /// The end of the stream: converts what the demuxer still held.
    pub fn finish(&mut self, out: &mut Vec<Tag>) {
        self.demuxer.flush();
        while let Some(au) = self.demuxer.poll() {
            self.convert(au, out);
        }
    }

    pub fn stats(&self) -> ConvertStats {
        self.stats
    }

    pub fn demuxer(&self) -> &Demuxer {
        &self.demuxer
    }

    /// `dts` (90 kHz, 33 bits) in ms since the stream's first unit.
    fn timestamp(&mut self, dts: u64) -> u32 {
        let raw = (dts % WRAP) as i64;
        let wrap = WRAP as i64;
        let t = match self.base {
            None => {
                self.base = Some(raw);
                raw
            }
            Some(_) => {
                let mut t = self.last - self.last.rem_euclid(wrap) + raw;
                if t - self.last > wrap / 2 {
                    t -= wrap;
                } else if self.last - t > wrap / 2 {
                    t += wrap;
                }
                t
            }
        };
        self.last = t;
        let since = t - self.base.unwrap_or(t);
        (since.max(0) / 90).min(u32::MAX as i64) as u32
    }

    fn convert(&mut self, au: AccessUnit, out: &mut Vec<Tag>) {
        match au.codec {
            Codec::H264 => self.video(au, out),
            Codec::Aac => self.audio(au, out),
            Codec::Hevc => self.stats.unsupported += 1,
        }
    }

    fn video(&mut self, au: AccessUnit, out: &mut Vec<Tag>) {
        let timestamp = self.timestamp(au.dts);
        if let (Some(sps), Some(pps)) = h264_parameter_sets(&au.data) {
            let changed = self
                .sps_pps
                .as_ref()
                .is_none_or(|(s, p)| s[..] != *sps || p[..] != *pps);
            if changed {
                match avc_sequence_header(sps, pps) {
                    Ok(body) => {
                        self.sps_pps =
                            Some((Bytes::copy_from_slice(sps), Bytes::copy_from_slice(pps)));
                        out.push(Tag {
                            kind: TagKind::Video,
                            timestamp,
                            body,
                        });
                    }
                    Err(_) => {
                        self.stats.video_dropped += 1;
                        return;
                    }
                }
            }
        }
        if self.sps_pps.is_none() {
            self.stats.video_dropped += 1;
            return;
        }
        out.push(Tag {
            kind: TagKind::Video,
            timestamp,
            body: avc_frame_body(&au),
        });
    }

    fn audio(&mut self, au: AccessUnit, out: &mut Vec<Tag>) {
        let Some(adts) = Adts::parse(&au.data) else {
            self.stats.audio_dropped += 1;
            return;
        };
        let timestamp = self.timestamp(au.dts);
        let config = adts.audio_specific_config();
        if self.aac_config != Some(config) {
            match aac_sequence_header(&au.data) {
                Ok(body) => {
                    self.aac_config = Some(config);
                    out.push(Tag {
                        kind: TagKind::Audio,
                        timestamp,
                        body,
                    });
                }
                Err(_) => {
                    self.stats.audio_dropped += 1;
                    return;
                }
            }
        }
        match aac_frame_body(&au.data) {
            Ok(body) => out.push(Tag {
                kind: TagKind::Audio,
                timestamp,
                body,
            }),
            Err(_) => self.stats.audio_dropped += 1,
        }
    }
}
