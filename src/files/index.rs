//! Every stored file the server knows, in memory: what the hub consults to check a
//! message's `files` (no disk on the hub), what `GET /files/ID` looks up, and what the
//! unattached sweep scans. A file enters only once its bytes and its row are durably
//! stored, so whatever the index holds can be served.
//!
//! A read-write lock around one map: the hub and the file readers take it to read for a
//! few lookups; an upload takes it to write for one insert.

use crate::store::files::{FileRow, FileSummary, LoadedFile};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// One file the index holds.
#[derive(Debug)]
pub struct IndexedFile {
    /// What its row says.
    pub row: FileRow,
    /// A message kept in the database refers to it: the unattached sweep leaves it be.
    /// Set by the hub when it hands such a message to the store.
    attached: AtomicBool,
}

impl IndexedFile {
    pub fn attached(&self) -> bool {
        self.attached.load(Ordering::Relaxed)
    }

    pub fn mark_attached(&self) {
        self.attached.store(true, Ordering::Relaxed);
    }

    pub fn summary(&self) -> FileSummary {
        self.row.summary()
    }
}

/// The shared index; cloning shares it.
#[derive(Clone, Default)]
pub struct FileIndex {
    files: Arc<RwLock<HashMap<String, Arc<IndexedFile>>>>,
}

impl FileIndex {
    /// The index of what the store loaded at start.
    pub fn from_loaded(loaded: &[LoadedFile]) -> FileIndex {
        let index = FileIndex::default();
        {
            let mut files = index.write();
            for file in loaded {
                let entry = IndexedFile {
                    row: file.row.clone(),
                    attached: AtomicBool::new(file.attached),
                };
                files.insert(file.row.id.clone(), Arc::new(entry));
            }
        }
        index
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<String, Arc<IndexedFile>>> {
        // A panic while holding the lock leaves the map whole (inserts and removes are
        // single calls): go on with it.
        self.files.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<String, Arc<IndexedFile>>> {
        self.files.write().unwrap_or_else(|e| e.into_inner())
    }

    /// A stored file, once it is completely and durably stored.
    pub fn get(&self, id: &str) -> Option<Arc<IndexedFile>> {
        self.read().get(id).cloned()
    }

    /// Adds a file whose bytes and row are durably stored.
    pub fn insert(&self, row: FileRow) -> Arc<IndexedFile> {
        let entry = Arc::new(IndexedFile {
            row,
            attached: AtomicBool::new(false),
        });
        self.write().insert(entry.row.id.clone(), entry.clone());
        entry
    }

    /// Forgets files (removed, or about to be).
    pub fn remove(&self, ids: &[String]) {
        let mut files = self.write();
        for id in ids {
            files.remove(id);
        }
    }

    /// The files `owner` may attach, in the order named; the first id that is unknown or
    /// another account's is the error.
    pub fn attachable(&self, owner: i64, ids: &[String]) -> Result<Vec<Arc<IndexedFile>>, String> {
        let files = self.read();
        ids.iter()
            .map(|id| match files.get(id) {
                Some(file) if file.row.owner == owner => Ok(file.clone()),
                _ => Err(id.clone()),
            })
            .collect()
    }

    /// Takes out the files no message refers to that were uploaded before `cutoff` (ms
    /// since the epoch), so nobody can attach them any more, and returns their ids.
    pub fn take_unattached_before(&self, cutoff: u64) -> Vec<String> {
        let mut files = self.write();
        let old: Vec<String> = files
            .values()
            .filter(|f| !f.attached() && f.row.created < cutoff)
            .map(|f| f.row.id.clone())
            .collect();
        for id in &old {
            files.remove(id);
        }
        old
    }

    /// (time, size) of every file `owner` uploaded since `since` (ms since the epoch), for
    /// the daily quota after a restart.
    pub fn uploads_since(&self, since: u64) -> Vec<(i64, u64, u64)> {
        self.read()
            .values()
            .filter(|f| f.row.created >= since)
            .map(|f| (f.row.owner, f.row.created, f.row.size))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, owner: i64, created: u64) -> FileRow {
        FileRow {
            id: id.into(),
            owner,
            name: "n".into(),
            kind: "application/octet-stream".into(),
            size: 1,
            width: None,
            height: None,
            created,
            sha256: String::new(),
            preview: None,
            preview_kind: None,
        }
    }

    #[test]
    fn only_the_owner_may_attach_and_the_sweep_takes_only_old_unattached_files() {
        let index = FileIndex::default();
        index.insert(row("a", 1, 10));
        index.insert(row("b", 1, 10)).mark_attached();
        index.insert(row("c", 2, 10));
        index.insert(row("d", 1, 500));
        assert!(index.attachable(1, &["a".into(), "b".into()]).is_ok());
        assert_eq!(
            index.attachable(1, &["a".into(), "c".into()]).unwrap_err(),
            "c"
        );
        assert_eq!(index.attachable(1, &["zz".into()]).unwrap_err(), "zz");
        let mut swept = index.take_unattached_before(100);
        swept.sort();
        assert_eq!(swept, ["a", "c"]);
        assert!(index.get("a").is_none() && index.get("b").is_some() && index.get("d").is_some());
    }
}
