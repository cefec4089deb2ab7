//! Persistence in SQLite: the schema and its migrations, loading rooms and recent messages
//! at start, and the store thread that owns the connection, writes in batched
//! transactions (group commit), acks messages once committed, and answers `history`.

pub mod accounts;

use crate::outbox::{EncodedFrame, Outbox};
use crate::protocol::{Event, Ref};
use crossbeam_channel::{Receiver, Sender};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde_json::value::RawValue;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// The schema this papo writes. Each entry of `MIGRATIONS` takes a database one version up.
pub const SCHEMA_VERSION: i64 = 2;

const MIGRATIONS: &[&str] = &[
    // 0 → 1: rooms, and every room message and DM under the server's shared id sequence.
    "CREATE TABLE rooms (
         id            INTEGER PRIMARY KEY,
         name          TEXT NOT NULL,
         name_key      TEXT NOT NULL UNIQUE,
         password_hash TEXT,
         creator       TEXT NOT NULL,
         created_at    INTEGER NOT NULL
     );
     CREATE TABLE messages (
         id        INTEGER PRIMARY KEY,
         room_id   INTEGER REFERENCES rooms(id),
         sender    TEXT NOT NULL,
         recipient TEXT,
         text      TEXT NOT NULL,
         ts        INTEGER NOT NULL
     );
     CREATE INDEX messages_by_room ON messages(room_id, id);",
    // 1 → 2: accounts, sessions, memberships, read marks, invites (see `accounts`).
    accounts::MIGRATION,
];

/// Jobs waiting for the store thread.
pub const STORE_QUEUE: usize = 65_536;
/// Jobs written in one transaction at most.
const BATCH: usize = 4096;

#[derive(Debug)]
pub enum StoreError {
    Sqlite(String, rusqlite::Error),
    NewerSchema { found: i64 },
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
        }
    }
}

impl std::error::Error for StoreError {}

fn context(what: &str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::Sqlite(what.to_string(), e)
}

/// A room as stored.
#[derive(Debug, Clone)]
pub struct StoredRoom {
    pub id: i64,
    pub name: String,
    pub password_hash: Option<String>,
    /// When it was last used, as far as the database knows: its creation or its newest
    /// message, in ms since the epoch (the clock long-empty rooms are removed by).
    pub last_active: u64,
    /// Its newest messages, oldest first: (id, `message` event JSON).
    pub recent: Vec<(u64, String)>,
}

/// What the hub starts from.
#[derive(Debug, Default)]
pub struct Loaded {
    pub rooms: Vec<StoredRoom>,
    pub last_message_id: u64,
    /// Accounts, sessions, memberships and read marks.
    pub accounts: accounts::LoadedAccounts,
}

