//! The RTMP chunk stream: messages cut into chunks of at most `chunk size`
//! bytes, interleaved across chunk stream ids, with compressed headers.
//!
//! [`ChunkDecoder`] reassembles messages from untrusted bytes within hard
//! limits ([`DecoderLimits`]): it never buffers more than one chunk beyond
//! the messages it is assembling, each of which is capped, the messages in
//! assembly together are capped too (so many chunk streams cannot each hold
//! a message but one byte), and it tracks a bounded number of chunk streams.
//! The limits can change while decoding ([`ChunkDecoder::set_limits`]): a
//! server allows what commands need before a key is checked and what media
//! needs after. [`ChunkEncoder`] always writes a full
//! (type 0) header for a message's first chunk, so the bytes it produces
//! depend only on the message and the chunk size.

use std::collections::HashMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// A message reassembled from chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    pub csid: u32,
    pub timestamp: u32,
    pub type_id: u8,
    pub stream_id: u32,
    pub payload: Bytes,
}

/// Bounds the decoder enforces on what a peer may make it hold.
#[derive(Debug, Clone, Copy)]
pub struct DecoderLimits {
    /// Largest message accepted (bytes). A 4K keyframe at high bitrate is
    /// a few MiB; the default leaves ample room.
    pub max_message_size: u32,
    /// Most chunk streams a peer may use at once. Real clients use fewer
    /// than ten.
    pub max_chunk_streams: usize,
    /// Most payload bytes held at once across the messages being assembled
    /// (counting the chunk being read), whatever the number of chunk
    /// streams.
    pub max_buffered: usize,
}

impl DecoderLimits {
    /// What media needs: an 8 MiB message (a 4K keyframe at high bitrate is
    /// a few MiB), 64 chunk streams, 16 MiB in assembly.
    pub const MEDIA: DecoderLimits = DecoderLimits {
        max_message_size: 8 * 1024 * 1024,
        max_chunk_streams: 64,
        max_buffered: 16 * 1024 * 1024,
    };

    /// What the commands before a publication need (`connect`,
    /// `createStream`, `publish`: a few hundred bytes each): 64 KiB per
    /// message, 8 chunk streams, 128 KiB in assembly. nginx-rtmp allows 1 MB
    /// and 32 chunk streams to everyone.
    pub const COMMANDS: DecoderLimits = DecoderLimits {
        max_message_size: 64 * 1024,
        max_chunk_streams: 8,
        max_buffered: 128 * 1024,
    };
}

impl Default for DecoderLimits {
    fn default() -> Self {
        Self::MEDIA
    }
}

/// Why the chunk stream cannot be decoded; the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge { size: u32, limit: u32 },
    #[error("peer opened more than {0} chunk streams")]
    TooManyChunkStreams(usize),
    #[error("messages in assembly would hold more than {limit} bytes")]
    TooMuchBuffered { limit: usize },
    #[error("invalid chunk size {0} (must be 1 to 2147483647)")]
    InvalidChunkSize(u32),
    #[error("set chunk size message is {0} bytes long, expected 4")]
    MalformedSetChunkSize(usize),
    #[error(
        "chunk of type {fmt} on chunk stream {csid} continues a message that was never started"
    )]
    NoPreviousHeader { fmt: u8, csid: u32 },
}

#[derive(Debug, Default)]
struct ChunkStream {
    timestamp: u32,
    delta: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    extended: bool,
    has_header: bool,
    /// Payload of the message being assembled (empty between messages).
    partial: BytesMut,
    /// Whether a message is being assembled (it may be empty so far).
    in_progress: bool,
}

/// Reassembles messages from chunk bytes, sans-IO.
#[derive(Debug)]
pub struct ChunkDecoder {
    buf: BytesMut,
    chunk_size: u32,
    streams: HashMap<u32, ChunkStream>,
    limits: DecoderLimits,
    /// Payload bytes held in `partial` across chunk streams.
    held: usize,
    /// Total bytes fed so far (for acknowledgements).
    bytes_in: u64,
}

/// Default chunk size before a Set Chunk Size message.
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Message type of Set Chunk Size.
const SET_CHUNK_SIZE: u8 = 1;
/// Message type of Abort.
const ABORT: u8 = 2;
/// Most the decoder reserves ahead of the bytes it has received.
const RESERVE_MAX: usize = 64 * 1024;

