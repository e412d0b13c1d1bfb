//! The standby API: an ingest's standby state, and the streamer's break
//! ("be right back": destinations get the standby picture while OBS keeps
//! publishing).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};

use super::{ApiError, AppState};
use crate::auth::Identity;
use crate::history::EventKind;
use crate::standby::{BreakError, StandbyStatus};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/ingest/{id}/standby", get(status))
        .route(
            "/api/v1/ingest/{id}/standby/break",
            post(start_break).delete(end_break),
        )
}

impl From<BreakError> for ApiError {
    fn from(e: BreakError) -> Self {
        let status = match e {
            BreakError::NoSuchIngest(_) => StatusCode::NOT_FOUND,
            BreakError::Unavailable(_) | BreakError::NotReady => StatusCode::CONFLICT,
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
