//! The measurement behind the README's and `bench/renditions_bench.py`'s
//! figures: the latency a 720x1280 rendition adds and its encoder's CPU.
//! It prints; it judges nothing (`#[ignore]`d, run on demand).

use super::*;

/// CPU time (user + system, clock ticks) of a process.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    // After "pid (comm)": state is field 3, utime 14 and stime 15.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Measures (prints, does not judge) the latency a rendition adds and the
/// CPU one 720x1280 libx264 veryfast rendition takes. A benchmark, not a
/// check: `cargo test -p antenne --test renditions -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark: prints figures"]
fn measure_latency_and_cpu_of_a_720x1280_rendition() {
    let ingest = InProcessIngest::start(KEY);
    let _publisher = Publisher::options()
        .size(1280, 720)
        .fps(30)
        .video_kbps(3000)
        .start(&ingest.url())
        .expect("ffmpeg publishes");
    assert!(wait_until(Duration::from_secs(15), || ingest.hub.is_live()));
    std::thread::sleep(Duration::from_secs(2));
    let rendition = ingest.rendition(RenditionSpec::vertical(720, 1280, 3000), config());
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Recorder::start(
        &ingest,
        rendition.output().subscribe(),
        &dir.path().join("o.flv"),
    );
    // Subscribed at the same moment as the encoder: both start on the
    // same cached keyframe.
    let input = Recorder::start(&ingest, ingest.hub.subscribe(), &dir.path().join("i.flv"));
    let started = Instant::now();
    let _demand = rendition.acquire();
    assert!(wait_until(Duration::from_secs(30), || out.video_frames() > 0));
    let first_output = started.elapsed();
    std::thread::sleep(Duration::from_secs(3));
    let pid = rendition.pid().expect("ffmpeg runs");
    let (t0, c0) = (Instant::now(), cpu_ticks(pid).expect("cpu"));
    std::thread::sleep(Duration::from_secs(10));
    let (t1, c1) = (Instant::now(), cpu_ticks(pid).expect("cpu"));
    let cpu = (c1 - c0) as f64 / 100.0 / (t1 - t0).as_secs_f64() * 100.0;
    out.finish();
    input.finish();

    let ins = input.seen.lock().expect("not poisoned").clone();
    let outs = out.seen.lock().expect("not poisoned").clone();
    let (in_base, out_base) = (ins[0].0, outs[0].0);
    let mut lat: Vec<f64> = outs
        .iter()
        .filter_map(|(ts, _, at)| {
            let rel = ts - out_base;
            // Frames replayed from the cache arrived before; skip them.
            if rel < 3000 {
                return None;
            }
            let (_, _, in_at) = ins
                .iter()
                .find(|(t, _, _)| (t - in_base - rel).abs() <= 16)?;
            Some(at.duration_since(*in_at).as_secs_f64() * 1000.0)
        })
        .collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| lat.get(((lat.len() as f64 - 1.0) * p) as usize).copied();
    println!(
        "720x1280 libx264 veryfast rendition: first output {:.2} s after acquire; \
         added latency median {:.0} ms, p90 {:.0} ms ({} frames); ffmpeg CPU {cpu:.0} % of one core; \
         state {:?}",
        first_output.as_secs_f64(),
        pct(0.5).unwrap_or(f64::NAN),
        pct(0.9).unwrap_or(f64::NAN),
        lat.len(),
        rendition.state(),
    );
    assert!(!lat.is_empty(), "frames matched between input and output");
}
