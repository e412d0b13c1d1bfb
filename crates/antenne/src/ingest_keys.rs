//! Ingest keys: given on the command line (then fixed), or kept in the
//! store, where the first start generates one.

use anyhow::{bail, Context};

use crate::secret::StreamKey;
use crate::store::{Store, StoredIngestKey};

/// Where the keys came from, to tell the user once.
pub enum Origin {
    CommandLine,
    Stored,
    /// Generated now: the caller prints it once.
    Generated,
}

/// Checks that a key can be typed into OBS and used in a URL path.
pub fn validate(key: &str) -> anyhow::Result<()> {
    if key.is_empty() || key.len() > 200 {
        bail!("an ingest key must be 1 to 200 characters long");
    }
    if !key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
    {
        bail!("an ingest key may only contain letters, digits, '-', '_', '.' and '~'");
    }
    Ok(())
}

/// A new random ingest key.
pub fn generate() -> String {
    format!("live_{:032x}", rand::random::<u128>())
}

/// The ingest keys to serve.
pub fn load(cli_keys: &[String], store: &Store) -> anyhow::Result<(Vec<StreamKey>, Origin)> {
    if !cli_keys.is_empty() {
        let mut keys: Vec<StreamKey> = Vec::new();
        for k in cli_keys {
            let k = k.trim();
            validate(k)
                .with_context(|| format!("invalid --ingest-key {}", crate::secret::mask(k)))?;
            if keys.iter().any(|x| x.expose() == k) {
                bail!("the same --ingest-key is given twice");
            }
            keys.push(StreamKey::new(k));
        }
        return Ok((keys, Origin::CommandLine));
    }
    let stored = store.ingest_keys()?;
    if !stored.is_empty() {
        return Ok((
            stored.into_iter().map(|k| StreamKey::new(k.key)).collect(),
            Origin::Stored,
        ));
    }
    let key = generate();
    store.add_ingest_key(&StoredIngestKey {
        key: key.clone(),
        name: String::new(),
    })?;
    Ok((vec![StreamKey::new(key)], Origin::Generated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_reuses() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("store");
        let (k1, o1) = load(&[], &store).expect("generates");
        assert!(matches!(o1, Origin::Generated));
        let (k2, o2) = load(&[], &store).expect("loads");
        assert!(matches!(o2, Origin::Stored));
        assert_eq!(k1, k2);
    }

    #[test]
    fn refuses_keys_that_do_not_fit_in_a_url() {
        assert!(validate("live/abc").is_err());
        assert!(validate("").is_err());
        assert!(validate("a b").is_err());
        assert!(validate("live_abc-123").is_ok());
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("store");
        assert!(load(&["k1".into(), "k1".into()], &store).is_err());
    }
}
