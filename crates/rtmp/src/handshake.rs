//! The RTMP handshake: C0/C1/C2 and S0/S1/S2.
//!
//! The server side answers both the simple handshake (ffmpeg's default
//! when it plays, librtmp) and the complex one with HMAC-SHA256 digests
//! (Flash Player, ffmpeg and OBS when they publish), echoing a digest only
//! when the client sent a valid one. The client side sends a simple
//! handshake, which every CDN ingest accepts and which is what OBS's
//! librtmp sends.

use bytes::{BufMut, Bytes, BytesMut};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Size of C1, S1, C2 and S2.
pub const PACKET_SIZE: usize = 1536;
const RTMP_VERSION: u8 = 3;
const DIGEST_LEN: usize = 32;

/// "Genuine Adobe Flash Media Server 001" followed by 32 bytes.
const FMS_KEY: [u8; 68] = [
    0x47, 0x65, 0x6e, 0x75, 0x69, 0x6e, 0x65, 0x20, 0x41, 0x64, 0x6f, 0x62, 0x65, 0x20, 0x46, 0x6c,
    0x61, 0x73, 0x68, 0x20, 0x4d, 0x65, 0x64, 0x69, 0x61, 0x20, 0x53, 0x65, 0x72, 0x76, 0x65, 0x72,
    0x20, 0x30, 0x30, 0x31, 0xf0, 0xee, 0xc2, 0x4a, 0x80, 0x68, 0xbe, 0xe8, 0x2e, 0x00, 0xd0, 0xd1,
    0x02, 0x9e, 0x7e, 0x57, 0x6e, 0xec, 0x5d, 0x2d, 0x29, 0x80, 0x6f, 0xab, 0x93, 0xb8, 0xe6, 0x36,
    0xcf, 0xeb, 0x31, 0xae,
];
/// "Genuine Adobe Flash Player 001" followed by the same 32 bytes.
const FP_KEY: [u8; 62] = [
    0x47, 0x65, 0x6e, 0x75, 0x69, 0x6e, 0x65, 0x20, 0x41, 0x64, 0x6f, 0x62, 0x65, 0x20, 0x46, 0x6c,
    0x61, 0x73, 0x68, 0x20, 0x50, 0x6c, 0x61, 0x79, 0x65, 0x72, 0x20, 0x30, 0x30, 0x31, 0xf0, 0xee,
    0xc2, 0x4a, 0x80, 0x68, 0xbe, 0xe8, 0x2e, 0x00, 0xd0, 0xd1, 0x02, 0x9e, 0x7e, 0x57, 0x6e, 0xec,
    0x5d, 0x2d, 0x29, 0x80, 0x6f, 0xab, 0x93, 0xb8, 0xe6, 0x36, 0xcf, 0xeb, 0x31, 0xae,
];

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("peer asked for RTMP version {0}, only 3 is supported (RTMPE and RTMPT are not)")]
    UnsupportedVersion(u8),
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // Keys of any length are valid for HMAC.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Where the 32-byte digest sits in a 1536-byte packet, for the two schemes.
fn digest_offset(packet: &[u8], scheme: u8) -> usize {
    let base = if scheme == 0 { 8 } else { 772 };
    let sum: usize = packet[base..base + 4].iter().map(|b| *b as usize).sum();
    base + 4 + sum % 728
}

fn packet_digest(packet: &[u8], offset: usize, key: &[u8]) -> [u8; 32] {
    hmac_sha256(key, &[&packet[..offset], &packet[offset + DIGEST_LEN..]])
}

/// Finds a valid client digest in C1 (either scheme) keyed with the first
/// 30 bytes of the Flash Player key.
fn find_client_digest(c1: &[u8]) -> Option<[u8; 32]> {
    for scheme in [0, 1] {
        let offset = digest_offset(c1, scheme);
        let expected = packet_digest(c1, offset, &FP_KEY[..30]);
        if c1[offset..offset + DIGEST_LEN] == expected {
            return Some(expected);
        }
    }
    None
}

/// What the server handshake has consumed so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerStage {
    AwaitC0C1,
    AwaitC2,
    Done,
}

/// Server side of the handshake, sans-IO: feed it bytes, take bytes to send.
#[derive(Debug)]
pub struct ServerHandshake {
    stage: ServerStage,
    random: [u8; PACKET_SIZE],
}

/// Progress reported by [`ServerHandshake::feed`] and [`ClientHandshake::feed`].
#[derive(Debug, PartialEq, Eq)]
pub enum HandshakeProgress {
    /// More bytes are needed.
    NeedMore,
    /// The handshake is over; the slice holds the bytes that followed it
    /// (the first chunks), which belong to the chunk decoder.
    Done { consumed: usize },
}