/// A message to keep: a room message (`room_id`) or a DM (`recipient`).
#[derive(Debug, Clone)]
pub struct MessageRecord {
    pub id: u64,
    pub room_id: Option<i64>,
    pub sender: Arc<str>,
    pub recipient: Option<String>,
    /// The sender's account, when signed in (a guest has none).
    pub sender_account: Option<i64>,
    /// A DM's recipient account; set only for DMs between two accounts, the only DMs kept.
    pub recipient_account: Option<i64>,
    pub text: String,
    pub ts: u64,
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
    /// Opens (creating if needed) and migrates the database at `path`; `:memory:` makes a
    /// throwaway one. A database that is corrupt, unreadable or from a newer papo is an
    /// error, and nothing is written to it.
    pub fn open(path: &str) -> Result<Store, StoreError> {
        let conn = if path == ":memory:" {
            Connection::open_in_memory()
        } else {
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            Connection::open_with_flags(Path::new(path), flags)
        }
        .map_err(context("cannot open the database"))?;
        // Reading the version is the first access: a file that is not a database fails
        // here, before anything is written.
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(context("cannot read the database"))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema { found: version });
        }
        if path != ":memory:" {
            let mode: String = conn
                .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
                .map_err(context("cannot switch the database to WAL mode"))?;
            if !mode.eq_ignore_ascii_case("wal") {
                log::warn!("the database stays in {mode} journal mode");
            }
        }
        // Another process (the operator's `papo user …`) may hold the write lock for a
        // moment: wait for it rather than fail a batch.
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(context("cannot set the busy timeout"))?;
        // FULL: a commit is on disk before its acks go out, even across a power cut.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(context("cannot set synchronous mode"))?;
        let mut store = Store { conn };
        store.migrate(version)?;
        Ok(store)
    }

    fn migrate(&mut self, from: i64) -> Result<(), StoreError> {
        for version in from..SCHEMA_VERSION {
            let tx = self
                .conn
                .transaction()
                .map_err(context("cannot start a migration"))?;
            tx.execute_batch(MIGRATIONS[version as usize])
                .map_err(context("migration failed"))?;
            tx.pragma_update(None, "user_version", version + 1)
                .map_err(context("migration failed"))?;
            tx.commit().map_err(context("migration failed"))?;
            log::info!("database migrated to schema version {}", version + 1);
        }
        Ok(())
    }

    /// Rooms with their newest `recent` messages, and the last id used.
    pub fn load(&self, recent: usize) -> Result<Loaded, StoreError> {
        let load = context("cannot load the database");
        let mut rooms_query = self
            .conn
            .prepare(
                "SELECT id, name, password_hash, max(created_at, coalesce(
                     (SELECT ts FROM messages WHERE room_id = rooms.id ORDER BY id DESC LIMIT 1), 0))
                 FROM rooms ORDER BY id",
            )
            .map_err(context("cannot load rooms"))?;
        let rooms = rooms_query
            .query_map([], |row| {
                Ok(StoredRoom {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    password_hash: row.get(2)?,
                    last_active: row.get::<_, i64>(3)?.max(0) as u64,
                    recent: Vec::new(),
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(context("cannot load rooms"))?;
        let mut loaded = Loaded {
            rooms,
            last_message_id: 0,
            accounts: accounts::load(&self.conn).map_err(context("cannot load accounts"))?,
        };
        for room in &mut loaded.rooms {
            let messages = query_messages(&self.conn, room.id, &room.name, None, recent)
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
                } => {
                    tx.prepare_cached(
                        "INSERT INTO rooms (id, name, name_key, password_hash, creator, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![id, name, key, password_hash, creator, created_at as i64])?;
                }
                StoreJob::Append { record, ack } => {
                    tx.prepare_cached(
                        "INSERT INTO messages (id, room_id, sender, recipient, text, ts, sender_account, recipient_account) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )?
                    .execute(params![
                        record.id as i64,
                        record.room_id,
                        &*record.sender,
                        record.recipient,
                        record.text,
                        record.ts as i64,
                        record.sender_account,
                        record.recipient_account
                    ])?;
                    after_commit.extend(ack);
                }
                StoreJob::DeleteRoom { id } => delete_room(&tx, id)?,
                StoreJob::History {
                    room_id,
                    room_name,
                    before,
                    limit,
                    reference,
                    reply,
                } => {
                    // Same connection, same transaction: it sees every message written before it.
                    let rows = query_messages(&tx, room_id, &room_name, before, limit)?;
                    let raw: Vec<&RawValue> = rows
                        .iter()
                        .filter_map(|(_, json)| serde_json::from_str(json).ok())
                        .collect();
                    let json = Event::History {
                        room: &room_name,
                        messages: raw,
                        reference: reference.as_ref(),
                    }
                    .to_json();
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

    /// Copies the whole database to `out` with SQLite's online backup (safe while another
    /// process serves from it).
    pub fn backup(path: &str, out: &str) -> Result<(), StoreError> {
        let source = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(context("cannot open the database to back up"))?;
        let version: i64 = source
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(context("cannot read the database"))?;
        if version == 0 {
            return Err(StoreError::Sqlite(
                format!("{path} is not a papo database"),
                rusqlite::Error::InvalidQuery,
            ));
        }
        let mut target = Connection::open(out).map_err(context("cannot create the backup file"))?;
        let backup = rusqlite::backup::Backup::new(&source, &mut target)
            .map_err(context("cannot start the backup"))?;
        backup
            .run_to_completion(256, std::time::Duration::from_millis(5), None)
            .map_err(context("backup failed"))?;
        Ok(())
    }
}

/// Deletes a room and its messages (a long-empty room the hub removed).
fn delete_room(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM messages WHERE room_id = ?1")?
        .execute([id])?;
    conn.prepare_cached("DELETE FROM rooms WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// A room's newest `limit` messages with an id below `before`, oldest first, as `message`
/// event JSON. Takes a connection so it also runs inside a batch's transaction.
fn query_messages(
    conn: &Connection,
    room_id: i64,
    room_name: &str,
    before: Option<u64>,
    limit: usize,
) -> rusqlite::Result<Vec<(u64, String)>> {
    let mut query = conn.prepare_cached(
        "SELECT id, sender, text, ts FROM messages WHERE room_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
    )?;
    let before = before
        .map(|b| b.min(i64::MAX as u64) as i64)
        .unwrap_or(i64::MAX);
    let mut rows: Vec<(u64, String)> = query
        .query_map(params![room_id, before, limit as i64], |row| {
            let id: i64 = row.get(0)?;
            let sender: String = row.get(1)?;
            let text: String = row.get(2)?;
            let ts: i64 = row.get(3)?;
            let event = Event::Message {
                room: room_name,
                id: id as u64,
                from: &sender,
                text: &text,
                ts: ts as u64,
            };
            Ok((id as u64, event.to_json()))
        })?
        .collect::<Result<_, _>>()?;
    rows.reverse();
    Ok(rows)
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
