//! The handshake, server side and client side, fed arbitrary bytes in
//! arbitrary pieces.
//!
//! Input: `[side and split seed][bytes…]`: bit 7 of the first byte picks
//! the client side, the low bits the split points.
//!
//! Checks: no panic; what each side sends has the sizes the protocol says;
//! `consumed` never goes past what was fed.
#![no_main]

use antenne_fuzz::{fixed_packet, pieces};
use antenne_rtmp::handshake::{ClientHandshake, HandshakeProgress, ServerHandshake, PACKET_SIZE};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fn server(data: &[u8], seed: u8) {
    let mut hs = ServerHandshake::new(fixed_packet(1));
    // What ServerSession does: keep what was not consumed, feed it again
    // with the next bytes appended.
    let mut buf = BytesMut::new();
    let mut out = BytesMut::new();
    let mut fed = 0usize;
    for piece in pieces(data, seed) {
        buf.extend_from_slice(piece);
        fed += piece.len();
        match hs.feed(&buf, &mut out) {
            Ok((HandshakeProgress::NeedMore, used)) => {
                assert!(used <= buf.len());
                let _ = buf.split_to(used);
            }
            Ok((HandshakeProgress::Done { consumed }, used)) => {
                assert_eq!(consumed, used);
                assert!(used <= buf.len());
                assert!(fed > 2 * PACKET_SIZE);
                assert_eq!(out.len(), 1 + 2 * PACKET_SIZE);
                return;
            }
            Err(_) => return,
        }
        assert!(out.is_empty() || out.len() == 1 + 2 * PACKET_SIZE);
    }
}

fn client(data: &[u8], seed: u8) {
    let mut hs = ClientHandshake::new(fixed_packet(2));
    assert_eq!(hs.start().len(), 1 + PACKET_SIZE);
    let mut buf = BytesMut::new();
    let mut out = BytesMut::new();
    for piece in pieces(data, seed) {
        buf.extend_from_slice(piece);
        match hs.feed(&buf, &mut out) {
            Ok(HandshakeProgress::NeedMore) => assert!(out.is_empty()),
            Ok(HandshakeProgress::Done { consumed }) => {
                assert!(consumed <= buf.len());
                assert_eq!(out.len(), PACKET_SIZE);
                // C2 echoes S1.
                assert_eq!(&out[..], &buf[1..1 + PACKET_SIZE]);
                return;
            }
            Err(_) => return,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [first, rest @ ..] = data else {
        return;
    };
    if first & 0x80 != 0 {
        client(rest, first & 0x7f);
    } else {
        server(rest, first & 0x7f);
    }
});
