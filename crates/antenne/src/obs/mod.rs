//! OBS under antenne's control, through obs-websocket v5 ([`obws`]).
//!
//! One supervisor task ([`Obs::start`]) keeps a connection to OBS: it
//! reconnects with backoff (1 s up to 30 s), waits minutes after a refused
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

mod legacy;

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::history::History;
use crate::ingest::{Hubs, APP};
use crate::secret::{mask, StreamKey};
use crate::store::{Store, StoreError};

use self::legacy::LegacyClient;
use obws::events::Event;

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

/// A stream service of OBS (`GetStreamServiceSettings`): its type
/// (`rtmp_custom`, `rtmp_common`, …) and its settings, stream key included.
/// `Debug` masks the key.
#[derive(Clone, PartialEq)]
pub struct StreamService {
    pub kind: String,
    pub settings: Value,
}

impl StreamService {
    /// A custom RTMP server and key.
    pub fn custom(server: &str, key: &str) -> Self {
        StreamService {
            kind: "rtmp_custom".into(),
            settings: json!({ "server": server, "key": key, "use_auth": false }),
        }
    }

    pub fn server(&self) -> &str {
        self.settings["server"].as_str().unwrap_or_default()
    }

    /// The stream key, in clear.
    pub fn key(&self) -> &str {
        self.settings["key"].as_str().unwrap_or_default()
    }

    /// The platform of an `rtmp_common` service ("YouTube - RTMPS", …).
    pub fn service_name(&self) -> Option<&str> {
        self.settings["service"].as_str()
    }

    /// As the API shows it: key masked.
    pub fn view(&self) -> ServiceView {
        ServiceView {
            kind: self.kind.clone(),
            service: self.service_name().map(str::to_owned),
            server: self.server().to_owned(),
            key: mask(self.key()),
        }
    }

    fn to_json(&self) -> Value {
        json!({ "type": self.kind, "settings": self.settings })
    }

    fn from_json(v: &Value) -> Option<StreamService> {
        Some(StreamService {
            kind: v["type"].as_str()?.to_owned(),
            settings: v.get("settings")?.clone(),
        })
    }

    /// Same destination (type, server, key) as `other`.
    fn same_target(&self, other: &StreamService) -> bool {
        self.kind == other.kind
            && self.server().trim_end_matches('/') == other.server().trim_end_matches('/')
            && self.key() == other.key()
    }
}

impl fmt::Debug for StreamService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamService")
            .field("kind", &self.kind)
            .field("server", &self.server())
            .field("key", &mask(self.key()))
            .finish()
    }
}

/// A stream service as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceView {
    #[serde(rename = "type")]
    pub kind: String,
    /// `rtmp_common` only: the platform OBS picked.
    pub service: Option<String>,
    pub server: String,
    /// Masked.
    pub key: String,
}

/// One output of OBS (`GetOutputList`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ObsOutput {
    pub name: String,
    pub kind: String,
    pub active: bool,
    /// False when several outputs share the name (the multi-output plugin
    /// names all its outputs `multi-output`): OBS cannot be told which one.
    pub controllable: bool,
}

/// Sets `controllable` on each output: only names no other output has.
pub fn mark_controllable(mut outputs: Vec<ObsOutput>) -> Vec<ObsOutput> {
    let mut counts = std::collections::HashMap::<String, usize>::new();
    for o in &outputs {
        *counts.entry(o.name.clone()).or_default() += 1;
    }
    for o in &mut outputs {
        o.controllable = counts.get(&o.name) == Some(&1);
    }
    outputs
}

/// One output's status (`GetOutputStatus`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ObsOutputStatus {
    pub name: String,
    pub active: bool,
    pub reconnecting: bool,
    pub timecode: String,
    pub bytes: u64,
    pub skipped_frames: u64,
    pub total_frames: u64,
}

/// What the last poll found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ObsStatus {
    pub obs_version: String,
    pub websocket_version: String,
    /// The main stream output (OBS's "Start Streaming").
    pub streaming: bool,
    pub stream_reconnecting: bool,
    pub recording: bool,
    /// `HH:MM:SS.mmm` of the main stream.
    pub stream_timecode: String,
    /// Of the main stream, from the bytes OBS reports between two polls.
    pub output_bitrate_kbps: f64,
    /// Frames the main stream output dropped (network).
    pub dropped_frames: u64,
    pub total_frames: u64,
    /// Frames OBS failed to render in time (overloaded machine).
    pub lagged_frames: u64,
    /// Frames the encoders skipped (encoding overloaded).
    pub skipped_frames: u64,
    /// CPU usage of OBS, percent.
    pub cpu_usage: f64,
    pub active_fps: f64,
    pub current_scene: Option<String>,
    pub scenes: Vec<String>,
    pub stream_service: Option<ServiceView>,
    #[serde(skip)]
    pub outputs: Vec<ObsOutput>,
    #[serde(skip)]
    service: Option<StreamService>,
}

impl ObsStatus {
    /// The service OBS streams to, key in clear.
    pub fn service(&self) -> Option<&StreamService> {
        self.service.as_ref()
    }
}

