//! The database schema, as the migrations that build it: each entry
//! migrates from the previous version (`PRAGMA user_version`). Entries are
//! only ever appended; a shipped one is never edited.

/// Schema versions, in order. Each entry migrates from the previous one.
pub(super) const MIGRATIONS: &[&str] = &[
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
    // 3: sessions end after a week unused; failed logins survive restarts.
    "ALTER TABLE sessions ADD COLUMN last_used_at INTEGER;
     UPDATE sessions SET last_used_at = created_at;
     CREATE TABLE login_failures (
        ip TEXT PRIMARY KEY,
        count INTEGER NOT NULL,
        since INTEGER NOT NULL
     );",
    // 4: alert webhooks (events: comma-separated alert event names).
    "CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        format TEXT NOT NULL,
        events TEXT NOT NULL,
        secret TEXT NOT NULL,
        created_at INTEGER NOT NULL
     );",
    // 5: renditions (spec: JSON of `encoders::RenditionSpec`); what a
    // destination relays (NULL: its ingest; else a rendition id).
    "CREATE TABLE renditions (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        ingest TEXT NOT NULL,
        spec TEXT NOT NULL,
        position INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
     );
     ALTER TABLE destinations ADD COLUMN source TEXT;",
    // 6 (pull): an ingest key's stream pulled from a URL (`ingest::pull`);
    // keyed by the ingest key (command-line keys are not in ingest_keys).
    "CREATE TABLE ingest_pulls (
        ingest TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        enabled INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
     );",
    // 7: which of the ingest's tracks a destination takes (JSON of
    // `StoredTracks`; NULL: the main picture and audio track 0).
    "ALTER TABLE destinations ADD COLUMN tracks TEXT;",
    // 8: SRT passphrases of ingest keys (a secret, like the key itself);
    // its own table so keys given on the command line can have one too.
    "CREATE TABLE srt_passphrases (
        key TEXT PRIMARY KEY,
        passphrase TEXT NOT NULL
     );",
    // 9: each ingest's standby settings (NULL: antenne's defaults;
    // hold_secs NULL with hold_forever 1: no limit) and uploaded picture.
    "CREATE TABLE standby_settings (
        ingest_id TEXT PRIMARY KEY,
        wait_ms INTEGER,
        hold_secs INTEGER,
        hold_forever INTEGER NOT NULL DEFAULT 0,
        image BLOB,
        image_type TEXT,
        updated_at INTEGER NOT NULL
     );",
];
