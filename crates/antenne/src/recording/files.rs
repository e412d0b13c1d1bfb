//! The recordings directory: file names, listing, free space, retention,
//! and the repair of a file a crash cut mid-fragment.
//!
//! Invariants: a recording's id is its file name, and a name is only
//! ever used if it matches [`valid_id`] *and* is found in the directory
//! listing: nothing the API receives becomes a path otherwise (no `..`,
//! no `/`, no other directory). Names carry the ingest's hashed id, never
//! its key. Everything here is blocking I/O: callers run it off the
//! runtime threads.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use antenne_media::fmp4::read;

/// One recording as the API lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecordingFile {
    pub id: String,
    /// The ingest's id (as in `GET /api/v1/ingest`).
    pub ingest: String,
    /// RFC 3339, from the file name.
    pub started_at: String,
    pub duration_seconds: f64,
    pub size_bytes: u64,
    /// Being written now.
    pub recording: bool,
}

/// `ingestid_2026-11-29T14-30-00Z.mp4` (`-2`, `-3`… before `.mp4` when a
/// name is taken).
pub fn file_name(ingest_id: &str, start: SystemTime, dir: &Path) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(start)
        .to_string()
        .replace(':', "-");
    let mut path = dir.join(format!("{ingest_id}_{stamp}.mp4"));
    let mut n = 2;
    while path.exists() {
        path = dir.join(format!("{ingest_id}_{stamp}-{n}.mp4"));
        n += 1;
    }
    path
}

/// Whether `id` has the shape of a recording's name (checked before it
/// is looked up in the listing).
pub fn valid_id(id: &str) -> bool {
    id.len() <= 100
        && id.ends_with(".mp4")
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !id.contains("..")
}

/// (ingest id, RFC 3339 start) from a file name.
fn parse_name(name: &str) -> Option<(String, String)> {
    let stem = name.strip_suffix(".mp4")?;
    let (ingest, stamp) = stem.split_once('_')?;
    let (date, time) = stamp.get(..20)?.split_once('T')?;
    Some((
        ingest.to_owned(),
        format!("{date}T{}", time.replace('-', ":")),
    ))
}

/// The recordings in `dir` (newest first), with a cache of lengths by
/// (name, size) so that a listing reads each file's fragments once.
#[derive(Debug, Default)]
pub struct Listing {
    lengths: Mutex<HashMap<(String, u64), f64>>,
}

impl Listing {
    pub fn list(&self, dir: &Path, open: &[PathBuf]) -> std::io::Result<Vec<RecordingFile>> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        let mut cache = self.lengths.lock().unwrap_or_else(|e| e.into_inner());
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((ingest, started_at)) = valid_id(&name).then(|| parse_name(&name)).flatten()
            else {
                continue;
            };
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let size = meta.len();
            let key = (name.clone(), size);
            let duration = match cache.get(&key) {
                Some(d) => *d,
                None => {
                    let d = duration_of(&entry.path()).unwrap_or(0.0);
                    cache.insert(key, d);
                    d
                }
            };
            out.push(RecordingFile {
                recording: open
                    .iter()
                    .any(|p| p.file_name() == Some(entry.file_name().as_ref())),
                id: name,
                ingest,
                started_at,
                duration_seconds: (duration * 10.0).round() / 10.0,
                size_bytes: size,
            });
        }
        // Forget lengths of files gone or grown.
        cache.retain(|(n, s), _| out.iter().any(|f| &f.id == n && f.size_bytes == *s));
        out.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
        Ok(out)
    }
}

/// The path of recording `id`, if it is one (checked against the
/// directory listing, never joined blindly).
pub fn resolve(dir: &Path, id: &str) -> Option<PathBuf> {
    if !valid_id(id) {
        return None;
    }
    fs::read_dir(dir)
        .ok()?
        .flatten()
        .find(|e| e.file_name().to_str() == Some(id))
        .map(|e| e.path())
        .filter(|p| p.is_file())
}

/// A top-level box: (type, offset, size).
type BoxAt = ([u8; 4], u64, u64);

