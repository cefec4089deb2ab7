//! Persistence in SQLite. This file owns the store thread: it holds the connection,
//! writes in batched transactions (group commit), answers every job once its fate is known
//! (an `ack` once committed, `unavailable` if it cannot be kept), and answers `history`.
//! The file's checks and schema are in `schema`, ids that survive a crash in `ids`, the
//! healthz flag and the failure log in `health`, the backup in `backup`, and what is kept
//! of each area in `rooms`, `messages` and `accounts`; the full-text index in `search`,
//! and the threads that read it in `search_pool`.
//!
//! A batch is one transaction, and every job in it is one SQL statement (or runs in a
//! savepoint of its own). When a statement fails SQLite undoes that statement alone and
//! the transaction goes on, so a job that breaks (a constraint, a trigger) fails alone
//! and the rest of its batch is committed. If SQLite had to cancel the whole transaction
//! instead (it may, on a full disk or an I/O error, or when a trigger says so), the batch
//! runs again without the job that broke it when that job alone was at fault; when the
//! database itself is failing (read-only, full, locked past the busy timeout), every job
//! of the batch is answered `unavailable` at once, never retried one by one, so the
//! answers come within a few seconds.

pub mod accounts;
mod backup;
pub mod files;
mod health;
mod ids;
mod messages;
pub mod moderation;
mod rooms;
mod schema;
pub mod search;
pub mod search_pool;

pub use health::Health;
pub use ids::ID_BLOCK;
pub use messages::MessageRecord;
pub use rooms::{NewRoom, StoredRoom};
pub use schema::{APPLICATION_ID, SCHEMA_VERSION};

use crate::outbox::{EncodedFrame, Outbox};
use crate::protocol::{error_json, ErrorCode, Event, Ref, Rejection};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rusqlite::Connection;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Jobs waiting for the store thread.
pub const STORE_QUEUE: usize = 65_536;
/// Jobs written in one transaction at most.
const BATCH: usize = 4096;
/// How long a write waits for another process's lock on the file before it fails (and
/// its jobs are answered `unavailable`): short, because people wait for those answers, and
/// long beside what the operator's `papo user …` holds it for (one small transaction, its
/// password hashed before it begins).
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);
/// The same while the database is known to be failing: jobs are answered at once rather
/// than each batch waiting its turn to fail, which would add up along the queue. The probe
/// waits the full `BUSY_TIMEOUT`.
const BUSY_TIMEOUT_FAILING: Duration = Duration::from_millis(100);
/// While the database cannot be written and no job comes, how often the store tries a
/// write of its own, so `/healthz` turns back to 200 without traffic (a load balancer
/// that stopped sending any would otherwise never see the recovery).
const PROBE_EVERY: Duration = Duration::from_secs(2);
/// Messages indexed for search in one transaction while the store has nothing else to do:
/// a job arriving meanwhile waits for it (a few milliseconds, see `search::MIGRATION`).
const INDEX_CHUNK: usize = 1024;
/// Messages left waiting for the index at most. Past it each batch indexes as many as it
/// adds, as if indexing were on the commit path, so a server written to faster than it can
/// index stays this far behind, and a search (which first indexes everything before it)
/// waits for this many at most.
const MAX_UNINDEXED: usize = 8192;

