//! Prometheus metrics, encoded on each scrape from the same snapshots the
//! API reads ([`Destinations::list`], [`Hub::snapshot`](crate::hub::Hub))
//! plus the process's own figures from `/proc`. Nothing here runs on the
//! media path: a scrape reads counters the relay already keeps.
//!
//! Invariants: labels are bounded and public (a destination's id, name and
//! platform; an ingest's id): never a stream key nor a URL. Every state a
//! destination can be in has its own series (`1` for the current one, `0`
//! for the others), so that `antenne_destination_state{state="live"} == 0`
//! finds destinations that are not live.
//!
//! [`render`] reads `/proc` (file I/O): call it off the runtime's threads.

use std::time::SystemTime;

use prometheus::{
    Counter, Encoder, Gauge, GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::destinations::Destinations;
use crate::ingest::Hubs;
use crate::ingest_keys::id_of;
use crate::output::OutputState;

/// The `Content-Type` of [`render`]'s text (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every state label of `antenne_destination_state`, in
/// [`OutputState::name`]'s spelling.
pub const STATES: [&str; 6] = [
    "disabled",
    "idle",
    "connecting",
    "live",
    "retrying",
    "rejected",
];

const INGEST: &[&str] = &["ingest"];
const DESTINATION: &[&str] = &["id", "name", "platform"];
const DESTINATION_STATE: &[&str] = &["id", "name", "platform", "state"];

/// A scrape's registry: each metric registered once, under a fixed name
/// (registration fails only on a duplicate or invalid name, which the unit
/// test below would catch).
struct Scrape(Registry);

impl Scrape {
    fn add<C: prometheus::core::Collector + Clone + 'static>(&self, c: C) -> C {
        if let Err(e) = self.0.register(Box::new(c.clone())) {
            tracing::warn!(error = %e, "metric not registered");
        }
        c
    }
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help)
}

/// The whole scrape, in the Prometheus text format.
pub fn render(destinations: &Destinations, hubs: &Hubs) -> String {
    let r = Scrape(Registry::new());
    // The constructors fail only on invalid names or label names, which
    // are the constants here.
    let Ok(metrics) = Metrics::new(&r) else {
        return String::new();
    };

    for hub in hubs.all() {
        let s = hub.snapshot();
        let id = id_of(hub.key().expose());
        let labels = [id.as_str()];
        metrics
            .ingest_up
            .with_label_values(&labels)
            .set(i64::from(s.live));
        metrics
            .ingest_bitrate
            .with_label_values(&labels)
            .set(s.bitrate_kbps * 1000.0 / 8.0);
        metrics
            .ingest_fps
            .with_label_values(&labels)
            .set(if s.live {
                s.frame_rate.unwrap_or(0.0)
            } else {
                0.0
            });
    }

    let now = SystemTime::now();
    for v in destinations.list() {
        let d = &v.dest;
        let labels = [d.id.as_str(), d.name.as_str(), d.platform.as_str()];
        let current = v.stats.state();
        for name in STATES {
            metrics
                .state
                .with_label_values(&[d.id.as_str(), d.name.as_str(), d.platform.as_str(), name])
                .set(i64::from(current.name() == name));
        }
        metrics
            .sent
            .with_label_values(&labels)
            .inc_by(v.stats.bytes.total());
        metrics
            .reconnects
            .with_label_values(&labels)
            .inc_by(v.stats.reconnects());
        metrics
            .dropped
            .with_label_values(&labels)
            .inc_by(v.stats.dropped());
        let up = match current {
            OutputState::Live { since } => now
                .duration_since(since)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            _ => 0.0,
        };
        metrics.uptime.with_label_values(&labels).set(up);
    }

    let process = ProcessFigures::read();
    if let Some(cpu) = process.cpu_seconds {
        if let Ok(c) = Counter::new(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
        ) {
            r.add(c).inc_by(cpu);
        }
    }
    if let Some(rss) = process.resident_bytes {
        if let Ok(g) = Gauge::new(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
        ) {
            r.add(g).set(rss as f64);
        }
    }

    let mut text = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&r.0.gather(), &mut text) {
        tracing::warn!(error = %e, "metrics not encoded");
    }
    String::from_utf8(text).unwrap_or_default()
}

/// Every antenne metric of one scrape.
struct Metrics {
    ingest_up: IntGaugeVec,
    ingest_bitrate: GaugeVec,
    ingest_fps: GaugeVec,
    state: IntGaugeVec,
    sent: IntCounterVec,
    reconnects: IntCounterVec,
    dropped: IntCounterVec,
    uptime: GaugeVec,
}

