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
//!
//! Every request must name antenne by a host it is served under (see
//! [`AllowedHosts`]): a web page on an attacker's domain that rebinds its
//! name to 127.0.0.1 (DNS rebinding) is refused before anything else.

pub mod alerts;
pub mod api;
pub mod import;
pub mod live;
pub mod metrics;
pub mod obs;
pub mod preview;
pub mod pull;
pub mod recordings;
pub mod renditions;
pub mod serve;
pub mod session;
pub mod standby;
pub mod views;
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
use crate::history::History;
use crate::ingest::Hubs;
use crate::ingest_keys::IngestKeys;
use crate::presets::Presets;
use crate::store::{Store, StoreError, SETTING_PUBLIC_HOST};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "antenne_session";

/// What the handlers share: each gets what it needs from here directly.
#[derive(Clone)]
pub struct AppState {
    pub destinations: Arc<Destinations>,
    /// Ingest keys and their changes (includes whether they are fixed by
    /// `--ingest-key`).
    pub ingest_keys: Arc<IngestKeys>,
    /// One hub per ingest key (the same registry `ingest_keys` changes).
    pub hubs: Hubs,
    /// Call only off the runtime's threads (`spawn_blocking`).
    pub store: Arc<Store>,
    pub history: History,
    pub presets: Arc<Presets>,
    pub auth: Arc<Auth>,
    /// OBS under antenne's control (obs-websocket).
    pub obs: Arc<crate::obs::Obs>,
    /// The port OBS publishes to (for the OBS settings shown).
    pub rtmp_port: u16,
    /// The RTMPS ingest port, when `--rtmps-listen` is on.
    pub rtmps_port: Option<u16>,
    /// The SRT ingest: listening, off, or unavailable and why.
    pub srt: crate::ingest::srt::SrtStatus,
    /// Alert webhooks and their delivery.
    pub alerts: crate::alerts::Alerts,
    /// Mark cookies `Secure` (antenne is behind a TLS-terminating proxy).
    pub secure_cookies: bool,
    pub recorder: Arc<crate::recording::Recorder>,
    pub renditions: Arc<crate::encoders::registry::Renditions>,
    /// Ingest keys pulled from a URL.
    pub pulls: Arc<crate::ingest::pull::Pulls>,
    /// The standby picture of each ingest, and the breaks.
    pub standby: Arc<crate::standby::Standby>,
}

/// The whole HTTP application.
pub fn router(state: AppState, hosts: AllowedHosts) -> Router {
    let api = api::routes()
        .merge(session::routes())
        .merge(live::routes())
        .merge(obs::routes())
        .merge(recordings::routes())
        .merge(preview::routes())
        .merge(metrics::routes())
        .merge(alerts::routes())
        .merge(import::routes())
        .merge(renditions::routes())
        .merge(pull::routes())
        .merge(standby::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_auth));
    Router::new()
        .merge(api)
        .merge(web::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .layer(middleware::from_fn_with_state(Arc::new(hosts), check_host))
        .with_state(state)
}

/// The host names antenne answers to: any IP address (no DNS, so no DNS
/// rebinding), `localhost` and `*.localhost`, the public host setting, and
/// those given with `--allowed-hosts`. Ports are not compared.
pub struct AllowedHosts {
    names: Vec<String>,
    store: Arc<Store>,
}

impl AllowedHosts {
    pub fn new(extra: &[String], store: Arc<Store>) -> Self {
        let names = extra
            .iter()
            .map(|h| host_name(h.trim()).to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        AllowedHosts { names, store }
    }

    /// Whether `host` (a `Host` header: name or address, maybe a port) is
    /// allowed without looking at the store.
    fn allows_statically(&self, host: &str) -> bool {
        let name = host_name(host).to_ascii_lowercase();
        name.parse::<std::net::IpAddr>().is_ok()
            || name == "localhost"
            || name.ends_with(".localhost")
            || self.names.contains(&name)
    }
}

/// The name part of a `Host` value: without the port, IPv6 brackets kept
/// off (`[::1]:80` → `::1`).
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
    .trim_end_matches('.')
}

async fn check_host(State(hosts): State<Arc<AllowedHosts>>, req: Request, next: Next) -> Response {
    // No Host (HTTP/1.0 scripts): browsers always send one.
    let Some(host) = req.headers().get(header::HOST) else {
        return next.run(req).await;
    };
    let host = host.to_str().unwrap_or("").to_owned();
    if hosts.allows_statically(&host) {
        return next.run(req).await;
    }
    let public = hosts
        .store
        .off_runtime(|s| s.setting(SETTING_PUBLIC_HOST))
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    let public = host_name(public.trim());
    if !public.is_empty() && public.eq_ignore_ascii_case(host_name(&host)) {
        return next.run(req).await;
    }
    ApiError::new(
        StatusCode::MISDIRECTED_REQUEST,
        format!(
            "antenne is not served under the host name {:?}: open it by its IP address or localhost, set it as the public host in Settings, or add it with --allowed-hosts",
            host_name(&host)
        ),
    )
    .into_response()
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

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
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
    // Sessions are checked in memory; API tokens touch SQLite: off the
    // async threads.
    let who = if req.headers().contains_key(header::AUTHORIZATION) {
        let auth = st.auth.clone();
        let headers = req.headers().clone();
        tokio::task::spawn_blocking(move || identify(&auth, &headers))
            .await
            .ok()
            .flatten()
    } else {
        identify(&st.auth, req.headers())
    };
    let Some((identity, by_cookie)) = who else {
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
    let session = by_cookie
        .then(|| cookie(req.headers(), SESSION_COOKIE))
        .flatten();
    let res = next.run(req).await;
    // A long-lived answer (the live stream) lasts as long as its session.
    match session {
        Some(session) if is_event_stream(&res) => {
            let (parts, body) = res.into_parts();
            let body = SessionBound::new(body, st.auth.clone(), session);
            Response::from_parts(parts, axum::body::Body::new(body))
        }
        _ => res,
    }
}

fn is_event_stream(res: &Response) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// A response body that ends when its session does (log out, password
/// change, idle or expired), checked every second.
struct SessionBound {
    inner: axum::body::Body,
    auth: Arc<Auth>,
    session: String,
    check: tokio::time::Interval,
}

impl SessionBound {
    fn new(inner: axum::body::Body, auth: Arc<Auth>, session: String) -> Self {
        let mut check = tokio::time::interval(std::time::Duration::from_secs(1));
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        SessionBound {
            inner,
            auth,
            session,
            check,
        }
    }
}

impl http_body::Body for SessionBound {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, axum::Error>>> {
        let this = self.get_mut();
        while this.check.poll_tick(cx).is_ready() {
            if !this.auth.session_alive(&this.session) {
                return std::task::Poll::Ready(None);
            }
        }
        std::pin::Pin::new(&mut this.inner).poll_frame(cx)
    }
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

    #[test]
    fn allows_addresses_localhost_and_listed_names_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(Store::open(dir.path()).expect("store"));
        let hosts = AllowedHosts::new(&["Antenne.Example.org".into()], store);
        for ok in [
            "127.0.0.1:8080",
            "192.168.1.20",
            "[::1]:8080",
            "localhost:8080",
            "studio.localhost",
            "antenne.example.org",
            "ANTENNE.EXAMPLE.ORG.:443",
        ] {
            assert!(hosts.allows_statically(ok), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "example.org",
            "",
        ] {
            assert!(!hosts.allows_statically(bad), "{bad}");
        }
    }
}