/// Top-level boxes of a file up to the first one that runs past the end
/// (a fragment cut by a crash); `true` if the file ends on a box end.
fn walk(file: &mut File, len: u64) -> std::io::Result<(Vec<BoxAt>, bool)> {
    let mut boxes = Vec::new();
    let mut at = 0u64;
    let mut header = [0u8; 16];
    while at < len {
        file.seek(SeekFrom::Start(at))?;
        let n = (len - at).min(16) as usize;
        file.read_exact(&mut header[..n])?;
        let Some((kind, size, _)) = read::box_header(&header[..n]) else {
            return Ok((boxes, false));
        };
        if at + size > len {
            return Ok((boxes, false));
        }
        boxes.push((kind, at, size));
        at += size;
    }
    Ok((boxes, true))
}

fn read_body(file: &mut File, offset: u64, size: u64) -> Option<Vec<u8>> {
    // moov and moof are small; anything larger is not ours.
    if size > 4 * 1024 * 1024 {
        return None;
    }
    let mut buf = vec![0u8; size as usize];
    file.seek(SeekFrom::Start(offset)).ok()?;
    file.read_exact(&mut buf).ok()?;
    Some(buf.split_off(8))
}

/// Media length of a recording, seconds: the first track's span across
/// its fragments.
pub fn duration_of(path: &Path) -> Option<f64> {
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let (boxes, _) = walk(&mut file, len).ok()?;
    let (_, moov_at, moov_size) = boxes.iter().find(|b| &b.0 == b"moov")?;
    let scales = read::timescales(&read_body(&mut file, *moov_at, *moov_size)?);
    let (track, scale) = *scales.first()?;
    let (mut first, mut end) = (None, 0u64);
    for (_, at, size) in boxes.iter().filter(|b| &b.0 == b"moof") {
        let Some(body) = read_body(&mut file, *at, *size) else {
            continue;
        };
        for (id, start, span) in read::fragment_spans(&body) {
            if id == track {
                first.get_or_insert(start);
                end = end.max(start + span);
            }
        }
    }
    Some(end.saturating_sub(first?) as f64 / f64::from(scale))
}

/// Cuts a file back to its last complete fragment (`moof` + `mdat`) when
/// a crash left a partial one. Returns the bytes removed.
pub fn repair(path: &Path) -> std::io::Result<u64> {
    let mut file = File::options().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    let (boxes, complete) = walk(&mut file, len)?;
    let last_is_moof = boxes.last().is_some_and(|b| &b.0 == b"moof");
    if complete && !last_is_moof {
        return Ok(0);
    }
    let mut keep = boxes.last().map(|(_, at, size)| at + size).unwrap_or(0);
    if last_is_moof {
        keep = boxes.last().map(|b| b.1).unwrap_or(0);
    }
    file.set_len(keep)?;
    file.sync_all()?;
    Ok(len - keep)
}

