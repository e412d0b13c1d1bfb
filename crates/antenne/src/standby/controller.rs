//! One ingest's standby controller: a task that follows the publisher and
//! the streamer's break, and decides when the standby plays.
//!
//! - While the publisher is live, it keeps a loop matching the
//!   publisher's parameters (re-encoded when they change; ffmpeg runs in
//!   a task of its own, the controller never waits for it).
//! - When the publisher leaves, the hub holds the outputs open; after the
//!   wait the loop plays; at the hold limit the hold ends and the outputs
//!   close cleanly. When the publisher comes back, the hub switches the
//!   outputs back at its first keyframe and the player stops by itself.
//! - A break plays the loop while the publisher keeps sending.
//!
//! Invariants: at most one player per ingest; the status it publishes is
//! the one the API shows; every standby that starts is recorded in the
//! history once, and so is its end.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::encode::{self, Loop, LoopSpec};
use super::{HoldLimit, Shared, StandbyState, StandbyStatus};
use crate::history::EventKind;
use crate::hub::Hub;

/// How often the controller looks at the hub when nothing wakes it.
const TICK: Duration = Duration::from_millis(200);

pub(super) struct Controller {
    pub(super) hub: Arc<Hub>,
    pub(super) ingest: String,
    pub(super) shared: Arc<Shared>,
    pub(super) status: watch::Sender<StandbyStatus>,
    pub(super) on_break: watch::Receiver<bool>,
    pub(super) stop: CancellationToken,
}

/// A loop being made, or made.
enum Prepared {
    None,
    Encoding(LoopSpec, JoinHandle<Result<Loop, String>>),
    Ready(Arc<Loop>),
    Failed(LoopSpec, String),
}

/// Why the publisher is not what the outputs get.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Playing {
    Away,
    Break,
}

impl Controller {
    fn record(&self, kind: EventKind, message: String) {
        self.shared.history.record(kind, None, message, None);
    }

