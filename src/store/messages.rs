//! Messages as stored: room messages and DMs under one id sequence, appended in batches,
//! and read back a page at a time for `history` and for each room's newest at start.

use crate::protocol::{Event, Ref};
use rusqlite::{params, Connection};
use serde_json::value::RawValue;
use std::sync::Arc;

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
    /// Ids of the files it carries, in order (kept as links; empty when none).
    pub files: Vec<String>,
}

/// Writes one message (inside the batch's transaction).
pub(super) fn insert_message(conn: &Connection, record: &MessageRecord) -> rusqlite::Result<()> {
    conn.prepare_cached(
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
    Ok(())
}

/// The `history` reply for a room: its newest `limit` messages below `before`.
pub(super) fn history_json(
    conn: &Connection,
    room_id: i64,
    room_name: &str,
    before: Option<u64>,
    limit: usize,
    reference: Option<&Ref>,
) -> rusqlite::Result<String> {
    let rows = query_messages(conn, room_id, room_name, before, limit)?;
    let raw: Vec<&RawValue> = rows
        .iter()
        .filter_map(|(_, json)| serde_json::from_str(json).ok())
        .collect();
    Ok(Event::History {
        room: room_name,
        messages: raw,
        reference,
    }
    .to_json())
}

/// A room's newest `limit` messages with an id below `before`, oldest first, as `message`
/// event JSON. Takes a connection so it also runs inside a batch's transaction.
pub(super) fn query_messages(
    conn: &Connection,
    room_id: i64,
    room_name: &str,
    before: Option<u64>,
    limit: usize,
) -> rusqlite::Result<Vec<(u64, String)>> {
    let mut query = conn.prepare_cached(
        "SELECT id, sender, text, ts, edited_ts FROM messages WHERE room_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
    )?;
    let before = before
        .map(|b| b.min(i64::MAX as u64) as i64)
        .unwrap_or(i64::MAX);
    type Row = (u64, String, String, u64, Option<u64>);
    let found: Vec<Row> = query
        .query_map(params![room_id, before, limit as i64], |row| {
            let id: i64 = row.get(0)?;
            let ts: i64 = row.get(3)?;
            let edited_ts: Option<i64> = row.get(4)?;
            Ok((
                id as u64,
                row.get(1)?,
                row.get(2)?,
                ts as u64,
                edited_ts.map(|t| t as u64),
            ))
        })?
        .collect::<Result<_, _>>()?;
    let files = super::files::files_json_for(conn, found.iter().map(|(id, ..)| *id))?;
    let mut rows: Vec<(u64, String)> = found
        .iter()
        .map(|(id, sender, text, ts, edited_ts)| {
            let files = files
                .get(id)
                .and_then(|json| serde_json::from_str::<&RawValue>(json).ok());
            let event = Event::Message {
                room: room_name,
                id: *id,
                from: sender,
                text,
                ts: *ts,
                edited_ts: *edited_ts,
                files,
            };
            (*id, event.to_json())
        })
        .collect();
    rows.reverse();
    Ok(rows)
}
