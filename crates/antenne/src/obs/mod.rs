//! OBS under antenne's control, through obs-websocket v5 ([`obws`]).
//!
//! One supervisor task ([`Obs::start`]) keeps a connection to OBS: it
//! reconnects with backoff (1 s up to 30 s, ±20 % jitter: crate::backoff), waits minutes after a refused
//! password, and reconnects at once when the settings change. While
//! connected it polls OBS every second (stream, recording, stats, scenes,
//! stream service, outputs) and keeps the last answers, which the API and
//! the rest of antenne read without waiting. Commands (start, stop, scene,
//! "point OBS at antenne", outputs) go through the same connection.
//!
//! Nothing in the relay waits on this module: OBS absent, slow or broken
//! only shows here.
//!
//! The obs-websocket password and the stream keys OBS holds are secrets:
//! never logged, never shown in clear by the API (keys are masked, the
//! password is only `password_set`).
//!
//! Layout: this file holds the settings, the states and [`Obs`] with its
//! readers and settings; [`model`] the data and API views; [`host`] the
//! host-name check and where OBS reaches antenne; `commands` and `direct`
//! what antenne asks of OBS (direct mode and auto-stream in the latter);
//! `supervisor` the connection task; `poller` the once-a-second reads;
//! `requests` the obws calls with their time limit; `legacy` the scene
//! list of OBS before 30.1.

mod commands;
mod direct;
pub mod host;
mod legacy;
pub mod model;
mod poller;
mod requests;
mod supervisor;

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::history::{EventKind, History};
use crate::ingest::Hubs;
use crate::secret::StreamKey;
use crate::store::{Store, StoreError};

pub use self::host::{public_host, rtmp_server_url, valid_host};
pub use self::model::{
    mark_controllable, AntenneServiceView, ObsOutput, ObsOutputStatus, ObsStatus, ObsView,
    PointOutcome, ServiceView, StreamService,
};

/// Setting keys in the store.
pub const SETTING_HOST: &str = "obs_host";
pub const SETTING_PORT: &str = "obs_port";
pub const SETTING_PASSWORD: &str = "obs_password";
pub const SETTING_AUTO_STREAM: &str = "obs_auto_stream";
pub const SETTING_PREVIOUS_SERVICE: &str = "obs_previous_service";
/// The setting the API's `/settings` route keeps the public host in.
pub use crate::store::SETTING_PUBLIC_HOST;

/// obs-websocket's default port.
pub const DEFAULT_PORT: u16 = 4455;

/// Between two polls while connected.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Connect and identify, at most.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// One request to OBS, at most.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnection backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// After OBS refused the password: retried this rarely (or when the
/// settings change), so a wrong password does not flood OBS's log.
const AUTH_RETRY: Duration = Duration::from_secs(300);
/// After the scene-list connection (OBS < 30.1) failed: retried this late.
const LEGACY_RETRY: Duration = Duration::from_secs(30);
/// How long OBS may take to stop its stream before a restart gives up.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// What went wrong with an OBS command.
#[derive(Debug, thiserror::Error)]
pub enum ObsError {
    #[error("OBS is not connected ({0})")]
    NotConnected(&'static str),
    #[error(
        "OBS is streaming and refuses to change its stream settings while live: \
         send {{\"restart\": true}} to stop the stream, change and start it again"
    )]
    Streaming,
    #[error("OBS answered: {0}")]
    Refused(String),
    #[error("OBS did not answer within {} s", REQUEST_TIMEOUT.as_secs())]
    Timeout,
    #[error("OBS has no output named {0:?}")]
    NoSuchOutput(String),
    #[error(
        "{count} outputs of OBS are named {name:?} (a plugin's outputs share this name): \
         antenne cannot tell them apart to control one"
    )]
    NotControllable { name: String, count: usize },
    #[error("no previous stream service is saved: antenne has not changed OBS's stream settings")]
    NoPreviousService,
    #[error("antenne has no ingest key to give OBS")]
    NoIngestKey,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<tokio::task::JoinError> for ObsError {
    fn from(e: tokio::task::JoinError) -> Self {
        ObsError::Internal(e.to_string())
    }
}

/// Where the connection to OBS stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObsState {
    /// No OBS host set.
    NotConfigured,
    /// First attempt after a start or a settings change.
    Connecting,
    Connected,
    /// OBS refused the password; retried every few minutes or when the
    /// settings change.
    AuthFailed(String),
    /// No connection (OBS closed, not listening, network); retried with
    /// backoff.
    Unreachable(String),
}

impl ObsState {
    /// The API's name for it.
    pub fn name(&self) -> &'static str {
        match self {
            ObsState::NotConfigured => "not_configured",
            ObsState::Connecting => "connecting",
            ObsState::Connected => "connected",
            ObsState::AuthFailed(_) => "auth_failed",
            ObsState::Unreachable(_) => "unreachable",
        }
    }

    /// The reason, for the failed states.
    pub fn error(&self) -> Option<&str> {
        match self {
            ObsState::AuthFailed(e) | ObsState::Unreachable(e) => Some(e),
            _ => None,
        }
    }
}

