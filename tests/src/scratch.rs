//! Scratch directories: one per test process under `$TMPDIR/consolegate-tests/<pid>`, and one
//! per test object below it, removed when dropped. Directories left by earlier test processes
//! that no longer run are removed when the next process starts. [`shared_dir`] is the place
//! for what test processes share (the PKI), and [`lock`] the `flock` that guards it.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// `$TMPDIR/consolegate-tests`, created if missing.
fn base_dir() -> PathBuf {
    let base = std::env::temp_dir().join("consolegate-tests");
    fs::create_dir_all(&base).unwrap_or_else(|e| panic!("cannot create {}: {e}", base.display()));
    base
}

/// `$TMPDIR/consolegate-tests/<name>`, a directory every test process may use (created if
/// missing; never removed by the tests). Guard what goes in it with [`lock`].
pub fn shared_dir(name: &str) -> PathBuf {
    let dir = base_dir().join(name);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// An exclusive `flock` on `path` (created if missing), held until the returned file is
/// dropped; it waits for another holder if `wait`, else returns `None` when one holds it.
pub fn lock(path: &Path, wait: bool) -> Option<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let how = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    // SAFETY: flock on a descriptor we own; the lock lives as long as the File.
    let rc = unsafe { libc::flock(file.as_raw_fd(), how) };
    (rc == 0).then_some(file)
}

/// The directory of this test process, created (and stale siblings removed) on first use.
pub fn run_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = base_dir();
        remove_stale(&base);
        let dir = base.join(std::process::id().to_string());
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        dir
    })
}

/// Removes the directories of test processes that have exited, after stopping any QEMU they
/// left running (a killed test process never ran its drops; QEMU is daemonized, so it
/// outlives its test).
fn remove_stale(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            kill_left_over_qemus(&entry.path());
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// SIGKILLs every QEMU whose pidfile (`qemu-*/qemu.pid`) is below `dir`.
fn kill_left_over_qemus(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let pidfile = entry.path().join("qemu.pid");
        let Some(pid) = fs::read_to_string(pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        else {
            continue;
        };
        if fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.starts_with("qemu")) {
            // SAFETY: kill(2) on a pid that a QEMU of ours wrote and that still runs QEMU.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// A fresh directory below [`run_dir`], removed with everything in it when dropped.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `run_dir()/<prefix>-<n>`.
    pub fn new(prefix: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = run_dir().join(format!("{prefix}-{n}"));
        fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        Self { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `contents` to `name` inside the directory and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(name);
        fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("CONSOLEGATE_TEST_KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}
