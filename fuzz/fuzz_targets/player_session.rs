//! A player session (antenne pulling a stream from another server) fed
//! what a source might send: a valid S0 S1 S2, then arbitrary bytes, in
//! arbitrary pieces.
//!
//! Input: `[flags][split seed][bytes…]`: flags bit 7: no handshake is made
//! up, the bytes are fed from the very start (S0 S1 S2 included).
//!
//! Checks: no panic; the memory held at the peak is bounded by the input
//! (a counting allocator) and by the media limits; everything the session
//! sends after C0 C1 C2 is a valid chunk stream of messages we can parse.
#![no_main]

use antenne_fuzz::{assert_valid_output, fixed_packet, held_since, pieces, reset_peak, Counting};
use antenne_rtmp::handshake::PACKET_SIZE;
use antenne_rtmp::{PlayTarget, PlayerEvent, PlayerSession};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static GLOBAL: Counting = Counting;

fuzz_target!(|data: &[u8]| {
    let [flags, seed, stream @ ..] = data else {
        return;
    };
    let base = reset_peak();
    let mut session = PlayerSession::new(
        PlayTarget {
            app: "live".into(),
            tc_url: "rtmp://127.0.0.1:1935/live".into(),
            stream_name: "obs".into(),
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
    let mut media = 0usize;
    for piece in pieces(&input, *seed) {
        if session.feed(piece).is_err() {
            break;
        }
        while let Some(event) = session.poll_event() {
            if let PlayerEvent::Audio { payload, .. } | PlayerEvent::Video { payload, .. } = event {
                assert!(session.is_playing(), "media only once playing");
                media += payload.len();
            }
        }
        while let Some(b) = session.take_output() {
            out.extend_from_slice(&b);
        }
    }
    assert!(media <= data.len(), "media is never made up");
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
