//! The REST API (JSON) under `/api/v1`. Handlers get what they need from
//! [`AppState`] (destinations, ingest keys, hubs, store, history, presets)
//! and answer typed views ([`super::views`]); every error is an
//! [`ApiError`], answered `{"error": "…"}` with a status that says whose
//! fault it is (the mapping from each domain error is below, in one place).
//!
//! Stream keys are masked in every answer unless `?reveal=keys` is asked.
//! Nothing here touches the disk on the runtime's threads: store calls run
//! in `spawn_blocking`, and the destinations save theirs the same way.

use std::collections::HashMap;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Extension, Json, Router};
use serde::Deserialize;

pub(crate) use super::views::unix_time;
use super::views::{
    BulkSwitchJson, DestinationJson, EventJson, HealthJson, IngestJson, IngestKeyJson, IngestsJson,
    Keys, RuntimeJson, SettingsJson,
};
use super::{ApiError, AppState};
use crate::auth::Identity;
use crate::destinations::{DestinationError, DestinationInput};
use crate::history::EventKind;
use crate::ingest_keys::IngestKeyError;
use crate::presets::Preset;
use crate::store::{Store, StoreError, SETTING_PUBLIC_HOST};

/// The OpenAPI document of this API, kept beside the code it describes.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/runtime", get(runtime))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/ingest", get(ingest))
        .route(
            "/api/v1/ingest-keys",
            get(list_ingest_keys).post(add_ingest_key),
        )
        .route("/api/v1/ingest-keys/{id}", delete(delete_ingest_key))
        .route(
            "/api/v1/ingest-keys/{id}/srt-passphrase",
            put(set_srt_passphrase),
        )
        .route(
            "/api/v1/ingest-keys/{id}/destinations/enable-all",
            post(enable_all),
        )
        .route(
            "/api/v1/ingest-keys/{id}/destinations/disable-all",
            post(disable_all),
        )
        .route("/api/v1/destinations", get(list).post(create))
        .route("/api/v1/destinations/order", put(reorder))
        .route(
            "/api/v1/destinations/{id}",
            get(get_one).patch(update).delete(remove),
        )
        .route("/api/v1/settings", get(settings).put(put_settings))
        .route("/api/v1/events", get(events))
        .route("/api/v1/presets", get(presets))
}

// === errors: each domain error to its answer ===

impl From<DestinationError> for ApiError {
    fn from(e: DestinationError) -> Self {
        match e {
            DestinationError::NotFound(_) | DestinationError::IngestNotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, e.to_string())
            }
            DestinationError::ObsMainBusy(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            DestinationError::Store(s) => s.into(),
            _ => ApiError::bad_request(e.to_string()),
        }
    }
}

impl From<IngestKeyError> for ApiError {
    fn from(e: IngestKeyError) -> Self {
        match e {
            IngestKeyError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
            IngestKeyError::Invalid(_) => ApiError::bad_request(e.to_string()),
            IngestKeyError::Store(s) => s.into(),
            IngestKeyError::Fixed
            | IngestKeyError::Exists
            | IngestKeyError::Last
            | IngestKeyError::InUse
            | IngestKeyError::Live => ApiError::new(StatusCode::CONFLICT, e.to_string()),
        }
    }
}

/// Runs a store call off the runtime's threads.
async fn blocking<T: Send + 'static>(
    store: &std::sync::Arc<Store>,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    Ok(store.off_runtime(f).await?)
}

// === queries ===

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RevealQuery {
    reveal: Option<String>,
}

impl RevealQuery {
    pub(crate) fn keys(&self) -> Keys {
        let reveal = self
            .reveal
            .as_deref()
            .is_some_and(|r| r.split(',').any(|x| x == "keys"));
        if reveal {
            Keys::Revealed
        } else {
            Keys::Masked
        }
    }
}

// === process ===

async fn health() -> Json<HealthJson> {
    Json(HealthJson { status: "ok" })
}

/// What the process holds right now: live tokio tasks, open file
/// descriptors, threads and resident memory. The soak run
/// (`bench/soak.py`) checks they come back to their starting level.
async fn runtime() -> Result<Json<RuntimeJson>, ApiError> {
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    // /proc reads are file I/O: off the runtime's threads.
    let (open_fds, status) = tokio::task::spawn_blocking(|| {
        (
            std::fs::read_dir("/proc/self/fd").map(|d| d.count()).ok(),
            std::fs::read_to_string("/proc/self/status").unwrap_or_default(),
        )
    })
    .await?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    Ok(Json(RuntimeJson {
        tasks,
        open_fds,
        threads: field("Threads:"),
        rss_kib: field("VmRSS:"),
        preview_viewers: crate::preview::viewers(),
    }))
}

async fn openapi() -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI_JSON,
    )
}

