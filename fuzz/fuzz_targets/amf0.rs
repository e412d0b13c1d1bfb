//! AMF0 decoding of arbitrary bytes.
//!
//! Checks: no panic, no unbounded recursion; the memory held at the peak
//! of decoding is bounded by the input (a counting allocator: a count
//! field must not make us reserve what the input cannot hold); whatever
//! decodes re-encodes to bytes that decode to the same values (compared
//! through their encoding, so NaN compares equal to itself); a value bound
//! (`decode_all_bounded`) holds memory to the bound whatever the input
//! size, and a payload within the bound decodes as without it.
#![no_main]

use antenne_fuzz::{held_since, reset_peak, Counting};
use antenne_rtmp::amf0::{
    decode_all, decode_all_bounded, decode_one, encode_all, Amf0Error, Amf0Value, MAX_DEPTH,
};
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
    // With a bound of 16 values: at most 16 values (and their strings,
    // which the input holds) whatever the input size.
    let base = reset_peak();
    let bounded = decode_all_bounded(data, 16);
    let held = held_since(base);
    let bound = 16 * 96 + 2 * data.len() as isize + ahead as isize + 4096;
    assert!(
        held <= bound,
        "{} input bytes made the bounded decoder hold {held} bytes",
        data.len()
    );
    match (&bounded, &decoded) {
        (Ok(b), Ok(d)) => assert_eq!(encode_all(b), encode_all(d)),
        (Err(Amf0Error::TooManyValues(16)), _) => {}
        (Err(b), Err(d)) => assert_eq!(b, d),
        (b, d) => panic!("bounded {b:?} but unbounded {d:?}"),
    }
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
