//! The database file: what it is (checked before anything is written to it), opening it,
//! the schema and its migrations.
//!
//! papo marks its files with `PRAGMA application_id`, set by the migration that creates
//! the schema, so a file is recognised as papo's by its header, not by guessing from its
//! tables. Files written by version 1 (schema version 1, no mark) are recognised by their
//! exact tables and marked when first opened. Anything else, another program's database,
//! a version papo never wrote, is refused before a single byte of it changes: no journal
//! mode switched, no `-wal` left beside it.

use super::{accounts, context, Store, StoreError};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

/// The schema this papo writes. Each entry of `MIGRATIONS` takes a database one version up.
pub const SCHEMA_VERSION: i64 = 2;

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
];

/// The schema objects of version 1 and the columns of its tables: what an unmarked file
/// must hold, exactly, to be taken as one version-1 papo wrote.
const VERSION_1_OBJECTS: &[(&str, &str, &[&str])] = &[
    (
        "table",
        "rooms",
        &[
            "id",
            "name",
            "name_key",
            "password_hash",
            "creator",
            "created_at",
        ],
    ),
    (
        "table",
        "messages",
        &["id", "room_id", "sender", "recipient", "text", "ts"],
    ),
    ("index", "messages_by_room", &[]),
];

/// What the file turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Recognised {
    /// Its schema version: where migrations start.
    pub(super) version: i64,
    /// Whether its header already carries papo's mark.
    marked: bool,
}

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
        // Only reads until the file is recognised; a file that is not a database at all
        // fails at the first of them.
        let found = recognise(&conn)?;
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
        store.migrate(found)?;
        Ok(store)
    }

    fn migrate(&mut self, found: Recognised) -> Result<(), StoreError> {
        for version in found.version..SCHEMA_VERSION {
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
        if !found.marked && found.version == SCHEMA_VERSION {
            // A version-1 file, recognised by its tables, already current: mark it.
            self.conn
                .pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(context("cannot mark the database as papo's"))?;
            log::info!("database written by papo version 1 adopted and marked as papo's");
        }
        Ok(())
    }
}

/// Reads what the file is and decides whether papo may use it, writing nothing.
pub(super) fn recognise(conn: &Connection) -> Result<Recognised, StoreError> {
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
        APPLICATION_ID => Ok(Recognised {
            version,
            marked: true,
        }),
        0 if version == 0 && objects.is_empty() => Ok(Recognised {
            version: 0,
            marked: false,
        }),
        0 if version == 1 && is_version_1(conn, &objects).map_err(read())? => Ok(Recognised {
            version: 1,
            marked: false,
        }),
        0 if version > SCHEMA_VERSION => Err(StoreError::NotPapo(format!(
            "it has schema version {version} but not papo's mark, which this papo and every \
             newer papo set"
        ))),
        0 if objects.is_empty() => Err(StoreError::UnknownVersion { found: version }),
        0 => {
            let names: Vec<&str> = objects.iter().map(|(_, name)| name.as_str()).collect();
            Err(StoreError::NotPapo(format!(
                "it holds tables papo did not create ({})",
                names.join(", ")
            )))
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

/// Whether the objects are exactly version 1's, with its columns.
fn is_version_1(conn: &Connection, objects: &[(String, String)]) -> rusqlite::Result<bool> {
    let mut expected: Vec<(&str, &str)> = VERSION_1_OBJECTS
        .iter()
        .map(|(kind, name, _)| (*kind, *name))
        .collect();
    expected.sort();
    let found: Vec<(&str, &str)> = objects
        .iter()
        .map(|(kind, name)| (kind.as_str(), name.as_str()))
        .collect();
    if found != expected {
        return Ok(false);
    }
    for (_, table, columns) in VERSION_1_OBJECTS.iter().filter(|o| o.0 == "table") {
        let found: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?
            .query_map([table], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if found != *columns {
            return Ok(false);
        }
    }
    Ok(true)
}
