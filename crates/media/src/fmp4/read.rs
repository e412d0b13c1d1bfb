//! Reading back what [`super::Muxer`] wrote, as far as listing and
//! repairing a recording needs: top-level box headers, the tracks'
//! timescales (`moov`), and each fragment's decode-time span (`moof`).
//!
//! Invariants: any bytes are accepted without panicking; a box whose size
//! runs past its parent ends the walk; nothing recurses deeper than the
//! fixed paths it looks for.

/// A box header at the start of `data`: (type, total size, header size).
/// `None` if fewer than 8 (or 16, for 64-bit sizes) bytes are given or
/// the size is impossible. A size of 0 ("to the end") is refused: the
/// muxer never writes it.
pub fn box_header(data: &[u8]) -> Option<([u8; 4], u64, usize)> {
    let size = u32::from_be_bytes(data.get(..4)?.try_into().ok()?);
    let kind: [u8; 4] = data.get(4..8)?.try_into().ok()?;
    let (size, header) = match size {
        1 => (u64::from_be_bytes(data.get(8..16)?.try_into().ok()?), 16),
        n => (u64::from(n), 8),
    };
    (size >= header as u64).then_some((kind, size, header))
}

/// The children of a box body: (type, body).
fn children(mut data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    std::iter::from_fn(move || {
        let (kind, size, header) = box_header(data)?;
        let size = usize::try_from(size).ok().filter(|s| *s <= data.len())?;
        let body = &data[header..size];
        data = &data[size..];
        Some((kind, body))
    })
}

fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    children(data).find(|(k, _)| k == kind).map(|(_, b)| b)
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(data.get(at..at + 8)?.try_into().ok()?))
}

/// Track id → timescale, from a `moov` body.
pub fn timescales(moov: &[u8]) -> Vec<(u32, u32)> {
    children(moov)
        .filter(|(k, _)| k == b"trak")
        .filter_map(|(_, trak)| {
            let tkhd = child(trak, b"tkhd")?;
            let id = u32_at(tkhd, if tkhd.first()? == &1 { 20 } else { 12 })?;
            let mdhd = child(child(trak, b"mdia")?, b"mdhd")?;
            let scale = u32_at(mdhd, if mdhd.first()? == &1 { 20 } else { 12 })?;
            (scale > 0).then_some((id, scale))
        })
        .collect()
}

/// Each track's (id, base decode time, summed sample durations) in a
/// `moof` body. Tracks whose samples use default durations count 0.
pub fn fragment_spans(moof: &[u8]) -> Vec<(u32, u64, u64)> {
    children(moof)
        .filter(|(k, _)| k == b"traf")
        .filter_map(|(_, traf)| {
            let tfhd = child(traf, b"tfhd")?;
            let id = u32_at(tfhd, 4)?;
            let tfdt = child(traf, b"tfdt")?;
            let start = if tfdt.first()? == &1 {
                u64_at(tfdt, 4)?
            } else {
                u64::from(u32_at(tfdt, 4)?)
            };
            let mut total = 0u64;
            for (_, trun) in children(traf).filter(|(k, _)| k == b"trun") {
                let flags = u32_at(trun, 0)? & 0x00ff_ffff;
                if flags & 0x100 == 0 {
                    continue;
                }
                let count = u32_at(trun, 4)? as usize;
                let mut at = 8;
                if flags & 0x1 != 0 {
                    at += 4;
                }
                if flags & 0x4 != 0 {
                    at += 4;
                }
                let per = [0x100, 0x200, 0x400, 0x800]
                    .iter()
                    .filter(|f| flags & **f != 0)
                    .count()
                    * 4;
                if trun.len() < at + count.saturating_mul(per) {
                    return None;
                }
                for i in 0..count {
                    total += u64::from(u32_at(trun, at + i * per)?);
                }
            }
            Some((id, start, total))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fmp4::tests::muxer;
    use bytes::Bytes;

    #[test]
    fn reads_back_timescales_and_fragment_spans() {
        let mut m = muxer();
        let init = m.init_segment();
        let (_, size, header) = box_header(&init).expect("ftyp");
        let moov = &init[size as usize + header..];
        assert_eq!(timescales(moov), vec![(1, 90_000), (2, 44_100)]);
        let mut frag = None;
        for i in 0..=10i64 {
            frag = frag.or(m.push_video(i * 100, 0, i % 10 == 0, Bytes::from_static(&[0; 4])));
        }
        let frag = frag.expect("a fragment at the second keyframe");
        let spans = fragment_spans(&frag[8..box_header(&frag).expect("moof").1 as usize]);
        assert_eq!(spans, vec![(1, 0, 90_000)]);
    }

    #[test]
    fn takes_any_bytes() {
        for data in [&b""[..], &[0, 0, 0, 1, b'm', b'o', b'o', b'f'], &[0xff; 40]] {
            let _ = timescales(data);
            let _ = fragment_spans(data);
            let _ = box_header(data);
        }
    }
}
