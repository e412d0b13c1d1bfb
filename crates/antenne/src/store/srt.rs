//! SRT passphrases of ingest keys in the store (see
//! [`crate::ingest::srt`]). A passphrase is a secret: the API shows it only
//! with `?reveal=keys`.

use rusqlite::params;

use super::*;

impl Store {
    /// Every ingest key's SRT passphrase, as (key, passphrase).
    pub fn srt_passphrases(&self) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT key, passphrase FROM srt_passphrases ORDER BY key")
            .map_err(write_error)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(write_error)?;
        rows.collect::<Result<_, _>>().map_err(write_error)
    }

    /// Sets a key's passphrase, or removes it with `None`.
    pub fn set_srt_passphrase(
        &self,
        key: &str,
        passphrase: Option<&str>,
    ) -> Result<(), StoreError> {
        let conn = self.lock();
        match passphrase {
            Some(p) => conn.execute(
                "INSERT INTO srt_passphrases (key, passphrase) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET passphrase = excluded.passphrase",
                params![key, p],
            ),
            None => conn.execute("DELETE FROM srt_passphrases WHERE key = ?1", [key]),
        }
        .map_err(write_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srt_passphrases_are_kept_replaced_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.set_srt_passphrase("k1", Some("0123456789")).unwrap();
        store.set_srt_passphrase("k1", Some("9876543210")).unwrap();
        assert_eq!(
            store.srt_passphrases().unwrap(),
            vec![("k1".to_owned(), "9876543210".to_owned())]
        );
        let backup = store.export().unwrap();
        let other = tempfile::tempdir().unwrap();
        let restored = Store::open(other.path()).unwrap();
        restored.import(&backup).unwrap();
        assert_eq!(
            restored.srt_passphrases().unwrap(),
            vec![("k1".to_owned(), "9876543210".to_owned())],
            "a backup carries the passphrases"
        );
        store.set_srt_passphrase("k1", None).unwrap();
        assert!(store.srt_passphrases().unwrap().is_empty());
    }
}
