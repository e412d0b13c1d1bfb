//! The poller: while connected, reads everything the status shows once a
//! second (stream, recording, stats, stream service, outputs, scenes) in
//! one round of concurrent requests. For OBS before 30.1, whose scene list
//! obws cannot read, the scenes come from a [`LegacyClient`] connection.

use std::time::Instant;

use serde_json::Value;
use tracing::debug;

use super::legacy::LegacyClient;
use super::model::{mark_controllable, ObsOutput, ObsStatus, StreamService};
use super::requests::{describe, is_transport, timecode};
use super::{Target, LEGACY_RETRY, REQUEST_TIMEOUT};

/// Reads everything the status shows, once a second.
pub(super) struct Poller {
    target: Target,
    obs_version: String,
    websocket_version: String,
    /// Main stream bytes at the previous poll, for the bitrate.
    last_bytes: Option<(u64, Instant)>,
    /// For OBS < 30.1, whose scene list obws cannot read.
    legacy: Option<LegacyClient>,
    legacy_scenes: bool,
    /// After a failure of that connection: not before this.
    legacy_retry_at: Option<Instant>,
}

impl Poller {
    /// For one connection to OBS `obs_version` (obs-websocket
    /// `websocket_version`) at `target`.
    pub(super) fn new(target: Target, obs_version: String, websocket_version: String) -> Self {
        Poller {
            target,
            obs_version,
            websocket_version,
            last_bytes: None,
            legacy: None,
            legacy_scenes: false,
            legacy_retry_at: None,
        }
    }

    /// One round. `Err` when the connection is gone.
    pub(super) async fn poll(&mut self, client: &obws::Client) -> Result<ObsStatus, String> {
        let (streaming, recording, general, config, outputs, scenes) = (
            client.streaming(),
            client.recording(),
            client.general(),
            client.config(),
            client.outputs(),
            client.scenes(),
        );
        let legacy_scenes = self.legacy_scenes;
        let started = tokio::time::timeout(REQUEST_TIMEOUT, async {
            tokio::join!(
                streaming.status(),
                recording.status(),
                general.stats(),
                config.stream_service_settings::<Value>(),
                outputs.list(),
                async {
                    if legacy_scenes {
                        None
                    } else {
                        Some(scenes.list().await)
                    }
                },
            )
        })
        .await;
        let Ok((stream, record, stats, service, outputs, scenes)) = started else {
            return Err(format!(
                "OBS did not answer within {} s",
                REQUEST_TIMEOUT.as_secs()
            ));
        };
        // A broken connection fails every request alike.
        let failures = [
            stream.as_ref().err(),
            record.as_ref().err(),
            stats.as_ref().err(),
            service.as_ref().err(),
            outputs.as_ref().err(),
        ];
        if let Some(e) = failures.into_iter().flatten().find(|e| is_transport(e)) {
            return Err(format!("connection to OBS lost: {}", describe(e)));
        }
        let mut status = ObsStatus {
            obs_version: self.obs_version.clone(),
            websocket_version: self.websocket_version.clone(),
            ..ObsStatus::default()
        };
        match stream {
            Ok(s) => {
                status.streaming = s.active;
                status.stream_reconnecting = s.reconnecting;
                status.stream_timecode = timecode(s.timecode.whole_milliseconds());
                status.dropped_frames = s.skipped_frames.into();
                status.total_frames = s.total_frames.into();
                let now = Instant::now();
                if s.active {
                    if let Some((bytes, at)) = self.last_bytes {
                        let dt = now.duration_since(at).as_secs_f64();
                        if s.bytes >= bytes && dt > 0.2 {
                            status.output_bitrate_kbps =
                                ((s.bytes - bytes) as f64 * 8.0 / 1000.0 / dt).round();
                        }
                    }
                    self.last_bytes = Some((s.bytes, now));
                } else {
                    self.last_bytes = None;
                }
            }
            Err(e) => debug!(error = %describe(&e), "OBS: no stream status"),
        }
        if let Ok(r) = record {
            status.recording = r.active;
        }
        if let Ok(st) = stats {
            status.lagged_frames = st.render_skipped_frames.into();
            status.skipped_frames = st.output_skipped_frames.into();
            status.cpu_usage = (st.cpu_usage * 10.0).round() / 10.0;
            status.active_fps = (st.active_fps * 10.0).round() / 10.0;
        }
        if let Ok(s) = service {
            let s = StreamService {
                kind: s.r#type,
                settings: s.settings,
            };
            status.stream_service = Some(s.view());
            status.service = Some(s);
        }
        if let Ok(list) = outputs {
            status.outputs = mark_controllable(
                list.into_iter()
                    .map(|o| ObsOutput {
                        name: o.name,
                        kind: o.kind,
                        active: o.active,
                        controllable: true,
                    })
                    .collect(),
            );
        }
        match scenes {
            Some(Ok(list)) => {
                let mut scenes = list.scenes;
                // obs-websocket lists the bottom scene first.
                scenes.sort_by_key(|s| std::cmp::Reverse(s.index));
                status.scenes = scenes.into_iter().map(|s| s.id.name).collect();
                status.current_scene = list.current_program_scene.map(|s| s.name);
            }
            Some(Err(obws::error::Error::DeserializeResponse(_))) => {
                // OBS before 30.1: scenes have no UUID, which obws requires.
                debug!("OBS scene list without UUIDs: reading it directly");
                self.legacy_scenes = true;
                self.legacy_scenes_into(&mut status).await;
            }
            Some(Err(e)) => {
                if is_transport(&e) {
                    return Err(format!("connection to OBS lost: {}", describe(&e)));
                }
                debug!(error = %describe(&e), "OBS: no scene list");
            }
            None => self.legacy_scenes_into(&mut status).await,
        }
        Ok(status)
    }

    async fn legacy_scenes_into(&mut self, status: &mut ObsStatus) {
        if self.legacy.is_none() {
            if self.legacy_retry_at.is_some_and(|at| Instant::now() < at) {
                return;
            }
            let t = &self.target;
            match LegacyClient::connect(&t.host, t.port, t.password.as_ref().map(|p| p.0.as_str()))
                .await
            {
                Ok(c) => self.legacy = Some(c),
                Err(e) => {
                    debug!(error = %e, "OBS: cannot open the scene-list connection");
                    self.legacy_retry_at = Some(Instant::now() + LEGACY_RETRY);
                    return;
                }
            }
        }
        let Some(client) = self.legacy.as_mut() else {
            return;
        };
        match client.scene_list().await {
            Ok(list) => {
                status.scenes = list.scenes;
                status.current_scene = list.current;
            }
            Err(e) => {
                debug!(error = %e, "OBS: scene list not read");
                self.legacy = None;
                self.legacy_retry_at = Some(Instant::now() + LEGACY_RETRY);
            }
        }
    }
}
