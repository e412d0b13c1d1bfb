//! `POST /api/v1/import/nginx`: the web interface's "Move in from
//! nginx-rtmp". The body carries the text of nginx.conf (and optionally
//! stunnel.conf); the answer is the plan ([`crate::import`]), keys masked.
//! Nothing is created unless the body says `"dry_run": false`; then each
//! planned destination is created through [`Destinations::create`] (the
//! API's rules and registry), after all of them were checked with
//! [`import::problems`] (the same rules) against those already there, so a
//! plan that breaks a rule creates nothing. (A save that fails midway —
//! a full disk — keeps those created before it; the error says so.)
//!
//! [`Destinations::create`]: crate::destinations::Destinations::create

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};

use super::views::{DestinationJson, Keys};
use super::{ApiError, AppState};
use crate::auth::Identity;
use crate::destinations::DestinationInput;
use crate::import::{self, IngestPoint, Note, PlannedView};
use crate::ingest;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/import/nginx", post(import_nginx))
}

/// The largest configuration accepted, per file.
const MAX_CONF: usize = 256 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    nginx: String,
    #[serde(default)]
    stunnel: Option<String>,
    /// `true` (the default): only answer the plan.
    #[serde(default = "yes")]
    dry_run: bool,
}

fn yes() -> bool {
    true
}

#[derive(Serialize)]
struct PlanJson {
    destinations: Vec<PlannedView>,
    ingests: Vec<IngestPoint>,
    obs: Vec<String>,
    notes: Vec<Note>,
    /// The destinations created (`dry_run: false`), keys masked.
    created: Vec<DestinationJson>,
}

async fn import_nginx(
    State(st): State<AppState>,
    Extension(who): Extension<Identity>,
    body: Result<Json<ImportBody>, JsonRejection>,
) -> Result<(StatusCode, Json<PlanJson>), ApiError> {
    let Json(body) = body?;
    if body.nginx.len() > MAX_CONF || body.stunnel.as_ref().is_some_and(|s| s.len() > MAX_CONF) {
        return Err(ApiError::bad_request(format!(
            "a configuration file may be at most {} KiB",
            MAX_CONF / 1024
        )));
    }
    let current = st.destinations.list();
    let names: Vec<String> = current.iter().map(|v| v.dest.name.clone()).collect();
    let presets = st.presets.clone();
    let (nginx, stunnel) = (body.nginx, body.stunnel);
    let plan = tokio::task::spawn_blocking(move || {
        import::plan(
            &nginx,
            stunnel.as_deref().filter(|s| !s.trim().is_empty()),
            &presets,
            &names,
        )
    })
    .await?
    .map_err(|e| ApiError::bad_request(format!("nothing was created: {e}")))?;
    let mut answer = PlanJson {
        destinations: plan.destinations.iter().map(|d| d.view()).collect(),
        ingests: plan.ingests.clone(),
        obs: plan.obs_advice(st.rtmp_port, ingest::APP),
        notes: plan.notes.clone(),
        created: Vec::new(),
    };
    if body.dry_run || plan.destinations.is_empty() {
        return Ok((StatusCode::OK, Json(answer)));
    }
    // Every rule, all planned destinations together with those there.
    let ingest = st
        .hubs
        .first()
        .map(|h| h.key().expose().to_owned())
        .unwrap_or_default();
    let existing: Vec<_> = current.iter().map(stored_of).collect();
    let new = import::stored(&plan, &ingest);
    let problems = import::problems(&existing, &new, &st.presets);
    if !problems.is_empty() {
        return Err(ApiError::bad_request(format!(
            "nothing was created: {}",
            problems.join("; ")
        )));
    }
    for d in &plan.destinations {
        let input = DestinationInput {
            name: Some(d.name.clone()),
            platform: Some(d.platform.clone()),
            url: Some(d.url.clone()),
            key: Some(d.key.expose().to_owned()),
            enabled: Some(true),
            ingest: None,
            via_obs: None,
            source: None,
            audio_track: None,
        };
        match st.destinations.create(input, &who.actor()).await {
            Ok(v) => answer.created.push(DestinationJson::new(&v, Keys::Masked)),
            Err(e) if answer.created.is_empty() => return Err(e.into()),
            Err(e) => {
                let done = answer.created.len();
                let total = plan.destinations.len();
                let e = ApiError::from(e);
                return Err(ApiError::new(
                    e.status(),
                    format!(
                        "{done} of {total} destinations were created, then {:?} failed: {}",
                        d.name,
                        e.message()
                    ),
                ));
            }
        }
    }
    Ok((StatusCode::CREATED, Json(answer)))
}

/// A destination as the rules see it.
fn stored_of(v: &crate::destinations::DestinationView) -> crate::store::StoredDestination {
    let d = &v.dest;
    crate::store::StoredDestination {
        id: d.id.clone(),
        name: d.name.clone(),
        platform: d.platform.clone(),
        url: d.url.clone(),
        key: d.key.expose().to_owned(),
        enabled: d.enabled,
        ingest: d.ingest.expose().to_owned(),
        via_obs: d.via_obs.clone(),
        source: d.source.rendition().map(str::to_owned),
        tracks: d.source.stored_tracks(d.audio_track),
    }
}
