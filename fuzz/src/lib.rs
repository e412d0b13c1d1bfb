//! Helpers shared by the fuzz targets.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

/// Bytes allocated now, and the most since the last [`reset_peak`].
static ALLOCATED: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

/// A global allocator that counts bytes, for targets that bound the memory
/// an input can make us hold: `#[global_allocator] static A: Counting =
/// Counting;` in the target.
pub struct Counting;

fn grew(by: isize) {
    let now = ALLOCATED.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

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
        grew(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Starts measuring: returns the bytes allocated now.
pub fn reset_peak() -> isize {
    let now = ALLOCATED.load(Ordering::Relaxed);
    PEAK.store(now, Ordering::Relaxed);
    now
}

/// The most allocated since [`reset_peak`] returned `base`, beyond `base`.
pub fn held_since(base: isize) -> isize {
    PEAK.load(Ordering::Relaxed) - base
}

/// Cuts `data` into pieces whose lengths follow `seed`: the same bytes
/// arrive as a peer's TCP segments might, at arbitrary split points.
/// Seed 0 gives the whole input in one piece.
pub fn pieces(data: &[u8], seed: u8) -> Vec<&[u8]> {
    if seed == 0 || data.is_empty() {
        return vec![data];
    }
    // Largest piece: 1, 2, 4, … 4096 bytes, then random lengths up to it.
    let max = 1usize << (seed % 13);
    let mut state = u32::from(seed) | 0x9e37_7900;
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        // xorshift32
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state as usize % max + 1).min(rest.len());
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
    }
    out
}

/// A fixed "random" handshake packet: fuzzing must be deterministic.
pub fn fixed_packet(fill: u8) -> [u8; antenne_rtmp::handshake::PACKET_SIZE] {
    let mut p = [0u8; antenne_rtmp::handshake::PACKET_SIZE];
    for (i, b) in p.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(fill);
    }
    p
}

/// Decodes everything a session wrote after its handshake bytes with our own
/// chunk decoder and message parser: what we send must always be valid.
pub fn assert_valid_output(out: &[u8], handshake_len: usize) {
    use antenne_rtmp::chunk::{ChunkDecoder, DecoderLimits};
    use antenne_rtmp::message::Message;
    let Some(chunks) = out.get(handshake_len..) else {
        return;
    };
    let mut dec = ChunkDecoder::new(DecoderLimits::default());
    dec.push(chunks);
    loop {
        match dec.next_message() {
            Ok(Some(raw)) => {
                if let Err(e) = Message::decode(&raw) {
                    panic!("we sent a message we cannot parse: {e} ({raw:?})");
                }
            }
            Ok(None) => break,
            Err(e) => panic!("we sent an invalid chunk stream: {e}"),
        }
    }
    assert_eq!(dec.buffered(), 0, "we sent a truncated chunk");
}