impl ChunkDecoder {
    pub fn new(limits: DecoderLimits) -> Self {
        Self {
            buf: BytesMut::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: HashMap::new(),
            limits,
            held: 0,
            bytes_in: 0,
        }
    }

    /// Applies other limits from the next chunk on (a server raises them
    /// once a publisher's key is checked). Chunk streams already open stay
    /// open.
    pub fn set_limits(&mut self, limits: DecoderLimits) {
        self.limits = limits;
    }

    /// The limits in force.
    pub fn limits(&self) -> DecoderLimits {
        self.limits
    }

    /// Appends bytes received from the peer.
    pub fn push(&mut self, data: &[u8]) {
        self.bytes_in += data.len() as u64;
        self.buf.extend_from_slice(data);
    }

    /// Bytes received so far.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    /// Bytes held but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The chunk size the peer currently uses.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// The next complete message, `None` if more bytes are needed.
    /// Set Chunk Size and Abort take effect here, and are returned too.
    pub fn next_message(&mut self) -> Result<Option<RawMessage>, ChunkError> {
        loop {
            match self.next_chunk()? {
                ChunkOutcome::NeedMore => return Ok(None),
                ChunkOutcome::Partial => continue,
                ChunkOutcome::Message(msg) => {
                    match msg.type_id {
                        SET_CHUNK_SIZE => {
                            if msg.payload.len() < 4 {
                                return Err(ChunkError::MalformedSetChunkSize(msg.payload.len()));
                            }
                            let size = u32::from_be_bytes([
                                msg.payload[0],
                                msg.payload[1],
                                msg.payload[2],
                                msg.payload[3],
                            ]);
                            if size == 0 || size > 0x7fff_ffff {
                                return Err(ChunkError::InvalidChunkSize(size));
                            }
                            self.chunk_size = size;
                        }
                        ABORT if msg.payload.len() >= 4 => {
                            let csid = u32::from_be_bytes([
                                msg.payload[0],
                                msg.payload[1],
                                msg.payload[2],
                                msg.payload[3],
                            ]);
                            if let Some(s) = self.streams.get_mut(&csid) {
                                self.held -= s.partial.len();
                                s.partial = BytesMut::new();
                                s.in_progress = false;
                            }
                        }
                        _ => {}
                    }
                    return Ok(Some(msg));
                }
            }
        }
    }

