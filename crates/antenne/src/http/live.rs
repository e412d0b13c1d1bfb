//! Live updates for the web interface: Server-Sent Events with a snapshot
//! of every ingest and destination, at connect and then every second.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures_util::stream::{Stream, StreamExt};
use serde_json::json;
use tokio_stream::wrappers::IntervalStream;

use super::api::{destination_json, ingests_json};
use super::AppState;

/// Time between snapshots.
pub const PERIOD: Duration = Duration::from_secs(1);

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/events/stream", get(stream))
}

async fn stream(State(st): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let ticks = IntervalStream::new(tokio::time::interval(PERIOD));
    let events = ticks.map(move |_| {
        let d = &st.destinations;
        let destinations: Vec<_> = d
            .list()
            .iter()
            .map(|v| destination_json(v, false))
            .collect();
        let mut snapshot = ingests_json(d, false);
        snapshot["destinations"] = json!(destinations);
        Ok(Event::default()
            .event("snapshot")
            .data(snapshot.to_string()))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
