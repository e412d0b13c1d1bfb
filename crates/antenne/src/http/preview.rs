//! The live preview over HTTP: `GET /api/v1/ingest/{id}/preview` answers a
//! chunked fragmented-MP4 stream (init segment, then fragments) that the
//! page feeds to Media Source Extensions; the MIME type with codecs is in
//! the `X-Preview-Type` header. Behind login like the rest of `/api`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::{ApiError, AppState};
use crate::preview::{self, PreviewError};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/ingest/{id}/preview", get(watch))
}

async fn watch(State(st): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let hub = st
        .hubs
        .all()
        .into_iter()
        .find(|h| crate::ingest_keys::id_of(h.key().expose()) == id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no ingest with id {id:?}")))?;
    let p = preview::open(&hub).await.map_err(|e| {
        let status = match e {
            PreviewError::NotLive => StatusCode::CONFLICT,
            PreviewError::NoKeyframe(_) => StatusCode::SERVICE_UNAVAILABLE,
            PreviewError::Unsupported => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, e.to_string())
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "video/mp4".to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (HeaderName::from_static("x-preview-type"), p.mime),
        ],
        Body::from_stream(p.body),
    )
        .into_response())
}
