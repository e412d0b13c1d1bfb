//! The incremental FLV reader of `antenne-media` (what reads ffmpeg's
//! output in a rendition) on arbitrary bytes, fed in arbitrary pieces.
//!
//! Input: byte 0 sets the piece size (1 + byte, so 1 to 256 bytes), the
//! rest is the stream. Checks: no panic; the reader never holds more than
//! its capacity; every tag read is within the size cap; the tags read,
//! written back out with the writer and read again, come back identical.
#![no_main]

use antenne_media::flv::{stream_header, write_tag, FlvReader, ReaderLimits, Tag};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

const LIMITS: ReaderLimits = ReaderLimits {
    max_tag_size: 64 * 1024,
};

fn read(data: &[u8], step: usize) -> Vec<Tag> {
    let mut reader = FlvReader::new(LIMITS);
    let mut tags = Vec::new();
    let mut rest = data;
    loop {
        loop {
            match reader.poll_tag() {
                Ok(Some(tag)) => {
                    assert!(tag.body.len() <= LIMITS.max_tag_size);
                    tags.push(tag);
                }
                Ok(None) => break,
                Err(_) => return tags,
            }
        }
        assert!(reader.buffered() <= reader.capacity());
        if rest.is_empty() {
            return tags;
        }
        let n = reader.feed(&rest[..rest.len().min(step)]);
        assert!(n > 0, "a reader with no whole tag always has room");
        rest = &rest[n..];
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, stream)) = data.split_first() else {
        return;
    };
    let tags = read(stream, step as usize + 1);
    let mut again = BytesMut::from(&stream_header(true, true)[..]);
    for t in &tags {
        write_tag(&mut again, t.kind, t.timestamp, &t.body).expect("read tags fit");
    }
    assert_eq!(read(&again, 4096), tags);
});
