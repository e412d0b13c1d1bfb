//! FLV streams (the container ffmpeg reads with `-f flv -i pipe:0` and
//! writes with `-f flv pipe:1`): a writer and a bounded incremental reader.
//!
//! An FLV stream is a 9-byte header (`FLV`, version 1, audio/video flags,
//! header size), a 4-byte zero, then tags: type (8 audio, 9 video, 18
//! script data), 24-bit body size, 24+8-bit timestamp in milliseconds,
//! 24-bit stream id (0), the body, and the 4-byte size of the tag just
//! written. Tag bodies are exactly the payloads of RTMP audio, video and
//! data messages, so they pass through untouched (Enhanced RTMP included);
//! a script tag's body is `onMetaData` and its ECMA array.
//!
//! Reader invariants: it never panics on any input; it holds at most
//! [`ReaderLimits::max_tag_size`] + 15 bytes it has not handed out (the
//! caller feeds what [`FlvReader::feed`] accepts and polls tags between
//! feeds); a tag body larger than the cap, a bad signature or an
//! oversized header is a [`FlvError`], after which the reader stays
//! failed; tags of unknown types are skipped and counted.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// What a tag carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagKind {
    Audio,
    Video,
    /// Script data (`onMetaData`).
    Script,
}

impl TagKind {
    pub fn type_id(self) -> u8 {
        match self {
            TagKind::Audio => 8,
            TagKind::Video => 9,
            TagKind::Script => 18,
        }
    }

    pub fn from_type_id(id: u8) -> Option<TagKind> {
        match id {
            8 => Some(TagKind::Audio),
            9 => Some(TagKind::Video),
            18 => Some(TagKind::Script),
            _ => None,
        }
    }
}

/// One FLV tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub kind: TagKind,
    /// Milliseconds (FLV timestamps are 32-bit and wrap after 49 days).
    pub timestamp: u32,
    pub body: Bytes,
}

/// Largest body an FLV tag can describe (24-bit size).
pub const MAX_BODY: usize = 0x00ff_ffff;

/// Size of the stream header plus the first (zero) previous-tag-size.
pub const HEADER_LEN: usize = 13;
/// Bytes around each body: 11 before, 4 after.
pub const TAG_OVERHEAD: usize = 15;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlvError {
    #[error("not an FLV stream (signature {0:02x?}, expected \"FLV\" version 1)")]
    BadSignature([u8; 4]),
    #[error("FLV header size {0} is out of range (9 to 1024 bytes)")]
    BadHeaderSize(u32),
    #[error("FLV tag of {size} bytes is over the {max}-byte limit")]
    TagTooLarge { size: usize, max: usize },
    #[error("FLV tag body of {0} bytes cannot be written (over 16 MiB)")]
    BodyTooLarge(usize),
    #[error("encrypted FLV tags are not supported")]
    Encrypted,
}

// === impl Writer ===

/// The stream header, with the flags for the tracks it will carry, and the
/// first previous-tag-size (0): 13 bytes.
pub fn stream_header(has_audio: bool, has_video: bool) -> Bytes {
    let flags = (u8::from(has_audio) << 2) | u8::from(has_video);
    Bytes::copy_from_slice(&[b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0])
}

/// The 11 bytes before a tag's body: type, body size, timestamp, stream
/// id. For writers that put the body in several pieces.
pub fn tag_header(kind: TagKind, timestamp: u32, body_len: usize) -> Result<[u8; 11], FlvError> {
    if body_len > MAX_BODY {
        return Err(FlvError::BodyTooLarge(body_len));
    }
    let size = (body_len as u32).to_be_bytes();
    let ts = timestamp.to_be_bytes();
    Ok([
        kind.type_id(),
        size[1],
        size[2],
        size[3],
        ts[1],
        ts[2],
        ts[3],
        ts[0],
        0,
        0,
        0,
    ])
}

