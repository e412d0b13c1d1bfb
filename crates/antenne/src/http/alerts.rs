//! The alert webhooks' API (Settings → Alerts): list, add, change, delete,
//! and "send a test". A webhook's URL (a Discord or Slack URL is its own
//! credential) and its signing secret are masked in answers unless
//! `?reveal=keys`; the secret is shown in clear once, when created.
//! Changes go to the store off the runtime's threads, then to the running
//! [`Alerts`](crate::alerts::Alerts), under its write lock.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::alerts::{self, WebhookInput};
use crate::auth::Identity;
use crate::history::EventKind;
use crate::store::StoredWebhook;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/alerts/webhooks", get(list).post(create))
        .route("/api/v1/alerts/webhooks/{id}", patch(update).delete(remove))
        .route("/api/v1/alerts/webhooks/{id}/test", post(test))
}

#[derive(Debug, Default, Deserialize)]
struct RevealQuery {
    reveal: Option<String>,
}

impl RevealQuery {
    fn keys(&self) -> bool {
        self.reveal.as_deref() == Some("keys")
    }
}

/// A webhook as the API shows it.
#[derive(Debug, Serialize)]
struct WebhookJson {
    id: String,
    url: String,
    format: String,
    events: Vec<String>,
    secret: String,
    created_at: String,
}

impl WebhookJson {
    fn new(w: &StoredWebhook, reveal: bool) -> Self {
        WebhookJson {
            id: w.id.clone(),
            url: if reveal {
                w.url.clone()
            } else {
                alerts::masked_url(&w.url)
            },
            format: w.format.clone(),
            events: w.events.clone(),
            secret: if reveal {
                w.secret.clone()
            } else {
                crate::secret::mask(&w.secret)
            },
            created_at: super::api::unix_time(w.created_at),
        }
    }
}

async fn list(State(st): State<AppState>, Query(q): Query<RevealQuery>) -> Json<Vec<WebhookJson>> {
    Json(
        st.alerts
            .webhooks()
            .iter()
            .map(|w| WebhookJson::new(w, q.keys()))
            .collect(),
    )
}

fn find(st: &AppState, id: &str) -> Result<StoredWebhook, ApiError> {
    st.alerts
        .webhooks()
        .iter()
        .find(|w| w.id == id)
        .cloned()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no webhook {id}")))
}

/// Runs `write` on the store, then reloads the webhooks into the alerts.
async fn save(
    st: &AppState,
    write: impl FnOnce(&crate::store::Store) -> Result<bool, crate::store::StoreError> + Send + 'static,
) -> Result<bool, ApiError> {
    let store = st.store.clone();
    let (done, list) = tokio::task::spawn_blocking(move || {
        let done = write(&store)?;
        Ok::<_, crate::store::StoreError>((done, store.webhooks()?))
    })
    .await??;
    st.alerts.set_webhooks(list);
    Ok(done)
}

async fn create(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    body: Result<Json<WebhookInput>, JsonRejection>,
) -> Result<(StatusCode, Json<WebhookJson>), ApiError> {
    let Json(input) = body?;
    let _writing = st.alerts.writing().await;
    if st.alerts.webhooks().len() >= alerts::MAX_WEBHOOKS {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("at most {} webhooks", alerts::MAX_WEBHOOKS),
        ));
    }
    let w = alerts::build(input, None).map_err(ApiError::bad_request)?;
    let stored = w.clone();
    save(&st, move |s| s.insert_webhook(&stored).map(|()| true)).await?;
    st.history.record(
        EventKind::Settings,
        None,
        format!("alert webhook added: {}", alerts::masked_url(&w.url)),
        Some(&who.actor()),
    );
    Ok((StatusCode::CREATED, Json(WebhookJson::new(&w, true))))
}

async fn update(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
    Query(q): Query<RevealQuery>,
    body: Result<Json<WebhookInput>, JsonRejection>,
) -> Result<Json<WebhookJson>, ApiError> {
    let _writing = st.alerts.writing().await;
    let base = find(&st, &id)?;
    let Json(input) = body?;
    if input.secret.is_some() {
        return Err(ApiError::bad_request(
            "a webhook's secret cannot be changed: delete it and add it again",
        ));
    }
    let w = alerts::build(input, Some(base)).map_err(ApiError::bad_request)?;
    let stored = w.clone();
    if !save(&st, move |s| s.update_webhook(&stored)).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no webhook {id}"),
        ));
    }
    st.history.record(
        EventKind::Settings,
        None,
        format!("alert webhook changed: {}", alerts::masked_url(&w.url)),
        Some(&who.actor()),
    );
    Ok(Json(WebhookJson::new(&w, q.keys())))
}

async fn remove(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let _writing = st.alerts.writing().await;
    let w = find(&st, &id)?;
    let target = id.clone();
    if !save(&st, move |s| s.delete_webhook(&target)).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no webhook {id}"),
        ));
    }
    st.history.record(
        EventKind::Settings,
        None,
        format!("alert webhook deleted: {}", alerts::masked_url(&w.url)),
        Some(&who.actor()),
    );
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize)]
struct TestJson {
    delivered: bool,
    status: u16,
}

/// One attempt, now; a receiver that fails answers 502 with its reason.
async fn test(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TestJson>, ApiError> {
    let w = find(&st, &id)?;
    match st.alerts.test(&w).await {
        Ok(status) => Ok(Json(TestJson {
            delivered: true,
            status,
        })),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("the test alert was not delivered: {e}"),
        )),
    }
}
