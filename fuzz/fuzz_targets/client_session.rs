//! A client session (antenne publishing to a platform) fed what a
//! platform might answer: a valid S0 S1 S2, then arbitrary bytes, in
//! arbitrary pieces; media is sent once it says it published.
//!
//! Input: `[flags][split seed][bytes…]`: flags bit 7: no handshake is made
//! up, the bytes are fed from the very start (S0 S1 S2 included).
//!
//! Checks: no panic; the memory held at the peak is bounded by the input
//! (a counting allocator); everything the session sends after C0 C1 C2 is a
//! valid chunk stream of messages we can parse.
#![no_main]

use antenne_fuzz::{assert_valid_output, fixed_packet, held_since, pieces, reset_peak, Counting};
use antenne_rtmp::handshake::PACKET_SIZE;
use antenne_rtmp::{ClientEvent, ClientSession, PublishTarget};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static GLOBAL: Counting = Counting;

fuzz_target!(|data: &[u8]| {
    let [flags, seed, stream @ ..] = data else {
        return;
    };
    let base = reset_peak();
    let mut session = ClientSession::new(
        PublishTarget {
            app: "live".into(),
            tc_url: "rtmp://127.0.0.1:1935/live".into(),
            stream_name: "key".into(),
        },
        fixed_packet(7),
    );
    let mut out = Vec::new();
    let mut input = Vec::new();
    if flags & 0x80 == 0 {
        input.push(3u8);
        input.extend_from_slice(&[0u8; 2 * PACKET_SIZE]);
    }
    input.extend_from_slice(stream);
    let frame = Bytes::from_static(&[0x17, 1, 0, 0, 0, 1, 2, 3]);
    for piece in pieces(&input, *seed) {
        if session.feed(piece).is_err() {
            break;
        }
        while let Some(event) = session.poll_event() {
            if event == ClientEvent::Published {
                assert!(session.is_published());
                let mut parts = Vec::new();
                session.metadata_parts(0, &[2, 0, 1, b'x'], &mut parts);
                session.media_parts(true, 40, &frame, &mut parts);
                for p in parts {
                    out.extend_from_slice(&p);
                }
            }
        }
        while let Some(b) = session.take_output() {
            out.extend_from_slice(&b);
        }
    }
    session.unpublish();
    while let Some(b) = session.take_output() {
        out.extend_from_slice(&b);
    }
    // The input, what we answered and the events (a few times the input),
    // the handshake, and what the chunk decoder may reserve ahead of what
    // it received (64 KiB per chunk stream and for its buffer).
    let held = held_since(base);
    let bound = 256 * data.len() as isize + 65 * 64 * 1024 + 512 * 1024;
    assert!(
        held <= bound,
        "{} input bytes made the session hold {held} bytes",
        data.len()
    );
    assert_valid_output(&out, 1 + 2 * PACKET_SIZE);
});
