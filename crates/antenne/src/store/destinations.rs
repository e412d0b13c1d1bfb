//! Destinations and ingest keys in the store.

use rusqlite::params;

use super::*;

impl Store {
    // === destinations ===

    pub fn destinations(&self) -> Result<Vec<StoredDestination>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT id, name, platform, url, key, enabled, ingest, via_obs, source FROM destinations
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
                    source: r.get(8)?,
                })
            })
            .map_err(write_error)?;
        rows.collect::<Result<_, _>>().map_err(write_error)
    }

    pub fn insert_destination(&self, d: &StoredDestination) -> Result<(), StoreError> {
        let conn = self.lock();
        let t = now();
        conn.execute(
            "INSERT INTO destinations (id, name, platform, url, key, enabled, ingest, via_obs, position, created_at, updated_at, source)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?9,
                     (SELECT COALESCE(MAX(position), 0) + 1 FROM destinations), ?8, ?8, ?10)",
            params![d.id, d.name, d.platform, d.url, d.key, d.enabled, d.ingest, t, d.via_obs, d.source],
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
                "INSERT INTO destinations (id, name, platform, url, key, enabled, ingest, via_obs, position, created_at, updated_at, source)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?9,
                         (SELECT COALESCE(MAX(position), 0) + 1 FROM destinations), ?8, ?8, ?10)",
                params![d.id, d.name, d.platform, d.url, d.key, d.enabled, d.ingest, t, d.via_obs, d.source],
            )
            .map_err(write_error)?;
        }
        tx.commit().map_err(write_error)
    }

    pub fn update_destination(&self, d: &StoredDestination) -> Result<(), StoreError> {
        let conn = self.lock();
        conn.execute(
            "UPDATE destinations SET name = ?2, platform = ?3, url = ?4, key = ?5, enabled = ?6,
             ingest = ?7, updated_at = ?8, via_obs = ?9, source = ?10 WHERE id = ?1",
            params![
                d.id,
                d.name,
                d.platform,
                d.url,
                d.key,
                d.enabled,
                d.ingest,
                now(),
                d.via_obs,
                d.source
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

    /// Switches the listed destinations on or off in one transaction: all
    /// or nothing.
    pub fn set_destinations_enabled(
        &self,
        ids: &[String],
        enabled: bool,
    ) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(write_error)?;
        let t = now();
        for id in ids {
            tx.execute(
                "UPDATE destinations SET enabled = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, enabled, t],
            )
            .map_err(write_error)?;
        }
        tx.commit().map_err(write_error)
    }

    /// Saves the display order: `ids[0]` first. One transaction; ids not
    /// listed keep their position.
    pub fn set_destination_order(&self, ids: &[String]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(write_error)?;
        for (i, id) in ids.iter().enumerate() {
            tx.execute(
                "UPDATE destinations SET position = ?2 WHERE id = ?1",
                params![id, i as i64],
            )
            .map_err(write_error)?;
        }
        tx.commit().map_err(write_error)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(id: &str) -> StoredDestination {
        StoredDestination {
            id: id.into(),
            name: format!("Dest {id}"),
            platform: "custom".into(),
            url: "rtmp://127.0.0.1/live".into(),
            key: "k".into(),
            enabled: false,
            ingest: "i".into(),
            via_obs: None,
            source: None,
        }
    }

    fn ids(s: &Store) -> Vec<String> {
        s.destinations()
            .expect("lists")
            .into_iter()
            .map(|d| d.id)
            .collect()
    }

    #[test]
    fn keeps_the_order_across_reopen_and_puts_new_ones_last() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let s = Store::open(dir.path()).expect("opens");
            for id in ["a", "b", "c"] {
                s.insert_destination(&dest(id)).expect("saves");
            }
            s.set_destination_order(&["c".into(), "a".into(), "b".into()])
                .expect("reorders");
        }
        let s = Store::open(dir.path()).expect("opens again");
        assert_eq!(ids(&s), ["c", "a", "b"]);
        s.insert_destination(&dest("d")).expect("saves");
        assert_eq!(ids(&s), ["c", "a", "b", "d"]);
        let backup = s.export().expect("exports");
        let order: Vec<&str> = backup.destinations.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(order, ["c", "a", "b", "d"]);
    }

    #[test]
    fn switching_many_is_all_or_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = Store::open(dir.path()).expect("opens");
        for id in ["a", "b", "c"] {
            s.insert_destination(&dest(id)).expect("saves");
        }
        // The write of "c" fails: "a" and "b" must stay as they were.
        s.lock()
            .execute_batch(
                "CREATE TRIGGER refuse_c BEFORE UPDATE ON destinations WHEN NEW.id = 'c'
                 BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .expect("trigger");
        let all: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        s.set_destinations_enabled(&all, true)
            .expect_err("the last write fails");
        assert!(s.destinations().expect("lists").iter().all(|d| !d.enabled));
        s.set_destinations_enabled(&all[..2], true).expect("saves");
        let on: Vec<bool> = s
            .destinations()
            .expect("lists")
            .iter()
            .map(|d| d.enabled)
            .collect();
        assert_eq!(on, [true, true, false]);
    }
}
