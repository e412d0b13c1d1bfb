//! The FLV clip the publisher loops, and the index that lets the sink tell
//! which published video message it just received.
//!
//! The relays under test do not touch video payloads, but antenne rebases
//! timestamps per destination, so a received message is matched by content:
//! `(length, last 8 payload bytes)`. Keys that occur more than once in the
//! clip are left out of the index (the sink then cannot tell which one it
//! got), and so are sequence headers, which are sent once per connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use antenne_rtmp::flv::{inspect_audio, inspect_video};
use bytes::Bytes;

use crate::scan::tail_of;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Audio,
    Video,
    /// Script data (`onMetaData`): body starts at the name.
    Meta,
}

#[derive(Debug, Clone)]
pub struct Tag {
    pub kind: Kind,
    /// Milliseconds from the start of the clip.
    pub ts: u32,
    pub payload: Bytes,
    /// Sent once per connection (metadata, sequence headers), not in loops.
    pub header: bool,
    pub keyframe: bool,
    /// Index into [`Clip::sent_ns`] for matchable video messages.
    pub vidx: Option<u32>,
}

/// The clip and the send instants of its matchable video messages.
#[derive(Debug)]
pub struct Clip {
    pub tags: Vec<Tag>,
    /// Loop length: the last timestamp plus one frame interval.
    pub duration_ms: u32,
    /// `(length, tail)` of a video payload → its index (length 0 when
    /// matching by the tail alone).
    pub index: HashMap<(u32, u64), u32>,
    /// Match by the last eight bytes alone: for a path that changes a
    /// message's length but not its end (an MPEG-TS hop: Annex B start
    /// codes become lengths, access unit delimiters come and go).
    pub tail_only: bool,
    /// Wall-clock (CLOCK_REALTIME, ns since the epoch) of the latest send
    /// of each matchable video message; 0 = not sent yet.
    pub sent_ns: Vec<AtomicU64>,
    pub video_frames: usize,
    pub keyframes: usize,
    pub ambiguous: usize,
    pub bytes: u64,
}

impl Clip {
    pub fn parse(data: &[u8]) -> Result<Clip, String> {
        Clip::parse_with(data, false)
    }

    /// [`Clip::parse`], matching by the tail alone if `tail_only`.
    pub fn parse_with(data: &[u8], tail_only: bool) -> Result<Clip, String> {
        let len_key = |p: &Bytes| if tail_only { 0 } else { p.len() as u32 };
        if data.len() < 9 || &data[..3] != b"FLV" {
            return Err("not an FLV file".into());
        }
        let header_len = u32::from_be_bytes([data[5], data[6], data[7], data[8]]) as usize;
        let mut pos = header_len.max(9) + 4; // header, PreviousTagSize0
        let mut tags = Vec::new();
        let mut bytes = 0u64;
        while pos + 11 <= data.len() {
            let h = &data[pos..pos + 11];
            if h[0] & 0x20 != 0 {
                return Err("encrypted FLV tags are not supported".into());
            }
            let ty = h[0] & 0x1f;
            let size = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
            let ts = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
            let start = pos + 11;
            let end = start + size;
            if end > data.len() {
                break; // truncated last tag
            }
            let payload = Bytes::copy_from_slice(&data[start..end]);
            pos = end + 4;
            let (kind, header, keyframe) = match ty {
                8 => {
                    let seq = inspect_audio(&payload).is_some_and(|a| a.sequence_header);
                    (Kind::Audio, seq, false)
                }
                9 => match inspect_video(&payload) {
                    Some(v) => (Kind::Video, v.sequence_header, v.keyframe),
                    None => continue,
                },
                18 => (Kind::Meta, true, false),
                _ => continue,
            };
            bytes += payload.len() as u64;
            tags.push(Tag {
                kind,
                ts,
                payload,
                header,
                keyframe,
                vidx: None,
            });
        }
        let video_ts: Vec<u32> = tags
            .iter()
            .filter(|t| t.kind == Kind::Video && !t.header)
            .map(|t| t.ts)
            .collect();
        if video_ts.len() < 2 {
            return Err("the clip has fewer than two video frames".into());
        }
        let interval = (video_ts[video_ts.len() - 1] - video_ts[0]) / (video_ts.len() as u32 - 1);
        let last = tags.iter().map(|t| t.ts).max().unwrap_or(0);
        let duration_ms = last + interval.max(1);

        // Matchable video messages: unique (length, tail).
        let mut count: HashMap<(u32, u64), u32> = HashMap::new();
        for t in tags.iter().filter(|t| t.kind == Kind::Video && !t.header) {
            *count
                .entry((len_key(&t.payload), tail_of(&t.payload)))
                .or_default() += 1;
        }
        let mut index = HashMap::new();
        let mut ambiguous = 0;
        for t in tags
            .iter_mut()
            .filter(|t| t.kind == Kind::Video && !t.header)
        {
            let key = (len_key(&t.payload), tail_of(&t.payload));
            if count[&key] == 1 {
                let i = index.len() as u32;
                index.insert(key, i);
                t.vidx = Some(i);
            } else {
                ambiguous += 1;
            }
        }
        let sent_ns = (0..index.len()).map(|_| AtomicU64::new(0)).collect();
        Ok(Clip {
            duration_ms,
            video_frames: video_ts.len(),
            keyframes: tags.iter().filter(|t| t.keyframe && !t.header).count(),
            ambiguous,
            bytes,
            index,
            tail_only,
            sent_ns,
            tags,
        })
    }

