//! The automatic recordings' wake-ups: they start when an ingest goes
//! live, with no timer (the paused clock never moves in these tests).

use super::*;
use crate::hub::QueueLimits;
use crate::secret::StreamKey;

/// Yields until `done` holds (the paused clock does not move meanwhile:
/// the runtime always has work), within 10 s of real time.
async fn until(mut done: impl FnMut() -> bool) -> bool {
    let real = std::time::Instant::now();
    while real.elapsed() < Duration::from_secs(10) {
        if done() {
            return true;
        }
        tokio::task::yield_now().await;
    }
    done()
}

fn recording(rec: &Recorder) -> bool {
    rec.status().first().is_some_and(|s| s.recording)
}

#[tokio::test(start_paused = true)]
async fn an_automatic_recording_starts_when_the_ingest_goes_live_with_the_clock_stopped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(Store::open(dir.path()).expect("store"));
    let hub = Hub::new(StreamKey::new("reckey"), QueueLimits::default());
    let hubs = Hubs::new(vec![hub.clone()]);
    let shutdown = CancellationToken::new();
    let rec = Recorder::start(
        dir.path().join("recordings"),
        hubs,
        store,
        History::disabled(),
        Duration::from_secs(5),
        shutdown.clone(),
    )
    .await
    .expect("recorder");
    let id = crate::ingest_keys::id_of("reckey");
    rec.set_settings(RecordingSettings {
        auto: vec![id.clone()],
        ..RecordingSettings::default()
    })
    .await
    .expect("settings");
    let start = tokio::time::Instant::now();
    assert!(!recording(&rec), "not live: nothing recorded");

    let guard = hub
        .start_publish("127.0.0.1:1".parse().expect("addr"))
        .expect("publisher");
    assert!(until(|| recording(&rec)).await, "recording when live");

    // Stopped by hand: not again in this live session...
    rec.stop_recording(&id, "test").expect("stopped");
    for _ in 0..1000 {
        tokio::task::yield_now().await;
    }
    assert!(!recording(&rec), "held until the next live session");
    // ...but in the next one.
    drop(guard);
    for _ in 0..1000 {
        tokio::task::yield_now().await;
    }
    let _guard = hub
        .start_publish("127.0.0.1:1".parse().expect("addr"))
        .expect("publisher");
    assert!(until(|| recording(&rec)).await, "recording again");
    assert_eq!(
        tokio::time::Instant::now(),
        start,
        "no timer was needed for any of it"
    );
    shutdown.cancel();
    rec.shutdown().await;
}
