//! AMF0 decoding of arbitrary bytes.
//!
//! Checks: no panic, no unbounded recursion or allocation; whatever
//! decodes re-encodes to bytes that decode to the same values (compared
//! through their encoding, so NaN compares equal to itself).
#![no_main]

use antenne_rtmp::amf0::{decode_all, decode_one, encode_all};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((_, used)) = decode_one(data) {
        assert!(used <= data.len());
    }
    let Ok(values) = decode_all(data) else {
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
