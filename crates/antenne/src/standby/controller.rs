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
//! Wake-ups: the controller sleeps until something it follows changes
//! (the hub's live and on-air watches, the publisher's parameters, the
//! break, the settings, the encoding or the player finishing) or until
//! the next deadline it has (the end of the wait, the hold limit). With
//! no publisher and no hold it sets no timer at all, so an ingest key
//! nobody uses costs nothing. One exception: a frame rate that
//! `onMetaData` does not give is measured, and followed by a look every
//! [`MEASURED_RATE_LOOK`] while live.
//!
//! Invariants: at most one player per ingest; the status it publishes is
//! the one the API shows; every standby that starts is recorded in the
//! history once, and so is its end.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::encode::{self, Loop, LoopSpec};
use super::{HoldLimit, Shared, StandbyState, StandbyStatus};
use crate::history::EventKind;
use crate::hub::Hub;

/// While live with a frame rate that only measuring tells (none in
/// `onMetaData`), how often the controller looks at it again (the rate
/// meter's window).
pub(super) const MEASURED_RATE_LOOK: Duration = Duration::from_secs(1);

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

/// What the controller keeps between two looks.
struct Looking {
    prepared: Prepared,
    player: Option<(Playing, JoinHandle<()>)>,
    /// When the publisher left, and the hold's deadline.
    away: Option<(Instant, SystemTime)>,
    status: StandbyStatus,
}

impl Default for Looking {
    fn default() -> Self {
        Looking {
            prepared: Prepared::None,
            player: None,
            away: None,
            status: StandbyStatus::default(),
        }
    }
}

/// What woke the controller.
enum Woken {
    Stop,
    Encoded(Box<Result<Result<Loop, String>, JoinError>>),
    /// Something it follows changed, or a deadline passed: look again.
    Look,
}

impl Controller {
    fn record(&self, kind: EventKind, message: String) {
        self.shared.history.record(kind, None, message, None);
    }

