//! The renditions' API: list (with each encoder's live state), add,
//! change, delete. A change to a rendition's spec restarts only its
//! encoder; the destinations relaying it stay connected. Deleting a
//! rendition some destination relays is refused (409).
//!
//! Guardrails: for each destination whose ingest is live, the limits of
//! its platform (`assets/presets.json`: size, orientation, codec, bitrate,
//! keyframe interval as the hub measures it) that what it relays breaks,
//! in plain words, with the kind of rendition that repairs it.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::auth::Identity;
use crate::encoders::registry::{RenditionError, RenditionInput, RenditionView};
use crate::encoders::{EncoderState, RenditionSpec, VideoEncoder};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/renditions", get(list).post(create))
        .route(
            "/api/v1/renditions/{id}",
            get(one).patch(update).delete(remove),
        )
        .route("/api/v1/guardrails", get(guardrails))
}

impl From<RenditionError> for ApiError {
    fn from(e: RenditionError) -> Self {
        match e {
            RenditionError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
            RenditionError::InUse | RenditionError::TooMany => {
                ApiError::new(StatusCode::CONFLICT, e.to_string())
            }
            RenditionError::Store(s) => s.into(),
            RenditionError::Invalid(_) | RenditionError::UnknownIngest => {
                ApiError::bad_request(e.to_string())
            }
        }
    }
}

/// A rendition as the API shows it (never its ingest key: its id).
#[derive(Debug, Serialize)]
struct RenditionJson {
    id: String,
    name: String,
    ingest_id: String,
    spec: RenditionSpec,
    /// `stopped`, `starting`, `running`, `restarting`, `unavailable`, with
    /// ffmpeg's figures when running and the reason otherwise.
    status: EncoderState,
    /// The encoder in use (`auto` resolved).
    encoder: VideoEncoder,
    /// The running ffmpeg's process id.
    pid: Option<u32>,
    /// Enabled destinations relaying it.
    destinations: usize,
    /// CPU used by its ffmpeg since the previous look (percent of a core).
    cpu_percent: Option<f64>,
}

impl From<RenditionView> for RenditionJson {
    fn from(v: RenditionView) -> Self {
        RenditionJson {
            id: v.stored.id,
            name: v.stored.name,
            ingest_id: v.ingest_id,
            spec: v.stored.spec,
            status: v.state,
            encoder: v.encoder,
            pid: v.pid,
            destinations: v.demand,
            cpu_percent: v.cpu_percent,
        }
    }
}

/// Body of POST and PATCH.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RenditionBody {
    name: Option<String>,
    ingest: Option<String>,
    spec: Option<serde_json::Map<String, serde_json::Value>>,
}

impl From<RenditionBody> for RenditionInput {
    fn from(b: RenditionBody) -> Self {
        RenditionInput {
            name: b.name,
            ingest: b.ingest,
            spec: b.spec,
        }
    }
}

// The views read each ffmpeg's CPU time from /proc: off the runtime's
// threads.
async fn list(State(st): State<AppState>) -> Result<Json<Vec<RenditionJson>>, ApiError> {
    let list = tokio::task::spawn_blocking(move || st.renditions.list()).await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

async fn one(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RenditionJson>, ApiError> {
    let v = tokio::task::spawn_blocking(move || st.renditions.view_of(&id)).await??;
    Ok(Json(v.into()))
}

async fn create(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    body: Result<Json<RenditionBody>, JsonRejection>,
) -> Result<(StatusCode, Json<RenditionJson>), ApiError> {
    let Json(body) = body?;
    let v = st.renditions.create(body.into(), &who.actor()).await?;
    Ok((StatusCode::CREATED, Json(v.into())))
}

async fn update(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
    body: Result<Json<RenditionBody>, JsonRejection>,
) -> Result<Json<RenditionJson>, ApiError> {
    let Json(body) = body?;
    let v = st.renditions.update(&id, body.into(), &who.actor()).await?;
    Ok(Json(v.into()))
}

async fn remove(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    // No destination can take it as its source meanwhile.
    let _writing = st.destinations.writing().await;
    let in_use = st.destinations.uses_rendition(&id);
    st.renditions.delete(&id, in_use, &who.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A platform limit a destination's stream breaks.
#[derive(Debug, Serialize)]
struct GuardrailJson {
    destination_id: String,
    /// The destination's ingest (where a repairing rendition goes).
    ingest_id: String,
    message: String,
    /// The rendition that repairs it: `vertical`, `bitrate_cap`, `h264`,
    /// `smaller`.
    fix: crate::presets::Fix,
}

async fn guardrails(State(st): State<AppState>) -> Json<Vec<GuardrailJson>> {
    let mut out = Vec::new();
    for v in st.destinations.list() {
        let d = &v.dest;
        let Some(preset) = st.presets.get(&d.platform) else {
            continue;
        };
        let Some(limits) = &preset.limits else {
            continue;
        };
        let Some(hub) = st.hubs.find(d.ingest.expose()) else {
            continue;
        };
        let snap = hub.snapshot();
        if !snap.live {
            continue;
        }
        let facts = match d.source.rendition() {
            None => crate::presets::StreamFacts {
                width: snap.width,
                height: snap.height,
                video_codec: snap.video_codec.as_deref().map(codec_name),
                video_kbps: Some(snap.bitrate_kbps),
                keyframe_interval_s: snap.keyframe_interval_s,
            },
            Some(id) => match st.renditions.view_of(id) {
                Ok(r) => crate::presets::StreamFacts {
                    width: Some(r.stored.spec.width),
                    height: Some(r.stored.spec.height),
                    video_codec: Some("h264".into()),
                    video_kbps: Some(f64::from(r.stored.spec.video_kbps)),
                    keyframe_interval_s: Some(r.stored.spec.keyframe_interval_s),
                },
                Err(_) => continue,
            },
        };
        for b in limits.breaches(&preset.name, &facts) {
            out.push(GuardrailJson {
                destination_id: d.id.clone(),
                ingest_id: crate::ingest_keys::id_of(d.ingest.expose()),
                message: b.message,
                fix: b.fix,
            });
        }
    }
    Json(out)
}

/// The hub's codec name as the presets say it (`avc1`/`H.264` → `h264`).
fn codec_name(c: &str) -> String {
    let c = c.to_ascii_lowercase();
    if c.contains("264") || c.contains("avc") {
        "h264".into()
    } else if c.contains("265") || c.contains("hevc") || c.contains("hvc") {
        "hevc".into()
    } else if c.contains("av1") || c.contains("av01") {
        "av1".into()
    } else {
        c
    }
}
