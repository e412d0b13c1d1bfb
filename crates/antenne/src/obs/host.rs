//! Host names: the one check of a host given by a user ([`valid_host`]:
//! OBS's address, antenne's public host), and where OBS reaches antenne
//! (the public host, else the listen address, and the RTMP server URL
//! built from it).
//!
//! A valid host is a DNS host name (RFC 1123 labels), an IPv4 address, or
//! an IPv6 address, bare or in brackets: never a scheme, port, path, user
//! or space, so it can be put in a URL as it is.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use crate::ingest::APP;

/// The host OBS should use to reach antenne's RTMP ingest: the
/// `public_host` setting when set, else the address of `--rtmp-listen`
/// unless it listens on every address (`0.0.0.0`, `::`), else `127.0.0.1`
/// (OBS on the same machine).
pub fn public_host(setting: Option<&str>, rtmp_listen: SocketAddr) -> String {
    if let Some(h) = setting.map(str::trim).filter(|h| !h.is_empty()) {
        return h.to_owned();
    }
    if rtmp_listen.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        rtmp_listen.ip().to_string()
    }
}

/// `rtmp://HOST:PORT/live`, the server URL OBS publishes to (IPv6
/// addresses in brackets).
pub fn rtmp_server_url(host: &str, port: u16) -> String {
    let host = match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => host.to_owned(),
    };
    format!("rtmp://{host}:{port}/{APP}")
}

/// Whether `h` names a host: a DNS host name (RFC 1123: dot-separated
/// labels of 1 to 63 ASCII letters, digits and hyphens, none starting or
/// ending with a hyphen, 253 characters at most, one trailing dot allowed,
/// and a last label that is not all digits, so that `999.1.1.1` is not
/// taken for a name), an IPv4 address, or an IPv6 address bare (`::1`) or
/// in brackets (`[::1]`). Internationalised names go in their ASCII form
/// (`xn--…`). Empty is not a host: callers that take empty as "unset" check
/// that first.
pub fn valid_host(h: &str) -> bool {
    if let Some(inner) = h.strip_prefix('[') {
        return inner
            .strip_suffix(']')
            .is_some_and(|a| a.parse::<Ipv6Addr>().is_ok());
    }
    if h.parse::<IpAddr>().is_ok() {
        return true;
    }
    let name = h.strip_suffix('.').unwrap_or(h);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let all_digits = |l: &str| l.bytes().all(|b| b.is_ascii_digit());
    name.split('.').all(valid_label) && !name.rsplit('.').next().is_some_and(all_digits)
}

/// One RFC 1123 label: 1 to 63 letters, digits or hyphens, no hyphen at
/// either end.
fn valid_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_host_prefers_the_setting_then_the_listen_address() {
        let any: SocketAddr = "0.0.0.0:1935".parse().unwrap();
        let lan: SocketAddr = "192.168.1.5:1935".parse().unwrap();
        let any6: SocketAddr = "[::]:1935".parse().unwrap();
        assert_eq!(public_host(Some("obs.example.org"), any), "obs.example.org");
        assert_eq!(public_host(Some("  "), lan), "192.168.1.5");
        assert_eq!(public_host(None, lan), "192.168.1.5");
        assert_eq!(public_host(None, any), "127.0.0.1");
        assert_eq!(public_host(None, any6), "127.0.0.1");
        assert_eq!(
            rtmp_server_url("192.168.1.5", 1935),
            "rtmp://192.168.1.5:1935/live"
        );
        assert_eq!(rtmp_server_url("::1", 1936), "rtmp://[::1]:1936/live");
    }

    #[test]
    fn accepts_host_names_and_addresses() {
        let label63 = "a".repeat(63);
        let name253 = [label63.as_str(); 4].join(".")[..253].to_owned();
        for h in [
            "127.0.0.1",
            "192.168.1.5",
            "localhost",
            "obs-pc.local",
            "obs.example.org",
            "obs.example.org.",
            "1password.com",
            "xn--bcher-kva.example",
            "::1",
            "fe80::1",
            "[::1]",
            "[2001:db8::5]",
            &label63,
            &name253,
        ] {
            assert!(valid_host(h), "{h:?} is a host");
        }
    }

    #[test]
    fn refuses_what_is_not_a_host() {
        let label64 = "a".repeat(64);
        let name254 = format!(
            "{}.{}.{}.{}",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(62)
        );
        for h in [
            "",
            ".",
            " ",
            "a b",
            "ws://x",
            "rtmp://obs.example.org/live",
            "x:4455",
            "127.0.0.1:1935",
            "[::1]:4455",
            "host/path",
            "user@host",
            "obs_pc",
            "-obs.example",
            "obs-.example",
            "a..b",
            ".example.org",
            "example.org..",
            "999.1.1.1",
            "1.2.3",
            "01.2.3.4",
            "[::1",
            "::1]",
            "[127.0.0.1]",
            "[obs.example]",
            "bücher.example",
            "obs\n.example",
            &label64,
            &name254,
        ] {
            assert!(!valid_host(h), "{h:?} is not a host");
        }
    }
}
