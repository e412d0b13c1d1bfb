//! The writer of one recording session: a thread of its own, so that no
//! file write, `fsync` or `statvfs` ever runs on the runtime threads.
//!
//! Invariants: each fragment is written whole and synced before the next
//! (a power cut loses at most the fragment being written; a partial one
//! is cut away by [`super::files::repair`] at the next start); before
//! each write the free space is checked and under the limit the file is
//! closed and the thread ends with [`WriterEnd::LowSpace`]; the queue to
//! the thread is bounded: a slow disk makes the session wait, its hub
//! queue then skips to the next keyframe, and the relay never waits.

use crate::history::EventKind;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::files;
use super::session::SessionStatus;
use super::RecordingSettings;

/// Fragments queued for the disk, at most.
const QUEUE: usize = 16;

#[derive(Debug)]
pub(super) enum WriteCmd {
    /// Closes the current file and starts a new one (named after the
    /// ingest and `start`) with this init segment.
    Open {
        ingest_id: String,
        start: SystemTime,
        init: Bytes,
    },
    Fragment(Bytes),
    /// Closes the current file.
    Close,
}

/// Why the writer stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum WriterEnd {
    /// Its queue was closed: the session ended.
    Done,
    LowSpace(String),
    Failed(String),
}

pub(super) struct Writer {
    pub tx: mpsc::Sender<WriteCmd>,
    pub end: oneshot::Receiver<WriterEnd>,
}

/// Files being written now, across sessions (never deleted by retention
/// nor by the API).
pub(super) type OpenFiles = Arc<Mutex<Vec<PathBuf>>>;

pub(super) fn spawn(
    dir: PathBuf,
    settings: Arc<RwLock<RecordingSettings>>,
    open: OpenFiles,
    history: crate::history::History,
    status: Arc<Mutex<SessionStatus>>,
) -> std::io::Result<Writer> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let (end_tx, end) = oneshot::channel();
    std::thread::Builder::new()
        .name("recording".into())
        .spawn(move || {
            let mut w = FileWriter {
                dir,
                settings,
                open,
                history,
                status,
                current: None,
            };
            let end = w.run(rx);
            w.close();
            let _ = end_tx.send(end);
        })?;
    Ok(Writer { tx, end })
}

struct FileWriter {
    dir: PathBuf,
    settings: Arc<RwLock<RecordingSettings>>,
    open: OpenFiles,
    history: crate::history::History,
    status: Arc<Mutex<SessionStatus>>,
    current: Option<(PathBuf, File)>,
}

impl FileWriter {
    fn settings(&self) -> RecordingSettings {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn open_files(&self) -> std::sync::MutexGuard<'_, Vec<PathBuf>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run(&mut self, mut rx: mpsc::Receiver<WriteCmd>) -> WriterEnd {
        while let Some(cmd) = rx.blocking_recv() {
            let result = match cmd {
                WriteCmd::Open {
                    ingest_id,
                    start,
                    init,
                } => {
                    let path = files::file_name(&ingest_id, start, &self.dir);
                    self.open_file(path, start, &init)
                }
                WriteCmd::Fragment(data) => self.write(&data),
                WriteCmd::Close => {
                    self.close();
                    Ok(())
                }
            };
            if let Err(end) = result {
                return end;
            }
        }
        WriterEnd::Done
    }

    fn check_space(&self) -> Result<(), WriterEnd> {
        let min = self.settings().min_free_mib.saturating_mul(1024 * 1024);
        match files::free_bytes(&self.dir) {
            Ok(free) if free < min => Err(WriterEnd::LowSpace(format!(
                "recording stopped: {} MiB free on the recordings disk ({}), under the {} MiB limit",
                free / (1024 * 1024),
                self.dir.display(),
                min / (1024 * 1024)
            ))),
            Ok(_) => Ok(()),
            Err(e) => Err(WriterEnd::Failed(format!(
                "recording stopped: cannot read the free space of {}: {e}",
                self.dir.display()
            ))),
        }
    }

    fn open_file(
        &mut self,
        path: PathBuf,
        start: SystemTime,
        init: &[u8],
    ) -> Result<(), WriterEnd> {
        self.close();
        self.check_space()?;
        let fail = |e: std::io::Error| {
            WriterEnd::Failed(format!(
                "recording stopped: cannot write {}: {e}",
                path.display()
            ))
        };
        let mut file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(fail)?;
        file.write_all(init)
            .and_then(|()| file.sync_data())
            .map_err(fail)?;
        self.open_files().push(path.clone());
        {
            let mut st = self.status.lock().unwrap_or_else(|e| e.into_inner());
            st.file = path.file_name().map(|n| n.to_string_lossy().into_owned());
            st.since = Some(start);
        }
        self.current = Some((path, file));
        let s = self.settings();
        let open = self.open_files().clone();
        let deleted = files::apply_retention(
            &self.dir,
            s.keep_days,
            s.keep_gib.map(|g| g.saturating_mul(1 << 30)),
            &open,
        );
        if !deleted.is_empty() {
            self.history.record(
                EventKind::RecordingDeleted,
                None,
                format!(
                    "retention deleted {} old recording(s): {}",
                    deleted.len(),
                    deleted.join(", ")
                ),
                None,
            );
        }
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), WriterEnd> {
        if self.current.is_none() {
            return Ok(());
        }
        self.check_space()?;
        let Some((path, file)) = &mut self.current else {
            return Ok(());
        };
        file.write_all(data)
            .and_then(|()| file.sync_data())
            .map_err(|e| {
                WriterEnd::Failed(format!(
                    "recording stopped: cannot write {}: {e}",
                    path.display()
                ))
            })
    }

    fn close(&mut self) {
        if let Some((path, file)) = self.current.take() {
            let _ = file.sync_all();
            drop(file);
            // A write cut short (disk full) may leave half a fragment.
            let _ = files::repair(&path);
            self.open_files().retain(|p| p != &path);
            let mut st = self.status.lock().unwrap_or_else(|e| e.into_inner());
            st.file = None;
        }
    }
}
