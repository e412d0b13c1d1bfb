//! The API of pulls (see [`crate::ingest::pull`]): per ingest key, the URL
//! its stream is pulled from, on or off, and the pull's state.
//!
//! `GET/PUT/DELETE /api/v1/ingest-keys/{id}/pull`. The URL holds the
//! source's stream key: answers mask it ([`crate::output::url::masked`])
//! unless `?reveal=keys`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};

use super::api::RevealQuery;
use super::views::{time, Keys};
use super::{ApiError, AppState};
use crate::auth::Identity;
use crate::ingest::pull::{PullError, PullState, PullView};
use crate::ingest_keys::id_of;

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/v1/ingest-keys/{id}/pull",
        get(get_pull).put(put_pull).delete(delete_pull),
    )
}

impl From<PullError> for ApiError {
    fn from(e: PullError) -> Self {
        match e {
            PullError::Invalid(_) => ApiError::bad_request(e.to_string()),
            PullError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
            PullError::Store(s) => s.into(),
        }
    }
}

/// A pull as the API shows it; `configured: false` when the key has none.
#[derive(Debug, Serialize)]
pub struct PullJson {
    pub configured: bool,
    /// The source URL, its stream key masked unless `?reveal=keys`.
    pub url: Option<String>,
    pub enabled: bool,
    /// `none`, `off`, `connecting`, `waiting`, `live` or `retrying`.
    pub state: &'static str,
    /// Since when live or waiting (RFC 3339).
    pub since: Option<String>,
    pub attempt: Option<u32>,
    pub next_retry_at: Option<String>,
    pub retry_in_seconds: Option<u64>,
    /// The error that made it retry (while retrying).
    pub error: Option<String>,
    /// The most recent error, kept after recovery.
    pub last_error: Option<String>,
    pub reconnects: u64,
}

impl PullJson {
    pub fn new(view: Option<PullView>, keys: Keys) -> Self {
        let Some(v) = view else {
            return PullJson {
                configured: false,
                url: None,
                enabled: false,
                state: "none",
                since: None,
                attempt: None,
                next_retry_at: None,
                retry_in_seconds: None,
                error: None,
                last_error: None,
                reconnects: 0,
            };
        };
        let url = match keys {
            Keys::Revealed => v.url.clone(),
            Keys::Masked => crate::output::url::masked(&v.url, ""),
        };
        let s = &v.status;
        let (since, attempt, next, error) = match &s.state {
            PullState::Off => (None, None, None, None),
            PullState::Connecting { attempt } => (None, Some(*attempt), None, None),
            PullState::Waiting { since } | PullState::Live { since } => {
                (Some(*since), None, None, None)
            }
            PullState::Retrying {
                attempt,
                next_try,
                error,
            } => (None, Some(*attempt), Some(*next_try), Some(error.clone())),
        };
        PullJson {
            configured: true,
            url: Some(url),
            enabled: v.enabled,
            state: s.state.name(),
            since: since.map(time),
            attempt,
            next_retry_at: next.map(time),
            retry_in_seconds: next.map(|t| {
                t.duration_since(std::time::SystemTime::now())
                    .map(|d| d.as_secs_f64().ceil() as u64)
                    .unwrap_or(0)
            }),
            error,
            last_error: s.last_error.clone(),
            reconnects: s.reconnects,
        }
    }
}

/// The ingest key whose id is `id`.
fn key_of(st: &AppState, id: &str) -> Result<String, ApiError> {
    st.hubs
        .all()
        .iter()
        .map(|h| h.key().expose().to_owned())
        .find(|k| id_of(k) == id)
        .ok_or_else(|| PullError::NotFound(id.to_owned()).into())
}

async fn get_pull(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RevealQuery>,
) -> Result<Json<PullJson>, ApiError> {
    let key = key_of(&st, &id)?;
    Ok(Json(PullJson::new(st.pulls.get(&key), q.keys())))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PullBody {
    /// Absent: the configured URL stays.
    url: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

async fn put_pull(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
    body: Result<Json<PullBody>, JsonRejection>,
) -> Result<Json<PullJson>, ApiError> {
    let key = key_of(&st, &id)?;
    let Json(body) = body?;
    let view = st
        .pulls
        .set(&key, body.url.as_deref(), body.enabled, &who.actor())
        .await?;
    Ok(Json(PullJson::new(Some(view), Keys::Masked)))
}

async fn delete_pull(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let key = key_of(&st, &id)?;
    st.pulls.remove(&key, &who.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}
