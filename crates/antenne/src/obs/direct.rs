//! Direct mode and auto-stream: OBS itself streams to a destination (its
//! main output set to that server and key), and, with auto-stream on, OBS
//! starts streaming with the first destination switched on and stops with
//! the last. Used through [`crate::obs_direct`].

use std::sync::Arc;

use tracing::warn;

use super::model::StreamService;
use super::requests::{request, service_settings, stream_active};
use super::{Obs, ObsError};
use crate::secret::mask;

impl Obs {
    /// "Direct mode": OBS itself streams to `server` with `key`. `on`:
    /// sets the stream service to that (restarting the stream if it was
    /// live elsewhere) and starts streaming; `!on`: stops streaming.
    pub async fn set_main_stream(&self, server: &str, key: &str, on: bool) -> Result<(), ObsError> {
        let _op = self.service_ops.lock().await;
        let client = self.client()?;
        if !on {
            if stream_active(&client).await? {
                request(client.streaming().stop()).await?;
                self.record("obs_stream_stopped", "OBS stopped streaming".into(), None);
            }
            self.poke.notify_one();
            return Ok(());
        }
        let target = StreamService::custom(server, key);
        let was_live = self.change_service(&client, &target, true).await?;
        if !was_live && !stream_active(&client).await? {
            request(client.streaming().start()).await?;
        }
        self.record(
            "obs_stream_started",
            format!("OBS streams to {server} (key {})", mask(key)),
            None,
        );
        self.poke.notify_one();
        Ok(())
    }

    /// Automation hook for the destinations registry: call it after a
    /// change with the number of enabled destinations before and after.
    /// With `auto_stream` on and OBS connected, OBS starts streaming when
    /// the first destination is switched on (`0 → n`) and stops when the
    /// last is switched off (`n → 0`). Does not wait (spawns a task); safe
    /// to call from synchronous code, also off the runtime's threads.
    /// OBS is only started when its stream settings point at antenne.
    pub fn on_destinations_changed(self: &Arc<Self>, enabled_before: usize, enabled_after: usize) {
        let start = enabled_before == 0 && enabled_after > 0;
        let stop = enabled_before > 0 && enabled_after == 0;
        if !(start || stop) || !self.auto_stream() || !self.is_connected() {
            return;
        }
        let me = self.clone();
        self.runtime.spawn(async move {
            if let Err(e) = me.auto_stream_now(start).await {
                let what = if start { "start" } else { "stop" };
                warn!(error = %e, "auto-stream: cannot {what} OBS");
                me.record(
                    "obs_auto_stream",
                    format!("auto-stream: could not {what} OBS: {e}"),
                    None,
                );
            }
        });
    }

    async fn auto_stream_now(&self, start: bool) -> Result<(), ObsError> {
        let client = self.client()?;
        if !start {
            if stream_active(&client).await? {
                request(client.streaming().stop()).await?;
                self.record(
                    "obs_stream_stopped",
                    "auto-stream: OBS stopped streaming (no destination is on)".into(),
                    None,
                );
            }
            self.poke.notify_one();
            return Ok(());
        }
        let (server, _) = self.antenne_service().await?;
        let current = service_settings(&client).await?;
        if !self.points_at_antenne(&current, &server) {
            self.record(
                "obs_auto_stream",
                format!(
                    "auto-stream: OBS not started, it streams to {} and not to antenne \
                     (use \"Send OBS to antenne\")",
                    current.service_name().unwrap_or(current.server())
                ),
                None,
            );
            return Ok(());
        }
        if !stream_active(&client).await? {
            request(client.streaming().start()).await?;
            self.record(
                "obs_stream_started",
                "auto-stream: OBS started streaming (a destination is on)".into(),
                None,
            );
        }
        self.poke.notify_one();
        Ok(())
    }
}
