//! `papo backup OUT.db` for the files: after the database is copied, every file its copy
//! names is copied into `OUT.db.files/` (where a server started with `--db OUT.db` looks),
//! synced.
//!
//! Taken while the server runs: files are never changed once stored, so a file copied is
//! the file the copied database names. One uploaded after the database was copied is not
//! in the copy's rows and is left out; one deleted between the two copies (swept, or its
//! message deleted) is missing, so its row is removed from the copy too, as it would be
//! on the server. What the backup holds is therefore whole: every row has its bytes.

use super::storage::PREVIEW_SUFFIX;
use rusqlite::Connection;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// What a backup of the files did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Copied {
    /// Files (with their previews) in the backup.
    pub files: usize,
    /// Rows removed from the copy because their file was deleted meanwhile.
    pub gone: usize,
}

/// The files directory of the database `db` (as the server picks it without `--files-dir`).
pub fn dir_of(db: &str) -> PathBuf {
    PathBuf::from(format!("{db}.files"))
}

/// Copies the files the backup database `out_db` names from `live` into `out_db`'s files
/// directory, and drops from the copy the rows of files no longer there.
pub fn copy_files(live: &Path, out_db: &str) -> Result<Copied, String> {
    let target = dir_of(out_db);
    fs::create_dir_all(&target).map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    let conn = Connection::open(out_db).map_err(|e| format!("cannot open the backup: {e}"))?;
    let has_files: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'files')",
            [],
            |row| row.get(0),
        )
        .map_err(|e| format!("cannot read the backup: {e}"))?;
    if !has_files {
        // A database from before attachments: nothing to copy.
        return Ok(Copied::default());
    }
    let rows: Vec<(String, Option<String>)> = conn
        .prepare("SELECT id, preview FROM files")
        .and_then(|mut q| {
            q.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(|e| format!("cannot read the backup's files: {e}"))?;
    let mut copied = Copied::default();
    for (id, preview) in rows {
        if !super::ids::is_file_id(&id) {
            continue;
        }
        let preview = preview.filter(|p| *p == format!("{id}{PREVIEW_SUFFIX}"));
        let whole = copy_one(live, &target, &id).and_then(|found| match (&preview, found) {
            (Some(p), true) => copy_one(live, &target, p),
            (_, found) => Ok(found),
        });
        match whole {
            Ok(true) => copied.files += 1,
            Ok(false) => {
                conn.execute("DELETE FROM message_files WHERE file_id = ?1", [&id])
                    .and_then(|_| conn.execute("DELETE FROM files WHERE id = ?1", [&id]))
                    .map_err(|e| format!("cannot update the backup: {e}"))?;
                let _ = fs::remove_file(target.join(&id));
                copied.gone += 1;
            }
            Err(e) => return Err(format!("cannot copy file {id}: {e}")),
        }
    }
    fs::File::open(&target)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("cannot sync {}: {e}", target.display()))?;
    Ok(copied)
}

/// Copies one file, synced; false if it is not there (any more).
fn copy_one(from: &Path, to: &Path, name: &str) -> io::Result<bool> {
    let source = from.join(name);
    let target = to.join(name);
    match fs::copy(&source, &target) {
        Ok(_) => {
            fs::File::open(&target)?.sync_all()?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::ids::new_file_id;

    #[test]
    fn a_file_deleted_after_the_database_was_copied_leaves_the_copy_too() {
        let root = std::env::temp_dir().join(format!("papo-backup-unit-{}", new_file_id()));
        let live = root.join("live");
        fs::create_dir_all(&live).unwrap();
        let out = root.join("out.db").to_string_lossy().into_owned();
        let conn = Connection::open(&out).unwrap();
        conn.execute_batch(crate::store::files::MIGRATION).unwrap();
        let (here, gone) = (new_file_id(), new_file_id());
        for (position, id) in [&here, &gone].into_iter().enumerate() {
            conn.execute(
                "INSERT INTO files (id, owner, name, type, size, created, sha256) VALUES (?1, 1, 'n', 't', 1, 0, '')",
                [id],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO message_files VALUES (5, ?1, ?2)",
                rusqlite::params![position as i64, id],
            )
            .unwrap();
        }
        drop(conn);
        fs::write(live.join(&here), b"x").unwrap();
        let copied = copy_files(&live, &out).unwrap();
        assert_eq!(copied, Copied { files: 1, gone: 1 });
        let conn = Connection::open(&out).unwrap();
        let left: Vec<String> = conn
            .prepare("SELECT file_id FROM message_files")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(left, std::slice::from_ref(&here));
        assert_eq!(fs::read(dir_of(&out).join(&here)).unwrap(), b"x");
        let _ = fs::remove_dir_all(&root);
    }
}
