//! Where the bytes of files live: one directory beside the database (`<db>.files/`, or
//! `--files-dir`), one file per upload named by its id, and `<id>.thumb` for a picture's
//! preview. With `--db :memory:` a fresh directory under the system's temp dir, removed
//! when the server stops: nothing else of such a server outlives it either.
//!
//! A file is written durably before anyone learns its id: its bytes go to a temporary
//! file in the same directory (`.tmp-…`, never served), which is synced, renamed to its
//! id (atomic within a directory), and the directory synced, so after a crash a file is
//! either whole under its name or not there at all. Its database row is written after
//! that, so a row always has its bytes. Bytes without a row (a crash between the rename
//! and the row, a removal whose commit came before the unlink) are collected later.

use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Prefix of temporary files; never a file id (ids have no dots).
const TEMP_PREFIX: &str = ".tmp-";
/// Suffix of a preview beside its file.
pub const PREVIEW_SUFFIX: &str = ".thumb";

/// The files directory.
#[derive(Debug)]
pub struct FileDir {
    /// Where the files are.
    path: PathBuf,
    /// Made for a `:memory:` database: removed with the server.
    throwaway: bool,
}

impl FileDir {
    /// The directory for the database `db` (`--db`), or `dir` when given (`--files-dir`),
    /// created if needed (only the owner may read it).
    pub fn open(db: &str, dir: Option<&str>) -> io::Result<FileDir> {
        let (path, throwaway) = match (dir, db) {
            (Some(dir), _) => (PathBuf::from(dir), false),
            (None, ":memory:") => {
                let name = format!(
                    "papo-files-{}-{}",
                    std::process::id(),
                    super::ids::new_file_id()
                );
                (std::env::temp_dir().join(name), true)
            }
            (None, db) => (PathBuf::from(format!("{db}.files")), false),
        };
        fs::create_dir_all(&path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(&path, fs::Permissions::from_mode(0o700));
        }
        Ok(FileDir { path, throwaway })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The bytes of a stored file (the id's shape is checked by whoever asks).
    pub fn file_path(&self, id: &str) -> PathBuf {
        self.path.join(id)
    }

    /// A stored preview by its file name (as the row keeps it).
    pub fn preview_path(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// A new temporary file to write an upload (or a processed picture) into.
    pub fn temp(&self) -> io::Result<TempFile> {
        let path = self
            .path
            .join(format!("{TEMP_PREFIX}{}", super::ids::new_file_id()));
        let mut options = OpenOptions::new();
        options.write(true).read(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&path)?;
        Ok(TempFile {
            path,
            file: Some(file),
            kept: false,
        })
    }

    /// Makes `temp` the stored file `name` durably: synced, renamed, the directory synced.
    pub fn keep(&self, mut temp: TempFile, name: &str) -> io::Result<PathBuf> {
        if let Some(file) = temp.file.take() {
            file.sync_all()?;
        }
        let target = self.path.join(name);
        fs::rename(&temp.path, &target)?;
        temp.kept = true;
        self.sync()?;
        Ok(target)
    }

    /// Syncs the directory itself, so renames and unlinks in it survive a crash.
    fn sync(&self) -> io::Result<()> {
        File::open(&self.path)?.sync_all()
    }

    /// Deletes the bytes of files (and their previews) whose rows are gone.
    pub fn remove(&self, ids: &[String]) {
        for id in ids {
            if !super::ids::is_file_id(id) {
                continue;
            }
            for path in [
                self.file_path(id),
                self.path.join(format!("{id}{PREVIEW_SUFFIX}")),
            ] {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => log::warn!("cannot delete {}: {e}", path.display()),
                }
            }
        }
        let _ = self.sync();
    }

    /// Deletes what no row stands for: temporary files and stored bytes older than
    /// `min_age` (younger ones may be an upload finishing now) for which `known` says
    /// there is no row. Returns how many files went.
    pub fn collect_garbage(&self, min_age: Duration, known: impl Fn(&str) -> bool) -> usize {
        let Ok(entries) = fs::read_dir(&self.path) else {
            return 0;
        };
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let old_enough = entry
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| now.duration_since(t).unwrap_or_default() >= min_age)
                .unwrap_or(false);
            if !old_enough {
                continue;
            }
            let id = name.strip_suffix(PREVIEW_SUFFIX).unwrap_or(&name);
            let orphan =
                name.starts_with(TEMP_PREFIX) || (super::ids::is_file_id(id) && !known(id));
            if orphan && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

impl Drop for FileDir {
    fn drop(&mut self) {
        if self.throwaway {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// A file being written; deleted on drop unless kept.
#[derive(Debug)]
pub struct TempFile {
    /// Its name in the files directory.
    path: PathBuf,
    /// Open for writing until it is kept.
    file: Option<File>,
    /// Renamed to its stored name: nothing to clean up.
    kept: bool,
}

impl TempFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file, to write into and read back.
    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("a temp file is open until kept")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Copies `reader` into `out` while hashing it; at most `limit` bytes, else `Err(None)`
/// (a stream that lies about its length, or has none, is stopped right past the limit).
/// `Err(Some(e))` is an I/O error on either side.
pub fn copy_bounded(
    reader: &mut dyn io::Read,
    out: &mut File,
    limit: u64,
) -> Result<(u64, [u8; 32]), Option<io::Error>> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total: u64 = 0;
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Some(e)),
        };
        total += n as u64;
        if total > limit {
            return Err(None);
        }
        hasher.update(&buffer[..n]);
        out.write_all(&buffer[..n]).map_err(Some)?;
    }
    Ok((total, hasher.finalize().into()))
}

/// SHA-256 of a file's bytes, hex.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match io::Read::read(&mut file, &mut buffer)? {
            0 => break,
            n => hasher.update(&buffer[..n]),
        }
    }
    Ok(hex(&hasher.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_file_is_whole_under_its_name_and_a_dropped_one_leaves_nothing() {
        let dir = FileDir::open(":memory:", None).unwrap();
        let root = dir.path().to_path_buf();
        let mut temp = dir.temp().unwrap();
        let (size, _) = copy_bounded(&mut &b"hello"[..], temp.file(), 10).unwrap();
        assert_eq!(size, 5);
        let id = super::super::ids::new_file_id();
        dir.keep(temp, &id).unwrap();
        assert_eq!(fs::read(dir.file_path(&id)).unwrap(), b"hello");
        let mut temp = dir.temp().unwrap();
        assert!(matches!(
            copy_bounded(&mut &[0u8; 20][..], temp.file(), 10),
            Err(None)
        ));
        drop(temp);
        assert_eq!(fs::read_dir(&root).unwrap().count(), 1);
        assert_eq!(dir.collect_garbage(Duration::ZERO, |_| true), 0);
        assert_eq!(dir.collect_garbage(Duration::ZERO, |_| false), 1);
        drop(dir);
        assert!(!root.exists(), "a :memory: server's files go with it");
    }
}
