//! Persistent state in SQLite (`antenne.db` in the data directory):
//! destinations, ingest keys, settings, users, sessions, API tokens and the
//! event history.
//!
//! - Schema migrations run at start-up; the version is SQLite's
//!   `user_version`. A database from a newer antenne, or one that fails
//!   SQLite's integrity check, stops start-up with a clear message: it is
//!   never reset silently.
//! - WAL journal with `synchronous=FULL`: a change is on disk when the call
//!   returns, so a crash or power cut loses no acknowledged change. Every
//!   change is one transaction; a full or read-only disk fails the call
//!   and leaves the previous state intact.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};

/// File name of the database in the data directory.
pub const DB_FILE: &str = "antenne.db";

/// Schema versions, in order. Each entry migrates from the previous one.
const MIGRATIONS: &[&str] = &[
    // 1: first schema.
    "CREATE TABLE ingest_keys (
        key TEXT PRIMARY KEY,
        name TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL
     );
     CREATE TABLE destinations (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        platform TEXT NOT NULL DEFAULT 'custom',
        url TEXT NOT NULL,
        key TEXT NOT NULL,
        enabled INTEGER NOT NULL,
        ingest TEXT NOT NULL,
        position INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
     );
     CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL
     );
     CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
     );
     CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        last_used_at INTEGER
     );
     CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        destination_id TEXT,
        destination_name TEXT,
        message TEXT NOT NULL,
        actor TEXT
     );
     CREATE INDEX events_by_destination ON events(destination_id, id);",
    // 2: destinations streamed by OBS itself ("main" or an output name).
    "ALTER TABLE destinations ADD COLUMN via_obs TEXT;",
];

/// Setting: the host OBS reaches antenne at (shown in the OBS settings,
/// and used when antenne points OBS at itself). Empty: the browser's.
pub const SETTING_PUBLIC_HOST: &str = "public_host";

/// Events kept in the history; older ones are pruned.
const MAX_EVENTS: i64 = 50_000;

/// Why the store failed. Texts are for the user.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("the database {path} is damaged ({detail}); antenne will not start on it. Restore a backup (antenne import) or move the file away to start afresh")]
    Corrupt { path: PathBuf, detail: String },
    #[error("the database {path} was written by a newer antenne (schema {found}, this one knows up to {supported}); upgrade antenne")]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("cannot save: {0}")]
    Write(String),
    #[error("invalid backup: {0}")]
    Invalid(String),
}

fn write_error(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    let reason = match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => "the disk is full".to_owned(),
        Some(ErrorCode::ReadOnly) => "the data directory is read-only".to_owned(),
        Some(ErrorCode::CannotOpen) | Some(ErrorCode::PermissionDenied) => {
            "the data directory is not writable".to_owned()
        }
        // SQLite only says "disk I/O error"; the system call that failed
        // set this thread's errno (the store runs on the caller's thread),
        // which tells why.
        Some(ErrorCode::SystemIoFailure) => match std::io::Error::last_os_error().kind() {
            std::io::ErrorKind::ReadOnlyFilesystem => "the data directory is read-only".to_owned(),
            std::io::ErrorKind::PermissionDenied => {
                "the database file is not writable (read-only or immutable)".to_owned()
            }
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                "the disk is full".to_owned()
            }
            _ => format!("input/output error ({e}): is the disk read-only, full or failing?"),
        },
        _ => e.to_string(),
    };
    StoreError::Write(reason)
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A destination as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredDestination {
    pub id: String,
    pub name: String,
    #[serde(default = "custom")]
    pub platform: String,
    pub url: String,
    pub key: String,
    pub enabled: bool,
    pub ingest: String,
    /// Streamed by OBS itself: `main` (OBS's stream output) or the name of
    /// one of its outputs; `None` when antenne relays it.
    #[serde(default)]
    pub via_obs: Option<String>,
}

fn custom() -> String {
    "custom".into()
}

/// An ingest key as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredIngestKey {
    pub key: String,
    #[serde(default)]
    pub name: String,
}

/// One line of the event history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub id: i64,
    /// Seconds since the epoch.
    pub at: i64,
    pub kind: String,
    pub destination_id: Option<String>,
    pub destination_name: Option<String>,
    pub message: String,
    pub actor: Option<String>,
}

