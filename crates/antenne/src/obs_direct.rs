//! Direct mode glue: a destination that OBS streams itself is switched by
//! driving OBS (its main stream output, or one named output) instead of a
//! relay task; and the optional automation that starts OBS streaming with
//! the first destination switched on.

use std::sync::Arc;

use crate::destinations::{ObsDirect, OBS_MAIN};
use crate::obs::Obs;
use crate::output::OutputStats;

/// Direct mode on top of the OBS controller.
pub struct ObsDirectMode {
    obs: Arc<Obs>,
    runtime: tokio::runtime::Handle,
}

impl ObsDirectMode {
    pub fn new(obs: Arc<Obs>, runtime: tokio::runtime::Handle) -> Self {
        Self { obs, runtime }
    }
}

impl ObsDirect for ObsDirectMode {
    fn switch(&self, via: &str, url: &str, key: &str, on: bool, stats: Arc<OutputStats>) {
        let obs = self.obs.clone();
        let (via, url, key) = (via.to_owned(), url.to_owned(), key.to_owned());
        self.runtime.spawn(async move {
            let result = if via == OBS_MAIN {
                obs.set_main_stream(&url, &key, on).await
            } else {
                obs.set_output(&via, on).await
            };
            if let Err(e) = result {
                stats.set_error(format!("OBS: {e}"));
            }
        });
    }

    fn active(&self, via: &str) -> Option<bool> {
        if via == OBS_MAIN {
            self.obs.main_stream_active()
        } else {
            self.obs.output_active(via)
        }
    }

    fn enabled_count_changed(&self, before: usize, after: usize) {
        let _guard = self.runtime.enter();
        self.obs.on_destinations_changed(before, after);
    }
}
