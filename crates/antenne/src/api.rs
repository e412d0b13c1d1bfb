//! The REST API (JSON) under `/api/v1`. Handlers talk to [`Destinations`]
//! and the hubs, never to protocol types. Every error answers
//! `{"error": "…"}` with a status that says whose fault it is.
//!
//! Stream keys are masked in every answer unless `?reveal=keys` is asked.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::destinations::{DestinationError, DestinationInput, DestinationView, Destinations};
use crate::output::OutputState;
use crate::secret::StreamKey;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub destinations: Arc<Destinations>,
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/ingest", get(ingest))
        .route("/api/v1/destinations", get(list).post(create))
        .route(
            "/api/v1/destinations/{id}",
            get(get_one).patch(update).delete(remove),
        )
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .with_state(state)
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

impl From<DestinationError> for ApiError {
    fn from(e: DestinationError) -> Self {
        let status = match e {
            DestinationError::NotFound(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("invalid JSON body: {}", e.body_text()),
        )
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

fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn destination_json(v: &DestinationView, reveal: bool) -> Value {
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
    json!({
        "id": d.id,
        "name": d.name,
        "url": d.url,
        "key": show_key(&d.key, reveal),
        "enabled": d.enabled,
        "ingest": show_key(&d.ingest, reveal),
        "status": status,
    })
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn ingest(State(st): State<ApiState>, Query(q): Query<RevealQuery>) -> Json<Value> {
    let reveal = q.keys();
    let ingests: Vec<Value> = st
        .destinations
        .hubs()
        .all()
        .iter()
        .map(|hub| {
            let s = hub.snapshot();
            json!({
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
    Json(json!({ "ingests": ingests }))
}

async fn list(State(st): State<ApiState>, Query(q): Query<RevealQuery>) -> Json<Value> {
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
    State(st): State<ApiState>,
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
    url: Option<String>,
    key: Option<String>,
    enabled: Option<bool>,
    ingest: Option<String>,
}

impl From<DestinationBody> for DestinationInput {
    fn from(b: DestinationBody) -> Self {
        DestinationInput {
            name: b.name,
            url: b.url,
            key: b.key,
            enabled: b.enabled,
            ingest: b.ingest,
        }
    }
}

async fn create(
    State(st): State<ApiState>,
    Query(q): Query<RevealQuery>,
    body: Result<Json<DestinationBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body?;
    let v = st.destinations.create(body.into())?;
    Ok((StatusCode::CREATED, Json(destination_json(&v, q.keys()))))
}

async fn update(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<RevealQuery>,
    body: Result<Json<DestinationBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    // An unknown id is a 404 even when the body is also wrong.
    st.destinations.get(&id)?;
    let Json(body) = body?;
    let v = st.destinations.update(&id, body.into())?;
    Ok(Json(destination_json(&v, q.keys())))
}

async fn remove(
    State(st): State<ApiState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.destinations.delete(&id)?;
    Ok(StatusCode::NO_CONTENT)
}
