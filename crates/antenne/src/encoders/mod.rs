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
pub mod registry;
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
    output: Arc<Hub>,
    demand: Arc<watch::Sender<usize>>,
    pid: Arc<Mutex<Option<u32>>>,
    run: Mutex<Run>,
}

/// The current supervisor of a rendition (replaced by
/// [`Rendition::respec`]).
#[derive(Debug)]
struct Run {
    spec: RenditionSpec,
    state: watch::Receiver<EncoderState>,
    _stop: DropGuard,
    task: Option<tokio::task::JoinHandle<()>>,
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
        let demand = Arc::new(watch::channel(0usize).0);
        let pid = Arc::new(Mutex::new(None));
        let rendition = Rendition {
            run: Mutex::new(Run {
                spec: spec.clone(),
                state: watch::channel(EncoderState::Stopped).1,
                _stop: CancellationToken::new().drop_guard(),
                task: None,
            }),
            id,
            output,
            demand,
            pid,
        };
        rendition.spawn(spec, input, config);
        Ok(rendition)
    }

    /// Replaces the supervisor with one for `spec` (and `input`): the old
    /// ffmpeg is stopped and, once it is gone, a new one starts if the
    /// rendition is wanted. The output hub, its subscribers and the
    /// demand stay: destinations keep their connection.
    pub fn respec(
        &self,
        spec: RenditionSpec,
        input: Arc<Hub>,
        config: EncoderConfig,
    ) -> Result<(), spec::SpecError> {
        spec.validate()?;
        self.spawn(spec, input, config);
        Ok(())
    }

    fn spawn(&self, spec: RenditionSpec, input: Arc<Hub>, config: EncoderConfig) {
        let (state_tx, state) = watch::channel(EncoderState::Stopped);
        let cancel = CancellationToken::new();
        let task = supervisor::Task {
            spec: spec.clone(),
            input,
            output: self.output.clone(),
            config,
            state: state_tx,
            demand: self.demand.subscribe(),
            pid: self.pid.clone(),
            cancel: cancel.clone(),
        };
        let mut run = self.run.lock().unwrap_or_else(|e| e.into_inner());
        // Replacing the guard cancels the previous supervisor; the new one
        // waits for it to be gone (at most one ffmpeg per rendition).
        let previous = run.task.take();
        let span = tracing::info_span!("rendition", id = %self.id);
        let handle = tokio::spawn(tracing::Instrument::instrument(
            async move {
                if let Some(previous) = previous {
                    let _ = previous.await;
                }
                task.run().await
            },
            span,
        ));
        *run = Run {
            spec,
            state,
            _stop: cancel.drop_guard(),
            task: Some(handle),
        };
    }

    fn run(&self) -> std::sync::MutexGuard<'_, Run> {
        self.run.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn spec(&self) -> RenditionSpec {
        self.run().spec.clone()
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
        self.run().state.borrow().clone()
    }

    /// The current supervisor's state (a [`Rendition::respec`] starts a
    /// new one: watch again after it).
    pub fn watch_state(&self) -> watch::Receiver<EncoderState> {
        self.run().state.clone()
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
