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

    /// Replaces a user's password hash and ends every session but
    /// `keep` (a token hash), in one transaction.
    pub fn set_password(
        &self,
        username: &str,
        password_hash: &str,
        keep: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(write_error)?;
        let n = tx
            .execute(
                "UPDATE users SET password_hash = ?2 WHERE username = ?1",
                params![username, password_hash],
            )
            .map_err(write_error)?;
        tx.execute(
            "DELETE FROM sessions WHERE token_hash IS NOT ?1",
            params![keep],
        )
        .map_err(write_error)?;
        tx.commit().map_err(write_error)?;
        Ok(n > 0)
    }

    pub fn create_session(&self, session: &StoredSession) -> Result<(), StoreError> {
        let conn = self.lock();
        conn.execute("DELETE FROM sessions WHERE expires_at < ?1", [now()])
            .map_err(write_error)?;
        conn.execute(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, last_used_at)
             SELECT ?1, id, ?3, ?4, ?3 FROM users WHERE username = ?2",
            params![
                session.token_hash,
                session.username,
                session.last_used_at,
                session.expires_at
            ],
        )
        .map_err(write_error)?;
        Ok(())
    }

    /// Every unexpired session.
    pub fn sessions(&self) -> Result<Vec<StoredSession>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT s.token_hash, u.username, s.expires_at, COALESCE(s.last_used_at, s.created_at)
                 FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.expires_at > ?1",
            )
            .map_err(write_error)?;
        let rows = stmt
            .query_map([now()], |r| {
                Ok(StoredSession {
                    token_hash: r.get(0)?,
                    username: r.get(1)?,
                    expires_at: r.get(2)?,
                    last_used_at: r.get(3)?,
                })
            })
            .map_err(write_error)?;
        rows.collect::<Result<_, _>>().map_err(write_error)
    }

    pub fn touch_session(&self, token_hash: &str, at: i64) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "UPDATE sessions SET last_used_at = ?2 WHERE token_hash = ?1",
                params![token_hash, at],
            )
            .map_err(write_error)?;
        Ok(())
    }

    pub fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.lock()
            .execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])
            .map_err(write_error)?;
        Ok(())
    }

    pub fn delete_all_sessions(&self) -> Result<(), StoreError> {
        self.lock()
            .execute("DELETE FROM sessions", [])
            .map_err(write_error)?;
        Ok(())
    }

    // === failed logins ===

    /// (address, failures, since) of every address with failures.
    pub fn login_failures(&self) -> Result<Vec<(String, u32, i64)>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT ip, count, since FROM login_failures")
            .map_err(write_error)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(write_error)?;
        rows.collect::<Result<_, _>>().map_err(write_error)
    }

    /// Records an address's failures; `count` 0 forgets it. Older entries
    /// than `forget_before` are pruned.
    pub fn set_login_failures(
        &self,
        ip: &str,
        count: u32,
        since: i64,
        forget_before: i64,
    ) -> Result<(), StoreError> {
        let conn = self.lock();
        conn.execute(
            "DELETE FROM login_failures WHERE since < ?1 OR ip = ?2",
            params![forget_before, ip],
        )
        .map_err(write_error)?;
        if count > 0 {
            conn.execute(
                "INSERT INTO login_failures (ip, count, since) VALUES (?1, ?2, ?3)",
                params![ip, count, since],
            )
            .map_err(write_error)?;
        }
        Ok(())
    }

    pub fn clear_login_failures(&self) -> Result<(), StoreError> {
        self.lock()
            .execute("DELETE FROM login_failures", [])
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