/// The obs-websocket password: never printed.
#[derive(Clone, PartialEq, Eq, Default)]
struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(…)")
    }
}

/// How to reach OBS. A change makes the supervisor reconnect.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
struct Target {
    host: String,
    port: u16,
    password: Option<Password>,
}

/// The OBS settings as stored.
#[derive(Clone, Debug, Default)]
struct Settings {
    target: Target,
    auto_stream: bool,
}

/// A change of the OBS settings (`PUT /api/v1/obs`).
#[derive(Clone, Default)]
pub struct SettingsUpdate {
    /// Empty: OBS control off.
    pub host: String,
    /// Default [`DEFAULT_PORT`].
    pub port: Option<u16>,
    /// `None` keeps the password; `Some("")` removes it.
    pub password: Option<String>,
    /// `None` keeps the flag.
    pub auto_stream: Option<bool>,
}

impl fmt::Debug for SettingsUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SettingsUpdate")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("auto_stream", &self.auto_stream)
            .finish()
    }
}
/// OBS under antenne's control. Create with [`Obs::new`], then
/// [`Obs::start`] the supervisor.
pub struct Obs {
    store: Arc<Store>,
    history: History,
    hubs: Hubs,
    rtmp_listen: SocketAddr,
    runtime: tokio::runtime::Handle,
    shared: Mutex<Shared>,
    target: watch::Sender<Target>,
    /// Asks the supervisor to poll now (after a command).
    poke: Notify,
    /// Serialises the commands that change OBS's stream settings (each is
    /// a sequence: read, maybe stop, change, maybe start). An async mutex:
    /// it is held across the awaits of that sequence on purpose.
    service_ops: tokio::sync::Mutex<()>,
}

struct Shared {
    settings: Settings,
    state: ObsState,
    client: Option<Arc<obws::Client>>,
    status: Option<ObsStatus>,
}

impl fmt::Debug for Obs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("Obs")
            .field("host", &s.settings.target.host)
            .field("port", &s.settings.target.port)
            .field("state", &s.state)
            .finish()
    }
}

