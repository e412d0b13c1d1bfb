//! Destinations and ingest keys in the store.

use rusqlite::params;

use super::*;

impl Store {
    // === destinations ===

    pub fn destinations(&self) -> Result<Vec<StoredDestination>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT id, name, platform, url, key, enabled, ingest, via_obs FROM destinations
                 ORDER BY position, created_at",
            )
            .map_err(write_error)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(StoredDestination {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    platform: r.get(2)?,
                    url: r.get(3)?,
                    key: r.get(4)?,
                    enabled: r.get(5)?,
                    ingest: r.get(6)?,
                    via_obs: r.get(7)?,
                })
            })
            .map_err(write_error)?;
        rows.collect::<Result<_, _>>().map_err(write_error)
    }

    pub fn insert_destination(&self, d: &StoredDestination) -> Result<(), StoreError> {
        let conn = self.lock();
        let t = now();
        conn.execute(
            "INSERT INTO destinations (id, name, platform, url, key, enabled, ingest, via_obs, position, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?9,
                     (SELECT COALESCE(MAX(position), 0) + 1 FROM destinations), ?8, ?8)",
            params![d.id, d.name, d.platform, d.url, d.key, d.enabled, d.ingest, t, d.via_obs],
        )
        .map_err(write_error)?;
        Ok(())
    }

    /// Adds several destinations in one transaction: all or none.
    pub fn insert_destinations(&self, list: &[StoredDestination]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(write_error)?;
        let t = now();
        for d in list {
            tx.execute(
                "INSERT INTO destinations (id, name, platform, url, key, enabled, ingest, via_obs, position, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?9,
                         (SELECT COALESCE(MAX(position), 0) + 1 FROM destinations), ?8, ?8)",
                params![d.id, d.name, d.platform, d.url, d.key, d.enabled, d.ingest, t, d.via_obs],
            )
            .map_err(write_error)?;
        }
        tx.commit().map_err(write_error)
    }

    pub fn update_destination(&self, d: &StoredDestination) -> Result<(), StoreError> {
        let conn = self.lock();
        conn.execute(
            "UPDATE destinations SET name = ?2, platform = ?3, url = ?4, key = ?5, enabled = ?6,
             ingest = ?7, updated_at = ?8, via_obs = ?9 WHERE id = ?1",
            params![
                d.id,
                d.name,
                d.platform,
                d.url,
                d.key,
                d.enabled,
                d.ingest,
                now(),
                d.via_obs
            ],
        )
        .map_err(write_error)?;
        Ok(())
    }

    pub fn delete_destination(&self, id: &str) -> Result<(), StoreError> {
        self.lock()
            .execute("DELETE FROM destinations WHERE id = ?1", [id])
            .map_err(write_error)?;
        Ok(())
    }

    // === ingest keys ===

    pub fn ingest_keys(&self) -> Result<Vec<StoredIngestKey>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT key, name FROM ingest_keys ORDER BY created_at, key")
            .map_err(write_error)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(StoredIngestKey {
                    key: r.get(0)?,
                    name: r.get(1)?,
                })
            })
            .map_err(write_error)?;
        rows.collect::<Result<_, _>>().map_err(write_error)
    }

    pub fn add_ingest_key(&self, k: &StoredIngestKey) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "INSERT INTO ingest_keys (key, name, created_at) VALUES (?1, ?2, ?3)",
                params![k.key, k.name, now()],
            )
            .map_err(write_error)?;
        Ok(())
    }

    pub fn delete_ingest_key(&self, key: &str) -> Result<(), StoreError> {
        self.lock()
            .execute("DELETE FROM ingest_keys WHERE key = ?1", [key])
            .map_err(write_error)?;
        Ok(())
    }
}