/// Free bytes for an unprivileged writer on the file system of `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(dir)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Deletes the oldest recordings past `keep_days` or beyond `keep_bytes`
/// in total, never one being written. Returns the names deleted.
pub fn apply_retention(
    dir: &Path,
    keep_days: Option<u32>,
    keep_bytes: Option<u64>,
    open: &[PathBuf],
) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(valid_id))
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            m.is_file().then(|| {
                (
                    m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    m.len(),
                    e.path(),
                )
            })
        })
        .collect();
    files.sort();
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    let now = SystemTime::now();
    let mut deleted = Vec::new();
    for (modified, size, path) in files {
        if open.contains(&path) {
            continue;
        }
        let too_old = keep_days.is_some_and(|d| {
            now.duration_since(modified).unwrap_or_default()
                > Duration::from_secs(u64::from(d) * 86_400)
        });
        let too_much = keep_bytes.is_some_and(|max| total > max);
        if !(too_old || too_much) {
            continue;
        }
        if fs::remove_file(&path).is_ok() {
            total -= size;
            deleted.push(
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
        }
    }
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_ids_that_are_not_recording_names() {
        assert!(valid_id("0123456789_2026-11-29T14-30-00Z.mp4"));
        for bad in [
            "../antenne.db",
            "..mp4",
            ".hidden.mp4",
            "a/b.mp4",
            "x.db",
            "a b.mp4",
            "",
        ] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn resolves_only_files_listed_in_the_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        let rec = dir.path().join("rec");
        fs::create_dir(&rec).expect("mkdir");
        fs::write(dir.path().join("antenne.db"), b"secret").expect("write");
        fs::write(rec.join("ab_2026-11-29T14-30-00Z.mp4"), b"").expect("write");
        assert!(resolve(&rec, "ab_2026-11-29T14-30-00Z.mp4").is_some());
        assert!(resolve(&rec, "../antenne.db").is_none());
        assert!(resolve(&rec, "cd_2026-11-29T14-30-00Z.mp4").is_none());
    }

    #[test]
    fn names_carry_the_ingest_id_and_start_time() {
        let dir = tempfile::tempdir().expect("temp dir");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let p = file_name("0a1b2c3d4e", t, dir.path());
        let name = p.file_name().and_then(|n| n.to_str()).expect("name");
        assert_eq!(name, "0a1b2c3d4e_2027-01-15T08-00-00Z.mp4");
        assert_eq!(
            parse_name(name),
            Some(("0a1b2c3d4e".into(), "2027-01-15T08:00:00Z".into()))
        );
        fs::write(&p, b"").expect("write");
        assert!(file_name("0a1b2c3d4e", t, dir.path())
            .to_string_lossy()
            .ends_with("08-00-00Z-2.mp4"));
    }

    #[test]
    fn repair_cuts_a_partial_fragment() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("a_2026-11-29T14-30-00Z.mp4");
        let mut data = Vec::new();
        for (kind, size) in [(b"ftyp", 16u32), (b"moov", 8), (b"moof", 8), (b"mdat", 12)] {
            data.extend(size.to_be_bytes());
            data.extend(kind);
            data.resize(data.len() + size as usize - 8, 0);
        }
        let whole = data.len() as u64;
        data.extend(8u32.to_be_bytes());
        data.extend(b"moof");
        data.extend(100u32.to_be_bytes());
        data.extend(b"mdat");
        data.extend([0; 10]);
        fs::write(&p, &data).expect("write");
        assert_eq!(repair(&p).expect("repairs"), data.len() as u64 - whole);
        assert_eq!(fs::metadata(&p).expect("meta").len(), whole);
        assert_eq!(repair(&p).expect("nothing to do"), 0);
    }
}

#[cfg(test)]
mod retention_tests {
    use super::*;

    #[test]
    fn retention_deletes_the_oldest_past_the_size_limit_but_never_an_open_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut paths = Vec::new();
        for (i, name) in [
            "a_2026-01-01T00-00-00Z.mp4",
            "a_2026-01-02T00-00-00Z.mp4",
            "a_2026-01-03T00-00-00Z.mp4",
        ]
        .iter()
        .enumerate()
        {
            let p = dir.path().join(name);
            fs::write(&p, vec![0u8; 1000]).expect("write");
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + i as u64 * 100);
            File::options()
                .write(true)
                .open(&p)
                .and_then(|f| f.set_modified(t))
                .expect("mtime");
            paths.push(p);
        }
        fs::write(dir.path().join("notes.txt"), vec![0u8; 5000]).expect("write");
        // The oldest is being written: the next oldest goes instead.
        let deleted = apply_retention(dir.path(), None, Some(2000), &[paths[0].clone()]);
        assert_eq!(deleted, vec!["a_2026-01-02T00-00-00Z.mp4".to_owned()]);
        assert!(paths[0].exists() && paths[2].exists());
        assert!(
            dir.path().join("notes.txt").exists(),
            "other files untouched"
        );
        let deleted = apply_retention(dir.path(), Some(1), None, &[]);
        assert_eq!(deleted.len(), 2, "older than a day: {deleted:?}");
    }
}
