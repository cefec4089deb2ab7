//! The database file: opening it, the schema and its migrations.

use super::{accounts, context, Store, StoreError};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

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
}
