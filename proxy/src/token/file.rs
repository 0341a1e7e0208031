//! `token_source = file:PATH`: websockify's token file format, one `TOKEN: TARGET` a line,
//! `#` comments and blank lines ignored. PATH may be a directory: every regular file in it is
//! read. The files are re-read when one of them changes (checked at most once a second) and
//! on SIGHUP; sessions already running are not affected.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use super::change_watch::{log_loaded, stamp_of, ChangeWatch, Stamp};
use super::format::usable_entry_token;
use super::{parse_target, Console, TokenError, TokenSource};

/// A token file (or directory of token files).
pub struct TokenFile {
    path: PathBuf,
    state: RwLock<Loaded>,
    watch: ChangeWatch,
}

#[derive(Default)]
struct Loaded {
    entries: HashMap<String, Entry>,
    stamp: Stamp,
}

enum Entry {
    Good(Console),
    Bad { location: String, detail: String },
}

impl TokenFile {
    /// Reads the file(s). Fails when PATH cannot be read; malformed lines are reported by
    /// [`TokenFile::problems`] and answer with [`TokenError::Malformed`].
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, TokenError> {
        let path = path.into();
        let loaded = load(&path)?;
        Ok(Self {
            path,
            state: RwLock::new(loaded),
            watch: ChangeWatch::new(),
        })
    }

    /// Every malformed line, as `FILE:LINE: what is wrong`.
    pub fn problems(&self) -> Vec<String> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<String> = state
            .entries
            .values()
            .filter_map(|e| match e {
                Entry::Bad { location, detail } => Some(format!("{location}: {detail}")),
                Entry::Good(_) => None,
            })
            .collect();
        out.sort();
        out
    }

    fn reload_if_changed(&self) {
        let seen = || {
            self.state
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .stamp
                .clone()
        };
        self.watch
            .reload_if_changed(seen, || stamp(&self.path).ok(), || self.reload());
    }
}

impl TokenSource for TokenFile {
    fn lookup(&self, token: &str) -> Result<Console, TokenError> {
        self.reload_if_changed();
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        match state.entries.get(token) {
            None => Err(TokenError::Unknown),
            Some(Entry::Bad { location, detail }) => Err(TokenError::Malformed {
                location: location.clone(),
                detail: detail.clone(),
            }),
            // Single-use and expiry are enforced for every source in `lifetime.rs`.
            Some(Entry::Good(console)) => Ok(console.clone()),
        }
    }

    fn reload(&self) -> Result<(), TokenError> {
        let loaded = load(&self.path)?;
        let count = loaded.entries.len();
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = loaded;
        log_loaded(&self.path, count, &self.problems());
        Ok(())
    }

    fn describe(&self) -> String {
        format!("file:{}", self.path.display())
    }
}

fn files(path: &Path) -> Result<Vec<PathBuf>, TokenError> {
    let unavailable =
        |e: std::io::Error| TokenError::Unavailable(format!("cannot read {}: {e}", path.display()));
    let meta = fs::metadata(path).map_err(unavailable)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    for entry in fs::read_dir(path).map_err(unavailable)? {
        let entry = entry.map_err(unavailable)?;
        let p = entry.path();
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if !hidden && p.is_file() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

fn stamp(path: &Path) -> Result<Stamp, TokenError> {
    Ok(stamp_of(&files(path)?))
}

fn load(path: &Path) -> Result<Loaded, TokenError> {
    let stamp = stamp(path)?;
    let mut entries = HashMap::new();
    for (file, _, _) in &stamp {
        let text = fs::read_to_string(file)
            .map_err(|e| TokenError::Unavailable(format!("cannot read {}: {e}", file.display())))?;
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let location = format!("{}:{}", file.display(), index + 1);
            let Some((token, target)) = line.split_once(':') else {
                // No token can be named safely: record it under a key no token equals.
                entries.insert(
                    format!("\0{location}"),
                    Entry::Bad {
                        location,
                        detail: "expected 'TOKEN: TARGET'".into(),
                    },
                );
                continue;
            };
            let token = token.trim().to_string();
            let entry = match usable_entry_token(&token).and_then(|()| parse_target(target)) {
                Ok(console) => Entry::Good(console),
                Err(detail) => Entry::Bad { location, detail },
            };
            entries.insert(token, entry);
        }
    }
    Ok(Loaded { entries, stamp })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::Kind;
    use consolegate_tests::scratch::TempDir;

    #[test]
    fn reads_websockify_lines_and_urls() {
        let d = TempDir::new("token-file-lines");
        let p = d.write(
            "tokens",
            "# comment\n\nabc: 127.0.0.1:5901\nspice1: spice://[::1]:5931\nbad: nope\n\
             a/b: h:1\n",
        );
        let src = TokenFile::open(&p).unwrap();
        assert_eq!(src.lookup("abc").unwrap().port, 5901);
        assert_eq!(src.lookup("spice1").unwrap().kind, Kind::Spice);
        assert_eq!(src.lookup("zzz"), Err(TokenError::Unknown));
        let err = src.lookup("bad").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "malformed token entry at {}:5: target must be host:port",
                p.display()
            )
        );
        assert_eq!(
            src.problems()[1],
            format!(
                "{}:6: the token has a character outside A-Z a-z 0-9 - . _ ~, so no request \
                 can use this entry",
                p.display()
            )
        );
        assert_eq!(src.problems().len(), 2);
    }

    #[test]
    fn a_directory_is_all_its_files() {
        let d = TempDir::new("token-file-dir");
        d.write("a", "t1: h:1\n");
        d.write("b", "t2: h:2\n");
        let src = TokenFile::open(d.path()).unwrap();
        assert_eq!(src.lookup("t1").unwrap().port, 1);
        assert_eq!(src.lookup("t2").unwrap().port, 2);
    }

    #[test]
    fn missing_file_is_unavailable() {
        let err = TokenFile::open("/nonexistent/tokens").err().unwrap();
        assert!(matches!(err, TokenError::Unavailable(_)), "{err}");
    }
}
