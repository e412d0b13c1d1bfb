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

mod auth;
mod backup;
mod destinations;
mod events;
mod migrations;
mod pulls;
mod renditions;
mod srt;
mod standby;
mod webhooks;
pub use pulls::StoredPull;
pub use renditions::StoredRendition;
pub use standby::StoredStandby;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};
pub use webhooks::StoredWebhook;

use migrations::MIGRATIONS;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};

/// File name of the database in the data directory.
pub const DB_FILE: &str = "antenne.db";

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
    /// The rendition it relays (an id); `None`: its ingest as it comes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Which of the ingest's tracks it takes (not with a rendition);
    /// `None`: the main picture and audio track 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracks: Option<StoredTracks>,
}

pub use destinations::{StoredTracks, StoredVideo};

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

/// A browser session as stored (the token itself is never stored).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSession {
    pub token_hash: String,
    pub username: String,
    pub expires_at: i64,
    pub last_used_at: i64,
}

/// What `antenne export` writes and `antenne import` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backup {
    pub antenne_backup: u32,
    pub ingest_keys: Vec<StoredIngestKey>,
    pub destinations: Vec<StoredDestination>,
    #[serde(default)]
    pub settings: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub renditions: Vec<StoredRendition>,
    /// SRT passphrases by ingest key (secrets, like the keys).
    #[serde(default)]
    pub srt_passphrases: std::collections::BTreeMap<String, String>,
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
        // A new database is created private: SQLite gives its WAL and
        // shared-memory files the database file's mode.
        #[cfg(unix)]
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| StoreError::Open {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
        }
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

    /// Runs `f` with the store on a blocking thread: SQLite's work (fsync,
    /// waiting on another process's lock) never runs on the runtime's
    /// threads, which also relay. The one way the async code reaches the
    /// store.
    pub async fn off_runtime<T: Send + 'static>(
        self: &std::sync::Arc<Self>,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = std::sync::Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Write(format!("the save was interrupted ({e})")))?
    }

    pub fn path(&self) -> &Path {
        &self.path
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
}

/// Files of the data directory that hold secrets.
const PRIVATE_FILES: &[&str] = &[
    "antenne.db",
    "antenne.db-wal",
    "antenne.db-shm",
    "antenne.lock",
];

/// Makes `data_dir` 0700 and its database, WAL, shared-memory and lock
/// files 0600. Returns what was changed: (path, old mode, new mode).
/// Failures are left to the open that follows.
pub fn secure_permissions(data_dir: &Path) -> Vec<(PathBuf, u32, u32)> {
    let mut fixed = Vec::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut fix = |path: PathBuf, want: u32| {
            let Ok(meta) = std::fs::metadata(&path) else {
                return;
            };
            let old = meta.permissions().mode() & 0o7777;
            if old & 0o077 != 0 {
                let new = old & !0o077 & 0o700 | (want & 0o700);
                if std::fs::set_permissions(&path, std::fs::Permissions::from_mode(new)).is_ok() {
                    fixed.push((path, old, new));
                }
            }
        };
        fix(data_dir.to_path_buf(), 0o700);
        for name in PRIVATE_FILES {
            fix(data_dir.join(name), 0o600);
        }
    }
    fixed
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
            source: None,
            tracks: None,
        }
    }

    #[cfg(unix)]
    #[test]
    fn makes_the_data_directory_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
        drop(Store::open(dir.path()).expect("creates"));
        assert_eq!(mode(&dir.path().join(DB_FILE)), 0o600, "created private");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        std::fs::set_permissions(
            dir.path().join(DB_FILE),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
        let fixed = secure_permissions(dir.path());
        assert_eq!(fixed.len(), 2, "{fixed:?}");
        assert_eq!(mode(dir.path()), 0o700);
        assert_eq!(mode(&dir.path().join(DB_FILE)), 0o600);
        assert!(
            secure_permissions(dir.path()).is_empty(),
            "nothing left to fix"
        );
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
            renditions: vec![],
            srt_passphrases: Default::default(),
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
