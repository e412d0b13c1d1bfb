//! Renditions: one stream adapted for some platforms (vertical 9:16,
//! bitrate and size caps), encoded once by ffmpeg and shared by every
//! destination that uses it.
//!
//! A rendition is an ingest [`Hub`] → an ffmpeg child → its own output
//! [`Hub`]. Destinations attach to the output hub exactly as to an ingest
//! hub (late join on a keyframe, bounded queues, one monotonic timeline
//! across encoder restarts), so the output side of antenne needs no
//! change to send a rendition.
//!
//! Why ffmpeg as a child process rather than a linked library: the
//! encoders (libx264, NVENC, VAAPI, QSV) and filters (scale, crop, blur)
//! are ffmpeg's; a child keeps their C code out of our address space (a
//! crash or a leak kills one rendition, never the relay), needs no build
//! dependency, and is supervised like any other peer: killed on drop,
//! restarted with the destinations' backoff. Why pipes and FLV: ffmpeg
//! reads `-f flv -i pipe:0` and writes `-f flv pipe:1`, and FLV tag bodies
//! are exactly the RTMP payloads the hubs hold, so nothing is remuxed and
//! no port or URL (and no stream key) is ever given to ffmpeg; the FLV
//! container itself is `antenne-media`'s sans-IO writer and bounded reader.
//!
//! Invariants:
//! - The encoder never slows the ingest: it reads its input through an
//!   ordinary bounded hub subscription, written to ffmpeg's stdin by its
//!   own task; when ffmpeg falls behind, that queue skips to the next
//!   keyframe like a slow destination's.
//! - ffmpeg runs only while the ingest is live and the demand count
//!   ([`Rendition::acquire`]) is above zero.
//! - A crash or a stall (no output for [`EncoderConfig::stall_timeout`])
//!   restarts ffmpeg with backoff; the output hub's subscribers stay
//!   attached and its timeline carries on, so their timestamps never go
//!   back.
//! - ffmpeg's stderr is parsed for progress and its error lines are
//!   sanitised and bounded ([`state`]) before they reach the state.

pub mod hardware;
mod run;
pub mod spec;
pub mod state;
mod supervisor;

pub use spec::{AudioMode, Fit, RenditionSpec, SourceInfo, VideoEncoder, X264Preset};
pub use state::{EncoderState, Progress};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::hub::{Hub, QueueLimits};
use crate::secret::StreamKey;

/// What [`EncoderState::Unavailable`] says when there is no ffmpeg.
pub const FFMPEG_NOT_FOUND: &str = "ffmpeg not found: install it (apt install ffmpeg)";

/// Settings every rendition shares.
#[derive(Debug, Clone)]
pub struct EncoderConfig {
    /// The ffmpeg program (`--ffmpeg PATH` / `ANTENNE_FFMPEG`): a path, or
    /// a name looked up on `PATH`.
    pub ffmpeg: PathBuf,
    /// No output from ffmpeg for this long although it was given input
    /// means it is stuck: it is killed and restarted. (An input that
    /// goes silent is not a stall.)
    pub stall_timeout: Duration,
    /// Queue limits of the encoder's input subscription and of the
    /// rendition's output hub.
    pub queue: QueueLimits,
    /// Hardware encoders found by [`hardware::probe`], for
    /// [`VideoEncoder::Auto`].
    pub hardware: Vec<VideoEncoder>,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self {
            ffmpeg: PathBuf::from("ffmpeg"),
            stall_timeout: Duration::from_secs(10),
            queue: QueueLimits::default(),
            hardware: Vec::new(),
        }
    }
}

/// Why ffmpeg could not be started, for the state.
pub(crate) fn spawn_error(ffmpeg: &Path, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => FFMPEG_NOT_FOUND.to_string(),
        std::io::ErrorKind::PermissionDenied => format!(
            "ffmpeg at {} cannot be run (permission denied)",
            ffmpeg.display()
        ),
        _ => format!("ffmpeg at {} cannot be started: {e}", ffmpeg.display()),
    }
}

/// One rendition: a supervised ffmpeg between an input hub and its own
/// output hub. Stops its ffmpeg when dropped.
#[derive(Debug)]
pub struct Rendition {
    id: String,
    spec: RenditionSpec,
    output: Arc<Hub>,
    state: watch::Receiver<EncoderState>,
    demand: Arc<watch::Sender<usize>>,
    pid: Arc<Mutex<Option<u32>>>,
    _stop: DropGuard,
}

impl Rendition {
    /// Starts supervising (ffmpeg itself starts only once the input is
    /// live and someone [acquires](Rendition::acquire) the rendition).
    /// Needs a tokio runtime.
    pub fn start(
        id: impl Into<String>,
        spec: RenditionSpec,
        input: Arc<Hub>,
        config: EncoderConfig,
    ) -> Result<Rendition, spec::SpecError> {
        spec.validate()?;
        let id = id.into();
        // Not a secret, but a hub is named by a key: the rendition's id.
        let output = Hub::new(StreamKey::new(format!("rendition-{id}")), config.queue);
        let (state_tx, state) = watch::channel(EncoderState::Stopped);
        let demand = Arc::new(watch::channel(0usize).0);
        let pid = Arc::new(Mutex::new(None));
        let cancel = CancellationToken::new();
        let task = supervisor::Task {
            spec: spec.clone(),
            input,
            output: output.clone(),
            config,
            state: state_tx,
            demand: demand.subscribe(),
            pid: pid.clone(),
            cancel: cancel.clone(),
        };
        let span = tracing::info_span!("rendition", id = %id);
        tokio::spawn(tracing::Instrument::instrument(task.run(), span));
        Ok(Rendition {
            id,
            spec,
            output,
            state,
            demand,
            pid,
            _stop: cancel.drop_guard(),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn spec(&self) -> &RenditionSpec {
        &self.spec
    }

    /// The hub destinations attach to.
    pub fn output(&self) -> &Arc<Hub> {
        &self.output
    }

    /// Says one more consumer needs the rendition; the returned guard
    /// says it no longer does when dropped.
    pub fn acquire(&self) -> Demand {
        self.demand.send_modify(|n| *n += 1);
        Demand {
            demand: self.demand.clone(),
        }
    }

    /// Consumers currently needing the rendition.
    pub fn demand(&self) -> usize {
        *self.demand.borrow()
    }

    pub fn state(&self) -> EncoderState {
        self.state.borrow().clone()
    }

    pub fn watch_state(&self) -> watch::Receiver<EncoderState> {
        self.state.clone()
    }

    /// The running ffmpeg's process id.
    pub fn pid(&self) -> Option<u32> {
        *self.pid.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One consumer's need of a rendition; released on drop.
#[derive(Debug)]
pub struct Demand {
    demand: Arc<watch::Sender<usize>>,
}

impl Drop for Demand {
    fn drop(&mut self) {
        self.demand.send_modify(|n| *n = n.saturating_sub(1));
    }
}
