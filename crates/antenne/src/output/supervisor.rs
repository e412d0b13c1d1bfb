//! The life of one enabled destination: wait for the ingest, connect,
//! relay, and on failure record the error, back off and try again.
//!
//! Backoff is antenne's one [`Backoff`] (exponential with ±20 % jitter),
//! from 1 s to 30 s; it starts over once a connection has stayed live for
//! [`STABLE_AFTER`]. A platform that refuses the stream (bad key) is retried
//! every [`REJECTED_RETRY`], since trying faster cannot help.
//!
//! Every failed attempt and every dropped connection counts one reconnect,
//! since antenne tries again after each (see [`OutputStats`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::{sleep, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::connection::{LiveEnd, Timeouts};
use super::feed::Feed;
use super::url::Target;
use super::{OutputState, OutputStats};
use crate::backoff::Backoff;
use crate::history::{EventKind, History};

/// First retry delay.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest retry delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A connection live this long resets the backoff.
pub const STABLE_AFTER: Duration = Duration::from_secs(5);
/// Delay before trying again after the platform refused the stream.
pub const REJECTED_RETRY: Duration = Duration::from_secs(180);

/// Everything outputs share: TLS roots, time limits, the threads they
/// run on.
#[derive(Debug)]
pub struct OutputContext {
    pub tls: Arc<rustls::ClientConfig>,
    pub timeouts: Timeouts,
    pub lanes: super::lanes::Lanes,
}

/// The retry delays of a destination: 1, 2, 4, … 30 s, ±20 %.
pub const BACKOFF: Backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);

/// Runs one destination until `cancel` fires.
pub async fn supervise(
    id: String,
    target: Target,
    feed: Arc<dyn Feed>,
    stats: Arc<OutputStats>,
    ctx: Arc<OutputContext>,
    history: History,
    cancel: CancellationToken,
) {
    let dest = target.redacted();
    let set = |state| stats.set_state_unless_cancelled(&cancel, state);
    // On the air: a publisher, or the standby holding the destinations
    // open while it is away.
    let mut live = feed.live();
    let mut backoff = BACKOFF;
    // The history gets the first failure of a streak and any change of
    // error, not every retry.
    let mut last_recorded: Option<String> = None;
    let label = Some((id.as_str(), ""));
    loop {
        // Wait for the ingest.
        if !*live.borrow_and_update() {
            set(OutputState::Idle);
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = live.changed() => if r.is_err() { return } else { continue },
            }
        }
        set(OutputState::Connecting {
            attempt: backoff.failures() + 1,
        });
        // What this connection relays is picked now (a "vertical" source
        // looks at the ingest's tracks as they are).
        let picked = tokio::select! {
            _ = cancel.cancelled() => return,
            p = feed.pick() => p.map_err(super::connection::OutputError::NoSource),
        };
        let opened = match picked {
            Ok(picked) => tokio::select! {
                _ = cancel.cancelled() => return,
                r = super::srt::open(&target, &ctx.tls, &ctx.timeouts) => r.map(|o| (o, picked)),
            },
            Err(e) => Err(e),
        };
        let error = match opened {
            Ok((link, picked)) => {
                let since = Instant::now();
                set(OutputState::Live {
                    since: SystemTime::now(),
                });
                stats.bytes.reset_window();
                info!(destination = %id, url = %dest, "destination live");
                history.record(EventKind::WentLive, label, format!("live on {dest}"), None);
                last_recorded = None;
                let _hold = picked.hold;
                let result =
                    super::srt::relay(link, picked.sub, &stats, &ctx.timeouts, &cancel).await;
                if since.elapsed() >= STABLE_AFTER {
                    backoff.reset();
                }
                match result {
                    Ok(LiveEnd::Cancelled) => {
                        info!(destination = %id, url = %dest, "destination stopped");
                        return;
                    }
                    Ok(LiveEnd::IngestGone) => {
                        info!(destination = %id, url = %dest, "ingest gone past the hold limit: stream closed");
                        history.record(
                            EventKind::Closed,
                            label,
                            "ingest offline past the hold limit: stream closed",
                            None,
                        );
                        continue;
                    }
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
        // Whatever failed, antenne tries again: one reconnect.
        stats.count_reconnect();
        let message = error.to_string();
        stats.set_error(message.clone());
        if last_recorded.as_deref() != Some(message.as_str()) {
            let kind = if error.is_rejection() {
                EventKind::Rejected
            } else {
                EventKind::Failed
            };
            history.record(kind, label, message.clone(), None);
            last_recorded = Some(message.clone());
        }
        let delay = if error.is_rejection() {
            warn!(destination = %id, url = %dest, error = %message, "platform refused the stream");
            set(OutputState::Rejected {
                next_try: SystemTime::now() + REJECTED_RETRY,
                message,
            });
            REJECTED_RETRY
        } else {
            let delay = backoff.next_delay();
            let failures = backoff.failures();
            warn!(destination = %id, url = %dest, attempt = failures, retry_in_ms = delay.as_millis() as u64, error = %message, "destination failed");
            set(OutputState::Retrying {
                attempt: failures,
                next_try: SystemTime::now() + delay,
                error: message,
            });
            delay
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = sleep(delay) => {}
        }
    }
}
