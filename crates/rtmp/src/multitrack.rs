//! Enhanced RTMP v2 multitrack: which track an audio or video tag body
//! belongs to, and how to turn one track's packets back into plain
//! single-track FLV bodies that any RTMP server accepts.
//!
//! OBS's multitrack output (flv-mux.c) sends track 0 as ordinary tags
//! (legacy AVC `0x17/0x27`, legacy AAC `0xAF`, or Enhanced single-track)
//! and every other track as a one-track multitrack tag:
//! video `[0x80 | frameType<<4 | 6][0x00 | packetType][FourCC][trackId]
//! [CTS s24 for avc1/hvc1 CodedFrames][data]`, audio
//! `[0x95][0x00 | packetType][FourCC][trackId][data]`. The spec also has
//! ManyTracks (one FourCC, a u24 size per track) and ManyTracksManyCodecs
//! (a FourCC and a u24 size per track); [`parse_video`] and [`parse_audio`]
//! read all of them.
//!
//! Invariants: parsing takes any bytes without panicking; every length is
//! checked against what remains (a ManyTracks size that lies is an error,
//! not a short read); the packets returned share the input's buffer (no
//! copy) and never outnumber its bytes; the flatteners only write what they
//! were given plus a header of at most 8 bytes.

use bytes::{BufMut, Bytes, BytesMut};

use crate::amf0::{self, Amf0Value};

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    Audio,
    Video,
}

/// Enhanced RTMP packet types, shared by audio and video where they mean
/// the same thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    /// Decoder configuration (AVC sequence header, AudioSpecificConfig…).
    SequenceStart,
    /// Coded frames (for video, `CodedFrames` and `CodedFramesX` alike:
    /// the CTS is then 0).
    CodedFrames,
    SequenceEnd,
    /// Video metadata (colour info) or audio multichannel config: not
    /// media.
    Metadata,
}

/// One track's packet, read out of a tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackPacket {
    pub kind: TrackKind,
    /// 0 for legacy and Enhanced single-track tags.
    pub track: u8,
    /// Enhanced RTMP FourCC; legacy AVC reads as `avc1`, legacy HEVC
    /// (codec 12) as `hvc1`, legacy AAC as `mp4a`, legacy MP3 as `.mp3`.
    pub codec: [u8; 4],
    pub packet: PacketType,
    /// Video frame type (1 key, 2 inter, 3 disposable, 4 generated key);
    /// 0 for audio.
    pub frame_type: u8,
    /// Composition time offset in milliseconds (0 where the form has none).
    pub cts: i32,
    /// The codec's bytes (NAL units, AVCDecoderConfigurationRecord, raw
    /// AAC…), without any FLV header.
    pub payload: Bytes,
}

impl TrackPacket {
    /// A video keyframe carrying media (not a sequence header).
    pub fn is_keyframe(&self) -> bool {
        self.kind == TrackKind::Video
            && matches!(self.frame_type, 1 | 4)
            && self.packet == PacketType::CodedFrames
    }
}

/// Why a tag body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultitrackError {
    #[error("the tag body is empty or shorter than its header")]
    Truncated,
    #[error("a multitrack track size ({size}) runs past the tag ({remaining} bytes left)")]
    BadTrackSize { size: usize, remaining: usize },
    #[error("unknown multitrack type {0}")]
    UnknownMultitrackType(u8),
    #[error("unsupported packet type {0}")]
    UnsupportedPacketType(u8),
    #[error("unsupported legacy codec {0}")]
    UnsupportedLegacyCodec(u8),
    #[error("a command frame, not media")]
    CommandFrame,
}

// Enhanced RTMP video packet types.
const VIDEO_SEQUENCE_START: u8 = 0;
const VIDEO_CODED_FRAMES: u8 = 1;
const VIDEO_SEQUENCE_END: u8 = 2;
const VIDEO_CODED_FRAMES_X: u8 = 3;
const VIDEO_METADATA: u8 = 4;
const MULTITRACK: u8 = 6;
// Audio: SequenceStart 0, CodedFrames 1, SequenceEnd 2, MultichannelConfig
// 4, Multitrack 5.
const AUDIO_MULTITRACK: u8 = 5;
const AUDIO_EX_HEADER: u8 = 9;

const ONE_TRACK: u8 = 0;
const MANY_TRACKS: u8 = 1;
const MANY_TRACKS_MANY_CODECS: u8 = 2;

