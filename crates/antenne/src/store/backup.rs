//! Backups: everything `antenne export` writes and `antenne import` reads.

use rusqlite::params;

use super::*;

impl Store {
    // === backup ===

    pub fn export(&self) -> Result<Backup, StoreError> {
        let settings = {
            let conn = self.lock();
            let mut stmt = conn
                .prepare("SELECT key, value FROM settings ORDER BY key")
                .map_err(write_error)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(write_error)?;
            rows.collect::<Result<_, _>>().map_err(write_error)?
        };
        Ok(Backup {
            antenne_backup: 1,
            ingest_keys: self.ingest_keys()?,
            destinations: self.destinations()?,
            settings,
            renditions: self.renditions()?,
            srt_passphrases: self.srt_passphrases()?.into_iter().collect(),
        })
    }

    /// Replaces ingest keys, destinations, renditions and settings with the backup's,
    /// in one transaction: all or nothing. The caller validates first.
    pub fn import(&self, b: &Backup) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(write_error)?;
        let t = now();
        tx.execute_batch(
            "DELETE FROM destinations; DELETE FROM ingest_keys; DELETE FROM settings;
             DELETE FROM srt_passphrases;",
        )
        .map_err(write_error)?;
        for k in &b.ingest_keys {
            tx.execute(
                "INSERT INTO ingest_keys (key, name, created_at) VALUES (?1, ?2, ?3)",
                params![k.key, k.name, t],
            )
            .map_err(write_error)?;
        }
        for (i, d) in b.destinations.iter().enumerate() {
            tx.execute(
                "INSERT INTO destinations (id, name, platform, url, key, enabled, ingest, via_obs, position, created_at, updated_at, source)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?10, ?8, ?9, ?9, ?11)",
                params![d.id, d.name, d.platform, d.url, d.key, d.enabled, d.ingest, i as i64, t, d.via_obs, d.source],
            )
            .map_err(write_error)?;
        }
        Store::import_renditions(&tx, &b.renditions)?;
        for (k, p) in &b.srt_passphrases {
            tx.execute(
                "INSERT INTO srt_passphrases (key, passphrase) VALUES (?1, ?2)",
                params![k, p],
            )
            .map_err(write_error)?;
        }
        for (k, v) in &b.settings {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)",
                params![k, v],
            )
            .map_err(write_error)?;
        }
        tx.commit().map_err(write_error)
    }
}
