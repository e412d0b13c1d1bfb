//! The standby API: an ingest's standby state, and the streamer's break
//! ("be right back": destinations get the standby picture while OBS keeps
//! publishing).

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};

use super::{ApiError, AppState};
use crate::auth::Identity;
use crate::history::EventKind;
use crate::standby::settings::{SettingsJson, MAX_IMAGE_BYTES};
use crate::standby::{BreakError, StandbyStatus};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/ingest/{id}/standby", get(status))
        .route(
            "/api/v1/ingest/{id}/standby/break",
            post(start_break).delete(end_break),
        )
        .route(
            "/api/v1/ingest/{id}/standby/settings",
            get(get_settings).put(put_settings),
        )
        .route(
            "/api/v1/ingest/{id}/standby/image",
            put(put_image)
                .delete(delete_image)
                // Room for the largest picture; the handler checks it.
                .layer(DefaultBodyLimit::max(MAX_IMAGE_BYTES + 1024)),
        )
        .route("/api/v1/ingest/{id}/standby/preview", get(preview))
}

impl From<BreakError> for ApiError {
    fn from(e: BreakError) -> Self {
        let status = match e {
            BreakError::NoSuchIngest(_) => StatusCode::NOT_FOUND,
            BreakError::Unavailable(_) | BreakError::NotReady => StatusCode::CONFLICT,
            BreakError::Invalid(_) => StatusCode::BAD_REQUEST,
            BreakError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

async fn status(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<StandbyStatus>, ApiError> {
    st.standby
        .status(&id)
        .map(Json)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no ingest {id}")))
}

async fn start_break(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<Json<StandbyStatus>, ApiError> {
    set_break(&st, &who, &id, true)
}

async fn end_break(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<Json<StandbyStatus>, ApiError> {
    set_break(&st, &who, &id, false)
}

fn set_break(
    st: &AppState,
    who: &Identity,
    id: &str,
    on: bool,
) -> Result<Json<StandbyStatus>, ApiError> {
    let status = st.standby.set_break(id, on)?;
    let what = if on {
        "break asked for: destinations get the standby picture"
    } else {
        "break over: destinations go back to the live stream at its next keyframe"
    };
    st.history.record(
        EventKind::Settings,
        None,
        format!("ingest {id}: {what}"),
        Some(&who.actor()),
    );
    Ok(Json(status))
}

async fn get_settings(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SettingsJson>, ApiError> {
    Ok(Json(st.standby.settings(&id)?))
}

async fn put_settings(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
    body: Result<Json<SettingsJson>, JsonRejection>,
) -> Result<Json<SettingsJson>, ApiError> {
    let Json(body) = body?;
    let saved = st.standby.set_settings(&id, body).await?;
    st.history.record(
        EventKind::Settings,
        None,
        format!("ingest {id}: standby settings changed"),
        Some(&who.actor()),
    );
    Ok(Json(saved))
}

async fn put_image(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    st.standby.set_image(&id, Some(body.to_vec())).await?;
    st.history.record(
        EventKind::Settings,
        None,
        format!("ingest {id}: standby picture uploaded"),
        Some(&who.actor()),
    );
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_image(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.standby.set_image(&id, None).await?;
    st.history.record(
        EventKind::Settings,
        None,
        format!("ingest {id}: standby picture back to antenne's card"),
        Some(&who.actor()),
    );
    Ok(StatusCode::NO_CONTENT)
}

/// The picture as the platforms would see it, in the ingest's shape
/// (16:9 until known), at most 640 pixels wide.
async fn preview(State(st): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let hub = st
        .hubs
        .all()
        .into_iter()
        .find(|h| crate::ingest_keys::id_of(h.key().expose()) == id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no ingest {id}")))?;
    let snap = hub.snapshot();
    let (w, h) = match (snap.width, snap.height) {
        (Some(w), Some(h)) if w > 0 && h > 0 => (w, h),
        _ => (640, 360),
    };
    let scale = (640.0 / w as f64).min(1.0);
    let even = |v: f64| ((v.round() as u32) / 2 * 2).max(2);
    let png = st
        .standby
        .preview(&id, (even(w as f64 * scale), even(h as f64 * scale)))
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        png,
    )
        .into_response())
}
