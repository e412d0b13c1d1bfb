//! Pulls in the store (see [`crate::ingest::pull`]): per ingest key, the
//! URL its stream is pulled from and whether the pull is on. The URL holds
//! the source's stream key: the API masks it unless `?reveal=keys`.

use rusqlite::params;

use super::*;

/// A pull as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPull {
    /// The ingest key the pulled stream feeds.
    pub ingest: String,
    pub url: String,
    pub enabled: bool,
}

impl Store {
    // === pulls ===

    pub fn pulls(&self) -> Result<Vec<StoredPull>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT ingest, url, enabled FROM ingest_pulls ORDER BY ingest")
            .map_err(write_error)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(StoredPull {
                    ingest: r.get(0)?,
                    url: r.get(1)?,
                    enabled: r.get::<_, i64>(2)? != 0,
                })
            })
            .map_err(write_error)?;
        rows.collect::<Result<_, _>>().map_err(write_error)
    }

    /// Saves (adds or replaces) the pull of `p.ingest`.
    pub fn set_pull(&self, p: &StoredPull) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "INSERT INTO ingest_pulls (ingest, url, enabled, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(ingest) DO UPDATE SET url = ?2, enabled = ?3, updated_at = ?4",
                params![p.ingest, p.url, p.enabled as i64, now()],
            )
            .map_err(write_error)?;
        Ok(())
    }

    pub fn delete_pull(&self, ingest: &str) -> Result<(), StoreError> {
        self.lock()
            .execute("DELETE FROM ingest_pulls WHERE ingest = ?1", [ingest])
            .map_err(write_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pull_is_saved_replaced_and_deleted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("store");
        let mut p = StoredPull {
            ingest: "k1".into(),
            url: "rtmp://127.0.0.1/live/obs".into(),
            enabled: true,
        };
        store.set_pull(&p).expect("saved");
        p.enabled = false;
        store.set_pull(&p).expect("replaced");
        assert_eq!(store.pulls().expect("read"), vec![p]);
        store.delete_pull("k1").expect("deleted");
        assert!(store.pulls().expect("read").is_empty());
    }
}
