//! AMF0 decoding of arbitrary bytes.
//!
//! Checks: no panic, no unbounded recursion; the memory held at the peak
//! of decoding is bounded by the input (a counting allocator: a count
//! field must not make us reserve what the input cannot hold); whatever
//! decodes re-encodes to bytes that decode to the same values (compared
//! through their encoding, so NaN compares equal to itself).
#![no_main]

use antenne_fuzz::{held_since, reset_peak, Counting};
use antenne_rtmp::amf0::{decode_all, decode_one, encode_all, Amf0Value, MAX_DEPTH};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static GLOBAL: Counting = Counting;

fuzz_target!(|data: &[u8]| {
    if let Ok((_, used)) = decode_one(data) {
        assert!(used <= data.len());
    }
    let base = reset_peak();
    let decoded = decode_all(data);
    // A value is 32 bytes, a property 56, and the smallest take 1 and 3
    // input bytes; vectors may have doubled: under 96 bytes per input byte.
    // Plus what each nesting level may reserve ahead (64 values).
    let held = held_since(base);
    let ahead = (MAX_DEPTH + 1) * 64 * std::mem::size_of::<Amf0Value>();
    let bound = 96 * data.len() as isize + ahead as isize + 4096;
    assert!(
        held <= bound,
        "{} input bytes made the decoder hold {held} bytes",
        data.len()
    );
    let Ok(values) = decoded else {
        return;
    };
    let encoded = encode_all(&values);
    let again = match decode_all(&encoded) {
        Ok(v) => v,
        Err(e) => panic!("our own encoding of {values:?} does not decode: {e}"),
    };
    assert_eq!(
        encode_all(&again),
        encoded,
        "AMF0 round trip changed values"
    );
});
