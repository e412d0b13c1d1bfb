//! Who may use antenne: one admin account (argon2-hashed password),
//! sessions for the browser, bearer tokens for scripts, and a limit on
//! password guessing ([`throttle`]).
//!
//! Invariants:
//! - Sessions live in memory (loaded at start, written through to the
//!   store on the caller's blocking thread), so checking one on every
//!   request does no I/O. A session ends [`SESSION_TTL`] after login, or
//!   after [`SESSION_IDLE`] without use, or when the password changes
//!   (every other session), or on "log out everywhere".
//! - The last use of a session is saved at most every
//!   [`TOUCH_INTERVAL`], off the runtime threads.
//! - Every password check (login, password change) goes through the
//!   [`throttle`]: counted before hashing, at most two at once.

pub mod throttle;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use sha2::{Digest, Sha256};

use crate::store::{self, Store, StoreError, StoredSession, TokenInfo};
use throttle::{Refusal, Throttle};
pub use throttle::{FAILURE_WINDOW, MAX_FAILURES};

/// The account created at first start.
pub const ADMIN: &str = "admin";
/// How long a browser session lasts at most.
pub const SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// A session unused for this long ends.
pub const SESSION_IDLE: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often a session's last use is saved (the idle timeout is this
/// precise across restarts).
pub const TOUCH_INTERVAL: Duration = Duration::from_secs(3600);
/// Shortest password accepted for a new password.
pub const MIN_PASSWORD_LEN: usize = 10;

/// Who made a request, for the event history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    User(String),
    Token(String),
}

impl Identity {
    pub fn actor(&self) -> String {
        match self {
            Identity::User(u) => u.clone(),
            Identity::Token(t) => format!("token {t}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("wrong user name or password")]
    Invalid,
    #[error("too many failed logins: try again in {0} s")]
    RateLimited(u64),
    #[error("too many password checks at once: try again in a few seconds")]
    Busy,
    #[error("the new password must have at least {MIN_PASSWORD_LEN} characters")]
    WeakPassword,
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Refusal> for LoginError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::RateLimited(s) => LoginError::RateLimited(s),
            Refusal::Busy => LoginError::Busy,
        }
    }
}

/// A random secret, hex-encoded (session cookies, API tokens, passwords).
pub fn random_secret(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Hashes a password with argon2id (default parameters).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Whether a new password is long enough.
pub fn check_new_password(password: &str) -> Result<(), LoginError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(LoginError::WeakPassword);
    }
    Ok(())
}

/// A live session in memory.
#[derive(Debug, Clone)]
struct Session {
    username: String,
    expires_at: i64,
    last_used_at: i64,
    /// Last use as saved in the store.
    saved_at: i64,
}

impl Session {
    fn alive(&self, now: i64) -> bool {
        now < self.expires_at && now - self.last_used_at < SESSION_IDLE.as_secs() as i64
    }
}

/// Authentication state.
pub struct Auth {
    store: Arc<Store>,
    /// `ANTENNE_API_TOKEN`, if set: accepted as a bearer token.
    env_token: Option<String>,
    /// Live sessions by token hash.
    sessions: Mutex<HashMap<String, Session>>,
    throttle: Throttle,
}

/// An argon2id hash (default parameters) of a random password nobody
/// knows, verified against when the user name does not exist, so that the
/// answer takes as long as for a real user. A constant: computing one at
/// start-up would cost 19 MiB that the allocator keeps.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Zx8zvBqfGkL0QbqWmZC2+8m8hGJxJ0wL9b2vN8cYV1c";

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth")
    }
}

