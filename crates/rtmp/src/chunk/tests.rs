//! Unit tests of [`super`] (chunk.rs).

use super::*;
use proptest::prelude::*;

fn decode_all(dec: &mut ChunkDecoder) -> Vec<RawMessage> {
    let mut out = Vec::new();
    while let Some(m) = dec.next_message().expect("valid chunk stream") {
        out.push(m);
    }
    out
}

fn msg(csid: u32, ts: u32, type_id: u8, len: usize, fill: u8) -> RawMessage {
    RawMessage {
        csid,
        timestamp: ts,
        type_id,
        stream_id: 1,
        payload: Bytes::from(vec![fill; len]),
    }
}

#[test]
fn reassembles_interleaved_chunk_streams() {
    // Two messages on two chunk streams, chunks interleaved by hand.
    let mut enc = ChunkEncoder::new();
    let a = msg(4, 10, 8, 300, 0xaa);
    let b = msg(6, 20, 9, 300, 0xbb);
    let mut a_bytes = BytesMut::new();
    enc.encode_into(a.csid, a.timestamp, a.type_id, 1, &a.payload, &mut a_bytes);
    let mut b_bytes = BytesMut::new();
    enc.encode_into(b.csid, b.timestamp, b.type_id, 1, &b.payload, &mut b_bytes);
    // Chunks: 12+128, 1+128, 1+44
    let split = |b: &BytesMut| vec![b[..140].to_vec(), b[140..269].to_vec(), b[269..].to_vec()];
    let (ca, cb) = (split(&a_bytes), split(&b_bytes));
    let mut dec = ChunkDecoder::new(DecoderLimits::default());
    for i in 0..3 {
        dec.push(&ca[i]);
        dec.push(&cb[i]);
    }
    assert_eq!(decode_all(&mut dec), vec![a, b]);
}

#[test]
fn decodes_byte_by_byte() {
    let mut enc = ChunkEncoder::new();
    let m = msg(3, 0x0100_0000, 20, 1000, 7);
    let mut bytes = BytesMut::new();
    enc.encode_into(m.csid, m.timestamp, m.type_id, 1, &m.payload, &mut bytes);
    let mut dec = ChunkDecoder::new(DecoderLimits::default());
    let mut got = Vec::new();
    for b in bytes.iter() {
        dec.push(&[*b]);
        got.extend(decode_all(&mut dec));
    }
    assert_eq!(got, vec![m]);
}

#[test]
fn applies_set_chunk_size_to_the_following_chunks() {
    let mut enc = ChunkEncoder::new();
    let mut bytes = BytesMut::new();
    enc.encode_into(2, 0, 1, 0, &4096u32.to_be_bytes(), &mut bytes);
    enc.set_chunk_size(4096);
    let m = msg(6, 5, 9, 3000, 1);
    enc.encode_into(6, 5, 9, 1, &m.payload, &mut bytes);
    let mut dec = ChunkDecoder::new(DecoderLimits::default());
    dec.push(&bytes);
    let got = decode_all(&mut dec);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1], m);
    assert_eq!(dec.chunk_size(), 4096);
}

#[test]
fn rejects_chunk_size_zero_and_two_to_the_31() {
    for size in [0u32, 0x8000_0000] {
        let mut enc = ChunkEncoder::new();
        let mut bytes = BytesMut::new();
        enc.encode_into(2, 0, 1, 0, &size.to_be_bytes(), &mut bytes);
        let mut dec = ChunkDecoder::new(DecoderLimits::default());
        dec.push(&bytes);
        assert_eq!(dec.next_message(), Err(ChunkError::InvalidChunkSize(size)));
    }
}

#[test]
fn rejects_a_16_mib_message_before_buffering_it() {
    // fmt 0 header announcing 16 MiB - 1.
    let mut bytes = vec![0x03, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0];
    bytes.extend_from_slice(&[0u8; 128]);
    let mut dec = ChunkDecoder::new(DecoderLimits::default());
    dec.push(&bytes);
    assert!(matches!(
        dec.next_message(),
        Err(ChunkError::MessageTooLarge {
            size: 0xff_ffff,
            ..
        })
    ));
}

#[test]
fn caps_the_number_of_chunk_streams() {
    let mut enc = ChunkEncoder::new();
    let mut bytes = BytesMut::new();
    for csid in 3..100_000u32 {
        enc.encode_into(csid.min(65_599), 0, 8, 1, &[1, 2, 3], &mut bytes);
        if bytes.len() > 10_000 {
            break;
        }
    }
    let mut dec = ChunkDecoder::new(DecoderLimits::default());
    dec.push(&bytes);
    let mut result = Ok(None);
    for _ in 0..1000 {
        result = dec.next_message();
        if !matches!(result, Ok(Some(_))) {
            break;
        }
    }
    assert_eq!(result, Err(ChunkError::TooManyChunkStreams(64)));
}

/// A message of `chunks` full chunks and one more byte on `csid` (2 to
/// 63), without its last chunk: all but one byte of it.
fn all_but_one_byte(enc: &mut ChunkEncoder, csid: u32, chunks: usize) -> BytesMut {
    let mut bytes = BytesMut::new();
    let len = chunks * enc.chunk_size() as usize + 1;
    enc.encode_into(csid, 0, 9, 1, &vec![0u8; len], &mut bytes);
    // The last chunk: a 1-byte type-3 header and the byte.
    bytes.truncate(bytes.len() - 2);
    bytes
}