    fn next_chunk(&mut self) -> Result<ChunkOutcome, ChunkError> {
        let buf = &self.buf[..];
        let Some(&first) = buf.first() else {
            return Ok(ChunkOutcome::NeedMore);
        };
        let fmt = first >> 6;
        let (csid, mut pos) = match first & 0x3f {
            0 => match buf.get(1) {
                Some(b) => (64 + *b as u32, 2),
                None => return Ok(ChunkOutcome::NeedMore),
            },
            1 => match (buf.get(1), buf.get(2)) {
                (Some(lo), Some(hi)) => (64 + *lo as u32 + ((*hi as u32) << 8), 3),
                _ => return Ok(ChunkOutcome::NeedMore),
            },
            n => (n as u32, 1),
        };
        let header_len = match fmt {
            0 => 11,
            1 => 7,
            2 => 3,
            _ => 0,
        };
        if buf.len() < pos + header_len {
            return Ok(ChunkOutcome::NeedMore);
        }
        if !self.streams.contains_key(&csid) {
            if self.streams.len() >= self.limits.max_chunk_streams {
                return Err(ChunkError::TooManyChunkStreams(
                    self.limits.max_chunk_streams,
                ));
            }
            if fmt != 0 {
                return Err(ChunkError::NoPreviousHeader { fmt, csid });
            }
        }
        let h = &buf[pos..pos + header_len];
        let be24 = |b: &[u8]| ((b[0] as u32) << 16) | ((b[1] as u32) << 8) | b[2] as u32;
        let ts_field = if fmt <= 2 { be24(h) } else { 0 };
        let length = if fmt <= 1 { Some(be24(&h[3..6])) } else { None };
        let type_id = if fmt <= 1 { Some(h[6]) } else { None };
        let stream_id = if fmt == 0 {
            Some(u32::from_le_bytes([h[7], h[8], h[9], h[10]]))
        } else {
            None
        };
        pos += header_len;

        // Snapshot of what this chunk stream knows, to decide on the
        // extended timestamp before mutating anything.
        let (prev_extended, in_progress, has_header) = self
            .streams
            .get(&csid)
            .map(|s| (s.extended, s.in_progress, s.has_header))
            .unwrap_or((false, false, false));
        if fmt == 3 && !has_header {
            return Err(ChunkError::NoPreviousHeader { fmt, csid });
        }
        let extended = if fmt <= 2 {
            ts_field == 0x00ff_ffff
        } else {
            prev_extended
        };
        let ext_ts = if extended {
            if buf.len() < pos + 4 {
                return Ok(ChunkOutcome::NeedMore);
            }
            let v = u32::from_be_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]);
            pos += 4;
            Some(v)
        } else {
            None
        };

        // The message length this chunk belongs to, and how much payload
        // the chunk carries.
        let stream = self.streams.get(&csid);
        let msg_len = length.or(stream.map(|s| s.length)).unwrap_or(0);
        if msg_len > self.limits.max_message_size {
            return Err(ChunkError::MessageTooLarge {
                size: msg_len,
                limit: self.limits.max_message_size,
            });
        }
        let already = if in_progress && fmt == 3 {
            stream.map(|s| s.partial.len()).unwrap_or(0)
        } else {
            0
        };
        let remaining = (msg_len as usize).saturating_sub(already);
        let take = remaining.min(self.chunk_size as usize);
        // What the messages in assembly will hold with this chunk: decided
        // from the header alone, so whether the chunk's bytes are here yet
        // does not change the outcome.
        let abandoned = if fmt == 3 && in_progress {
            0
        } else {
            stream.map(|s| s.partial.len()).unwrap_or(0)
        };
        if self.held - abandoned + take > self.limits.max_buffered {
            return Err(ChunkError::TooMuchBuffered {
                limit: self.limits.max_buffered,
            });
        }
        if self.buf.len() < pos + take {
            // Reserve for the chunk so that it does not reallocate
            // repeatedly as it trickles in, but only up to RESERVE_MAX: a
            // header alone must not make us hold what it announces.
            self.buf
                .reserve((pos + take - self.buf.len()).min(RESERVE_MAX));
            return Ok(ChunkOutcome::NeedMore);
        }

        // The chunk is complete in the buffer: commit.
        let stream = self.streams.entry(csid).or_default();
        let continuing = fmt == 3 && stream.in_progress;
        if !continuing {
            // A header of type 0, 1 or 2 starts a new message; a partial
            // one left on this chunk stream is abandoned (as an Abort would).
            let ts = ext_ts.unwrap_or(ts_field);
            match fmt {
                0 => {
                    stream.timestamp = ts;
                    stream.delta = 0;
                }
                1 | 2 => {
                    stream.delta = ts;
                    stream.timestamp = stream.timestamp.wrapping_add(ts);
                }
                _ => stream.timestamp = stream.timestamp.wrapping_add(stream.delta),
            }
            if let Some(l) = length {
                stream.length = l;
            }
            if let Some(t) = type_id {
                stream.type_id = t;
            }
            if let Some(s) = stream_id {
                stream.stream_id = s;
            }
            self.held -= stream.partial.len();
            stream.partial = BytesMut::new();
            stream.in_progress = true;
        }
        stream.extended = extended;
        stream.has_header = true;

        self.buf.advance(pos);
        // Copied out of the receive buffer, never split from it: a frame
        // kept for a GOP must not keep the whole buffer it arrived in (all
        // the bytes read with it) alive, and a buffer nothing else shares
        // is reused for the next reads instead of a new one per read.
        let payload = &self.buf[..take];
        let complete = stream.partial.len() + take == stream.length as usize;
        let payload = if stream.partial.is_empty() && complete {
            // One-chunk message: one copy, of at most a chunk.
            let whole = Bytes::copy_from_slice(payload);
            self.buf.advance(take);
            whole
        } else {
            if stream.partial.is_empty() {
                // Not the announced length: on many chunk streams at once,
                // that is memory the peer has not sent (it grows as
                // chunks arrive).
                stream
                    .partial
                    .reserve((stream.length as usize).min(RESERVE_MAX));
            }
            stream.partial.extend_from_slice(payload);
            self.buf.advance(take);
            if !complete {
                self.held += take;
                return Ok(ChunkOutcome::Partial);
            }
            self.held -= stream.partial.len() - take;
            std::mem::take(&mut stream.partial).freeze()
        };
        stream.in_progress = false;
        Ok(ChunkOutcome::Message(RawMessage {
            csid,
            timestamp: stream.timestamp,
            type_id: stream.type_id,
            stream_id: stream.stream_id,
            payload,
        }))
    }
}

