//! `POST /api/files?name=FILENAME` (PROTOCOL.md 1.1, "Attachments"), apart from HTTP's own
//! framing: who may upload, how much, and how the bytes become a stored file.
//!
//! The body is streamed to a temporary file in the files directory as it is read, 64 KiB
//! at a time, never held whole in memory; the size limit is checked against the declared
//! length before a byte is read (`413`) and again while reading, so a client that sends
//! more than it said, or says nothing (chunked), is stopped right past the limit and
//! nothing of it is kept. Then the processing pool decides the type from the bytes and
//! does a picture's work; the result is stored durably (see `storage`), its row committed,
//! and only then does the file enter the index and the client get `201`: an id is never
//! handed out for a file that could still be lost.

use super::index::FileIndex;
use super::limits::{Permit, Refusal, UploadLimits};
use super::process::{ProcessPool, Unprocessable};
use super::storage::{self, FileDir};
use crate::accounts::calls::{AccountCall, ApiError};
use crate::store::files::{FileRow, FileSummary};
use crate::store::StoreJob;
use crossbeam_channel::Sender;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long an upload waits for the hub (its session) or the store (its row).
const WAIT: Duration = Duration::from_secs(10);

/// Everything an upload needs; one for the server, shared by the connection threads.
pub struct Uploads {
    /// Where the bytes go.
    pub dir: Arc<FileDir>,
    /// Where a stored file is announced (and the hub checks `files` against).
    pub index: FileIndex,
    /// Size, quota and rate per account.
    pub limits: UploadLimits,
    /// Sniffing and picture work, off every other thread.
    pub pool: ProcessPool,
    /// The store thread: it keeps the file's row. Taken away when the server stops, so
    /// the store thread sees its queue close and ends.
    pub store: Mutex<Option<Sender<StoreJob>>>,
    /// Asks the hub which account a session cookie signs in.
    pub hub: Box<dyn Fn(AccountCall) -> bool + Send + Sync>,
}

impl Uploads {
    /// No more uploads are kept: the server is stopping.
    pub fn close(&self) {
        self.store.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// The account a session cookie (its token's SHA-256) signs in; `401 not_signed_in`
    /// for none, a guest, or an ended session.
    pub fn account(&self, session: Option<[u8; 32]>) -> Result<i64, ApiError> {
        let token_hash = session.ok_or_else(ApiError::not_signed_in)?;
        let (tx, rx) = crossbeam_channel::bounded(1);
        if !(self.hub)(AccountCall::SessionAccount {
            token_hash,
            reply: tx,
        }) {
            return Err(ApiError::unavailable());
        }
        rx.recv_timeout(WAIT)
            .unwrap_or_else(|_| Err(ApiError::unavailable()))
    }

    /// May `account` upload `declared` bytes now? Checked before the body is read.
    pub fn begin(&self, account: i64, declared: Option<u64>) -> Result<Permit, ApiError> {
        self.limits
            .begin(account, declared, crate::hub::now_millis())
            .map_err(|refusal| refused(refusal, self.limits.policy().max_bytes))
    }

    /// Reads the body (at most what `permit` allows; exactly `declared` bytes when the
    /// length was given), stores it, and answers its summary.
    pub fn receive(
        &self,
        permit: Permit,
        name: &str,
        declared: Option<u64>,
        body: &mut dyn Read,
    ) -> Result<FileSummary, ApiError> {
        let name = super::names::sanitise(name);
        let mut upload = self.dir.temp().map_err(|e| disk_failed(&e))?;
        let (size, sha) = match storage::copy_bounded(body, upload.file(), permit.max_bytes) {
            Ok(read) => read,
            Err(None) if permit.quota_bound => {
                return Err(refused(
                    Refusal::Limited {
                        retry_after: super::limits::QUOTA_WINDOW_MS / 1000,
                        why: "over the daily upload quota",
                    },
                    0,
                ))
            }
            Err(None) => return Err(too_large(self.limits.policy().max_bytes)),
            Err(Some(e)) => {
                return Err(ApiError::new(
                    400,
                    "bad_request",
                    format!("the upload broke off: {e}"),
                ))
            }
        };
        if declared.is_some_and(|n| n != size) {
            return Err(ApiError::new(400, "bad_request", "the upload ended early"));
        }
        let processed = match self.pool.process(&self.dir, &upload) {
            None => return Err(ApiError::unavailable()),
            Some(Err(Unprocessable::TooBig(why))) => {
                return Err(ApiError::new(413, "too_large", why))
            }
            Some(Err(Unprocessable::Unreadable(why))) => {
                return Err(ApiError::new(415, "bad_request", why))
            }
            Some(Err(Unprocessable::Io(e))) => return Err(disk_failed(&e)),
            Some(Ok(processed)) => processed,
        };
        let id = super::ids::new_file_id();
        let (stored, size, sha256) = match processed.replacement {
            Some(replacement) => {
                let sha = storage::sha256_file(replacement.path()).map_err(|e| disk_failed(&e))?;
                let size = std::fs::metadata(replacement.path())
                    .map_err(|e| disk_failed(&e))?
                    .len();
                drop(upload);
                (replacement, size, sha)
            }
            None => (upload, size, storage::hex(&sha)),
        };
        let (preview, preview_kind) = match processed.preview {
            Some((temp, kind)) => {
                let preview_name = format!("{id}{}", storage::PREVIEW_SUFFIX);
                self.dir
                    .keep(temp, &preview_name)
                    .map_err(|e| disk_failed(&e))?;
                (Some(preview_name), Some(kind))
            }
            None => (None, None),
        };
        if let Err(e) = self.dir.keep(stored, &id) {
            self.dir.remove(std::slice::from_ref(&id));
            return Err(disk_failed(&e));
        }
        let row = FileRow {
            id: id.clone(),
            owner: permit.account(),
            name,
            kind: processed.kind,
            size,
            width: processed.width,
            height: processed.height,
            created: crate::hub::now_millis(),
            sha256,
            preview,
            preview_kind,
        };
        let (done_tx, done) = crossbeam_channel::bounded(1);
        let job = StoreJob::AddFile {
            row: row.clone(),
            done: done_tx,
        };
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let kept = store.is_some_and(|store| store.send_timeout(job, WAIT).is_ok())
            && done.recv_timeout(WAIT).unwrap_or(false);
        if !kept {
            // A row that may still be committed keeps its bytes: the garbage collector
            // removes them later if it was not.
            return Err(ApiError::new(
                503,
                "unavailable",
                "the file could not be kept: the server's storage is failing",
            ));
        }
        let created = row.created;
        let summary = row.summary();
        self.index.insert(row);
        permit.stored(size, created);
        Ok(summary)
    }
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        413,
        "too_large",
        format!("the file is larger than {} MiB", max >> 20),
    )
}

fn refused(refusal: Refusal, max: u64) -> ApiError {
    match refusal {
        Refusal::TooLarge => too_large(max),
        Refusal::Limited { retry_after, why } => ApiError {
            message: why.into(),
            ..ApiError::rate_limited(retry_after)
        },
    }
}

fn disk_failed(e: &std::io::Error) -> ApiError {
    log::warn!("an upload could not be stored: {e}");
    ApiError::new(
        503,
        "unavailable",
        "the file could not be kept: the server's storage is failing",
    )
}
