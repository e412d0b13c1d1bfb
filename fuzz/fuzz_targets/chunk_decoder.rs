//! The chunk reader fed arbitrary bytes at arbitrary split points, with
//! chunk-size changes.
//!
//! Input: `[limits][split seed][chunk size][chunk stream bytes…]`.
//! - `limits & 3` picks the decoder limits (media, or small ones that the
//!   fuzzer can hit); `limits & 4` starts with the commands limits instead
//!   and raises them to media once a sixteenth of the input is decoded (as
//!   the ingest does once a key is checked).
//! - `split seed` cuts the stream into pieces (0 = one piece).
//! - `chunk size` picks a Set Chunk Size message sent first (0 = none);
//!   the stream itself may carry more (type 1), as real publishers do.
//!
//! Checks: no panic; the messages and the error (if any) are the same
//! whether the bytes arrive at once or in pieces; no message exceeds the
//! size limit; the messages in assembly never exceed the buffered limit; the byte counter counts what was pushed; the memory held at
//! the peak is bounded by what was received (a counting allocator), so a
//! header that announces a large message cannot make us reserve it.
#![no_main]

use antenne_fuzz::{held_since, reset_peak, Counting};
use antenne_rtmp::chunk::{ChunkDecoder, ChunkEncoder, ChunkError, DecoderLimits, RawMessage};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static GLOBAL: Counting = Counting;

const CHUNK_SIZES: [u32; 8] = [0, 1, 2, 60, 128, 4096, 65_536, 0x7fff_ffff];

/// Decodes what is buffered; with `switch`, raises the limits to media
/// once the messages decoded carry `switch_at` bytes (payload plus one per
/// message: that does not depend on how the input was cut).
fn drain_switching(
    dec: &mut ChunkDecoder,
    got: &mut Vec<RawMessage>,
    switch: bool,
    switch_at: u64,
) -> Option<ChunkError> {
    loop {
        match dec.next_message() {
            Ok(Some(m)) => {
                got.push(m);
                let seen: u64 = got.iter().map(|m| m.payload.len() as u64 + 1).sum();
                if switch && seen >= switch_at {
                    dec.set_limits(DecoderLimits::MEDIA);
                }
            }
            Ok(None) => return None,
            Err(e) => return Some(e),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [limits, seed, size, stream @ ..] = data else {
        return;
    };
    let switch = limits & 4 != 0;
    let limits = match limits & 3 {
        0 => DecoderLimits::MEDIA,
        1 => DecoderLimits {
            max_message_size: 4096,
            max_chunk_streams: 4,
            max_buffered: 6000,
        },
        2 => DecoderLimits {
            max_message_size: 64,
            max_chunk_streams: 1,
            max_buffered: 64,
        },
        _ => DecoderLimits {
            max_message_size: 0,
            max_chunk_streams: 0,
            max_buffered: 0,
        },
    };
    let limits = if switch {
        DecoderLimits::COMMANDS
    } else {
        limits
    };
    let base = reset_peak();
    let mut input = BytesMut::new();
    let chunk_size = CHUNK_SIZES[(size & 7) as usize];
    if chunk_size != 0 {
        ChunkEncoder::new().encode_into(2, 0, 1, 0, &chunk_size.to_be_bytes(), &mut input);
    }
    input.extend_from_slice(stream);

    // Where the limits rise (`switch`): once the messages decoded carry a
    // sixteenth of the input, decided on message boundaries so that both
    // decoders switch at the same point.
    let switch_at = input.len() as u64 / 16;

    // Reference: everything at once.
    let mut whole = ChunkDecoder::new(limits);
    whole.push(&input);
    let mut want = Vec::new();
    let want_err = drain_switching(&mut whole, &mut want, switch, switch_at);

    // The same bytes in pieces, decoding after each.
    let mut split = ChunkDecoder::new(limits);
    let mut got = Vec::new();
    let mut got_err = None;
    let mut pushed = 0u64;
    for piece in antenne_fuzz::pieces(&input, *seed) {
        split.push(piece);
        pushed += piece.len() as u64;
        got_err = drain_switching(&mut split, &mut got, switch, switch_at);
        if got_err.is_some() {
            break;
        }
    }
    assert_eq!(split.bytes_in(), pushed);
    assert_eq!(got, want, "split points changed the messages");
    assert_eq!(got_err, want_err, "split points changed the error");
    let most = if switch { DecoderLimits::MEDIA } else { limits };
    for m in &want {
        assert!(m.payload.len() <= most.max_message_size as usize);
        assert!(m.payload.len() <= most.max_buffered);
    }
    // Two decoders, their messages (a 1-byte chunk can be a message: two
    // vectors of 56-byte entries that may have doubled), the input and its
    // pieces (16 bytes per 1-byte piece): under 256 bytes per input byte,
    // plus what a decoder may reserve ahead of what it received (64 KiB per
    // chunk stream and for its buffer).
    let held = held_since(base);
    let bound = 256 * input.len() as isize + 2 * 65 * 64 * 1024 + 256 * 1024;
    assert!(
        held <= bound,
        "{} input bytes made us hold {held} bytes",
        input.len()
    );
});
