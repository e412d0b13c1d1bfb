//! Unit tests of the account, sessions and tokens (with a real store in
//! a temporary directory).

use super::*;

const PW: &str = "correct horse battery";

fn open_auth(dir: &tempfile::TempDir) -> Arc<Auth> {
    let store = Arc::new(Store::open(dir.path()).expect("store"));
    Arc::new(Auth::new(store, Some("env-token".into())).expect("auth"))
}

#[tokio::test]
async fn admin_logs_in_and_sessions_identify_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let auth = open_auth(&dir);
    assert_eq!(auth.ensure_admin(Some(PW.into())).expect("creates"), None);
    assert_eq!(auth.ensure_admin(None).expect("exists"), None, "only once");
    let ip = IpAddr::from([127, 0, 0, 1]);
    assert!(matches!(
        auth.login(ip, ADMIN.into(), "nope".into()).await,
        Err(LoginError::Invalid)
    ));
    let token = auth
        .login(ip, ADMIN.into(), PW.into())
        .await
        .expect("logs in");
    assert_eq!(auth.session(&token), Some(Identity::User(ADMIN.into())));
    // Sessions survive a restart.
    let again = open_auth(&dir);
    assert_eq!(again.session(&token), Some(Identity::User(ADMIN.into())));
    auth.logout(&token).expect("logs out");
    assert_eq!(auth.session(&token), None);
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_address_across_restarts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let auth = open_auth(&dir);
    auth.ensure_admin(Some(PW.into())).expect("creates");
    let ip = IpAddr::from([10, 0, 0, 1]);
    for _ in 0..MAX_FAILURES {
        assert!(matches!(
            auth.login(ip, ADMIN.into(), "x".into()).await,
            Err(LoginError::Invalid)
        ));
    }
    let restarted = open_auth(&dir);
    assert!(matches!(
        restarted.login(ip, ADMIN.into(), PW.into()).await,
        Err(LoginError::RateLimited(_))
    ));
    assert!(restarted
        .login(IpAddr::from([10, 0, 0, 2]), ADMIN.into(), PW.into())
        .await
        .is_ok());
}

#[tokio::test]
async fn a_password_change_ends_every_other_session_and_the_old_password() {
    let dir = tempfile::tempdir().expect("temp dir");
    let auth = open_auth(&dir);
    auth.ensure_admin(Some(PW.into())).expect("creates");
    let ip = IpAddr::from([127, 0, 0, 1]);
    let mine = auth.login(ip, ADMIN.into(), PW.into()).await.expect("in");
    let other = auth.login(ip, ADMIN.into(), PW.into()).await.expect("in");
    let new = "a much better password";
    assert!(matches!(
        auth.change_password(ip, ADMIN.into(), PW.into(), "short".into(), None)
            .await,
        Err(LoginError::WeakPassword)
    ));
    assert!(matches!(
        auth.change_password(ip, ADMIN.into(), "wrong".into(), new.into(), None)
            .await,
        Err(LoginError::Invalid)
    ));
    auth.change_password(ip, ADMIN.into(), PW.into(), new.into(), Some(mine.clone()))
        .await
        .expect("changes");
    assert!(auth.session(&mine).is_some());
    assert!(auth.session(&other).is_none());
    assert!(open_auth(&dir).session(&other).is_none(), "stored too");
    assert!(matches!(
        auth.login(ip, ADMIN.into(), PW.into()).await,
        Err(LoginError::Invalid)
    ));
    assert!(auth.login(ip, ADMIN.into(), new.into()).await.is_ok());
    assert_eq!(auth.logout_everywhere().expect("ends all"), 2);
    assert!(auth.session(&mine).is_none());
}

#[tokio::test]
async fn a_reset_password_works_and_ends_sessions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let auth = open_auth(&dir);
    auth.ensure_admin(Some(PW.into())).expect("creates");
    let ip = IpAddr::from([127, 0, 0, 1]);
    let token = auth.login(ip, ADMIN.into(), PW.into()).await.expect("in");
    let store = Store::open(dir.path()).expect("store");
    let pw = Auth::reset_password(&store).expect("resets");
    let after = open_auth(&dir);
    assert!(after.session(&token).is_none());
    assert!(after.login(ip, ADMIN.into(), pw).await.is_ok());
}

#[test]
fn idle_sessions_end() {
    let s = Session {
        username: ADMIN.into(),
        expires_at: 10_000_000,
        last_used_at: 1000,
        saved_at: 1000,
    };
    assert!(s.alive(1000 + SESSION_IDLE.as_secs() as i64 - 1));
    assert!(!s.alive(1000 + SESSION_IDLE.as_secs() as i64));
}

#[test]
fn tokens_work_until_deleted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let auth = open_auth(&dir);
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

#[tokio::test]
async fn a_generated_password_is_returned_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let auth = open_auth(&dir);
    let pw = auth
        .ensure_admin(None)
        .expect("creates")
        .expect("generated");
    assert!(pw.len() >= 16);
    assert!(auth
        .login(IpAddr::from([127, 0, 0, 1]), ADMIN.into(), pw)
        .await
        .is_ok());
}

#[test]
fn short_new_passwords_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let auth = open_auth(&dir);
    assert!(auth.ensure_admin(Some("short".into())).is_err());
}
