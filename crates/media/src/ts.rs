//! MPEG-TS demuxer, sans-IO: feed bytes in (188-byte packets, or any
//! chunks: it finds the 0x47 sync byte again after garbage), take access
//! units out with their 90 kHz timestamps. Groundwork for SRT ingest (OBS
//! sends MPEG-TS over SRT).
//!
//! It reads the first program of the PAT, the streams its PMT lists, and
//! reassembles PES packets of H.264 (stream type 0x1B), HEVC (0x24) and AAC
//! ADTS (0x0F); other streams are ignored. A video PES is one access unit
//! (as every muxer writes it), with its keyframe flag read from its NAL
//! units; an AAC PES is split into its ADTS frames, each an access unit
//! with its own timestamp. [`convert`] turns them into FLV bodies for the
//! hub.
//!
//! Invariants (the input is untrusted): never panics; memory is bounded by
//! [`Limits`]: two packets of input, one PES of at most
//! [`Limits::max_pes`] bytes per stream, at most [`Limits::max_streams`]
//! streams, and [`Demuxer::feed`] stops consuming once
//! [`Limits::max_queued`] access units wait to be taken (the PES that
//! reached it may add the rest of its audio frames). A PES
//! over the cap, or one that lost packets (continuity counter), is dropped
//! and counted, never delivered damaged.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

pub mod convert;
#[cfg(test)]
mod hevc_tests;
pub mod mux;
mod pes;
mod psi;
#[cfg(test)]
mod tests;
pub mod to_flv;

use psi::SectionBuffer;

/// A transport stream packet's size.
pub const PACKET_SIZE: usize = 188;
const SYNC: u8 = 0x47;
/// Input held: two packets (one, and the sync byte after it).
const BUFFER: usize = 2 * PACKET_SIZE;

/// The codecs antenne takes from a transport stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Stream type 0x1B; Annex B access units.
    H264,
    /// Stream type 0x24; Annex B access units.
    Hevc,
    /// Stream type 0x0F; one ADTS frame (header included) per unit.
    Aac,
}

impl Codec {
    fn from_stream_type(t: u8) -> Option<Codec> {
        match t {
            0x1b => Some(Codec::H264),
            0x24 => Some(Codec::Hevc),
            0x0f => Some(Codec::Aac),
            _ => None,
        }
    }

    pub fn is_video(self) -> bool {
        matches!(self, Codec::H264 | Codec::Hevc)
    }
}

/// One decodable unit: a video picture or an audio frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    pub pid: u16,
    pub codec: Codec,
    /// Presentation time, 90 kHz, 33 bits (wraps after 26.5 hours: the
    /// caller unwraps).
    pub pts: u64,
    /// Decoding time, 90 kHz (the PTS when the PES gave none).
    pub dts: u64,
    /// An IDR/IRAP picture (always true for audio).
    pub keyframe: bool,
    pub data: Bytes,
}

const WRAP: u64 = 1 << 33;

impl AccessUnit {
    pub fn pts_ms(&self) -> u64 {
        self.pts / 90
    }

    pub fn dts_ms(&self) -> u64 {
        self.dts / 90
    }

    /// PTS − DTS in milliseconds (the FLV composition offset), across a
    /// wrap too.
    pub fn cts_ms(&self) -> i32 {
        let d = (self.pts + WRAP - self.dts) % WRAP;
        let d = if d >= WRAP / 2 {
            d as i64 - WRAP as i64
        } else {
            d as i64
        };
        (d / 90).clamp(i32::MIN as i64, i32::MAX as i64) as i32
    }
}

/// Bounds on what a [`Demuxer`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest PES (one video picture): larger ones are dropped.
    pub max_pes: usize,
    /// Elementary streams followed at once (the first ones of the PMT).
    pub max_streams: usize,
    /// Access units waiting to be taken before [`Demuxer::feed`] stops.
    pub max_queued: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // A 4K keyframe at a high bitrate stays well under this.
            max_pes: 8 * 1024 * 1024,
            max_streams: 8,
            max_queued: 256,
        }
    }
}

/// What went wrong so far (counts since creation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes skipped looking for a sync byte.
    pub skipped_bytes: u64,
    pub packets: u64,
    /// PES packets dropped: over the size cap, missing packets, or a header
    /// antenne cannot read.
    pub dropped_pes: u64,
    /// Continuity counter jumps on followed streams.
    pub discontinuities: u64,
}

/// One followed elementary stream.
#[derive(Debug)]
struct Stream {
    pid: u16,
    codec: Codec,
    /// The continuity counter of its last packet.
    last_cc: Option<u8>,
    pes: PesState,
    /// Next audio frame time when a PES has no PTS.
    next_pts: Option<u64>,
}

/// Where a stream's current PES stands.
#[derive(Debug)]
enum PesState {
    /// Waiting for a packet that starts a PES.
    Idle,
    Collecting {
        pts: Option<u64>,
        dts: Option<u64>,
        /// Bytes announced, if the PES said.
        expected: Option<usize>,
        data: BytesMut,
    },
}

