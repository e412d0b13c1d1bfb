//! Property tests of AMF0, beyond the unit tests in amf0.rs (which
//! round-trip short strings, numbers, booleans and containers):
//!
//! - every value kind we decode (dates, long strings, NaN payloads, empty
//!   and non-ASCII keys, nesting down to the depth limit) survives
//!   encode → decode;
//! - `rml_amf0` (an independent implementation) reads what we write, and we
//!   read what it writes.

use std::collections::HashMap;

use antenne_rtmp::amf0::{decode_all, decode_one, encode_all, Amf0Value, MAX_DEPTH};
use proptest::prelude::*;
use rml_amf0::Amf0Value as Rml;

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,12}",
        // Longer than a short string can say: written as a long string.
        (65_530usize..65_600).prop_map(|n| "é".repeat(n / 2)),
    ]
}

fn arb_number() -> impl Strategy<Value = f64> {
    // Any bit pattern, NaN payloads and infinities included.
    any::<u64>().prop_map(f64::from_bits)
}

fn arb_key() -> impl Strategy<Value = String> {
    // Empty keys are legal when a value follows (the end marker is told
    // apart by the marker byte).
    prop_oneof![Just(String::new()), ".{1,8}"]
}

fn arb_full_value() -> impl Strategy<Value = Amf0Value> {
    let leaf = prop_oneof![
        arb_number().prop_map(Amf0Value::Number),
        any::<bool>().prop_map(Amf0Value::Boolean),
        arb_string().prop_map(Amf0Value::String),
        Just(Amf0Value::Null),
        Just(Amf0Value::Undefined),
        (arb_number(), any::<i16>())
            .prop_map(|(millis, timezone)| Amf0Value::Date { millis, timezone }),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec((arb_key(), inner.clone()), 0..5).prop_map(Amf0Value::Object),
            prop::collection::vec((arb_key(), inner.clone()), 0..5).prop_map(Amf0Value::EcmaArray),
            prop::collection::vec(inner, 0..5).prop_map(Amf0Value::StrictArray),
        ]
    })
}

/// Structural equality where a number equals itself bit for bit (NaN
/// included), not through the encoding, which could lose the same field
/// on both sides.
fn same(a: &[Amf0Value], b: &[Amf0Value]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_value(x, y))
}

fn same_value(a: &Amf0Value, b: &Amf0Value) -> bool {
    use Amf0Value::{Date, EcmaArray, Number, Object, StrictArray};
    let props = |p: &[(String, Amf0Value)], q: &[(String, Amf0Value)]| {
        p.len() == q.len()
            && p.iter()
                .zip(q)
                .all(|((k, v), (l, w))| k == l && same_value(v, w))
    };
    match (a, b) {
        (Number(x), Number(y)) => x.to_bits() == y.to_bits(),
        (
            Date {
                millis: m,
                timezone: t,
            },
            Date {
                millis: n,
                timezone: u,
            },
        ) => m.to_bits() == n.to_bits() && t == u,
        (Object(p), Object(q)) | (EcmaArray(p), EcmaArray(q)) => props(p, q),
        (StrictArray(p), StrictArray(q)) => same(p, q),
        _ => a == b,
    }
}

fn nested(depth: usize, kind: u8) -> Amf0Value {
    let mut v = Amf0Value::Number(1.0);
    for _ in 0..depth {
        v = match kind % 3 {
            0 => Amf0Value::StrictArray(vec![v]),
            1 => Amf0Value::object([("k", v)]),
            _ => Amf0Value::EcmaArray(vec![("k".into(), v)]),
        };
    }
    v
}

/// Values rml_amf0 knows: no dates, no long strings, no undefined inside
/// containers it reads as maps, keys unique and non-empty (it reads
/// objects into a HashMap and stops at an empty key).
fn arb_common_value() -> impl Strategy<Value = Amf0Value> {
    let leaf = prop_oneof![
        any::<f64>()
            .prop_filter("NaN never equals itself", |f| !f.is_nan())
            .prop_map(Amf0Value::Number),
        any::<bool>().prop_map(Amf0Value::Boolean),
        ".{0,16}".prop_map(Amf0Value::String),
        Just(Amf0Value::Null),
        Just(Amf0Value::Undefined),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::btree_map("[a-zA-Z0-9_é]{1,8}", inner.clone(), 0..5)
                .prop_map(|m| Amf0Value::Object(m.into_iter().collect())),
            prop::collection::vec(inner, 0..5).prop_map(Amf0Value::StrictArray),
        ]
    })
}

