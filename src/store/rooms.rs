//! Rooms as stored: written when created, loaded at start.

use super::{context, Store, StoreError};
use rusqlite::{params, Connection};

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

/// A new room to keep, as the hub made it.
#[derive(Debug, Clone)]
pub struct NewRoom {
    /// Its id, chosen by the hub (rooms are numbered in creation order).
    pub id: i64,
    /// The name as its creator spelled it.
    pub name: String,
    /// The folded name, unique: what makes two spellings one room.
    pub key: String,
    /// The argon2id hash of a protected room's password; never the password.
    pub password_hash: Option<String>,
    /// Who made it, for the operator.
    pub creator: String,
    /// When, in ms since the epoch.
    pub created_at: u64,
}

impl Store {
    /// Every room, in creation order, without its messages.
    pub(super) fn load_rooms(&self) -> Result<Vec<StoredRoom>, StoreError> {
        let mut rooms_query = self
            .conn
            .prepare(
                "SELECT id, name, password_hash, max(created_at, coalesce(
                     (SELECT ts FROM messages WHERE room_id = rooms.id ORDER BY id DESC LIMIT 1), 0))
                 FROM rooms ORDER BY id",
            )
            .map_err(context("cannot load rooms"))?;
        rooms_query
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
            .map_err(context("cannot load rooms"))
    }
}

/// Writes a new room (inside the batch's transaction).
pub(super) fn insert_room(conn: &Connection, room: &NewRoom) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO rooms (id, name, name_key, password_hash, creator, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        room.id,
        room.name,
        room.key,
        room.password_hash,
        room.creator,
        room.created_at as i64
    ])?;
    Ok(())
}

/// Deletes a room and its messages (a long-empty room the hub removed), and its bans: a
/// room id can be given again after a restart, and a new room must not inherit them.
pub(super) fn delete_room(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM messages WHERE room_id = ?1")?
        .execute([id])?;
    conn.prepare_cached("DELETE FROM bans WHERE room_id = ?1")?
        .execute([id])?;
    conn.prepare_cached("DELETE FROM rooms WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}