/// Whether a body is an Enhanced RTMP multitrack tag (which a
/// single-track destination must never get). Cheap: two bits of one byte.
pub fn is_multitrack(kind: TrackKind, body: &[u8]) -> bool {
    match (kind, body.first()) {
        (TrackKind::Video, Some(&b)) => b & 0x80 != 0 && b & 0x0f == MULTITRACK,
        (TrackKind::Audio, Some(&b)) => b >> 4 == AUDIO_EX_HEADER && b & 0x0f == AUDIO_MULTITRACK,
        _ => false,
    }
}

/// A bounds-checked reader over a shared buffer.
struct Reader<'a> {
    body: &'a Bytes,
    pos: usize,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.body.len() - self.pos
    }
    fn u8(&mut self) -> Result<u8, MultitrackError> {
        let b = *self.body.get(self.pos).ok_or(MultitrackError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }
    fn take(&mut self, n: usize) -> Result<Bytes, MultitrackError> {
        if n > self.remaining() {
            return Err(MultitrackError::Truncated);
        }
        let out = self.body.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }
    fn fourcc(&mut self) -> Result<[u8; 4], MultitrackError> {
        let b = self.take(4)?;
        Ok([b[0], b[1], b[2], b[3]])
    }
    fn u24(&mut self) -> Result<u32, MultitrackError> {
        let b = self.take(3)?;
        Ok(u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }
    fn rest(&mut self) -> Bytes {
        let out = self.body.slice(self.pos..);
        self.pos = self.body.len();
        out
    }
}

fn s24(v: u32) -> i32 {
    ((v << 8) as i32) >> 8
}

fn video_packet_type(t: u8) -> Result<PacketType, MultitrackError> {
    match t {
        VIDEO_SEQUENCE_START => Ok(PacketType::SequenceStart),
        VIDEO_CODED_FRAMES | VIDEO_CODED_FRAMES_X => Ok(PacketType::CodedFrames),
        VIDEO_SEQUENCE_END => Ok(PacketType::SequenceEnd),
        VIDEO_METADATA => Ok(PacketType::Metadata),
        other => Err(MultitrackError::UnsupportedPacketType(other)),
    }
}

fn audio_packet_type(t: u8) -> Result<PacketType, MultitrackError> {
    match t {
        0 => Ok(PacketType::SequenceStart),
        1 => Ok(PacketType::CodedFrames),
        2 => Ok(PacketType::SequenceEnd),
        4 => Ok(PacketType::Metadata),
        other => Err(MultitrackError::UnsupportedPacketType(other)),
    }
}

/// Reads a video tag body: one packet for legacy and single-track tags,
/// one per track for multitrack tags.
pub fn parse_video(body: &Bytes) -> Result<Vec<TrackPacket>, MultitrackError> {
    let mut r = Reader { body, pos: 0 };
    let first = r.u8()?;
    if first & 0x80 == 0 {
        return parse_legacy_video(first, &mut r).map(|p| vec![p]);
    }
    let frame_type = (first >> 4) & 0x07;
    if frame_type == 5 {
        return Err(MultitrackError::CommandFrame);
    }
    let packet_type = first & 0x0f;
    if packet_type != MULTITRACK {
        let codec = r.fourcc()?;
        let packet = video_packet_type(packet_type)?;
        let p = video_track_body(&mut r, 0, codec, packet_type, packet, frame_type, None)?;
        return Ok(vec![p]);
    }
    let second = r.u8()?;
    let (mt_type, inner_type) = (second >> 4, second & 0x0f);
    let packet = video_packet_type(inner_type)?;
    let mut shared_codec = None;
    match mt_type {
        ONE_TRACK | MANY_TRACKS => shared_codec = Some(r.fourcc()?),
        MANY_TRACKS_MANY_CODECS => {}
        other => return Err(MultitrackError::UnknownMultitrackType(other)),
    }
    let mut out = Vec::new();
    loop {
        let codec = match shared_codec {
            Some(c) => c,
            None => r.fourcc()?,
        };
        let track = r.u8()?;
        let size = if mt_type == ONE_TRACK {
            None
        } else {
            Some(checked_size(&mut r)?)
        };
        out.push(video_track_body(
            &mut r, track, codec, inner_type, packet, frame_type, size,
        )?);
        if mt_type == ONE_TRACK || r.remaining() == 0 {
            return Ok(out);
        }
    }
}

/// Reads a ManyTracks u24 size and checks it against what remains.
fn checked_size(r: &mut Reader<'_>) -> Result<usize, MultitrackError> {
    let size = r.u24()? as usize;
    if size > r.remaining() {
        return Err(MultitrackError::BadTrackSize {
            size,
            remaining: r.remaining(),
        });
    }
    Ok(size)
}

fn video_track_body(
    r: &mut Reader<'_>,
    track: u8,
    codec: [u8; 4],
    raw_type: u8,
    packet: PacketType,
    frame_type: u8,
    size: Option<usize>,
) -> Result<TrackPacket, MultitrackError> {
    let mut data = match size {
        Some(n) => r.take(n)?,
        None => r.rest(),
    };
    let mut cts = 0;
    if raw_type == VIDEO_CODED_FRAMES && (&codec == b"avc1" || &codec == b"hvc1") {
        if data.len() < 3 {
            return Err(MultitrackError::Truncated);
        }
        cts = s24(u32::from_be_bytes([0, data[0], data[1], data[2]]));
        data = data.slice(3..);
    }
    Ok(TrackPacket {
        kind: TrackKind::Video,
        track,
        codec,
        packet,
        frame_type,
        cts,
        payload: data,
    })
}

fn parse_legacy_video(first: u8, r: &mut Reader<'_>) -> Result<TrackPacket, MultitrackError> {
    let frame_type = first >> 4;
    if frame_type == 5 {
        return Err(MultitrackError::CommandFrame);
    }
    let codec = match first & 0x0f {
        7 => *b"avc1",
        12 => *b"hvc1",
        other => return Err(MultitrackError::UnsupportedLegacyCodec(other)),
    };
    let packet = match r.u8()? {
        0 => PacketType::SequenceStart,
        1 => PacketType::CodedFrames,
        2 => PacketType::SequenceEnd,
        other => return Err(MultitrackError::UnsupportedPacketType(other)),
    };
    let cts = s24(r.u24()?);
    Ok(TrackPacket {
        kind: TrackKind::Video,
        track: 0,
        codec,
        packet,
        frame_type,
        cts,
        payload: r.rest(),
    })
}

/// Reads an audio tag body: one packet for legacy and single-track tags,
/// one per track for multitrack tags.
pub fn parse_audio(body: &Bytes) -> Result<Vec<TrackPacket>, MultitrackError> {
    let mut r = Reader { body, pos: 0 };
    let first = r.u8()?;
    let format = first >> 4;
    let audio = |track, codec, packet, payload| TrackPacket {
        kind: TrackKind::Audio,
        track,
        codec,
        packet,
        frame_type: 0,
        cts: 0,
        payload,
    };
    if format != AUDIO_EX_HEADER {
        let codec = match format {
            10 => *b"mp4a",
            2 => *b".mp3",
            other => return Err(MultitrackError::UnsupportedLegacyCodec(other)),
        };
        let packet = if format == 10 {
            match r.u8()? {
                0 => PacketType::SequenceStart,
                _ => PacketType::CodedFrames,
            }
        } else {
            PacketType::CodedFrames
        };
        return Ok(vec![audio(0, codec, packet, r.rest())]);
    }
    let packet_type = first & 0x0f;
    if packet_type != AUDIO_MULTITRACK {
        let codec = r.fourcc()?;
        let packet = audio_packet_type(packet_type)?;
        return Ok(vec![audio(0, codec, packet, r.rest())]);
    }
    let second = r.u8()?;
    let (mt_type, inner) = (second >> 4, second & 0x0f);
    let packet = audio_packet_type(inner)?;
    let mut shared_codec = None;
    match mt_type {
        ONE_TRACK | MANY_TRACKS => shared_codec = Some(r.fourcc()?),
        MANY_TRACKS_MANY_CODECS => {}
        other => return Err(MultitrackError::UnknownMultitrackType(other)),
    }
    let mut out = Vec::new();
    loop {
        let codec = match shared_codec {
            Some(c) => c,
            None => r.fourcc()?,
        };
        let track = r.u8()?;
        let data = if mt_type == ONE_TRACK {
            r.rest()
        } else {
            let n = checked_size(&mut r)?;
            r.take(n)?
        };
        out.push(audio(track, codec, packet, data));
        if mt_type == ONE_TRACK || r.remaining() == 0 {
            return Ok(out);
        }
    }
}

/// One track's packet as a plain single-track FLV body: legacy AVC
/// (`0x17/0x27`, AVCPacketType, CTS) for `avc1`, legacy AAC (`0xAF`) for
/// `mp4a`, Enhanced single-track for other FourCCs. `None` for packets
/// that are not media (metadata) or that the form cannot carry.
pub fn flatten(p: &TrackPacket) -> Option<Bytes> {
    match p.kind {
        TrackKind::Video => flatten_video(p),
        TrackKind::Audio => flatten_audio(p),
    }
}

fn flatten_video(p: &TrackPacket) -> Option<Bytes> {
    let frame_type = match p.frame_type {
        0 => 1,
        f => f & 0x07,
    };
    let mut out = BytesMut::with_capacity(p.payload.len() + 8);
    if &p.codec == b"avc1" {
        let packet_type = match p.packet {
            PacketType::SequenceStart => 0,
            PacketType::CodedFrames => 1,
            PacketType::SequenceEnd => 2,
            PacketType::Metadata => return None,
        };
        // A sequence header is always sent as a "keyframe" (0x17).
        let frame_type = if packet_type == 1 { frame_type } else { 1 };
        out.put_u8(frame_type << 4 | 7);
        out.put_u8(packet_type);
        let cts = if packet_type == 1 { p.cts } else { 0 };
        out.put_slice(&cts.to_be_bytes()[1..]);
    } else {
        let raw_type = match p.packet {
            PacketType::SequenceStart => VIDEO_SEQUENCE_START,
            PacketType::CodedFrames => VIDEO_CODED_FRAMES,
            PacketType::SequenceEnd => VIDEO_SEQUENCE_END,
            PacketType::Metadata => return None,
        };
        out.put_u8(0x80 | frame_type << 4 | raw_type);
        out.put_slice(&p.codec);
        if raw_type == VIDEO_CODED_FRAMES && &p.codec == b"hvc1" {
            out.put_slice(&p.cts.to_be_bytes()[1..]);
        }
    }
    out.put_slice(&p.payload);
    Some(out.freeze())
}

fn flatten_audio(p: &TrackPacket) -> Option<Bytes> {
    let mut out = BytesMut::with_capacity(p.payload.len() + 5);
    if &p.codec == b"mp4a" {
        let packet_type = match p.packet {
            PacketType::SequenceStart => 0,
            PacketType::CodedFrames => 1,
            PacketType::SequenceEnd | PacketType::Metadata => return None,
        };
        // AAC, 44 kHz, 16-bit, stereo: the values FLV requires for AAC
        // (decoders read the real ones from the AudioSpecificConfig).
        out.put_u8(0xaf);
        out.put_u8(packet_type);
    } else {
        let raw_type = match p.packet {
            PacketType::SequenceStart => 0,
            PacketType::CodedFrames => 1,
            PacketType::SequenceEnd => 2,
            PacketType::Metadata => 4,
        };
        out.put_u8(AUDIO_EX_HEADER << 4 | raw_type);
        out.put_slice(&p.codec);
    }
    out.put_slice(&p.payload);
    Some(out.freeze())
}

/// What a track's `onMetaData` should say, where known.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TrackSize {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub frame_rate: Option<f64>,
}

/// Rewrites an `onMetaData` body (starting at the `onMetaData` string) for
/// one track: `width`, `height` and `framerate` replaced by the track's
/// (removed where unknown, so a destination never sees track 0's size on
/// another track), every other property kept. `None` if the body is not
/// AMF0 `onMetaData` + an object or ECMA array.
pub fn rewrite_metadata(body: &[u8], size: TrackSize) -> Option<Bytes> {
    let values = amf0::decode_all_bounded(body, crate::message::MAX_COMMAND_VALUES).ok()?;
    let name = values.first()?.clone();
    let props = values.get(1)?.properties()?;
    let mut kept: Vec<(String, Amf0Value)> = props
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "width" | "height" | "framerate" | "fps"))
        .cloned()
        .collect();
    let fields = [
        ("width", size.width.map(f64::from)),
        ("height", size.height.map(f64::from)),
        ("framerate", size.frame_rate),
    ];
    for (k, v) in fields {
        if let Some(v) = v {
            kept.push((k.to_string(), Amf0Value::Number(v)));
        }
    }
    let meta = Amf0Value::EcmaArray(kept);
    Some(amf0::encode_all([&name, &meta]).freeze())
}

#[cfg(test)]
#[path = "multitrack_tests.rs"]
mod tests;
