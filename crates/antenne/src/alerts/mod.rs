//! Alerts: webhooks told when a destination fails, is refused or recovers,
//! and when an ingest goes live or offline.
//!
//! - [`message`]: the alert and its formats (generic signed JSON, Discord,
//!   Slack).
//! - [`watch`]: where alerts come from (snapshots read once a second
//!   while there is a webhook to tell, not at all without one) and the
//!   debouncing of flapping destinations.
//! - [`delivery`]: the HTTP client and the retries.
//!
//! Invariants: the relay never waits on an alert. The watcher reads the
//! snapshots the API reads; alerts go through a bounded queue
//! ([`QUEUE`]; when full, an alert is dropped, with an `alert_failed`
//! event in the history) to the delivery
//! task, which runs at most [`IN_FLIGHT`] deliveries at once, each retried
//! for a few minutes and then dropped with an `alert_failed` event in the
//! history. Alerts hold no stream key nor URL ([`message`]).

pub mod delivery;
pub mod message;
pub mod watch;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::destinations::Destinations;
use crate::history::{EventKind, History};
use crate::ingest::Hubs;
use crate::store::{Store, StoreError, StoredWebhook};
pub use delivery::DeliveryError;
pub use message::{Alert, AlertEvent, Format};

/// Alerts waiting for the delivery task, at most.
pub const QUEUE: usize = 256;
/// Deliveries (with their retries) running at once, at most.
pub const IN_FLIGHT: usize = 16;
/// Webhooks, at most.
pub const MAX_WEBHOOKS: usize = 20;
/// How often the watcher looks at destinations and ingests (while at
/// least one webhook exists).
pub const LOOK_EVERY: Duration = Duration::from_secs(1);

/// The alerts of this process. Cheap to clone.
#[derive(Clone)]
pub struct Alerts {
    inner: Arc<Inner>,
}

struct Inner {
    /// The webhooks as stored; replaced whole after each change.
    webhooks: crate::published::Published<StoredWebhook>,
    /// Bumped after each change of `webhooks`: wakes a watcher that
    /// sleeps while there is none.
    webhooks_changed: tokio::sync::watch::Sender<u64>,
    /// Held across an API change (store write, reload, swap).
    writing: tokio::sync::Mutex<()>,
    queue: mpsc::Sender<(StoredWebhook, Alert)>,
    tls: Arc<rustls::ClientConfig>,
    history: History,
}

impl Alerts {
    /// Loads the webhooks and starts the watcher and delivery tasks; both
    /// end with `cancel`.
    pub async fn start(
        store: Arc<Store>,
        history: History,
        destinations: Arc<Destinations>,
        hubs: Hubs,
        tls: Arc<rustls::ClientConfig>,
        cancel: CancellationToken,
    ) -> Result<Alerts, StoreError> {
        let webhooks = store.off_runtime(|s| s.webhooks()).await?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let alerts = Alerts {
            inner: Arc::new(Inner {
                webhooks: crate::published::Published::new(webhooks),
                webhooks_changed: tokio::sync::watch::channel(0).0,
                writing: tokio::sync::Mutex::new(()),
                queue: tx,
                tls: tls.clone(),
                history: history.clone(),
            }),
        };
        tokio::spawn(deliver_all(rx, tls, history, cancel.clone()));
        tokio::spawn(watch_all(alerts.clone(), destinations, hubs, cancel));
        Ok(alerts)
    }

    /// The webhooks (a snapshot).
    pub fn webhooks(&self) -> Arc<Vec<StoredWebhook>> {
        self.inner.webhooks.get()
    }

    /// Serializes API changes: hold it across the store write and
    /// [`Alerts::set_webhooks`].
    pub async fn writing(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.inner.writing.lock().await
    }

    /// Replaces the webhooks (after the store has them).
    pub fn set_webhooks(&self, webhooks: Vec<StoredWebhook>) {
        self.inner.webhooks.set(webhooks);
        self.inner.webhooks_changed.send_modify(|n| *n += 1);
    }

    /// Queues `alert` for every webhook that wants it. Never waits.
    pub fn dispatch(&self, alert: Alert) {
        for w in self.webhooks().iter() {
            if !w.events.iter().any(|e| e == alert.event.as_str()) {
                continue;
            }
            if self
                .inner
                .queue
                .try_send((w.clone(), alert.clone()))
                .is_err()
            {
                let message = format!(
                    "alert {} to {} dropped: too many alerts waiting",
                    alert.event.as_str(),
                    masked_url(&w.url)
                );
                tracing::warn!(webhook = %w.id, "{message}");
                self.inner
                    .history
                    .record(EventKind::AlertFailed, None, message, None);
            }
        }
    }

    /// Sends a test alert to `webhook` now, once (no retry): the user sees
    /// the receiver's answer.
    pub async fn test(&self, webhook: &StoredWebhook) -> Result<u16, DeliveryError> {
        let alert = Alert::new(
            AlertEvent::Test,
            "test alert: this webhook receives antenne's alerts",
        );
        delivery::attempt(webhook, &alert, self.inner.tls.clone()).await
    }
}

