//! Destination URLs: the server URL a platform shows plus the stream key,
//! joined the way OBS (librtmp) joins them.
//!
//! - `rtmp://a.rtmp.youtube.com/live2` + `KEY` → host `a.rtmp.youtube.com`,
//!   port 1935, app `live2`, stream `KEY`.
//! - The whole path is the application, slashes and query included:
//!   `rtmp://host/app/sub?token=x` + `KEY` → app `app/sub?token=x`.
//! - With an empty key, the last path segment is the stream name:
//!   `rtmp://host/live/KEY` + `` → app `live`, stream `KEY`.
//! - `tcUrl` is `scheme://host:port/app`, port always written, as librtmp
//!   does.
//!
//! A URL may hold a key itself: credentials (`user:pass@`), query values
//! (`?token=…`), or the stream name in the path when the key field is
//! empty. [`masked`] is the one way such a URL is shown (API, live view,
//! history, logs) unless keys are revealed on request.

use std::fmt;

use crate::secret::StreamKey;

mod srt;
use srt::parse_srt;
pub use srt::{srt_options, SrtOptions};

/// `rtmp`, `rtmps` or `srt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Rtmp,
    Rtmps,
    /// MPEG-TS over SRT, as a caller (see [`srt_options`]).
    Srt,
}

impl Scheme {
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Rtmp => 1935,
            Scheme::Rtmps => 443,
            // SRT has no standard port: the URL must give one.
            Scheme::Srt => 0,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Scheme::Rtmp => "rtmp",
            Scheme::Rtmps => "rtmps",
            Scheme::Srt => "srt",
        }
    }
}

/// Where and what to publish, resolved from a URL and a key.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    pub scheme: Scheme,
    /// Host name or IP address (without brackets for IPv6).
    pub host: String,
    pub port: u16,
    pub app: String,
    pub stream: StreamKey,
}

impl Target {
    pub fn tc_url(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.scheme == Scheme::Srt {
            // `app` holds the SRT options (the query).
            return format!("srt://{host}:{}?{}", self.port, self.app);
        }
        format!(
            "{}://{}:{}/{}",
            self.scheme.as_str(),
            host,
            self.port,
            self.app
        )
    }

    /// The URL with the stream key masked, and any query value in the
    /// application (`?token=…`), for logs and the history.
    pub fn redacted(&self) -> String {
        if self.scheme == Scheme::Srt {
            return mask_query_values(&self.tc_url());
        }
        format!(
            "{}/{}",
            mask_query_values(&self.tc_url()),
            self.stream.masked()
        )
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Why a destination URL is not usable; the text is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("the URL must start with rtmp://, rtmps:// or srt:// (got {0:?})")]
    UnknownScheme(String),
    #[error("the URL has no host")]
    MissingHost,
    #[error("the host {0:?} is not a host name, an IPv4 address or an [IPv6] address")]
    BadHost(String),
    #[error("the port {0:?} is not a number from 1 to 65535")]
    BadPort(String),
    #[error("the URL has no application path (e.g. rtmp://host/live)")]
    MissingApp,
    #[error("the stream key is empty and the URL does not end with a stream name")]
    MissingStreamName,
    #[error("the URL contains spaces or control characters")]
    BadCharacters,
    #[error("an srt:// URL needs a port (srt://host:port?streamid=…)")]
    SrtPort,
    #[error("{0}")]
    SrtOption(String),
}

/// Parses a server URL and joins the stream key.
pub fn parse(url: &str, key: &str) -> Result<Target, UrlError> {
    let url = url.trim();
    let key = key.trim();
    if url.chars().any(|c| c.is_whitespace() || c.is_control())
        || key.chars().any(|c| c.is_control())
    {
        return Err(UrlError::BadCharacters);
    }
    let (scheme, rest) = match url.split_once("://") {
        Some((s, rest)) => match s.to_ascii_lowercase().as_str() {
            "rtmp" => (Scheme::Rtmp, rest),
            "rtmps" => (Scheme::Rtmps, rest),
            "srt" => (Scheme::Srt, rest),
            _ => return Err(UrlError::UnknownScheme(s.to_owned())),
        },
        None => return Err(UrlError::UnknownScheme(url.chars().take(16).collect())),
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    // Credentials in the authority are not part of RTMP; drop them.
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = split_host_port(authority)?;
    if host.is_empty() {
        return Err(UrlError::MissingHost);
    }
    // A bracket left in the host (`b::1]`, `[[::1]`) would make a tcUrl
    // that names another host.
    if host.contains(['[', ']']) {
        return Err(UrlError::BadHost(host.to_owned()));
    }
    if scheme == Scheme::Srt {
        return parse_srt(host, port, path, key);
    }
    let port = match port {
        None => scheme.default_port(),
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(UrlError::BadPort(p.to_owned())),
        },
    };
    let path = path.trim_start_matches('/');
    let (app, stream) = if key.is_empty() {
        // The stream name is the last segment of the path (before any
        // query, which stays with the stream name as librtmp does).
        let (before_query, query) = match path.find('?') {
            Some(i) => (&path[..i], &path[i..]),
            None => (path, ""),
        };
        let trimmed = before_query.trim_end_matches('/');
        match trimmed.rsplit_once('/') {
            Some((app, name)) if !app.is_empty() && !name.is_empty() => {
                // `live//KEY`: app `live`, as `live/` + `KEY` gives.
                let app = app.trim_end_matches('/');
                (app.to_owned(), format!("{name}{query}"))
            }
            _ => {
                return Err(if trimmed.is_empty() {
                    UrlError::MissingApp
                } else {
                    UrlError::MissingStreamName
                })
            }
        }
    } else {
        let app = match path.find('?') {
            // Keep the query with the app, drop a slash right before it.
            Some(i) => format!("{}{}", path[..i].trim_end_matches('/'), &path[i..]),
            None => path.trim_end_matches('/').to_owned(),
        };
        (app, key.to_owned())
    };
    if app.is_empty() || app.starts_with('?') {
        return Err(UrlError::MissingApp);
    }
    Ok(Target {
        scheme,
        host: host.to_owned(),
        port,
        app,
        stream: StreamKey::new(stream),
    })
}

