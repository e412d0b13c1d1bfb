//! Live updates for the web interface: Server-Sent Events with a snapshot
//! of every ingest and destination, at connect and then every second.
//!
//! A snapshot reads the destinations' published list and the hubs' state:
//! it never waits on a change being saved, nor touches the disk.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures_util::stream::{Stream, StreamExt};
use tokio_stream::wrappers::IntervalStream;

use super::api::{destinations, ingests};
use super::views::{Keys, SnapshotJson};
use super::AppState;

/// Time between snapshots.
pub const PERIOD: Duration = Duration::from_secs(1);

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/events/stream", get(stream))
}

async fn stream(State(st): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let ticks = IntervalStream::new(tokio::time::interval(PERIOD));
    let events = ticks.map(move |_| {
        let snapshot = SnapshotJson {
            ingests: ingests(&st, Keys::Masked),
            destinations: destinations(&st, Keys::Masked),
        };
        let data = serde_json::to_string(&snapshot).unwrap_or_default();
        Ok(Event::default().event("snapshot").data(data))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
