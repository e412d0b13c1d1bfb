//! Alert webhooks in the store (see [`crate::alerts`]). A webhook's URL and
//! secret are secrets (a Discord or Slack webhook URL is its own
//! credential): the API masks them unless `?reveal=keys`.

use rusqlite::params;

use super::*;

/// A webhook as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWebhook {
    pub id: String,
    pub url: String,
    /// `generic`, `discord` or `slack`.
    pub format: String,
    /// Alert event names it wants.
    pub events: Vec<String>,
    /// HMAC-SHA256 key of the generic format's signature.
    pub secret: String,
    pub created_at: i64,
}

impl Store {
    // === webhooks ===

    pub fn webhooks(&self) -> Result<Vec<StoredWebhook>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT id, url, format, events, secret, created_at FROM webhooks
                 ORDER BY created_at, id",
            )
            .map_err(write_error)?;
        let rows = stmt
            .query_map([], |r| {
                let events: String = r.get(3)?;
                Ok(StoredWebhook {
                    id: r.get(0)?,
                    url: r.get(1)?,
                    format: r.get(2)?,
                    events: events
                        .split(',')
                        .filter(|e| !e.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    secret: r.get(4)?,
                    created_at: r.get(5)?,
                })
            })
            .map_err(write_error)?;
        rows.collect::<Result<_, _>>().map_err(write_error)
    }

    pub fn insert_webhook(&self, w: &StoredWebhook) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "INSERT INTO webhooks (id, url, format, events, secret, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    w.id,
                    w.url,
                    w.format,
                    w.events.join(","),
                    w.secret,
                    w.created_at
                ],
            )
            .map_err(write_error)?;
        Ok(())
    }

    /// Replaces a webhook's URL, format and events (its secret stays);
    /// false when there is no such webhook.
    pub fn update_webhook(&self, w: &StoredWebhook) -> Result<bool, StoreError> {
        let n = self
            .lock()
            .execute(
                "UPDATE webhooks SET url = ?2, format = ?3, events = ?4 WHERE id = ?1",
                params![w.id, w.url, w.format, w.events.join(",")],
            )
            .map_err(write_error)?;
        Ok(n > 0)
    }

    /// False when there was no such webhook.
    pub fn delete_webhook(&self, id: &str) -> Result<bool, StoreError> {
        let n = self
            .lock()
            .execute("DELETE FROM webhooks WHERE id = ?1", [id])
            .map_err(write_error)?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks_survive_a_reopen_and_can_be_changed_and_deleted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let w = StoredWebhook {
            id: "w1".into(),
            url: "https://example.org/hook".into(),
            format: "generic".into(),
            events: vec!["destination_failed".into(), "ingest_live".into()],
            secret: "s3cret".into(),
            created_at: 1,
        };
        {
            let store = Store::open(dir.path()).expect("store");
            store.insert_webhook(&w).expect("insert");
        }
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(store.webhooks().expect("list"), vec![w.clone()]);
        let changed = StoredWebhook {
            format: "slack".into(),
            events: vec!["ingest_offline".into()],
            ..w.clone()
        };
        assert!(store.update_webhook(&changed).expect("update"));
        assert_eq!(store.webhooks().expect("list"), vec![changed]);
        assert!(store.delete_webhook("w1").expect("delete"));
        assert!(!store.delete_webhook("w1").expect("delete again"));
        assert!(store.webhooks().expect("list").is_empty());
    }
}
