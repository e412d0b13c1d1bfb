//! The event history (went live, disconnected, retried with error X,
//! toggled by whom), written to the store by a thread of its own so that no
//! relay task ever waits on the disk.

use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::store::{self, Event, Store};

/// What happened. Stored and served as the snake_case name
/// (`toggled_on`, `went_live`, …): those strings are the history's and the
/// API's values, kept as they were when kinds were plain strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Started,
    // Destinations (the control plane).
    Added,
    Edited,
    Deleted,
    ToggledOn,
    ToggledOff,
    /// Several destinations of one ingest switched on in one request.
    AllOn,
    /// Several destinations of one ingest switched off in one request.
    AllOff,
    Reordered,
    // A destination's connection.
    WentLive,
    Closed,
    Rejected,
    Failed,
    // Ingest.
    IngestLive,
    IngestOffline,
    IngestKeyAdded,
    IngestKeyDeleted,
    Settings,
    // Access.
    Login,
    TokenCreated,
    TokenDeleted,
    PasswordChanged,
    LoggedOutEverywhere,
    // Recordings.
    RecordingStarted,
    RecordingStopped,
    RecordingFailed,
    RecordingDeleted,
    // OBS.
    ObsConnected,
    ObsLost,
    ObsSettings,
    ObsScene,
    ObsPointed,
    ObsRestored,
    ObsStreamStarted,
    ObsStreamStopped,
    ObsAutoStream,
    ObsOutput,
    // Alerts.
    AlertFailed,
    // Renditions.
    RenditionAdded,
    RenditionEdited,
    RenditionDeleted,
    // Standby.
    StandbyStarted,
    StandbyEnded,
}

impl EventKind {
    /// Every kind, for look-ups by name.
    pub const ALL: [EventKind; 43] = [
        EventKind::Started,
        EventKind::Added,
        EventKind::Edited,
        EventKind::Deleted,
        EventKind::ToggledOn,
        EventKind::ToggledOff,
        EventKind::AllOn,
        EventKind::AllOff,
        EventKind::Reordered,
        EventKind::WentLive,
        EventKind::Closed,
        EventKind::Rejected,
        EventKind::Failed,
        EventKind::IngestLive,
        EventKind::IngestOffline,
        EventKind::IngestKeyAdded,
        EventKind::IngestKeyDeleted,
        EventKind::Settings,
        EventKind::Login,
        EventKind::TokenCreated,
        EventKind::TokenDeleted,
        EventKind::PasswordChanged,
        EventKind::LoggedOutEverywhere,
        EventKind::RecordingStarted,
        EventKind::RecordingStopped,
        EventKind::RecordingFailed,
        EventKind::RecordingDeleted,
        EventKind::ObsConnected,
        EventKind::ObsLost,
        EventKind::ObsSettings,
        EventKind::ObsScene,
        EventKind::ObsPointed,
        EventKind::ObsRestored,
        EventKind::ObsStreamStarted,
        EventKind::ObsStreamStopped,
        EventKind::ObsAutoStream,
        EventKind::ObsOutput,
        EventKind::AlertFailed,
        EventKind::RenditionAdded,
        EventKind::RenditionEdited,
        EventKind::RenditionDeleted,
        EventKind::StandbyStarted,
        EventKind::StandbyEnded,
    ];

