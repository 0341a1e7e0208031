//! Noticing that a token file changed: at most once a second, compare the files' modification
//! times and sizes with those seen at the last read. Shared by `file:` and `json:`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use super::TokenError;

/// How often the files are checked at most.
pub const RECHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Each file's path, modification time and size.
pub type Stamp = Vec<(PathBuf, Option<SystemTime>, u64)>;

/// The stamp of `files` now.
pub fn stamp_of(files: &[PathBuf]) -> Stamp {
    files
        .iter()
        .map(|f| {
            let meta = fs::metadata(f).ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            (f.clone(), modified, meta.map_or(0, |m| m.len()))
        })
        .collect()
}

/// Rate-limits change checks.
#[derive(Debug)]
pub struct ChangeWatch {
    last_check: Mutex<Instant>,
}

impl ChangeWatch {
    /// A watch whose first check is due in [`RECHECK_INTERVAL`].
    pub fn new() -> Self {
        Self {
            last_check: Mutex::new(Instant::now()),
        }
    }

    /// When a check is due and the files' stamp `now` (`None`: unreadable) differs from the
    /// one `seen` at the last read, runs `reload`; if that fails, logs it and the previous
    /// tokens stay in use.
    pub fn reload_if_changed(
        &self,
        seen: impl FnOnce() -> Stamp,
        now: impl FnOnce() -> Option<Stamp>,
        reload: impl FnOnce() -> Result<(), TokenError>,
    ) {
        if !self.due() {
            return;
        }
        if now().is_none_or(|now| now != seen()) {
            if let Err(e) = reload() {
                log::error!("{e}; keeping the previous tokens");
            }
        }
    }

    /// Whether a check is due now (and if so, starts the next interval).
    pub fn due(&self) -> bool {
        let mut last = self.last_check.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() < RECHECK_INTERVAL {
            return false;
        }
        *last = Instant::now();
        true
    }
}

impl Default for ChangeWatch {
    fn default() -> Self {
        Self::new()
    }
}

/// Logs a completed (re)load of a token file: how many tokens, and every entry that cannot be
/// used (`problems`, which name places and token hashes, never tokens).
pub fn log_loaded(path: &Path, count: usize, problems: &[String]) {
    log::info!("token file {}: loaded {count} tokens", path.display());
    for problem in problems {
        log::warn!("malformed token entry: {problem}");
    }
}

/// The stamp of the one file at `path`.
pub fn stamp_of_file(path: &Path) -> Stamp {
    stamp_of(&[path.to_path_buf()])
}