/// Why the store cannot open or load a database.
#[derive(Debug)]
pub enum StoreError {
    /// SQLite failed at the step named.
    Sqlite(String, rusqlite::Error),
    /// papo's file, from a papo that knows a later schema.
    NewerSchema { found: i64 },
    /// A schema version no papo writes (negative, or zero on a file that is not empty).
    UnknownVersion { found: i64 },
    /// A database papo did not create; says how it knows.
    NotPapo(String),
    /// The file cannot be written by this process.
    ReadOnly,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Sqlite(context, e) => write!(f, "{context}: {e}"),
            StoreError::NewerSchema { found } => write!(
                f,
                "the database was written by a newer papo (schema version {found}; this papo knows up to \
                 {SCHEMA_VERSION}); it was left untouched"
            ),
            StoreError::UnknownVersion { found } => write!(
                f,
                "schema version {found} is not one papo writes (this papo knows 1 to \
                 {SCHEMA_VERSION}); the file was left untouched"
            ),
            StoreError::NotPapo(why) => write!(
                f,
                "not a papo database: {why}; papo left it untouched (give --db a new file or \
                 a papo database)"
            ),
            StoreError::ReadOnly => write!(
                f,
                "the file is read-only for papo, which must write every message it keeps \
                 (check the file's owner and permissions); it was left untouched"
            ),
        }
    }
}

impl std::error::Error for StoreError {}

fn context(what: &str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::Sqlite(what.to_string(), e)
}

/// What the hub starts from.
#[derive(Debug)]
pub struct Loaded {
    pub rooms: Vec<StoredRoom>,
    /// Ids after this one are free; no message, stored or possibly seen before a crash,
    /// has one of them.
    pub last_message_id: u64,
    /// Ids up to this one are reserved durably: the hub may hand them out.
    pub ids_reserved_up_to: u64,
    /// Accounts, sessions, memberships and read marks.
    pub accounts: accounts::LoadedAccounts,
    /// Every stored attachment, oldest first.
    pub files: Vec<files::LoadedFile>,
    /// Bans and suspensions in force.
    pub moderation: moderation::LoadedModeration,
}

/// What an empty store loads: nothing, and the first block of ids reserved. For tests and
/// tools; a server always starts from `Store::load`, which also writes the reservation.
impl Default for Loaded {
    fn default() -> Self {
        Loaded {
            rooms: Vec::new(),
            last_message_id: 0,
            ids_reserved_up_to: ID_BLOCK,
            accounts: Default::default(),
            files: Vec::new(),
            moderation: Default::default(),
        }
    }
}

/// Work for the store thread.
pub enum StoreJob {
    /// Keep a new room; the hub hears back with `StoreDone::RoomStored`.
    CreateRoom(NewRoom),
    /// Keep an uploaded file's row; `done` hears whether it was committed (the upload
    /// answers `201` only then).
    AddFile {
        row: files::FileRow,
        done: Sender<bool>,
    },
    /// Delete these files if still nothing refers to them (the unattached sweep); their
    /// bytes go once that is committed.
    DeleteFiles { ids: Vec<String> },
    /// Keep a message (and the links to its files). Once committed, `author` gets an `ack` carrying `ack` if that is
    /// set (a `text` with a `ref`); if the message cannot be kept, `author` gets
    /// `unavailable`, with that ref, or none when the command's reply was already given
    /// (a DM) or it had none.
    Append {
        record: MessageRecord,
        author: Outbox,
        ack: Option<Ref>,
    },
    /// Forget a room: its row and every message it had.
    DeleteRoom { id: i64 },
    /// A message id was used by something not kept (a DM with a guest): ids continue
    /// after it across a restart all the same. (Reserved ids already cover it; kept so
    /// the mark never lags what was handed out.)
    UsedId(u64),
    /// Keep a change to accounts, sessions, memberships or read marks.
    Account(accounts::AccountWrite),
    /// Answer a `dm_history` command straight to the asking connection.
    DmHistory(accounts::DmHistoryQuery),
    /// Keep a moderation decision: a ban, a suspension, an audit entry, a room's leftovers.
    Moderation(moderation::ModerationWrite),
    /// Keep an `edit` or `delete` the hub allowed; the hub hears back with
    /// `StoreDone::MessageChanged`, and only then tells anyone.
    ChangeMessage(moderation::MessageChange),
    /// Find a message for `edit` or `delete`; the hub hears back with
    /// `StoreDone::MessageLooked`.
    LookupMessage(moderation::MessageQuery),
    /// Answer a `history` command straight to the asking connection.
    History {
        room_id: i64,
        room_name: Arc<str>,
        before: Option<u64>,
        limit: usize,
        reference: Option<Ref>,
        reply: Outbox,
    },
    /// A search: once every job before it is committed, handed to the search pool (or,
    /// on `:memory:`, answered here); the hub hears back with `StoreDone::Searched`.
    Search(search::SearchJob),
    /// Reserve message ids up to `up_to`; the hub hears back with `StoreDone::IdsReserved`.
    ReserveIds { up_to: u64 },
    /// The hub stops cleanly, and `last_id` is the last message id it handed out.
    Finish { last_id: u64 },
}

