//! A cheap RTMP chunk-stream scanner for the sink.
//!
//! The relay under test sends each destination ~6 Mbit/s; at 1,000
//! destinations the sink reads ~750 MB/s on one core, so it cannot afford
//! to reassemble media messages the way `antenne_rtmp::chunk::ChunkDecoder`
//! does (a copy of every payload). The scanner walks chunk headers and
//! skips payload bytes. Of a media message it keeps only what the benchmark
//! needs: type, length, the first two bytes (keyframe, sequence header) and
//! the last eight (to match the message with what the publisher sent).
//! Protocol control and command messages, which are small, are buffered
//! whole so that the session can answer them.
//!
//! Sans-IO: bytes in, completed [`Msg`]s out through a callback.

use std::fmt;

/// Types whose body is buffered whole: protocol control, user control,
/// AMF0 commands.
fn buffered(type_id: u8) -> bool {
    matches!(type_id, 1..=6 | 20)
}

/// Largest buffered (control or command) message accepted.
pub const MAX_BUFFERED: u32 = 64 * 1024;
/// Largest media message accepted (the FLV tag size limit).
pub const MAX_MESSAGE: u32 = 0x00ff_ffff;
/// Largest chunk size a peer may announce.
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;
/// Distinct chunk stream ids a peer may use on one connection.
pub const MAX_CHUNK_STREAMS: usize = 64;

/// Why the byte stream is not RTMP we accept; the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError(pub String);

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScanError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ScanError> {
    Err(ScanError(msg.into()))
}

/// One complete message, as far as the scanner looked at it.
#[derive(Debug)]
pub struct Msg<'a> {
    pub type_id: u8,
    pub len: u32,
    /// Up to the first two payload bytes.
    pub head: &'a [u8],
    /// The last (up to) eight payload bytes, big-endian in a u64 (shorter
    /// payloads are right-aligned).
    pub tail: u64,
    /// The whole payload, for buffered types only.
    pub body: Option<&'a [u8]>,
}

#[derive(Debug)]
struct ChunkStream {
    csid: u32,
    /// The last full header carried an extended timestamp (so continuation
    /// chunks carry one too).
    ext_ts: bool,
    len: u32,
    type_id: u8,
    stream_id: u32,
    /// Payload bytes still expected for the message in progress; 0 = none
    /// in progress.
    remaining: u32,
    head: [u8; 2],
    head_n: u8,
    tail: u64,
    body: Vec<u8>,
}

impl ChunkStream {
    fn new(csid: u32) -> Self {
        Self {
            csid,
            ext_ts: false,
            len: 0,
            type_id: 0,
            stream_id: 0,
            remaining: 0,
            head: [0; 2],
            head_n: 0,
            tail: 0,
            body: Vec::new(),
        }
    }
}

/// The chunk-stream scanner of one connection (the peer → sink direction).
#[derive(Debug)]
pub struct Scanner {
    chunk_size: u32,
    streams: Vec<ChunkStream>,
    hdr: [u8; 18],
    hdr_len: usize,
    /// The chunk being read: index in `streams` and payload bytes left in
    /// this chunk.
    cur: Option<(usize, u32)>,
    bytes_in: u64,
}

impl Default for Scanner {
    fn default() -> Self {
        Self::new()
    }
}

impl Scanner {
    pub fn new() -> Self {
        Self {
            chunk_size: 128,
            streams: Vec::new(),
            hdr: [0; 18],
            hdr_len: 0,
            cur: None,
            bytes_in: 0,
        }
    }

