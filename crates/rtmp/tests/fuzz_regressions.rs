//! Regression tests for what the fuzzing work found in antenne-rtmp (see
//! docs/fuzzing.md), with the inputs inline.
//!
//! This test binary counts allocated bytes (a global allocator that wraps
//! the system one), so that memory a peer can make us hold is measured,
//! not guessed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Mutex;

use antenne_rtmp::amf0::{decode_all, Amf0Error, MAX_DEPTH};
use antenne_rtmp::chunk::{ChunkDecoder, ChunkEncoder, DecoderLimits};
use bytes::BytesMut;

/// Bytes currently allocated by this process, and the most since a test
/// reset it.
static ALLOCATED: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn grew(by: isize) {
    let now = ALLOCATED.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Tests in this binary measure allocations: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// The first chunk of a message announcing `len` bytes on chunk stream
/// `csid` (type 0 header), carrying `payload` of it.
fn first_chunk(csid: u8, len: u32, payload: &[u8]) -> Vec<u8> {
    let l = len.to_be_bytes();
    let mut v = vec![csid, 0, 0, 0, l[1], l[2], l[3], 9, 1, 0, 0, 0];
    v.extend_from_slice(payload);
    v
}

#[test]
fn announcing_large_messages_does_not_make_us_hold_their_size() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Set Chunk Size 1, then on 60 chunk streams the first byte of an
    // 8 MiB message (the default limit): 60 × 13 bytes sent. Before the
    // fix the decoder reserved the whole announced size of each message at
    // its first chunk: 480 MiB held for 780 bytes received.
    let mut input = BytesMut::new();
    ChunkEncoder::new().encode_into(2, 0, 1, 0, &1u32.to_be_bytes(), &mut input);
    for csid in 4..64u8 {
        input.extend_from_slice(&first_chunk(csid, 8 * 1024 * 1024, &[0x17]));
    }
    let before = ALLOCATED.load(Ordering::Relaxed);
    let mut dec = ChunkDecoder::new(DecoderLimits::default());
    dec.push(&input);
    // Only the Set Chunk Size message completes.
    assert!(dec.next_message().expect("valid").is_some());
    assert_eq!(dec.next_message(), Ok(None));
    let held = ALLOCATED.load(Ordering::Relaxed) - before;
    // At most RESERVE_MAX (64 KiB) ahead per chunk stream now.
    assert!(
        held < 8 * 1024 * 1024,
        "{} bytes received made the decoder hold {held} bytes",
        input.len()
    );
    drop(dec);
}

#[test]
fn announcing_a_large_chunk_does_not_make_us_hold_its_size() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Set Chunk Size 2^31 - 1, then the header of an 8 MiB message and one
    // byte of it: 30 bytes sent. Before the fix the decoder reserved room
    // for the whole chunk (8 MiB) as soon as it saw the header.
    let mut input = BytesMut::new();
    ChunkEncoder::new().encode_into(2, 0, 1, 0, &0x7fff_ffffu32.to_be_bytes(), &mut input);
    input.extend_from_slice(&first_chunk(6, 8 * 1024 * 1024, &[0x17]));
    let before = ALLOCATED.load(Ordering::Relaxed);
    let mut dec = ChunkDecoder::new(DecoderLimits::default());
    dec.push(&input);
    assert!(dec.next_message().expect("valid").is_some());
    assert_eq!(dec.next_message(), Ok(None));
    let held = ALLOCATED.load(Ordering::Relaxed) - before;
    assert!(
        held < 1024 * 1024,
        "{} bytes received made the decoder hold {held} bytes",
        input.len()
    );
    drop(dec);
}

#[test]
fn large_messages_still_arrive_whole() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // What the fix must not break: a 3 MiB keyframe in 4096-byte chunks,
    // next to audio on another chunk stream.
    let mut enc = ChunkEncoder::new();
    let mut wire = BytesMut::new();
    enc.encode_into(2, 0, 1, 0, &4096u32.to_be_bytes(), &mut wire);
    enc.set_chunk_size(4096);
    let frame: Vec<u8> = (0..3 * 1024 * 1024).map(|i| i as u8).collect();
    enc.encode_into(6, 40, 9, 1, &frame, &mut wire);
    enc.encode_into(4, 40, 8, 1, &[0xaf, 1, 2, 3], &mut wire);
    let mut dec = ChunkDecoder::new(DecoderLimits::default());
    let mut got = Vec::new();
    for piece in wire.chunks(1500) {
        dec.push(piece);
        while let Some(m) = dec.next_message().expect("valid") {
            got.push(m);
        }
    }
    assert_eq!(got.len(), 3);
    assert_eq!(&got[1].payload[..], &frame[..]);
    assert_eq!(&got[2].payload[..], &[0xaf, 1, 2, 3]);
}

#[test]
fn nested_array_counts_do_not_make_us_reserve_what_the_input_cannot_hold() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Strict arrays nested MAX_DEPTH deep, each announcing as many elements
    // as bytes remain (the most the decoder believed), the innermost one
    // filled with nulls. Before the fix each level reserved room for its
    // count up front (32 bytes an element): 64 KiB of input made the
    // decoder reserve 32 levels × 32 × 64 KiB = 64 MiB; an 8 MiB command,
    // which the chunk layer accepts before any key is checked, 8 GiB.
    let nulls = 64 * 1024;
    let levels = MAX_DEPTH;
    let mut input = Vec::new();
    for i in 0..levels {
        let remaining = 5 * (levels - 1 - i) + nulls;
        input.push(0x0a);
        input.extend_from_slice(&(remaining as u32).to_be_bytes());
    }
    input.extend(std::iter::repeat_n(0x05u8, nulls));
    let before = ALLOCATED.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    // The innermost array is whole; its parent misses its other elements.
    assert_eq!(decode_all(&input), Err(Amf0Error::Truncated));
    let peak = PEAK.load(Ordering::Relaxed) - before;
    // What the input really holds: one value per null, in a vector that
    // may have doubled.
    let value = std::mem::size_of::<antenne_rtmp::amf0::Amf0Value>() as isize;
    assert!(
        peak < 2 * value * nulls as isize + 64 * 1024,
        "{} input bytes made the AMF0 decoder hold {peak} bytes at its peak",
        input.len()
    );
}
