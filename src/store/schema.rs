//! The database file: what it is (checked before anything is written to it), opening it,
//! the schema and its migrations.
//!
//! papo marks its files with `PRAGMA application_id`, set by the migration that creates
//! the schema, so a file is recognised as papo's by its header, not by guessing from its
//! tables. Files written before the mark (schema versions 1 and 2, no mark) are recognised
//! by having exactly the tables, columns and indexes papo's own migrations make for their
//! version, and are marked when first opened. Anything else, another program's database,
//! a version papo never wrote, is refused before a single byte of it changes: no journal
//! mode switched, no `-wal` left beside it.

use super::{accounts, context, moderation, search, Store, StoreError};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

/// The schema this papo writes. Each entry of `MIGRATIONS` takes a database one version up.
pub const SCHEMA_VERSION: i64 = 5;

/// papo's mark in the SQLite header (`PRAGMA application_id`): "papo" in ASCII.
pub const APPLICATION_ID: i64 = 0x7061_706f;

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
    // 2 → 3: edited messages, rooms' owners, bans, suspensions, the audit log.
    moderation::MIGRATION,
    // 3 → 4: the full-text index of messages, filled from those already kept (see `search`).
    search::MIGRATION,
    // 4 → 5: attachments and the messages that carry them (see `files`).
    super::files::MIGRATION,
];

