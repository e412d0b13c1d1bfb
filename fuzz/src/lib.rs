//! Helpers shared by the fuzz targets.

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
