//! Destinations and ingest keys in the store.
//!
//! A destination's source is two columns: `source` (a rendition id, as
//! since schema 5) and `tracks` (its own migration: JSON of [`StoredTracks`], the
//! ingest's video and audio tracks it takes; NULL for the main picture
//! with audio track 0). A value this antenne cannot read loads as NULL.

use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::*;

/// Which of its ingest's tracks a destination takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTracks {
    #[serde(default)]
    pub video: StoredVideo,
    /// Audio track id (0: the main one).
    #[serde(default)]
    pub audio: u8,
}

/// The video a destination takes from its ingest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredVideo {
    /// Track 0.
    #[default]
    Main,
    /// A portrait track when the ingest has one, else a portrait rendition.
    Vertical,
    /// That video track.
    Track(u8),
}

fn tracks_to_sql(t: &Option<StoredTracks>) -> Option<String> {
    t.as_ref().and_then(|t| serde_json::to_string(t).ok())
}

fn tracks_from_sql(s: Option<String>) -> Option<StoredTracks> {
    s.and_then(|s| serde_json::from_str(&s).ok())
}

impl Store {
    // === destinations ===

    pub fn destinations(&self) -> Result<Vec<StoredDestination>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT id, name, platform, url, key, enabled, ingest, via_obs, source, tracks FROM destinations
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
                    tracks: tracks_from_sql(r.get(9)?),
                })
            })
            .map_err(write_error)?;
        rows.collect::<Result<_, _>>().map_err(write_error)
    }

    pub fn insert_destination(&self, d: &StoredDestination) -> Result<(), StoreError> {
        let conn = self.lock();
        let t = now();
        conn.execute(
            "INSERT INTO destinations (id, name, platform, url, key, enabled, ingest, via_obs, position, created_at, updated_at, source, tracks)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?9,
                     (SELECT COALESCE(MAX(position), 0) + 1 FROM destinations), ?8, ?8, ?10, ?11)",
            params![d.id, d.name, d.platform, d.url, d.key, d.enabled, d.ingest, t, d.via_obs, d.source, tracks_to_sql(&d.tracks)],
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
                "INSERT INTO destinations (id, name, platform, url, key, enabled, ingest, via_obs, position, created_at, updated_at, source, tracks)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?9,
                         (SELECT COALESCE(MAX(position), 0) + 1 FROM destinations), ?8, ?8, ?10, ?11)",
                params![d.id, d.name, d.platform, d.url, d.key, d.enabled, d.ingest, t, d.via_obs, d.source, tracks_to_sql(&d.tracks)],
            )
            .map_err(write_error)?;
        }
        tx.commit().map_err(write_error)
    }

    pub fn update_destination(&self, d: &StoredDestination) -> Result<(), StoreError> {
        let conn = self.lock();
        conn.execute(
            "UPDATE destinations SET name = ?2, platform = ?3, url = ?4, key = ?5, enabled = ?6,
             ingest = ?7, updated_at = ?8, via_obs = ?9, source = ?10, tracks = ?11 WHERE id = ?1",
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
                d.source,
                tracks_to_sql(&d.tracks)
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
            tracks: None,
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
    fn keeps_a_destinations_tracks_across_reopen_and_in_backups() {
        let dir = tempfile::tempdir().expect("temp dir");
        let vertical = StoredTracks {
            video: StoredVideo::Vertical,
            audio: 2,
        };
        {
            let s = Store::open(dir.path()).expect("opens");
            let mut d = dest("a");
            d.tracks = Some(vertical);
            s.insert_destination(&d).expect("saves");
            d.id = "b".into();
            d.tracks = Some(StoredTracks {
                video: StoredVideo::Track(1),
                audio: 0,
            });
            s.insert_destination(&d).expect("saves");
            s.insert_destination(&dest("c")).expect("saves");
        }
        let s = Store::open(dir.path()).expect("opens again");
        let tracks: Vec<_> = s
            .destinations()
            .expect("lists")
            .iter()
            .map(|d| d.tracks)
            .collect();
        assert_eq!(tracks[0], Some(vertical));
        assert_eq!(tracks[1].map(|t| t.video), Some(StoredVideo::Track(1)));
        assert_eq!(tracks[2], None);
        let json = serde_json::to_value(&s.export().expect("exports").destinations[0])
            .expect("serialises");
        assert_eq!(
            json["tracks"],
            serde_json::json!({"video": "vertical", "audio": 2})
        );
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
