//! Login, logout (here or everywhere), who am I, the password change, and
//! API tokens.

use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::unix_time;
use super::{cookie, ApiError, AppState, SESSION_COOKIE};
use crate::auth::{Identity, LoginError, ADMIN, SESSION_TTL};
use crate::history::EventKind;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/login", post(login))
        .route("/api/v1/logout", post(logout))
        .route("/api/v1/me", get(me))
        .route("/api/v1/account/password", put(change_password))
        .route("/api/v1/sessions", delete(logout_everywhere))
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{id}", delete(delete_token))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: String,
    password: String,
}

fn session_cookie(st: &AppState, value: &str, max_age: u64) -> HeaderValue {
    let secure = if st.secure_cookies { "; Secure" } else { "" };
    let text = format!(
        "{SESSION_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static(""))
}

async fn login(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Json<LoginBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let username = body.username.clone();
    let result = st.auth.login(peer.ip(), body.username, body.password).await;
    match result {
        Ok(token) => {
            tracing::info!(user = %username, %peer, "login");
            st.history.record(
                EventKind::Login,
                None,
                format!("logged in from {}", peer.ip()),
                Some(&username),
            );
            let mut res = Json(json!({ "username": username })).into_response();
            res.headers_mut().insert(
                header::SET_COOKIE,
                session_cookie(&st, &token, SESSION_TTL.as_secs()),
            );
            Ok(res)
        }
        Err(e) => {
            tracing::warn!(%peer, reason = %e, "failed login");
            Err(login_error(e, StatusCode::UNAUTHORIZED))
        }
    }
}

/// The answer to a refused password check; `invalid` is the status for a
/// wrong password.
fn login_error(e: LoginError, invalid: StatusCode) -> ApiError {
    let status = match &e {
        LoginError::Invalid => invalid,
        LoginError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        LoginError::Busy => StatusCode::SERVICE_UNAVAILABLE,
        LoginError::WeakPassword => StatusCode::BAD_REQUEST,
        LoginError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        // The disk refused: the server's problem, and maybe a passing one.
        LoginError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    ApiError::new(status, e.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    current_password: String,
    new_password: String,
}

/// Changes the admin password; every other session ends.
async fn change_password(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(who): Extension<Identity>,
    headers: HeaderMap,
    body: Result<Json<PasswordBody>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(body) = body?;
    let username = match &who {
        Identity::User(u) => u.clone(),
        Identity::Token(_) => ADMIN.to_owned(),
    };
    let keep = cookie(&headers, SESSION_COOKIE);
    st.auth
        .change_password(
            peer.ip(),
            username.clone(),
            body.current_password,
            body.new_password,
            keep,
        )
        .await
        .map_err(|e| match e {
            LoginError::Invalid => {
                ApiError::new(StatusCode::FORBIDDEN, "the current password is wrong")
            }
            e => login_error(e, StatusCode::FORBIDDEN),
        })?;
    tracing::info!(user = %username, %peer, "password changed");
    st.history.record(
        EventKind::PasswordChanged,
        None,
        format!("password of {username} changed; every other session ended"),
        Some(&who.actor()),
    );
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every browser session, this one included.
async fn logout_everywhere(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
) -> Result<Response, ApiError> {
    let auth = st.auth.clone();
    let n = tokio::task::spawn_blocking(move || auth.logout_everywhere()).await??;
    st.history.record(
        EventKind::LoggedOutEverywhere,
        None,
        format!("every browser session ended ({n})"),
        Some(&who.actor()),
    );
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&st, "", 0));
    Ok(res)
}

async fn logout(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(session) = cookie(&headers, SESSION_COOKIE) {
        let auth = st.auth.clone();
        tokio::task::spawn_blocking(move || auth.logout(&session)).await??;
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&st, "", 0));
    Ok(res)
}

async fn me(Extension(who): Extension<Identity>) -> Json<Value> {
    match who {
        Identity::User(u) => Json(json!({ "username": u })),
        Identity::Token(t) => Json(json!({ "token": t })),
    }
}

async fn list_tokens(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let auth = st.auth.clone();
    let tokens = tokio::task::spawn_blocking(move || auth.tokens()).await??;
    Ok(Json(Value::Array(
        tokens
            .into_iter()
            .map(|t| {
                json!({
                    "id": t.id,
                    "name": t.name,
                    "created_at": unix_time(t.created_at),
                    "last_used_at": t.last_used_at.map(unix_time),
                })
            })
            .collect(),
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    name: String,
}

async fn create_token(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    body: Result<Json<TokenBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body?;
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::bad_request(
            "a token needs a name of 1 to 100 characters",
        ));
    }
    let auth = st.auth.clone();
    let n = name.clone();
    let (id, token) = tokio::task::spawn_blocking(move || auth.create_token(&n)).await??;
    st.history.record(
        EventKind::TokenCreated,
        None,
        format!("API token {name:?} created"),
        Some(&who.actor()),
    );
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "name": name, "token": token })),
    ))
}

async fn delete_token(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let auth = st.auth.clone();
    let i = id.clone();
    if !tokio::task::spawn_blocking(move || auth.delete_token(&i)).await?? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no token with id {id:?}"),
        ));
    }
    st.history.record(
        EventKind::TokenDeleted,
        None,
        format!("API token {id} deleted"),
        Some(&who.actor()),
    );
    Ok(StatusCode::NO_CONTENT)
}
