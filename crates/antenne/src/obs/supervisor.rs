//! The connection supervisor: one task keeps a connection to OBS,
//! reconnecting with backoff (1 s up to 30 s), waiting minutes after a
//! refused password, reconnecting at once when the settings change; while
//! connected it polls once a second (see [`super::poller`]). The state it
//! records is what [`Obs::state`] reads.

use std::sync::Arc;

use futures_util::StreamExt;
use obws::events::Event;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::legacy;
use super::poller::Poller;
use super::requests::{describe, request};
use super::{
    Obs, ObsState, Target, AUTH_RETRY, BACKOFF_MAX, BACKOFF_MIN, CONNECT_TIMEOUT, POLL_INTERVAL,
};

impl Obs {
    fn set_state(&self, state: ObsState) {
        let mut s = self.lock();
        if s.state != state {
            match &state {
                ObsState::Unreachable(e) => info!(error = %e, "OBS unreachable"),
                ObsState::AuthFailed(e) => warn!(error = %e, "OBS refused the password"),
                other => debug!(state = other.name(), "OBS connection"),
            }
        }
        if !matches!(state, ObsState::Connected) {
            s.client = None;
            s.status = None;
        }
        s.state = state;
    }

    pub(super) async fn supervise(self: Arc<Self>, shutdown: CancellationToken) {
        let mut rx = self.target.subscribe();
        let mut backoff = BACKOFF_MIN;
        // OBS older than obws supports: connect without its version check.
        let mut old_obs = false;
        loop {
            let target = rx.borrow_and_update().clone();
            if target.host.is_empty() {
                self.set_state(ObsState::NotConfigured);
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = rx.changed() => if r.is_err() { return },
                }
                backoff = BACKOFF_MIN;
                continue;
            }
            if !matches!(
                self.state(),
                ObsState::Unreachable(_) | ObsState::AuthFailed(_)
            ) {
                self.set_state(ObsState::Connecting);
            }
            let attempt = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = rx.changed() => {
                    if r.is_err() { return }
                    self.set_state(ObsState::Connecting);
                    backoff = BACKOFF_MIN;
                    old_obs = false;
                    continue;
                }
                r = connect(&target, &mut old_obs) => r,
            };
            let wait = match attempt {
                Ok(conn) => {
                    backoff = BACKOFF_MIN;
                    match self.run_connected(conn, &target, &mut rx, &shutdown).await {
                        End::Shutdown => return,
                        End::SettingsChanged => {
                            old_obs = false;
                            continue;
                        }
                        End::Lost(e) => {
                            self.record("obs_lost", format!("connection to OBS lost: {e}"), None);
                            self.set_state(ObsState::Unreachable(e));
                            BACKOFF_MIN
                        }
                    }
                }
                Err(ConnectFailure::Auth(e)) => {
                    self.set_state(ObsState::AuthFailed(format!(
                        "{e}. Check the password in OBS → Tools → WebSocket Server Settings; \
                         antenne retries every {} minutes or when the settings change",
                        AUTH_RETRY.as_secs() / 60
                    )));
                    AUTH_RETRY
                }
                Err(ConnectFailure::Other(e)) => {
                    self.set_state(ObsState::Unreachable(e));
                    let wait = backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    wait
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = rx.changed() => {
                    if r.is_err() { return }
                    self.set_state(ObsState::Connecting);
                    backoff = BACKOFF_MIN;
                    old_obs = false;
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn run_connected(
        &self,
        conn: Connection,
        target: &Target,
        rx: &mut watch::Receiver<Target>,
        shutdown: &CancellationToken,
    ) -> End {
        let client = Arc::new(conn.client);
        // Ends when obws's reader ends: OBS closed or the socket broke.
        let mut closed = match client.events() {
            Ok(events) => events,
            Err(e) => return End::Lost(describe(&e)),
        };
        let mut poller = Poller::new(
            target.clone(),
            conn.obs_version.clone(),
            conn.websocket_version.clone(),
        );
        info!(
            obs = %conn.obs_version,
            websocket = %conn.websocket_version,
            "connected to OBS"
        );
        self.record(
            "obs_connected",
            format!(
                "connected to OBS {} (obs-websocket {})",
                conn.obs_version, conn.websocket_version
            ),
            None,
        );
        // First poll before showing "connected", so readers see a status.
        let first = poller.poll(&client).await;
        match first {
            Ok(status) => {
                let mut s = self.lock();
                s.client = Some(client.clone());
                s.status = Some(status);
                s.state = ObsState::Connected;
            }
            Err(e) => return End::Lost(e),
        }
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    self.set_state(ObsState::Connecting);
                    return End::Shutdown;
                }
                r = rx.changed() => {
                    if r.is_err() {
                        return End::Shutdown;
                    }
                    if *rx.borrow() != *target {
                        self.set_state(ObsState::Connecting);
                        return End::SettingsChanged;
                    }
                }
                event = closed.next() => match event {
                    // No events are subscribed to: these only tell that
                    // the connection ended (requests would hang).
                    None | Some(Event::ServerStopping | Event::ServerStopped) => {
                        return End::Lost("OBS closed the connection".into());
                    }
                    Some(_) => continue,
                },
                _ = tick.tick() => {}
                _ = self.poke.notified() => {}
            }
            let polled = tokio::select! {
                _ = shutdown.cancelled() => {
                    self.set_state(ObsState::Connecting);
                    return End::Shutdown;
                }
                r = poller.poll(&client) => r,
            };
            match polled {
                Ok(status) => {
                    let mut s = self.lock();
                    if s.state == ObsState::Connected {
                        s.status = Some(status);
                    }
                }
                Err(e) => return End::Lost(e),
            }
        }
    }
}