    /// The stored name (`went_live`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Started => "started",
            EventKind::Added => "added",
            EventKind::Edited => "edited",
            EventKind::Deleted => "deleted",
            EventKind::ToggledOn => "toggled_on",
            EventKind::ToggledOff => "toggled_off",
            EventKind::AllOn => "all_on",
            EventKind::AllOff => "all_off",
            EventKind::Reordered => "reordered",
            EventKind::WentLive => "went_live",
            EventKind::Closed => "closed",
            EventKind::Rejected => "rejected",
            EventKind::Failed => "failed",
            EventKind::IngestLive => "ingest_live",
            EventKind::IngestOffline => "ingest_offline",
            EventKind::IngestKeyAdded => "ingest_key_added",
            EventKind::IngestKeyDeleted => "ingest_key_deleted",
            EventKind::Settings => "settings",
            EventKind::Login => "login",
            EventKind::TokenCreated => "token_created",
            EventKind::TokenDeleted => "token_deleted",
            EventKind::PasswordChanged => "password_changed",
            EventKind::LoggedOutEverywhere => "logged_out_everywhere",
            EventKind::RecordingStarted => "recording_started",
            EventKind::RecordingStopped => "recording_stopped",
            EventKind::RecordingFailed => "recording_failed",
            EventKind::RecordingDeleted => "recording_deleted",
            EventKind::ObsConnected => "obs_connected",
            EventKind::ObsLost => "obs_lost",
            EventKind::ObsSettings => "obs_settings",
            EventKind::ObsScene => "obs_scene",
            EventKind::ObsPointed => "obs_pointed",
            EventKind::ObsRestored => "obs_restored",
            EventKind::ObsStreamStarted => "obs_stream_started",
            EventKind::ObsStreamStopped => "obs_stream_stopped",
            EventKind::ObsAutoStream => "obs_auto_stream",
            EventKind::ObsOutput => "obs_output",
            EventKind::AlertFailed => "alert_failed",
            EventKind::RenditionAdded => "rendition_added",
            EventKind::RenditionEdited => "rendition_edited",
            EventKind::RenditionDeleted => "rendition_deleted",
            EventKind::StandbyStarted => "standby_started",
            EventKind::StandbyEnded => "standby_ended",
        }
    }

    /// The kind of a stored name.
    pub fn from_name(name: &str) -> Option<EventKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Events waiting to be written, at most; past that they are dropped (and
/// the drop logged) rather than blocking anything.
const BACKLOG: usize = 4096;

/// Where events go. Cheap to clone.
#[derive(Clone, Debug)]
pub struct History {
    tx: Option<SyncSender<Event>>,
}

impl History {
    /// Starts the writer thread; it ends when every handle is dropped.
    pub fn start(store: Arc<Store>) -> History {
        let (tx, rx) = sync_channel::<Event>(BACKLOG);
        let spawned = std::thread::Builder::new()
            .name("history".into())
            .spawn(move || {
                let mut failing = false;
                for event in rx {
                    match store.insert_event(&event) {
                        Ok(()) => failing = false,
                        Err(e) if !failing => {
                            failing = true;
                            tracing::warn!(error = %e, "event history not saved");
                        }
                        Err(_) => {}
                    }
                }
            });
        match spawned {
            Ok(_) => History { tx: Some(tx) },
            Err(e) => {
                tracing::warn!(error = %e, "event history disabled: cannot start its thread");
                History { tx: None }
            }
        }
    }

    /// A history that keeps nothing (tests of other parts).
    pub fn disabled() -> History {
        History { tx: None }
    }

    /// Records an event. Never blocks.
    pub fn record(
        &self,
        kind: EventKind,
        destination: Option<(&str, &str)>,
        message: impl Into<String>,
        actor: Option<&str>,
    ) {
        let Some(tx) = &self.tx else { return };
        let event = Event {
            id: 0,
            at: store::now(),
            kind: kind.as_str().to_owned(),
            destination_id: destination.map(|(id, _)| id.to_owned()),
            destination_name: destination
                .map(|(_, name)| name.to_owned())
                .filter(|n| !n.is_empty()),
            message: message.into(),
            actor: actor.map(str::to_owned),
        };
        if let Err(TrySendError::Full(_)) = tx.try_send(event) {
            tracing::warn!("event history backlog full: event dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_kinds_keep_their_stored_names() {
        for k in EventKind::ALL {
            let json = serde_json::to_string(&k).expect("serializes");
            assert_eq!(json, format!("\"{}\"", k.as_str()));
            assert_eq!(EventKind::from_name(k.as_str()), Some(k));
        }
        assert_eq!(EventKind::ToggledOn.as_str(), "toggled_on");
        assert_eq!(EventKind::ObsStreamStarted.as_str(), "obs_stream_started");
    }
}
