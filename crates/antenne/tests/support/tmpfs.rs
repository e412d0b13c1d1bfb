//! [`Tmpfs`]: a small tmpfs mounted on a temp dir, as a data directory whose
//! disk can be filled up ([`Tmpfs::fill`]) and emptied again.
//!
//! Mounting needs CAP_SYS_ADMIN (root in the test containers):
//! [`Tmpfs::mount`] says so with an error where it is not allowed, and a
//! test that needs it fails with that error rather than pass untested.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

/// A tmpfs of a fixed size on its own temp dir; unmounted on drop (lazily,
/// should a process still use it).
pub struct Tmpfs {
    dir: TempDir,
    mounted: bool,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size_kib` KiB.
    pub fn mount(size_kib: u64) -> Result<Tmpfs> {
        let dir = tempfile::Builder::new()
            .prefix("antenne-test-tmpfs-")
            .tempdir()
            .context("tmpfs: cannot create the mount point")?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size_kib}k,mode=0755"))
            .arg("tmpfs")
            .arg(dir.path())
            .output()
            .context("tmpfs: cannot run mount")?;
        if !out.status.success() {
            bail!(
                "tmpfs: mount refused ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(Tmpfs { dir, mounted: true })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn filler(&self) -> PathBuf {
        self.dir.path().join("filler")
    }

    /// Fills what is left of the disk with a file (until ENOSPC); returns
    /// the bytes written.
    pub fn fill(&self) -> Result<u64> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.filler())
            .context("tmpfs: cannot create the filler")?;
        let block = vec![0x5au8; 4096];
        let mut written = 0u64;
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => return Err(e).context("tmpfs: writing the filler"),
            }
        }
        // Whatever a short write left.
        let _ = f.write(&[0u8; 1]);
        Ok(written)
    }

    /// Frees the space [`Tmpfs::fill`] took.
    pub fn free(&self) -> Result<()> {
        match std::fs::remove_file(self.filler()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).context("tmpfs: cannot remove the filler"),
        }
    }

    /// Free space in bytes (statvfs).
    pub fn available(&self) -> u64 {
        let path = std::ffi::CString::new(self.dir.path().as_os_str().as_encoded_bytes())
            .expect("no NUL in a temp path");
        // SAFETY: statvfs(3) into a zeroed struct we own.
        unsafe {
            let mut st: libc::statvfs = std::mem::zeroed();
            if libc::statvfs(path.as_ptr(), &mut st) != 0 {
                return 0;
            }
            st.f_bavail as u64 * st.f_frsize as u64
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if self.mounted {
            let ok = Command::new("umount")
                .arg(self.dir.path())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                let _ = Command::new("umount")
                    .arg("-l")
                    .arg(self.dir.path())
                    .status();
            }
            self.mounted = false;
        }
    }
}
