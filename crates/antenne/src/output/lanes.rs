//! Relay lanes: the threads destinations run on.
//!
//! Up to [`Lanes::after`] live destinations, every destination runs on the
//! main runtime, like the ingest: one thread, no cross-thread wake-up per
//! frame (a second work-stealing worker costs more than it saves at small
//! counts: 50 destinations 2.4 → 3.6 % of a core). Past that, each new
//! destination goes to the least loaded lane, the main runtime included:
//! each extra lane is a thread with its own single-threaded runtime, so a
//! frame costs one wake-up per lane, and the writes to a thousand sockets
//! are spread over the cores instead of queued behind one
//! (`bench/README.md`, "Relay lanes").
//!
//! Invariant: a destination stays on the lane it started on (its socket
//! and timers belong to that lane's runtime); a lane's count is the number
//! of destination tasks alive on it.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

/// One extra lane: a thread running a current-thread runtime until the
/// [`Lanes`] are dropped.
#[derive(Debug)]
struct Lane {
    handle: Handle,
    live: Arc<AtomicUsize>,
    _stop: oneshot::Sender<()>,
}

/// Where destination tasks run.
#[derive(Debug, Default)]
pub struct Lanes {
    main: Arc<AtomicUsize>,
    extra: Vec<Lane>,
    after: usize,
}

/// Counts a task on its lane while it lives.
struct Alive(Arc<AtomicUsize>);

impl Alive {
    fn new(live: &Arc<AtomicUsize>) -> Alive {
        live.fetch_add(1, Relaxed);
        Alive(live.clone())
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl Lanes {
    /// Everything on the main runtime (tests, and `--relay-threads 0`).
    pub fn none() -> Lanes {
        Lanes::default()
    }

    /// Starts `extra` lane threads, used once `after` destinations are
    /// live on the main runtime.
    pub fn start(extra: usize, after: usize) -> std::io::Result<Lanes> {
        let mut lanes = Lanes {
            after,
            ..Lanes::default()
        };
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
                live: Arc::new(AtomicUsize::new(0)),
                _stop: stop,
            });
        }
        Ok(lanes)
    }

    /// Spawns a destination's task on its lane (tracked by `tracker`).
    pub fn spawn<F>(&self, tracker: &TaskTracker, task: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let lane = self.pick();
        let live = lane.map_or(&self.main, |l| &l.live);
        let alive = Alive::new(live);
        let task = async move {
            let _alive = alive;
            task.await
        };
        match lane {
            None => tracker.spawn(task),
            Some(l) => tracker.spawn_on(task, &l.handle),
        }
    }

    /// The lane for a new destination: the main runtime until it carries
    /// `after`, then the least loaded (the main runtime first on a tie).
    fn pick(&self) -> Option<&Lane> {
        let main = self.main.load(Relaxed);
        if main < self.after {
            return None;
        }
        let least = self.extra.iter().min_by_key(|l| l.live.load(Relaxed))?;
        (least.live.load(Relaxed) < main).then_some(least)
    }

    /// Live destination tasks per lane, the main runtime first.
    pub fn loads(&self) -> Vec<usize> {
        std::iter::once(&self.main)
            .chain(self.extra.iter().map(|l| &l.live))
            .map(|n| n.load(Relaxed))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn destinations_stay_on_the_main_runtime_until_there_are_many_then_spread() {
        let lanes = Lanes::start(2, 3).expect("lanes start");
        let tracker = TaskTracker::new();
        let stop = tokio_util::sync::CancellationToken::new();
        let mut names = Vec::new();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..9 {
            let (stop, tx) = (stop.clone(), tx.clone());
            lanes.spawn(&tracker, async move {
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
        for _ in 0..5 {
            lanes.spawn(&tracker, std::future::pending()).abort();
        }
        assert!(lanes.pick().is_none());
    }
}