// === ingest ===

/// Every ingest as the API shows it (also the live view's).
pub(crate) fn ingests(st: &AppState, keys: Keys) -> Vec<IngestJson> {
    let srt = st.ingest_keys.srt_passphrases();
    st.hubs
        .all()
        .iter()
        .map(|h| {
            let mut json = IngestJson::new(h, keys);
            json.pull = st
                .pulls
                .get(h.key().expose())
                .map(|v| super::pull::PullJson::new(Some(v), keys));
            json.standby = st.standby.status(&json.id);
            json.srt_passphrase_set = srt.get(h.key().expose()).is_some();
            json
        })
        .collect()
}

async fn ingest(State(st): State<AppState>, Query(q): Query<RevealQuery>) -> Json<IngestsJson> {
    Json(IngestsJson {
        ingests: ingests(&st, q.keys()),
    })
}

async fn list_ingest_keys(
    State(st): State<AppState>,
    Query(q): Query<RevealQuery>,
) -> Json<Vec<IngestKeyJson>> {
    let keys = q.keys();
    let srt = st.ingest_keys.srt_passphrases();
    Json(
        st.hubs
            .all()
            .iter()
            .map(|h| {
                let set = srt.get(h.key().expose()).is_some();
                IngestKeyJson::new(h.key(), h.is_live(), set, keys)
            })
            .collect(),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IngestKeyBody {
    key: Option<String>,
    #[serde(default)]
    name: String,
}

async fn add_ingest_key(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    body: Result<Json<IngestKeyBody>, JsonRejection>,
) -> Result<(StatusCode, Json<IngestKeyJson>), ApiError> {
    if st.ingest_keys.fixed() {
        return Err(IngestKeyError::Fixed.into());
    }
    let Json(body) = body?;
    let key = st
        .ingest_keys
        .add(body.key, body.name, &who.actor())
        .await?;
    // The new key is shown once, in clear, to the one who made it.
    Ok((
        StatusCode::CREATED,
        Json(IngestKeyJson::new(&key, false, false, Keys::Revealed)),
    ))
}

async fn delete_ingest_key(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let key = st
        .hubs
        .all()
        .iter()
        .map(|h| h.key().expose().to_owned())
        .find(|k| crate::ingest_keys::id_of(k) == id);
    st.ingest_keys
        .delete(&id, &st.destinations, &who.actor())
        .await?;
    // A deleted key's pull goes with it.
    if let Some(key) = key {
        st.pulls.remove(&key, &who.actor()).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SrtPassphraseBody {
    /// `null` or empty: no passphrase (SRT without encryption).
    passphrase: Option<String>,
}

async fn set_srt_passphrase(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
    body: Result<Json<SrtPassphraseBody>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(body) = body?;
    st.ingest_keys
        .set_srt_passphrase(&id, body.passphrase, &who.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// === destinations ===

/// Every destination as the API shows it (also the live view's).
pub(crate) fn destinations(st: &AppState, keys: Keys) -> Vec<DestinationJson> {
    st.destinations
        .list()
        .iter()
        .map(|v| DestinationJson::new(v, keys))
        .collect()
}

async fn list(
    State(st): State<AppState>,
    Query(q): Query<RevealQuery>,
) -> Json<Vec<DestinationJson>> {
    Json(destinations(&st, q.keys()))
}

async fn get_one(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RevealQuery>,
) -> Result<Json<DestinationJson>, ApiError> {
    let v = st.destinations.get(&id)?;
    Ok(Json(DestinationJson::new(&v, q.keys())))
}

/// Body of POST and PATCH. Unknown fields are refused so that a typo
/// (`"enable": false`) is an error rather than a silent no-op.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DestinationBody {
    name: Option<String>,
    platform: Option<String>,
    url: Option<String>,
    key: Option<String>,
    enabled: Option<bool>,
    ingest: Option<String>,
    /// Absent: unchanged; `null`: relayed by antenne; a string: streamed
    /// by OBS itself (`main` or an output name).
    #[serde(default, deserialize_with = "present")]
    via_obs: Option<Option<String>>,
    /// `"ingest"`, `"vertical"`, `{"track": N}` or `{"rendition": ID}`;
    /// absent: unchanged.
    source: Option<super::views::SourceJson>,
    /// The ingest's audio track (0: the main one); absent: unchanged.
    audio_track: Option<u8>,
}

/// Tells a field set to `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl From<DestinationBody> for DestinationInput {
    fn from(b: DestinationBody) -> Self {
        DestinationInput {
            name: b.name,
            platform: b.platform,
            url: b.url,
            key: b.key,
            enabled: b.enabled,
            ingest: b.ingest,
            via_obs: b.via_obs,
            source: b.source.map(Into::into),
            audio_track: b.audio_track,
        }
    }
}

async fn create(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Query(q): Query<RevealQuery>,
    body: Result<Json<DestinationBody>, JsonRejection>,
) -> Result<(StatusCode, Json<DestinationJson>), ApiError> {
    let Json(body) = body?;
    let v = st.destinations.create(body.into(), &who.actor()).await?;
    Ok((
        StatusCode::CREATED,
        Json(DestinationJson::new(&v, q.keys())),
    ))
}

async fn update(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
    Query(q): Query<RevealQuery>,
    body: Result<Json<DestinationBody>, JsonRejection>,
) -> Result<Json<DestinationJson>, ApiError> {
    // An unknown id is a 404 even when the body is also wrong.
    st.destinations.get(&id)?;
    let Json(body) = body?;
    let v = st
        .destinations
        .update(&id, body.into(), &who.actor())
        .await?;
    Ok(Json(DestinationJson::new(&v, q.keys())))
}

async fn remove(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.destinations.delete(&id, &who.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

// === many destinations at once ===

/// "Turn all on": every destination of one ingest, in one step; one that
/// the rules keep off (a second on OBS's main output) is listed in
/// `skipped` with the reason.
async fn enable_all(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<Json<BulkSwitchJson>, ApiError> {
    switch_all(st, who, id, true).await
}

/// "Turn all off": every destination of one ingest, in one step.
async fn disable_all(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<Json<BulkSwitchJson>, ApiError> {
    switch_all(st, who, id, false).await
}

async fn switch_all(
    st: AppState,
    who: Identity,
    id: String,
    on: bool,
) -> Result<Json<BulkSwitchJson>, ApiError> {
    let done = st.destinations.switch_all(&id, on, &who.actor()).await?;
    Ok(Json(BulkSwitchJson::new(
        &done,
        destinations(&st, Keys::Masked),
    )))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderBody {
    ids: Vec<String>,
}

/// The display order: `ids` names every destination once, first first.
async fn reorder(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    body: Result<Json<OrderBody>, JsonRejection>,
) -> Result<Json<Vec<DestinationJson>>, ApiError> {
    let Json(body) = body?;
    let list = st.destinations.reorder(&body.ids, &who.actor()).await?;
    Ok(Json(
        list.iter()
            .map(|v| DestinationJson::new(v, Keys::Masked))
            .collect(),
    ))
}

// === settings, history, presets ===

async fn settings(State(st): State<AppState>) -> Result<Json<SettingsJson>, ApiError> {
    let host = blocking(&st.store, |s| s.setting(SETTING_PUBLIC_HOST)).await?;
    Ok(Json(SettingsJson {
        rtmp_port: st.rtmp_port,
        rtmps_port: st.rtmps_port,
        srt_port: match &st.srt {
            crate::ingest::srt::SrtStatus::Listening(a) => Some(a.port()),
            _ => None,
        },
        srt_unavailable: match &st.srt {
            crate::ingest::srt::SrtStatus::Unavailable(why) => Some(why.clone()),
            _ => None,
        },
        public_host: host.unwrap_or_default(),
        ingest_keys_fixed: st.ingest_keys.fixed(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    public_host: Option<String>,
}

async fn put_settings(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    body: Result<Json<SettingsBody>, JsonRejection>,
) -> Result<Json<SettingsJson>, ApiError> {
    let Json(body) = body?;
    if let Some(host) = body.public_host {
        let host = host.trim().to_owned();
        // Empty means "unset": OBS settings then show the browser's host.
        if !host.is_empty() && !crate::obs::valid_host(&host) {
            return Err(ApiError::bad_request(
                "public_host must be a host name or IP address, without rtmp:// or a path",
            ));
        }
        let h = host.clone();
        blocking(&st.store, move |s| s.set_setting(SETTING_PUBLIC_HOST, &h)).await?;
        st.history.record(
            EventKind::Settings,
            None,
            format!("public host set to {host:?}"),
            Some(&who.actor()),
        );
    }
    settings(State(st)).await
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    destination: Option<String>,
    limit: Option<u32>,
}

async fn events(
    State(st): State<AppState>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<Vec<EventJson>>, ApiError> {
    let dest = q.destination.filter(|d| !d.is_empty());
    let limit = q.limit.unwrap_or(200);
    let list = blocking(&st.store, move |s| s.events(dest.as_deref(), limit)).await?;
    let names: HashMap<String, String> = st
        .destinations
        .list()
        .into_iter()
        .map(|v| (v.dest.id, v.dest.name))
        .collect();
    Ok(Json(
        list.into_iter()
            .map(|e| EventJson::new(e, &names))
            .collect(),
    ))
}

async fn presets(State(st): State<AppState>) -> Json<Vec<Preset>> {
    Json(st.presets.all().to_vec())
}
