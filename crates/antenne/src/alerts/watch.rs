//! Where alerts come from: once a second the alerts task reads the same
//! snapshots the API reads (each destination's [`OutputState`] and reconnect
//! count, each hub's live flag) and turns changes into alerts. Nothing is
//! added to the media path.
//!
//! Debouncing: a destination's failure *episode* starts at its first failure
//! (a retrying or rejected state, or a reconnect counted since the last
//! look) and gets one alert. It ends when the destination has been live for
//! [`RECOVERY_HOLD`] without failing again, which sends one "recovered"
//! alert. A destination that flaps (live for a moment, fails, live…) stays
//! in one episode. Switching a destination off ends its episode silently.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::message::{Alert, AlertDestination, AlertEvent, AlertIngest};
use crate::destinations::DestinationView;
use crate::output::OutputState;

/// How long a destination must stay live before it counts as recovered.
pub const RECOVERY_HOLD: Duration = Duration::from_secs(10);

/// What the watcher saw of one destination last time.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Episode {
    Healthy,
    /// Failing since the alert; `live_since` once live again.
    Failing {
        live_since: Option<Instant>,
    },
}

#[derive(Debug)]
struct Tracked {
    episode: Episode,
    reconnects: u64,
}

/// What one look at a destination shows, without secrets.
#[derive(Debug, Clone)]
pub struct Look {
    pub destination: AlertDestination,
    pub state: OutputState,
    pub reconnects: u64,
    /// The last error, masked.
    pub last_error: Option<String>,
}

impl Look {
    /// From the API's view; every text masked (key and URL).
    pub fn of(v: &DestinationView) -> Look {
        let mask = |text: &str| mask_secrets(text, v.dest.key.expose(), &v.dest.url);
        let state = match v.stats.state() {
            OutputState::Retrying {
                attempt,
                next_try,
                error,
            } => OutputState::Retrying {
                attempt,
                next_try,
                error: mask(&error),
            },
            OutputState::Rejected { next_try, message } => OutputState::Rejected {
                next_try,
                message: mask(&message),
            },
            other => other,
        };
        Look {
            destination: AlertDestination {
                id: v.dest.id.clone(),
                name: v.dest.name.clone(),
                platform: v.dest.platform.clone(),
            },
            state,
            reconnects: v.stats.reconnects(),
            last_error: v.stats.last_error().map(|e| mask(&e.message)),
        }
    }
}

/// `text` with the stream key and the URL (in clear) replaced by their
/// masked forms.
pub fn mask_secrets(text: &str, key: &str, url: &str) -> String {
    let mut out = text.to_owned();
    let url = url.trim();
    if !url.is_empty() {
        out = out.replace(url, &crate::output::url::masked(url, key));
    }
    if key.len() >= 3 {
        out = out.replace(key, &crate::secret::mask(key));
    }
    out
}

/// The state of every watched thing between looks.
#[derive(Debug, Default)]
pub struct Watcher {
    destinations: HashMap<String, Tracked>,
    ingests: HashMap<String, bool>,
}

impl Watcher {
    /// Compares `looks` with the previous ones; returns the alerts due.
    pub fn destinations(&mut self, looks: &[Look], now: Instant) -> Vec<Alert> {
        let mut alerts = Vec::new();
        self.destinations
            .retain(|id, _| looks.iter().any(|l| &l.destination.id == id));
        for look in looks {
            let t = self
                .destinations
                .entry(look.destination.id.clone())
                .or_insert(Tracked {
                    episode: Episode::Healthy,
                    reconnects: look.reconnects,
                });
            let reconnected = look.reconnects > t.reconnects;
            t.reconnects = look.reconnects;
            let failure = match &look.state {
                OutputState::Retrying { error, .. } => {
                    Some((AlertEvent::DestinationFailed, error.clone()))
                }
                OutputState::Rejected { message, .. } => {
                    Some((AlertEvent::DestinationRejected, message.clone()))
                }
                _ if reconnected => Some((
                    AlertEvent::DestinationFailed,
                    look.last_error
                        .clone()
                        .unwrap_or_else(|| "connection lost".into()),
                )),
                _ => None,
            };
            let name = &look.destination.name;
            match (t.episode, failure, &look.state) {
                (_, _, OutputState::Disabled) => t.episode = Episode::Healthy,
                (Episode::Healthy, Some((event, error)), _) => {
                    t.episode = Episode::Failing { live_since: None };
                    let what = if event == AlertEvent::DestinationRejected {
                        "refused by the platform"
                    } else {
                        "failed"
                    };
                    let mut a = Alert::new(event, format!("{name}: {what}: {error}"));
                    a.destination = Some(look.destination.clone());
                    alerts.push(a);
                }
                (Episode::Failing { .. }, Some(_), _) => {
                    t.episode = Episode::Failing { live_since: None };
                }
                (Episode::Failing { live_since }, None, OutputState::Live { .. }) => {
                    let since = live_since.unwrap_or(now);
                    if now.duration_since(since) >= RECOVERY_HOLD {
                        t.episode = Episode::Healthy;
                        let mut a = Alert::new(
                            AlertEvent::DestinationRecovered,
                            format!("{name}: live again"),
                        );
                        a.destination = Some(look.destination.clone());
                        alerts.push(a);
                    } else {
                        t.episode = Episode::Failing {
                            live_since: Some(since),
                        };
                    }
                }
                (Episode::Failing { .. }, None, _) => {
                    // Connecting or idle: not live, so not recovered yet.
                    t.episode = Episode::Failing { live_since: None };
                }
                (Episode::Healthy, None, _) => {}
            }
        }
        alerts
    }

