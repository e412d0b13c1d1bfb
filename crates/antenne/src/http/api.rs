//! The REST API (JSON) under `/api/v1`. Handlers talk to [`Destinations`]
//! and the hubs, never to protocol types. Every error answers
//! `{"error": "…"}` with a status that says whose fault it is.
//!
//! Stream keys are masked in every answer unless `?reveal=keys` is asked.

use std::time::SystemTime;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};
use crate::auth::Identity;
use crate::destinations::{DestinationError, DestinationInput, DestinationView, Destinations};
use crate::hub::{Hub, QueueLimits};
use crate::output::OutputState;
use crate::secret::StreamKey;
use crate::store::{StoredIngestKey, SETTING_PUBLIC_HOST};

/// The OpenAPI document of this API, kept beside the code it describes.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/runtime", get(runtime))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/ingest", get(ingest))
        .route(
            "/api/v1/ingest-keys",
            get(list_ingest_keys).post(add_ingest_key),
        )
        .route("/api/v1/ingest-keys/{id}", delete(delete_ingest_key))
        .route("/api/v1/destinations", get(list).post(create))
        .route(
            "/api/v1/destinations/{id}",
            get(get_one).patch(update).delete(remove),
        )
        .route("/api/v1/settings", get(settings).put(put_settings))
        .route("/api/v1/events", get(events))
        .route("/api/v1/presets", get(presets))
}

impl From<DestinationError> for ApiError {
    fn from(e: DestinationError) -> Self {
        match e {
            DestinationError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
            DestinationError::ObsMainBusy(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            DestinationError::Store(s) => s.into(),
            _ => ApiError::bad_request(e.to_string()),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct RevealQuery {
    reveal: Option<String>,
}

impl RevealQuery {
    fn keys(&self) -> bool {
        self.reveal
            .as_deref()
            .is_some_and(|r| r.split(',').any(|x| x == "keys"))
    }
}

fn show_key(key: &StreamKey, reveal: bool) -> String {
    if reveal {
        key.expose().to_owned()
    } else {
        key.masked()
    }
}

/// An RFC 3339 time from seconds since the epoch (as the store keeps them).
pub(crate) fn unix_time(secs: i64) -> String {
    time(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64))
}

pub(crate) fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

pub(crate) fn destination_json(v: &DestinationView, reveal: bool) -> Value {
    let d = &v.dest;
    let state = v.stats.state();
    let mut status = json!({
        "state": state.name(),
        "last_error": v.stats.last_error(),
        "bytes_sent": v.stats.bytes.total(),
        "bitrate_kbps": 0.0,
        "reconnects": v.stats.reconnects(),
        "dropped_frames": v.stats.dropped(),
        "connected_since": Value::Null,
        "uptime_seconds": Value::Null,
    });
    match &state {
        OutputState::Live { since } => {
            status["connected_since"] = json!(time(*since));
            status["uptime_seconds"] = json!(since.elapsed().map(|d| d.as_secs()).unwrap_or(0));
            status["bitrate_kbps"] = json!((v.stats.bytes.per_second() * 8.0 / 1000.0).round());
        }
        OutputState::Connecting { attempt } => status["attempt"] = json!(attempt),
        OutputState::Retrying {
            attempt,
            next_try,
            error,
        } => {
            status["attempt"] = json!(attempt);
            status["next_retry_at"] = json!(time(*next_try));
            status["error"] = json!(error);
        }
        OutputState::Rejected { next_try, message } => {
            status["next_retry_at"] = json!(time(*next_try));
            status["error"] = json!(message);
        }
        OutputState::Disabled | OutputState::Idle => {}
    }
    if d.via_obs.is_some() && d.enabled {
        // Streamed by OBS: its state is OBS's.
        status["state"] = json!(match v.obs_active {
            Some(true) => "live",
            Some(false) => "connecting",
            None => "idle",
        });
        if v.obs_active.is_none() {
            status["error"] = json!("OBS is not connected");
        }
    }
    json!({
        "id": d.id,
        "name": d.name,
        "platform": d.platform,
        "url": d.url,
        "key": show_key(&d.key, reveal),
        "enabled": d.enabled,
        "ingest": show_key(&d.ingest, reveal),
        "via_obs": d.via_obs,
        "status": status,
    })
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// What the process holds right now: live tokio tasks, open file
/// descriptors, threads and resident memory. The soak run
/// (`bench/soak.py`) checks they come back to their starting level.
async fn runtime() -> Json<Value> {
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let open_fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).ok();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    Json(json!({
        "tasks": tasks,
        "open_fds": open_fds,
        "threads": field("Threads:"),
        "rss_kib": field("VmRSS:"),
        "preview_viewers": crate::preview::viewers(),
    }))
}

/// The ingests as the API shows them.
pub(crate) fn ingests_json(destinations: &Destinations, reveal: bool) -> Value {
    let ingests: Vec<Value> = destinations
        .hubs()
        .all()
        .iter()
        .map(|hub| {
            let s = hub.snapshot();
            json!({
                "id": ingest_id(hub.key().expose()),
                "key": show_key(hub.key(), reveal),
                "live": s.live,
                "since": s.since.map(time),
                "publisher": s.publisher.map(|a| a.to_string()),
                "video_codec": s.video_codec,
                "audio_codec": s.audio_codec,
                "width": s.width,
                "height": s.height,
                "frame_rate": s.frame_rate.map(|f| (f * 100.0).round() / 100.0),
                "bitrate_kbps": s.bitrate_kbps.round(),
                "destinations_attached": s.destinations_attached,
            })
        })
        .collect();
    json!({ "ingests": ingests })
}

/// A stable id for an ingest key that does not reveal it (for URLs).
pub(crate) fn ingest_id(key: &str) -> String {
    Sha256::digest(key.as_bytes())[..5]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn openapi() -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI_JSON,
    )
}

async fn ingest(State(st): State<AppState>, Query(q): Query<RevealQuery>) -> Json<Value> {
    Json(ingests_json(&st.destinations, q.keys()))
}

async fn list_ingest_keys(State(st): State<AppState>, Query(q): Query<RevealQuery>) -> Json<Value> {
    let reveal = q.keys();
    Json(Value::Array(
        st.destinations
            .hubs()
            .all()
            .iter()
            .map(|h| {
                json!({
                    "id": ingest_id(h.key().expose()),
                    "key": show_key(h.key(), reveal),
                    "live": h.is_live(),
                })
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IngestKeyBody {
    key: Option<String>,
    #[serde(default)]
    name: String,
}

async fn add_ingest_key(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    body: Result<Json<IngestKeyBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if st.ingest_keys_fixed {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "ingest keys are set by --ingest-key / ANTENNE_INGEST_KEY",
        ));
    }
    let Json(body) = body?;
    let key = body
        .key
        .map(|k| k.trim().to_owned())
        .unwrap_or_else(crate::ingest_keys::generate);
    crate::ingest_keys::validate(&key).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if st.destinations.hubs().find(&key).is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "this ingest key exists already",
        ));
    }
    let store = st.destinations.store().clone();
    let stored = StoredIngestKey {
        key: key.clone(),
        name: body.name,
    };
    tokio::task::spawn_blocking(move || store.add_ingest_key(&stored)).await??;
    let key = StreamKey::new(key);
    st.destinations
        .hubs()
        .add(Hub::new(key.clone(), QueueLimits::default()));
    st.destinations.history().record(
        "ingest_key_added",
        None,
        format!("ingest key {key} added"),
        Some(&who.actor()),
    );
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": ingest_id(key.expose()), "key": key.expose(), "live": false })),
    ))
}