/// The watcher: looks once a second, dispatches what changed. Without
/// a webhook no alert can go anywhere, so it does not look (no timer)
/// until one is added, and then starts afresh as at start-up: what
/// changed meanwhile is not told, the first look only sets what the next
/// ones compare with.
async fn watch_all(
    alerts: Alerts,
    destinations: Arc<Destinations>,
    hubs: Hubs,
    cancel: CancellationToken,
) {
    let mut webhooks_changed = alerts.inner.webhooks_changed.subscribe();
    let mut watcher = watch::Watcher::default();
    let mut tick = tokio::time::interval(LOOK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        if alerts.webhooks().is_empty() {
            watcher = watch::Watcher::default();
            while alerts.webhooks().is_empty() {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = webhooks_changed.changed() => {
                        if r.is_err() {
                            return;
                        }
                    }
                }
            }
            tick.reset_immediately();
            continue;
        }
        let looks: Vec<watch::Look> = destinations.list().iter().map(watch::Look::of).collect();
        let ingests: Vec<(String, bool)> = hubs
            .all()
            .iter()
            .map(|h| (crate::ingest_keys::id_of(h.key().expose()), h.is_live()))
            .collect();
        let mut due = watcher.ingests(&ingests);
        due.extend(watcher.destinations(&looks, Instant::now()));
        for alert in due {
            alerts.dispatch(alert);
        }
    }
}

/// The delivery task: at most [`IN_FLIGHT`] deliveries at once.
async fn deliver_all(
    mut rx: mpsc::Receiver<(StoredWebhook, Alert)>,
    tls: Arc<rustls::ClientConfig>,
    history: History,
    cancel: CancellationToken,
) {
    let mut running = JoinSet::new();
    loop {
        while running.len() >= IN_FLIGHT {
            let _ = running.join_next().await;
        }
        let next = tokio::select! {
            _ = cancel.cancelled() => None,
            next = rx.recv() => next,
        };
        let Some((webhook, alert)) = next else {
            running.abort_all();
            return;
        };
        let tls = tls.clone();
        let history = history.clone();
        running.spawn(async move {
            if let Err(e) = delivery::deliver(&webhook, &alert, tls, delivery::GIVE_UP_AFTER).await
            {
                let message = format!(
                    "alert {} to {} dropped: {e}",
                    alert.event.as_str(),
                    masked_url(&webhook.url)
                );
                tracing::warn!(webhook = %webhook.id, "{message}");
                history.record(EventKind::AlertFailed, None, message, None);
            }
        });
        // Reap what finished, without waiting.
        while running.try_join_next().is_some() {}
    }
}

/// A webhook URL as shown: its last path segment (a Discord or Slack
/// token) and query masked.
pub fn masked_url(url: &str) -> String {
    crate::output::url::masked(url, "")
}

/// What the API sends to create or change a webhook.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    pub url: Option<String>,
    pub format: Option<String>,
    pub events: Option<Vec<String>>,
    pub secret: Option<String>,
}

