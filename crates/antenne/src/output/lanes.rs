//! Relay lanes: the threads destinations run on.
//!
//! A stream's destinations run on the main runtime, with the ingest, until
//! that stream has [`Lanes::after`] of them: one thread, no cross-thread
//! wake-up per frame (a second work-stealing worker costs more than it
//! saves at small counts: 50 destinations 2.4 → 3.6 % of a core; and many
//! streams with a few destinations each stay as cheap as before). Past
//! that, each new destination of that stream goes to the lane carrying
//! the fewest of its destinations, then the least loaded: each extra lane
//! is a thread with its own single-threaded runtime, so a frame costs one
//! wake-up per lane, and the writes to a thousand sockets are spread over
//! the cores instead of queued behind one (`bench/README.md`).
//!
//! Invariant: a destination stays on the lane it started on (its socket
//! and timers belong to that lane's runtime); the counts are of
//! destination tasks alive, per lane and per stream. The lock is taken
//! when a destination starts or ends, never per frame.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

/// One extra lane: a thread running a current-thread runtime until the
/// [`Lanes`] are dropped.
#[derive(Debug)]
struct Lane {
    handle: Handle,
    _stop: oneshot::Sender<()>,
}

/// Live destinations: per lane (0 is the main runtime), and per stream
/// per lane.
#[derive(Debug, Default)]
struct Counts {
    lanes: Vec<usize>,
    streams: HashMap<u64, Vec<usize>>,
}

impl Counts {
    fn add(&mut self, stream: u64, lane: usize) {
        let n = self.lanes.len();
        self.lanes[lane] += 1;
        self.streams.entry(stream).or_insert_with(|| vec![0; n])[lane] += 1;
    }

    fn remove(&mut self, stream: u64, lane: usize) {
        self.lanes[lane] = self.lanes[lane].saturating_sub(1);
        if let Some(per) = self.streams.get_mut(&stream) {
            per[lane] = per[lane].saturating_sub(1);
            if per.iter().all(|&n| n == 0) {
                self.streams.remove(&stream);
            }
        }
    }

    /// The lane for a new destination of `stream`.
    fn pick(&self, stream: u64, after: usize) -> usize {
        let none = vec![0; self.lanes.len()];
        let per = self.streams.get(&stream).unwrap_or(&none);
        if per.iter().sum::<usize>() < after {
            // Where the stream's destinations already are (the main
            // runtime for its first): the lowest lane among those carrying
            // the most of them (`max_by_key` keeps the last of equals).
            return (0..per.len()).rev().max_by_key(|&i| per[i]).unwrap_or(0);
        }
        (0..per.len())
            .min_by_key(|&i| (per[i], self.lanes[i], i))
            .unwrap_or(0)
    }
}

/// Where destination tasks run.
#[derive(Debug)]
pub struct Lanes {
    extra: Vec<Lane>,
    after: usize,
    counts: Arc<Mutex<Counts>>,
}

/// Counts a task on its lane while it lives.
struct Alive {
    counts: Arc<Mutex<Counts>>,
    stream: u64,
    lane: usize,
}

impl Drop for Alive {
    fn drop(&mut self) {
        lock(&self.counts).remove(self.stream, self.lane);
    }
}

fn lock(counts: &Mutex<Counts>) -> std::sync::MutexGuard<'_, Counts> {
    counts.lock().unwrap_or_else(|e| e.into_inner())
}

impl Lanes {
    /// Everything on the main runtime (tests, and `--relay-threads 0`).
    pub fn none() -> Lanes {
        Lanes {
            extra: Vec::new(),
            after: usize::MAX,
            counts: Arc::new(Mutex::new(Counts {
                lanes: vec![0],
                streams: HashMap::new(),
            })),
        }
    }

    /// Starts `extra` lane threads, used for a stream's destinations past
    /// its first `after`.
    pub fn start(extra: usize, after: usize) -> std::io::Result<Lanes> {
        let mut lanes = Lanes::none();
        lanes.after = after.max(1);
        for i in 1..=extra {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = rt.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("relay-lane-{i}"))
                .spawn(move || {
                    // Runs the lane's tasks until the lanes are dropped.
                    let _ = rt.block_on(stopped);
                })?;
            lanes.extra.push(Lane {
                handle,
                _stop: stop,
            });
        }
        lock(&lanes.counts).lanes = vec![0; extra + 1];
        Ok(lanes)
    }

    /// Spawns a destination's task (tracked by `tracker`) on the lane its
    /// stream calls for; `stream` identifies the stream it relays.
    pub fn spawn<F>(&self, tracker: &TaskTracker, stream: u64, task: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let lane = {
            let mut counts = lock(&self.counts);
            let lane = counts.pick(stream, self.after);
            counts.add(stream, lane);
            lane
        };
        let alive = Alive {
            counts: self.counts.clone(),
            stream,
            lane,
        };
        let task = async move {
            let _alive = alive;
            task.await
        };
        match lane.checked_sub(1).and_then(|i| self.extra.get(i)) {
            None => tracker.spawn(task),
            Some(l) => tracker.spawn_on(task, &l.handle),
        }
    }

    /// Live destination tasks per lane, the main runtime first.
    #[cfg(test)]
    fn loads(&self) -> Vec<usize> {
        lock(&self.counts).lanes.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_streams_destinations_stay_on_the_main_runtime_until_it_has_many_then_spread() {
        let lanes = Lanes::start(2, 3).expect("lanes start");
        let tracker = TaskTracker::new();
        let stop = tokio_util::sync::CancellationToken::new();
        let mut names = Vec::new();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..9 {
            let (stop, tx) = (stop.clone(), tx.clone());
            lanes.spawn(&tracker, 7, async move {
                let name = std::thread::current().name().map(str::to_owned);
                let _ = tx.send(name);
                stop.cancelled().await;
            });
            names.push(rx.recv().await.flatten());
        }
        assert_eq!(lanes.loads(), vec![3, 3, 3], "3 on main, then spread");
        let on_lanes = names
            .iter()
            .flatten()
            .filter(|n| n.starts_with("relay-lane-"));
        assert_eq!(on_lanes.count(), 6, "six ran on lane threads: {names:?}");
        stop.cancel();
        tracker.close();
        tokio::time::timeout(Duration::from_secs(5), tracker.wait())
            .await
            .expect("every task ends");
        assert_eq!(lanes.loads(), vec![0, 0, 0], "counts go down as tasks end");
    }

    #[tokio::test]
    async fn without_lanes_everything_runs_on_the_main_runtime() {
        let lanes = Lanes::none();
        let tracker = TaskTracker::new();
        for stream in 0..5 {
            lanes.spawn(&tracker, stream % 2, std::future::pending());
        }
        assert_eq!(lanes.loads(), vec![5]);
    }

    #[tokio::test]
    async fn many_streams_with_a_few_destinations_each_stay_on_the_main_runtime() {
        let lanes = Lanes::start(1, 3).expect("lanes start");
        let tracker = TaskTracker::new();
        for stream in 0..10 {
            for _ in 0..3 {
                lanes.spawn(&tracker, stream, std::future::pending());
            }
        }
        assert_eq!(lanes.loads(), vec![30, 0], "no frame crosses threads");
        lanes.spawn(&tracker, 4, std::future::pending());
        assert_eq!(
            lanes.loads(),
            vec![30, 1],
            "the fourth of one stream spreads"
        );
    }
}
