//! `srt://host:port?streamid=…&passphrase=…&latency=…` destinations: the
//! options are checked here (known names, libsrt's passphrase length, a
//! latency in ms) and kept, as the URL's query, in the target's `app`;
//! [`super::Target::redacted`] and [`super::masked`] mask their values.

use super::{Scheme, Target, UrlError};
use crate::secret::StreamKey;

/// What an srt:// URL sets, besides where to connect.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SrtOptions {
    pub stream_id: Option<String>,
    pub passphrase: Option<String>,
    pub latency_ms: Option<u32>,
}

/// The options of an SRT target (kept in its `app` as a query string).
pub fn srt_options(target: &Target) -> SrtOptions {
    let mut o = SrtOptions::default();
    for kv in target.app.split('&') {
        match kv.split_once('=') {
            Some(("streamid", v)) => o.stream_id = Some(percent_decode(v)),
            Some(("passphrase", v)) => o.passphrase = Some(percent_decode(v)),
            Some(("latency", v)) => o.latency_ms = v.parse().ok(),
            _ => {}
        }
    }
    o
}

/// `%XX` escapes decoded (ffmpeg and OBS users write `%23%21%3A%3A` for
/// `#!::`); an invalid escape stays as written.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `s` as a query value that [`percent_decode`] gives back: `%`, `&` and
/// white space (which a URL may not hold) escaped.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '%' || c == '&' || c.is_whitespace() {
            let mut utf8 = [0u8; 4];
            for b in c.encode_utf8(&mut utf8).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// libsrt takes a `streamid` of at most 512 bytes.
fn stream_id_fits(id: &str) -> Result<(), UrlError> {
    if id.len() > 512 {
        return Err(UrlError::SrtOption(
            "the SRT streamid is over 512 bytes".into(),
        ));
    }
    Ok(())
}

/// `srt://host:port?streamid=…&passphrase=…&latency=…` (`mode=caller`
/// allowed); with a stream key and no `streamid`, the key is the stream id.
pub(super) fn parse_srt(
    host: &str,
    port: Option<&str>,
    path: &str,
    key: &str,
) -> Result<Target, UrlError> {
    let port = match port {
        None => return Err(UrlError::SrtPort),
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(UrlError::BadPort(p.to_owned())),
        },
    };
    let (before, query) = path.split_once('?').unwrap_or((path, ""));
    if !before.trim_matches('/').is_empty() {
        return Err(UrlError::SrtOption(
            "an srt:// URL has no path: put the stream id in ?streamid=…".into(),
        ));
    }
    let mut kept = Vec::new();
    let mut has_stream_id = false;
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "streamid" => {
                has_stream_id = true;
                stream_id_fits(&percent_decode(v))?;
            }
            "passphrase" => {
                let n = percent_decode(v).chars().count();
                if !(10..=79).contains(&n) {
                    return Err(UrlError::SrtOption(
                        "an SRT passphrase has 10 to 79 characters".into(),
                    ));
                }
            }
            "latency" => {
                if !v.parse::<u32>().is_ok_and(|ms| ms <= 60_000) {
                    return Err(UrlError::SrtOption(
                        "the SRT latency is in milliseconds, 0 to 60000".into(),
                    ));
                }
            }
            "mode" if v == "caller" => continue,
            _ => {
                return Err(UrlError::SrtOption(format!(
                    "unknown SRT option {:?}: use streamid, passphrase, latency",
                    k.chars().take(32).collect::<String>()
                )))
            }
        }
        kept.push(kv.to_owned());
    }
    if !has_stream_id && !key.is_empty() {
        stream_id_fits(key)?;
        // Escaped as a query value: a key with `&` or `%` stays whole.
        kept.insert(0, format!("streamid={}", query_escape(key)));
    }
    let app = kept.join("&");
    let target = Target {
        scheme: Scheme::Srt,
        host: host.to_owned(),
        port,
        stream: StreamKey::new(String::new()),
        app,
    };
    let stream = srt_options(&target).stream_id.unwrap_or_default();
    Ok(Target {
        stream: StreamKey::new(stream),
        ..target
    })
}

#[cfg(test)]
mod tests {
    use super::super::{masked, parse};
    use super::*;

    #[test]
    fn srt_urls_carry_their_options_and_show_them_masked() {
        let t = parse(
            "srt://relay.example:9000?streamid=%23%21%3A%3Ar=live/k1,m=publish&passphrase=0123456789ab&latency=200",
            "",
        )
        .expect("valid");
        assert_eq!(
            (t.scheme, t.host.as_str(), t.port),
            (Scheme::Srt, "relay.example", 9000)
        );
        let o = srt_options(&t);
        assert_eq!(o.stream_id.as_deref(), Some("#!::r=live/k1,m=publish"));
        assert_eq!(o.passphrase.as_deref(), Some("0123456789ab"));
        assert_eq!(o.latency_ms, Some(200));
        let shown = t.redacted();
        assert!(
            shown.starts_with("srt://relay.example:9000?streamid="),
            "{shown}"
        );
        assert!(
            !shown.contains("0123456789ab") && !shown.contains("k1"),
            "{shown}"
        );
        let m = masked("srt://h:1?streamid=secretkey&passphrase=0123456789ab", "");
        assert!(
            !m.contains("secretkey") && !m.contains("0123456789ab"),
            "{m}"
        );
        // The key field is the stream id when the URL has none.
        let k = parse("srt://h:9000", "mykey").expect("valid");
        assert_eq!(srt_options(&k).stream_id.as_deref(), Some("mykey"));
        assert_eq!(k.stream.expose(), "mykey");
        // A key with the query's own characters stays whole, and the URL
        // sent on parses back to the same destination.
        let k = parse("srt://h:9000", "my&key%20?x y").expect("valid");
        assert_eq!(srt_options(&k).stream_id.as_deref(), Some("my&key%20?x y"));
        assert_eq!(k.stream.expose(), "my&key%20?x y");
        assert_eq!(parse(&k.tc_url(), k.stream.expose()), Ok(k));
    }

    #[test]
    fn refuses_srt_urls_it_cannot_honour() {
        assert_eq!(parse("srt://h?streamid=a", ""), Err(UrlError::SrtPort));
        for bad in [
            "srt://h:9000/live?streamid=a",
            "srt://h:9000?passphrase=short",
            "srt://h:9000?latency=abc",
            "srt://h:9000?mode=listener",
            "srt://h:9000?pbkeylen=16",
        ] {
            assert!(
                matches!(parse(bad, ""), Err(UrlError::SrtOption(_))),
                "{bad}: {:?}",
                parse(bad, "")
            );
        }
    }
}