impl Obs {
    /// Reads the OBS settings from the store. Must be called within the
    /// tokio runtime (it keeps a handle to spawn automation tasks from
    /// synchronous callers).
    pub fn new(
        store: Arc<Store>,
        history: History,
        hubs: Hubs,
        rtmp_listen: SocketAddr,
    ) -> Result<Arc<Obs>, StoreError> {
        let host = store.setting(SETTING_HOST)?.unwrap_or_default();
        let port = store
            .setting(SETTING_PORT)?
            .and_then(|p| p.parse().ok())
            .unwrap_or(DEFAULT_PORT);
        let password = store
            .setting(SETTING_PASSWORD)?
            .filter(|p| !p.is_empty())
            .map(Password);
        let auto_stream = store.setting(SETTING_AUTO_STREAM)?.as_deref() == Some("true");
        let target = Target {
            host,
            port,
            password,
        };
        let state = if target.host.is_empty() {
            ObsState::NotConfigured
        } else {
            ObsState::Connecting
        };
        Ok(Arc::new(Obs {
            store,
            history,
            hubs,
            rtmp_listen,
            runtime: tokio::runtime::Handle::current(),
            shared: Mutex::new(Shared {
                settings: Settings {
                    target: target.clone(),
                    auto_stream,
                },
                state,
                client: None,
                status: None,
            }),
            target: watch::Sender::new(target),
            poke: Notify::new(),
            service_ops: tokio::sync::Mutex::new(()),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the supervisor; it ends when `shutdown` is cancelled.
    pub fn start(self: &Arc<Self>, shutdown: CancellationToken) -> JoinHandle<()> {
        let me = self.clone();
        self.runtime
            .spawn(async move { me.supervise(shutdown).await })
    }

    // === readers (last poll, never wait) ===

    /// The connection state.
    pub fn state(&self) -> ObsState {
        self.lock().state.clone()
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.lock().state, ObsState::Connected)
    }

    /// What the last poll found; `None` while not connected.
    pub fn status(&self) -> Option<ObsStatus> {
        self.lock().status.clone()
    }

    /// Whether OBS's main stream is live, from the last poll; `None` while
    /// not connected.
    pub fn main_stream_active(&self) -> Option<bool> {
        self.lock().status.as_ref().map(|s| s.streaming)
    }

    /// Whether the output `name` is active, from the last poll; `None`
    /// while not connected or when OBS has no such output. With several
    /// outputs of that name: whether any is active.
    pub fn output_active(&self, name: &str) -> Option<bool> {
        let s = self.lock();
        let outputs = &s.status.as_ref()?.outputs;
        let mut found = outputs.iter().filter(|o| o.name == name).peekable();
        found.peek()?;
        Some(found.any(|o| o.active))
    }

    /// The outputs seen by the last poll.
    pub fn last_outputs(&self) -> Vec<ObsOutput> {
        self.lock()
            .status
            .as_ref()
            .map(|s| s.outputs.clone())
            .unwrap_or_default()
    }

    /// Whether OBS should follow the destinations (see
    /// [`Obs::on_destinations_changed`]).
    pub fn auto_stream(&self) -> bool {
        self.lock().settings.auto_stream
    }

    /// The server URL and key OBS gets from "point OBS at antenne": the
    /// public host (see [`public_host`]) and the first ingest key.
    pub async fn antenne_service(&self) -> Result<(String, Option<StreamKey>), ObsError> {
        let setting = self
            .store
            .off_runtime(|s| s.setting(SETTING_PUBLIC_HOST))
            .await?;
        let host = public_host(setting.as_deref(), self.rtmp_listen);
        let key = self.hubs.all().first().map(|h| h.key().clone());
        Ok((rtmp_server_url(&host, self.rtmp_listen.port()), key))
    }

    /// The stream service OBS had before antenne pointed it at itself.
    pub async fn previous_service(&self) -> Result<Option<StreamService>, ObsError> {
        let saved = self
            .store
            .off_runtime(|s| s.setting(SETTING_PREVIOUS_SERVICE))
            .await?;
        Ok(saved
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| StreamService::from_json(&v)))
    }

    /// Everything the API shows.
    pub async fn view(&self) -> Result<ObsView, ObsError> {
        let (server, key) = self.antenne_service().await?;
        let previous = self.previous_service().await?;
        let s = self.lock();
        Ok(ObsView {
            state: s.state.name(),
            error: s.state.error().map(str::to_owned),
            host: s.settings.target.host.clone(),
            port: s.settings.target.port,
            password_set: s.settings.target.password.is_some(),
            auto_stream: s.settings.auto_stream,
            status: s.status.clone(),
            previous_service: previous.map(|p| p.view()),
            antenne_service: AntenneServiceView {
                server,
                key: key.map(|k| k.masked()),
            },
        })
    }

    // === settings ===

    /// Validates, saves and applies new settings; reconnects at once when
    /// the host, port or password changed.
    pub async fn configure(&self, update: SettingsUpdate, actor: &str) -> Result<(), ObsError> {
        let host = update.host.trim().to_owned();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .map(str::to_owned)
            .unwrap_or(host);
        if !host.is_empty() && !valid_host(&host) {
            return Err(ObsError::Invalid(
                "host must be a host name or IP address (no ws://, no port, no path)".into(),
            ));
        }
        let port = update.port.unwrap_or(DEFAULT_PORT);
        if port == 0 {
            return Err(ObsError::Invalid("port must be 1 to 65535".into()));
        }
        if let Some(p) = &update.password {
            if p.chars().count() > 256 || p.chars().any(char::is_control) {
                return Err(ObsError::Invalid(
                    "password must be at most 256 characters, without control characters".into(),
                ));
            }
        }
        let store = self.store.clone();
        let (h, pw, auto) = (host.clone(), update.password.clone(), update.auto_stream);
        tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            store.set_setting(SETTING_HOST, &h)?;
            store.set_setting(SETTING_PORT, &port.to_string())?;
            if let Some(pw) = &pw {
                store.set_setting(SETTING_PASSWORD, pw)?;
            }
            if let Some(a) = auto {
                store.set_setting(SETTING_AUTO_STREAM, if a { "true" } else { "false" })?;
            }
            Ok(())
        })
        .await??;
        let (target, changed) = {
            let mut s = self.lock();
            let t = &mut s.settings.target;
            t.host = host.clone();
            t.port = port;
            if let Some(pw) = update.password {
                t.password = (!pw.is_empty()).then_some(Password(pw));
            }
            if let Some(a) = update.auto_stream {
                s.settings.auto_stream = a;
            }
            let target = s.settings.target.clone();
            let changed = *self.target.borrow() != target;
            if changed {
                // Before the supervisor hears of it, so that its next
                // state is not overwritten.
                s.state = if host.is_empty() {
                    ObsState::NotConfigured
                } else {
                    ObsState::Connecting
                };
                s.status = None;
                s.client = None;
            }
            (target, changed)
        };
        if changed {
            self.target.send_replace(target);
        }
        let auto = if self.auto_stream() { "on" } else { "off" };
        let message = if host.is_empty() {
            "OBS control switched off".to_owned()
        } else {
            format!("OBS control set to {host}:{port} (auto-stream {auto})")
        };
        self.history
            .record(EventKind::ObsSettings, None, message, Some(actor));
        Ok(())
    }

    // === commands ===

    fn client(&self) -> Result<Arc<obws::Client>, ObsError> {
        let s = self.lock();
        match (&s.client, &s.state) {
            (Some(c), ObsState::Connected) => Ok(c.clone()),
            (_, state) => Err(ObsError::NotConnected(state.name())),
        }
    }

    fn record(&self, kind: EventKind, message: String, actor: Option<&str>) {
        self.history.record(kind, None, message, actor);
    }
}