async fn delete_ingest_key(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if st.ingest_keys_fixed {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "ingest keys are set by --ingest-key / ANTENNE_INGEST_KEY",
        ));
    }
    let hubs = st.destinations.hubs().all();
    let Some(hub) = hubs.iter().find(|h| ingest_id(h.key().expose()) == id) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no ingest key with id {id:?}"),
        ));
    };
    if hubs.len() == 1 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "the last ingest key cannot be deleted",
        ));
    }
    if st.destinations.uses_ingest(hub.key().expose()) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "destinations relay this ingest key: move or delete them first",
        ));
    }
    let key = hub.key().clone();
    st.destinations
        .hubs()
        .remove(key.expose())
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, e))?;
    let store = st.destinations.store().clone();
    let k = key.expose().to_owned();
    tokio::task::spawn_blocking(move || store.delete_ingest_key(&k)).await??;
    st.destinations.history().record(
        "ingest_key_deleted",
        None,
        format!("ingest key {key} deleted"),
        Some(&who.actor()),
    );
    Ok(StatusCode::NO_CONTENT)
}

async fn list(State(st): State<AppState>, Query(q): Query<RevealQuery>) -> Json<Value> {
    let reveal = q.keys();
    Json(Value::Array(
        st.destinations
            .list()
            .iter()
            .map(|v| destination_json(v, reveal))
            .collect(),
    ))
}

