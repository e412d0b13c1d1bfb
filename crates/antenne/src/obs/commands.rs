//! Commands to OBS through the supervisor's connection: start and stop the
//! stream, switch scenes, point OBS's stream settings at antenne and back,
//! and control its outputs. Each command answers what OBS answered; the
//! ones that change the stream settings are serialised by `service_ops`.

use crate::history::EventKind;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::info;

use super::model::{ObsOutput, ObsOutputStatus, PointOutcome, ServiceView, StreamService};
use super::requests::{describe, output_list, request, service_settings, stream_active, timecode};
use super::{Obs, ObsError, REQUEST_TIMEOUT, SETTING_PREVIOUS_SERVICE, STOP_TIMEOUT};

impl Obs {
    /// OBS's "Start Streaming" (nothing if it is streaming already).
    pub async fn start_stream(&self, actor: Option<&str>) -> Result<(), ObsError> {
        let client = self.client()?;
        match request(client.streaming().start()).await {
            Err(ObsError::Refused(_)) if stream_active(&client).await? => {}
            r => r?,
        }
        self.record(
            EventKind::ObsStreamStarted,
            "OBS started streaming".into(),
            actor,
        );
        self.poke.notify_one();
        Ok(())
    }

    /// OBS's "Stop Streaming" (nothing if it is not streaming).
    pub async fn stop_stream(&self, actor: Option<&str>) -> Result<(), ObsError> {
        let client = self.client()?;
        match request(client.streaming().stop()).await {
            Err(ObsError::Refused(_)) if !stream_active(&client).await? => {}
            r => r?,
        }
        self.record(
            EventKind::ObsStreamStopped,
            "OBS stopped streaming".into(),
            actor,
        );
        self.poke.notify_one();
        Ok(())
    }

    /// Switches OBS's program scene.
    pub async fn set_scene(&self, name: &str, actor: Option<&str>) -> Result<(), ObsError> {
        let client = self.client()?;
        request(client.scenes().set_current_program_scene(name)).await?;
        self.record(
            EventKind::ObsScene,
            format!("OBS switched to scene {name:?}"),
            actor,
        );
        self.poke.notify_one();
        Ok(())
    }

    /// Points OBS's stream settings at antenne's ingest (custom server
    /// `rtmp://<public host>:<port>/live`, the first ingest key), saving
    /// what OBS had unless it pointed at antenne already. While OBS
    /// streams: [`ObsError::Streaming`], unless `restart` (then the stream
    /// is stopped, changed and started again).
    pub async fn point_to_antenne(
        &self,
        restart: bool,
        actor: Option<&str>,
    ) -> Result<PointOutcome, ObsError> {
        let _op = self.service_ops.lock().await;
        let client = self.client()?;
        let (server, key) = self.antenne_service().await?;
        let key = key.ok_or(ObsError::NoIngestKey)?;
        let current = service_settings(&client).await?;
        let previous_saved = !self.points_at_antenne(&current, &server);
        if previous_saved {
            let json = current.to_json().to_string();
            self.store
                .off_runtime(move |s| s.set_setting(SETTING_PREVIOUS_SERVICE, &json))
                .await?;
        }
        let target = StreamService::custom(&server, key.expose());
        let restarted = self.change_service(&client, &target, restart).await?;
        self.record(
            EventKind::ObsPointed,
            format!(
                "OBS now streams to antenne ({server}, key {}){}",
                key.masked(),
                if restarted { ", stream restarted" } else { "" }
            ),
            actor,
        );
        self.poke.notify_one();
        Ok(PointOutcome {
            server,
            restarted,
            previous_saved,
        })
    }

    /// Puts back the stream settings OBS had before
    /// [`Obs::point_to_antenne`]. Same rule while streaming.
    pub async fn restore_previous_service(
        &self,
        restart: bool,
        actor: Option<&str>,
    ) -> Result<ServiceView, ObsError> {
        let _op = self.service_ops.lock().await;
        let client = self.client()?;
        let previous = self
            .previous_service()
            .await?
            .ok_or(ObsError::NoPreviousService)?;
        let restarted = self.change_service(&client, &previous, restart).await?;
        let view = previous.view();
        self.record(
            EventKind::ObsRestored,
            format!(
                "OBS stream settings restored ({} {}){}",
                view.kind,
                view.service.as_deref().unwrap_or(&view.server),
                if restarted { ", stream restarted" } else { "" }
            ),
            actor,
        );
        self.poke.notify_one();
        Ok(view)
    }

