//! HEVC configuration tests on what libx265 writes (`ffmpeg -f lavfi -i
//! testsrc2=s=128x72:r=10 -t 1 -c:v libx265 -x265-params log-level=none -f
//! hevc out.hevc`: its VPS, SPS and PPS, and the `hvcC` ffmpeg's MP4 muxer
//! writes for them), and on malformed input.

use super::*;

/// libx265's parameter sets for 128x72 (Main profile, level 3).
pub(crate) const VPS: [u8; 24] = [
    0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03,
    0x00, 0x00, 0x03, 0x00, 0x1e, 0x95, 0x98, 0x09,
];
pub(crate) const SPS: [u8; 41] = [
    0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03,
    0x00, 0x1e, 0xa0, 0x10, 0x20, 0x49, 0x65, 0x95, 0x9a, 0x49, 0x32, 0xbc, 0x05, 0xa0, 0x20, 0x00,
    0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x03, 0x01, 0x41,
];
pub(crate) const PPS: [u8; 7] = [0x44, 0x01, 0xc1, 0x72, 0xb4, 0x22, 0x40];
/// The `hvcC` ffmpeg writes for them (`-c copy out.mp4`).
pub(crate) const FFMPEG_RECORD: [u8; 110] = [
    0x01, 0x01, 0x60, 0x00, 0x00, 0x00, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1e, 0xf0, 0x00, 0xfc,
    0xfd, 0xf8, 0xf8, 0x00, 0x00, 0x0f, 0x03, 0xa0, 0x00, 0x01, 0x00, 0x18, 0x40, 0x01, 0x0c, 0x01,
    0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00,
    0x1e, 0x95, 0x98, 0x09, 0xa1, 0x00, 0x01, 0x00, 0x29, 0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00,
    0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x1e, 0xa0, 0x10, 0x20, 0x49, 0x65,
    0x95, 0x9a, 0x49, 0x32, 0xbc, 0x05, 0xa0, 0x20, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x03,
    0x01, 0x41, 0xa2, 0x00, 0x01, 0x00, 0x07, 0x44, 0x01, 0xc1, 0x72, 0xb4, 0x22, 0x40,
];

#[test]
fn reads_profile_level_and_size_from_a_libx265_sps() {
    let s = Sps::parse(&SPS).expect("libx265's SPS");
    assert_eq!(s.profile_idc(), 1); // Main
    assert_eq!(s.profile, 0x01);
    assert_eq!(s.compatibility, 0x6000_0000);
    assert_eq!(s.constraints, [0x90, 0, 0, 0, 0, 0]);
    assert_eq!(s.level, 30);
    assert_eq!((s.width, s.height), (128, 72));
    assert_eq!(s.chroma_format_idc, 1);
    assert_eq!((s.bit_depth_luma_minus8, s.bit_depth_chroma_minus8), (0, 0));
    assert_eq!((s.temporal_layers, s.temporal_id_nested), (1, true));
}

#[test]
fn builds_the_record_ffmpeg_builds() {
    let record = decoder_configuration_record(&VPS, &SPS, &PPS).expect("a record");
    assert_eq!(record[..], FFMPEG_RECORD[..]);
}

#[test]
fn reads_a_record_back() {
    let c = HevcConfig::parse(&FFMPEG_RECORD).expect("ffmpeg's record");
    assert_eq!(c.nal_length, 4);
    assert_eq!(c.parameter_sets, vec![&VPS[..], &SPS[..], &PPS[..]]);
    assert_eq!((c.sps.width, c.sps.height), (128, 72));
}

#[test]
fn refuses_parameter_sets_of_the_wrong_kind() {
    assert_eq!(
        decoder_configuration_record(&SPS, &SPS, &PPS),
        Err(HevcError::BadVps)
    );
    assert_eq!(
        decoder_configuration_record(&VPS, &PPS, &PPS),
        Err(HevcError::BadSps)
    );
    assert_eq!(
        decoder_configuration_record(&VPS, &SPS, &VPS),
        Err(HevcError::BadPps)
    );
    assert_eq!(
        decoder_configuration_record(&[], &SPS, &PPS),
        Err(HevcError::BadVps)
    );
}

#[test]
fn malformed_parameter_sets_and_records_never_panic() {
    // Every truncation, and every byte flipped, of each input.
    for n in 0..SPS.len() {
        let _ = Sps::parse(&SPS[..n]);
        let _ = decoder_configuration_record(&VPS[..n.min(VPS.len())], &SPS[..n], &PPS);
    }
    assert!(Sps::parse(&SPS[..12]).is_err());
    for i in 0..SPS.len() {
        for flip in [0x01, 0x80, 0xff] {
            let mut bad = SPS;
            bad[i] ^= flip;
            let _ = Sps::parse(&bad);
            let _ = decoder_configuration_record(&VPS, &bad, &PPS);
        }
    }
    for n in 0..FFMPEG_RECORD.len() {
        assert!(HevcConfig::parse(&FFMPEG_RECORD[..n]).is_err());
    }
    for i in 0..FFMPEG_RECORD.len() {
        let mut bad = FFMPEG_RECORD;
        bad[i] ^= 0xff;
        let _ = HevcConfig::parse(&bad);
    }
    // An SPS of all ones: Exp-Golomb codes that never end.
    let mut ones = vec![0x42, 0x01];
    ones.extend([0xff; 64]);
    assert!(Sps::parse(&ones).is_err());
    let mut zeros = vec![0x42, 0x01];
    zeros.extend([0x00; 64]);
    assert!(Sps::parse(&zeros).is_err());
}

/// A record without a PPS array cannot be decoded: refused.
#[test]
fn a_record_missing_an_array_is_refused() {
    let mut cut = FFMPEG_RECORD[..FFMPEG_RECORD.len() - 12].to_vec();
    cut[22] = 2;
    assert_eq!(HevcConfig::parse(&cut), Err(HevcError::BadRecord));
}

proptest::proptest! {
    /// Any bytes behind an SPS header, any record: an answer, never a panic.
    #[test]
    fn arbitrary_parameter_sets_and_records_never_panic(
        body in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
    ) {
        let mut sps = vec![0x42, 0x01];
        sps.extend_from_slice(&body);
        let _ = Sps::parse(&sps);
        let _ = decoder_configuration_record(&VPS, &sps, &PPS);
        let _ = HevcConfig::parse(&body);
        let mut record = FFMPEG_RECORD[..23].to_vec();
        record.extend_from_slice(&body);
        let _ = HevcConfig::parse(&record);
    }
}
