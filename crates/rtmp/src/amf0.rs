//! AMF0 values: the encoding of RTMP commands (`connect`, `publish`, …) and
//! of `onMetaData`.
//!
//! The decoder faces the internet (a client sends `connect` before any key
//! is checked), so it is defensive: every length is checked against what
//! remains, nesting is bounded by [`MAX_DEPTH`], and the number of values in
//! one container is bounded by what the input can hold. Decoded values take
//! more room than their encoding (a 1-byte null becomes a 32-byte value), so
//! [`decode_all_bounded`] also caps how many values one payload may decode
//! into: a command is a handful of values, not millions. It never panics and
//! never recurses without a bound.

use bytes::{BufMut, BytesMut};

/// Deepest nesting of objects and arrays the decoder accepts. Real
/// `connect` and `onMetaData` payloads nest two or three levels.
pub const MAX_DEPTH: usize = 32;

/// An AMF0 value. Objects keep their properties in wire order.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf0Value {
    Number(f64),
    Boolean(bool),
    String(String),
    Object(Vec<(String, Amf0Value)>),
    Null,
    Undefined,
    EcmaArray(Vec<(String, Amf0Value)>),
    StrictArray(Vec<Amf0Value>),
    Date { millis: f64, timezone: i16 },
}

impl Amf0Value {
    /// The string inside a `String`, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number inside a `Number`, if it is one.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Amf0Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The properties of an `Object` or `EcmaArray`.
    pub fn properties(&self) -> Option<&[(String, Amf0Value)]> {
        match self {
            Amf0Value::Object(p) | Amf0Value::EcmaArray(p) => Some(p),
            _ => None,
        }
    }