    /// The outputs of OBS, asked now.
    pub async fn outputs(&self) -> Result<Vec<ObsOutput>, ObsError> {
        let client = self.client()?;
        output_list(&client).await
    }

    async fn controllable_output(&self, name: &str) -> Result<Arc<obws::Client>, ObsError> {
        let client = self.client()?;
        let count = output_list(&client)
            .await?
            .iter()
            .filter(|o| o.name == name)
            .count();
        match count {
            0 => Err(ObsError::NoSuchOutput(name.to_owned())),
            1 => Ok(client),
            count => Err(ObsError::NotControllable {
                name: name.to_owned(),
                count,
            }),
        }
    }

    /// Starts (`on`) or stops the output `name` (nothing if it is in that
    /// state already). Refused for names several outputs share.
    pub async fn set_output(&self, name: &str, on: bool) -> Result<(), ObsError> {
        self.set_output_as(name, on, None).await
    }

    /// [`Obs::set_output`], recording who asked.
    pub async fn set_output_as(
        &self,
        name: &str,
        on: bool,
        actor: Option<&str>,
    ) -> Result<(), ObsError> {
        let client = self.controllable_output(name).await?;
        let active = request(client.outputs().status(name)).await?.active;
        if active != on {
            if on {
                request(client.outputs().start(name)).await?;
            } else {
                request(client.outputs().stop(name)).await?;
            }
        }
        let what = if on { "started" } else { "stopped" };
        self.record(
            EventKind::ObsOutput,
            format!("OBS output {name:?} {what}"),
            actor,
        );
        self.poke.notify_one();
        Ok(())
    }

    /// The status of the output `name`, asked now. Refused for names
    /// several outputs share.
    pub async fn output_status(&self, name: &str) -> Result<ObsOutputStatus, ObsError> {
        let client = self.controllable_output(name).await?;
        let s = request(client.outputs().status(name)).await?;
        Ok(ObsOutputStatus {
            name: name.to_owned(),
            active: s.active,
            reconnecting: s.reconnecting,
            timecode: timecode(s.timecode.whole_milliseconds()),
            bytes: s.bytes,
            skipped_frames: s.skipped_frames.into(),
            total_frames: s.total_frames.into(),
        })
    }

    /// OBS streams to antenne: its key is one of antenne's ingest keys, or
    /// its server is antenne's.
    pub(super) fn points_at_antenne(&self, service: &StreamService, antenne_server: &str) -> bool {
        let key = service.key();
        (!key.is_empty() && self.hubs.all().iter().any(|h| h.key().matches(key)))
            || (service.kind == "rtmp_custom"
                && service.server().trim_end_matches('/') == antenne_server)
    }

    /// Sets the stream service. While OBS streams: refused unless
    /// `restart`, then stop, wait, change, start. Returns whether it
    /// restarted the stream. Nothing to do when OBS has that service
    /// already.
    pub(super) async fn change_service(
        &self,
        client: &obws::Client,
        target: &StreamService,
        restart: bool,
    ) -> Result<bool, ObsError> {
        let current = service_settings(client).await?;
        if current.same_target(target) {
            return Ok(false);
        }
        let live = stream_active(client).await?;
        if live && !restart {
            return Err(ObsError::Streaming);
        }
        if live {
            info!("OBS: stopping the stream to change its settings");
            request(client.streaming().stop()).await?;
            let deadline = Instant::now() + STOP_TIMEOUT;
            while stream_active(client).await? {
                if Instant::now() > deadline {
                    return Err(ObsError::Refused(format!(
                        "the stream did not stop within {} s",
                        STOP_TIMEOUT.as_secs()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        let set = tokio::time::timeout(
            REQUEST_TIMEOUT,
            client
                .config()
                .set_stream_service_settings(&target.kind, &target.settings),
        )
        .await;
        match set {
            Err(_) => return Err(ObsError::Timeout),
            Ok(Err(obws::error::Error::Api {
                code: obws::responses::StatusCode::OutputRunning,
                ..
            })) => return Err(ObsError::Streaming),
            Ok(Err(e)) => return Err(ObsError::Refused(describe(&e))),
            Ok(Ok(())) => {}
        }
        if live {
            request(client.streaming().start()).await?;
        }
        Ok(live)
    }
}