impl ServerHandshake {
    /// `random` fills S1 (pass random bytes; tests may pass fixed ones).
    pub fn new(random: [u8; PACKET_SIZE]) -> Self {
        Self {
            stage: ServerStage::AwaitC0C1,
            random,
        }
    }

    /// Consumes handshake bytes from the front of `input`. Responses (S0 S1
    /// S2) are appended to `out`. Returns how far it got; bytes not
    /// consumed while `NeedMore` must be fed again with more appended.
    pub fn feed(
        &mut self,
        input: &[u8],
        out: &mut BytesMut,
    ) -> Result<(HandshakeProgress, usize), HandshakeError> {
        let mut used = 0;
        loop {
            match self.stage {
                ServerStage::AwaitC0C1 => {
                    if input.len() < 1 + PACKET_SIZE {
                        return Ok((HandshakeProgress::NeedMore, used));
                    }
                    let version = input[0];
                    // Versions above 3 are treated as 3 by common servers;
                    // 6 and 8 are RTMPE, which we do not speak.
                    if version != RTMP_VERSION && !(version < 6 && version > 3) {
                        return Err(HandshakeError::UnsupportedVersion(version));
                    }
                    let c1 = &input[1..1 + PACKET_SIZE];
                    self.respond(c1, out);
                    used = 1 + PACKET_SIZE;
                    self.stage = ServerStage::AwaitC2;
                }
                ServerStage::AwaitC2 => {
                    // C2 is an echo of S1 that nobody validates in practice
                    // (clients differ on what they echo): skip it.
                    if input.len() - used < PACKET_SIZE {
                        return Ok((HandshakeProgress::NeedMore, used));
                    }
                    used += PACKET_SIZE;
                    self.stage = ServerStage::Done;
                }
                ServerStage::Done => {
                    return Ok((HandshakeProgress::Done { consumed: used }, used));
                }
            }
        }
    }

    fn respond(&mut self, c1: &[u8], out: &mut BytesMut) {
        out.reserve(1 + 2 * PACKET_SIZE);
        out.put_u8(RTMP_VERSION);
        let client_digest = if c1[4..8] == [0, 0, 0, 0] {
            None
        } else {
            find_client_digest(c1)
        };
        let mut s1 = self.random;
        s1[..4].copy_from_slice(&[0, 0, 0, 0]);
        match client_digest {
            None => {
                // Simple handshake: S1 zero version, S2 echoes C1.
                s1[4..8].copy_from_slice(&[0, 0, 0, 0]);
                out.put_slice(&s1);
                out.put_slice(c1);
            }
            Some(client_digest) => {
                s1[4..8].copy_from_slice(&[4, 5, 0, 1]);
                let offset = digest_offset(&s1, 0);
                let digest = packet_digest(&s1, offset, &FMS_KEY[..36]);
                s1[offset..offset + DIGEST_LEN].copy_from_slice(&digest);
                out.put_slice(&s1);
                let mut s2 = self.random;
                s2.reverse();
                let key = hmac_sha256(&FMS_KEY, &[&client_digest]);
                let sig = hmac_sha256(&key, &[&s2[..PACKET_SIZE - DIGEST_LEN]]);
                s2[PACKET_SIZE - DIGEST_LEN..].copy_from_slice(&sig);
                out.put_slice(&s2);
            }
        }
    }
}

/// Client side of the handshake (simple scheme), sans-IO.
#[derive(Debug)]
pub struct ClientHandshake {
    sent: bool,
    c1: [u8; PACKET_SIZE],
    done: bool,
}

impl ClientHandshake {
    pub fn new(random: [u8; PACKET_SIZE]) -> Self {
        let mut c1 = random;
        c1[..8].copy_from_slice(&[0; 8]);
        Self {
            sent: false,
            c1,
            done: false,
        }
    }

    /// C0 and C1, to send at once when the connection opens.
    pub fn start(&mut self) -> Bytes {
        self.sent = true;
        let mut out = BytesMut::with_capacity(1 + PACKET_SIZE);
        out.put_u8(RTMP_VERSION);
        out.put_slice(&self.c1);
        out.freeze()
    }

