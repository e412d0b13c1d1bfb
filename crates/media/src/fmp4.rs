//! Fragmented MP4 muxer (ISO/IEC 14496-12), sans-IO: H.264 and AAC frames
//! in, file bytes out. Used for recordings (a file) and the live preview
//! (Media Source Extensions).
//!
//! Layout: an init segment (`ftyp` + `moov` with `mvex`, no samples), then
//! one `moof` + `mdat` fragment at each video keyframe, or once
//! [`MuxerLimits::max_fragment_ms`] of media has gathered. Whatever was
//! written up to the last complete fragment plays, which is the point: a
//! crash or a power cut loses at most one fragment.
//!
//! Invariants: input timestamps are milliseconds on one monotonic
//! timeline (the hub's), and the output starts at 0; a fragment starts on a video keyframe (or is
//! audio only); video is on a 90 kHz timescale, audio on its sample rate
//! with 1024 samples per AAC frame and decode times kept continuous unless
//! the input jumps by more than [`AUDIO_RESYNC_MS`]. Codec configurations
//! are parsed from untrusted bytes in [`codec`].

pub mod codec;
pub mod read;

use bytes::{BufMut, Bytes, BytesMut};

pub use codec::{AacConfig, AudioPacket, AvcConfig, CodecError, VideoPacket};

const VIDEO_TRACK: u32 = 1;
const AUDIO_TRACK: u32 = 2;
const VIDEO_TIMESCALE: u32 = 90_000;
/// Audio decode time follows the input again past this much drift.
pub const AUDIO_RESYNC_MS: i64 = 100;

/// When fragments are cut.
#[derive(Debug, Clone, Copy)]
pub struct MuxerLimits {
    /// A fragment is cut at the first keyframe after this much media…
    pub min_fragment_ms: i64,
    /// …and at any frame past this much (long GOPs, audio only).
    pub max_fragment_ms: i64,
}

impl Default for MuxerLimits {
    fn default() -> Self {
        Self {
            min_fragment_ms: 900,
            max_fragment_ms: 2000,
        }
    }
}

#[derive(Debug, Clone)]
struct VideoSample {
    dts_ms: i64,
    cts_ms: i32,
    keyframe: bool,
    data: Bytes,
    /// 90 kHz, known once the next sample arrives.
    duration: u32,
}

#[derive(Debug, Clone)]
struct AudioSample {
    ts_ms: i64,
    data: Bytes,
}

/// Muxes one stream into fragmented MP4.
#[derive(Debug)]
pub struct Muxer {
    video: Option<AvcConfig>,
    audio: Option<AacConfig>,
    limits: MuxerLimits,
    sequence: u32,
    /// Complete video samples waiting for the next cut.
    pending_video: Vec<VideoSample>,
    /// The newest video sample, whose duration is not known yet.
    last_video: Option<VideoSample>,
    pending_audio: Vec<AudioSample>,
    /// Next audio decode time (samples), once audio has started.
    next_audio_time: Option<u64>,
    first_ms: Option<i64>,
    last_ms: i64,
    last_video_duration: u32,
    /// Input time of the first sample: the output starts at 0 (a file
    /// cut from a stream that has run for hours still starts at 0:00).
    origin_ms: Option<i64>,
}

impl Muxer {
    /// A muxer for the given tracks (at least one).
    pub fn new(video: Option<AvcConfig>, audio: Option<AacConfig>, limits: MuxerLimits) -> Muxer {
        Muxer {
            video,
            audio,
            limits,
            sequence: 0,
            pending_video: Vec::new(),
            last_video: None,
            pending_audio: Vec::new(),
            next_audio_time: None,
            first_ms: None,
            last_ms: 0,
            last_video_duration: VIDEO_TIMESCALE / 30,
            origin_ms: None,
        }
    }

    pub fn video_config(&self) -> Option<&AvcConfig> {
        self.video.as_ref()
    }

