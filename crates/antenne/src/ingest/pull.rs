//! Pulling: an ingest key takes its stream from a URL (the streamer's
//! existing nginx-rtmp, another server) instead of waiting for a publisher:
//! `rtmp://`, `rtmps://` ([`run`]) or `srt://` as a caller ([`srt`]).
//!
//! antenne connects, plays, and feeds the ingest's hub exactly as a
//! publisher does ([`Hub::start_publish`], then `push_*` with the FLV tag
//! bodies), so destinations, renditions, recording and preview see no
//! difference; the hub's timeline keeps timestamps continuous across
//! reconnections. A source that goes away, or sends no media for
//! [`run::STALL`], is reconnected with the one backoff of destinations
//! ([`crate::output::supervisor::BACKOFF`]).
//!
//! Invariants:
//! - one task per configured pull, owning its connection; its state is a
//!   [`PullState`] on a `watch` (API and UI read snapshots);
//! - the pull URL holds the source's stream key: it is shown only through
//!   [`crate::output::url::masked`] (API, logs, history) unless the API is
//!   asked `?reveal=keys`;
//! - a change is saved first (off the runtime), then applied; the old task
//!   is stopped (and its publish session ended) before the new one starts;
//! - push and pull on one key: the hub takes one publisher at a time. While
//!   the pull is live a publisher pushing to that key is refused ("already
//!   live"); while a publisher is live the pull waits and retries (its
//!   state says so). Switch the pull off to push.
//! - the pulled stream is untrusted input: the player decodes with the
//!   limits of a publisher whose key was checked ([`DecoderLimits::MEDIA`]);
//!   MPEG-TS from an SRT source with the SRT ingest's demuxer bounds;
//! - libsrt's blocking calls run on a dedicated thread per SRT attempt,
//!   never on the runtime's.
//!
//! [`DecoderLimits::MEDIA`]: antenne_rtmp::chunk::DecoderLimits::MEDIA

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::history::{EventKind, History};
use crate::hub::Hubs;
use crate::output::url::{self, srt_options, Scheme, Target};
use crate::store::{Store, StoreError, StoredPull};

mod run;
mod srt;
pub use run::STALL;

/// Where a pull takes its stream from. Each variant has its own way of
/// connecting ([`run`] for RTMP(S), [`srt`] for SRT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullSource {
    /// `rtmp://host[:port]/app/stream`.
    Rtmp(Target),
    /// `rtmps://host[:port]/app/stream` (TLS, verified like destinations).
    Rtmps(Target),
    /// `srt://host:port?streamid=…&passphrase=…&latency=…`: MPEG-TS over
    /// SRT, antenne calling the source's listener.
    Srt(Target),
}

impl PullSource {
    /// Parses a pull URL with the one URL validator of antenne
    /// ([`url::parse`]); the stream name is the URL's last path segment.
    pub fn parse(raw: &str) -> Result<PullSource, PullError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(PullError::Invalid("the pull URL is empty".into()));
        }
        let target = url::parse(raw, "").map_err(|e| PullError::Invalid(e.to_string()))?;
        Ok(match target.scheme {
            Scheme::Rtmp => PullSource::Rtmp(target),
            Scheme::Rtmps => PullSource::Rtmps(target),
            Scheme::Srt => PullSource::Srt(target),
        })
    }

    fn target(&self) -> &Target {
        match self {
            PullSource::Rtmp(t) | PullSource::Rtmps(t) | PullSource::Srt(t) => t,
        }
    }

    /// The URL with its key (SRT: stream id and passphrase) masked, for
    /// logs and the history.
    pub fn redacted(&self) -> String {
        self.target().redacted()
    }

    /// `text` (an error from the source, which might quote the stream
    /// name) with the source's stream key (SRT: stream id and passphrase)
    /// masked.
    pub fn scrub(&self, mut text: String) -> String {
        let t = self.target();
        let mut secrets = vec![t.stream.clone()];
        if let PullSource::Srt(_) = self {
            secrets.extend(srt_options(t).passphrase.map(crate::secret::StreamKey::new));
        }
        for key in secrets {
            if !key.expose().is_empty() && text.contains(key.expose()) {
                text = text.replace(key.expose(), &key.masked());
            }
        }
        text
    }
}

/// Where a pull stands. One value at a time.
#[derive(Debug, Clone, PartialEq)]
pub enum PullState {
    /// Configured, switched off.
    Off,
    /// Connecting and asking to play (attempt 1 is the first).
    Connecting { attempt: u32 },
    /// The source accepted; no media yet (nobody publishes there now).
    Waiting { since: SystemTime },
    /// Media flows into the ingest.
    Live { since: SystemTime },
    /// The last attempt failed; the next one is at `next_try`.
    Retrying {
        attempt: u32,
        next_try: SystemTime,
        error: String,
    },
}