/// What the hub hears back from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreDone {
    /// The room with this id is kept (`stored`), or could not be.
    RoomStored { id: i64, stored: bool },
    /// Ids up to `up_to` are reserved; `None` when the reservation could not be written.
    IdsReserved { up_to: Option<u64> },
    /// A message `edit` or `delete` asked for, found or not.
    MessageLooked(moderation::MessageAnswer),
    /// A search's reply, for the hub to pass on in its place among the connection's.
    Searched(search::SearchAnswer),
    /// An `edit` or `delete` is kept (`kept`), or could not be.
    MessageChanged {
        change: moderation::MessageChange,
        kept: bool,
    },
}

/// How one job went: its output (a `history` or `dm_history` reply) or why it failed.
type Outcome = Result<Option<Arc<EncodedFrame>>, Failure>;

/// Why a job failed, kept for the log and for deciding what else to do.
#[derive(Debug, Clone)]
struct Failure {
    message: String,
    /// The job alone was at fault (a constraint, a trigger); the database works.
    job_only: bool,
}

impl Failure {
    fn of(e: &rusqlite::Error) -> Failure {
        Failure {
            message: e.to_string(),
            job_only: matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::ConstraintViolation | rusqlite::ErrorCode::TooBig)
            ),
        }
    }
}

/// A transaction SQLite cancelled, or could not start or commit.
struct Cancelled {
    /// The job whose statement it was cancelled in, if any.
    culprit: Option<usize>,
    failure: Failure,
}

pub struct Store {
    conn: Connection,
    /// Told the ids of files whose rows a committed transaction removed, so their bytes
    /// go too; none in tools and tests that keep no bytes.
    on_files_removed: Option<Box<dyn Fn(Vec<String>) + Send>>,
    /// Whether writes work: for `/healthz` and the failure log.
    condition: health::Condition,
    /// How long SQLite waits for another process's lock now (see `BUSY_TIMEOUT`).
    busy_timeout: Duration,
    /// Where searches go once their turn comes; `None` answers them on this thread (a
    /// `:memory:` database, which no other connection can open).
    search_pool: Option<crossbeam_channel::Sender<search::SearchJob>>,
    /// Where each transaction's time goes (`papo_store_commit_seconds`), once the server
    /// asks for it; the operator's commands and the tests keep none.
    commit_seconds: Option<prometheus_client::metrics::histogram::Histogram>,
    /// Messages committed but not yet in the search index (counted, so that the store
    /// thread knows without a query whether it has indexing to do when idle).
    unindexed: usize,
    /// When indexing in idle time failed, not before then again (rather than spin).
    index_after: Instant,
}

impl Store {
    /// Records how long each transaction takes, from begin to commit, in `histogram`.
    pub fn observe_commits(&mut self, histogram: prometheus_client::metrics::histogram::Histogram) {
        self.commit_seconds = Some(histogram);
    }

    /// The flag `/healthz` reads.
    pub fn health(&self) -> Health {
        self.condition.health.clone()
    }

    /// Hands searches to `pool` from now on, rather than answering them on this thread.
    pub fn use_search_pool(&mut self, pool: crossbeam_channel::Sender<search::SearchJob>) {
        self.search_pool = Some(pool);
    }