    /// Send instant (ns) of the latest send of the message with this key.
    pub fn sent_at(&self, len: u32, tail: u64) -> Option<u64> {
        let len = if self.tail_only { 0 } else { len };
        let i = *self.index.get(&(len, tail))?;
        let t = self.sent_ns[i as usize].load(Ordering::Relaxed);
        (t != 0).then_some(t)
    }

    /// Media bit rate of the clip.
    pub fn mbps(&self) -> f64 {
        self.bytes as f64 * 8.0 / (self.duration_ms as f64 / 1000.0) / 1e6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(ty: u8, ts: u32, body: &[u8]) -> Vec<u8> {
        let mut v = vec![ty];
        v.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        v.extend_from_slice(&ts.to_be_bytes()[1..]);
        v.push((ts >> 24) as u8);
        v.extend_from_slice(&[0, 0, 0]);
        v.extend_from_slice(body);
        v.extend_from_slice(&(body.len() as u32 + 11).to_be_bytes());
        v
    }

    #[test]
    fn parses_tags_and_indexes_unique_video() {
        let mut f = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        f.extend(tag(18, 0, b"\x02\x00\x0aonMetaData"));
        f.extend(tag(9, 0, &[0x17, 0, 0, 0, 0, 1, 2]));
        f.extend(tag(8, 0, &[0xaf, 0, 0x12, 0x10]));
        f.extend(tag(9, 0, &[0x17, 1, 0, 0, 0, 9, 9, 9]));
        f.extend(tag(9, 33, &[0x27, 1, 0, 0, 0, 5, 5]));
        f.extend(tag(9, 66, &[0x27, 1, 0, 0, 0, 5, 5])); // same as the previous
        f.extend(tag(9, 100, &[0x27, 1, 0, 0, 0, 6, 6]));
        let c = Clip::parse(&f).expect("valid");
        assert_eq!(c.tags.len(), 7);
        assert_eq!(c.video_frames, 4);
        assert_eq!(c.ambiguous, 2);
        assert_eq!(c.index.len(), 2);
        assert_eq!(c.duration_ms, 133);
        assert!(c.tags[1].header && c.tags[2].header && c.tags[0].header);
        assert!(c.tags[3].keyframe && c.tags[3].vidx == Some(0));
        assert!(c
            .sent_at(8, tail_of(&[0x17, 1, 0, 0, 0, 9, 9, 9]))
            .is_none());
        c.sent_ns[0].store(5, Ordering::Relaxed);
        assert_eq!(c.sent_at(8, tail_of(&[0x17, 1, 0, 0, 0, 9, 9, 9])), Some(5));
        assert!(Clip::parse(b"nope").is_err());

        // By the tail alone, a message whose length changed on the way
        // (MPEG-TS) still matches.
        let c = Clip::parse_with(&f, true).expect("valid");
        assert_eq!(c.index.len(), 2);
        c.sent_ns[0].store(7, Ordering::Relaxed);
        assert_eq!(
            c.sent_at(14, tail_of(&[0x17, 1, 0, 0, 0, 9, 9, 9])),
            Some(7)
        );
    }
}
