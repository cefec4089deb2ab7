//! Message ids that are never given twice, not even across a crash.
//!
//! The hub broadcasts a message before the store commits it (delivery never waits for the
//! disk), so after a crash the highest stored id can be below ids members have already
//! seen. Starting again from the highest stored id would give those ids to other messages.
//! Instead, ids are reserved ahead in a durable mark (the one row of `id_high_water`,
//! which the accounts migration made for ids used by DMs that are not kept): the hub hands
//! out only ids up to a mark the store has committed, and asks for the next block while
//! half of the current one is still left, so in the normal path it never waits for the
//! disk. After a crash papo starts above the mark (ids jump by at most one block); after a
//! clean stop the hub reports the last id it used and the mark comes back down to it, so
//! ids go on without a gap.
//!
//! Why not the other ways: broadcasting only after the commit puts a commit (an fsync) in
//! every delivery's path and needs the hub to hold each room's later events behind its
//! uncommitted messages to keep their order; a "clean shutdown" marker must bound every id
//! that could be in flight (the store queue, a batch, jobs the hub holds), a bound that
//! silently breaks when a queue changes. A reserved block holds whatever sits in between.

use super::{context, Store, StoreError};
use rusqlite::{params, Connection, OptionalExtension};

/// Ids reserved per block. The hub asks for the next block when fewer than half are left:
/// half a block (524,288) is far more than the store's queue and one batch hold, so the
/// reservation is committed long before the hub could run out. A crash skips at most a
/// block; at that rate 2^53 (the ids JavaScript clients hold exactly) lasts billions of
/// crashes.
pub const ID_BLOCK: u64 = 1 << 20;

impl Store {
    /// The id the hub starts after: above every stored message and every id reserved
    /// before (which a crash may have handed out unstored).
    pub(super) fn last_id_used(&self) -> Result<u64, StoreError> {
        let read = || context("cannot read the message ids");
        let stored: Option<i64> = self
            .conn
            .query_row("SELECT max(id) FROM messages", [], |row| row.get(0))
            .optional()
            .map_err(read())?
            .flatten();
        let reserved: Option<i64> = self
            .conn
            .query_row("SELECT last_id FROM id_high_water", [], |row| row.get(0))
            .optional()
            .map_err(read())?;
        Ok(stored.unwrap_or(0).max(reserved.unwrap_or(0)).max(0) as u64)
    }
}

/// Raises the durable mark to `up_to` (never lowers it).
pub(super) fn reserve(conn: &Connection, up_to: u64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO id_high_water (one, last_id) VALUES (1, ?1)
         ON CONFLICT (one) DO UPDATE SET last_id = max(last_id, excluded.last_id)",
    )?
    .execute(params![clamp(up_to)])?;
    Ok(())
}

/// After a clean stop: the mark comes down to the last id the hub used, so the next start
/// goes on from there. Only the hub's own report may lower it: it alone knows every id
/// it gave out.
pub(super) fn release_to(conn: &Connection, last_used: u64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO id_high_water (one, last_id) VALUES (1, ?1)
         ON CONFLICT (one) DO UPDATE SET last_id = excluded.last_id",
    )?
    .execute(params![clamp(last_used)])?;
    Ok(())
}

fn clamp(id: u64) -> i64 {
    id.min(i64::MAX as u64) as i64
}