    /// Rooms with their newest `recent` messages, the last id used, and the first block
    /// of ids reserved. Reserving is the first write: a database papo cannot write (a
    /// full disk, a read-only directory) fails here, before the server starts.
    pub fn load(&mut self, recent: usize) -> Result<Loaded, StoreError> {
        let mut rooms = self.load_rooms()?;
        for room in &mut rooms {
            room.recent = messages::query_messages(&self.conn, room.id, &room.name, None, recent)
                .map_err(context("cannot load messages"))?;
        }
        let accounts = accounts::load(&self.conn).map_err(context("cannot load accounts"))?;
        let files = files::load(&self.conn).map_err(context("cannot load files"))?;
        let moderation = moderation::load(&self.conn, crate::hub::now_millis())
            .map_err(context("cannot load bans and suspensions"))?;
        let last_message_id = self.last_id_used()?;
        let ids_reserved_up_to = last_message_id + ID_BLOCK;
        ids::reserve(&self.conn, ids_reserved_up_to).map_err(context(
            "cannot write to the database (papo must: check the file's and its directory's \
             permissions, and the free disk space)",
        ))?;
        // Messages another program added to the file, or left waiting at the last stop,
        // are indexed while the store is idle.
        self.unindexed = search::pending_count(&self.conn).map_err(context(
            "cannot read the messages waiting for the search index",
        ))?;
        Ok(Loaded {
            rooms,
            last_message_id,
            ids_reserved_up_to,
            accounts,
            files,
            moderation,
        })
    }

    /// Who deletes the bytes of files whose rows a committed transaction removed.
    pub fn on_files_removed(&mut self, remove: impl Fn(Vec<String>) + Send + 'static) {
        self.on_files_removed = Some(Box::new(remove));
    }

    /// Applies a batch of jobs in one transaction, then answers each: what waited for the
    /// commit goes to the connections, and what the hub waits for is returned.
    pub fn apply(&mut self, jobs: Vec<StoreJob>) -> Vec<StoreDone> {
        let (outcomes, removed) = self.write(&jobs);
        if let (false, Some(remove)) = (removed.is_empty(), &self.on_files_removed) {
            remove(removed);
        }
        let failed: Vec<&Failure> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
        if let Some(first) = failed.first() {
            let database = failed.iter().any(|f| !f.job_only);
            self.condition
                .failed(failed.len(), &first.message, database);
        } else {
            let wrote = jobs.iter().any(|job| !is_read(job));
            self.condition.succeeded(wrote);
        }
        let mut done = Vec::new();
        for (job, outcome) in jobs.into_iter().zip(outcomes) {
            match job {
                // Every job before it is settled: its turn has come.
                StoreJob::Search(search) => done.extend(self.dispatch_search(search)),
                job => settle(job, outcome, &mut done),
            }
        }
        done
    }

    /// Hands a search to the pool, or answers it here when there is none (then its answer
    /// is returned). A pool too busy to take it cannot happen while the hub keeps its bound;
    /// if it did, the search is answered `unavailable` rather than this thread waiting.
    fn dispatch_search(&mut self, job: search::SearchJob) -> Option<StoreDone> {
        let Some(pool) = &self.search_pool else {
            return Some(StoreDone::Searched(search_pool::run(&self.conn, &job)));
        };
        match pool.try_send(job) {
            Ok(()) => None,
            Err(e) => {
                let job = e.into_inner();
                let message = "the search cannot be run now: the server is too busy".to_string();
                Some(StoreDone::Searched(search::SearchAnswer {
                    conn: job.conn,
                    frame: unavailable(message, job.reference.as_ref()),
                }))
            }
        }
    }