/// Everything `GET /api/v1/obs` shows.
#[derive(Clone, Debug, Serialize)]
pub struct ObsView {
    pub state: &'static str,
    pub error: Option<String>,
    pub host: String,
    pub port: u16,
    pub password_set: bool,
    pub auto_stream: bool,
    pub status: Option<ObsStatus>,
    pub previous_service: Option<ServiceView>,
    pub antenne_service: AntenneServiceView,
}

/// Where "point OBS at antenne" sends OBS.
#[derive(Clone, Debug, Serialize)]
pub struct AntenneServiceView {
    pub server: String,
    /// Masked; null when antenne has no ingest key.
    pub key: Option<String>,
}

/// What "point OBS at antenne" did.
#[derive(Clone, Debug, Serialize)]
pub struct PointOutcome {
    pub server: String,
    /// OBS was streaming and was restarted on the new settings.
    pub restarted: bool,
    /// The settings it had are saved (they were not antenne's already).
    pub previous_saved: bool,
}

/// The host OBS should use to reach antenne's RTMP ingest: the
/// `public_host` setting when set, else the address of `--rtmp-listen`
/// unless it listens on every address (`0.0.0.0`, `::`), else `127.0.0.1`
/// (OBS on the same machine).
pub fn public_host(setting: Option<&str>, rtmp_listen: SocketAddr) -> String {
    if let Some(h) = setting.map(str::trim).filter(|h| !h.is_empty()) {
        return h.to_owned();
    }
    if rtmp_listen.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        rtmp_listen.ip().to_string()
    }
}

/// `rtmp://HOST:PORT/live`, the server URL OBS publishes to (IPv6
/// addresses in brackets).
pub fn rtmp_server_url(host: &str, port: u16) -> String {
    let host = match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => host.to_owned(),
    };
    format!("rtmp://{host}:{port}/{APP}")
}