#[test]
fn caps_what_messages_in_assembly_hold_across_chunk_streams() {
    let mut enc = ChunkEncoder::new();
    let mut bytes = BytesMut::new();
    enc.encode_into(2, 0, 1, 0, &4096u32.to_be_bytes(), &mut bytes);
    enc.set_chunk_size(4096);
    for csid in 3..8 {
        bytes.extend_from_slice(&all_but_one_byte(&mut enc, csid, 15));
    }
    let mut dec = ChunkDecoder::new(DecoderLimits::COMMANDS);
    dec.push(&bytes);
    let mut result = Ok(None);
    for _ in 0..1000 {
        result = dec.next_message();
        if !matches!(result, Ok(Some(_))) {
            break;
        }
    }
    assert_eq!(
        result,
        Err(ChunkError::TooMuchBuffered {
            limit: DecoderLimits::COMMANDS.max_buffered
        })
    );
}

#[test]
fn raised_limits_apply_to_the_next_chunk() {
    let mut enc = ChunkEncoder::new();
    let mut bytes = BytesMut::new();
    enc.encode_into(2, 0, 1, 0, &4096u32.to_be_bytes(), &mut bytes);
    enc.set_chunk_size(4096);
    let big = msg(6, 0, 9, 1024 * 1024, 3);
    enc.encode_into(6, 0, 9, 1, &big.payload, &mut bytes);
    let mut dec = ChunkDecoder::new(DecoderLimits::COMMANDS);
    dec.push(&bytes);
    assert!(matches!(dec.next_message(), Ok(Some(m)) if m.type_id == 1));
    dec.set_limits(DecoderLimits::MEDIA);
    assert_eq!(dec.next_message(), Ok(Some(big)));
    let mut dec = ChunkDecoder::new(DecoderLimits::COMMANDS);
    dec.push(&bytes);
    assert!(matches!(dec.next_message(), Ok(Some(m)) if m.type_id == 1));
    assert!(matches!(
        dec.next_message(),
        Err(ChunkError::MessageTooLarge { .. })
    ));
}

#[test]
fn refuses_a_continuation_on_an_unknown_chunk_stream() {
    let mut dec = ChunkDecoder::new(DecoderLimits::default());
    dec.push(&[0xc5, 1, 2, 3]);
    assert_eq!(
        dec.next_message(),
        Err(ChunkError::NoPreviousHeader { fmt: 3, csid: 5 })
    );
}

#[test]
fn encode_parts_shares_the_payload() {
    let mut enc = ChunkEncoder::new();
    enc.set_chunk_size(100);
    let payload = Bytes::from(vec![9u8; 250]);
    let mut parts = Vec::new();
    enc.encode_parts(6, 1, 9, 1, &payload, &mut parts);
    assert_eq!(parts.len(), 6);
    // Payload slices point into the original allocation.
    assert_eq!(parts[1].as_ptr(), payload.as_ptr());
    let mut joined = BytesMut::new();
    for p in &parts {
        joined.extend_from_slice(p);
    }
    let mut contiguous = BytesMut::new();
    enc.encode_into(6, 1, 9, 1, &payload, &mut contiguous);
    assert_eq!(joined, contiguous);
}

#[test]
fn our_chunks_are_read_by_rml_rtmp() {
    use rml_rtmp::chunk_io::ChunkDeserializer;
    let mut enc = ChunkEncoder::new();
    let mut bytes = BytesMut::new();
    enc.encode_into(2, 0, 1, 0, &1000u32.to_be_bytes(), &mut bytes);
    enc.set_chunk_size(1000);
    let payload = vec![5u8; 2500];
    enc.encode_into(6, 0x0123_4567, 9, 1, &payload, &mut bytes);
    let mut oracle = ChunkDeserializer::new();
    let mut input: &[u8] = &bytes;
    let mut got = Vec::new();
    while let Some(p) = oracle.get_next_message(input).expect("rml_rtmp decodes") {
        if p.type_id == 1 {
            // rml_rtmp leaves Set Chunk Size to its caller.
            oracle.set_max_chunk_size(1000).expect("valid size");
        }
        got.push(p);
        input = &[];
    }
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].timestamp.value, 0x0123_4567);
    assert_eq!(got[1].data.len(), 2500);
}

proptest! {
    #[test]
    fn write_then_read_round_trips(
        chunk_size in 1u32..5000,
        lens in prop::collection::vec(0usize..9000, 1..8),
        split in 1usize..700,
        ts in prop::collection::vec(any::<u32>(), 8),
    ) {
        let mut enc = ChunkEncoder::new();
        let mut bytes = BytesMut::new();
        enc.encode_into(2, 0, 1, 0, &chunk_size.to_be_bytes(), &mut bytes);
        enc.set_chunk_size(chunk_size);
        let mut want = Vec::new();
        for (i, len) in lens.iter().enumerate() {
            let m = msg(3 + (i as u32 % 3) * 100, ts[i], 8 + (i as u8 % 2), *len, i as u8);
            let mut parts = Vec::new();
            enc.encode_parts(m.csid, m.timestamp, m.type_id, 1, &m.payload, &mut parts);
            for p in parts { bytes.extend_from_slice(&p); }
            want.push(m);
        }
        let mut dec = ChunkDecoder::new(DecoderLimits::default());
        let mut got = Vec::new();
        for piece in bytes.chunks(split) {
            dec.push(piece);
            while let Some(m) = dec.next_message().expect("round trip decodes") {
                if m.type_id != 1 { got.push(m); }
            }
        }
        prop_assert_eq!(got, want);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let mut dec = ChunkDecoder::new(DecoderLimits::default());
        dec.push(&bytes);
        for _ in 0..100 {
            match dec.next_message() {
                Ok(Some(_)) => continue,
                _ => break,
            }
        }
    }
}
