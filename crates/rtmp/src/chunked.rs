//! A media message split into chunks once and sent as is on every
//! connection that uses the same chunk size and chunk stream.
//!
//! A relay sends each message it receives to many destinations. Chunking
//! it per destination would cost one small header buffer per chunk and a
//! vector of slices per destination; here the payload is laid out once,
//! with the one-byte type-3 header of each continuation chunk in place, and
//! a destination adds only its own type-0 header (its timestamp and message
//! stream id) in front: two buffers per message, whatever its size.
//!
//! A connection whose chunk size differs, or whose timestamp needs the
//! extended field (which type-3 headers then repeat), falls back to
//! chunking for itself, still without copying the payload when the chunk
//! size matches.

use bytes::{BufMut, Bytes, BytesMut};

use crate::chunk::{ChunkEncoder, MessageHeader};

/// A message payload laid out as chunks for one chunk stream id and one
/// chunk size; cheap to clone (shared bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedPayload {
    /// Payload with a type-3 basic header before each chunk but the first.
    body: Bytes,
    len: usize,
    csid: u32,
    chunk_size: u32,
}

/// Length of the basic header of `csid`.
fn basic_header_len(csid: u32) -> usize {
    match csid {
        2..=63 => 1,
        64..=319 => 2,
        _ => 3,
    }
}

impl ChunkedPayload {
    /// Lays out `payload` for chunk stream `csid` and `chunk_size`
    /// (clamped to 1..=2^31-1). A payload that fits in one chunk is not
    /// copied; a longer one is copied once.
    pub fn new(csid: u32, chunk_size: u32, payload: Bytes) -> Self {
        let chunk_size = chunk_size.clamp(1, 0x7fff_ffff);
        let len = payload.len();
        let cs = chunk_size as usize;
        if len <= cs {
            return Self {
                body: payload,
                len,
                csid,
                chunk_size,
            };
        }
        let chunks = len.div_ceil(cs);
        let mut header = BytesMut::new();
        ChunkEncoder::put_basic_header(&mut header, 3, csid);
        let mut body = BytesMut::with_capacity(len + (chunks - 1) * header.len());
        for (i, chunk) in payload.chunks(cs).enumerate() {
            if i > 0 {
                body.put_slice(&header);
            }
            body.put_slice(chunk);
        }
        Self {
            body: body.freeze(),
            len,
            csid,
            chunk_size,
        }
    }

    /// A payload that is never chunked here (metadata, commands): callers
    /// use [`ChunkedPayload::to_payload`].
    pub fn whole(payload: Bytes) -> Self {
        let len = payload.len();
        Self {
            body: payload,
            len,
            csid: 0,
            chunk_size: 0x7fff_ffff,
        }
    }

    /// Length of the message payload (not of its chunked layout).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn csid(&self) -> u32 {
        self.csid
    }

    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// The payload's chunks, as slices of the shared layout (no copy).
    pub fn payload_chunks(&self) -> impl Iterator<Item = Bytes> + '_ {
        let cs = self.chunk_size as usize;
        let hdr = basic_header_len(self.csid);
        let mut pos = 0;
        let mut left = self.len;
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            let take = left.min(cs);
            let chunk = self.body.slice(pos..pos + take);
            pos += take + hdr;
            left -= take;
            Some(chunk)
        })
    }

    /// The payload as one buffer: shared when it is one chunk, copied
    /// otherwise.
    pub fn to_payload(&self) -> Bytes {
        if self.len <= self.chunk_size as usize {
            return self.body.clone();
        }
        let mut out = BytesMut::with_capacity(self.len);
        for c in self.payload_chunks() {
            out.put_slice(&c);
        }
        out.freeze()
    }
}