    pub(super) async fn run(mut self) {
        // Subscribed before the first look: nothing that changes after it
        // is missed.
        let mut live = self.hub.watch_live();
        let mut on_air = self.hub.watch_on_air();
        let mut params = self.hub.watch_params();
        let mut settings = self.shared.watch_changes();
        let mut s = Looking::default();
        loop {
            let next = self.look(&mut s);
            let woken = tokio::select! {
                _ = self.stop.cancelled() => Woken::Stop,
                r = encoded(&mut s.prepared) => Woken::Encoded(Box::new(r)),
                () = stopped_playing(&mut s.player) => Woken::Look,
                _ = live.changed() => Woken::Look,
                _ = on_air.changed() => Woken::Look,
                _ = params.changed() => Woken::Look,
                _ = settings.changed() => Woken::Look,
                r = self.on_break.changed() => match r {
                    Ok(()) => Woken::Look,
                    // The registry dropped this ingest.
                    Err(_) => Woken::Stop,
                },
                // No deadline, no timer (the branch is off, never polled).
                () = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)),
                    if next.is_some() => Woken::Look,
            };
            match woken {
                Woken::Stop => {
                    if let Some((_, h)) = s.player.take() {
                        h.abort();
                    }
                    return;
                }
                Woken::Encoded(result) => {
                    if let Prepared::Encoding(spec, _) = &s.prepared {
                        s.prepared = self.collected(spec.clone(), *result);
                    }
                }
                Woken::Look => {}
            }
        }
    }

    /// Looks at the hub, the break and the settings; starts or ends what
    /// they call for and publishes the status. Returns when to look again
    /// if nothing else changes (`None`: only a change wakes it).
    fn look(&self, s: &mut Looking) -> Option<Instant> {
        let follows_measured_rate = self.advance(&mut s.prepared);
        let is_live = self.hub.is_live();
        let on_break = *self.on_break.borrow();
        // A player that finished: the outputs are back on the publisher
        // (or the hold ended).
        if s.player.as_ref().is_some_and(|(_, h)| h.is_finished()) {
            s.player = None;
            let message = if is_live {
                format!("ingest {}: back on the live stream", self.ingest)
            } else {
                format!("ingest {}: standby ended", self.ingest)
            };
            info!(ingest = %self.ingest, "standby ended");
            self.record(EventKind::StandbyEnded, message);
        }
        let ready = match &s.prepared {
            Prepared::Ready(lp) => Some(lp.clone()),
            _ => None,
        };
        let holding = !is_live && *self.hub.watch_on_air().borrow();
        let now = Instant::now();
        let settings = self.shared.effective(&self.ingest);
        let mut state = StandbyState::Idle;
        let mut ends_at = None;
        let mut next = None;
        if is_live {
            s.away = None;
            if on_break && s.player.is_none() {
                if let Some(lp) = &ready {
                    self.start(&mut s.player, Playing::Break, lp.clone());
                }
            }
            state = if s.player.is_some() {
                StandbyState::Standby
            } else {
                StandbyState::Live
            };
            if follows_measured_rate {
                next = Some(now + MEASURED_RATE_LOOK);
            }
        } else if holding {
            let (left_at, left_wall) = *s.away.get_or_insert((now, SystemTime::now()));
            let limit = settings.hold_limit;
            if let HoldLimit::For(d) = limit {
                ends_at = Some(left_wall + d);
            }
            if now >= left_at + limit.as_duration() {
                if let Some((_, h)) = s.player.take() {
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
                let wait_over = left_at + settings.wait;
                if s.player.is_none() && now >= wait_over {
                    if let Some(lp) = &ready {
                        self.start(&mut s.player, Playing::Away, lp.clone());
                    }
                }
                state = if s.player.is_some() {
                    StandbyState::Standby
                } else if ready.is_some() && now < wait_over {
                    StandbyState::Waiting
                } else {
                    StandbyState::Holding
                };
                // The hold limit; the end of the wait if a loop is ready
                // to start then (one that gets ready later wakes the
                // controller by itself).
                next = match limit {
                    HoldLimit::For(d) => Some(left_at + d),
                    HoldLimit::Forever => None,
                };
                if s.player.is_none() && ready.is_some() && now < wait_over {
                    next = Some(next.map_or(wait_over, |n| n.min(wait_over)));
                }
            }
        } else {
            s.away = None;
            if let Some((_, h)) = s.player.take() {
                h.abort();
            }
        }
        let unavailable = match &s.prepared {
            Prepared::Failed(_, why) => Some(why.clone()),
            _ => None,
        };
        let since = if state == s.status.state {
            s.status.since
        } else {
            Some(SystemTime::now())
        };
        s.status = StandbyStatus {
            state,
            since,
            ends_at,
            on_break,
            ready: ready.is_some(),
            unavailable,
        };
        self.status.send_if_modified(|st| {
            let changed = *st != s.status;
            if changed {
                *st = s.status.clone();
            }
            changed
        });
        next
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
    /// the publisher's parameters call for a different loop (a finished
    /// one is collected by [`Controller::run`]). Returns whether the loop
    /// follows a measured frame rate, which changes without a watch
    /// saying so.
    fn advance(&self, prepared: &mut Prepared) -> bool {
        let measured = self.advance_loop(prepared);
        self.hub
            .set_picture_ready(matches!(prepared, Prepared::Ready(_)));
        measured
    }

    /// A finished encoding, as a prepared loop.
    fn collected(
        &self,
        spec: LoopSpec,
        result: Result<Result<Loop, String>, JoinError>,
    ) -> Prepared {
        match result {
            Ok(Ok(lp)) => {
                info!(ingest = %self.ingest, width = spec.width, height = spec.height, "standby picture ready");
                Prepared::Ready(Arc::new(lp))
            }
            Ok(Err(why)) => {
                warn!(ingest = %self.ingest, reason = %why, "no standby picture");
                Prepared::Failed(spec, why)
            }
            Err(e) => Prepared::Failed(spec, format!("standby encoding failed: {e}")),
        }
    }

    fn advance_loop(&self, prepared: &mut Prepared) -> bool {
        if matches!(prepared, Prepared::Encoding(..)) || !self.hub.is_live() {
            return false;
        }
        let params = self.hub.publisher_params();
        if params.video_config.is_none() {
            return false;
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
        let measured = wanted.is_ok() && params.frame_rate_measured;
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
        measured
    }
}

/// The result of the loop being encoded; never, without one. Once it has
/// returned, the caller replaces `prepared` (a finished handle is not
/// polled again).
async fn encoded(prepared: &mut Prepared) -> Result<Result<Loop, String>, JoinError> {
    match prepared {
        Prepared::Encoding(_, handle) => handle.await,
        _ => std::future::pending().await,
    }
}

/// Returns when the player has stopped (the hub switched back to the
/// publisher, or ended the session); never, without one. The next look
/// takes it (a finished handle is not polled again).
async fn stopped_playing(player: &mut Option<(Playing, JoinHandle<()>)>) {
    match player {
        Some((_, handle)) => {
            let _ = handle.await;
        }
        _ => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::History;
    use crate::hub::{FeedKind, QueueLimits, StandbyHeaders};
    use crate::secret::StreamKey;
    use crate::standby::StandbyConfig;
    use antenne_rtmp::client::prepare_media;
    use bytes::Bytes;

    const WAIT: Duration = Duration::from_secs(3);
    const HOLD: Duration = Duration::from_secs(60);

    fn held_hub() -> Arc<Hub> {
        let hub = Hub::new(StreamKey::new("k"), QueueLimits::default());
        hub.set_hold_managed(true);
        hub
    }

    /// A controller of `hub`, its status, and its break (dropping it
    /// stops the controller, as the registry does).
    fn controller(
        hub: &Arc<Hub>,
    ) -> (
        Controller,
        watch::Receiver<StandbyStatus>,
        watch::Sender<bool>,
    ) {
        let shared = Arc::new(Shared {
            config: StandbyConfig {
                ffmpeg: "ffmpeg".into(),
                enabled: true,
                wait: WAIT,
                hold_limit: HoldLimit::For(HOLD),
            },
            history: History::disabled(),
            stored: Default::default(),
            // Never written: no picture is uploaded here.
            dir: std::env::temp_dir(),
            changes: watch::channel(0).0,
        });
        let (status, status_rx) = watch::channel(StandbyStatus::default());
        let (on_break_tx, on_break) = watch::channel(false);
        let c = Controller {
            hub: hub.clone(),
            ingest: "i1".into(),
            shared,
            status,
            on_break,
            stop: CancellationToken::new(),
        };
        (c, status_rx, on_break_tx)
    }

    /// A one-frame loop, laid out as an encoded one would be.
    fn a_loop() -> Arc<Loop> {
        Arc::new(Loop {
            spec: LoopSpec {
                width: 320,
                height: 180,
                fps_milli: 30_000,
                audio: None,
                image: None,
                image_version: 0,
            },
            headers: StandbyHeaders {
                metadata: Bytes::from_static(b"meta"),
                video: Bytes::from_static(&[0x17, 0, 0, 0, 0, 9]),
                audio: None,
            },
            video: vec![encode::LoopFrame {
                timestamp: 0,
                payload: prepare_media(true, Bytes::from_static(&[0x17, 1, 0, 0, 0, 9])),
                keyframe: true,
            }],
            period_ms: 1000.0 / 30.0,
            audio: None,
            audio_frame_ms: 0.0,
        })
    }

    fn addr() -> std::net::SocketAddr {
        "127.0.0.1:1".parse().expect("addr")
    }

    #[tokio::test(start_paused = true)]
    async fn a_controller_with_no_publisher_sets_no_timer() {
        let hub = held_hub();
        // A destination: what a hold keeps open.
        let _output = hub.subscribe();
        let (c, status, _break) = controller(&hub);
        let mut s = Looking::default();
        assert_eq!(c.look(&mut s), None, "never used: no timer");
        assert_eq!(status.borrow().state, StandbyState::Idle);
        // Live with a video configuration no loop can be made for: the
        // reason is shown, and still nothing is timed.
        let guard = hub.start_publish(addr()).expect("publisher");
        hub.push_video(0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1]));
        assert_eq!(c.look(&mut s), None, "live: no timer");
        assert_eq!(status.borrow().state, StandbyState::Live);
        assert!(status.borrow().unavailable.is_some());
        // Gone, then the hold ended: back to no timer.
        drop(guard);
        assert_eq!(
            c.look(&mut s),
            Some(Instant::now() + HOLD),
            "holding: the hold limit"
        );
        hub.end_hold();
        assert_eq!(c.look(&mut s), None, "nothing held: no timer");
        assert_eq!(status.borrow().state, StandbyState::Idle);
    }

    #[tokio::test(start_paused = true)]
    async fn standby_starts_after_the_wait_with_no_tick() {
        let hub = held_hub();
        let sub = hub.subscribe();
        let (c, status, _break) = controller(&hub);
        let mut s = Looking {
            prepared: Prepared::Ready(a_loop()),
            ..Looking::default()
        };
        let guard = hub.start_publish(addr()).expect("publisher");
        assert_eq!(c.look(&mut s), None);
        let left = Instant::now();
        drop(guard);
        assert_eq!(c.look(&mut s), Some(left + WAIT), "the end of the wait");
        assert_eq!(status.borrow().state, StandbyState::Waiting);
        tokio::time::advance(WAIT - Duration::from_millis(1)).await;
        assert_eq!(c.look(&mut s), Some(left + WAIT), "not yet");
        assert_eq!(hub.feed(), FeedKind::Nothing);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(c.look(&mut s), Some(left + HOLD), "then the hold limit");
        assert_eq!(status.borrow().state, StandbyState::Standby);
        assert_eq!(hub.feed(), FeedKind::Standby);
        let mut frames = Vec::new();
        sub.recv_many(&mut frames, 100).await;
        assert!(frames.iter().any(|f| f.keyframe), "the loop plays");
        tokio::time::advance(HOLD - WAIT).await;
        assert_eq!(c.look(&mut s), None, "the hold ended: no timer");
        assert_eq!(status.borrow().state, StandbyState::Idle);
        assert!(!*hub.watch_on_air().borrow(), "the outputs close");
    }

    /// An AVC sequence header (FLV tag body) of a 320x180 stream.
    const AVC_320X180: &[u8] = &[
        0x17, 0x00, 0x00, 0x00, 0x00, 0x01, 0x42, 0xc0, 0x0c, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x42,
        0xc0, 0x0c, 0xd9, 0x01, 0x41, 0x9f, 0x9f, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00,
        0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0xa4, 0x80, 0x01, 0x00, 0x05, 0x68, 0xcb, 0x83, 0xcb,
        0x20,
    ];

    #[tokio::test(start_paused = true)]
    async fn a_measured_frame_rate_is_looked_at_again_a_given_one_is_not() {
        use antenne_rtmp::amf0::{self, Amf0Value};
        let hub = held_hub();
        let (c, status, _break) = controller(&hub);
        // A loop that serves this publisher already: nothing to encode.
        let mut s = Looking {
            prepared: Prepared::Ready(a_loop()),
            ..Looking::default()
        };
        let _guard = hub.start_publish(addr()).expect("publisher");
        hub.push_video(0, Bytes::from_static(AVC_320X180));
        assert_eq!(
            c.look(&mut s),
            Some(Instant::now() + MEASURED_RATE_LOOK),
            "no frame rate in onMetaData: measured, so looked at again"
        );
        assert!(matches!(s.prepared, Prepared::Ready(_)), "no new loop");
        assert_eq!(status.borrow().state, StandbyState::Live);
        let meta = amf0::encode_all([
            &Amf0Value::string("onMetaData"),
            &Amf0Value::object([("framerate", Amf0Value::Number(30.0))]),
        ]);
        hub.push_metadata(meta.freeze());
        assert_eq!(c.look(&mut s), None, "given by onMetaData: no timer");
        assert!(matches!(s.prepared, Prepared::Ready(_)), "no new loop");
    }

    #[tokio::test(start_paused = true)]
    async fn the_running_controller_ends_the_hold_at_its_limit() {
        let hub = held_hub();
        // A destination: what a hold keeps open.
        let _output = hub.subscribe();
        let (c, status, _break) = controller(&hub);
        let stop = c.stop.clone();
        let guard = hub.start_publish(addr()).expect("publisher");
        let task = tokio::spawn(c.run());
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(guard);
        // The paused clock jumps from timer to timer: only the hold
        // limit's wakes the controller.
        tokio::time::sleep(HOLD - Duration::from_millis(10)).await;
        assert!(*hub.watch_on_air().borrow(), "held until the limit");
        assert_eq!(status.borrow().state, StandbyState::Holding);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!*hub.watch_on_air().borrow(), "the hold ended");
        assert_eq!(status.borrow().state, StandbyState::Idle);
        stop.cancel();
        task.await.expect("the controller ends");
    }
}