/// The 4 bytes after a tag's body: the size of the whole tag.
pub fn tag_trailer(body_len: usize) -> [u8; 4] {
    ((body_len + 11) as u32).to_be_bytes()
}

/// Appends one tag (header, body, trailing size) to `out`.
pub fn write_tag(
    out: &mut BytesMut,
    kind: TagKind,
    timestamp: u32,
    body: &[u8],
) -> Result<(), FlvError> {
    let header = tag_header(kind, timestamp, body.len())?;
    out.reserve(body.len() + TAG_OVERHEAD);
    out.put_slice(&header);
    out.put_slice(body);
    out.put_slice(&tag_trailer(body.len()));
    Ok(())
}

/// One tag as its own buffer.
pub fn encode_tag(tag: &Tag) -> Result<Bytes, FlvError> {
    let mut out = BytesMut::new();
    write_tag(&mut out, tag.kind, tag.timestamp, &tag.body)?;
    Ok(out.freeze())
}

// === impl Reader ===

/// Bounds of an [`FlvReader`].
#[derive(Debug, Clone, Copy)]
pub struct ReaderLimits {
    /// Largest tag body accepted.
    pub max_tag_size: usize,
}

impl Default for ReaderLimits {
    /// 8 MiB: a 4K keyframe at a high bitrate fits many times over.
    fn default() -> Self {
        Self {
            max_tag_size: 8 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ReadState {
    Header,
    Tags,
    Failed(FlvError),
}

/// Incremental FLV reader: feed bytes, poll tags.
#[derive(Debug)]
pub struct FlvReader {
    limits: ReaderLimits,
    buf: BytesMut,
    state: ReadState,
    flags: Option<u8>,
    skipped: u64,
}

/// Longest stream header accepted (the standard one is 9 bytes).
const MAX_HEADER: u32 = 1024;

impl FlvReader {
    pub fn new(limits: ReaderLimits) -> Self {
        Self {
            limits,
            buf: BytesMut::new(),
            state: ReadState::Header,
            flags: None,
            skipped: 0,
        }
    }

    /// Most bytes held at once.
    pub fn capacity(&self) -> usize {
        self.limits.max_tag_size.max(MAX_HEADER as usize + 4) + TAG_OVERHEAD
    }

    /// Takes as much of `data` as fits and returns how many bytes it took;
    /// call [`FlvReader::poll_tag`] until `None`, then feed the rest.
    pub fn feed(&mut self, data: &[u8]) -> usize {
        let room = self.capacity().saturating_sub(self.buf.len());
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        n
    }

    /// How many more bytes [`FlvReader::feed`] would take now.
    pub fn room(&self) -> usize {
        self.capacity().saturating_sub(self.buf.len())
    }

    /// Bytes held that are not yet a whole tag.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Audio/video flags of the stream header, once read.
    pub fn header_flags(&self) -> Option<u8> {
        self.flags
    }

    /// Tags of unknown types skipped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The next whole tag, `Ok(None)` when more bytes are needed. After an
    /// error the reader stays failed and returns the same error.
    pub fn poll_tag(&mut self) -> Result<Option<Tag>, FlvError> {
        loop {
            match &self.state {
                ReadState::Failed(e) => return Err(e.clone()),
                ReadState::Header => match self.read_header() {
                    Ok(true) => self.state = ReadState::Tags,
                    Ok(false) => return Ok(None),
                    Err(e) => return Err(self.fail(e)),
                },
                ReadState::Tags => match self.read_tag() {
                    Ok(Some(Some(tag))) => return Ok(Some(tag)),
                    // An unknown tag type was skipped.
                    Ok(Some(None)) => continue,
                    Ok(None) => return Ok(None),
                    Err(e) => return Err(self.fail(e)),
                },
            }
        }
    }

    fn fail(&mut self, e: FlvError) -> FlvError {
        self.state = ReadState::Failed(e.clone());
        self.buf = BytesMut::new();
        e
    }

    /// Reads the stream header and the first previous-tag-size.
    fn read_header(&mut self) -> Result<bool, FlvError> {
        // Check the signature as soon as it is there, not after 13 bytes.
        let sig_len = self.buf.len().min(4);
        let expected = [b'F', b'L', b'V', 1];
        if self.buf[..sig_len] != expected[..sig_len] {
            let mut sig = [0u8; 4];
            sig[..sig_len].copy_from_slice(&self.buf[..sig_len]);
            return Err(FlvError::BadSignature(sig));
        }
        if self.buf.len() < 9 {
            return Ok(false);
        }
        let size = u32::from_be_bytes([self.buf[5], self.buf[6], self.buf[7], self.buf[8]]);
        if !(9..=MAX_HEADER).contains(&size) {
            return Err(FlvError::BadHeaderSize(size));
        }
        let total = size as usize + 4;
        if self.buf.len() < total {
            return Ok(false);
        }
        self.flags = Some(self.buf[4]);
        self.buf.advance(total);
        Ok(true)
    }

    /// `Some(None)`: a tag of an unknown type was skipped.
    fn read_tag(&mut self) -> Result<Option<Option<Tag>>, FlvError> {
        if self.buf.len() < 11 {
            return Ok(None);
        }
        let h = &self.buf[..11];
        let type_byte = h[0];
        let size = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
        let timestamp = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        if size > self.limits.max_tag_size {
            return Err(FlvError::TagTooLarge {
                size,
                max: self.limits.max_tag_size,
            });
        }
        if type_byte & 0x20 != 0 {
            return Err(FlvError::Encrypted);
        }
        let total = size + TAG_OVERHEAD;
        if self.buf.len() < total {
            return Ok(None);
        }
        let mut tag = self.buf.split_to(total);
        tag.advance(11);
        tag.truncate(size);
        // The trailing previous-tag-size is not checked: writers disagree
        // on it and nothing depends on it in a stream read front to back.
        match TagKind::from_type_id(type_byte & 0x1f) {
            Some(kind) => Ok(Some(Some(Tag {
                kind,
                timestamp,
                body: tag.freeze(),
            }))),
            None => {
                self.skipped += 1;
                Ok(Some(None))
            }
        }
    }
}

impl Default for FlvReader {
    fn default() -> Self {
        Self::new(ReaderLimits::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stream(tags: &[Tag]) -> Vec<u8> {
        let mut out = BytesMut::new();
        out.extend_from_slice(&stream_header(true, true));
        for t in tags {
            write_tag(&mut out, t.kind, t.timestamp, &t.body).expect("small tag");
        }
        out.to_vec()
    }

    /// Feeds `data` in pieces of `step` bytes, polling between feeds.
    fn read_all(reader: &mut FlvReader, data: &[u8], step: usize) -> Result<Vec<Tag>, FlvError> {
        let mut tags = Vec::new();
        let mut rest = data;
        loop {
            while let Some(t) = reader.poll_tag()? {
                tags.push(t);
            }
            if rest.is_empty() {
                return Ok(tags);
            }
            let n = reader.feed(&rest[..rest.len().min(step)]);
            rest = &rest[n..];
        }
    }

    fn tag(kind: TagKind, timestamp: u32, body: &'static [u8]) -> Tag {
        Tag {
            kind,
            timestamp,
            body: Bytes::from_static(body),
        }
    }

    #[test]
    fn writes_the_header_and_tags_ffmpeg_expects() {
        let bytes = stream(&[tag(TagKind::Video, 0x0102_0304, &[0x17, 0, 0, 0, 0])]);
        assert_eq!(&bytes[..13], b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00");
        // type, size 5, timestamp 0x020304 + extended 0x01, stream id 0.
        assert_eq!(&bytes[13..24], &[9, 0, 0, 5, 2, 3, 4, 1, 0, 0, 0]);
        assert_eq!(&bytes[29..], &[0, 0, 0, 16]);
    }

    #[test]
    fn reads_tags_fed_one_byte_at_a_time() {
        let tags = vec![
            tag(TagKind::Script, 0, b"\x02\x00\x0aonMetaData"),
            tag(TagKind::Video, 0, &[0x17, 0, 0, 0, 0, 1]),
            tag(TagKind::Audio, 23, &[0xaf, 1, 9]),
        ];
        let mut r = FlvReader::default();
        assert_eq!(read_all(&mut r, &stream(&tags), 1), Ok(tags));
        assert_eq!(r.header_flags(), Some(5));
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn refuses_what_is_not_flv_at_the_first_byte() {
        let mut r = FlvReader::default();
        r.feed(b"G");
        assert_eq!(r.poll_tag(), Err(FlvError::BadSignature([b'G', 0, 0, 0])));
        // It stays failed.
        r.feed(b"LV");
        assert!(r.poll_tag().is_err());
    }

    #[test]
    fn refuses_a_tag_over_the_size_cap_before_buffering_it() {
        let mut r = FlvReader::new(ReaderLimits { max_tag_size: 100 });
        let mut data = stream_header(true, true).to_vec();
        data.extend_from_slice(&[9, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        r.feed(&data);
        assert_eq!(
            r.poll_tag(),
            Err(FlvError::TagTooLarge {
                size: 256,
                max: 100
            })
        );
    }

    #[test]
    fn holds_no_more_than_its_capacity() {
        let mut r = FlvReader::new(ReaderLimits { max_tag_size: 2000 });
        let big = vec![0u8; 1 << 20];
        let n = r.feed(&big);
        assert_eq!(n, r.capacity());
        assert_eq!(r.feed(&big), 0);
        assert!(r.poll_tag().is_err());
    }

    #[test]
    fn skips_tags_of_unknown_types() {
        let mut data = stream(&[]);
        data.extend_from_slice(&[7, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 12]);
        let audio = tag(TagKind::Audio, 5, &[0xaf, 1]);
        data.extend_from_slice(&encode_tag(&audio).expect("small"));
        let mut r = FlvReader::default();
        assert_eq!(read_all(&mut r, &data, 4096), Ok(vec![audio]));
        assert_eq!(r.skipped(), 1);
    }

    #[test]
    fn refuses_to_write_a_body_over_16_mib() {
        let mut out = BytesMut::new();
        let body = vec![0u8; MAX_BODY + 1];
        assert_eq!(
            write_tag(&mut out, TagKind::Video, 0, &body),
            Err(FlvError::BodyTooLarge(MAX_BODY + 1))
        );
        assert!(out.is_empty());
    }

    fn any_tag() -> impl Strategy<Value = Tag> {
        (
            prop_oneof![
                Just(TagKind::Audio),
                Just(TagKind::Video),
                Just(TagKind::Script)
            ],
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(kind, timestamp, body)| Tag {
                kind,
                timestamp,
                body: Bytes::from(body),
            })
    }

    proptest! {
        #[test]
        fn round_trips_any_tags_in_any_pieces(
            tags in proptest::collection::vec(any_tag(), 0..20),
            step in 1usize..700,
        ) {
            let mut r = FlvReader::new(ReaderLimits { max_tag_size: 300 });
            prop_assert_eq!(read_all(&mut r, &stream(&tags), step), Ok(tags));
        }

        #[test]
        fn never_panics_and_stays_bounded_on_any_bytes(
            data in proptest::collection::vec(any::<u8>(), 0..2000),
            step in 1usize..64,
        ) {
            let mut r = FlvReader::new(ReaderLimits { max_tag_size: 500 });
            let mut with_header = stream_header(true, true).to_vec();
            with_header.extend_from_slice(&data);
            for input in [&data[..], &with_header[..]] {
                let _ = read_all(&mut r, input, step);
                prop_assert!(r.buffered() <= r.capacity());
                r = FlvReader::new(ReaderLimits { max_tag_size: 500 });
            }
        }
    }
}