    /// Compares each ingest's live flag (by ingest id) with the previous
    /// look; the first look of an ingest sends nothing.
    pub fn ingests(&mut self, looks: &[(String, bool)]) -> Vec<Alert> {
        let mut alerts = Vec::new();
        self.ingests
            .retain(|id, _| looks.iter().any(|(i, _)| i == id));
        for (id, live) in looks {
            let before = self.ingests.insert(id.clone(), *live);
            if before.is_some_and(|b| b != *live) {
                let (event, what) = if *live {
                    (AlertEvent::IngestLive, "is live")
                } else {
                    (AlertEvent::IngestOffline, "went offline")
                };
                let mut a = Alert::new(event, format!("the ingest {id} {what}"));
                a.ingest = Some(AlertIngest { id: id.clone() });
                alerts.push(a);
            }
        }
        alerts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn look(state: OutputState, reconnects: u64) -> Look {
        Look {
            destination: AlertDestination {
                id: "d1".into(),
                name: "YouTube".into(),
                platform: "youtube".into(),
            },
            state,
            reconnects,
            last_error: Some("connection refused".into()),
        }
    }

    fn retrying() -> OutputState {
        OutputState::Retrying {
            attempt: 1,
            next_try: SystemTime::now(),
            error: "connection refused".into(),
        }
    }

    fn live() -> OutputState {
        OutputState::Live {
            since: SystemTime::now(),
        }
    }

    fn events(alerts: &[Alert]) -> Vec<AlertEvent> {
        alerts.iter().map(|a| a.event).collect()
    }

    #[test]
    fn a_flapping_destination_gets_one_alert_per_episode_and_one_when_it_holds() {
        let mut w = Watcher::default();
        let t0 = Instant::now();
        let s = |secs: u64| t0 + Duration::from_secs(secs);
        assert!(w.destinations(&[look(live(), 0)], s(0)).is_empty());
        let a = w.destinations(&[look(retrying(), 1)], s(1));
        assert_eq!(events(&a), [AlertEvent::DestinationFailed]);
        assert!(a[0].message.contains("connection refused"), "{a:?}");
        // Flaps: live a moment, fails again (seen only as a reconnect),
        // retries: all one episode.
        assert!(w.destinations(&[look(live(), 1)], s(2)).is_empty());
        assert!(w.destinations(&[look(live(), 2)], s(3)).is_empty());
        assert!(w.destinations(&[look(retrying(), 3)], s(4)).is_empty());
        assert!(w.destinations(&[look(live(), 3)], s(5)).is_empty());
        assert!(w.destinations(&[look(live(), 3)], s(10)).is_empty());
        let a = w.destinations(&[look(live(), 3)], s(15));
        assert_eq!(events(&a), [AlertEvent::DestinationRecovered]);
        assert!(w.destinations(&[look(live(), 3)], s(16)).is_empty());
        // A new failure is a new episode.
        let a = w.destinations(&[look(retrying(), 4)], s(17));
        assert_eq!(events(&a), [AlertEvent::DestinationFailed]);
    }

    #[test]
    fn switching_off_ends_an_episode_silently_and_rejections_say_so() {
        let mut w = Watcher::default();
        let now = Instant::now();
        let rejected = OutputState::Rejected {
            next_try: SystemTime::now(),
            message: "key refused".into(),
        };
        let a = w.destinations(&[look(rejected, 0)], now);
        assert_eq!(events(&a), [AlertEvent::DestinationRejected]);
        assert!(w
            .destinations(&[look(OutputState::Disabled, 0)], now)
            .is_empty());
        assert!(w.destinations(&[look(live(), 0)], now).is_empty());
        assert!(w
            .destinations(&[look(live(), 0)], now + RECOVERY_HOLD * 2)
            .is_empty());
    }

    #[test]
    fn ingest_changes_alert_but_the_first_look_does_not() {
        let mut w = Watcher::default();
        assert!(w.ingests(&[("i1".into(), true)]).is_empty());
        let a = w.ingests(&[("i1".into(), false)]);
        assert_eq!(events(&a), [AlertEvent::IngestOffline]);
        let a = w.ingests(&[("i1".into(), true)]);
        assert_eq!(events(&a), [AlertEvent::IngestLive]);
    }

    #[test]
    fn masks_the_key_and_the_url_in_error_texts() {
        let text = "rtmp://live.example.com/app/sk_live_123 refused key sk_live_123";
        let masked = mask_secrets(text, "sk_live_123", "rtmp://live.example.com/app");
        assert!(!masked.contains("sk_live_123"), "{masked}");
    }
}