impl PullState {
    pub fn name(&self) -> &'static str {
        match self {
            PullState::Off => "off",
            PullState::Connecting { .. } => "connecting",
            PullState::Waiting { .. } => "waiting",
            PullState::Live { .. } => "live",
            PullState::Retrying { .. } => "retrying",
        }
    }
}

/// What a pull's task reports.
#[derive(Debug, Clone, PartialEq)]
pub struct PullStatus {
    pub state: PullState,
    /// The most recent failure, kept after the pull recovered.
    pub last_error: Option<String>,
    /// Failed attempts and lost connections since the pull started.
    pub reconnects: u64,
}

/// Why a pull change was refused, or why a pull attempt failed. The text
/// is shown to the user.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("{0}")]
    Invalid(String),
    #[error("no ingest key with id {0:?}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A pull as the API shows it.
#[derive(Debug, Clone)]
pub struct PullView {
    /// The URL as typed (the caller masks it unless keys are revealed).
    pub url: String,
    pub enabled: bool,
    pub status: PullStatus,
}

struct Running {
    config: StoredPull,
    status: watch::Receiver<PullStatus>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

/// How long a stopped pull task may take to end its session.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// Every configured pull, by ingest key.
pub struct Pulls {
    hubs: Hubs,
    store: Arc<Store>,
    history: History,
    tls: Arc<rustls::ClientConfig>,
    shutdown: CancellationToken,
    running: Mutex<HashMap<String, Running>>,
    /// Serializes changes (save, stop, start as one step).
    writer: tokio::sync::Mutex<()>,
}

impl Pulls {
    pub fn new(
        hubs: Hubs,
        store: Arc<Store>,
        history: History,
        tls: Arc<rustls::ClientConfig>,
        shutdown: CancellationToken,
    ) -> Arc<Pulls> {
        Arc::new(Pulls {
            hubs,
            store,
            history,
            tls,
            shutdown,
            running: Mutex::new(HashMap::new()),
            writer: tokio::sync::Mutex::new(()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the stored pulls of the keys being served; returns how many.
    /// A stored URL that no longer validates is skipped (logged).
    pub async fn load(&self) -> Result<usize, StoreError> {
        let stored = self.store.off_runtime(|s| s.pulls()).await?;
        let mut n = 0;
        for p in stored {
            if self.hubs.find(&p.ingest).is_none() {
                continue;
            }
            if let Err(e) = PullSource::parse(&p.url) {
                tracing::warn!(url = %url::masked(&p.url, ""), error = %e, "stored pull skipped");
                continue;
            }
            self.start(p);
            n += 1;
        }
        Ok(n)
    }

    /// The pull of an ingest key, if one is configured.
    pub fn get(&self, ingest: &str) -> Option<PullView> {
        self.lock().get(ingest).map(|r| PullView {
            url: r.config.url.clone(),
            enabled: r.config.enabled,
            status: r.status.borrow().clone(),
        })
    }

    /// Sets the pull of `ingest`: validated, saved, then (re)started.
    /// Without `raw_url` the URL already configured stays (switching on
    /// or off without sending the key again).
    pub async fn set(
        &self,
        ingest: &str,
        raw_url: Option<&str>,
        enabled: bool,
        actor: &str,
    ) -> Result<PullView, PullError> {
        let _writing = self.writer.lock().await;
        let Some(hub) = self.hubs.find(ingest) else {
            return Err(PullError::NotFound(crate::ingest_keys::id_of(ingest)));
        };
        let raw_url = match raw_url {
            Some(u) => u.to_owned(),
            None => match self.lock().get(ingest) {
                Some(r) => r.config.url.clone(),
                None => {
                    return Err(PullError::Invalid(
                        "url is required: this ingest key has no pull yet".into(),
                    ))
                }
            },
        };
        let raw_url = raw_url.as_str();
        let source = PullSource::parse(raw_url)?;
        let config = StoredPull {
            ingest: ingest.to_owned(),
            url: raw_url.trim().to_owned(),
            enabled,
        };
        let saved = config.clone();
        self.store.off_runtime(move |s| s.set_pull(&saved)).await?;
        self.stop(ingest).await;
        self.history.record(
            EventKind::Settings,
            None,
            format!(
                "ingest key {} pulls from {} ({})",
                hub.key(),
                source.redacted(),
                if enabled { "on" } else { "off" }
            ),
            Some(actor),
        );
        self.start(config);
        self.get(ingest)
            .ok_or_else(|| PullError::NotFound(crate::ingest_keys::id_of(ingest)))
    }

    /// Removes the pull of `ingest` (saved first); `false` if there was none.
    pub async fn remove(&self, ingest: &str, actor: &str) -> Result<bool, PullError> {
        let _writing = self.writer.lock().await;
        if !self.lock().contains_key(ingest) {
            return Ok(false);
        }
        let key = ingest.to_owned();
        self.store.off_runtime(move |s| s.delete_pull(&key)).await?;
        self.stop(ingest).await;
        self.lock().remove(ingest);
        self.history.record(
            EventKind::Settings,
            None,
            format!(
                "ingest key {} no longer pulls",
                crate::secret::StreamKey::new(ingest)
            ),
            Some(actor),
        );
        Ok(true)
    }

    /// Stops the task of `ingest` and waits (bounded) for its session to end.
    async fn stop(&self, ingest: &str) {
        let task = {
            let mut running = self.lock();
            match running.get_mut(ingest) {
                Some(r) => {
                    r.cancel.cancel();
                    r.task.take()
                }
                None => None,
            }
        };
        if let Some(task) = task {
            let _ = tokio::time::timeout(STOP_WAIT, task).await;
        }
    }

    /// Starts the task of a validated, saved pull (or records it off).
    fn start(&self, config: StoredPull) {
        let initial = PullStatus {
            state: if config.enabled {
                PullState::Connecting { attempt: 1 }
            } else {
                PullState::Off
            },
            last_error: None,
            reconnects: 0,
        };
        let (tx, rx) = watch::channel(initial);
        let cancel = self.shutdown.child_token();
        let task = match (
            config.enabled,
            PullSource::parse(&config.url),
            self.hubs.find(&config.ingest),
        ) {
            (true, Ok(source), Some(hub)) => {
                info!(url = %source.redacted(), key = %hub.key(), "pull started");
                Some(tokio::spawn(run::run(
                    source,
                    hub,
                    self.tls.clone(),
                    self.history.clone(),
                    tx,
                    cancel.clone(),
                )))
            }
            _ => None,
        };
        self.lock().insert(
            config.ingest.clone(),
            Running {
                config,
                status: rx,
                cancel,
                task,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rtmp_and_rtmps_sources_with_the_one_validator() {
        match PullSource::parse(" rtmp://127.0.0.1:1935/live/obs ").expect("valid") {
            PullSource::Rtmp(t) => {
                assert_eq!(
                    (t.host.as_str(), t.port, t.app.as_str()),
                    ("127.0.0.1", 1935, "live")
                );
                assert_eq!(t.stream.expose(), "obs");
            }
            other => panic!("rtmp expected, got {other:?}"),
        }
        assert!(matches!(
            PullSource::parse("rtmps://example.org/app/key").expect("valid"),
            PullSource::Rtmps(t) if t.port == 443
        ));
    }

    #[test]
    fn refuses_urls_it_cannot_pull_with_a_clear_reason() {
        let text = |u: &str| PullSource::parse(u).expect_err(u).to_string();
        assert!(text("http://example.org/live/x").contains("rtmp://"));
        assert!(text("rtmp://127.0.0.1:1935/live").contains("stream"));
        assert!(text("rtmp://127.0.0.1:99999/live/x").contains("port"));
        assert!(text("srt://127.0.0.1").contains("port"));
        assert!(text("srt://127.0.0.1:9000?mode=listener").contains("mode"));
        assert!(text("").contains("empty"));
    }

    #[test]
    fn parses_srt_sources_with_their_options() {
        let s = PullSource::parse(
            "srt://127.0.0.1:9000?streamid=live/src&passphrase=0123456789ab&latency=200",
        )
        .expect("valid");
        let PullSource::Srt(t) = &s else {
            panic!("srt expected, got {s:?}");
        };
        let o = srt_options(t);
        assert_eq!(o.stream_id.as_deref(), Some("live/src"));
        assert_eq!(o.passphrase.as_deref(), Some("0123456789ab"));
        assert_eq!(o.latency_ms, Some(200));
        let shown = s.redacted();
        assert!(shown.starts_with("srt://127.0.0.1:9000?"), "{shown}");
        assert!(
            !shown.contains("0123456789ab") && !shown.contains("live/src"),
            "{shown}"
        );
        let said = s.scrub("rejected live/src with 0123456789ab".into());
        assert!(
            !said.contains("0123456789ab") && !said.contains("live/src"),
            "{said}"
        );
    }

    #[test]
    fn the_redacted_source_hides_the_stream_key() {
        let s = PullSource::parse("rtmp://10.0.0.1/live/supersecretkey123").expect("valid");
        assert!(
            !s.redacted().contains("supersecretkey123"),
            "{}",
            s.redacted()
        );
        let said = s.scrub("no stream supersecretkey123 here".into());
        assert!(!said.contains("supersecretkey123"), "{said}");
    }
}