enum ChunkOutcome {
    NeedMore,
    Partial,
    Message(RawMessage),
}

/// What the chunk headers of one outgoing message carry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessageHeader {
    pub csid: u32,
    pub timestamp: u32,
    pub len: usize,
    pub type_id: u8,
    pub stream_id: u32,
}

impl MessageHeader {
    /// Writes the header of one chunk of the message: type 0 for the
    /// first, type 3 for the others; a timestamp of 2^24-1 or more goes in
    /// the extended field, which type-3 headers then repeat.
    pub(crate) fn put(&self, out: &mut BytesMut, first: bool) {
        let extended = self.timestamp >= 0x00ff_ffff;
        ChunkEncoder::put_basic_header(out, if first { 0 } else { 3 }, self.csid);
        if first {
            let ts24 = if extended {
                0x00ff_ffff
            } else {
                self.timestamp
            };
            out.put_uint(ts24 as u64, 3);
            out.put_uint(self.len as u64, 3);
            out.put_u8(self.type_id);
            out.put_u32_le(self.stream_id);
        }
        if extended {
            out.put_u32(self.timestamp);
        }
    }
}

/// Writes messages as chunks, sans-IO.
#[derive(Debug)]
pub struct ChunkEncoder {
    pub(crate) chunk_size: u32,
    pub(crate) headers: BytesMut,
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkEncoder {
    pub fn new() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            headers: BytesMut::new(),
        }
    }

    /// The chunk size used for messages encoded from now on. The caller
    /// sends the matching Set Chunk Size message first.
    pub fn set_chunk_size(&mut self, size: u32) {
        self.chunk_size = size.clamp(1, 0x7fff_ffff);
    }

    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    pub(crate) fn put_basic_header(out: &mut BytesMut, fmt: u8, csid: u32) {
        match csid {
            2..=63 => out.put_u8((fmt << 6) | csid as u8),
            64..=319 => {
                out.put_u8(fmt << 6);
                out.put_u8((csid - 64) as u8);
            }
            _ => {
                let v = csid.clamp(320, 65_599) - 64;
                out.put_u8((fmt << 6) | 1);
                out.put_u8((v & 0xff) as u8);
                out.put_u8((v >> 8) as u8);
            }
        }
    }

    /// Encodes one message as a sequence of buffers: small header buffers
    /// interleaved with slices of `payload` (no copy of the payload).
    pub fn encode_parts(
        &mut self,
        csid: u32,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        payload: &Bytes,
        out: &mut Vec<Bytes>,
    ) {
        let len = payload.len();
        let header = MessageHeader {
            csid,
            timestamp,
            len,
            type_id,
            stream_id,
        };
        let mut offset = 0;
        loop {
            header.put(&mut self.headers, offset == 0);
            out.push(self.headers.split().freeze());
            let take = (len - offset).min(self.chunk_size as usize);
            if take > 0 {
                out.push(payload.slice(offset..offset + take));
            }
            offset += take;
            if offset >= len {
                break;
            }
        }
    }

    /// Encodes one message into a contiguous buffer (for control messages
    /// and commands, where a copy is cheaper than a vector of parts).
    pub fn encode_into(
        &mut self,
        csid: u32,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        payload: &[u8],
        out: &mut BytesMut,
    ) {
        let header = MessageHeader {
            csid,
            timestamp,
            len: payload.len(),
            type_id,
            stream_id,
        };
        let mut offset = 0;
        loop {
            header.put(out, offset == 0);
            let take = (payload.len() - offset).min(self.chunk_size as usize);
            out.put_slice(&payload[offset..offset + take]);
            offset += take;
            if offset >= payload.len() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests;
