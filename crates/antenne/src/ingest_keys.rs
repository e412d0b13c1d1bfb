//! Ingest keys: given on the command line, or generated once and kept in
//! the data directory (`ingest-key`, mode 0600, written atomically).

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};

use crate::secret::StreamKey;

const FILE: &str = "ingest-key";

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

/// The ingest keys to serve.
pub fn load(cli_keys: &[String], data_dir: &Path) -> anyhow::Result<(Vec<StreamKey>, Origin)> {
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
    let path = data_dir.join(FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let key = text.trim();
            validate(key).with_context(|| format!("{} is damaged", path.display()))?;
            Ok((vec![StreamKey::new(key)], Origin::Stored))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = format!("live_{:032x}", rand::random::<u128>());
            write_atomically(&path, key.as_bytes())
                .with_context(|| format!("cannot save the ingest key in {}", path.display()))?;
            Ok((vec![StreamKey::new(key)], Origin::Generated))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes a file so that it is either the old or the new content, never
/// half: temporary file, fsync, rename, fsync of the directory.
pub fn write_atomically(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state")
    ));
    {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_reuses() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (k1, o1) = load(&[], dir.path()).expect("generates");
        assert!(matches!(o1, Origin::Generated));
        let (k2, o2) = load(&[], dir.path()).expect("loads");
        assert!(matches!(o2, Origin::Stored));
        assert_eq!(k1, k2);
    }

    #[test]
    fn refuses_keys_that_do_not_fit_in_a_url() {
        assert!(validate("live/abc").is_err());
        assert!(validate("").is_err());
        assert!(validate("a b").is_err());
        assert!(validate("live_abc-123").is_ok());
        assert!(load(&["k1".into(), "k1".into()], Path::new("/nonexistent")).is_err());
    }
}