    /// Consumes S0 S1 S2 from `input`; appends C2 to `out` once S1 is in.
    pub fn feed(
        &mut self,
        input: &[u8],
        out: &mut BytesMut,
    ) -> Result<HandshakeProgress, HandshakeError> {
        if self.done {
            return Ok(HandshakeProgress::Done { consumed: 0 });
        }
        if input.len() < 1 + 2 * PACKET_SIZE {
            return Ok(HandshakeProgress::NeedMore);
        }
        if input[0] != RTMP_VERSION {
            return Err(HandshakeError::UnsupportedVersion(input[0]));
        }
        // C2 echoes S1.
        out.put_slice(&input[1..1 + PACKET_SIZE]);
        self.done = true;
        Ok(HandshakeProgress::Done {
            consumed: 1 + 2 * PACKET_SIZE,
        })
    }
}

/// Random bytes for S1 or C1.
pub fn random_packet() -> [u8; PACKET_SIZE] {
    let mut p = [0u8; PACKET_SIZE];
    rand::Rng::fill(&mut rand::thread_rng(), &mut p[..]);
    p
}

/// Builds a C1 carrying a valid client digest (what ffmpeg and Flash send);
/// used by tests and by the fuzz seeds.
pub fn complex_c1(random: [u8; PACKET_SIZE]) -> [u8; PACKET_SIZE] {
    let mut c1 = random;
    c1[..4].copy_from_slice(&[0, 0, 0, 0]);
    c1[4..8].copy_from_slice(&[9, 0, 124, 2]);
    let offset = digest_offset(&c1, 0);
    let digest = packet_digest(&c1, offset, &FP_KEY[..30]);
    c1[offset..offset + DIGEST_LEN].copy_from_slice(&digest);
    c1
}

/// Checks S1's digest the way a Flash client does (tests).
pub fn server_digest_is_valid(s1: &[u8]) -> bool {
    [0, 1].into_iter().any(|scheme| {
        let offset = digest_offset(s1, scheme);
        s1[offset..offset + DIGEST_LEN] == packet_digest(s1, offset, &FMS_KEY[..36])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(seed: u8) -> [u8; PACKET_SIZE] {
        let mut r = [0u8; PACKET_SIZE];
        for (i, b) in r.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
        }
        r
    }

    #[test]
    fn simple_handshake_echoes_c1_in_s2() {
        let mut server = ServerHandshake::new(random(1));
        let mut client = ClientHandshake::new(random(2));
        let c0c1 = client.start();
        let mut out = BytesMut::new();
        let (progress, used) = server.feed(&c0c1, &mut out).expect("server accepts C0C1");
        assert_eq!(progress, HandshakeProgress::NeedMore);
        assert_eq!(used, 1 + PACKET_SIZE);
        assert_eq!(out.len(), 1 + 2 * PACKET_SIZE);
        assert_eq!(&out[1 + PACKET_SIZE..], &c0c1[1..]);
        let mut c2 = BytesMut::new();
        let progress = client.feed(&out, &mut c2).expect("client accepts S0S1S2");
        assert_eq!(
            progress,
            HandshakeProgress::Done {
                consumed: 1 + 2 * PACKET_SIZE
            }
        );
        let mut more = c2.to_vec();
        more.extend_from_slice(b"chunk data");
        let (progress, used) = server
            .feed(&more, &mut BytesMut::new())
            .expect("server accepts C2");
        assert_eq!(
            progress,
            HandshakeProgress::Done {
                consumed: PACKET_SIZE
            }
        );
        assert_eq!(&more[used..], b"chunk data");
    }

    #[test]
    fn complex_handshake_answers_with_valid_digests() {
        let c1 = complex_c1(random(3));
        let mut input = vec![RTMP_VERSION];
        input.extend_from_slice(&c1);
        let mut server = ServerHandshake::new(random(4));
        let mut out = BytesMut::new();
        server
            .feed(&input, &mut out)
            .expect("server accepts digest C1");
        let s1 = &out[1..1 + PACKET_SIZE];
        assert!(server_digest_is_valid(s1));
        // S2's last 32 bytes are keyed by the client digest.
        let s2 = &out[1 + PACKET_SIZE..];
        let offset = digest_offset(&c1, 0);
        let key = hmac_sha256(&FMS_KEY, &[&c1[offset..offset + 32]]);
        let sig = hmac_sha256(&key, &[&s2[..PACKET_SIZE - 32]]);
        assert_eq!(&s2[PACKET_SIZE - 32..], &sig);
    }

    #[test]
    fn refuses_rtmpe() {
        let mut input = vec![6u8];
        input.extend_from_slice(&random(5));
        let mut server = ServerHandshake::new(random(6));
        assert_eq!(
            server.feed(&input, &mut BytesMut::new()),
            Err(HandshakeError::UnsupportedVersion(6))
        );
    }
}