/// An API token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// What `antenne export` writes and `antenne import` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backup {
    pub antenne_backup: u32,
    pub ingest_keys: Vec<StoredIngestKey>,
    pub destinations: Vec<StoredDestination>,
    #[serde(default)]
    pub settings: std::collections::BTreeMap<String, String>,
}

/// The database.
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) and migrates the database in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let path = data_dir.join(DB_FILE);
        let open_err = |e: rusqlite::Error| StoreError::Open {
            path: path.clone(),
            reason: e.to_string(),
        };
        let corrupt = |e: rusqlite::Error| StoreError::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        };
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        // The first read tells a damaged or foreign file apart.
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::NotADatabase)
                | Some(rusqlite::ErrorCode::DatabaseCorrupt) => corrupt(e),
                _ => open_err(e),
            })?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(corrupt)?;
        if check != "ok" {
            return Err(StoreError::Corrupt {
                path,
                detail: check,
            });
        }
        let supported = MIGRATIONS.len() as i64;
        if version > supported {
            return Err(StoreError::TooNew {
                path,
                found: version,
                supported,
            });
        }
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;",
        )
        .map_err(open_err)?;
        let mut store = Store {
            conn: Mutex::new(conn),
            path,
        };
        store.migrate(version)?;
        Ok(store)
    }

    fn migrate(&mut self, from: i64) -> Result<(), StoreError> {
        let conn = self.conn.get_mut().unwrap_or_else(|e| e.into_inner());
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
            let tx = conn.transaction().map_err(write_error)?;
            tx.execute_batch(sql).map_err(write_error)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(write_error)?;
            tx.commit().map_err(write_error)?;
            tracing::info!(version = i + 1, "database schema migrated");
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

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

    // === settings ===

    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.lock()
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(write_error)
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map_err(write_error)?;
        Ok(())
    }

    // === users and sessions ===

    pub fn user_count(&self) -> Result<i64, StoreError> {
        self.lock()
            .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
            .map_err(write_error)
    }

    pub fn create_user(&self, username: &str, password_hash: &str) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "INSERT INTO users (username, password_hash, created_at) VALUES (?1, ?2, ?3)",
                params![username, password_hash, now()],
            )
            .map_err(write_error)?;
        Ok(())
    }

    /// (user id, password hash) of a user.
    pub fn user(&self, username: &str) -> Result<Option<(i64, String)>, StoreError> {
        self.lock()
            .query_row(
                "SELECT id, password_hash FROM users WHERE username = ?1",
                [username],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(write_error)
    }

    pub fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let conn = self.lock();
        conn.execute("DELETE FROM sessions WHERE expires_at < ?1", [now()])
            .map_err(write_error)?;
        conn.execute(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![token_hash, user_id, now(), expires_at],
        )
        .map_err(write_error)?;
        Ok(())
    }

    /// The user name of a live session.
    pub fn session_user(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        self.lock()
            .query_row(
                "SELECT u.username FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = ?1 AND s.expires_at > ?2",
                params![token_hash, now()],
                |r| r.get(0),
            )
            .optional()
            .map_err(write_error)
    }

    pub fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.lock()
            .execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])
            .map_err(write_error)?;
        Ok(())
    }

    // === API tokens ===

    pub fn create_token(&self, id: &str, name: &str, token_hash: &str) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "INSERT INTO api_tokens (id, name, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![id, name, token_hash, now()],
            )
            .map_err(write_error)?;
        Ok(())
    }

    pub fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT id, name, created_at, last_used_at FROM api_tokens ORDER BY created_at",
            )
            .map_err(write_error)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(TokenInfo {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    created_at: r.get(2)?,
                    last_used_at: r.get(3)?,
                })
            })
            .map_err(write_error)?;
        rows.collect::<Result<_, _>>().map_err(write_error)
    }

    /// Whether a token was deleted.
    pub fn delete_token(&self, id: &str) -> Result<bool, StoreError> {
        let n = self
            .lock()
            .execute("DELETE FROM api_tokens WHERE id = ?1", [id])
            .map_err(write_error)?;
        Ok(n > 0)
    }

    /// The name of the token with this hash, marking it used.
    pub fn use_token(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        let conn = self.lock();
        let name: Option<String> = conn
            .query_row(
                "SELECT name FROM api_tokens WHERE token_hash = ?1",
                [token_hash],
                |r| r.get(0),
            )
            .optional()
            .map_err(write_error)?;
        if name.is_some() {
            // Best effort: a read-only disk must not lock API clients out.
            let _ = conn.execute(
                "UPDATE api_tokens SET last_used_at = ?2 WHERE token_hash = ?1",
                params![token_hash, now()],
            );
        }
        Ok(name)
    }

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
        })
    }

    /// Replaces ingest keys, destinations and settings with the backup's,
    /// in one transaction: all or nothing. The caller validates first.
    pub fn import(&self, b: &Backup) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(write_error)?;
        let t = now();
        tx.execute_batch(
            "DELETE FROM destinations; DELETE FROM ingest_keys; DELETE FROM settings;",
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
                "INSERT INTO destinations (id, name, platform, url, key, enabled, ingest, via_obs, position, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?10, ?8, ?9, ?9)",
                params![d.id, d.name, d.platform, d.url, d.key, d.enabled, d.ingest, i as i64, t, d.via_obs],
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

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(id: &str) -> StoredDestination {
        StoredDestination {
            id: id.into(),
            name: "YouTube".into(),
            platform: "youtube".into(),
            url: "rtmp://a.rtmp.youtube.com/live2".into(),
            key: "secret".into(),
            enabled: true,
            ingest: "live_k".into(),
            via_obs: None,
        }
    }

    #[test]
    fn keeps_state_across_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let s = Store::open(dir.path()).expect("opens");
            s.add_ingest_key(&StoredIngestKey {
                key: "live_k".into(),
                name: String::new(),
            })
            .expect("saves key");
            s.insert_destination(&dest("a")).expect("saves");
            let mut b = dest("b");
            s.insert_destination(&b).expect("saves");
            b.enabled = false;
            b.via_obs = Some("main".into());
            s.update_destination(&b).expect("updates");
            s.set_setting("public_host", "example.org")
                .expect("saves setting");
        }
        let s = Store::open(dir.path()).expect("reopens");
        let ds = s.destinations().expect("loads");
        assert_eq!(ds.len(), 2);
        assert_eq!(ds[0].id, "a");
        assert!(!ds[1].enabled);
        assert_eq!(ds[1].via_obs.as_deref(), Some("main"));
        assert_eq!(
            s.setting("public_host").expect("reads").as_deref(),
            Some("example.org")
        );
        assert_eq!(s.ingest_keys().expect("reads").len(), 1);
    }

    #[test]
    fn refuses_a_corrupt_database() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(DB_FILE), vec![0x42u8; 8192]).expect("writes junk");
        let err = Store::open(dir.path()).expect_err("junk is refused");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("damaged"));
        // The file was not replaced.
        assert_eq!(
            std::fs::read(dir.path().join(DB_FILE))
                .expect("reads")
                .len(),
            8192
        );
    }

    #[test]
    fn refuses_a_database_from_a_newer_antenne() {
        let dir = tempfile::tempdir().expect("temp dir");
        drop(Store::open(dir.path()).expect("creates"));
        let conn = Connection::open(dir.path().join(DB_FILE)).expect("opens");
        conn.pragma_update(None, "user_version", 99)
            .expect("sets version");
        drop(conn);
        let err = Store::open(dir.path()).expect_err("newer is refused");
        assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    }

    #[test]
    fn import_is_all_or_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = Store::open(dir.path()).expect("opens");
        s.insert_destination(&dest("keep")).expect("saves");
        // Two destinations with one id: the second insert fails, and the
        // whole import with it.
        let bad = Backup {
            antenne_backup: 1,
            ingest_keys: vec![],
            destinations: vec![dest("dup"), dest("dup")],
            settings: Default::default(),
        };
        assert!(s.import(&bad).is_err());
        let ds = s.destinations().expect("loads");
        assert_eq!(ds.len(), 1);
        assert_eq!(ds[0].id, "keep");
    }

    #[test]
    fn events_filter_by_destination_newest_first() {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = Store::open(dir.path()).expect("opens");
        for (i, d) in ["a", "b", "a"].iter().enumerate() {
            s.insert_event(&Event {
                id: 0,
                at: i as i64,
                kind: "went_live".into(),
                destination_id: Some(d.to_string()),
                destination_name: None,
                message: format!("m{i}"),
                actor: None,
            })
            .expect("saves");
        }
        let a = s.events(Some("a"), 10).expect("reads");
        assert_eq!(
            a.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
            vec!["m2", "m0"]
        );
        assert_eq!(s.events(None, 2).expect("reads").len(), 2);
    }
}