    /// Runs the jobs, in one transaction as long as that works; an outcome per job, and
    /// the files whose removal was committed.
    fn write(&mut self, jobs: &[StoreJob]) -> (Vec<Outcome>, files::Removed) {
        let mut removed = files::Removed::new();
        self.wait_for_locks(if self.condition.health.writable() {
            BUSY_TIMEOUT
        } else {
            BUSY_TIMEOUT_FAILING
        });
        let mut outcomes: Vec<Option<Outcome>> = vec![None; jobs.len()];
        let mut attempt: Vec<usize> = (0..jobs.len()).collect();
        loop {
            match self.try_transaction(jobs, &attempt) {
                Ok((results, committed)) => {
                    for (i, outcome) in results {
                        outcomes[i] = Some(outcome);
                    }
                    removed = committed;
                    break;
                }
                // One job made SQLite cancel the whole transaction: fail that job, and run
                // the others again. Each round removes a job, so this ends.
                Err(Cancelled {
                    culprit: Some(i),
                    failure,
                }) if failure.job_only => {
                    outcomes[i] = Some(Err(failure));
                    attempt.retain(|&j| j != i);
                }
                // The database itself fails: answer everyone now. A read may still work
                // on its own (a full or read-only disk still reads).
                Err(Cancelled { failure, .. }) => {
                    for &i in &attempt {
                        outcomes[i] = Some(if is_read(&jobs[i]) {
                            run_job(&self.conn, &jobs[i], &mut Vec::new())
                                .map_err(|e| Failure::of(&e))
                        } else {
                            Err(failure.clone())
                        });
                    }
                    break;
                }
            }
        }
        let outcomes = outcomes
            .into_iter()
            .map(|o| o.expect("every job has an outcome"))
            .collect();
        (outcomes, removed)
    }

    /// The jobs `attempt` (indexes into `jobs`) in one transaction.
    fn try_transaction(
        &mut self,
        jobs: &[StoreJob],
        attempt: &[usize],
    ) -> Result<(Vec<(usize, Outcome)>, files::Removed), Cancelled> {
        let cancelled = |culprit, e: rusqlite::Error| Cancelled {
            culprit,
            failure: Failure::of(&e),
        };
        let began = Instant::now();
        let tx = self.conn.transaction().map_err(|e| cancelled(None, e))?;
        let mut results = Vec::with_capacity(attempt.len());
        let mut removed = files::Removed::new();
        for &i in attempt {
            // A job that fails alone removes nothing: its files are listed only if it works.
            let mut removed_by_job = files::Removed::new();
            match run_job(&tx, &jobs[i], &mut removed_by_job) {
                Ok(output) => {
                    removed.append(&mut removed_by_job);
                    results.push((i, Ok(output)))
                }
                // The job alone was at fault: SQLite undid its statement and the
                // transaction goes on without it.
                Err(e) if Failure::of(&e).job_only && !tx.is_autocommit() => {
                    results.push((i, Err(Failure::of(&e))))
                }
                // The database itself fails (or SQLite cancelled the transaction): stop
                // here, rather than have every later job wait out the lock in turn.
                Err(e) => return Err(cancelled(Some(i), e)),
            }
        }
        // New messages wait for the index until the store is idle (`index_while_idle`),
        // unless a search in this batch must see them, or more than `MAX_UNINDEXED` would
        // wait. If indexing fails alone, the messages are kept all the same and wait.
        let appended = attempt
            .iter()
            .filter(|&&i| matches!(jobs[i], StoreJob::Append { .. }))
            .count();
        let searches = attempt
            .iter()
            .any(|&i| matches!(jobs[i], StoreJob::Search(_)));
        let waiting = self.unindexed + appended;
        let index_now = if searches {
            usize::MAX
        } else {
            waiting.saturating_sub(MAX_UNINDEXED)
        };
        let mut indexed = 0;
        if index_now > 0 {
            let index = |conn: &Connection| {
                indexed = search::index_pending(conn, index_now)?;
                Ok(())
            };
            if let Err(e) = in_savepoint(&tx, index) {
                if tx.is_autocommit() {
                    return Err(cancelled(None, e));
                }
                indexed = 0;
                log::warn!("new messages wait to be indexed for search: {e}");
            }
        }
        tx.commit().map_err(|e| cancelled(None, e))?;
        if let Some(histogram) = &self.commit_seconds {
            histogram.observe(began.elapsed().as_secs_f64());
        }
        // Fewer indexed than asked means the queue is empty.
        self.unindexed = if indexed < index_now {
            0
        } else {
            waiting.saturating_sub(indexed)
        };
        Ok((results, removed))
    }

