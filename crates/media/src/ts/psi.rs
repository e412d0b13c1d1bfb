//! Program-specific information: the PAT (which PID carries the program
//! map) and the PMT (which PIDs carry which elementary streams), from
//! sections reassembled across packets.
//!
//! Invariants: a section buffer never grows past [`MAX_SECTION`] bytes;
//! every length is checked against what remains; a section whose CRC-32
//! does not match is ignored.

/// A PAT or PMT section is at most 1024 bytes (ISO/IEC 13818-1 2.4.4).
pub(crate) const MAX_SECTION: usize = 1024;

/// Reassembles one PSI PID's sections.
#[derive(Debug, Default)]
pub(crate) struct SectionBuffer {
    buf: Vec<u8>,
    /// Collecting a section that started in an earlier packet.
    open: bool,
}

impl SectionBuffer {
    /// Takes one packet's payload; returns a complete section when one
    /// ended in it (only the first section of a packet is read).
    pub(crate) fn push(&mut self, unit_start: bool, payload: &[u8]) -> Option<Vec<u8>> {
        if unit_start {
            let pointer = usize::from(*payload.first()?);
            let start = payload.get(1 + pointer..)?;
            self.buf.clear();
            self.open = true;
            self.append(start);
        } else if self.open {
            self.append(payload);
        } else {
            return None;
        }
        if self.buf.len() < 3 {
            return None;
        }
        let total = 3 + usize::from(u16::from_be_bytes([self.buf[1], self.buf[2]]) & 0x0fff);
        if total > MAX_SECTION + 3 {
            self.open = false;
            self.buf.clear();
            return None;
        }
        if self.buf.len() < total {
            return None;
        }
        self.open = false;
        let section = self.buf[..total].to_vec();
        self.buf.clear();
        Some(section)
    }

    fn append(&mut self, data: &[u8]) {
        let room = (MAX_SECTION + 3).saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&data[..data.len().min(room)]);
    }
}

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, no reflection, no final xor).
pub(crate) fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The body of a long-form section with `table_id` (after the 8 header
/// bytes, before the CRC), if the CRC matches.
fn body(section: &[u8], table_id: u8) -> Option<&[u8]> {
    if section.len() < 12 || section[0] != table_id {
        return None;
    }
    // The CRC over the whole section, itself included, is 0.
    if crc32_mpeg2(section) != 0 {
        return None;
    }
    section.get(8..section.len() - 4)
}

/// The PMT PID of the first program a PAT lists.
pub(crate) fn parse_pat(section: &[u8]) -> Option<u16> {
    body(section, 0x00)?
        .chunks_exact(4)
        .find(|e| u16::from_be_bytes([e[0], e[1]]) != 0)
        .map(|e| u16::from_be_bytes([e[2], e[3]]) & 0x1fff)
}

/// One elementary stream a PMT lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EsEntry {
    pub(crate) stream_type: u8,
    pub(crate) pid: u16,
}

/// The version and streams of a PMT.
pub(crate) fn parse_pmt(section: &[u8]) -> Option<(u8, Vec<EsEntry>)> {
    let version = (*section.get(5)? >> 1) & 0x1f;
    let b = body(section, 0x02)?;
    if b.len() < 4 {
        return None;
    }
    let info_len = usize::from(u16::from_be_bytes([b[2], b[3]]) & 0x0fff);
    let mut rest = b.get(4 + info_len..)?;
    let mut streams = Vec::new();
    while rest.len() >= 5 {
        let stream_type = rest[0];
        let pid = u16::from_be_bytes([rest[1], rest[2]]) & 0x1fff;
        let es_info = usize::from(u16::from_be_bytes([rest[3], rest[4]]) & 0x0fff);
        streams.push(EsEntry { stream_type, pid });
        rest = rest.get(5 + es_info..)?;
    }
    Some((version, streams))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PAT for program 1 on PMT PID 0x1000, as ffmpeg writes it.
    pub(crate) const PAT: [u8; 16] = [
        0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00, 0x2a, 0xb1, 0x04,
        0xb2,
    ];

    #[test]
    fn reads_the_pmt_pid_from_ffmpegs_pat() {
        assert_eq!(parse_pat(&PAT), Some(0x1000));
    }

    #[test]
    fn a_corrupted_pat_is_ignored() {
        let mut pat = PAT;
        pat[10] ^= 1;
        assert_eq!(parse_pat(&pat), None);
    }

    #[test]
    fn a_section_split_over_two_packets_is_reassembled() {
        let mut sb = SectionBuffer::default();
        let mut first = vec![0u8];
        first.extend_from_slice(&PAT[..7]);
        assert_eq!(sb.push(true, &first), None);
        assert_eq!(sb.push(false, &PAT[7..]), Some(PAT.to_vec()));
    }
}