    pub fn audio_config(&self) -> Option<&AacConfig> {
        self.audio.as_ref()
    }

    /// Media time taken in so far, milliseconds.
    pub fn duration_ms(&self) -> i64 {
        self.first_ms.map(|f| self.last_ms - f).unwrap_or(0)
    }

    /// The MIME type with codecs, for `MediaSource.addSourceBuffer`.
    pub fn mime_type(&self) -> String {
        let mut codecs = Vec::new();
        if let Some(v) = &self.video {
            codecs.push(v.codec_string());
        }
        if let Some(a) = &self.audio {
            codecs.push(a.codec_string());
        }
        format!("video/mp4; codecs=\"{}\"", codecs.join(", "))
    }

    /// `ftyp` + `moov`: what a file or a player needs first.
    pub fn init_segment(&self) -> Bytes {
        let mut out = BytesMut::new();
        boxed(&mut out, b"ftyp", |b| {
            b.put_slice(b"isom");
            b.put_u32(0x200);
            for brand in [b"isom", b"iso6", b"avc1", b"mp41"] {
                b.put_slice(brand);
            }
        });
        boxed(&mut out, b"moov", |b| {
            full_box(b, b"mvhd", 0, 0, |b| {
                b.put_u32(0); // creation
                b.put_u32(0); // modification
                b.put_u32(1000);
                b.put_u32(0); // duration: in the fragments
                b.put_u32(0x0001_0000); // rate
                b.put_u16(0x0100); // volume
                b.put_bytes(0, 10);
                matrix(b);
                b.put_bytes(0, 24);
                b.put_u32(AUDIO_TRACK + 1);
            });
            if let Some(v) = &self.video {
                video_trak(b, v);
            }
            if let Some(a) = &self.audio {
                audio_trak(b, a);
            }
            boxed(b, b"mvex", |b| {
                for (present, id) in [
                    (self.video.is_some(), VIDEO_TRACK),
                    (self.audio.is_some(), AUDIO_TRACK),
                ] {
                    if present {
                        full_box(b, b"trex", 0, 0, |b| {
                            b.put_u32(id);
                            b.put_u32(1); // sample description
                            b.put_u32(0);
                            b.put_u32(0);
                            b.put_u32(0);
                        });
                    }
                }
            });
        });
        out.freeze()
    }

    fn note_time(&mut self, ms: i64) {
        self.first_ms.get_or_insert(ms);
        self.last_ms = self.last_ms.max(ms);
    }

    /// Takes an H.264 access unit (AVCC, as in FLV). Returns a fragment
    /// when this frame starts a new one. Frames before the first keyframe
    /// are dropped (nothing could decode them).
    pub fn push_video(
        &mut self,
        dts_ms: i64,
        cts_ms: i32,
        keyframe: bool,
        data: Bytes,
    ) -> Option<Bytes> {
        if self.video.is_none() || (self.last_video.is_none() && !keyframe) {
            return None;
        }
        self.note_time(dts_ms);
        let dts_ms = (dts_ms - *self.origin_ms.get_or_insert(dts_ms)).max(0);
        let mut out = None;
        if let Some(mut last) = self.last_video.take() {
            let d = (dts_ms - last.dts_ms).clamp(0, 10_000) * i64::from(VIDEO_TIMESCALE) / 1000;
            last.duration = d as u32;
            if d > 0 {
                self.last_video_duration = d as u32;
            }
            self.pending_video.push(last);
            let span = dts_ms - self.pending_video[0].dts_ms;
            if (keyframe && span >= self.limits.min_fragment_ms)
                || span >= self.limits.max_fragment_ms
            {
                out = self.cut(dts_ms);
            }
        }
        self.last_video = Some(VideoSample {
            dts_ms,
            cts_ms,
            keyframe,
            data,
            duration: 0,
        });
        out
    }