    /// Whether `index_while_idle` has work to do now.
    pub fn has_unindexed(&self) -> bool {
        self.unindexed > 0 && Instant::now() >= self.index_after
    }

    /// Indexes up to `INDEX_CHUNK` of the messages waiting for the search index, in a
    /// transaction of its own: the store thread's work when no job waits, so a server
    /// that is not written to flat out never indexes on its commit path.
    pub fn index_while_idle(&mut self) {
        self.wait_for_locks(BUSY_TIMEOUT);
        let indexed = self.conn.transaction().and_then(|tx| {
            let indexed = search::index_pending(&tx, INDEX_CHUNK)?;
            tx.commit()?;
            Ok(indexed)
        });
        match indexed {
            Ok(n) if n < INDEX_CHUNK => self.unindexed = 0,
            Ok(n) => self.unindexed = self.unindexed.saturating_sub(n).max(1),
            Err(e) => {
                log::warn!("cannot index messages for search now: {e}");
                self.index_after = Instant::now() + PROBE_EVERY;
            }
        }
    }

    /// While the database is failing and nothing else comes: one small write, which
    /// turns `/healthz` back to 200 once it works.
    fn probe(&mut self) {
        self.wait_for_locks(BUSY_TIMEOUT);
        match ids::reserve(&self.conn, 0) {
            Ok(()) => self.condition.succeeded(true),
            Err(e) => self.condition.failed(0, &e.to_string(), true),
        }
    }

    fn wait_for_locks(&mut self, timeout: Duration) {
        if self.busy_timeout != timeout && self.conn.busy_timeout(timeout).is_ok() {
            self.busy_timeout = timeout;
        }
    }

    /// The SQLite connection, for the operator's commands run on the file.
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The stored password hash of a room (for tests of what reaches the disk).
    #[cfg(test)]
    pub fn password_hash(&self, room_key: &str) -> Option<String> {
        self.conn
            .query_row(
                "SELECT password_hash FROM rooms WHERE name_key = ?1",
                [room_key],
                |row| row.get(0),
            )
            .ok()
            .flatten()
    }
}

/// Jobs that only read: they may still work while writes fail.
fn is_read(job: &StoreJob) -> bool {
    matches!(
        job,
        StoreJob::History { .. }
            | StoreJob::DmHistory(_)
            | StoreJob::LookupMessage(_)
            | StoreJob::Search(_)
    )
}

