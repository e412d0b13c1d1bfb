//! Who may use antenne: one admin account (argon2-hashed password),
//! sessions for the browser, bearer tokens for scripts, and a limit on
//! failed logins.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use sha2::{Digest, Sha256};

use crate::store::{self, Store, StoreError, TokenInfo};

/// The account created at first start.
pub const ADMIN: &str = "admin";
/// How long a browser session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Failed logins allowed per address within [`FAILURE_WINDOW`].
pub const MAX_FAILURES: u32 = 5;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

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
    #[error(transparent)]
    Store(#[from] StoreError),
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

/// Authentication state.
pub struct Auth {
    store: Arc<Store>,
    /// `ANTENNE_API_TOKEN`, if set: accepted as a bearer token.
    env_token: Option<String>,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
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
    pub fn new(store: Arc<Store>, env_token: Option<String>) -> Auth {
        Auth {
            store,
            env_token: env_token.filter(|t| !t.is_empty()),
            failures: Mutex::new(HashMap::new()),
        }
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
        let hash = hash_password(&password)
            .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
        self.store.create_user(ADMIN, &hash)?;
        Ok(generated.then_some(password))
    }

    fn check_rate(&self, ip: IpAddr) -> Result<(), LoginError> {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        f.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
        if let Some((n, since)) = f.get(&ip) {
            if *n >= MAX_FAILURES {
                let wait = FAILURE_WINDOW.saturating_sub(since.elapsed());
                return Err(LoginError::RateLimited(wait.as_secs().max(1)));
            }
        }
        Ok(())
    }

    fn count_failure(&self, ip: IpAddr) {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let entry = f.entry(ip).or_insert((0, Instant::now()));
        entry.0 += 1;
    }

    /// Checks the password; returns a new session token. Slow by design
    /// (argon2): call from a blocking thread.
    pub fn login(&self, ip: IpAddr, username: &str, password: &str) -> Result<String, LoginError> {
        self.check_rate(ip)?;
        let user = self.store.user(username)?;
        let ok = match &user {
            Some((_, hash)) => verify_password(password, hash),
            None => {
                verify_password(password, DUMMY_HASH);
                false
            }
        };
        let Some((user_id, _)) = user.filter(|_| ok) else {
            self.count_failure(ip);
            return Err(LoginError::Invalid);
        };
        let token = random_secret(32);
        self.store.create_session(
            &hash_token(&token),
            user_id,
            store::now() + SESSION_TTL.as_secs() as i64,
        )?;
        Ok(token)
    }

    pub fn logout(&self, session: &str) -> Result<(), StoreError> {
        self.store.delete_session(&hash_token(session))
    }

    /// The user of a session cookie.
    pub fn session(&self, session: &str) -> Option<Identity> {
        self.store
            .session_user(&hash_token(session))
            .ok()
            .flatten()
            .map(Identity::User)
    }

    /// The token behind an `Authorization: Bearer` value.
    pub fn bearer(&self, token: &str) -> Option<Identity> {
        if let Some(env) = &self.env_token {
            let (a, b) = (env.as_bytes(), token.as_bytes());
            if a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0 {
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
mod tests {
    use super::*;

    fn auth() -> (tempfile::TempDir, Auth) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(Store::open(dir.path()).expect("store"));
        (dir, Auth::new(store, Some("env-token".into())))
    }

    #[test]
    fn admin_logs_in_and_sessions_identify_them() {
        let (_d, auth) = auth();
        assert_eq!(auth.ensure_admin(Some("pw".into())).expect("creates"), None);
        assert_eq!(auth.ensure_admin(None).expect("exists"), None, "only once");
        let ip = IpAddr::from([127, 0, 0, 1]);
        assert!(matches!(
            auth.login(ip, ADMIN, "nope"),
            Err(LoginError::Invalid)
        ));
        let token = auth.login(ip, ADMIN, "pw").expect("logs in");
        assert_eq!(auth.session(&token), Some(Identity::User(ADMIN.into())));
        auth.logout(&token).expect("logs out");
        assert_eq!(auth.session(&token), None);
    }

    #[test]
    fn failed_logins_are_rate_limited_per_address() {
        let (_d, auth) = auth();
        auth.ensure_admin(Some("pw".into())).expect("creates");
        let ip = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..MAX_FAILURES {
            assert!(matches!(
                auth.login(ip, ADMIN, "x"),
                Err(LoginError::Invalid)
            ));
        }
        assert!(matches!(
            auth.login(ip, ADMIN, "pw"),
            Err(LoginError::RateLimited(_))
        ));
        assert!(auth.login(IpAddr::from([10, 0, 0, 2]), ADMIN, "pw").is_ok());
    }

    #[test]
    fn tokens_work_until_deleted() {
        let (_d, auth) = auth();
        let (id, token) = auth.create_token("stream deck").expect("creates");
        assert_eq!(
            auth.bearer(&token),
            Some(Identity::Token("stream deck".into()))
        );
        assert!(auth.bearer("env-token").is_some());
        assert!(auth.bearer("other").is_none());
        assert!(auth.delete_token(&id).expect("deletes"));
        assert_eq!(auth.bearer(&token), None);
    }

    #[test]
    fn the_dummy_hash_is_a_valid_argon2id_hash() {
        let h = PasswordHash::new(DUMMY_HASH).expect("parses");
        assert_eq!(h.algorithm.as_str(), "argon2id");
        assert!(!verify_password("antenne", DUMMY_HASH));
    }

    #[test]
    fn a_generated_password_is_returned_once() {
        let (_d, auth) = auth();
        let pw = auth
            .ensure_admin(None)
            .expect("creates")
            .expect("generated");
        assert!(pw.len() >= 16);
        assert!(auth.login(IpAddr::from([127, 0, 0, 1]), ADMIN, &pw).is_ok());
    }
}