    /// Takes a raw AAC frame. Audio before the first video keyframe of a
    /// stream with video is dropped (the file starts on a picture).
    pub fn push_audio(&mut self, ts_ms: i64, data: Bytes) -> Option<Bytes> {
        self.audio.as_ref()?;
        if self.video.is_some() && self.last_video.is_none() {
            return None;
        }
        self.note_time(ts_ms);
        let ts_ms = (ts_ms - *self.origin_ms.get_or_insert(ts_ms)).max(0);
        self.pending_audio.push(AudioSample { ts_ms, data });
        if self.video.is_none() {
            let span = ts_ms - self.pending_audio[0].ts_ms;
            if span >= self.limits.min_fragment_ms {
                return self.cut(i64::MAX);
            }
        }
        None
    }

    /// Everything still held, as a last fragment (the newest video frame
    /// gets the previous frame's duration).
    pub fn finish(&mut self) -> Option<Bytes> {
        if let Some(mut last) = self.last_video.take() {
            last.duration = self.last_video_duration;
            self.pending_video.push(last);
        }
        self.cut(i64::MAX)
    }

    /// A fragment of the pending video and the audio before `until_ms`.
    fn cut(&mut self, until_ms: i64) -> Option<Bytes> {
        let video = std::mem::take(&mut self.pending_video);
        let split = self
            .pending_audio
            .iter()
            .position(|a| a.ts_ms >= until_ms)
            .unwrap_or(self.pending_audio.len());
        let audio: Vec<AudioSample> = self.pending_audio.drain(..split).collect();
        if video.is_empty() && audio.is_empty() {
            return None;
        }
        self.sequence += 1;
        let audio_time = self.audio_time(&audio);
        let frag = Fragment {
            sequence: self.sequence,
            video: &video,
            audio: &audio,
            audio_time,
        };
        if let Some(t) = audio_time {
            self.next_audio_time = Some(t + 1024 * audio.len() as u64);
        }
        Some(frag.encode())
    }

    /// Decode time of the first audio sample (in samples): continuous
    /// unless the input jumped.
    fn audio_time(&self, audio: &[AudioSample]) -> Option<u64> {
        let first = audio.first()?;
        let rate = u64::from(self.audio.as_ref()?.sample_rate);
        let from_input = first.ts_ms.max(0) as u64 * rate / 1000;
        Some(match self.next_audio_time {
            Some(next) if from_input.abs_diff(next) <= AUDIO_RESYNC_MS as u64 * rate / 1000 => next,
            _ => from_input,
        })
    }
}

struct Fragment<'a> {
    sequence: u32,
    video: &'a [VideoSample],
    audio: &'a [AudioSample],
    audio_time: Option<u64>,
}