/// The demuxer. See the module documentation.
#[derive(Debug)]
pub struct Demuxer {
    limits: Limits,
    /// Input not read yet: at most [`BUFFER`] bytes.
    buf: Vec<u8>,
    /// The last packet was followed by a sync byte.
    synced: bool,
    pat: SectionBuffer,
    pmt_pid: Option<u16>,
    pmt: SectionBuffer,
    pmt_version: Option<u8>,
    streams: Vec<Stream>,
    queue: VecDeque<AccessUnit>,
    stats: Stats,
}

impl Default for Demuxer {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl Demuxer {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits: Limits {
                max_queued: limits.max_queued.max(1),
                ..limits
            },
            buf: Vec::with_capacity(BUFFER),
            synced: false,
            pat: SectionBuffer::default(),
            pmt_pid: None,
            pmt: SectionBuffer::default(),
            pmt_version: None,
            streams: Vec::new(),
            queue: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// Takes bytes; returns how many it consumed. It stops early only when
    /// [`Limits::max_queued`] access units wait: take them with
    /// [`Demuxer::poll`], then feed the rest.
    ///
    /// Out of sync (at the start, or after garbage), a 0x47 counts as a
    /// packet start only when another follows 188 bytes later.
    pub fn feed(&mut self, data: &[u8]) -> usize {
        let mut used = 0;
        while self.queue.len() < self.limits.max_queued {
            let room = BUFFER - self.buf.len();
            let take = room.min(data.len() - used);
            self.buf.extend_from_slice(&data[used..used + take]);
            used += take;
            if !self.next_packet() && used == data.len() {
                break;
            }
        }
        used
    }

    /// Reads one packet (or skips garbage) from the buffer; false when it
    /// needs more bytes.
    fn next_packet(&mut self) -> bool {
        let Some(&first) = self.buf.first() else {
            return false;
        };
        if first != SYNC {
            let skip = self
                .buf
                .iter()
                .position(|&b| b == SYNC)
                .unwrap_or(self.buf.len());
            self.stats.skipped_bytes += skip as u64;
            self.buf.drain(..skip);
            self.synced = false;
            return true;
        }
        if self.buf.len() < PACKET_SIZE || (!self.synced && self.buf.len() <= PACKET_SIZE) {
            return false;
        }
        if !self.synced && self.buf[PACKET_SIZE] != SYNC {
            self.stats.skipped_bytes += 1;
            self.buf.drain(..1);
            return true;
        }
        let mut packet = [0u8; PACKET_SIZE];
        packet.copy_from_slice(&self.buf[..PACKET_SIZE]);
        self.buf.drain(..PACKET_SIZE);
        self.synced = true;
        self.packet(&packet);
        true
    }

    /// The next access unit, in the order their PES packets ended.
    pub fn poll(&mut self) -> Option<AccessUnit> {
        self.queue.pop_front()
    }