/// Whether a host given for OBS looks like a host name or an address.
fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && (h.parse::<Ipv6Addr>().is_ok()
            || h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
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
        let store = self.store.clone();
        let setting =
            tokio::task::spawn_blocking(move || store.setting(SETTING_PUBLIC_HOST)).await??;
        let host = public_host(setting.as_deref(), self.rtmp_listen);
        let key = self.hubs.all().first().map(|h| h.key().clone());
        Ok((rtmp_server_url(&host, self.rtmp_listen.port()), key))
    }

    /// The stream service OBS had before antenne pointed it at itself.
    pub async fn previous_service(&self) -> Result<Option<StreamService>, ObsError> {
        let store = self.store.clone();
        let saved =
            tokio::task::spawn_blocking(move || store.setting(SETTING_PREVIOUS_SERVICE)).await??;
        Ok(saved
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
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
            .record("obs_settings", None, message, Some(actor));
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

    fn record(&self, kind: &str, message: String, actor: Option<&str>) {
        self.history.record(kind, None, message, actor);
    }

    /// OBS's "Start Streaming" (nothing if it is streaming already).
    pub async fn start_stream(&self, actor: Option<&str>) -> Result<(), ObsError> {
        let client = self.client()?;
        match request(client.streaming().start()).await {
            Err(ObsError::Refused(_)) if stream_active(&client).await? => {}
            r => r?,
        }
        self.record("obs_stream_started", "OBS started streaming".into(), actor);
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
        self.record("obs_stream_stopped", "OBS stopped streaming".into(), actor);
        self.poke.notify_one();
        Ok(())
    }

    /// Switches OBS's program scene.
    pub async fn set_scene(&self, name: &str, actor: Option<&str>) -> Result<(), ObsError> {
        let client = self.client()?;
        request(client.scenes().set_current_program_scene(name)).await?;
        self.record(
            "obs_scene",
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
            let store = self.store.clone();
            let json = current.to_json().to_string();
            tokio::task::spawn_blocking(move || store.set_setting(SETTING_PREVIOUS_SERVICE, &json))
                .await??;
        }
        let target = StreamService::custom(&server, key.expose());
        let restarted = self.change_service(&client, &target, restart).await?;
        self.record(
            "obs_pointed",
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
            "obs_restored",
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
        self.record("obs_output", format!("OBS output {name:?} {what}"), actor);
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

    /// OBS streams to antenne: its key is one of antenne's ingest keys, or
    /// its server is antenne's.
    fn points_at_antenne(&self, service: &StreamService, antenne_server: &str) -> bool {
        let key = service.key();
        (!key.is_empty() && self.hubs.all().iter().any(|h| h.key().matches(key)))
            || (service.kind == "rtmp_custom"
                && service.server().trim_end_matches('/') == antenne_server)
    }

    /// Sets the stream service. While OBS streams: refused unless
    /// `restart`, then stop, wait, change, start. Returns whether it
    /// restarted the stream. Nothing to do when OBS has that service
    /// already.
    async fn change_service(
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

    // === the supervisor ===

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

    async fn supervise(self: Arc<Self>, shutdown: CancellationToken) {
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
        let mut poller = Poller {
            target: target.clone(),
            obs_version: conn.obs_version.clone(),
            websocket_version: conn.websocket_version.clone(),
            last_bytes: None,
            legacy: None,
            legacy_scenes: false,
            legacy_retry_at: None,
        };
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

/// An obws error in words: what OBS answered (comment and status code) or
/// the chain of causes.
fn describe(e: &obws::error::Error) -> String {
    match e {
        obws::error::Error::Api { code, message } => {
            let code = format!("status {} {code:?}", u16::from(*code));
            match message.as_deref().filter(|m| !m.is_empty()) {
                Some(m) => format!("{m} ({code})"),
                None => code,
            }
        }
        _ => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                let more = cause.to_string();
                if !text.contains(&more) {
                    text.push_str(": ");
                    text.push_str(&more);
                }
                source = cause.source();
            }
            text
        }
    }
}

/// Whether the connection itself failed (rather than OBS refusing).
fn is_transport(e: &obws::error::Error) -> bool {
    matches!(
        e,
        obws::error::Error::Send(_)
            | obws::error::Error::ReceiveMessage(_)
            | obws::error::Error::Disconnected
            | obws::error::Error::Timeout
            | obws::error::Error::Connect(_)
    )
}

/// One request with a time limit; OBS's refusals become
/// [`ObsError::Refused`].
async fn request<T>(
    fut: impl std::future::Future<Output = obws::error::Result<T>>,
) -> Result<T, ObsError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
        Err(_) => Err(ObsError::Timeout),
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ObsError::Refused(describe(&e))),
    }
}

async fn stream_active(client: &obws::Client) -> Result<bool, ObsError> {
    Ok(request(client.streaming().status()).await?.active)
}

async fn service_settings(client: &obws::Client) -> Result<StreamService, ObsError> {
    let s = request(client.config().stream_service_settings::<Value>()).await?;
    Ok(StreamService {
        kind: s.r#type,
        settings: s.settings,
    })
}

async fn output_list(client: &obws::Client) -> Result<Vec<ObsOutput>, ObsError> {
    let list = request(client.outputs().list()).await?;
    Ok(mark_controllable(
        list.into_iter()
            .map(|o| ObsOutput {
                name: o.name,
                kind: o.kind,
                active: o.active,
                controllable: true,
            })
            .collect(),
    ))
}

/// `HH:MM:SS.mmm`.
fn timecode(ms: i128) -> String {
    let ms = ms.max(0);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Reads everything the status shows, once a second.
struct Poller {
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
    /// One round. `Err` when the connection is gone.
    async fn poll(&mut self, client: &obws::Client) -> Result<ObsStatus, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn output(name: &str) -> ObsOutput {
        ObsOutput {
            name: name.into(),
            kind: "rtmp_output".into(),
            active: false,
            controllable: true,
        }
    }

    #[test]
    fn outputs_sharing_a_name_are_not_controllable() {
        let list = mark_controllable(vec![
            output("simple_stream"),
            output("multi-output"),
            output("adv_file_output"),
            output("multi-output"),
        ]);
        let flags: Vec<(&str, bool)> = list
            .iter()
            .map(|o| (o.name.as_str(), o.controllable))
            .collect();
        assert_eq!(
            flags,
            [
                ("simple_stream", true),
                ("multi-output", false),
                ("adv_file_output", true),
                ("multi-output", false),
            ]
        );
    }

    #[test]
    fn public_host_prefers_the_setting_then_the_listen_address() {
        let any: SocketAddr = "0.0.0.0:1935".parse().unwrap();
        let lan: SocketAddr = "192.168.1.5:1935".parse().unwrap();
        let any6: SocketAddr = "[::]:1935".parse().unwrap();
        assert_eq!(public_host(Some("obs.example.org"), any), "obs.example.org");
        assert_eq!(public_host(Some("  "), lan), "192.168.1.5");
        assert_eq!(public_host(None, lan), "192.168.1.5");
        assert_eq!(public_host(None, any), "127.0.0.1");
        assert_eq!(public_host(None, any6), "127.0.0.1");
        assert_eq!(
            rtmp_server_url("192.168.1.5", 1935),
            "rtmp://192.168.1.5:1935/live"
        );
        assert_eq!(rtmp_server_url("::1", 1936), "rtmp://[::1]:1936/live");
    }

    #[test]
    fn timecodes_and_masked_services() {
        assert_eq!(timecode(3_723_004), "01:02:03.004");
        assert_eq!(timecode(-5), "00:00:00.000");
        let s = StreamService::custom("rtmp://a/live", "live_1234567890abcdef9f");
        assert_eq!(s.view().key, "live_12…9f");
        assert!(!format!("{s:?}").contains("1234567890"));
        let back = StreamService::from_json(&s.to_json()).expect("round trip");
        assert!(back.same_target(&s));
    }

    #[test]
    fn hosts_are_checked() {
        assert!(valid_host("127.0.0.1"));
        assert!(valid_host("obs-pc.local"));
        assert!(valid_host("::1"));
        assert!(!valid_host("ws://x"));
        assert!(!valid_host("x:4455"));
        assert!(!valid_host("a b"));
    }
}