impl Fragment<'_> {
    fn encode(&self) -> Bytes {
        let video_bytes: usize = self.video.iter().map(|s| s.data.len()).sum();
        let audio_bytes: usize = self.audio.iter().map(|s| s.data.len()).sum();
        // The moof's size does not depend on the offsets written in it.
        let moof_len = self.moof(0).len();
        let moof = self.moof(moof_len);
        let mut out = BytesMut::with_capacity(moof_len + 8 + video_bytes + audio_bytes);
        out.put_slice(&moof);
        out.put_u32((8 + video_bytes + audio_bytes) as u32);
        out.put_slice(b"mdat");
        for s in self.video {
            out.put_slice(&s.data);
        }
        for s in self.audio {
            out.put_slice(&s.data);
        }
        out.freeze()
    }

    fn moof(&self, moof_len: usize) -> BytesMut {
        let mut out = BytesMut::new();
        let data_start = moof_len + 8;
        let video_bytes: usize = self.video.iter().map(|s| s.data.len()).sum();
        boxed(&mut out, b"moof", |b| {
            full_box(b, b"mfhd", 0, 0, |b| b.put_u32(self.sequence));
            if let Some(first) = self.video.first() {
                boxed(b, b"traf", |b| {
                    // default-base-is-moof
                    full_box(b, b"tfhd", 0, 0x02_0000, |b| b.put_u32(VIDEO_TRACK));
                    full_box(b, b"tfdt", 1, 0, |b| {
                        b.put_u64(first.dts_ms.max(0) as u64 * u64::from(VIDEO_TIMESCALE) / 1000)
                    });
                    // data offset, duration, size, flags, composition offset
                    full_box(b, b"trun", 1, 0x0f01, |b| {
                        b.put_u32(self.video.len() as u32);
                        b.put_i32(data_start as i32);
                        for s in self.video {
                            b.put_u32(s.duration);
                            b.put_u32(s.data.len() as u32);
                            b.put_u32(if s.keyframe { 0x0200_0000 } else { 0x0101_0000 });
                            b.put_i32(s.cts_ms * (VIDEO_TIMESCALE / 1000) as i32);
                        }
                    });
                });
            }
            if let (Some(time), false) = (self.audio_time, self.audio.is_empty()) {
                boxed(b, b"traf", |b| {
                    full_box(b, b"tfhd", 0, 0x02_0000, |b| b.put_u32(AUDIO_TRACK));
                    full_box(b, b"tfdt", 1, 0, |b| b.put_u64(time));
                    // data offset, duration, size
                    full_box(b, b"trun", 0, 0x0301, |b| {
                        b.put_u32(self.audio.len() as u32);
                        b.put_i32((data_start + video_bytes) as i32);
                        for s in self.audio {
                            b.put_u32(1024);
                            b.put_u32(s.data.len() as u32);
                        }
                    });
                });
            }
        });
        out
    }
}

// === boxes ===

/// Writes a box: size, type, then what `body` writes.
fn boxed(out: &mut BytesMut, kind: &[u8; 4], body: impl FnOnce(&mut BytesMut)) {
    let start = out.len();
    out.put_u32(0);
    out.put_slice(kind);
    body(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

fn full_box(
    out: &mut BytesMut,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut BytesMut),
) {
    boxed(out, kind, |b| {
        b.put_u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        body(b);
    });
}

fn matrix(b: &mut BytesMut) {
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        b.put_u32(v);
    }
}

fn tkhd(b: &mut BytesMut, track: u32, audio: bool, width: u32, height: u32) {
    // enabled, in movie
    full_box(b, b"tkhd", 0, 3, |b| {
        b.put_u32(0);
        b.put_u32(0);
        b.put_u32(track);
        b.put_u32(0);
        b.put_u32(0); // duration
        b.put_bytes(0, 8);
        b.put_u16(0); // layer
        b.put_u16(0); // alternate group
        b.put_u16(if audio { 0x0100 } else { 0 });
        b.put_u16(0);
        matrix(b);
        b.put_u32(width << 16);
        b.put_u32(height << 16);
    });
}

fn mdhd_hdlr(b: &mut BytesMut, timescale: u32, handler: &[u8; 4], name: &str) {
    full_box(b, b"mdhd", 0, 0, |b| {
        b.put_u32(0);
        b.put_u32(0);
        b.put_u32(timescale);
        b.put_u32(0);
        b.put_u16(0x55c4); // "und"
        b.put_u16(0);
    });
    full_box(b, b"hdlr", 0, 0, |b| {
        b.put_u32(0);
        b.put_slice(handler);
        b.put_bytes(0, 12);
        b.put_slice(name.as_bytes());
        b.put_u8(0);
    });
}

/// `dinf` and an `stbl` whose only content is the sample description.
fn dinf_stbl(b: &mut BytesMut, entry: impl FnOnce(&mut BytesMut)) {
    boxed(b, b"dinf", |b| {
        full_box(b, b"dref", 0, 0, |b| {
            b.put_u32(1);
            full_box(b, b"url ", 0, 1, |_| {});
        });
    });
    boxed(b, b"stbl", |b| {
        full_box(b, b"stsd", 0, 0, |b| {
            b.put_u32(1);
            entry(b);
        });
        for kind in [b"stts", b"stsc", b"stco"] {
            full_box(b, kind, 0, 0, |b| b.put_u32(0));
        }
        full_box(b, b"stsz", 0, 0, |b| {
            b.put_u32(0);
            b.put_u32(0);
        });
    });
}