/// Applies `input` to `base` (a new webhook when `None`), checking
/// everything; the error says what is wrong.
pub fn build(input: WebhookInput, base: Option<StoredWebhook>) -> Result<StoredWebhook, String> {
    let creating = base.is_none();
    let mut w = base.unwrap_or_else(|| StoredWebhook {
        id: format!("w{:010x}", rand::thread_rng().gen::<u64>() & 0xff_ffff_ffff),
        url: String::new(),
        format: Format::Generic.as_str().into(),
        events: AlertEvent::SUBSCRIBABLE
            .iter()
            .map(|e| e.as_str().to_owned())
            .collect(),
        secret: (0..32)
            .map(|_| format!("{:x}", rand::thread_rng().gen_range(0..16u8)))
            .collect(),
        created_at: crate::store::now(),
    });
    if let Some(url) = input.url {
        let url = url.trim().to_owned();
        if url.len() > 2048 {
            return Err("the URL is longer than 2048 characters".into());
        }
        delivery::parse_url(&url).map_err(|e| e.to_string())?;
        w.url = url;
    } else if creating {
        return Err("a webhook needs a url".into());
    }
    if let Some(f) = input.format {
        let f = Format::from_name(f.trim())
            .ok_or_else(|| format!("unknown format {f:?}: generic, discord or slack"))?;
        w.format = f.as_str().into();
    }
    if let Some(events) = input.events {
        let mut names = Vec::new();
        for e in events {
            let e = AlertEvent::from_name(e.trim()).ok_or_else(|| {
                format!(
                    "unknown event {e:?}: {}",
                    AlertEvent::SUBSCRIBABLE.map(|e| e.as_str()).join(", ")
                )
            })?;
            if !names.contains(&e.as_str().to_owned()) {
                names.push(e.as_str().to_owned());
            }
        }
        if names.is_empty() {
            return Err("a webhook needs at least one event".into());
        }
        w.events = names;
    }
    if let Some(secret) = input.secret {
        if secret.is_empty() || secret.len() > 256 {
            return Err("the secret must be 1 to 256 characters".into());
        }
        w.secret = secret;
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_webhook_with_defaults_and_refuses_bad_input() {
        let w = build(
            WebhookInput {
                url: Some("https://example.org/hook".into()),
                ..Default::default()
            },
            None,
        )
        .expect("valid");
        assert_eq!(w.format, "generic");
        assert_eq!(w.events.len(), AlertEvent::SUBSCRIBABLE.len());
        assert_eq!(w.secret.len(), 32);
        assert!(build(WebhookInput::default(), None).is_err(), "no url");
        for bad in [
            WebhookInput {
                url: Some("ftp://x/".into()),
                ..Default::default()
            },
            WebhookInput {
                format: Some("teams".into()),
                ..Default::default()
            },
            WebhookInput {
                events: Some(vec!["went_to_lunch".into()]),
                ..Default::default()
            },
            WebhookInput {
                events: Some(vec![]),
                ..Default::default()
            },
        ] {
            assert!(build(bad, Some(w.clone())).is_err());
        }
        let changed = build(
            WebhookInput {
                format: Some("slack".into()),
                events: Some(vec!["ingest_live".into()]),
                ..Default::default()
            },
            Some(w.clone()),
        )
        .expect("valid");
        assert_eq!((changed.id, changed.secret), (w.id, w.secret));
    }

    #[tokio::test(start_paused = true)]
    async fn a_webhook_added_later_hears_only_of_what_changes_after_it() {
        use crate::hub::{Hub, QueueLimits};
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(Store::open(dir.path()).expect("store"));
        let hub = Hub::new(
            crate::secret::StreamKey::new("alertkey"),
            QueueLimits::default(),
        );
        let hubs = Hubs::new(vec![hub.clone()]);
        let tls = Arc::new(crate::app::tls_config(None).expect("tls"));
        let cancel = CancellationToken::new();
        let destinations = Arc::new(Destinations::new(
            hubs.clone(),
            Arc::new(crate::output::supervisor::OutputContext {
                tls: tls.clone(),
                timeouts: crate::output::connection::Timeouts::default(),
                lanes: crate::output::lanes::Lanes::none(),
            }),
            store,
            History::disabled(),
            Arc::new(crate::presets::Presets::embedded().expect("presets")),
            cancel.clone(),
        ));
        let (tx, mut queued) = mpsc::channel(QUEUE);
        let alerts = Alerts {
            inner: Arc::new(Inner {
                webhooks: crate::published::Published::new(Vec::new()),
                webhooks_changed: tokio::sync::watch::channel(0).0,
                writing: tokio::sync::Mutex::new(()),
                queue: tx,
                tls,
                history: History::disabled(),
            }),
        };
        let hook = build(
            WebhookInput {
                url: Some("http://127.0.0.1:9/hook".into()),
                events: Some(vec!["ingest_live".into(), "ingest_offline".into()]),
                ..Default::default()
            },
            None,
        )
        .expect("valid");
        alerts.set_webhooks(vec![hook.clone()]);
        tokio::spawn(watch_all(
            alerts.clone(),
            destinations,
            hubs,
            cancel.clone(),
        ));
        tokio::time::sleep(LOOK_EVERY * 3).await;
        // The webhook goes; live while nobody listens: told to nobody,
        // then or later.
        alerts.set_webhooks(Vec::new());
        tokio::time::sleep(LOOK_EVERY * 3).await;
        let guard = hub
            .start_publish("127.0.0.1:1".parse().expect("addr"))
            .expect("publisher");
        tokio::time::sleep(LOOK_EVERY * 5).await;
        alerts.set_webhooks(vec![hook]);
        tokio::time::sleep(LOOK_EVERY * 3).await;
        assert!(
            queued.try_recv().is_err(),
            "what changed before the webhook is not told"
        );
        // What changes now is.
        drop(guard);
        let (_, alert) = tokio::time::timeout(LOOK_EVERY * 3, queued.recv())
            .await
            .expect("told within a look")
            .expect("an alert");
        assert_eq!(alert.event, AlertEvent::IngestOffline);
        cancel.cancel();
    }

    #[tokio::test]
    async fn gives_up_after_the_window_with_the_last_error() {
        // A port nothing listens on: refused at once, retried, given up.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a port");
        let w = build(
            WebhookInput {
                url: Some(format!("http://127.0.0.1:{port}/hook")),
                ..Default::default()
            },
            None,
        )
        .expect("valid");
        let tls = Arc::new(crate::app::tls_config(None).expect("tls"));
        let alert = Alert::new(AlertEvent::Test, "t");
        let err = delivery::deliver(&w, &alert, tls, Duration::from_secs(2))
            .await
            .expect_err("nothing listens");
        assert!(matches!(err, DeliveryError::Connect(_)), "{err}");
    }
}