/// Why the connected phase ended.
enum End {
    Shutdown,
    SettingsChanged,
    Lost(String),
}

enum ConnectFailure {
    /// OBS refused the password.
    Auth(String),
    Other(String),
}

struct Connection {
    client: obws::Client,
    obs_version: String,
    websocket_version: String,
}

async fn connect(target: &Target, old_obs: &mut bool) -> Result<Connection, ConnectFailure> {
    let first = connect_once(target, *old_obs).await;
    let client = match first {
        Err(
            obws::error::Error::ObsStudioVersion(..) | obws::error::Error::ObsWebsocketVersion(..),
        ) if !*old_obs => {
            *old_obs = true;
            connect_once(target, true).await
        }
        other => other,
    }
    .map_err(|e| classify(&e))?;
    let version = request(client.general().version())
        .await
        .map_err(|e| ConnectFailure::Other(e.to_string()))?;
    if *old_obs {
        warn!(
            obs = %version.obs_studio_version,
            websocket = %version.obs_web_socket_version,
            "OBS is older than 30.2: antenne controls it, but update OBS if something is missing"
        );
    }
    Ok(Connection {
        client,
        obs_version: version.obs_studio_version.to_string(),
        websocket_version: version.obs_web_socket_version.to_string(),
    })
}

async fn connect_once(
    target: &Target,
    skip_version_check: bool,
) -> obws::error::Result<obws::Client> {
    let config = obws::client::ConnectConfig {
        host: target.host.as_str(),
        port: target.port,
        password: target.password.as_ref().map(|p| p.0.as_str()),
        event_subscriptions: Some(obws::requests::EventSubscription::NONE),
        broadcast_capacity: obws::client::DEFAULT_BROADCAST_CAPACITY,
        connect_timeout: CONNECT_TIMEOUT,
        dangerous: skip_version_check.then_some(obws::client::DangerousConnectConfig {
            skip_studio_version_check: true,
            skip_websocket_version_check: true,
        }),
    };
    // The handshake itself has no time limit in obws.
    tokio::time::timeout(CONNECT_TIMEOUT, obws::Client::connect_with_config(config))
        .await
        .unwrap_or(Err(obws::error::Error::Timeout))
}

fn classify(e: &obws::error::Error) -> ConnectFailure {
    if let obws::error::Error::Handshake(obws::client::HandshakeError::ConnectionClosed(Some(d))) =
        e
    {
        let code = u16::from(d.code);
        if code == legacy::AUTHENTICATION_FAILED {
            let reason = if d.reason.is_empty() {
                "authentication failed".to_owned()
            } else {
                d.reason.clone()
            };
            return ConnectFailure::Auth(format!("OBS refused the password ({reason})"));
        }
        return ConnectFailure::Other(format!(
            "OBS closed the connection (code {code}: {})",
            d.reason
        ));
    }
    ConnectFailure::Other(describe(e))
}
