//! A server session (ingest) fed a valid handshake, then arbitrary bytes:
//! chunk stream, commands, media, in arbitrary pieces, with the owner
//! accepting or refusing `connect` and `publish` as the input says.
//!
//! Input: `[flags][split seed][bytes…]`.
//! - flags bit 0: accept `connect` (else reject); bit 1: accept `publish`
//!   (else reject); bit 7: no handshake is made up, the bytes are fed from
//!   the very start (C0 C1 C2 included).
//!
//! Checks: no panic; the memory held at the peak is bounded by the input
//! (a counting allocator); everything the session sends after S0 S1 S2 is a
//! valid chunk stream of messages we can parse; media events only while
//! publishing.
#![no_main]

use antenne_fuzz::{assert_valid_output, fixed_packet, held_since, pieces, reset_peak, Counting};
use antenne_rtmp::handshake::PACKET_SIZE;
use antenne_rtmp::{ServerConfig, ServerEvent, ServerSession};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static GLOBAL: Counting = Counting;

fuzz_target!(|data: &[u8]| {
    let [flags, seed, stream @ ..] = data else {
        return;
    };
    let base = reset_peak();
    let mut session = ServerSession::new(ServerConfig::default(), fixed_packet(9));
    let mut out = Vec::new();
    let mut input = Vec::new();
    if flags & 0x80 == 0 {
        // A simple handshake: C0, C1 of zeros (no digest), C2.
        input.push(3u8);
        input.extend_from_slice(&[0u8; 2 * PACKET_SIZE]);
    }
    input.extend_from_slice(stream);
    'feed: for piece in pieces(&input, *seed) {
        if session.feed(piece).is_err() {
            break;
        }
        loop {
            let Some(event) = session.poll_event() else {
                break;
            };
            match event {
                ServerEvent::ConnectRequested { .. } => {
                    if flags & 1 != 0 {
                        session.accept_connect();
                    } else {
                        session.reject_connect("no");
                        break 'feed;
                    }
                }
                ServerEvent::PublishRequested { .. } => {
                    if flags & 2 != 0 {
                        session.accept_publish();
                    } else {
                        session.reject_publish("NetStream.Publish.BadName", "no");
                        break 'feed;
                    }
                }
                ServerEvent::Audio { .. }
                | ServerEvent::Video { .. }
                | ServerEvent::Metadata { .. } => assert!(session.is_publishing()),
                ServerEvent::PublishEnded | ServerEvent::PlayRefused { .. } => {}
            }
            if session.resume().is_err() {
                break 'feed;
            }
        }
        while let Some(b) = session.take_output() {
            out.extend_from_slice(&b);
        }
    }
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