/// A destination URL as shown: credentials, query values and, when `key`
/// is empty (the stream name is then the URL's last path segment), that
/// segment masked with [`crate::secret::mask`]. Everything else (scheme,
/// host, port, application) stays readable.
pub fn masked(url: &str, key: &str) -> String {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return crate::secret::mask(url);
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("…@{host}"),
        None => authority.to_owned(),
    };
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let path = if key.trim().is_empty() {
        mask_last_segment(path)
    } else {
        path.to_owned()
    };
    let query = query
        .map(|q| format!("?{}", mask_query(q)))
        .unwrap_or_default();
    format!("{scheme}://{host}{path}{query}")
}

/// `/live/KEY/` → `/live/…/`; a path of one segment (no stream name in
/// it) is kept.
fn mask_last_segment(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    let slashes = &path[trimmed.len()..];
    match trimmed.trim_start_matches('/').rsplit_once('/') {
        Some((app, name)) if !app.is_empty() && !name.is_empty() => {
            let cut = trimmed.len() - name.len();
            format!("{}{}{slashes}", &trimmed[..cut], crate::secret::mask(name))
        }
        _ => path.to_owned(),
    }
}

/// `a=1&b` → `a=…&…`: every value masked, names kept.
fn mask_query(query: &str) -> String {
    query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => format!("{k}={}", crate::secret::mask(v)),
            None => crate::secret::mask(kv),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The query of a URL (if any) with its values masked.
fn mask_query_values(url: &str) -> String {
    match url.split_once('?') {
        Some((base, q)) => format!("{base}?{}", mask_query(q)),
        None => url.to_owned(),
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), UrlError> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(UrlError::MissingHost)?;
        return Ok(match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return Err(UrlError::BadPort(after.to_owned())),
        });
    }
    Ok(match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_masks_a_query_token_as_well_as_the_key() {
        // Found by the url fuzz target once query tokens were masked.
        let t = parse("rtmp://host:1940/app/sub?token=averysecrettoken", "k").expect("parses");
        let redacted = t.redacted();
        assert!(
            redacted.starts_with("rtmp://host:1940/app/sub?token="),
            "{redacted}"
        );
        assert!(!redacted.contains("averysecrettoken"), "{redacted}");
        assert_eq!(format!("{t:?}"), redacted);
    }

    fn ok(url: &str, key: &str) -> Target {
        parse(url, key).expect("valid destination")
    }

    #[test]
    fn joins_platform_urls_like_obs() {
        let yt = ok("rtmp://a.rtmp.youtube.com/live2", "abcd-efgh");
        assert_eq!(
            (yt.host.as_str(), yt.port, yt.app.as_str()),
            ("a.rtmp.youtube.com", 1935, "live2")
        );
        assert_eq!(yt.stream.expose(), "abcd-efgh");
        assert_eq!(yt.tc_url(), "rtmp://a.rtmp.youtube.com:1935/live2");

        let fb = ok("rtmps://live-api-s.facebook.com:443/rtmp/", "FB-123?s_bl=1");
        assert_eq!(fb.scheme, Scheme::Rtmps);
        assert_eq!((fb.port, fb.app.as_str()), (443, "rtmp"));
        assert_eq!(fb.stream.expose(), "FB-123?s_bl=1");

        let twitch = ok("rtmp://live.twitch.tv/app", "live_1");
        assert_eq!(twitch.app, "app");
        let kick = ok(
            "rtmps://fa723fc1b171.global-contribute.live-video.net/app",
            "sk_us",
        );
        assert_eq!((kick.port, kick.app.as_str()), (443, "app"));
    }

    #[test]
    fn keeps_slashes_and_queries_in_the_app() {
        let t = ok("rtmp://host:1940/app/sub?token=x", "k");
        assert_eq!(t.app, "app/sub?token=x");
        assert_eq!(t.port, 1940);
        assert_eq!(t.tc_url(), "rtmp://host:1940/app/sub?token=x");
    }

    #[test]
    fn takes_the_stream_name_from_the_url_when_the_key_is_empty() {
        let t = ok("rtmp://127.0.0.1:1935/live/stream1", "");
        assert_eq!((t.app.as_str(), t.stream.expose()), ("live", "stream1"));
        let t = ok("rtmp://h/a/b/name?x=1", "");
        assert_eq!((t.app.as_str(), t.stream.expose()), ("a/b", "name?x=1"));
    }

    #[test]
    fn explains_what_is_wrong() {
        assert_eq!(
            parse("http://x/live", "k"),
            Err(UrlError::UnknownScheme("http".into()))
        );
        assert_eq!(parse("rtmp:///live", "k"), Err(UrlError::MissingHost));
        assert_eq!(
            parse("rtmp://h:99999/live", "k"),
            Err(UrlError::BadPort("99999".into()))
        );
        assert_eq!(parse("rtmp://h/live", ""), Err(UrlError::MissingStreamName));
        assert_eq!(parse("rtmp://h", "k"), Err(UrlError::MissingApp));
        assert_eq!(parse("rtmp://h/li ve", "k"), Err(UrlError::BadCharacters));
        assert!(matches!(
            parse("youtube.com/live2", "k"),
            Err(UrlError::UnknownScheme(_))
        ));
    }

    #[test]
    fn a_stream_name_after_a_double_slash_leaves_no_slash_in_the_app() {
        // Found by the `url` fuzz target: the app kept the slash, so the
        // tcUrl we send (`…/live/`) differed from the app we publish to
        // and did not parse back to the same destination.
        let t = ok("rtmp://h/live//stream", "");
        assert_eq!((t.app.as_str(), t.stream.expose()), ("live", "stream"));
        assert_eq!(t.tc_url(), "rtmp://h:1935/live");
        assert_eq!(ok(&t.tc_url(), "stream"), t);
        // The fuzzer's input, as it found it (URL, no key).
        let crash = "rtmp://a.rtmp/lx/lilrtmp://a.rtmpmvubyoumpmvubyoutube.cod%e//a-ijkl";
        let t = ok(crash, "");
        assert_eq!(t.app, "lx/lilrtmp://a.rtmpmvubyoumpmvubyoutube.cod%e");
        assert_eq!(ok(&t.tc_url(), t.stream.expose()), t);
    }

    #[test]
    fn refuses_brackets_left_in_the_host() {
        // Found by the `url` fuzz target: the host `b::1]` was accepted and
        // written in the tcUrl as `[b::1]]`, which names another host.
        assert_eq!(
            parse("rtmp://b::1]:1936/live", "k"),
            Err(UrlError::BadHost("b::1]".into()))
        );
        assert_eq!(
            parse("rtmp://[[::1]:1936/live", "k"),
            Err(UrlError::BadHost("[::1".into()))
        );
        assert_eq!(
            parse("rtmp://a[b/live", "k"),
            Err(UrlError::BadHost("a[b".into()))
        );
    }

    #[test]
    fn handles_ipv6_hosts() {
        let t = ok("rtmp://[::1]:1936/live", "k");
        assert_eq!((t.host.as_str(), t.port), ("::1", 1936));
        assert_eq!(t.tc_url(), "rtmp://[::1]:1936/live");
    }

    #[test]
    fn masks_keys_inside_urls() {
        let m = masked("rtmp://h:1940/app?token=supersecret_token_1", "k");
        assert_eq!(m, "rtmp://h:1940/app?token=superse…_1");
        let m = masked("rtmps://user:supersecretpass@h/live", "k");
        assert_eq!(m, "rtmps://…@h/live");
        let m = masked("rtmp://h/live/live_supersecret_stream", "");
        assert_eq!(m, "rtmp://h/live/live_su…am");
        // With a key, the path is the application: kept.
        assert_eq!(masked("rtmp://h/live/sub", "k"), "rtmp://h/live/sub");
        let m = masked("rtmp://h/a/b/name_supersecret?x=supersecret_x", "");
        assert!(!m.contains("supersecret"), "{m}");
        assert!(m.starts_with("rtmp://h/a/b/"), "{m}");
        let t = ok("rtmp://h/app?token=supersecret_token_1", "key_supersecret");
        assert!(!t.redacted().contains("supersecret"), "{}", t.redacted());
    }

    #[test]
    fn never_logs_the_key() {
        let t = ok("rtmp://h/live", "live_supersecret_key");
        assert!(!format!("{t:?}").contains("supersecret"));
        assert!(!t.redacted().contains("supersecret"));
    }
}