fn to_rml(v: &Amf0Value) -> Rml {
    match v {
        Amf0Value::Number(n) => Rml::Number(*n),
        Amf0Value::Boolean(b) => Rml::Boolean(*b),
        Amf0Value::String(s) => Rml::Utf8String(s.clone()),
        Amf0Value::Null => Rml::Null,
        Amf0Value::Undefined => Rml::Undefined,
        Amf0Value::Object(p) | Amf0Value::EcmaArray(p) => Rml::Object(
            p.iter()
                .map(|(k, v)| (k.clone(), to_rml(v)))
                .collect::<HashMap<_, _>>(),
        ),
        Amf0Value::StrictArray(items) => Rml::StrictArray(items.iter().map(to_rml).collect()),
        Amf0Value::Date { .. } => unreachable!("not generated"),
    }
}

/// Ours, with object properties sorted (rml_amf0 keeps them in a map).
fn sorted(v: &Amf0Value) -> Amf0Value {
    match v {
        Amf0Value::Object(p) => {
            let mut p: Vec<_> = p.iter().map(|(k, v)| (k.clone(), sorted(v))).collect();
            p.sort_by(|a, b| a.0.cmp(&b.0));
            Amf0Value::Object(p)
        }
        Amf0Value::StrictArray(items) => Amf0Value::StrictArray(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_value_kind_round_trips(values in prop::collection::vec(arb_full_value(), 0..4)) {
        let bytes = encode_all(&values);
        let decoded = decode_all(&bytes).expect("our encoding decodes");
        prop_assert!(same(&decoded, &values), "{:?} came back as {:?}", values, decoded);
        // decode_one reads exactly the first value.
        if let Some(first) = values.first() {
            let one = encode_all([first]);
            let (v, used) = decode_one(&bytes).expect("first value decodes");
            prop_assert_eq!(used, one.len());
            prop_assert!(same(&[v], std::slice::from_ref(first)));
        }
    }

    #[test]
    fn nesting_down_to_the_limit_round_trips_and_deeper_is_refused(
        depth in 0usize..MAX_DEPTH + 4,
        kind in any::<u8>(),
    ) {
        let v = nested(depth, kind);
        let bytes = encode_all([&v]);
        match decode_all(&bytes) {
            Ok(d) => {
                prop_assert!(depth <= MAX_DEPTH);
                prop_assert_eq!(d, vec![v]);
            }
            Err(e) => {
                prop_assert!(depth > MAX_DEPTH, "depth {} refused: {}", depth, e);
            }
        }
    }

    #[test]
    fn rml_amf0_reads_what_we_write(values in prop::collection::vec(arb_common_value(), 1..4)) {
        let bytes = encode_all(&values);
        let mut cursor = std::io::Cursor::new(bytes.to_vec());
        let theirs = rml_amf0::deserialize(&mut cursor).expect("rml_amf0 decodes our AMF0");
        let want: Vec<Rml> = values.iter().map(to_rml).collect();
        prop_assert_eq!(theirs, want);
    }

    #[test]
    fn we_read_what_rml_amf0_writes(values in prop::collection::vec(arb_common_value(), 1..4)) {
        let theirs: Vec<Rml> = values.iter().map(to_rml).collect();
        let bytes = rml_amf0::serialize(&theirs).expect("rml_amf0 encodes");
        let ours = decode_all(&bytes).expect("we decode rml_amf0's AMF0");
        let ours: Vec<Amf0Value> = ours.iter().map(sorted).collect();
        let want: Vec<Amf0Value> = values.iter().map(sorted).collect();
        prop_assert_eq!(ours, want);
    }
}
