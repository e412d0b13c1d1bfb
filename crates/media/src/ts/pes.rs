//! The PES packet header: where the elementary stream bytes start, the
//! declared length, and the 33-bit 90 kHz timestamps.
//!
//! Invariants: takes any bytes without panicking; a header that does not
//! fit in what was given is refused (antenne needs it whole in the
//! packet that starts the PES, which every muxer does).

/// What the start of a PES packet says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PesHeader {
    /// Bytes before the elementary stream data.
    pub(crate) header_len: usize,
    /// Elementary stream bytes announced (`None`: unbounded, as video often
    /// is: the PES ends where the next one starts).
    pub(crate) payload_len: Option<usize>,
    pub(crate) pts: Option<u64>,
    pub(crate) dts: Option<u64>,
}

/// Parses the header at the start of `data`.
pub(crate) fn parse(data: &[u8]) -> Option<PesHeader> {
    if data.len() < 9 || data[..3] != [0, 0, 1] {
        return None;
    }
    let stream_id = data[3];
    let packet_len = usize::from(u16::from_be_bytes([data[4], data[5]]));
    // Streams without the optional header (padding, private 2, ECM…)
    // carry nothing antenne reads.
    if matches!(
        stream_id,
        0xbc | 0xbe | 0xbf | 0xf0 | 0xf1 | 0xf2 | 0xf8 | 0xff
    ) {
        return None;
    }
    if data[6] & 0xc0 != 0x80 {
        return None;
    }
    let flags = data[7] >> 6;
    let header_len = 9 + usize::from(data[8]);
    let optional = data.get(9..header_len)?;
    let (pts, dts) = match flags {
        2 => (Some(timestamp(optional.get(..5)?)?), None),
        3 => (
            Some(timestamp(optional.get(..5)?)?),
            Some(timestamp(optional.get(5..10)?)?),
        ),
        _ => (None, None),
    };
    let payload_len = match packet_len {
        0 => None,
        // The length counts from after itself (6 bytes in).
        n => Some(n.checked_sub(header_len - 6)?),
    };
    Some(PesHeader {
        header_len,
        payload_len,
        pts,
        dts: dts.or(pts),
    })
}

/// A 33-bit timestamp spread over 5 bytes with marker bits.
fn timestamp(b: &[u8]) -> Option<u64> {
    let [a, b1, b2, b3, b4] = <[u8; 5]>::try_from(b).ok()?;
    Some(
        (u64::from(a >> 1) & 0x07) << 30
            | u64::from(b1) << 22
            | (u64::from(b2) >> 1) << 15
            | u64::from(b3) << 7
            | u64::from(b4) >> 1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a PTS or DTS the way muxers do (`prefix` 0x2 / 0x3 / 0x1).
    pub(crate) fn encode(prefix: u8, t: u64) -> [u8; 5] {
        [
            prefix << 4 | ((t >> 29) as u8 & 0x0e) | 1,
            (t >> 22) as u8,
            ((t >> 14) as u8 & 0xfe) | 1,
            (t >> 7) as u8,
            ((t << 1) as u8) | 1,
        ]
    }

    #[test]
    fn reads_pts_and_dts() {
        let mut h = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0xc0, 10];
        h.extend_from_slice(&encode(3, 0x1_2345_6789));
        h.extend_from_slice(&encode(1, 126_000));
        let p = parse(&h).expect("a header");
        assert_eq!(p.pts, Some(0x1_2345_6789));
        assert_eq!(p.dts, Some(126_000));
        assert_eq!(p.header_len, 19);
        assert_eq!(p.payload_len, None);
    }

    #[test]
    fn a_length_shorter_than_the_header_is_refused() {
        let mut h = vec![0, 0, 1, 0xc0, 0, 3, 0x80, 0x80, 5];
        h.extend_from_slice(&encode(2, 90_000));
        assert_eq!(parse(&h), None);
    }
}
