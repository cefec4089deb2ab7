//! Attachments on the hub: checking a message's `files` against the index of stored files
//! (memory only, the hub never touches the disk), the `files` field of the events, and the
//! sweep that deletes files no message refers to once they are a day old.

use super::{now_millis, Hub};
use crate::files::index::{FileIndex, IndexedFile};
use crate::ids::ConnId;
use crate::protocol::{ErrorCode, Rejection};
use crate::store::files::summaries_json;
use crate::store::StoreJob;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Duration;

/// When the hub deletes unattached files.
#[derive(Debug)]
pub struct FileSweep {
    /// A file no message refers to is deleted once this old.
    pub unattached_after: Duration,
    /// How often to look (the hub's run loop ticks at this period).
    pub every: Duration,
}

impl FileSweep {
    pub fn new(unattached_after: Duration, every: Duration) -> FileSweep {
        FileSweep {
            unattached_after,
            every,
        }
    }
}

impl Default for FileSweep {
    fn default() -> Self {
        let files = crate::config::FilesConfig::default();
        FileSweep::new(files.unattached_after, files.sweep_every)
    }
}

/// A message's files, checked: the index entries (to mark attached once kept) and the
/// `files` field of its event.
pub(super) struct Attached {
    pub entries: Vec<Arc<IndexedFile>>,
    pub json: Box<RawValue>,
}

impl Attached {
    pub fn ids(&self) -> Vec<String> {
        self.entries.iter().map(|f| f.row.id.clone()).collect()
    }

    /// The message is on its way to the database: the sweep must leave its files alone.
    pub fn mark_kept(&self) {
        for file in &self.entries {
            file.mark_attached();
        }
    }
}

impl Hub {
    /// The hub with its index of stored files and the sweep's timing.
    pub fn with_files(mut self, index: FileIndex, sweep: FileSweep) -> Self {
        self.files = index;
        self.file_sweep = sweep;
        self
    }

    /// Checks the `files` of a command from `conn`: none is fine; otherwise each must be a
    /// stored file the connection's account uploaded (`no_such_file` for the first that is
    /// not, a guest's included: guests cannot upload).
    pub(super) fn attach(
        &self,
        conn: ConnId,
        ids: &[String],
    ) -> Result<Option<Attached>, Rejection> {
        if ids.is_empty() {
            return Ok(None);
        }
        let account = self.conns.get(&conn).and_then(|c| c.account);
        let no_such_file =
            |id: &str| Rejection::new(ErrorCode::NoSuchFile, format!("no file {id} of yours"));
        let Some(account) = account else {
            return Err(no_such_file(&ids[0]));
        };
        let entries = self
            .files
            .attachable(account, ids)
            .map_err(|id| no_such_file(&id))?;
        let summaries: Vec<_> = entries.iter().map(|f| f.summary()).collect();
        let json = RawValue::from_string(summaries_json(&summaries))
            .expect("serde_json writes valid JSON");
        Ok(Some(Attached { entries, json }))
    }

    /// Deletes files no message refers to that are old enough: out of the index first
    /// (nobody can attach them from now on), then rows and bytes by the store, which keeps
    /// any a message refers to after all (one queued before this, say).
    pub fn sweep_files(&mut self) {
        let cutoff =
            now_millis().saturating_sub(self.file_sweep.unattached_after.as_millis() as u64);
        let ids = self.files.take_unattached_before(cutoff);
        if !ids.is_empty() {
            log::info!("deleting {} files no message refers to", ids.len());
            self.persist(StoreJob::DeleteFiles { ids });
        }
    }
}