async fn get_one(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RevealQuery>,
) -> Result<Json<Value>, ApiError> {
    let v = st.destinations.get(&id)?;
    Ok(Json(destination_json(&v, q.keys())))
}

/// Body of POST and PATCH. Unknown fields are refused so that a typo
/// (`"enable": false`) is an error rather than a silent no-op.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DestinationBody {
    name: Option<String>,
    platform: Option<String>,
    url: Option<String>,
    key: Option<String>,
    enabled: Option<bool>,
    ingest: Option<String>,
    /// Absent: unchanged; `null`: relayed by antenne; a string: streamed
    /// by OBS itself (`main` or an output name).
    #[serde(default, deserialize_with = "present")]
    via_obs: Option<Option<String>>,
}

/// Tells a field set to `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl From<DestinationBody> for DestinationInput {
    fn from(b: DestinationBody) -> Self {
        DestinationInput {
            name: b.name,
            platform: b.platform,
            url: b.url,
            key: b.key,
            enabled: b.enabled,
            ingest: b.ingest,
            via_obs: b.via_obs,
        }
    }
}

async fn create(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Query(q): Query<RevealQuery>,
    body: Result<Json<DestinationBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body?;
    let dests = st.destinations.clone();
    let v = tokio::task::spawn_blocking(move || dests.create(body.into(), &who.actor())).await??;
    Ok((StatusCode::CREATED, Json(destination_json(&v, q.keys()))))
}

async fn update(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
    Query(q): Query<RevealQuery>,
    body: Result<Json<DestinationBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    // An unknown id is a 404 even when the body is also wrong.
    st.destinations.get(&id)?;
    let Json(body) = body?;
    let dests = st.destinations.clone();
    let v =
        tokio::task::spawn_blocking(move || dests.update(&id, body.into(), &who.actor())).await??;
    Ok(Json(destination_json(&v, q.keys())))
}

async fn remove(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let dests = st.destinations.clone();
    tokio::task::spawn_blocking(move || dests.delete(&id, &who.actor())).await??;
    Ok(StatusCode::NO_CONTENT)
}

async fn settings(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = st.destinations.store().clone();
    let host = tokio::task::spawn_blocking(move || store.setting(SETTING_PUBLIC_HOST)).await??;
    Ok(Json(json!({
        "rtmp_port": st.rtmp_port,
        "public_host": host.unwrap_or_default(),
        "ingest_keys_fixed": st.ingest_keys_fixed,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    public_host: Option<String>,
}

/// A host name or address OBS can reach antenne at (no scheme, no path).
fn valid_host(h: &str) -> bool {
    h.len() <= 253
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'))
}

async fn put_settings(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    body: Result<Json<SettingsBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body?;
    if let Some(host) = body.public_host {
        let host = host.trim().to_owned();
        if !valid_host(&host) {
            return Err(ApiError::bad_request(
                "public_host must be a host name or IP address, without rtmp:// or a path",
            ));
        }
        let store = st.destinations.store().clone();
        let h = host.clone();
        tokio::task::spawn_blocking(move || store.set_setting(SETTING_PUBLIC_HOST, &h)).await??;
        st.destinations.history().record(
            "settings",
            None,
            format!("public host set to {host:?}"),
            Some(&who.actor()),
        );
    }
    settings(State(st)).await
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    destination: Option<String>,
    limit: Option<u32>,
}

async fn events(
    State(st): State<AppState>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<Value>, ApiError> {
    let store = st.destinations.store().clone();
    let dest = q.destination.filter(|d| !d.is_empty());
    let limit = q.limit.unwrap_or(200);
    let list = tokio::task::spawn_blocking(move || store.events(dest.as_deref(), limit)).await??;
    let names: std::collections::HashMap<String, String> = st
        .destinations
        .list()
        .into_iter()
        .map(|v| (v.dest.id, v.dest.name))
        .collect();
    Ok(Json(Value::Array(
        list.into_iter()
            .map(|e| {
                let name = e.destination_name.or_else(|| {
                    e.destination_id
                        .as_ref()
                        .and_then(|id| names.get(id).cloned())
                });
                json!({
                    "id": e.id,
                    "at": unix_time(e.at),
                    "kind": e.kind,
                    "destination_id": e.destination_id,
                    "destination_name": name,
                    "message": e.message,
                    "actor": e.actor,
                })
            })
            .collect(),
    )))
}

async fn presets(State(st): State<AppState>) -> Json<Value> {
    Json(serde_json::to_value(st.destinations.presets().all()).unwrap_or(Value::Null))
}