impl Auth {
    /// Loads sessions and failed logins from the store.
    pub fn new(store: Arc<Store>, env_token: Option<String>) -> Result<Auth, StoreError> {
        let sessions = store
            .sessions()?
            .into_iter()
            .map(|s| {
                let session = Session {
                    username: s.username,
                    expires_at: s.expires_at,
                    last_used_at: s.last_used_at,
                    saved_at: s.last_used_at,
                };
                (s.token_hash, session)
            })
            .collect();
        let throttle = Throttle::new(store.login_failures()?);
        Ok(Auth {
            store,
            env_token: env_token.filter(|t| !t.is_empty()),
            sessions: Mutex::new(sessions),
            throttle,
        })
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates the admin account at first start. Returns the password when
    /// it was generated (to print once).
    pub fn ensure_admin(&self, password: Option<String>) -> anyhow::Result<Option<String>> {
        if self.store.user_count()? > 0 {
            return Ok(None);
        }
        let (password, generated) = match password.filter(|p| !p.is_empty()) {
            Some(p) => (p, false),
            None => (random_secret(12), true),
        };
        check_new_password(&password).map_err(|e| anyhow::anyhow!("the admin password: {e}"))?;
        let hash = hash_password(&password)
            .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
        self.store.create_user(ADMIN, &hash)?;
        Ok(generated.then_some(password))
    }

    /// Runs `check` (which verifies a password, argon2) on a blocking
    /// thread once the throttle lets it: counted first, two at once.
    async fn checked<T: Send + 'static>(
        self: &Arc<Self>,
        ip: IpAddr,
        check: impl FnOnce(&Auth) -> Result<T, LoginError> + Send + 'static,
    ) -> Result<T, LoginError> {
        self.throttle.begin(ip, store::now())?;
        let permit = match self.throttle.permit().await {
            Ok(p) => p,
            Err(e) => {
                self.throttle.undo(ip);
                return Err(e.into());
            }
        };
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let result = check(&this);
            let record = match &result {
                Err(LoginError::Invalid) => Some(this.throttle.failed(ip)),
                Ok(_) => Some(this.throttle.succeeded(ip)),
                Err(_) => None,
            };
            if let Some((ip, count, since)) = record {
                let forget = store::now() - FAILURE_WINDOW.as_secs() as i64;
                if let Err(e) = this.store.set_login_failures(&ip, count, since, forget) {
                    tracing::warn!(error = %e, "cannot save failed logins");
                }
            }
            result
        })
        .await
        .map_err(|e| LoginError::Internal(e.to_string()))?
    }

    /// Verifies `username`'s password (or a dummy one, as slowly).
    fn verify(&self, username: &str, password: &str) -> Result<(), LoginError> {
        match self.store.user(username)? {
            Some((_, hash)) if verify_password(password, &hash) => Ok(()),
            Some(_) => Err(LoginError::Invalid),
            None => {
                verify_password(password, DUMMY_HASH);
                Err(LoginError::Invalid)
            }
        }
    }

    /// Checks the password; returns a new session token.
    pub async fn login(
        self: &Arc<Self>,
        ip: IpAddr,
        username: String,
        password: String,
    ) -> Result<String, LoginError> {
        self.checked(ip, move |auth| {
            auth.verify(&username, &password)?;
            let token = random_secret(32);
            let now = store::now();
            let stored = StoredSession {
                token_hash: hash_token(&token),
                username: username.clone(),
                expires_at: now + SESSION_TTL.as_secs() as i64,
                last_used_at: now,
            };
            auth.store.create_session(&stored)?;
            let mut sessions = auth.sessions();
            sessions.retain(|_, s| s.alive(now));
            sessions.insert(
                stored.token_hash,
                Session {
                    username,
                    expires_at: stored.expires_at,
                    last_used_at: now,
                    saved_at: now,
                },
            );
            Ok(token)
        })
        .await
    }

    /// Changes `username`'s password (the current one is checked, like a
    /// login) and ends every session but `keep` (the caller's cookie).
    pub async fn change_password(
        self: &Arc<Self>,
        ip: IpAddr,
        username: String,
        current: String,
        new: String,
        keep: Option<String>,
    ) -> Result<(), LoginError> {
        check_new_password(&new)?;
        self.checked(ip, move |auth| {
            auth.verify(&username, &current)?;
            let hash = hash_password(&new).map_err(LoginError::Internal)?;
            let keep = keep.as_deref().map(hash_token);
            auth.store.set_password(&username, &hash, keep.as_deref())?;
            auth.sessions().retain(|h, _| Some(h) == keep.as_ref());
            Ok(())
        })
        .await
    }

    /// Ends one session (blocking: the store).
    pub fn logout(&self, session: &str) -> Result<(), StoreError> {
        let hash = hash_token(session);
        self.sessions().remove(&hash);
        self.store.delete_session(&hash)
    }

    /// Ends every session (blocking: the store). Returns how many ended.
    pub fn logout_everywhere(&self) -> Result<usize, StoreError> {
        let n = {
            let mut sessions = self.sessions();
            let n = sessions.len();
            sessions.clear();
            n
        };
        self.store.delete_all_sessions()?;
        Ok(n)
    }

    /// The user of a session cookie (memory only: no I/O). Marks the
    /// session used; its last use is saved now and then, off the runtime.
    pub fn session(&self, session: &str) -> Option<Identity> {
        let hash = hash_token(session);
        let now = store::now();
        let mut sessions = self.sessions();
        let s = sessions.get_mut(&hash)?;
        if !s.alive(now) {
            sessions.remove(&hash);
            return None;
        }
        s.last_used_at = now;
        let user = s.username.clone();
        if now - s.saved_at >= TOUCH_INTERVAL.as_secs() as i64 {
            s.saved_at = now;
            let store = self.store.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn_blocking(move || {
                    if let Err(e) = store.touch_session(&hash, now) {
                        tracing::warn!(error = %e, "cannot save a session's last use");
                    }
                });
            }
        }
        Some(Identity::User(user))
    }

    /// Whether a session is still alive, without marking it used.
    pub fn session_alive(&self, session: &str) -> bool {
        let hash = hash_token(session);
        self.sessions()
            .get(&hash)
            .is_some_and(|s| s.alive(store::now()))
    }

    /// `antenne reset-password`: a new generated password for `admin`,
    /// every session ended, failed logins forgotten. Blocking; antenne must
    /// not be running on this store.
    pub fn reset_password(store: &Store) -> anyhow::Result<String> {
        let password = random_secret(12);
        let hash = hash_password(&password)
            .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
        if store.user_count()? == 0 {
            store.create_user(ADMIN, &hash)?;
        } else if !store.set_password(ADMIN, &hash, None)? {
            anyhow::bail!("there is no {ADMIN} account in this data directory");
        }
        store.clear_login_failures()?;
        Ok(password)
    }

    /// The token behind an `Authorization: Bearer` value.
    pub fn bearer(&self, token: &str) -> Option<Identity> {
        if let Some(env) = &self.env_token {
            if crate::secret::constant_time_eq(env.as_bytes(), token.as_bytes()) {
                return Some(Identity::Token("ANTENNE_API_TOKEN".into()));
            }
        }
        self.store
            .use_token(&hash_token(token))
            .ok()
            .flatten()
            .map(Identity::Token)
    }

    /// Creates an API token; the secret is returned once and only its hash
    /// is kept.
    pub fn create_token(&self, name: &str) -> Result<(String, String), StoreError> {
        let id = format!("t{}", random_secret(6));
        let token = format!("antenne_{}", random_secret(24));
        self.store.create_token(&id, name, &hash_token(&token))?;
        Ok((id, token))
    }

    pub fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        self.store.tokens()
    }

    pub fn delete_token(&self, id: &str) -> Result<bool, StoreError> {
        self.store.delete_token(id)
    }
}

#[cfg(test)]
mod tests;