/// The last schema version papo wrote without its mark: unmarked files up to it are
/// papo's if their schema is exactly what the migrations make.
const LAST_UNMARKED_VERSION: i64 = 2;

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`; `:memory:` makes a
    /// throwaway one. A file papo did not write (another program's, a corrupt one, one
    /// from a newer papo) is an error, and nothing is written to it.
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
        // A file this process cannot write is refused at start rather than served
        // degraded: nobody is connected yet, so nothing is lost by not starting, the
        // operator sees the reason at once, and a server that cannot keep a single message
        // would only turn every room and message away with `unavailable`. (A database that
        // fails later is served degraded: see `health`.) Checked before the first read,
        // which would leave `-wal` and `-shm` files beside a WAL-mode database.
        if conn
            .is_readonly(rusqlite::MAIN_DB)
            .map_err(context("cannot open the database"))?
        {
            return Err(StoreError::ReadOnly);
        }
        // Only reads until the file is recognised; a file that is not a database at all
        // fails at the first of them.
        let (found, marked) = recognise(&conn)?;
        if path != ":memory:" {
            let mode: String = conn
                .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
                .map_err(context("cannot switch the database to WAL mode"))?;
            if !mode.eq_ignore_ascii_case("wal") {
                log::warn!("the database stays in {mode} journal mode");
            }
        }
        // FULL: a commit is on disk before its acks go out, even across a power cut.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(context("cannot set synchronous mode"))?;
        // A deleted message's text is overwritten where it lay, not left in free space
        // for anyone who reads the file (moderation deletes what should not be kept).
        conn.pragma_update(None, "secure_delete", true)
            .map_err(context("cannot set secure delete"))?;
        // Another process (the operator's `papo user …`) may hold the write lock for a
        // moment: wait for it rather than fail a batch (see `BUSY_TIMEOUT`).
        conn.busy_timeout(super::BUSY_TIMEOUT)
            .map_err(context("cannot set the busy timeout"))?;
        let mut store = Store {
            conn,
            on_files_removed: None,
            condition: Default::default(),
            busy_timeout: super::BUSY_TIMEOUT,
            search_pool: None,
            commit_seconds: None,
            unindexed: 0,
            index_after: std::time::Instant::now(),
        };
        store.migrate(found, marked)?;
        // A message must belong to a room that is kept: a room the store could not keep is
        // removed by the hub, and a message sent into it meanwhile fails with it rather
        // than being kept under a room that does not exist.
        store
            .conn
            .pragma_update(None, "foreign_keys", true)
            .map_err(context("cannot turn on foreign keys"))?;
        // For benchmarks only: a build made with PAPO_BENCH_NO_SEARCH_INDEX set (at compile
        // time) keeps no search index, to measure what the index costs the whole server.
        if option_env!("PAPO_BENCH_NO_SEARCH_INDEX").is_some() {
            store
                .conn
                .execute_batch(super::search::DROP_FOR_BENCH)
                .map_err(context("cannot drop the search index"))?;
        }
        Ok(store)
    }

    fn migrate(&mut self, found: i64, marked: bool) -> Result<(), StoreError> {
        for version in found..SCHEMA_VERSION {
            let tx = self
                .conn
                .transaction()
                .map_err(context("cannot start a migration"))?;
            tx.execute_batch(MIGRATIONS[version as usize])
                .map_err(context("migration failed"))?;
            tx.pragma_update(None, "user_version", version + 1)
                .map_err(context("migration failed"))?;
            tx.pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(context("migration failed"))?;
            tx.commit().map_err(context("migration failed"))?;
            log::info!("database migrated to schema version {}", version + 1);
        }
        if !marked && found == SCHEMA_VERSION {
            // Written before the mark, recognised by its schema, already current.
            self.conn
                .pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(context("cannot mark the database as papo's"))?;
            log::info!("database written before papo marked its files: marked as papo's");
        }
        Ok(())
    }
}

/// Reads what the file is and decides whether papo may use it, writing nothing; if so,
/// its schema version (0: empty, to be created) and whether it carries papo's mark.
pub(super) fn recognise(conn: &Connection) -> Result<(i64, bool), StoreError> {
    let read = || context("cannot read the database");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(read())?;
    let application_id: i64 = conn
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(read())?;
    let objects = schema_objects(conn).map_err(read())?;
    if version < 0 {
        return Err(StoreError::UnknownVersion { found: version });
    }
    match application_id {
        APPLICATION_ID if version > SCHEMA_VERSION => {
            Err(StoreError::NewerSchema { found: version })
        }
        APPLICATION_ID if version == 0 => Err(StoreError::UnknownVersion { found: version }),
        APPLICATION_ID => Ok((version, true)),
        0 if version == 0 && objects.is_empty() => Ok((0, false)),
        0 if (1..=LAST_UNMARKED_VERSION).contains(&version)
            && shape(conn).map_err(read())? == reference_shape(version).map_err(read())? =>
        {
            Ok((version, false))
        }
        0 if version > SCHEMA_VERSION => Err(StoreError::NotPapo(format!(
            "it has schema version {version} but not papo's mark, which this papo and every \
             newer papo set"
        ))),
        0 if objects.is_empty() => Err(StoreError::UnknownVersion { found: version }),
        0 => {
            let papos = reference_shape(SCHEMA_VERSION).map_err(read())?;
            let foreign: Vec<&str> = objects
                .iter()
                .map(|(_, name)| name.as_str())
                .filter(|name| !papos.iter().any(|(_, papo, _)| papo == name))
                .collect();
            Err(StoreError::NotPapo(if foreign.is_empty() {
                format!("its tables are not the ones papo makes for schema version {version}")
            } else {
                format!(
                    "it holds tables papo did not create ({})",
                    foreign.join(", ")
                )
            }))
        }
        other => Err(StoreError::NotPapo(format!(
            "its application_id {other:#x} marks it as another program's"
        ))),
    }
}

/// The file's tables, indexes, views and triggers as (type, name), SQLite's own left out.
fn schema_objects(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    conn.prepare("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type, name")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect()
}

/// A schema's tables, indexes, views and triggers, each as (type, name, its columns in
/// order), SQLite's own left out.
fn shape(conn: &Connection) -> rusqlite::Result<Vec<(String, String, Vec<String>)>> {
    let mut shape = Vec::new();
    for (kind, name) in schema_objects(conn)? {
        let columns = conn
            .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?
            .query_map([&name], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        shape.push((kind, name, columns));
    }
    Ok(shape)
}

/// The schema papo's migrations make for `version`, built on a throwaway database.
fn reference_shape(version: i64) -> rusqlite::Result<Vec<(String, String, Vec<String>)>> {
    let conn = Connection::open_in_memory()?;
    for migration in &MIGRATIONS[..version as usize] {
        conn.execute_batch(migration)?;
    }
    shape(&conn)
}
