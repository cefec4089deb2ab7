//! Moderation on disk: the migration (edited messages, rooms' owners, bans, suspensions,
//! the audit log), the hub's writes (bans, suspensions, audit entries, a deleted room's
//! leftovers), the message lookup that `edit` and `delete` wait for and their change, which
//! is kept before anyone is told of it, loading bans and suspensions at start, and `papo audit`.
//!
//! The hub keeps bans and suspensions in memory (few, and needed at every `join` and
//! sign-in) and is their authority while it runs; these tables are what a restart starts
//! from. Messages are not all in memory, so who wrote message 17, and where, is asked
//! here (`MessageQuery`), in the store's order: a lookup sees every message queued before it.

use crate::ids::ConnId;
use crate::protocol::Ref;
use crate::store::Store;
use rusqlite::{params, Connection, OptionalExtension};
use std::cell::OnceCell;

/// Migration: messages gain `edited_ts`; rooms gain `owner_account` (filled in for rooms an
/// account made before it: the account of the creator's exact name, registered before the
/// room was made, so a guest who once used that name never becomes an owner); bans,
/// suspensions, and the audit log of every moderation action (never message text).
pub const MIGRATION: &str = "ALTER TABLE messages ADD COLUMN edited_ts INTEGER;
     ALTER TABLE rooms ADD COLUMN owner_account INTEGER;
     UPDATE rooms SET owner_account = (
         SELECT a.id FROM accounts a
         WHERE a.name = rooms.creator AND a.created_at <= rooms.created_at LIMIT 1);
     CREATE TABLE bans (
         room_id    INTEGER NOT NULL,
         account_id INTEGER,
         name_key   TEXT,
         address    TEXT,
         name       TEXT NOT NULL,
         until      INTEGER,
         by_name    TEXT NOT NULL,
         at         INTEGER NOT NULL
     );
     CREATE INDEX bans_by_room ON bans(room_id);
     CREATE TABLE suspensions (
         account_id INTEGER PRIMARY KEY,
         until      INTEGER,
         by_name    TEXT NOT NULL,
         at         INTEGER NOT NULL
     );
     CREATE TABLE moderation_log (
         id         INTEGER PRIMARY KEY AUTOINCREMENT,
         at         INTEGER NOT NULL,
         actor      TEXT NOT NULL,
         action     TEXT NOT NULL,
         target     TEXT,
         room       TEXT,
         message_id INTEGER,
         until      INTEGER
     );
     CREATE INDEX moderation_log_by_time ON moderation_log(at);";

/// A ban as stored: on an account, or on a guest's name and the address it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBan {
    /// The room it keeps the user out of.
    pub room_id: i64,
    /// The banned account, for an account.
    pub account_id: Option<i64>,
    /// The banned guest name's fold key (`protocol::fold`), for a guest.
    pub name_key: Option<String>,
    /// The address the banned guest connected from (`ClientAddress` as text).
    pub address: Option<String>,
    /// The name as shown, for `unban` replies and the operator.
    pub name: String,
    /// When it ends (ms since the epoch); `None` until `unban`.
    pub until: Option<u64>,
    /// The moderator who set it.
    pub by: String,
    /// When it was set (ms since the epoch).
    pub at: u64,
}

/// One moderation action, for the audit log: who, what, to whom, where, when. Never
/// message text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When (ms since the epoch).
    pub at: u64,
    /// Who did it (the account's name).
    pub actor: String,
    /// What: `edit`, `delete`, `kick`, `ban`, `unban`, `delete_room`, `suspend`,
    /// `unsuspend`.
    pub action: &'static str,
    /// To whom: the user acted on, or a message's author.
    pub target: Option<String>,
    /// In which room (its name), if any.
    pub room: Option<String>,
    /// Which message, for `edit` and `delete`.
    pub message_id: Option<u64>,
    /// When a ban or suspension ends (ms), if it ends.
    pub until: Option<u64>,
}

/// A change the hub decided, kept by the store thread in its batches.
#[derive(Debug, Clone)]
pub enum ModerationWrite {
    /// A room an account made: that account owns it (queued right behind its creation).
    SetOwner { room_id: i64, account_id: i64 },
    /// A room deleted by a moderator: its memberships and read marks go (the room, its
    /// messages and its bans go with the `StoreJob::DeleteRoom` queued right after it).
    PurgeRoom { room_id: i64 },
    /// A ban set (replacing one on the same user in the same room).
    SetBan(StoredBan),
    /// Bans lifted: an account's, or a guest name's, and (for a guest online) any on the
    /// address it connects from.
    RemoveBan {
        room_id: i64,
        account_id: Option<i64>,
        name_key: Option<String>,
        address: Option<String>,
    },
    /// An account suspended until `until` (`None`: until `unsuspend`).
    Suspend {
        account_id: i64,
        until: Option<u64>,
        by: String,
        at: u64,
    },
    /// A suspension lifted.
    Unsuspend { account_id: i64 },
    /// Bans and suspensions ended by `now` (ms) are dropped.
    Expire { now: u64 },
    /// An action for the audit log.
    Audit(AuditEntry),
}