fn video_trak(b: &mut BytesMut, v: &AvcConfig) {
    boxed(b, b"trak", |b| {
        tkhd(b, VIDEO_TRACK, false, v.width, v.height);
        boxed(b, b"mdia", |b| {
            mdhd_hdlr(b, VIDEO_TIMESCALE, b"vide", "antenne video");
            boxed(b, b"minf", |b| {
                full_box(b, b"vmhd", 0, 1, |b| b.put_bytes(0, 8));
                dinf_stbl(b, |b| {
                    boxed(b, b"avc1", |b| {
                        b.put_bytes(0, 6);
                        b.put_u16(1); // data reference index
                        b.put_bytes(0, 16);
                        b.put_u16(v.width.min(0xffff) as u16);
                        b.put_u16(v.height.min(0xffff) as u16);
                        b.put_u32(0x0048_0000);
                        b.put_u32(0x0048_0000);
                        b.put_u32(0);
                        b.put_u16(1); // frame count
                        b.put_bytes(0, 32); // compressor name
                        b.put_u16(0x18);
                        b.put_i16(-1);
                        boxed(b, b"avcC", |b| b.put_slice(&v.record));
                    });
                });
            });
        });
    });
}

fn audio_trak(b: &mut BytesMut, a: &AacConfig) {
    boxed(b, b"trak", |b| {
        tkhd(b, AUDIO_TRACK, true, 0, 0);
        boxed(b, b"mdia", |b| {
            mdhd_hdlr(b, a.sample_rate, b"soun", "antenne audio");
            boxed(b, b"minf", |b| {
                full_box(b, b"smhd", 0, 0, |b| b.put_u32(0));
                dinf_stbl(b, |b| {
                    boxed(b, b"mp4a", |b| {
                        b.put_bytes(0, 6);
                        b.put_u16(1);
                        b.put_bytes(0, 8);
                        b.put_u16(a.channels);
                        b.put_u16(16);
                        b.put_u32(0);
                        b.put_u32(a.sample_rate.min(0xffff) << 16);
                        full_box(b, b"esds", 0, 0, |b| esds(b, a));
                    });
                });
            });
        });
    });
}

/// ES descriptor: MPEG-4 audio (0x40), the AudioSpecificConfig.
fn esds(b: &mut BytesMut, a: &AacConfig) {
    let mut dsi = BytesMut::new();
    descriptor(&mut dsi, 0x05, &a.config);
    let mut dcd = BytesMut::new();
    dcd.put_u8(0x40);
    dcd.put_u8(0x15); // audio stream
    dcd.put_bytes(0, 3); // buffer size
    dcd.put_u32(0); // max bitrate
    dcd.put_u32(0); // average bitrate
    dcd.put_slice(&dsi);
    let mut es = BytesMut::new();
    es.put_u16(0); // ES id
    es.put_u8(0);
    descriptor(&mut es, 0x04, &dcd);
    descriptor(&mut es, 0x06, &[0x02]);
    descriptor(b, 0x03, &es);
}

fn descriptor(out: &mut BytesMut, tag: u8, body: &[u8]) {
    out.put_u8(tag);
    let n = body.len() as u32;
    out.put_slice(&[
        0x80 | ((n >> 21) & 0x7f) as u8,
        0x80 | ((n >> 14) & 0x7f) as u8,
        0x80 | ((n >> 7) & 0x7f) as u8,
        (n & 0x7f) as u8,
    ]);
    out.put_slice(body);
}

#[cfg(test)]
mod tests;
