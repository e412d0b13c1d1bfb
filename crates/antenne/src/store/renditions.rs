//! Renditions in the store: each is an ingest key (the key itself, as
//! destinations keep it) and its spec as JSON
//! ([`crate::encoders::RenditionSpec`]). Destinations name the rendition
//! they relay in their `source` column.
//!
//! Invariants: a spec that does not parse any more (written by a newer
//! antenne) is skipped at load with a warning, never reset silently in
//! the database; a backup's rendition out of range refuses the whole
//! import.

use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::*;
use crate::encoders::RenditionSpec;

/// A rendition as stored (and in a backup).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRendition {
    pub id: String,
    pub name: String,
    /// The ingest key whose stream it encodes.
    pub ingest: String,
    pub spec: RenditionSpec,
}

fn spec_json(spec: &RenditionSpec) -> Result<String, StoreError> {
    serde_json::to_string(spec).map_err(|e| StoreError::Write(e.to_string()))
}

impl Store {
    // === renditions ===

    pub fn renditions(&self) -> Result<Vec<StoredRendition>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT id, name, ingest, spec FROM renditions ORDER BY position, id")
            .map_err(write_error)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(write_error)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, name, ingest, spec) = row.map_err(write_error)?;
            match serde_json::from_str(&spec) {
                Ok(spec) => out.push(StoredRendition {
                    id,
                    name,
                    ingest,
                    spec,
                }),
                Err(e) => {
                    tracing::warn!(rendition = %id, error = %e, "saved rendition unreadable: skipped")
                }
            }
        }
        Ok(out)
    }

    pub fn insert_rendition(&self, r: &StoredRendition) -> Result<(), StoreError> {
        let spec = spec_json(&r.spec)?;
        let t = now();
        self.lock()
            .execute(
                "INSERT INTO renditions (id, name, ingest, spec, position, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, (SELECT COALESCE(MAX(position), 0) + 1 FROM renditions), ?5, ?5)",
                params![r.id, r.name, r.ingest, spec, t],
            )
            .map_err(write_error)?;
        Ok(())
    }

    /// False when there is no such rendition.
    pub fn update_rendition(&self, r: &StoredRendition) -> Result<bool, StoreError> {
        let spec = spec_json(&r.spec)?;
        let n = self
            .lock()
            .execute(
                "UPDATE renditions SET name = ?2, ingest = ?3, spec = ?4, updated_at = ?5 WHERE id = ?1",
                params![r.id, r.name, r.ingest, spec, now()],
            )
            .map_err(write_error)?;
        Ok(n == 1)
    }

    /// False when there is no such rendition.
    pub fn delete_rendition(&self, id: &str) -> Result<bool, StoreError> {
        let n = self
            .lock()
            .execute("DELETE FROM renditions WHERE id = ?1", [id])
            .map_err(write_error)?;
        Ok(n == 1)
    }

    /// Within an import's transaction: the backup's renditions replace
    /// the stored ones.
    pub(super) fn import_renditions(
        tx: &rusqlite::Transaction<'_>,
        list: &[StoredRendition],
    ) -> Result<(), StoreError> {
        tx.execute("DELETE FROM renditions", [])
            .map_err(write_error)?;
        let t = now();
        for (i, r) in list.iter().enumerate() {
            r.spec
                .validate()
                .map_err(|e| StoreError::Invalid(format!("rendition {:?}: {e}", r.id)))?;
            tx.execute(
                "INSERT INTO renditions (id, name, ingest, spec, position, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![r.id, r.name, r.ingest, spec_json(&r.spec)?, i as i64, t],
            )
            .map_err(write_error)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rendition_and_a_destination_source_survive_a_reopen_and_a_backup() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("opens");
        let r = StoredRendition {
            id: "r1".into(),
            name: "Vertical".into(),
            ingest: "ingestkey".into(),
            spec: RenditionSpec::vertical(720, 1280, 3000),
        };
        store.insert_rendition(&r).expect("saves");
        let mut changed = r.clone();
        changed.spec.video_kbps = 2500;
        assert!(store.update_rendition(&changed).expect("updates"));
        let d = StoredDestination {
            id: "d1".into(),
            name: "TikTok".into(),
            platform: "custom".into(),
            url: "rtmp://127.0.0.1/live".into(),
            key: "k".into(),
            enabled: true,
            ingest: "ingestkey".into(),
            via_obs: None,
            source: Some("r1".into()),
            tracks: None,
        };
        store.insert_destination(&d).expect("saves");
        drop(store);
        let store = Store::open(dir.path()).expect("reopens");
        assert_eq!(store.renditions().expect("lists"), vec![changed.clone()]);
        let backup = store.export().expect("exports");
        assert_eq!(backup.renditions, vec![changed.clone()]);
        assert_eq!(backup.destinations[0].source.as_deref(), Some("r1"));
        assert!(store.delete_rendition("r1").expect("deletes"));
        store.import(&backup).expect("imports");
        assert_eq!(store.renditions().expect("lists"), vec![changed]);
        assert!(!store.delete_rendition("nope").expect("answers"));
        // A backup with a rendition out of range is refused whole.
        let mut bad = store.export().expect("exports");
        bad.renditions[0].spec.width = 181;
        bad.destinations.clear();
        assert!(matches!(store.import(&bad), Err(StoreError::Invalid(_))));
        assert_eq!(store.destinations().expect("lists").len(), 1);
    }
}
