//! The HTTP edge: the REST API under `/api/v1`, live updates (SSE), and
//! the web interface. Handlers talk to [`Destinations`], [`Auth`] and the
//! store, never to protocol types. Every error answers `{"error": "…"}`.
//!
//! Access: every `/api` route but `/api/v1/health`, `/api/v1/login` and
//! `/api/v1/openapi.json` needs a session cookie (from the login page) or
//! `Authorization: Bearer TOKEN`. A state-changing request authenticated by
//! cookie must come from a page of antenne itself (its `Origin` matches the
//! `Host`), which defeats cross-site request forgery on top of the
//! `SameSite=Strict` cookie.

pub mod api;
pub mod live;
pub mod obs;
pub mod preview;
pub mod recordings;
pub mod session;
pub mod web;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::json;

use crate::auth::{Auth, Identity};
use crate::destinations::Destinations;
use crate::store::StoreError;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "antenne_session";

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub destinations: Arc<Destinations>,
    pub auth: Arc<Auth>,
    /// OBS under antenne's control (obs-websocket).
    pub obs: Arc<crate::obs::Obs>,
    /// The port OBS publishes to (for the OBS settings shown).
    pub rtmp_port: u16,
    /// Mark cookies `Secure` (antenne is behind a TLS-terminating proxy).
    pub secure_cookies: bool,
    /// Ingest keys come from `--ingest-key` and cannot be changed here.
    pub ingest_keys_fixed: bool,
    pub recorder: Arc<crate::recording::Recorder>,
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let api = api::routes()
        .merge(session::routes())
        .merge(live::routes())
        .merge(obs::routes())
        .merge(recordings::routes())
        .merge(preview::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_auth));
    Router::new()
        .merge(api)
        .merge(web::routes())
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

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        // The disk refused: the server's problem, and maybe a passing one.
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        ApiError::bad_request(format!("invalid JSON body: {}", e.body_text()))
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {e}"),
        )
    }
}

/// The value of a cookie in the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Who sent the request: bearer token first, then the session cookie
/// (`true` when by cookie).
pub fn identify(auth: &Auth, headers: &HeaderMap) -> Option<(Identity, bool)> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let token = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))?;
        return auth.bearer(token.trim()).map(|i| (i, false));
    }
    let session = cookie(headers, SESSION_COOKIE)?;
    auth.session(&session).map(|i| (i, true))
}

/// Whether the request comes from a page of this server: its `Origin` (or,
/// failing that, its `Referer`) is `http(s)://<Host>`.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let from = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    let Some(from) = from else { return false };
    let rest = from
        .strip_prefix("http://")
        .or_else(|| from.strip_prefix("https://"))
        .unwrap_or("");
    let origin_host = rest.split('/').next().unwrap_or("");
    origin_host.eq_ignore_ascii_case(host)
}

const OPEN_ROUTES: &[&str] = &["/api/v1/health", "/api/v1/login", "/api/v1/openapi.json"];

async fn require_auth(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if OPEN_ROUTES.contains(&path) {
        return next.run(req).await;
    }
    let auth = st.auth.clone();
    let headers = req.headers().clone();
    // Session and token look-ups touch SQLite: off the async threads.
    let who = tokio::task::spawn_blocking(move || identify(&auth, &headers)).await;
    let Ok(Some((identity, by_cookie))) = who else {
        return ApiError::new(StatusCode::UNAUTHORIZED, "login required").into_response();
    };
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if by_cookie && changes_state && !same_origin(req.headers()) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "cross-site request refused: the Origin does not match this server",
        )
        .into_response();
    }
    req.extensions_mut().insert(identity);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn reads_cookies_and_checks_origins() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; antenne_session=abc; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(!same_origin(&h), "no Origin nor Referer");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080.evil.example"),
        );
        assert!(!same_origin(&h));
    }
}