/// What `edit` or `delete` will do once the message is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageAction {
    /// Its text becomes `text` (already trimmed and checked).
    Edit { text: String },
    /// It goes, text and row.
    Delete,
}

/// A message as `edit` and `delete` need it: where it is and who wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundMessage {
    /// The message's id.
    pub id: u64,
    /// Its room, for a room message.
    pub room_id: Option<i64>,
    /// The name it was sent under.
    pub sender: String,
    /// The sender's account (a guest has none).
    pub sender_account: Option<i64>,
    /// A DM's recipient name.
    pub recipient: Option<String>,
    /// A DM's recipient account (only DMs between accounts are kept).
    pub recipient_account: Option<i64>,
    /// When it was sent (ms): an edited room message's JSON keeps it.
    pub ts: u64,
    /// Its files' summaries as a JSON array (none: `None`): an edited message keeps them.
    pub files: Option<String>,
}

/// A lookup of message `id` for connection `conn`'s `edit` or `delete`; the store fills in
/// `found` and the hub hears back with `StoreDone::MessageLooked`.
#[derive(Debug)]
pub struct MessageQuery {
    /// The asking connection: its later commands wait for the answer.
    pub conn: ConnId,
    /// The message asked for.
    pub id: u64,
    /// What the connection asked to do with it, carried back to the hub.
    pub action: MessageAction,
    /// The command's ref, for its reply.
    pub reference: Option<Ref>,
    /// Set by the store: the message, or `None` when there is no such message.
    pub found: OnceCell<Option<FoundMessage>>,
}

/// The store's answer to a `MessageQuery`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageAnswer {
    /// The asking connection.
    pub conn: ConnId,
    /// The message asked for.
    pub id: u64,
    /// What the connection asked to do with it.
    pub action: MessageAction,
    /// The command's ref, for its reply.
    pub reference: Option<Ref>,
    /// `Ok(None)`: no such message; `Err(())`: the database could not be read.
    pub found: Result<Option<FoundMessage>, ()>,
}

impl MessageQuery {
    pub(super) fn answer(self, ok: bool) -> MessageAnswer {
        let found = match (ok, self.found.into_inner()) {
            (true, Some(found)) => Ok(found),
            _ => Err(()),
        };
        MessageAnswer {
            conn: self.conn,
            id: self.id,
            action: self.action,
            reference: self.reference,
            found,
        }
    }
}

/// An `edit` or `delete` the hub has allowed, on its way to the disk. Nobody is told of it
/// before it is kept (`StoreDone::MessageChanged`): a deletion told as done but lost with a
/// failing disk would bring the message back at the next start, unseen by its moderator.
/// The asking connection's later commands wait for it, as they waited for the lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageChange {
    /// The asking connection.
    pub conn: ConnId,
    /// The message, as the lookup found it.
    pub found: FoundMessage,
    /// The new text, or the deletion.
    pub action: MessageAction,
    /// When it was edited (ms since the epoch); unused for a deletion.
    pub edited_ts: u64,
    /// Who asked, as the audit log names them (an account, or a guest's name).
    pub actor: String,
    /// The command's ref, for its reply.
    pub reference: Option<Ref>,
}

/// Keeps an edit (the new text) or a deletion (the row goes, its text is not kept
/// anywhere, and its files go too: their ids in `removed`, their bytes once committed),
/// inside the batch's transaction.
pub(super) fn change_message(
    conn: &Connection,
    change: &MessageChange,
    removed: &mut super::files::Removed,
) -> rusqlite::Result<()> {
    let id = change.found.id as i64;
    match &change.action {
        MessageAction::Edit { text } => {
            conn.prepare_cached("UPDATE messages SET text = ?2, edited_ts = ?3 WHERE id = ?1")?
                .execute(params![id, text, change.edited_ts as i64])?;
        }
        MessageAction::Delete => {
            // The message's files go with it, in the same transaction as the row (the one
            // place a message is deleted); a file another message also carries stays.
            super::files::remove_for_messages(conn, &[change.found.id], removed)?;
            conn.prepare_cached("DELETE FROM messages WHERE id = ?1")?
                .execute([id])?;
        }
    }
    Ok(())
}