    pub(super) async fn run(mut self) {
        let mut live = self.hub.watch_live();
        let mut prepared = Prepared::None;
        let mut player: Option<(Playing, JoinHandle<()>)> = None;
        // When the publisher left, and the hold's deadline.
        let mut away: Option<(Instant, SystemTime)> = None;
        let mut status = StandbyStatus::default();
        loop {
            self.advance(&mut prepared).await;
            let is_live = self.hub.is_live();
            let on_break = *self.on_break.borrow();
            // A player that finished: the outputs are back on the publisher
            // (or the hold ended).
            if player.as_ref().is_some_and(|(_, h)| h.is_finished()) {
                let (why, _) = player.take().expect("checked");
                let message = match (why, is_live) {
                    (_, true) => format!("ingest {}: back on the live stream", self.ingest),
                    (_, false) => format!("ingest {}: standby ended", self.ingest),
                };
                info!(ingest = %self.ingest, "standby ended");
                self.record(EventKind::StandbyEnded, message);
            }
            let ready = match &prepared {
                Prepared::Ready(lp) => Some(lp.clone()),
                _ => None,
            };
            let holding = !is_live && self.hub.watch_on_air().borrow().to_owned();
            let now = Instant::now();
            let settings = self.shared.effective(&self.ingest);
            let mut state = StandbyState::Idle;
            let mut ends_at = None;
            if is_live {
                away = None;
                if on_break && player.is_none() {
                    if let Some(lp) = &ready {
                        self.start(&mut player, Playing::Break, lp.clone());
                    }
                }
                state = if player.is_some() {
                    StandbyState::Standby
                } else {
                    StandbyState::Live
                };
            } else if holding {
                let (left_at, left_wall) = *away.get_or_insert((now, SystemTime::now()));
                let limit = settings.hold_limit;
                if let HoldLimit::For(d) = limit {
                    ends_at = Some(left_wall + d);
                }
                if now >= left_at + limit.as_duration() {
                    if let Some((_, h)) = player.take() {
                        h.abort();
                    }
                    self.hub.end_hold();
                    info!(ingest = %self.ingest, "hold limit reached: destinations close");
                    self.record(
                        EventKind::StandbyEnded,
                        format!(
                            "ingest {}: hold limit reached, destinations closed",
                            self.ingest
                        ),
                    );
                    ends_at = None;
                } else {
                    if player.is_none() && now >= left_at + settings.wait {
                        if let Some(lp) = &ready {
                            self.start(&mut player, Playing::Away, lp.clone());
                        }
                    }
                    state = if player.is_some() {
                        StandbyState::Standby
                    } else if ready.is_some() && now < left_at + settings.wait {
                        StandbyState::Waiting
                    } else {
                        StandbyState::Holding
                    };
                }
            } else {
                away = None;
                if let Some((_, h)) = player.take() {
                    h.abort();
                }
            }
            let unavailable = match &prepared {
                Prepared::Failed(_, why) => Some(why.clone()),
                _ => None,
            };
            let since = if state == status.state {
                status.since
            } else {
                Some(SystemTime::now())
            };
            status = StandbyStatus {
                state,
                since,
                ends_at,
                on_break,
                ready: ready.is_some(),
                unavailable,
            };
            self.status.send_if_modified(|s| {
                let changed = *s != status;
                if changed {
                    *s = status.clone();
                }
                changed
            });
            tokio::select! {
                _ = self.stop.cancelled() => {
                    if let Some((_, h)) = player.take() {
                        h.abort();
                    }
                    return;
                }
                _ = live.changed() => {}
                _ = self.on_break.changed() => {}
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    }

    fn start(&self, player: &mut Option<(Playing, JoinHandle<()>)>, why: Playing, lp: Arc<Loop>) {
        let Some(session) = self.hub.start_standby(&lp.headers) else {
            return;
        };
        let what = match why {
            Playing::Away => "the publisher is away",
            Playing::Break => "break asked for",
        };
        info!(ingest = %self.ingest, reason = what, "standby started");
        self.record(
            EventKind::StandbyStarted,
            format!("ingest {}: standby picture on air ({what})", self.ingest),
        );
        let handle = tokio::spawn(super::player::play(self.hub.clone(), session, lp));
        *player = Some((why, handle));
    }

    /// Keeps the loop in step with the publisher: starts an encoding when
    /// the publisher's parameters call for a different loop, and collects
    /// a finished one.
    async fn advance(&self, prepared: &mut Prepared) {
        self.advance_loop(prepared).await;
        self.hub
            .set_picture_ready(matches!(prepared, Prepared::Ready(_)));
    }

    async fn advance_loop(&self, prepared: &mut Prepared) {
        if let Prepared::Encoding(spec, handle) = prepared {
            if handle.is_finished() {
                let spec = spec.clone();
                *prepared = match handle.await {
                    Ok(Ok(lp)) => {
                        info!(ingest = %self.ingest, width = spec.width, height = spec.height, "standby picture ready");
                        Prepared::Ready(Arc::new(lp))
                    }
                    Ok(Err(why)) => {
                        warn!(ingest = %self.ingest, reason = %why, "no standby picture");
                        Prepared::Failed(spec, why)
                    }
                    Err(e) => Prepared::Failed(spec, format!("standby encoding failed: {e}")),
                };
            }
            return;
        }
        if !self.hub.is_live() {
            return;
        }
        let params = self.hub.publisher_params();
        if params.video_config.is_none() {
            return;
        }
        let wanted = if self.shared.config.enabled {
            LoopSpec::for_publisher(&params).map(|spec| {
                let image = self.shared.effective(&self.ingest).image;
                LoopSpec {
                    image_version: image.as_ref().map_or(0, |(_, v)| *v),
                    image: image.map(|(p, _)| p),
                    ..spec
                }
            })
        } else {
            Err("the standby picture is switched off (--no-standby)".to_string())
        };
        let current = match prepared {
            Prepared::Ready(lp) => Some(&lp.spec),
            Prepared::Failed(spec, _) => Some(&*spec),
            _ => None,
        };
        match wanted {
            Ok(spec) if !current.is_some_and(|c| c.serves(&spec)) => {
                let ffmpeg = self.shared.config.ffmpeg.clone();
                let s = spec.clone();
                let handle = tokio::spawn(async move { encode::encode(&ffmpeg, &s).await });
                *prepared = Prepared::Encoding(spec, handle);
            }
            Ok(_) => {}
            Err(why) => {
                if !matches!(prepared, Prepared::Failed(_, w) if *w == why) {
                    warn!(ingest = %self.ingest, reason = %why, "no standby picture");
                    let spec = LoopSpec {
                        width: 0,
                        height: 0,
                        fps_milli: 0,
                        audio: None,
                        image: None,
                        image_version: 0,
                    };
                    *prepared = Prepared::Failed(spec, why);
                }
            }
        }
    }
}
