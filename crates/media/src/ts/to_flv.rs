//! A whole transport stream to the FLV tag bodies the hub takes, with one
//! timeline: what SRT ingest runs on the bytes a publisher sends.
//!
//! [`TsToFlv`] demuxes ([`super::Demuxer`]), then for H.264 sends an AVC
//! sequence header whenever the SPS/PPS change (encoders repeat them before
//! each IDR; the header goes out only when they differ) and holds video
//! back until the first one; for HEVC likewise an Enhanced RTMP `hvc1`
//! SequenceStart whenever the VPS/SPS/PPS change, and `hvc1` CodedFrames
//! (see [`super::convert`]); for AAC an AudioSpecificConfig whenever the
//! ADTS header's configuration changes. MPEG-TS has no `onMetaData`: with
//! each new video header goes one made from the SPS (`width`, `height`),
//! which the ingest card shows and platforms read, as from an RTMP
//! publisher.
//!
//! Timestamps: 90 kHz DTS are unwrapped across the 33-bit wrap (each to the
//! nearest of the last one seen, audio and video alike), made relative to
//! the first one (so a stream starts at 0 as an RTMP one does) and given in
//! ms; a unit from before the first is clamped to 0. The composition offset
//! is PTS − DTS.
//!
//! Invariants (the input is untrusted): never panics; holds what the
//! demuxer holds (bounded by its [`Limits`]) plus one set of video
//! parameter sets (VPS, SPS, PPS) and one AAC configuration; [`TsToFlv::push`] returns at most what the bytes
//! given carried, plus headers.

use bytes::Bytes;

use super::convert::{
    aac_frame_body, aac_sequence_header, avc_frame_body, avc_sequence_header, h264_parameter_sets,
    hevc_frame_body, hevc_parameter_sets, hevc_sequence_start, Adts, ConvertError,
};
use super::{AccessUnit, Codec, Demuxer, Limits, WRAP};
use crate::flv::{Tag, TagKind};

/// What [`TsToFlv`] dropped, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ConvertStats {
    /// Video before the first parameter sets, or with malformed ones.
    pub video_dropped: u64,
    /// ADTS frames that did not parse.
    pub audio_dropped: u64,
}

/// The video parameter sets the last sequence header was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum VideoConfig {
    Avc { sps: Bytes, pps: Bytes },
    Hevc { vps: Bytes, sps: Bytes, pps: Bytes },
}

/// The converter; one per publisher connection.
#[derive(Debug)]
pub struct TsToFlv {
    demuxer: Demuxer,
    /// The first DTS (unwrapped): time 0.
    base: Option<i64>,
    /// The last DTS seen (unwrapped), to unwrap the next.
    last: i64,
    video_config: Option<VideoConfig>,
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
            video_config: None,
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
            Codec::H264 | Codec::Hevc => self.video(au, out),
            Codec::Aac => self.audio(au, out),
        }
    }

    fn video(&mut self, au: AccessUnit, out: &mut Vec<Tag>) {
        let timestamp = self.timestamp(au.dts);
        match self.sequence_header(&au) {
            Ok(Some(body)) => {
                if let Some(meta) = self.video_config.as_ref().and_then(metadata) {
                    out.push(Tag {
                        kind: TagKind::Script,
                        timestamp,
                        body: meta,
                    });
                }
                out.push(Tag {
                    kind: TagKind::Video,
                    timestamp,
                    body,
                })
            }
            Ok(None) => {}
            Err(_) => {
                self.stats.video_dropped += 1;
                return;
            }
        }
        let body = match (&self.video_config, au.codec) {
            (Some(VideoConfig::Avc { .. }), Codec::H264) => avc_frame_body(&au),
            (Some(VideoConfig::Hevc { .. }), Codec::Hevc) => hevc_frame_body(&au),
            // No header yet for this codec.
            _ => {
                self.stats.video_dropped += 1;
                return;
            }
        };
        out.push(Tag {
            kind: TagKind::Video,
            timestamp,
            body,
        });
    }

    /// A new sequence header when the access unit carries parameter sets
    /// other than those of the last one (a parameter set it lacks is taken
    /// from the last one, if of the same codec).
    fn sequence_header(&mut self, au: &AccessUnit) -> Result<Option<Bytes>, ConvertError> {
        let last = self.video_config.as_ref();
        let (config, body) = match au.codec {
            Codec::H264 => {
                let (sps, pps) = h264_parameter_sets(&au.data);
                let (last_sps, last_pps) = match last {
                    Some(VideoConfig::Avc { sps, pps }) => (Some(&sps[..]), Some(&pps[..])),
                    _ => (None, None),
                };
                let (Some(sps), Some(pps)) = (sps.or(last_sps), pps.or(last_pps)) else {
                    return Ok(None);
                };
                if last_sps == Some(sps) && last_pps == Some(pps) {
                    return Ok(None);
                }
                let body = avc_sequence_header(sps, pps)?;
                let (sps, pps) = (Bytes::copy_from_slice(sps), Bytes::copy_from_slice(pps));
                (VideoConfig::Avc { sps, pps }, body)
            }
            Codec::Hevc => {
                let sets = hevc_parameter_sets(&au.data);
                let lasts = match last {
                    Some(VideoConfig::Hevc { vps, sps, pps }) => {
                        [Some(&vps[..]), Some(&sps[..]), Some(&pps[..])]
                    }
                    _ => [None; 3],
                };
                let [Some(vps), Some(sps), Some(pps)] = [0, 1, 2].map(|i| sets[i].or(lasts[i]))
                else {
                    return Ok(None);
                };
                if lasts == [Some(vps), Some(sps), Some(pps)] {
                    return Ok(None);
                }
                let body = hevc_sequence_start(vps, sps, pps)?;
                let [vps, sps, pps] = [vps, sps, pps].map(Bytes::copy_from_slice);
                (VideoConfig::Hevc { vps, sps, pps }, body)
            }
            Codec::Aac => return Ok(None),
        };
        self.video_config = Some(config);
        Ok(Some(body))
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

/// `onMetaData` with the picture size of `config`'s SPS (AMF0: the name,
/// then an ECMA array of numbers), or `None` if the SPS does not parse.
fn metadata(config: &VideoConfig) -> Option<Bytes> {
    let (width, height) = match config {
        VideoConfig::Avc { sps, .. } => crate::fmp4::codec::sps_size(sps).ok()?,
        VideoConfig::Hevc { sps, .. } => {
            let sps = crate::hevc::Sps::parse(sps).ok()?;
            (sps.width, sps.height)
        }
    };
    let mut body = Vec::with_capacity(64);
    let string = |body: &mut Vec<u8>, s: &str| {
        body.extend_from_slice(&(s.len() as u16).to_be_bytes());
        body.extend_from_slice(s.as_bytes());
    };
    body.push(0x02);
    string(&mut body, "onMetaData");
    body.push(0x08);
    body.extend_from_slice(&2u32.to_be_bytes());
    for (key, value) in [("width", width), ("height", height)] {
        string(&mut body, key);
        body.push(0x00);
        body.extend_from_slice(&f64::from(value).to_be_bytes());
    }
    body.extend_from_slice(&[0x00, 0x00, 0x09]);
    Some(Bytes::from(body))
}
