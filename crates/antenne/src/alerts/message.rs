//! What an alert says and how each webhook format carries it: generic JSON
//! (signed with HMAC-SHA256 of the body, `X-Antenne-Signature:
//! sha256=HEX`), Discord (`{"content": …}`) or Slack (`{"text": …}`).
//!
//! Invariant: an alert holds only public things (a destination's id, name
//! and platform; an ingest's id; an error message with the stream key and
//! URL masked by the caller). It is built before any format sees it, so no
//! format can leak what the alert does not hold.

use std::time::SystemTime;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

/// What happened. Webhooks subscribe by these names; standby and encoder
/// events will join them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    /// A destination's connection failed (once per failure episode).
    DestinationFailed,
    /// The platform refused the stream (usually the key).
    DestinationRejected,
    /// A destination that failed is live again (and held).
    DestinationRecovered,
    IngestLive,
    IngestOffline,
    /// Sent by "send a test"; every webhook gets it.
    Test,
}

impl AlertEvent {
    /// The events a webhook may subscribe to.
    pub const SUBSCRIBABLE: [AlertEvent; 5] = [
        AlertEvent::DestinationFailed,
        AlertEvent::DestinationRejected,
        AlertEvent::DestinationRecovered,
        AlertEvent::IngestLive,
        AlertEvent::IngestOffline,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::DestinationFailed => "destination_failed",
            AlertEvent::DestinationRejected => "destination_rejected",
            AlertEvent::DestinationRecovered => "destination_recovered",
            AlertEvent::IngestLive => "ingest_live",
            AlertEvent::IngestOffline => "ingest_offline",
            AlertEvent::Test => "test",
        }
    }

    pub fn from_name(name: &str) -> Option<AlertEvent> {
        Self::SUBSCRIBABLE.into_iter().find(|e| e.as_str() == name)
    }
}

/// A webhook's body format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Generic,
    Discord,
    Slack,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Generic => "generic",
            Format::Discord => "discord",
            Format::Slack => "slack",
        }
    }

    pub fn from_name(name: &str) -> Option<Format> {
        [Format::Generic, Format::Discord, Format::Slack]
            .into_iter()
            .find(|f| f.as_str() == name)
    }
}

/// The destination an alert is about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertDestination {
    pub id: String,
    pub name: String,
    pub platform: String,
}

/// The ingest an alert is about (its id, never its key).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertIngest {
    pub id: String,
}

/// One alert, as the generic format sends it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub event: AlertEvent,
    /// RFC 3339, UTC.
    pub at: String,
    pub destination: Option<AlertDestination>,
    pub ingest: Option<AlertIngest>,
    /// A sentence for people (error texts masked).
    pub message: String,
}

impl Alert {
    pub fn new(event: AlertEvent, message: impl Into<String>) -> Alert {
        Alert {
            event,
            at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            destination: None,
            ingest: None,
            message: message.into(),
        }
    }

    /// One line for chat formats.
    pub fn line(&self) -> String {
        let icon = match self.event {
            AlertEvent::DestinationFailed | AlertEvent::DestinationRejected => "🔴",
            AlertEvent::DestinationRecovered | AlertEvent::IngestLive => "🟢",
            AlertEvent::IngestOffline => "⚪",
            AlertEvent::Test => "🔔",
        };
        format!("{icon} antenne: {}", self.message)
    }

    /// The request body in `format`.
    pub fn body(&self, format: Format) -> Vec<u8> {
        let value = match format {
            Format::Generic => serde_json::to_value(self).unwrap_or_default(),
            Format::Discord => serde_json::json!({ "content": self.line() }),
            Format::Slack => serde_json::json!({ "text": self.line() }),
        };
        serde_json::to_vec(&value).unwrap_or_default()
    }
}

/// `sha256=HEX`: HMAC-SHA256 of `body` keyed with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_the_rfc_4231_test_vector() {
        // RFC 4231 test case 2: key "Jefe".
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn each_format_has_its_shape() {
        let mut a = Alert::new(AlertEvent::DestinationFailed, "YouTube failed: refused");
        a.destination = Some(AlertDestination {
            id: "d1".into(),
            name: "YouTube".into(),
            platform: "youtube".into(),
        });
        let generic: serde_json::Value =
            serde_json::from_slice(&a.body(Format::Generic)).expect("json");
        assert_eq!(generic["event"], "destination_failed");
        assert_eq!(generic["destination"]["name"], "YouTube");
        let discord: serde_json::Value =
            serde_json::from_slice(&a.body(Format::Discord)).expect("json");
        assert!(discord["content"]
            .as_str()
            .is_some_and(|c| c.contains("YouTube failed")));
        let slack: serde_json::Value =
            serde_json::from_slice(&a.body(Format::Slack)).expect("json");
        assert!(slack["text"]
            .as_str()
            .is_some_and(|c| c.contains("refused")));
        for e in AlertEvent::SUBSCRIBABLE {
            assert_eq!(AlertEvent::from_name(e.as_str()), Some(e));
        }
    }
}
