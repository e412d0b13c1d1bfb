//! The web interface: pages and assets embedded at compile time (see
//! `build.rs`). `/` and `/dock` (the OBS dock) need a session (else they
//! redirect to `/login`, which comes back to `/dock` with `?next=/dock`);
//! the assets and the login page are public.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use super::{cookie, AppState, SESSION_COOKIE};

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/login", get(login))
        .route("/dock", get(dock))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/assets/{*path}", get(asset))
}

/// An embedded file by its path under `assets/`.
pub fn asset_bytes(path: &str) -> Option<&'static [u8]> {
    ASSETS.iter().find(|(p, _)| *p == path).map(|(_, b)| *b)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

fn page(path: &str) -> Response {
    match asset_bytes(path) {
        Some(body) => (
            [
                (header::CONTENT_TYPE, content_type(path)),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::X_FRAME_OPTIONS, "DENY"),
                (header::REFERRER_POLICY, "same-origin"),
            ],
            body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

async fn logged_in(st: &AppState, headers: &HeaderMap) -> bool {
    match cookie(headers, SESSION_COOKIE) {
        Some(s) => {
            let auth = st.auth.clone();
            tokio::task::spawn_blocking(move || auth.session(&s).is_some())
                .await
                .unwrap_or(false)
        }
        None => false,
    }
}

async fn index(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if logged_in(&st, &headers).await {
        page("index.html")
    } else {
        Redirect::to("/login").into_response()
    }
}

/// The pages the login may go back to (`/login?next=…`): a fixed list, so
/// the login page never sends anyone elsewhere.
const NEXT_PAGES: [&str; 2] = ["/", "/dock"];

#[derive(serde::Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

async fn dock(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if logged_in(&st, &headers).await {
        page("dock.html")
    } else {
        Redirect::to("/login?next=/dock").into_response()
    }
}

async fn login(
    State(st): State<AppState>,
    Query(q): Query<LoginQuery>,
    headers: HeaderMap,
) -> Response {
    if logged_in(&st, &headers).await {
        let next = q
            .next
            .as_deref()
            .filter(|n| NEXT_PAGES.contains(n))
            .unwrap_or("/");
        Redirect::to(next).into_response()
    } else {
        page("login.html")
    }
}

async fn asset(Path(path): Path<String>) -> Response {
    page(&path)
}
