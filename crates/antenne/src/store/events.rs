//! The event history in the store.

use rusqlite::params;

use super::*;

impl Store {
    // === events ===

    pub fn insert_event(&self, e: &Event) -> Result<(), StoreError> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO events (at, kind, destination_id, destination_name, message, actor)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                e.at,
                e.kind,
                e.destination_id,
                e.destination_name,
                e.message,
                e.actor
            ],
        )
        .map_err(write_error)?;
        let id = conn.last_insert_rowid();
        if id % 1000 == 0 {
            let _ = conn.execute("DELETE FROM events WHERE id <= ?1", [id - MAX_EVENTS]);
        }
        Ok(())
    }

    /// Newest first.
    pub fn events(&self, destination: Option<&str>, limit: u32) -> Result<Vec<Event>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT id, at, kind, destination_id, destination_name, message, actor FROM events
                 WHERE ?1 IS NULL OR destination_id = ?1 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(write_error)?;
        let rows = stmt
            .query_map(params![destination, limit.min(10_000)], |r| {
                Ok(Event {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    kind: r.get(2)?,
                    destination_id: r.get(3)?,
                    destination_name: r.get(4)?,
                    message: r.get(5)?,
                    actor: r.get(6)?,
                })
            })
            .map_err(write_error)?;
        rows.collect::<Result<_, _>>().map_err(write_error)
    }
}
