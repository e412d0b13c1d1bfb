//! What a destination relays ([`Source`]): its ingest's hub, or the
//! output hub of one of the ingest's renditions
//! ([`crate::encoders::registry::Renditions`]).
//!
//! Invariant: a destination relaying a rendition holds one demand guard
//! of it for as long as its relay task runs (i.e. while it is enabled),
//! so the rendition's ffmpeg runs exactly while its ingest is live and
//! some enabled destination relays it.

use std::sync::Arc;

use super::{Destinations, Entry, Source};
use crate::encoders::Demand;
use crate::hub::Hub;
use crate::secret::StreamKey;

use super::DestinationError;

impl Destinations {
    /// Connects the renditions (once, at start-up, before [`Self::load`]):
    /// a destination whose source is a rendition relays its output.
    pub fn set_renditions(&self, renditions: Arc<crate::encoders::registry::Renditions>) {
        let _ = self.renditions.set(renditions);
    }

    /// Whether some destination relays rendition `id`.
    pub fn uses_rendition(&self, id: &str) -> bool {
        self.snapshot()
            .iter()
            .any(|e| e.dest.source.rendition() == Some(id))
    }

    /// Checks that `source` names a rendition of `ingest`.
    pub(super) fn check_source(
        &self,
        source: &Source,
        ingest: &StreamKey,
    ) -> Result<(), DestinationError> {
        let Some(id) = source.rendition() else {
            return Ok(());
        };
        let renditions = self.renditions.get();
        match renditions.and_then(|r| r.ingest_of(id)) {
            None => Err(DestinationError::UnknownRendition(id.to_owned())),
            Some(key) if !ingest.matches(&key) => {
                Err(DestinationError::RenditionOfAnotherIngest(id.to_owned()))
            }
            Some(_) => Ok(()),
        }
    }

    /// The hub the destination's task relays, with its demand of a
    /// rendition (held by the task).
    pub(super) fn source_hub(&self, entry: &Entry) -> (Option<Arc<Hub>>, Option<Demand>) {
        let ingest_hub = self.hubs.find(entry.dest.ingest.expose());
        // A rendition source: its output hub, and our demand for it
        // (held while this task runs, i.e. while the destination is on).
        match entry.dest.source.rendition() {
            None => (ingest_hub, None),
            Some(id) => match self.renditions.get().and_then(|r| r.get(id)) {
                Some(r) => (Some(r.output().clone()), Some(r.acquire())),
                None => {
                    entry
                        .stats
                        .set_error(format!("no rendition with id {id:?}"));
                    (None, None)
                }
            },
        }
    }
}
