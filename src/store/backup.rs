//! `papo backup`: a copy of the whole database, taken while a server may be using it.

use super::{context, Store, StoreError};
use rusqlite::{Connection, OpenFlags};

impl Store {
    /// Copies the whole database to `out` with SQLite's online backup (safe while another
    /// process serves from it).
    pub fn backup(path: &str, out: &str) -> Result<(), StoreError> {
        let source = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(context("cannot open the database to back up"))?;
        // Only papo's own files: the same checks as at start, which only read.
        if super::schema::recognise(&source)?.0 == 0 {
            return Err(StoreError::NotPapo("it is empty".into()));
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
