//! What a destination relays ([`Source`]) and how its connections get it
//! ([`Feed`]): its ingest's hub (the main picture), one of the ingest's
//! video tracks (OBS's multitrack video, copied), "vertical" (decided per
//! connection), or the output hub of one of the ingest's renditions
//! ([`crate::encoders::registry::Renditions`]).
//!
//! "Vertical" is decided when each connection starts (so again whenever
//! the ingest restarts): once the ingest has sent its first keyframe
//! (OBS sends every track's sequence header before it; we wait at most
//! [`TRACKS_WAIT`]), a portrait video track (height > width, from its SPS)
//! is copied, track 0 first if the whole ingest is portrait; else the
//! first portrait rendition of the ingest is relayed (cropped on the
//! server). With neither, the connection fails with a plain error ("no
//! vertical track from OBS and no vertical rendition: add one") and is
//! tried again with the destination's backoff. Decision: antenne does not
//! create a rendition by itself (ffmpeg costs CPU, and the streamer may
//! not want the crop): the error names the fix, and the destination
//! dialog offers the vertical template.
//!
//! Invariants: a destination relaying a rendition holds one demand guard
//! of it for as long as its relay task runs (rendition source) or its
//! connection runs (vertical falling back to a rendition), so the
//! rendition's ffmpeg runs exactly while its ingest is live and some
//! enabled destination relays it. [`RelayingNow`] holds an entry only
//! while a connection with a per-connection source runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::{DestinationError, Destinations, Entry, Relaying, Source};
use crate::encoders::registry::Renditions;
use crate::encoders::Demand;
use crate::hub::Hub;
use crate::output::feed::{Feed, PickFuture, Picked};
use crate::secret::StreamKey;

/// How long a vertical destination waits for the ingest's first keyframe
/// before deciding with what it knows.
pub const TRACKS_WAIT: Duration = Duration::from_secs(5);
/// How long a vertical destination falling back to a rendition waits for
/// its encoder's first output before connecting anyway.
const RENDITION_WAIT: Duration = Duration::from_secs(20);

/// The error a vertical destination shows when there is nothing vertical.
pub const NO_VERTICAL: &str =
    "no vertical track from OBS and no vertical rendition: add one (Renditions → Vertical 9:16)";

impl Destinations {
    /// Connects the renditions (once, at start-up, before [`Self::load`]):
    /// a destination whose source is a rendition relays its output.
    pub fn set_renditions(&self, renditions: Arc<Renditions>) {
        let _ = self.renditions.set(renditions);
    }

    /// Whether some destination relays rendition `id`: as its source, or
    /// now, as the fallback of a vertical source.
    pub fn uses_rendition(&self, id: &str) -> bool {
        self.snapshot().iter().any(|e| {
            e.dest.source.rendition() == Some(id)
                || matches!(self.relaying.get(&e.dest.id), Some(Relaying::Rendition { rendition, .. }) if rendition == id)
        })
    }

    /// Checks that `source` and `audio_track` make sense for `ingest`: the
    /// rules of [`super::validate::tracks`], and a rendition is one of
    /// `ingest`'s.
    pub(super) fn check_source(
        &self,
        source: &Source,
        audio_track: u8,
        ingest: &StreamKey,
    ) -> Result<(), DestinationError> {
        let stored = source.stored_tracks(audio_track);
        super::validate::tracks(source.rendition(), stored.as_ref())?;
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

    /// What the destination's task relays; `None` (with the error in its
    /// status) when its rendition is gone.
    pub(super) fn feed(&self, entry: &Entry) -> Option<Arc<dyn Feed>> {
        // The ingest key was resolved from the hubs, so the hub is there.
        let ingest = self.hubs.find(entry.dest.ingest.expose())?;
        let tracks = |video| TrackFeed {
            ingest: ingest.clone(),
            video,
            audio: entry.dest.audio_track,
            ingest_key: entry.dest.ingest.clone(),
            renditions: self.renditions.get().cloned(),
            id: entry.dest.id.clone(),
            relaying: self.relaying.clone(),
        };
        match &entry.dest.source {
            Source::Ingest if entry.dest.audio_track == 0 => Some(Arc::new(ingest)),
            Source::Ingest => Some(Arc::new(tracks(Video::Track(0)))),
            Source::Track(n) => Some(Arc::new(tracks(Video::Track(*n)))),
            Source::Vertical => Some(Arc::new(tracks(Video::Vertical))),
            // A rendition source: its output hub, and our demand for it
            // (held while this task runs, i.e. while the destination is on).
            Source::Rendition(id) => match self.renditions.get().and_then(|r| r.get(id)) {
                Some(r) => Some(Arc::new(RenditionFeed {
                    hub: r.output().clone(),
                    _demand: r.acquire(),
                })),
                None => {
                    entry
                        .stats
                        .set_error(format!("no rendition with id {id:?}"));
                    None
                }
            },
        }
    }
}

/// What each destination with a per-connection source relays now, by
/// destination id (shared with the feeds, read by the API's views).
#[derive(Debug, Clone, Default)]
pub(super) struct RelayingNow(Arc<Mutex<HashMap<String, Relaying>>>);

impl RelayingNow {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Relaying>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn get(&self, id: &str) -> Option<Relaying> {
        self.lock().get(id).cloned()
    }

