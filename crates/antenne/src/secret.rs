//! Secrets as types: a stream key never prints in clear by accident.

use std::fmt;

/// A stream key (ingest or platform). `Debug` and `Display` show the masked
/// form (`live_12…9f`); the clear text is only reachable through
/// [`StreamKey::expose`], which callers use where the key must travel (the
/// RTMP publish command, an explicit `?reveal=keys`).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct StreamKey(String);

impl StreamKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key in clear. Use only where the key must be sent or shown on
    /// explicit request.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The masked form shown in logs and API answers.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }

    /// Compares with a candidate without leaking how many leading bytes
    /// match through timing.
    pub fn matches(&self, candidate: &str) -> bool {
        constant_time_eq(self.0.as_bytes(), candidate.as_bytes())
    }
}

/// Whether `a` and `b` are equal, in a time that depends on their lengths
/// only, not on where they first differ: the one comparison of a secret
/// (stream key, API token) with what a client sent. A length mismatch
/// answers at once (lengths are not secret: keys and tokens have known
/// formats).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamKey({})", self.masked())
    }
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// Masks a secret: long keys keep 7 leading and 2 trailing characters
/// (`live_12…9f`), shorter ones less, and keys of 8 characters or fewer
/// show nothing of themselves.
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    let n = chars.len();
    let (head, tail) = match n {
        0 => return String::new(),
        1..=8 => (0, 0),
        9..=15 => (2, 2),
        _ => (7, 2),
    };
    let head: String = chars[..head].iter().collect();
    let tail: String = chars[n - tail..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keys_by_length() {
        assert_eq!(mask("live_1234567890abcdef9f"), "live_12…9f");
        assert_eq!(mask("abcdefghij"), "ab…ij");
        assert_eq!(mask("short"), "…");
        assert_eq!(mask(""), "");
    }

    #[test]
    fn debug_and_display_never_show_the_key() {
        let key = StreamKey::new("live_supersecretkey123");
        assert!(!format!("{key:?}").contains("supersecret"));
        assert!(!format!("{key}").contains("supersecret"));
        assert!(key.matches("live_supersecretkey123"));
        assert!(!key.matches("live_supersecretkey124"));
    }

    #[test]
    fn constant_time_eq_compares_whole_contents() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"token_abc", b"token_abc"));
        assert!(!constant_time_eq(b"token_abc", b"token_abd"));
        assert!(!constant_time_eq(b"xoken_abc", b"token_abc"));
        assert!(!constant_time_eq(b"token_abc", b"token_ab"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
