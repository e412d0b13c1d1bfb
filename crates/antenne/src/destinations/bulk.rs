//! Changes to many destinations in one request: switching every
//! destination of an ingest on or off, and the display order.
//!
//! Both follow the registry's invariants (see [`super`]): one writer at a
//! time under the writers' lock, checked against the state they replace,
//! saved in one store transaction off the runtime's threads (all or
//! nothing), then swapped in. One history event lists what changed.
//!
//! Switching all on obeys the rules of a single switch ([`validate`]):
//! a destination that may not be on (a second one on OBS's main output)
//! is left off and reported as skipped, with the reason; the others are
//! switched on. The streamer asked for "everything that can go live".

use std::collections::HashSet;

use tracing::info;

use super::{enabled_count, others, validate, DestinationError, DestinationView, Destinations};
use crate::history::EventKind;
use crate::ingest_keys::id_of;
use crate::output::OutputState;

/// A destination named in a bulk change's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub id: String,
    pub name: String,
}

/// A destination left as it was, and why.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub id: String,
    pub name: String,
    pub reason: String,
}

/// What "turn all on/off" did.
#[derive(Debug, Clone)]
pub struct Switched {
    pub enabled: bool,
    /// Switched, in display order.
    pub changed: Vec<Named>,
    /// Left as they were, with the reason (only when switching on).
    pub skipped: Vec<Skipped>,
}

impl Destinations {
    /// Switches every destination of the ingest whose id is `ingest` (see
    /// [`id_of`]) on or off, in one step.
    pub async fn switch_all(
        &self,
        ingest: &str,
        on: bool,
        actor: &str,
    ) -> Result<Switched, DestinationError> {
        let hub = self
            .hubs
            .all()
            .into_iter()
            .find(|h| id_of(h.key().expose()) == ingest)
            .ok_or_else(|| DestinationError::IngestNotFound(ingest.to_owned()))?;
        let mut tasks = self.writer.lock().await;
        let current = self.snapshot();
        let mut next = Vec::clone(&current);
        let mut out = Switched {
            enabled: on,
            changed: Vec::new(),
            skipped: Vec::new(),
        };
        let mut changed = Vec::new();
        for i in 0..next.len() {
            let d = &next[i].dest;
            if d.enabled == on || !d.ingest.matches(hub.key().expose()) {
                continue;
            }
            // Checked against the list as switched so far: of several on
            // OBS's main output, the first in display order goes on.
            if let Err(e) = validate::obs_main_free(&d.id, d.via_obs.as_deref(), on, others(&next))
            {
                out.skipped.push(Skipped {
                    id: d.id.clone(),
                    name: d.name.clone(),
                    reason: e.to_string(),
                });
                continue;
            }
            next[i].dest.enabled = on;
            changed.push(i);
        }
        if changed.is_empty() {
            return Ok(out);
        }
        let ids: Vec<String> = changed.iter().map(|&i| next[i].dest.id.clone()).collect();
        self.save(move |s| s.set_destinations_enabled(&ids, on))
            .await?;

        for &i in &changed {
            let entry = &next[i];
            let id = entry.dest.id.clone();
            if on {
                let previous = tasks.remove(&id).map(super::Running::stop);
                if let Some(r) = self.activate(entry, previous) {
                    tasks.insert(id.clone(), r);
                }
            } else {
                if let Some(running) = tasks.remove(&id) {
                    running.stop();
                }
                if let Some(via) = &entry.dest.via_obs {
                    self.drive_obs(&entry.dest, via, false, &entry.stats);
                }
                entry.stats.set_state(OutputState::Disabled);
            }
            out.changed.push(Named {
                id,
                name: entry.dest.name.clone(),
            });
        }
        let names: Vec<&str> = out.changed.iter().map(|n| n.name.as_str()).collect();
        let (kind, verb) = if on {
            (EventKind::AllOn, "switched on")
        } else {
            (EventKind::AllOff, "switched off")
        };
        let mut text = format!("{verb} {}: {}", names.len(), names.join(", "));
        if !out.skipped.is_empty() {
            let skipped: Vec<String> = out
                .skipped
                .iter()
                .map(|s| format!("{} ({})", s.name, s.reason))
                .collect();
            text.push_str(&format!("; left off: {}", skipped.join(", ")));
        }
        self.history.record(kind, None, text, Some(actor));
        info!(
            enabled = on,
            changed = out.changed.len(),
            skipped = out.skipped.len(),
            "destinations switched together"
        );
        let (before, after) = (enabled_count(&current), enabled_count(&next));
        self.publish(next);
        drop(tasks);
        self.count_changed(before, after);
        Ok(out)
    }

    /// Puts the destinations in the order of `ids`, which must name every
    /// destination once. Kept across restarts and in backups.
    pub async fn reorder(
        &self,
        ids: &[String],
        actor: &str,
    ) -> Result<Vec<DestinationView>, DestinationError> {
        let _tasks = self.writer.lock().await;
        let current = self.snapshot();
        let mut seen = HashSet::new();
        let mut next = Vec::with_capacity(ids.len());
        for id in ids {
            if !seen.insert(id.as_str()) {
                return Err(DestinationError::BadOrder(format!(
                    "{id:?} is listed twice"
                )));
            }
            let entry = current.iter().find(|e| &e.dest.id == id).ok_or_else(|| {
                DestinationError::BadOrder(format!("no destination with id {id:?}"))
            })?;
            next.push(entry.clone());
        }
        let missing: Vec<&str> = current
            .iter()
            .map(|e| e.dest.id.as_str())
            .filter(|id| !seen.contains(id))
            .collect();
        if !missing.is_empty() {
            return Err(DestinationError::BadOrder(format!(
                "every destination must be listed; missing: {}",
                missing.join(", ")
            )));
        }
        let same = next
            .iter()
            .zip(current.iter())
            .all(|(a, b)| a.dest.id == b.dest.id);
        if !same {
            let owned = ids.to_vec();
            self.save(move |s| s.set_destination_order(&owned)).await?;
            let names: Vec<&str> = next.iter().map(|e| e.dest.name.as_str()).collect();
            self.history.record(
                EventKind::Reordered,
                None,
                format!("new order: {}", names.join(", ")),
                Some(actor),
            );
            info!("destinations reordered");
            self.publish(next.clone());
        }
        Ok(next.iter().map(|e| self.view(e)).collect())
    }
}
