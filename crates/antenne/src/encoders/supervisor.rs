//! The rendition's supervisor: one task that starts ffmpeg when the
//! rendition is wanted (input live and demand above zero), stops it when
//! it no longer is, and restarts it after a crash or a stall with the
//! destinations' backoff ([`crate::backoff::Backoff`]).
//!
//! Invariants: at most one ffmpeg per rendition at any time (a run is
//! awaited, or dropped, before the next starts); every state change goes
//! through the one `watch` the API will read; stopping (rendition
//! dropped, input offline, demand zero) drops the run, which kills
//! ffmpeg.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::run::{run_once, RunEnd};
use super::spec::RenditionSpec;
use super::state::EncoderState;
use super::EncoderConfig;
use crate::hub::Hub;
use crate::output::supervisor::{BACKOFF, BACKOFF_MAX, STABLE_AFTER};

pub(super) struct Task {
    pub(super) spec: RenditionSpec,
    pub(super) input: Arc<Hub>,
    pub(super) output: Arc<Hub>,
    pub(super) config: EncoderConfig,
    pub(super) state: watch::Sender<EncoderState>,
    pub(super) demand: watch::Receiver<usize>,
    pub(super) pid: Arc<Mutex<Option<u32>>>,
    pub(super) cancel: CancellationToken,
}

/// Whether the rendition is wanted now.
fn wanted(live: &watch::Receiver<bool>, demand: &watch::Receiver<usize>) -> bool {
    *live.borrow() && *demand.borrow() > 0
}

/// Returns once `wanted` becomes `want` (or a sender is gone).
async fn until_wanted(
    want: bool,
    live: &mut watch::Receiver<bool>,
    demand: &mut watch::Receiver<usize>,
) {
    loop {
        if wanted(live, demand) == want {
            return;
        }
        let gone = tokio::select! {
            r = live.changed() => r.is_err(),
            r = demand.changed() => r.is_err(),
        };
        if gone {
            // A sender dropped: nothing will change any more.
            std::future::pending::<()>().await;
        }
    }
}

impl Task {
    fn set(&self, state: EncoderState) {
        self.state.send_if_modified(|s| {
            let changed = *s != state;
            *s = state;
            changed
        });
    }

    pub(super) async fn run(self) {
        // Fed, not only live: while the standby picture plays (OBS away,
        // or a break) the encoder keeps running on it, so the rendition's
        // destinations get it too; a hold without a picture stops it.
        let mut live = self.input.watch_feeding();
        let mut demand = self.demand.clone();
        let spec = RenditionSpec {
            encoder: self.spec.encoder.resolve(&self.config.hardware),
            ..self.spec.clone()
        };
        loop {
            if !matches!(*self.state.borrow(), EncoderState::Unavailable { .. }) {
                self.set(EncoderState::Stopped);
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = until_wanted(true, &mut live, &mut demand) => {}
            }
            self.set(EncoderState::Starting);
            info!(ffmpeg = %self.config.ffmpeg.display(), "starting the encoder");
            self.run_while_wanted(&spec, &mut live, &mut demand).await;
            if self.cancel.is_cancelled() {
                return;
            }
            info!("encoder stopped: not needed");
        }
    }

    /// Runs ffmpeg again and again until the rendition is not wanted.
    async fn run_while_wanted(
        &self,
        spec: &RenditionSpec,
        live: &mut watch::Receiver<bool>,
        demand: &mut watch::Receiver<usize>,
    ) {
        let mut backoff = BACKOFF;
        loop {
            let started = Instant::now();
            let end = tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = until_wanted(false, live, demand) => return,
                end = run_once(self, spec) => end,
            };
            let wait = match end {
                RunEnd::Unavailable(reason) => {
                    warn!(%reason, "encoder unavailable");
                    self.set(EncoderState::Unavailable { reason });
                    // Someone may install ffmpeg; look again later.
                    BACKOFF_MAX
                }
                RunEnd::Failed(error) => {
                    if started.elapsed() >= STABLE_AFTER {
                        backoff.reset();
                    }
                    let wait = backoff.next_delay();
                    let attempt = backoff.failures();
                    warn!(%error, attempt, "encoder failed; restarting");
                    self.set(EncoderState::Restarting { attempt, error });
                    wait
                }
            };
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = until_wanted(false, live, demand) => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