    /// Records what `id` relays until the returned guard is dropped.
    fn set(&self, id: &str, what: Relaying) -> RelayingGuard {
        self.lock().insert(id.to_owned(), what);
        RelayingGuard {
            map: self.clone(),
            id: id.to_owned(),
        }
    }
}

/// Forgets what a connection relayed when it ends.
struct RelayingGuard {
    map: RelayingNow,
    id: String,
}

impl Drop for RelayingGuard {
    fn drop(&mut self) {
        self.map.lock().remove(&self.id);
    }
}

/// A rendition's output hub, with the task's demand for it.
struct RenditionFeed {
    hub: Arc<Hub>,
    _demand: Demand,
}

impl Feed for RenditionFeed {
    fn live(&self) -> watch::Receiver<bool> {
        self.hub.watch_on_air()
    }

    fn pick(&self) -> PickFuture<'_> {
        self.hub.pick()
    }
}

/// The video a [`TrackFeed`] takes.
#[derive(Debug, Clone, Copy)]
enum Video {
    Track(u8),
    Vertical,
}

/// One of the ingest's tracks, or "vertical", decided per connection.
struct TrackFeed {
    ingest: Arc<Hub>,
    video: Video,
    audio: u8,
    ingest_key: StreamKey,
    renditions: Option<Arc<Renditions>>,
    id: String,
    relaying: RelayingNow,
}

/// Whether a picture is portrait.
fn portrait(width: Option<u32>, height: Option<u32>) -> bool {
    matches!((width, height), (Some(w), Some(h)) if h > w)
}

impl TrackFeed {
    /// Video track `track` with our audio track. `shown`: whether the API
    /// says what the connection relays (not for the main picture with
    /// another audio track).
    fn track(&self, track: u8, shown: bool) -> Result<Picked, String> {
        let sub = self.ingest.subscribe_tracks(track, self.audio);
        if !shown {
            return Ok(Picked { sub, hold: None });
        }
        let snap = self.ingest.snapshot();
        let (width, height) = match snap.tracks.iter().find(|t| t.track == track) {
            Some(t) => (t.width, t.height),
            None if track == 0 => (snap.width, snap.height),
            None => (None, None),
        };
        let guard = self.relaying.set(
            &self.id,
            Relaying::Track {
                track,
                width,
                height,
            },
        );
        Ok(Picked {
            sub,
            hold: Some(Box::new(guard)),
        })
    }

    async fn vertical(&self) -> Result<Picked, String> {
        let waited = tokio::time::Instant::now();
        while !self.ingest.tracks_known() && waited.elapsed() < TRACKS_WAIT {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let snap = self.ingest.snapshot();
        if snap.tracks.is_empty() && portrait(snap.width, snap.height) {
            return self.track(0, true);
        }
        if let Some(t) = snap
            .tracks
            .iter()
            .find(|t| t.video_codec.is_some() && portrait(t.width, t.height))
        {
            return self.track(t.track, true);
        }
        // No portrait track: the first portrait rendition of the ingest.
        let Some(renditions) = self.renditions.clone() else {
            return Err(NO_VERTICAL.into());
        };
        // `list` reads /proc for the CPU figures: off the runtime.
        let list = tokio::task::spawn_blocking(move || renditions.list())
            .await
            .map_err(|e| e.to_string())?;
        let found = list.into_iter().find(|r| {
            self.ingest_key.matches(&r.stored.ingest) && r.stored.spec.height > r.stored.spec.width
        });
        let (Some(view), Some(renditions)) = (found, &self.renditions) else {
            return Err(NO_VERTICAL.into());
        };
        let Some(r) = renditions.get(&view.stored.id) else {
            return Err(NO_VERTICAL.into());
        };
        let demand = r.acquire();
        let hub = r.output().clone();
        let mut live = hub.watch_live();
        let _ = tokio::time::timeout(RENDITION_WAIT, live.wait_for(|l| *l)).await;
        let guard = self.relaying.set(
            &self.id,
            Relaying::Rendition {
                rendition: view.stored.id.clone(),
                width: view.stored.spec.width,
                height: view.stored.spec.height,
            },
        );
        Ok(Picked {
            sub: hub.subscribe(),
            hold: Some(Box::new((demand, guard))),
        })
    }
}

impl Feed for TrackFeed {
    fn live(&self) -> watch::Receiver<bool> {
        self.ingest.watch_on_air()
    }

    fn pick(&self) -> PickFuture<'_> {
        Box::pin(async move {
            match self.video {
                Video::Track(n) => self.track(n, n != 0),
                Video::Vertical => self.vertical().await,
            }
        })
    }
}