    /// Access units waiting.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Delivers the PES packets still open (end of the input: their end is
    /// not marked otherwise). May queue beyond [`Limits::max_queued`] by at
    /// most one PES's audio frames per stream.
    pub fn flush(&mut self) {
        // A last packet nothing follows.
        if self.buf.len() >= PACKET_SIZE && self.buf[0] == SYNC {
            self.synced = true;
            self.next_packet();
        }
        for i in 0..self.streams.len() {
            self.finish_pes(i);
        }
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Bytes held in buffers (unread input, open PES packets, queue).
    pub fn buffered(&self) -> usize {
        self.buf.len()
            + self
                .streams
                .iter()
                .map(|s| match &s.pes {
                    PesState::Idle => 0,
                    PesState::Collecting { data, .. } => data.len(),
                })
                .sum::<usize>()
            + self.queue.iter().map(|a| a.data.len()).sum::<usize>()
    }

    /// The codecs of the streams followed, by PID.
    pub fn streams(&self) -> Vec<(u16, Codec)> {
        self.streams.iter().map(|s| (s.pid, s.codec)).collect()
    }

    fn packet(&mut self, p: &[u8; PACKET_SIZE]) {
        self.stats.packets += 1;
        // Transport error or scrambled: nothing to read.
        if p[1] & 0x80 != 0 || p[3] & 0xc0 != 0 {
            return;
        }
        let unit_start = p[1] & 0x40 != 0;
        let pid = u16::from_be_bytes([p[1] & 0x1f, p[2]]);
        let control = (p[3] >> 4) & 3;
        let cc = p[3] & 0x0f;
        let mut start = 4;
        if control & 2 != 0 {
            start += 1 + usize::from(p[4]);
        }
        let payload = match (control & 1 != 0, p.get(start..)) {
            (true, Some(payload)) => payload,
            _ => return,
        };
        if pid == 0 {
            if let Some(section) = self.pat.push(unit_start, payload) {
                if let Some(pmt_pid) = psi::parse_pat(&section) {
                    if self.pmt_pid != Some(pmt_pid) {
                        self.pmt_pid = Some(pmt_pid);
                        self.pmt = SectionBuffer::default();
                        self.pmt_version = None;
                    }
                }
            }
        } else if Some(pid) == self.pmt_pid {
            if let Some(section) = self.pmt.push(unit_start, payload) {
                self.pmt_section(&section);
            }
        } else if let Some(i) = self.streams.iter().position(|s| s.pid == pid) {
            self.es_packet(i, unit_start, cc, payload);
        }
    }

    fn pmt_section(&mut self, section: &[u8]) {
        let Some((version, entries)) = psi::parse_pmt(section) else {
            return;
        };
        if self.pmt_version == Some(version) {
            return;
        }
        self.pmt_version = Some(version);
        let mut streams = Vec::new();
        for e in entries {
            let Some(codec) = Codec::from_stream_type(e.stream_type) else {
                continue;
            };
            if streams.len() >= self.limits.max_streams
                || streams.iter().any(|s: &Stream| s.pid == e.pid)
            {
                continue;
            }
            // A stream the new version keeps goes on where it was.
            let kept = self
                .streams
                .iter()
                .position(|s| s.pid == e.pid && s.codec == codec)
                .map(|i| self.streams.swap_remove(i));
            streams.push(kept.unwrap_or(Stream {
                pid: e.pid,
                codec,
                last_cc: None,
                pes: PesState::Idle,
                next_pts: None,
            }));
        }
        self.streams = streams;
    }

    fn es_packet(&mut self, i: usize, unit_start: bool, cc: u8, payload: &[u8]) {
        let s = &mut self.streams[i];
        if let Some(last) = s.last_cc {
            if cc == last {
                return; // a duplicate packet
            }
            if cc != (last + 1) & 0x0f {
                self.stats.discontinuities += 1;
                if !unit_start && matches!(s.pes, PesState::Collecting { .. }) {
                    s.pes = PesState::Idle;
                    self.stats.dropped_pes += 1;
                }
            }
        }
        s.last_cc = Some(cc);
        if unit_start {
            self.finish_pes(i);
            let Some(h) = pes::parse(payload) else {
                self.stats.dropped_pes += 1;
                return;
            };
            if h.payload_len.is_some_and(|n| n > self.limits.max_pes) {
                self.stats.dropped_pes += 1;
                return;
            }
            self.streams[i].pes = PesState::Collecting {
                pts: h.pts,
                dts: h.dts,
                expected: h.payload_len,
                data: BytesMut::new(),
            };
            self.append(i, &payload[h.header_len.min(payload.len())..]);
        } else {
            self.append(i, payload);
        }
    }

    fn append(&mut self, i: usize, bytes: &[u8]) {
        let max = self.limits.max_pes;
        let PesState::Collecting { data, expected, .. } = &mut self.streams[i].pes else {
            return;
        };
        let limit = expected.unwrap_or(max).min(max);
        if data.len() + bytes.len() > limit {
            if expected.is_some() && data.len() < limit {
                // Stuffing after a bounded PES: keep what it announced.
                let take = limit - data.len();
                data.extend_from_slice(&bytes[..take]);
            } else {
                self.streams[i].pes = PesState::Idle;
                self.stats.dropped_pes += 1;
                return;
            }
        } else {
            data.extend_from_slice(bytes);
        }
        if expected.is_some_and(|n| data.len() >= n) {
            self.finish_pes(i);
        }
    }

    /// Queues the access units of stream `i`'s open PES, if any.
    fn finish_pes(&mut self, i: usize) {
        let s = &mut self.streams[i];
        let PesState::Collecting { pts, dts, data, .. } =
            std::mem::replace(&mut s.pes, PesState::Idle)
        else {
            return;
        };
        if data.is_empty() {
            return;
        }
        let data = data.freeze();
        match s.codec {
            Codec::H264 | Codec::Hevc => {
                let Some(pts) = pts else {
                    self.stats.dropped_pes += 1;
                    return;
                };
                let keyframe = match s.codec {
                    Codec::H264 => convert::h264_is_keyframe(&data),
                    _ => convert::hevc_is_keyframe(&data),
                };
                self.queue.push_back(AccessUnit {
                    pid: s.pid,
                    codec: s.codec,
                    pts,
                    dts: dts.unwrap_or(pts),
                    keyframe,
                    data,
                });
            }
            Codec::Aac => {
                let Some(mut t) = pts.or(s.next_pts) else {
                    self.stats.dropped_pes += 1;
                    return;
                };
                let mut at = 0;
                while let Some(adts) = data.get(at..).and_then(convert::Adts::parse) {
                    let Some(frame) = data.get(at..at + adts.frame_len) else {
                        break;
                    };
                    self.queue.push_back(AccessUnit {
                        pid: s.pid,
                        codec: Codec::Aac,
                        pts: t,
                        dts: t,
                        keyframe: true,
                        data: data.slice(at..at + frame.len()),
                    });
                    at += adts.frame_len;
                    t = (t + 1024 * 90_000 / u64::from(adts.sample_rate())) % WRAP;
                }
                if at < data.len() {
                    self.stats.dropped_pes += 1;
                }
                s.next_pts = Some(t);
            }
        }
    }
}
