//! Each ingest's standby settings in the store: the wait before the
//! standby starts, the hold limit, and the uploaded picture (the bytes as
//! checked on upload: PNG or JPEG, bounded in size).
//!
//! Invariants: `None` means "antenne's default" (the command-line flags),
//! so changing a flag changes every ingest that kept the default; one row
//! per ingest id.

use rusqlite::params;

use super::*;

/// One ingest's standby settings as stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredStandby {
    pub ingest_id: String,
    pub wait_ms: Option<u64>,
    /// Seconds; with `hold_forever` false and this `None`: the default.
    pub hold_secs: Option<u64>,
    pub hold_forever: bool,
    /// The picture and its MIME type.
    pub image: Option<(Vec<u8>, String)>,
}

impl Store {
    // === standby ===

    pub fn standby_settings(&self) -> Result<Vec<StoredStandby>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT ingest_id, wait_ms, hold_secs, hold_forever, image, image_type
                 FROM standby_settings",
            )
            .map_err(write_error)?;
        let rows = stmt
            .query_map([], |r| {
                let image: Option<Vec<u8>> = r.get(4)?;
                let kind: Option<String> = r.get(5)?;
                Ok(StoredStandby {
                    ingest_id: r.get(0)?,
                    wait_ms: r.get::<_, Option<i64>>(1)?.map(|v| v.max(0) as u64),
                    hold_secs: r.get::<_, Option<i64>>(2)?.map(|v| v.max(0) as u64),
                    hold_forever: r.get::<_, i64>(3)? != 0,
                    image: image.zip(kind),
                })
            })
            .map_err(write_error)?;
        rows.collect::<Result<_, _>>().map_err(write_error)
    }

    /// Saves an ingest's wait and hold limit, keeping its picture.
    pub fn put_standby_limits(&self, s: &StoredStandby) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "INSERT INTO standby_settings
                   (ingest_id, wait_ms, hold_secs, hold_forever, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(ingest_id) DO UPDATE SET wait_ms = excluded.wait_ms,
                   hold_secs = excluded.hold_secs, hold_forever = excluded.hold_forever,
                   updated_at = excluded.updated_at",
                params![
                    s.ingest_id,
                    s.wait_ms.map(|v| v as i64),
                    s.hold_secs.map(|v| v as i64),
                    s.hold_forever as i64,
                    now()
                ],
            )
            .map_err(write_error)?;
        Ok(())
    }

    /// Saves all of an ingest's standby settings, its picture included.
    pub fn put_standby_settings(&self, s: &StoredStandby) -> Result<(), StoreError> {
        let (image, kind) = match &s.image {
            Some((bytes, kind)) => (Some(bytes.as_slice()), Some(kind.as_str())),
            None => (None, None),
        };
        self.lock()
            .execute(
                "INSERT INTO standby_settings
                   (ingest_id, wait_ms, hold_secs, hold_forever, image, image_type, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(ingest_id) DO UPDATE SET wait_ms = excluded.wait_ms,
                   hold_secs = excluded.hold_secs, hold_forever = excluded.hold_forever,
                   image = excluded.image, image_type = excluded.image_type,
                   updated_at = excluded.updated_at",
                params![
                    s.ingest_id,
                    s.wait_ms.map(|v| v as i64),
                    s.hold_secs.map(|v| v as i64),
                    s.hold_forever as i64,
                    image,
                    kind,
                    now()
                ],
            )
            .map_err(write_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standby_settings_round_trip() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("store");
        let s = StoredStandby {
            ingest_id: "abc".into(),
            wait_ms: Some(500),
            hold_secs: None,
            hold_forever: true,
            image: Some((vec![0x89, b'P', b'N', b'G'], "image/png".into())),
        };
        store.put_standby_settings(&s).expect("saved");
        assert_eq!(store.standby_settings().expect("read"), vec![s.clone()]);
        let cleared = StoredStandby {
            image: None,
            ..s.clone()
        };
        store.put_standby_settings(&cleared).expect("saved");
        assert_eq!(
            store.standby_settings().expect("read"),
            vec![cleared.clone()]
        );
        // Limits alone keep the picture.
        store.put_standby_settings(&s).expect("saved");
        let limits = StoredStandby {
            wait_ms: None,
            image: None,
            ..s.clone()
        };
        store.put_standby_limits(&limits).expect("saved");
        let back = store.standby_settings().expect("read");
        assert_eq!(back[0].wait_ms, None);
        assert_eq!(back[0].image, s.image);
    }
}