/// One job's statement; a `history` job returns its reply. A job that removes files lists
/// them in `removed` (their bytes go once the transaction commits).
fn run_job(
    conn: &Connection,
    job: &StoreJob,
    removed: &mut files::Removed,
) -> rusqlite::Result<Option<Arc<EncodedFrame>>> {
    match job {
        StoreJob::CreateRoom(room) => rooms::insert_room(conn, room)?,
        StoreJob::Append { record, .. } if record.files.is_empty() => {
            messages::insert_message(conn, record)?
        }
        StoreJob::Append { record, .. } => in_savepoint(conn, |conn| {
            messages::insert_message(conn, record)?;
            files::link(conn, record.id, &record.files)
        })?,
        StoreJob::AddFile { row, .. } => files::insert_file(conn, row)?,
        StoreJob::DeleteFiles { ids } => {
            in_savepoint(conn, |conn| files::delete_unattached(conn, ids, removed))?
        }
        // Several statements: a savepoint keeps them one job (see the file's header).
        StoreJob::DeleteRoom { id } => in_savepoint(conn, |conn| {
            files::remove_for_room(conn, *id, removed)?;
            rooms::delete_room(conn, *id)
        })?,
        StoreJob::History {
            room_id,
            room_name,
            before,
            limit,
            reference,
            ..
        } => {
            // Same connection, same transaction: it sees every message written before it.
            let json = messages::history_json(
                conn,
                *room_id,
                room_name,
                *before,
                *limit,
                reference.as_ref(),
            )?;
            return Ok(Some(EncodedFrame::text(&json)));
        }
        StoreJob::DmHistory(query) => return accounts::dm_history(conn, query).map(Some),
        // Nothing to write: its place in the queue is what it waits for (see `apply`).
        StoreJob::Search(_) => {}
        StoreJob::ReserveIds { up_to } => ids::reserve(conn, *up_to)?,
        StoreJob::UsedId(id) => ids::reserve(conn, *id)?,
        // Some writes are several statements: a savepoint keeps each one job.
        StoreJob::Account(write) => {
            in_savepoint(conn, |conn| accounts::apply(conn, write.clone()))?
        }
        StoreJob::Finish { last_id } => ids::release_to(conn, *last_id)?,
        StoreJob::Moderation(write) => in_savepoint(conn, |conn| moderation::apply(conn, write))?,
        StoreJob::LookupMessage(query) => moderation::look_up(conn, query)?,
        // Several statements (the message, its files): a savepoint keeps them one job.
        StoreJob::ChangeMessage(change) => in_savepoint(conn, |conn| {
            moderation::change_message(conn, change, removed)
        })?,
    }
    Ok(None)
}

/// Answers a job now that its fate is known.
fn settle(job: StoreJob, outcome: Outcome, done: &mut Vec<StoreDone>) {
    match job {
        StoreJob::CreateRoom(room) => done.push(StoreDone::RoomStored {
            id: room.id,
            stored: outcome.is_ok(),
        }),
        StoreJob::Append {
            record,
            author,
            ack,
        } => match outcome {
            Ok(_) => {
                if let Some(reference) = ack {
                    let json = Event::Ack {
                        id: Some(record.id),
                        ts: Some(record.ts),
                        reference: Some(&reference),
                    }
                    .to_json();
                    author.push(EncodedFrame::text(&json));
                }
            }
            Err(_) => {
                let message = format!(
                    "message {} could not be kept: the server's storage is failing",
                    record.id
                );
                author.push(unavailable(message, ack.as_ref()));
            }
        },
        StoreJob::History {
            room_name,
            reference,
            reply,
            ..
        } => match outcome {
            Ok(frame) => {
                reply.push(frame.unwrap_or_else(|| EncodedFrame::text("")));
            }
            Err(_) => {
                let message = format!(
                    "the history of {room_name} cannot be read: the server's storage is failing"
                );
                reply.push(unavailable(message, reference.as_ref()));
            }
        },
        StoreJob::DmHistory(query) => match outcome {
            Ok(Some(frame)) => {
                query.reply.push(frame);
            }
            _ => {
                let message = format!(
                    "the messages with {} cannot be read: the server's storage is failing",
                    query.partner_name
                );
                query
                    .reply
                    .push(unavailable(message, query.reference.as_ref()));
            }
        },
        // The hub answered these already; a failure is in the log (see `health`), and the
        // change is lost with the rest of what the failing database could not keep.
        StoreJob::Account(_) | StoreJob::UsedId(_) => {}
        StoreJob::ReserveIds { up_to } => done.push(StoreDone::IdsReserved {
            up_to: outcome.is_ok().then_some(up_to),
        }),
        StoreJob::DeleteRoom { id } => {
            if let Err(failure) = outcome {
                // The hub has removed the room already; it comes back at the next start.
                log::warn!("room {id} could not be deleted: {}", failure.message);
            }
        }
        StoreJob::AddFile { done, .. } => {
            let _ = done.send(outcome.is_ok());
        }
        StoreJob::DeleteFiles { ids } => {
            if let Err(failure) = outcome {
                // Their rows stay; the next start finds them unattached again.
                log::warn!(
                    "{} unattached files could not be deleted: {}",
                    ids.len(),
                    failure.message
                );
            }
        }
        StoreJob::Finish { .. } | StoreJob::Search(_) => {}
        // Like account writes: the hub answered already; a failure is in the log.
        StoreJob::Moderation(_) => {}
        StoreJob::LookupMessage(query) => {
            done.push(StoreDone::MessageLooked(query.answer(outcome.is_ok())))
        }
        StoreJob::ChangeMessage(change) => done.push(StoreDone::MessageChanged {
            change,
            kept: outcome.is_ok(),
        }),
    }
}

