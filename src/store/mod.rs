//! Persistence in SQLite. This file owns the store thread: it holds the connection,
//! writes in batched transactions (group commit), acks messages once committed, and
//! answers `history`. The schema and opening the file are in `schema`, the backup in
//! `backup`, and what is kept of each area in `rooms`, `messages` and `accounts`.

pub mod accounts;
mod backup;
mod messages;
mod rooms;
mod schema;

pub use messages::MessageRecord;
pub use rooms::StoredRoom;
pub use schema::SCHEMA_VERSION;

use crate::outbox::{EncodedFrame, Outbox};
use crate::protocol::Ref;
use crossbeam_channel::{Receiver, Sender};
use rusqlite::{Connection, OptionalExtension};
use std::fmt;
use std::sync::Arc;

/// Jobs waiting for the store thread.
pub const STORE_QUEUE: usize = 65_536;
/// Jobs written in one transaction at most.
const BATCH: usize = 4096;

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
        }
    }
}

impl std::error::Error for StoreError {}

fn context(what: &str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::Sqlite(what.to_string(), e)
}

/// What the hub starts from.
#[derive(Debug, Default)]
pub struct Loaded {
    pub rooms: Vec<StoredRoom>,
    pub last_message_id: u64,
    /// Accounts, sessions, memberships and read marks.
    pub accounts: accounts::LoadedAccounts,
}

/// Work for the store thread.
pub enum StoreJob {
    CreateRoom {
        id: i64,
        name: String,
        key: String,
        password_hash: Option<String>,
        creator: String,
        created_at: u64,
    },
    /// Keep a message; once committed, push `ack` (if any) to the sender.
    Append {
        record: MessageRecord,
        ack: Option<(Outbox, Arc<EncodedFrame>)>,
    },
    /// Forget a room: its row and every message it had.
    DeleteRoom { id: i64 },
    /// Answer a `history` command straight to the asking connection.
    History {
        room_id: i64,
        room_name: Arc<str>,
        before: Option<u64>,
        limit: usize,
        reference: Option<Ref>,
        reply: Outbox,
    },
    /// A message id was used by something not kept (a DM with a guest): ids continue
    /// after it across a restart all the same.
    UsedId(u64),
    /// Keep a change to accounts, sessions, memberships or read marks.
    Account(accounts::AccountWrite),
    /// Answer a `dm_history` command straight to the asking connection.
    DmHistory(accounts::DmHistoryQuery),
}

pub struct Store {
    conn: Connection,
}

impl Store {
    /// Rooms with their newest `recent` messages, and the last id used.
    pub fn load(&self, recent: usize) -> Result<Loaded, StoreError> {
        let load = context("cannot load the database");
        let mut loaded = Loaded {
            rooms: self.load_rooms()?,
            last_message_id: 0,
            accounts: accounts::load(&self.conn).map_err(context("cannot load accounts"))?,
        };
        for room in &mut loaded.rooms {
            let messages = messages::query_messages(&self.conn, room.id, &room.name, None, recent)
                .map_err(context("cannot load messages"))?;
            room.recent = messages;
        }
        let last: Option<i64> = self
            .conn
            .query_row(
                "SELECT max((SELECT coalesce(max(id), 0) FROM messages),
                            (SELECT coalesce(max(last_id), 0) FROM id_high_water))",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(load)?
            .flatten();
        loaded.last_message_id = last.unwrap_or(0) as u64;
        Ok(loaded)
    }

    /// Applies a batch of jobs in one transaction, then sends what waited for the commit.
    pub fn apply(&mut self, jobs: Vec<StoreJob>) {
        let mut after_commit: Vec<(Outbox, Arc<EncodedFrame>)> = Vec::new();
        if let Err(e) = self.write_batch(jobs, &mut after_commit) {
            // The acks of an uncommitted batch are never sent: a client that got an ack
            // can count on its message being kept.
            log::error!(
                "database write failed, {} replies withheld: {e}",
                after_commit.len()
            );
            return;
        }
        for (outbox, frame) in after_commit {
            outbox.push(frame);
        }
    }

    fn write_batch(
        &mut self,
        jobs: Vec<StoreJob>,
        after_commit: &mut Vec<(Outbox, Arc<EncodedFrame>)>,
    ) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        for job in jobs {
            match job {
                StoreJob::CreateRoom {
                    id,
                    name,
                    key,
                    password_hash,
                    creator,
                    created_at,
                } => rooms::insert_room(
                    &tx,
                    id,
                    &name,
                    &key,
                    password_hash.as_deref(),
                    &creator,
                    created_at,
                )?,
                StoreJob::Append { record, ack } => {
                    messages::insert_message(&tx, &record)?;
                    after_commit.extend(ack);
                }
                StoreJob::DeleteRoom { id } => rooms::delete_room(&tx, id)?,
                StoreJob::History {
                    room_id,
                    room_name,
                    before,
                    limit,
                    reference,
                    reply,
                } => {
                    // Same connection, same transaction: it sees every message written before it.
                    let json = messages::history_json(
                        &tx,
                        room_id,
                        &room_name,
                        before,
                        limit,
                        reference.as_ref(),
                    )?;
                    after_commit.push((reply, EncodedFrame::text(&json)));
                }
                StoreJob::Account(write) => accounts::apply(&tx, write)?,
                StoreJob::UsedId(id) => {
                    tx.prepare_cached(
                        "INSERT INTO id_high_water (one, last_id) VALUES (1, ?1)
                         ON CONFLICT (one) DO UPDATE SET last_id = max(last_id, excluded.last_id)",
                    )?
                    .execute([id as i64])?;
                }
                StoreJob::DmHistory(query) => {
                    let frame = accounts::dm_history(&tx, &query)?;
                    after_commit.push((query.reply, frame));
                }
            }
        }
        tx.commit()
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

/// How often the store looks for changes other processes (`papo user …`) made to the file.
const CHANGE_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// The store thread: takes whatever jobs are waiting (up to `BATCH`), applies them in one
/// transaction, and repeats until every sender is gone. Once a second it also looks for
/// account changes made by the operator's commands and hands them to `changed`.
pub fn run(
    mut store: Store,
    jobs: Receiver<StoreJob>,
    last_change: i64,
    changed: impl Fn(Vec<accounts::AccountChange>),
) {
    let mut watch = accounts::ChangeWatch::new(&store.conn, last_change)
        .map_err(|e| log::error!("cannot watch the database for account changes: {e}"))
        .ok();
    let mut next_poll = std::time::Instant::now() + CHANGE_POLL;
    loop {
        if std::time::Instant::now() >= next_poll {
            next_poll = std::time::Instant::now() + CHANGE_POLL;
            if let Some(watch) = &mut watch {
                match watch.poll(&store.conn) {
                    Ok(changes) if !changes.is_empty() => changed(changes),
                    Ok(_) => {}
                    Err(e) => log::warn!("cannot read account changes: {e}"),
                }
            }
        }
        let first = match jobs.recv_deadline(next_poll) {
            Ok(job) => job,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
        };
        let mut batch = Vec::with_capacity(64);
        batch.push(first);
        while batch.len() < BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        store.apply(batch);
    }
}

pub fn queue() -> (Sender<StoreJob>, Receiver<StoreJob>) {
    crossbeam_channel::bounded(STORE_QUEUE)
}