impl ChunkEncoder {
    /// Encodes one message whose payload was laid out beforehand: with the
    /// same chunk size and chunk stream and a timestamp below 2^24-1, that
    /// is this connection's type-0 header followed by the shared layout.
    /// Otherwise the message is chunked here, with the same bytes on the
    /// wire as [`ChunkEncoder::encode_parts`].
    pub fn encode_chunked(
        &mut self,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        payload: &ChunkedPayload,
        out: &mut Vec<Bytes>,
    ) {
        let extended = timestamp >= 0x00ff_ffff;
        if payload.chunk_size != self.chunk_size {
            let whole = payload.to_payload();
            self.encode_parts(payload.csid, timestamp, type_id, stream_id, &whole, out);
            return;
        }
        let header = MessageHeader {
            csid: payload.csid,
            timestamp,
            len: payload.len,
            type_id,
            stream_id,
        };
        if !extended {
            header.put(&mut self.headers, true);
            out.push(self.headers.split().freeze());
            if !payload.body.is_empty() {
                out.push(payload.body.clone());
            }
            return;
        }
        // Extended timestamps repeat in every type-3 header: chunk here,
        // on slices of the shared layout.
        if payload.len == 0 {
            header.put(&mut self.headers, true);
            out.push(self.headers.split().freeze());
            return;
        }
        for (i, chunk) in payload.payload_chunks().enumerate() {
            header.put(&mut self.headers, i == 0);
            out.push(self.headers.split().freeze());
            out.push(chunk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn joined(parts: &[Bytes]) -> Vec<u8> {
        parts.iter().flat_map(|p| p.iter().copied()).collect()
    }

    fn via_parts(cs: u32, csid: u32, ts: u32, payload: &Bytes) -> Vec<u8> {
        let mut enc = ChunkEncoder::new();
        enc.set_chunk_size(cs);
        let mut parts = Vec::new();
        enc.encode_parts(csid, ts, 9, 1, payload, &mut parts);
        joined(&parts)
    }

    #[test]
    fn one_chunk_is_not_copied_and_a_long_payload_is_two_buffers() {
        let small = Bytes::from(vec![1u8; 100]);
        let c = ChunkedPayload::new(6, 128, small.clone());
        assert_eq!(c.body.as_ptr(), small.as_ptr());
        let big = Bytes::from(vec![2u8; 10_000]);
        let c = ChunkedPayload::new(6, 4096, big.clone());
        let mut enc = ChunkEncoder::new();
        enc.set_chunk_size(4096);
        let mut parts = Vec::new();
        enc.encode_chunked(1000, 9, 1, &c, &mut parts);
        assert_eq!(parts.len(), 2, "header + shared layout");
        assert_eq!(joined(&parts), via_parts(4096, 6, 1000, &big));
        assert_eq!(c.to_payload(), big);
    }

    proptest! {
        /// The same bytes on the wire as chunking per connection, for
        /// every chunk size, chunk stream id (1, 2 and 3-byte basic
        /// headers), timestamp (extended or not) and length, including a
        /// connection whose chunk size differs from the layout's.
        #[test]
        fn same_wire_bytes_as_encode_parts(
            layout_cs in 1u32..600,
            conn_cs in prop_oneof![Just(0u32), 1u32..600],
            csid in prop_oneof![2u32..64, 64u32..320, 320u32..65_600],
            ts in prop_oneof![0u32..0x00ff_ffff, 0x00ff_fffeu32..=u32::MAX],
            len in 0usize..3000,
        ) {
            let payload = Bytes::from((0..len).map(|i| (i * 7 % 251) as u8).collect::<Vec<_>>());
            let c = ChunkedPayload::new(csid, layout_cs, payload.clone());
            prop_assert_eq!(c.len(), len);
            prop_assert_eq!(&c.to_payload(), &payload);
            let cs = if conn_cs == 0 { layout_cs } else { conn_cs };
            let mut enc = ChunkEncoder::new();
            enc.set_chunk_size(cs);
            let mut parts = Vec::new();
            enc.encode_chunked(ts, 9, 1, &c, &mut parts);
            prop_assert_eq!(joined(&parts), via_parts(cs, csid, ts, &payload));
        }
    }
}
