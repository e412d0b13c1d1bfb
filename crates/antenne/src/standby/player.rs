//! Plays a prepared [`Loop`] into a hub in real time, as a publisher
//! would: video frames at the loop's frame rate (a keyframe every pass),
//! AAC silence at the publisher's sample rate, on one clock from 0.
//!
//! Invariants: the player never encodes nor copies media (frames are
//! shared `Bytes` laid out once); it stops as soon as the hub refuses a
//! frame (the session no longer feeds the outputs).

use std::sync::Arc;

use tokio::time::{sleep_until, Duration, Instant};

use super::encode::Loop;
use crate::hub::{FrameKind, Hub};

/// Plays until the hub ends the session.
pub async fn play(hub: Arc<Hub>, session: u64, lp: Arc<Loop>) {
    let start = Instant::now();
    let (mut v, mut a) = (0u64, 0u64);
    loop {
        let vt = lp.video_ts(v);
        let at = lp.audio.as_ref().map(|_| lp.audio_ts(a));
        let next = at.map_or(vt, |at| at.min(vt));
        sleep_until(start + Duration::from_millis(next)).await;
        // Everything due now goes out in one go.
        let now = start.elapsed().as_millis() as u64;
        loop {
            let vt = lp.video_ts(v);
            let at = lp.audio.as_ref().map(|_| lp.audio_ts(a));
            let ok = match at {
                Some(at) if at <= vt && at <= now => {
                    a += 1;
                    let payload = lp.audio.as_ref().expect("audio present");
                    hub.push_standby(session, FrameKind::Audio, at as u32, payload, false)
                }
                _ if vt <= now => {
                    let f = &lp.video[(v % lp.video.len() as u64) as usize];
                    v += 1;
                    hub.push_standby(session, FrameKind::Video, vt as u32, &f.payload, f.keyframe)
                }
                _ => break,
            };
            if !ok {
                return;
            }
        }
    }
}
