//! Destination URL parsing (antenne's output/url.rs): a server URL and a
//! stream key as a user types them.
//!
//! Input: `url \n key` (UTF-8; the first newline separates them).
//!
//! Checks: no panic; an accepted target has a host, a port, an app (for
//! rtmp(s)); its
//! tcUrl parses back to the same target; its redacted form and its Debug
//! form are the tcUrl (query values masked) and, for rtmp(s), the masked
//! key (an srt:// target's key is its masked `streamid`).
#![no_main]

use antenne::output::url::{parse, Scheme};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (url, key) = text.split_once('\n').unwrap_or((text, ""));
    let Ok(target) = parse(url, key) else {
        return;
    };
    assert!(!target.host.is_empty());
    assert_ne!(target.port, 0);
    // An srt:// target's `app` is its query, empty without options.
    assert!(
        (target.scheme == Scheme::Srt || !target.app.is_empty()) && !target.app.starts_with('?')
    );
    let tc_url = target.tc_url();
    let redacted = target.redacted();
    let debug = format!("{target:?}");
    let stream = target.stream.expose();
    let masked = target.stream.masked();
    // The tcUrl up to its query, its query values masked, then (RTMP) the
    // key masked; an srt:// target carries its key as the `streamid`
    // query value, masked like the others.
    let base = tc_url.split_once('?').map_or(tc_url.as_str(), |(b, _)| b);
    assert!(
        redacted.starts_with(base),
        "{redacted:?} starts with {base:?}"
    );
    let shown_url = if target.scheme == Scheme::Srt {
        redacted.as_str()
    } else {
        assert!(redacted.ends_with(&format!("/{masked}")), "{redacted:?}");
        &redacted[..redacted.len() - masked.len() - 1]
    };
    // Each query value, in its place, is masked (the same text may stand
    // elsewhere in the URL: only the value's own place is checked).
    if let (Some((_, query)), Some((_, shown))) =
        (tc_url.split_once('?'), shown_url.split_once('?'))
    {
        for (orig, shown) in query.split('&').zip(shown.split('&')) {
            let value = orig.split_once('=').map_or(orig, |(_, v)| v);
            let shown = shown.split_once('=').map_or(shown, |(_, v)| v);
            if value.chars().count() > 9 {
                assert!(!shown.contains(value), "{redacted:?} shows {value:?}");
            }
        }
    }
    assert_eq!(debug, redacted);
    if stream.chars().count() > 9 {
        assert!(!masked.contains(stream), "the masked key shows the key");
    }
    // What we send as tcUrl, joined with the same stream name, is the same
    // destination.
    match parse(&tc_url, stream) {
        Ok(again) => assert!(
            again == target,
            "{url:?} + key parses to {tc_url:?}, which parses to {:?}",
            again.tc_url()
        ),
        Err(e) => panic!("{url:?} parses to {tc_url:?}, which is refused: {e}"),
    }
});