/// Runs a job of more than one statement so that it fails whole: SQLite undoes a failed
/// statement alone, and the savepoint undoes the job's earlier ones.
fn in_savepoint(
    conn: &Connection,
    job: impl FnOnce(&Connection) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    conn.execute_batch("SAVEPOINT job")?;
    match job(conn) {
        Ok(()) => conn.execute_batch("RELEASE job"),
        Err(e) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
            }
            Err(e)
        }
    }
}

fn unavailable(message: String, reference: Option<&Ref>) -> Arc<EncodedFrame> {
    let rejection = Rejection::new(ErrorCode::Unavailable, message);
    EncodedFrame::text(&error_json(&rejection, reference))
}

/// How often the store looks for changes other processes (`papo user …`) made to the file.
const CHANGE_POLL: Duration = Duration::from_secs(1);

/// The store thread: takes whatever jobs are waiting (up to `BATCH`), applies them in one
/// transaction, hands the hub what it waits for (`done`), and repeats until every sender
/// is gone. Once a second it also looks for account changes made by the operator's
/// commands and hands them to `changed`; while the database is failing it tries a write of
/// its own every `PROBE_EVERY` when no job comes.
pub fn run(
    mut store: Store,
    jobs: Receiver<StoreJob>,
    last_change: i64,
    changed: impl Fn(Vec<accounts::AccountChange>),
    mut done: impl FnMut(StoreDone),
) {
    let mut watch = accounts::ChangeWatch::new(&store.conn, last_change)
        .map_err(|e| log::error!("cannot watch the database for account changes: {e}"))
        .ok();
    let mut next_poll = Instant::now() + CHANGE_POLL;
    let mut next_probe = Instant::now() + PROBE_EVERY;
    loop {
        let now = Instant::now();
        if now >= next_poll {
            next_poll = now + CHANGE_POLL;
            if let Some(watch) = &mut watch {
                match watch.poll(&store.conn) {
                    Ok(changes) if !changes.is_empty() => changed(changes),
                    Ok(_) => {}
                    Err(e) => log::warn!("cannot read account changes: {e}"),
                }
            }
        }
        // Idle with messages to index: index a chunk, and look again.
        if store.has_unindexed() && jobs.is_empty() {
            store.index_while_idle();
            continue;
        }
        let first = match jobs.recv_deadline(next_poll) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                if !store.condition.health.writable() && Instant::now() >= next_probe {
                    store.probe();
                    next_probe = Instant::now() + PROBE_EVERY;
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut batch = Vec::with_capacity(64);
        batch.push(first);
        while batch.len() < BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        for answer in store.apply(batch) {
            done(answer);
        }
        next_probe = Instant::now() + PROBE_EVERY;
    }
}

pub fn queue() -> (Sender<StoreJob>, Receiver<StoreJob>) {
    crossbeam_channel::bounded(STORE_QUEUE)
}

#[cfg(test)]
mod tests;
