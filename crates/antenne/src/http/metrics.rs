//! `GET /metrics`: the Prometheus scrape ([`crate::metrics`]). On the web
//! port it needs a bearer token (an API token, or a session), like the API;
//! with `--metrics-listen` it is also served, open, on an address of its own
//! (a private network or loopback, for a Prometheus that holds no token).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::{ApiError, AppState};
use crate::destinations::Destinations;
use crate::ingest::Hubs;

/// What a scrape reads.
#[derive(Clone)]
pub struct Sources {
    destinations: Arc<Destinations>,
    hubs: Hubs,
}

/// The route on the web port (behind the API's authentication).
pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/metrics",
        get(|State(st): State<AppState>| {
            scrape(Sources {
                destinations: st.destinations,
                hubs: st.hubs,
            })
        }),
    )
}

/// The whole application of the `--metrics-listen` address: `/metrics`,
/// open, and nothing else.
pub fn open_router(destinations: Arc<Destinations>, hubs: Hubs) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(sources): State<Sources>| scrape(sources)),
        )
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .with_state(Sources { destinations, hubs })
}

async fn scrape(sources: Sources) -> Result<impl IntoResponse, ApiError> {
    // /proc reads are file I/O: off the runtime's threads.
    let text = tokio::task::spawn_blocking(move || {
        crate::metrics::render(&sources.destinations, &sources.hubs)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text))
}
