//! `/api/v1/obs`: OBS under antenne's control (see [`crate::obs`]).
//!
//! Commands while OBS is not connected answer 409
//! `{"error": "OBS is not connected (<state>)"}`; OBS refusing answers 502
//! `{"error": "OBS answered: …"}`; changing OBS's stream settings while it
//! streams answers 409 with `"streaming": true` unless the body says
//! `{"restart": true}`.

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

mod multitrack;

use super::AppState;
use crate::auth::Identity;
use crate::obs::{ObsError, SettingsUpdate};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/obs", get(get_obs).put(put_obs))
        .route("/api/v1/obs/stream/start", post(stream_start))
        .route("/api/v1/obs/stream/stop", post(stream_stop))
        .route("/api/v1/obs/point-to-antenne", post(point_to_antenne))
        .route(
            "/api/v1/obs/restore-previous-service",
            post(restore_previous_service),
        )
        .route("/api/v1/obs/scene", post(set_scene))
        .route("/api/v1/obs/multitrack-config", get(multitrack::get))
        .route("/api/v1/obs/outputs", get(outputs))
        .route("/api/v1/obs/outputs/{name}", get(output_status))
        .route("/api/v1/obs/outputs/{name}/start", post(output_start))
        .route("/api/v1/obs/outputs/{name}/stop", post(output_stop))
}

/// An error answer of these routes.
#[derive(Debug)]
pub struct ObsApiError {
    status: StatusCode,
    body: Value,
}

impl ObsApiError {
    fn bad_request(message: impl Into<String>) -> Self {
        ObsApiError {
            status: StatusCode::BAD_REQUEST,
            body: json!({ "error": message.into() }),
        }
    }
}

impl From<ObsError> for ObsApiError {
    fn from(e: ObsError) -> Self {
        let status = match &e {
            ObsError::NotConnected(_)
            | ObsError::Streaming
            | ObsError::NotControllable { .. }
            | ObsError::NoPreviousService
            | ObsError::NoIngestKey => StatusCode::CONFLICT,
            ObsError::NoSuchOutput(_) => StatusCode::NOT_FOUND,
            ObsError::Refused(_) | ObsError::Timeout => StatusCode::BAD_GATEWAY,
            ObsError::Invalid(_) => StatusCode::BAD_REQUEST,
            ObsError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            ObsError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut body = json!({ "error": e.to_string() });
        if matches!(e, ObsError::Streaming) {
            body["streaming"] = json!(true);
        }
        ObsApiError { status, body }
    }
}

impl From<JsonRejection> for ObsApiError {
    fn from(e: JsonRejection) -> Self {
        ObsApiError::bad_request(format!("invalid JSON body: {}", e.body_text()))
    }
}

impl IntoResponse for ObsApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

type Answer = Result<Json<Value>, ObsApiError>;

/// A JSON body that may be absent (empty body: the defaults).
fn optional_body<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, ObsApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ObsApiError::bad_request(format!("invalid JSON body: {e}")))
}

async fn view(st: &AppState) -> Answer {
    let v = st.obs.view().await?;
    Ok(Json(serde_json::to_value(v).unwrap_or(Value::Null)))
}

async fn get_obs(State(st): State<AppState>) -> Answer {
    view(&st).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    host: String,
    port: Option<u16>,
    password: Option<String>,
    auto_stream: Option<bool>,
}

async fn put_obs(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    body: Result<Json<SettingsBody>, JsonRejection>,
) -> Answer {
    let Json(body) = body?;
    st.obs
        .configure(
            SettingsUpdate {
                host: body.host,
                port: body.port,
                password: body.password,
                auto_stream: body.auto_stream,
            },
            &who.actor(),
        )
        .await?;
    view(&st).await
}

async fn stream_start(State(st): State<AppState>, Extension(who): Extension<Identity>) -> Answer {
    st.obs.start_stream(Some(&who.actor())).await?;
    view(&st).await
}

async fn stream_stop(State(st): State<AppState>, Extension(who): Extension<Identity>) -> Answer {
    st.obs.stop_stream(Some(&who.actor())).await?;
    view(&st).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestartBody {
    #[serde(default)]
    restart: bool,
}

async fn point_to_antenne(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    body: Bytes,
) -> Answer {
    let body: RestartBody = optional_body(&body)?;
    let outcome = st
        .obs
        .point_to_antenne(body.restart, Some(&who.actor()))
        .await?;
    let mut v = view(&st).await?.0;
    v["result"] = serde_json::to_value(outcome).unwrap_or(Value::Null);
    Ok(Json(v))
}

async fn restore_previous_service(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    body: Bytes,
) -> Answer {
    let body: RestartBody = optional_body(&body)?;
    st.obs
        .restore_previous_service(body.restart, Some(&who.actor()))
        .await?;
    view(&st).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SceneBody {
    name: String,
}

async fn set_scene(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    body: Result<Json<SceneBody>, JsonRejection>,
) -> Answer {
    let Json(body) = body?;
    if body.name.trim().is_empty() {
        return Err(ObsApiError::bad_request("name must not be empty"));
    }
    st.obs.set_scene(&body.name, Some(&who.actor())).await?;
    view(&st).await
}

async fn outputs(State(st): State<AppState>) -> Answer {
    let list = st.obs.outputs().await?;
    Ok(Json(json!({ "outputs": list })))
}

async fn output_status(State(st): State<AppState>, Path(name): Path<String>) -> Answer {
    let status = st.obs.output_status(&name).await?;
    Ok(Json(serde_json::to_value(status).unwrap_or(Value::Null)))
}

async fn output_start(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(name): Path<String>,
) -> Answer {
    st.obs
        .set_output_as(&name, true, Some(&who.actor()))
        .await?;
    output_status(State(st), Path(name)).await
}

async fn output_stop(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(name): Path<String>,
) -> Answer {
    st.obs
        .set_output_as(&name, false, Some(&who.actor()))
        .await?;
    output_status(State(st), Path(name)).await
}
