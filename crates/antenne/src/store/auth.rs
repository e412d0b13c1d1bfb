//! The admin account, its browser sessions and API tokens in the store.

use rusqlite::{params, OptionalExtension};

use super::*;

impl Store {
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
}