    /// Looks a property up by name in an `Object` or `EcmaArray`.
    pub fn get(&self, key: &str) -> Option<&Amf0Value> {
        self.properties()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Shorthand for building an object from string keys.
    pub fn object<K: Into<String>>(props: impl IntoIterator<Item = (K, Amf0Value)>) -> Amf0Value {
        Amf0Value::Object(props.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// Shorthand for a string value.
    pub fn string(s: impl Into<String>) -> Amf0Value {
        Amf0Value::String(s.into())
    }
}

/// Why an AMF0 payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Amf0Error {
    #[error("AMF0 data ends in the middle of a value")]
    Truncated,
    #[error("AMF0 nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("unsupported AMF0 type marker 0x{0:02x}")]
    UnsupportedMarker(u8),
    #[error("AMF0 string is not valid UTF-8")]
    InvalidUtf8,
    #[error("AMF0 payload holds more than {0} values")]
    TooManyValues(usize),
}

mod marker {
    pub const NUMBER: u8 = 0x00;
    pub const BOOLEAN: u8 = 0x01;
    pub const STRING: u8 = 0x02;
    pub const OBJECT: u8 = 0x03;
    pub const NULL: u8 = 0x05;
    pub const UNDEFINED: u8 = 0x06;
    pub const ECMA_ARRAY: u8 = 0x08;
    pub const OBJECT_END: u8 = 0x09;
    pub const STRICT_ARRAY: u8 = 0x0a;
    pub const DATE: u8 = 0x0b;
    pub const LONG_STRING: u8 = 0x0c;
    pub const UNSUPPORTED: u8 = 0x0d;
    pub const XML_DOCUMENT: u8 = 0x0f;
    pub const AVMPLUS: u8 = 0x11;
}

/// Decodes every value in `input` (a command or data message body).
pub fn decode_all(input: &[u8]) -> Result<Vec<Amf0Value>, Amf0Error> {
    decode_all_bounded(input, usize::MAX)
}

/// Like [`decode_all`], but refuses a payload that holds more than
/// `max_values` values in all (nested ones included) before decoding them:
/// what an untrusted payload may cost in memory is bounded by the caller,
/// not by the payload's size times the growth of a decoded value.
pub fn decode_all_bounded(input: &[u8], max_values: usize) -> Result<Vec<Amf0Value>, Amf0Error> {
    let mut reader = Reader {
        buf: input,
        pos: 0,
        budget: max_values,
        max_values,
    };
    let mut values = Vec::new();
    while reader.pos < input.len() {
        values.push(reader.value(0)?);
    }
    Ok(values)
}

/// Decodes one value from the front of `input` and says how many bytes it
/// used.
pub fn decode_one(input: &[u8]) -> Result<(Amf0Value, usize), Amf0Error> {
    let mut reader = Reader {
        buf: input,
        pos: 0,
        budget: usize::MAX,
        max_values: usize::MAX,
    };
    let value = reader.value(0)?;
    Ok((value, reader.pos))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Values that may still be decoded.
    budget: usize,
    max_values: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Amf0Error> {
        let end = self.pos.checked_add(n).ok_or(Amf0Error::Truncated)?;
        let slice = self.buf.get(self.pos..end).ok_or(Amf0Error::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, Amf0Error> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Amf0Error> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Amf0Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, Amf0Error> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    fn utf8(&mut self, len: usize) -> Result<String, Amf0Error> {
        let b = self.take(len)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| Amf0Error::InvalidUtf8)
    }

    fn short_string(&mut self) -> Result<String, Amf0Error> {
        let len = self.u16()? as usize;
        self.utf8(len)
    }

    fn value(&mut self, depth: usize) -> Result<Amf0Value, Amf0Error> {
        if depth > MAX_DEPTH {
            return Err(Amf0Error::TooDeep);
        }
        self.budget = self
            .budget
            .checked_sub(1)
            .ok_or(Amf0Error::TooManyValues(self.max_values))?;
        let m = self.u8()?;
        Ok(match m {
            marker::NUMBER => Amf0Value::Number(self.f64()?),
            marker::BOOLEAN => Amf0Value::Boolean(self.u8()? != 0),
            marker::STRING => Amf0Value::String(self.short_string()?),
            marker::LONG_STRING => {
                let len = self.u32()? as usize;
                Amf0Value::String(self.utf8(len)?)
            }
            marker::OBJECT => Amf0Value::Object(self.properties(depth)?),
            marker::ECMA_ARRAY => {
                // The count is advisory (encoders get it wrong); the
                // object-end marker is what ends the array.
                let _count = self.u32()?;
                Amf0Value::EcmaArray(self.properties(depth)?)
            }
            marker::STRICT_ARRAY => {
                let count = self.u32()? as usize;
                // Each element takes at least one byte: a count larger than
                // what remains is a lie, refuse it before allocating.
                if count > self.buf.len() - self.pos {
                    return Err(Amf0Error::Truncated);
                }
                // Room for a few only: nested arrays that each announce
                // what remains would reserve many times the input.
                let mut items = Vec::with_capacity(count.min(64));
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Amf0Value::StrictArray(items)
            }
            marker::NULL => Amf0Value::Null,
            marker::UNDEFINED | marker::UNSUPPORTED => Amf0Value::Undefined,
            marker::DATE => {
                let millis = self.f64()?;
                let timezone = self.u16()? as i16;
                Amf0Value::Date { millis, timezone }
            }
            marker::XML_DOCUMENT => {
                let len = self.u32()? as usize;
                Amf0Value::String(self.utf8(len)?)
            }
            other => return Err(Amf0Error::UnsupportedMarker(other)),
        })
    }

    fn properties(&mut self, depth: usize) -> Result<Vec<(String, Amf0Value)>, Amf0Error> {
        let mut props = Vec::new();
        loop {
            let key = self.short_string()?;
            if key.is_empty() {
                // An empty key followed by the object-end marker closes the
                // object. Some encoders omit the marker at the very end of
                // the payload; accept that.
                match self.buf.get(self.pos) {
                    Some(&marker::OBJECT_END) => {
                        self.pos += 1;
                        return Ok(props);
                    }
                    None => return Ok(props),
                    Some(_) => {}
                }
            }
            let value = self.value(depth + 1)?;
            props.push((key, value));
        }
    }
}

/// Appends the encoding of `value` to `out`.
pub fn encode(value: &Amf0Value, out: &mut BytesMut) {
    match value {
        Amf0Value::Number(n) => {
            out.put_u8(marker::NUMBER);
            out.put_f64(*n);
        }
        Amf0Value::Boolean(b) => {
            out.put_u8(marker::BOOLEAN);
            out.put_u8(u8::from(*b));
        }
        Amf0Value::String(s) => {
            if s.len() <= u16::MAX as usize {
                out.put_u8(marker::STRING);
                out.put_u16(s.len() as u16);
            } else {
                out.put_u8(marker::LONG_STRING);
                out.put_u32(s.len() as u32);
            }
            out.put_slice(s.as_bytes());
        }
        Amf0Value::Object(props) => {
            out.put_u8(marker::OBJECT);
            encode_properties(props, out);
        }
        Amf0Value::Null => out.put_u8(marker::NULL),
        Amf0Value::Undefined => out.put_u8(marker::UNDEFINED),
        Amf0Value::EcmaArray(props) => {
            out.put_u8(marker::ECMA_ARRAY);
            out.put_u32(props.len() as u32);
            encode_properties(props, out);
        }
        Amf0Value::StrictArray(items) => {
            out.put_u8(marker::STRICT_ARRAY);
            out.put_u32(items.len() as u32);
            for item in items {
                encode(item, out);
            }
        }
        Amf0Value::Date { millis, timezone } => {
            out.put_u8(marker::DATE);
            out.put_f64(*millis);
            out.put_i16(*timezone);
        }
    }
}

fn encode_properties(props: &[(String, Amf0Value)], out: &mut BytesMut) {
    for (key, value) in props {
        // Keys are short strings by definition; a longer one is cut rather
        // than producing an undecodable payload.
        let key = &key.as_bytes()[..key.len().min(u16::MAX as usize)];
        out.put_u16(key.len() as u16);
        out.put_slice(key);
        encode(value, out);
    }
    out.put_u16(0);
    out.put_u8(marker::OBJECT_END);
}

/// Encodes a sequence of values (a whole command body).
pub fn encode_all<'a>(values: impl IntoIterator<Item = &'a Amf0Value>) -> BytesMut {
    let mut out = BytesMut::new();
    for v in values {
        encode(v, &mut out);
    }
    out
}

/// True when `marker` starts an AMF3 value switch (`avmplus-object`): we do
/// not decode AMF3 and say so clearly.
pub fn is_amf3_switch(m: u8) -> bool {
    m == marker::AVMPLUS
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_a_connect_command() {
        let values = vec![
            Amf0Value::string("connect"),
            Amf0Value::Number(1.0),
            Amf0Value::object([
                ("app", Amf0Value::string("live")),
                ("tcUrl", Amf0Value::string("rtmp://127.0.0.1/live")),
                ("fpad", Amf0Value::Boolean(false)),
            ]),
        ];
        let bytes = encode_all(&values);
        assert_eq!(decode_all(&bytes).expect("decodes"), values);
    }

    #[test]
    fn refuses_deep_nesting_without_overflowing_the_stack() {
        // 1 MB of nested strict arrays: the attack that aborts other
        // decoders.
        let mut bytes = Vec::new();
        for _ in 0..200_000 {
            bytes.push(marker::STRICT_ARRAY);
            bytes.extend_from_slice(&1u32.to_be_bytes());
        }
        assert_eq!(decode_all(&bytes), Err(Amf0Error::TooDeep));
        let mut objects = Vec::new();
        for _ in 0..200_000 {
            objects.push(marker::OBJECT);
            objects.extend_from_slice(&[0, 1, b'a']);
        }
        assert_eq!(decode_all(&objects), Err(Amf0Error::TooDeep));
    }

    #[test]
    fn refuses_a_strict_array_count_larger_than_the_input() {
        let mut bytes = vec![marker::STRICT_ARRAY];
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(decode_all(&bytes), Err(Amf0Error::Truncated));
    }

    #[test]
    fn reports_truncation_and_unknown_markers() {
        assert_eq!(
            decode_all(&[marker::NUMBER, 0, 0]),
            Err(Amf0Error::Truncated)
        );
        assert_eq!(
            decode_all(&[marker::STRING, 0, 9, b'a']),
            Err(Amf0Error::Truncated)
        );
        assert_eq!(decode_all(&[0x42]), Err(Amf0Error::UnsupportedMarker(0x42)));
        assert_eq!(
            decode_all(&[0x07, 0, 1]),
            Err(Amf0Error::UnsupportedMarker(7))
        );
    }

    #[test]
    fn accepts_an_object_missing_its_end_marker_at_the_end_of_input() {
        let bytes = [marker::OBJECT, 0, 1, b'a', marker::NULL, 0, 0];
        assert_eq!(
            decode_all(&bytes).expect("decodes"),
            vec![Amf0Value::object([("a", Amf0Value::Null)])]
        );
    }

    #[test]
    fn our_encoding_is_read_by_rml_amf0() {
        let values = vec![
            Amf0Value::string("onMetaData"),
            Amf0Value::EcmaArray(vec![
                ("width".into(), Amf0Value::Number(1280.0)),
                ("encoder".into(), Amf0Value::string("obs")),
                ("stereo".into(), Amf0Value::Boolean(true)),
            ]),
        ];
        let bytes = encode_all(&values);
        let mut cursor = std::io::Cursor::new(bytes.to_vec());
        let decoded = rml_amf0::deserialize(&mut cursor).expect("rml_amf0 decodes");
        assert_eq!(decoded.len(), 2);
        assert_eq!(
            decoded[0],
            rml_amf0::Amf0Value::Utf8String("onMetaData".into())
        );
    }

    fn arb_value() -> impl Strategy<Value = Amf0Value> {
        let leaf = prop_oneof![
            any::<f64>()
                .prop_filter("NaN never equals itself", |f| !f.is_nan())
                .prop_map(Amf0Value::Number),
            any::<bool>().prop_map(Amf0Value::Boolean),
            ".{0,20}".prop_map(Amf0Value::String),
            Just(Amf0Value::Null),
            Just(Amf0Value::Undefined),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(("[a-z]{1,8}", inner.clone()), 0..6)
                    .prop_map(Amf0Value::Object),
                prop::collection::vec(("[a-z]{1,8}", inner.clone()), 0..6)
                    .prop_map(Amf0Value::EcmaArray),
                prop::collection::vec(inner, 0..6).prop_map(Amf0Value::StrictArray),
            ]
        })
    }

    proptest! {
        #[test]
        fn encode_then_decode_round_trips(values in prop::collection::vec(arb_value(), 0..4)) {
            let bytes = encode_all(&values);
            prop_assert_eq!(decode_all(&bytes).expect("decodes"), values);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_all(&bytes);
        }
    }
}