    /// Bytes fed so far.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    fn stream_index(&self, csid: u32) -> Option<usize> {
        self.streams.iter().position(|s| s.csid == csid)
    }

    /// Header length needed so far, from the bytes already in `hdr`
    /// (at least one byte must be there).
    fn header_need(&self) -> usize {
        let h = &self.hdr[..self.hdr_len];
        let fmt = h[0] >> 6;
        let basic = match h[0] & 0x3f {
            0 => 2,
            1 => 3,
            _ => 1,
        };
        if h.len() < basic {
            return basic;
        }
        let need = basic + [11, 7, 3, 0][fmt as usize];
        if h.len() < need {
            return need;
        }
        let ext = if fmt < 3 {
            h[basic..basic + 3] == [0xff, 0xff, 0xff]
        } else {
            let csid = basic_csid(h);
            self.stream_index(csid)
                .map(|i| self.streams[i].ext_ts)
                .unwrap_or(false)
        };
        need + if ext { 4 } else { 0 }
    }

    /// Feeds received bytes; `on_msg` gets every message completed by them.
    /// An error means the connection must be closed.
    pub fn feed<F>(&mut self, mut data: &[u8], mut on_msg: F) -> Result<(), ScanError>
    where
        F: FnMut(&Msg<'_>) -> Result<(), ScanError>,
    {
        self.bytes_in += data.len() as u64;
        while !data.is_empty() {
            let Some((idx, left)) = self.cur else {
                // Collect a chunk header.
                if self.hdr_len == 0 {
                    self.hdr[0] = data[0];
                    self.hdr_len = 1;
                    data = &data[1..];
                }
                let mut need = self.header_need();
                while self.hdr_len < need {
                    if data.is_empty() {
                        return Ok(());
                    }
                    let take = (need - self.hdr_len).min(data.len());
                    self.hdr[self.hdr_len..self.hdr_len + take].copy_from_slice(&data[..take]);
                    self.hdr_len += take;
                    data = &data[take..];
                    need = self.header_need();
                }
                self.start_chunk(&mut on_msg)?;
                continue;
            };
            let cs = &mut self.streams[idx];
            let take = (left as usize).min(data.len());
            let (part, rest) = data.split_at(take);
            data = rest;
            let offset = cs.len - cs.remaining;
            if offset < 2 {
                for &b in part.iter().take(2 - offset as usize) {
                    cs.head[cs.head_n as usize] = b;
                    cs.head_n += 1;
                }
            }
            for &b in &part[part.len().saturating_sub(8)..] {
                cs.tail = (cs.tail << 8) | b as u64;
            }
            if buffered(cs.type_id) {
                cs.body.extend_from_slice(part);
            }
            cs.remaining -= take as u32;
            let left = left - take as u32;
            self.cur = if left == 0 { None } else { Some((idx, left)) };
            if cs.remaining == 0 {
                self.cur = None;
                self.complete(idx, &mut on_msg)?;
            }
        }
        Ok(())
    }

    /// A full header is in `hdr`: apply it and start reading its payload.
    fn start_chunk<F>(&mut self, on_msg: &mut F) -> Result<(), ScanError>
    where
        F: FnMut(&Msg<'_>) -> Result<(), ScanError>,
    {
        let h = self.hdr;
        let hl = self.hdr_len;
        self.hdr_len = 0;
        let fmt = h[0] >> 6;
        let csid = basic_csid(&h[..hl]);
        let basic = match h[0] & 0x3f {
            0 => 2,
            1 => 3,
            _ => 1,
        };
        let idx = match self.stream_index(csid) {
            Some(i) => i,
            None => {
                if fmt != 0 {
                    return err(format!(
                        "chunk of format {fmt} on new chunk stream {csid} (no previous header)"
                    ));
                }
                if self.streams.len() >= MAX_CHUNK_STREAMS {
                    return err(format!("more than {MAX_CHUNK_STREAMS} chunk streams"));
                }
                self.streams.push(ChunkStream::new(csid));
                self.streams.len() - 1
            }
        };
        let m = &h[basic..hl];
        let cs = &mut self.streams[idx];
        let new_message = match fmt {
            0 | 1 => {
                let len = u32::from_be_bytes([0, m[3], m[4], m[5]]);
                cs.len = len;
                cs.type_id = m[6];
                if fmt == 0 {
                    cs.stream_id = u32::from_le_bytes([m[7], m[8], m[9], m[10]]);
                }
                cs.ext_ts = m[..3] == [0xff, 0xff, 0xff];
                true
            }
            2 => {
                cs.ext_ts = m[..3] == [0xff, 0xff, 0xff];
                true
            }
            _ => cs.remaining == 0,
        };
        if new_message {
            // A new full header in the middle of a message abandons it (as
            // common servers do).
            let limit = if buffered(cs.type_id) {
                MAX_BUFFERED
            } else {
                MAX_MESSAGE
            };
            if cs.len > limit {
                return err(format!(
                    "message of type {} is {} bytes long (limit {limit})",
                    cs.type_id, cs.len
                ));
            }
            cs.remaining = cs.len;
            cs.head_n = 0;
            cs.tail = 0;
            cs.body.clear();
            if cs.len == 0 {
                return self.complete(idx, on_msg);
            }
        }
        let left = cs.remaining.min(self.chunk_size);
        self.cur = Some((idx, left));
        Ok(())
    }

    fn complete<F>(&mut self, idx: usize, on_msg: &mut F) -> Result<(), ScanError>
    where
        F: FnMut(&Msg<'_>) -> Result<(), ScanError>,
    {
        let cs = &self.streams[idx];
        let body = buffered(cs.type_id).then_some(cs.body.as_slice());
        match cs.type_id {
            1 => {
                let Some(b) = body.and_then(|b| b.get(..4)) else {
                    return err("short Set Chunk Size");
                };
                let size = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff;
                if size == 0 || size > MAX_CHUNK_SIZE {
                    return err(format!("chunk size {size} out of range"));
                }
                self.chunk_size = size;
            }
            2 => {
                // Abort: drop the partial message of that chunk stream.
                if let Some(b) = body.and_then(|b| b.get(..4)) {
                    let target = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                    if let Some(i) = self.stream_index(target) {
                        self.streams[i].remaining = 0;
                        if matches!(self.cur, Some((c, _)) if c == i) {
                            self.cur = None;
                        }
                    }
                }
            }
            _ => {}
        }
        let cs = &self.streams[idx];
        on_msg(&Msg {
            type_id: cs.type_id,
            len: cs.len,
            head: &cs.head[..cs.head_n as usize],
            tail: cs.tail,
            body: buffered(cs.type_id).then_some(cs.body.as_slice()),
        })
    }
}

/// The chunk stream id of a basic header (the bytes must be there).
fn basic_csid(h: &[u8]) -> u32 {
    match h[0] & 0x3f {
        0 => 64 + h[1] as u32,
        1 => 64 + h[1] as u32 + 256 * h[2] as u32,
        n => n as u32,
    }
}

/// The last eight bytes of `payload` as [`Msg::tail`] has them.
pub fn tail_of(payload: &[u8]) -> u64 {
    payload[payload.len().saturating_sub(8)..]
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | b as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use antenne_rtmp::chunk::ChunkEncoder;
    use bytes::{Bytes, BytesMut};

    #[derive(Debug, PartialEq)]
    struct Seen {
        type_id: u8,
        len: u32,
        head: Vec<u8>,
        tail: u64,
        body: Option<Vec<u8>>,
    }

    fn scan_in_pieces(bytes: &[u8], piece: usize) -> Result<Vec<Seen>, ScanError> {
        let mut s = Scanner::new();
        let mut seen = Vec::new();
        for p in bytes.chunks(piece.max(1)) {
            s.feed(p, |m| {
                seen.push(Seen {
                    type_id: m.type_id,
                    len: m.len,
                    head: m.head.to_vec(),
                    tail: m.tail,
                    body: m.body.map(<[u8]>::to_vec),
                });
                Ok(())
            })?;
        }
        Ok(seen)
    }

    fn sample_stream() -> (Vec<u8>, Vec<Seen>) {
        let mut enc = ChunkEncoder::new();
        let mut out = BytesMut::new();
        let mut want = Vec::new();
        // Set Chunk Size 4096, as publishers do, then messages bigger than
        // a chunk, an extended timestamp, an empty message.
        enc.encode_into(2, 0, 1, 0, &4096u32.to_be_bytes(), &mut out);
        want.push(Seen {
            type_id: 1,
            len: 4,
            head: vec![0, 0],
            tail: 4096,
            body: Some(4096u32.to_be_bytes().to_vec()),
        });
        enc.set_chunk_size(4096);
        let cmd = b"\x02\x00\x07connect".to_vec();
        enc.encode_into(3, 0, 20, 0, &cmd, &mut out);
        want.push(Seen {
            type_id: 20,
            len: cmd.len() as u32,
            head: cmd[..2].to_vec(),
            tail: tail_of(&cmd),
            body: Some(cmd.clone()),
        });
        for (i, size) in [10_000usize, 1, 0, 4096, 4097, 70_000]
            .into_iter()
            .enumerate()
        {
            let payload: Vec<u8> = (0..size).map(|k| (k * 7 + i) as u8).collect();
            let ts = if i == 3 { 0x0100_0000 } else { 40 * i as u32 };
            let mut parts = Vec::new();
            enc.encode_parts(6, ts, 9, 1, &Bytes::from(payload.clone()), &mut parts);
            for p in parts {
                out.extend_from_slice(&p);
            }
            want.push(Seen {
                type_id: 9,
                len: size as u32,
                head: payload[..size.min(2)].to_vec(),
                tail: tail_of(&payload),
                body: None,
            });
        }
        (out.to_vec(), want)
    }

    #[test]
    fn messages_are_found_whatever_the_read_boundaries() {
        let (bytes, want) = sample_stream();
        for piece in [1, 2, 3, 7, 11, 100, 4096, 5000, bytes.len()] {
            assert_eq!(
                scan_in_pieces(&bytes, piece).expect("valid"),
                want,
                "{piece}"
            );
        }
    }

    #[test]
    fn compressed_headers_reuse_the_previous_one() {
        // fmt 0 then fmt 1 (new length/type), fmt 2 (same length), fmt 3
        // (same everything) on one chunk stream.
        let mut b = vec![0x04, 0, 0, 0, 0, 0, 3, 8, 1, 0, 0, 0, b'a', b'b', b'c'];
        b.extend_from_slice(&[0x44, 0, 0, 20, 0, 0, 2, 9, b'x', b'y']);
        b.extend_from_slice(&[0x84, 0, 0, 20, b'z', b'w']);
        b.extend_from_slice(&[0xc4, b'q', b'r']);
        let seen = scan_in_pieces(&b, 1).expect("valid");
        let got: Vec<(u8, u32, u64)> = seen.iter().map(|s| (s.type_id, s.len, s.tail)).collect();
        assert_eq!(
            got,
            vec![
                (8, 3, tail_of(b"abc")),
                (9, 2, tail_of(b"xy")),
                (9, 2, tail_of(b"zw")),
                (9, 2, tail_of(b"qr"))
            ]
        );
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic() {
        // Continuation on an unknown chunk stream.
        assert!(scan_in_pieces(&[0xc5, 1, 2, 3], 1).is_err());
        // Oversized command.
        assert!(scan_in_pieces(&[0x03, 0, 0, 0, 0x10, 0, 0, 20, 0, 0, 0, 0], 3).is_err());
        // Chunk size 0.
        assert!(scan_in_pieces(&[0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0], 5).is_err());
        // Random bytes: any outcome but a panic.
        let mut x: u32 = 12345;
        for _ in 0..200 {
            let junk: Vec<u8> = (0..2000)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = scan_in_pieces(&junk, 17);
        }
    }
}
