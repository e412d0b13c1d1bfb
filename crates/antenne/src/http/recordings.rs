//! Recordings over HTTP: list, download (streamed, with byte ranges so a
//! `<video>` can seek), delete, start/stop per ingest, and the recording
//! settings. Behind login like the rest of `/api`.
//!
//! A recording's id is its file name; it is only used after
//! [`crate::recording::Recorder::path_of`] found it in the directory
//! listing, so `../antenne.db` and the like are a 404, never a path.

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{ApiError, AppState};
use crate::auth::Identity;
use crate::recording::{RecordingError, RecordingSettings};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/recordings", get(list))
        .route(
            "/api/v1/recordings/settings",
            get(settings).put(put_settings),
        )
        .route("/api/v1/recordings/{id}", get(download).delete(remove))
        .route("/api/v1/ingest/{id}/recording", post(start).delete(stop))
}

impl From<RecordingError> for ApiError {
    fn from(e: RecordingError) -> Self {
        let status = match &e {
            RecordingError::NoSuchIngest(_) | RecordingError::NotFound(_) => StatusCode::NOT_FOUND,
            RecordingError::NotLive | RecordingError::InUse => StatusCode::CONFLICT,
            RecordingError::LowSpace(_) => StatusCode::INSUFFICIENT_STORAGE,
            RecordingError::Invalid(_) => StatusCode::BAD_REQUEST,
            RecordingError::Io(_) | RecordingError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError::new(status, e.to_string())
    }
}

async fn list(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let recordings = st.recorder.list().await?;
    Ok(Json(json!({
        "recordings": recordings,
        "ingests": st.recorder.status(),
    })))
}

async fn settings(State(st): State<AppState>) -> Json<RecordingSettings> {
    Json(st.recorder.settings())
}

async fn put_settings(
    State(st): State<AppState>,
    body: Result<Json<RecordingSettings>, JsonRejection>,
) -> Result<Json<RecordingSettings>, ApiError> {
    let Json(body) = body?;
    st.recorder.set_settings(body).await?;
    Ok(Json(st.recorder.settings()))
}

async fn start(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    st.recorder.start_recording(&id, &who.actor()).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "ingest": id, "recording": true })),
    ))
}

async fn stop(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.recorder.stop_recording(&id, &who.actor())?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.recorder.delete(&id, &who.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize)]
struct DownloadQuery {
    /// Ask the browser to save the file rather than play it.
    download: Option<String>,
}

/// `bytes=A-B`, `bytes=A-` or `bytes=-N` (one range) within `len`.
fn parse_range(value: &str, len: u64) -> Option<(u64, u64)> {
    let spec = value.strip_prefix("bytes=")?.trim();
    if spec.contains(',') || len == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        (len.saturating_sub(n), len - 1)
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() {
            len - 1
        } else {
            b.parse::<u64>().ok()?.min(len - 1)
        };
        (start, end)
    };
    (start <= end && start < len).then_some((start, end))
}

async fn download(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<DownloadQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let path = st.recorder.path_of(&id).await?;
    let open = |e: std::io::Error| ApiError::from(RecordingError::Io(e));
    let mut file = tokio::fs::File::open(&path).await.map_err(open)?;
    // A file being written grows: serve what it holds now.
    let len = file.metadata().await.map_err(open)?.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, len));
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, len.saturating_sub(1)),
        Some(Some((a, b))) => (StatusCode::PARTIAL_CONTENT, a, b),
        Some(None) => {
            return Ok((
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{len}"))],
            )
                .into_response())
        }
    };
    let count = if len == 0 { 0 } else { end - start + 1 };
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(open)?;
    let stream = futures_util::stream::unfold((file, count), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let mut buf = vec![0u8; left.min(256 * 1024) as usize];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((
                    Ok::<Bytes, std::io::Error>(Bytes::from(buf)),
                    (file, left - n as u64),
                ))
            }
            Err(e) => Some((Err(e), (file, 0))),
        }
    });
    let disposition = if q.download.is_some() {
        format!("attachment; filename=\"{id}\"")
    } else {
        format!("inline; filename=\"{id}\"")
    };
    let mut response = (
        status,
        [
            (header::CONTENT_TYPE, "video/mp4".to_owned()),
            (header::CONTENT_LENGTH, count.to_string()),
            (header::ACCEPT_RANGES, "bytes".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(stream),
    )
        .into_response();
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = format!("bytes {start}-{end}/{len}").parse() {
            response.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn reads_single_byte_ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Some((0, 99)));
        assert_eq!(parse_range("bytes=900-", 1000), Some((900, 999)));
        assert_eq!(parse_range("bytes=-100", 1000), Some((900, 999)));
        assert_eq!(parse_range("bytes=0-5000", 1000), Some((0, 999)));
        assert_eq!(parse_range("bytes=1000-", 1000), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), None);
        assert_eq!(parse_range("items=0-1", 1000), None);
    }
}
