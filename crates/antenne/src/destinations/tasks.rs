//! The destinations' running side: a relay task per enabled destination
//! (its supervisor, fed from its source), or OBS driven for destinations
//! that OBS streams itself.

use std::sync::Arc;

use tokio::task::JoinHandle;

use super::{Destination, Destinations, Entry, Running};
use crate::output::{supervisor, OutputState, OutputStats};

impl Destinations {
    /// Starts what an enabled destination needs: a relay task, or OBS.
    pub(super) fn activate(
        &self,
        entry: &Entry,
        previous: Option<JoinHandle<()>>,
    ) -> Option<Running> {
        match &entry.dest.via_obs {
            None => Some(self.start(entry, previous)),
            Some(via) => {
                entry.stats.set_state(OutputState::Idle);
                self.drive_obs(&entry.dest, via, true, &entry.stats);
                None
            }
        }
    }

    pub(super) fn drive_obs(
        &self,
        dest: &Destination,
        via: &str,
        on: bool,
        stats: &Arc<OutputStats>,
    ) {
        match self.direct.get() {
            Some(d) => d.switch(via, &dest.url, dest.key.expose(), on, stats.clone()),
            None => stats.set_error("OBS control is not available".into()),
        }
    }

    fn start(&self, entry: &Entry, previous: Option<JoinHandle<()>>) -> Running {
        let cancel = self.shutdown.child_token();
        entry.stats.set_state(OutputState::Idle);
        let feed = self.feed(entry);
        let supervise = {
            let (id, target) = (entry.dest.id.clone(), entry.dest.target.clone());
            let (stats, ctx, cancel) = (entry.stats.clone(), self.ctx.clone(), cancel.clone());
            let history = self.history.clone();
            async move {
                if let Some(previous) = previous {
                    let _ = previous.await;
                }
                // The ingest key was resolved from the hubs, so the hub is
                // there.
                if let Some(feed) = feed {
                    supervisor::supervise(id, target, feed, stats, ctx, history, cancel).await;
                }
            }
        };
        let span = tracing::info_span!("output", destination = %entry.dest.id);
        // Destinations of one ingest share a thread until there are many.
        let stream = {
            use std::hash::{BuildHasher, BuildHasherDefault};
            BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .hash_one(entry.dest.ingest.expose())
        };
        let task = self.ctx.lanes.spawn(
            &self.tracker,
            stream,
            tracing::Instrument::instrument(supervise, span),
        );
        Running { cancel, task }
    }
}