impl Metrics {
    fn new(r: &Scrape) -> prometheus::Result<Self> {
        Ok(Metrics {
            ingest_up: r.add(IntGaugeVec::new(
                opts(
                    "antenne_ingest_up",
                    "Whether a publisher is live on this ingest key (1) or not (0).",
                ),
                INGEST,
            )?),
            ingest_bitrate: r.add(GaugeVec::new(
                opts(
                    "antenne_ingest_received_bytes_per_second",
                    "Bytes per second received from the publisher (bitrate / 8).",
                ),
                INGEST,
            )?),
            ingest_fps: r.add(GaugeVec::new(
                opts(
                    "antenne_ingest_frames_per_second",
                    "Video frames per second received from the publisher.",
                ),
                INGEST,
            )?),
            state: r.add(IntGaugeVec::new(
                opts(
                    "antenne_destination_state",
                    "1 for the destination's current state, 0 for the others.",
                ),
                DESTINATION_STATE,
            )?),
            sent: r.add(IntCounterVec::new(
                opts(
                    "antenne_destination_sent_bytes_total",
                    "Bytes sent to the platform since antenne started.",
                ),
                DESTINATION,
            )?),
            reconnects: r.add(IntCounterVec::new(
                opts(
                    "antenne_destination_reconnects_total",
                    "Times antenne had to connect again (failed attempts and dropped connections).",
                ),
                DESTINATION,
            )?),
            dropped: r.add(IntCounterVec::new(
                opts(
                    "antenne_destination_dropped_frames_total",
                    "Frames skipped because the destination fell behind.",
                ),
                DESTINATION,
            )?),
            uptime: r.add(GaugeVec::new(
                opts(
                    "antenne_destination_uptime_seconds",
                    "Seconds since the destination went live (0 when not live).",
                ),
                DESTINATION,
            )?),
        })
    }
}

/// CPU time and resident memory of this process (`None` where `/proc`
/// cannot be read: not Linux).
#[derive(Debug, Default)]
struct ProcessFigures {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<i64>,
}

/// Clock ticks per second of `/proc`'s CPU times (`USER_HZ`): 100 on every
/// Linux architecture antenne builds for (it is part of the user-space ABI;
/// the kernel's own tick rate does not change it).
const USER_HZ: f64 = 100.0;

impl ProcessFigures {
    fn read() -> Self {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        parse_proc(&stat, &status)
    }
}

/// CPU time from `/proc/PID/stat` (utime and stime are fields 14 and 15;
/// the command name, field 2, may hold spaces and parentheses, so fields
/// are counted after its last `)`), resident memory from `VmRSS` (KiB) of
/// `/proc/PID/status`.
fn parse_proc(stat: &str, status: &str) -> ProcessFigures {
    let cpu_seconds = stat.rsplit_once(')').and_then(|(_, rest)| {
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // `rest` starts at field 3 (state).
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        Some((field(14)? + field(15)?) as f64 / USER_HZ)
    });
    let resident_bytes = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<i64>().ok())
        .map(|kib| kib * 1024);
    ProcessFigures {
        cpu_seconds,
        resident_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_and_memory_from_proc_even_when_the_name_has_spaces() {
        let stat = "1234 (a (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 123456789 512 18446744073709551615";
        let status = "Name:\tantenne\nVmRSS:\t   2048 kB\nThreads:\t3\n";
        let f = parse_proc(stat, status);
        assert_eq!(f.cpu_seconds, Some(3.0));
        assert_eq!(f.resident_bytes, Some(2048 * 1024));
        let none = parse_proc("garbage", "");
        assert!(none.cpu_seconds.is_none() && none.resident_bytes.is_none());
    }

    #[test]
    fn every_output_state_has_a_label() {
        use std::time::SystemTime;
        for s in [
            OutputState::Disabled,
            OutputState::Idle,
            OutputState::Connecting { attempt: 1 },
            OutputState::Live {
                since: SystemTime::now(),
            },
            OutputState::Retrying {
                attempt: 1,
                next_try: SystemTime::now(),
                error: String::new(),
            },
            OutputState::Rejected {
                next_try: SystemTime::now(),
                message: String::new(),
            },
        ] {
            assert!(STATES.contains(&s.name()), "{}", s.name());
        }
    }
}