/// Rooms' owners, and bans and suspensions in force, at start.
#[derive(Debug, Default)]
pub struct LoadedModeration {
    /// (room, account): rooms an account made.
    pub owners: Vec<(i64, i64)>,
    /// Bans that have not ended.
    pub bans: Vec<StoredBan>,
    /// (account, until): suspended accounts.
    pub suspensions: Vec<(i64, Option<u64>)>,
}

/// The bans and suspensions that have not ended by `now` (ms).
pub fn load(conn: &Connection, now: u64) -> rusqlite::Result<LoadedModeration> {
    let now = now as i64;
    let mut q = conn.prepare(
        "SELECT room_id, account_id, name_key, address, name, until, by_name, at FROM bans
         WHERE until IS NULL OR until > ?1 ORDER BY rowid",
    )?;
    let bans = q
        .query_map([now], |row| {
            Ok(StoredBan {
                room_id: row.get(0)?,
                account_id: row.get(1)?,
                name_key: row.get(2)?,
                address: row.get(3)?,
                name: row.get(4)?,
                until: row.get::<_, Option<i64>>(5)?.map(|u| u as u64),
                by: row.get(6)?,
                at: row.get::<_, i64>(7)? as u64,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut q = conn
        .prepare("SELECT account_id, until FROM suspensions WHERE until IS NULL OR until > ?1")?;
    let suspensions = q
        .query_map([now], |row| {
            Ok((row.get(0)?, row.get::<_, Option<i64>>(1)?.map(|u| u as u64)))
        })?
        .collect::<Result<_, _>>()?;
    let mut q =
        conn.prepare("SELECT id, owner_account FROM rooms WHERE owner_account IS NOT NULL")?;
    let owners = q
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(LoadedModeration {
        owners,
        bans,
        suspensions,
    })
}

/// Finds a message for `edit` or `delete` (inside the batch's transaction, so it sees every
/// message queued before it).
pub(super) fn look_up(conn: &Connection, query: &MessageQuery) -> rusqlite::Result<()> {
    let found = conn
        .prepare_cached(
            "SELECT id, room_id, sender, sender_account, recipient, recipient_account, ts
             FROM messages WHERE id = ?1",
        )?
        .query_row([query.id.min(i64::MAX as u64) as i64], |row| {
            Ok(FoundMessage {
                id: row.get::<_, i64>(0)? as u64,
                room_id: row.get(1)?,
                sender: row.get(2)?,
                sender_account: row.get(3)?,
                recipient: row.get(4)?,
                recipient_account: row.get(5)?,
                ts: row.get::<_, i64>(6)? as u64,
                files: None,
            })
        })
        .optional()?;
    let found = match found {
        Some(mut message) => {
            message.files =
                super::files::files_json_for(conn, [message.id].into_iter())?.remove(&message.id);
            Some(message)
        }
        None => None,
    };
    let _ = query.found.set(found);
    Ok(())
}

/// Applies one of the hub's writes inside the store's batch transaction.
pub(super) fn apply(tx: &Connection, write: &ModerationWrite) -> rusqlite::Result<()> {
    match write {
        ModerationWrite::SetOwner {
            room_id,
            account_id,
        } => {
            tx.prepare_cached("UPDATE rooms SET owner_account = ?2 WHERE id = ?1")?
                .execute(params![room_id, account_id])?;
        }
        ModerationWrite::PurgeRoom { room_id } => {
            // The files of the room's messages go with `StoreJob::DeleteRoom`, queued right
            // after this, which deletes the messages.
            for table in ["memberships", "read_marks"] {
                tx.prepare_cached(&format!("DELETE FROM {table} WHERE room_id = ?1"))?
                    .execute([room_id])?;
            }
        }
        ModerationWrite::SetBan(ban) => {
            remove_ban(tx, ban.room_id, ban.account_id, ban.name_key.as_deref())?;
            tx.prepare_cached(
                "INSERT INTO bans (room_id, account_id, name_key, address, name, until, by_name, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                ban.room_id,
                ban.account_id,
                ban.name_key,
                ban.address,
                ban.name,
                ban.until.map(|u| u as i64),
                ban.by,
                ban.at as i64
            ])?;
        }
        ModerationWrite::RemoveBan {
            room_id,
            account_id,
            name_key,
            address,
        } => {
            remove_ban(tx, *room_id, *account_id, name_key.as_deref())?;
            if let Some(address) = address {
                tx.prepare_cached("DELETE FROM bans WHERE room_id = ?1 AND address = ?2")?
                    .execute(params![room_id, address])?;
            }
        }
        ModerationWrite::Suspend {
            account_id,
            until,
            by,
            at,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO suspensions (account_id, until, by_name, at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![account_id, until.map(|u| u as i64), by, *at as i64])?;
        }
        ModerationWrite::Unsuspend { account_id } => {
            tx.prepare_cached("DELETE FROM suspensions WHERE account_id = ?1")?
                .execute([account_id])?;
        }
        ModerationWrite::Expire { now } => {
            for table in ["bans", "suspensions"] {
                tx.prepare_cached(&format!(
                    "DELETE FROM {table} WHERE until IS NOT NULL AND until <= ?1"
                ))?
                .execute([*now as i64])?;
            }
        }
        ModerationWrite::Audit(entry) => {
            tx.prepare_cached(
                "INSERT INTO moderation_log (at, actor, action, target, room, message_id, until)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                entry.at as i64,
                entry.actor,
                entry.action,
                entry.target,
                entry.room,
                entry.message_id.map(|id| id as i64),
                entry.until.map(|u| u as i64)
            ])?;
        }
    }
    Ok(())
}

fn remove_ban(
    tx: &Connection,
    room_id: i64,
    account_id: Option<i64>,
    name_key: Option<&str>,
) -> rusqlite::Result<()> {
    match (account_id, name_key) {
        (Some(account), _) => tx
            .prepare_cached("DELETE FROM bans WHERE room_id = ?1 AND account_id = ?2")?
            .execute(params![room_id, account]),
        (None, Some(key)) => tx
            .prepare_cached("DELETE FROM bans WHERE room_id = ?1 AND name_key = ?2")?
            .execute(params![room_id, key]),
        (None, None) => Ok(0),
    }?;
    Ok(())
}

// ----- `papo audit`, run on the file from the command line. -----

/// The newest `limit` audit entries, newest first, one per line with a header:
/// time (UTC), who, what, to whom, room, and the message id or when a ban ends.
pub fn audit(db: &str, limit: usize) -> Result<String, String> {
    let mut store = Store::open(db).map_err(|e| format!("database {db}: {e}"))?;
    let failed = |e: rusqlite::Error| format!("database {db}: {e}");
    let conn = store.connection();
    let mut q = conn
        .prepare(
            "SELECT at, actor, action, target, room, message_id, until FROM moderation_log
             ORDER BY id DESC LIMIT ?1",
        )
        .map_err(failed)?;
    let rows: Vec<[String; 6]> = q
        .query_map([limit.min(i64::MAX as usize) as i64], |row| {
            let at: i64 = row.get(0)?;
            let message: Option<i64> = row.get(5)?;
            let until: Option<i64> = row.get(6)?;
            let detail = match (message, until) {
                (Some(id), _) => format!("message {id}"),
                (None, Some(until)) => format!("until {}", utc(until.max(0) as u64)),
                (None, None) => String::new(),
            };
            Ok([
                utc(at.max(0) as u64),
                row.get(1)?,
                row.get(2)?,
                row.get::<_, Option<String>>(3)?.unwrap_or_default(),
                row.get::<_, Option<String>>(4)?.unwrap_or_default(),
                detail,
            ])
        })
        .and_then(|rows| rows.collect::<Result<_, _>>())
        .map_err(failed)?;
    Ok(table(&rows))
}

/// Rows under a header, in columns as wide as their widest cell (names are escaped, so a
/// name cannot forge a line).
fn table(rows: &[[String; 6]]) -> String {
    let header = ["time (UTC)", "who", "action", "target", "room", "detail"].map(String::from);
    let escaped: Vec<[String; 6]> = rows
        .iter()
        .map(|row| row.clone().map(|cell| cell.escape_debug().to_string()))
        .collect();
    let all: Vec<&[String; 6]> = std::iter::once(&header).chain(escaped.iter()).collect();
    let widths: Vec<usize> = (0..6)
        .map(|i| all.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in all {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out.trim_end().to_string()
}

/// `YYYY-MM-DD HH:MM:SS` in UTC for ms since the epoch (by the `time` crate, which
/// simple_logger already brings).
pub fn utc(ms: u64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_764_000_000_000), "2025-11-24 16:00:00");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00");
    }

    #[test]
    fn the_table_lines_up_and_escapes_names() {
        let rows = vec![[
            "2025-11-24 16:00:00".to_string(),
            "Ana".into(),
            "kick".into(),
            "Be\nto".into(),
            "jogos".into(),
            String::new(),
        ]];
        let out = table(&rows);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(lines[1].contains("Be\\nto"), "{out}");
        assert_eq!(lines[0].find("who"), lines[1].find("Ana"));
    }
}
