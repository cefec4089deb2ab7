//! Accounts on disk: the tables (accounts, sessions, memberships, read marks, invites, and
//! the change log the operator's commands write), loading them at start, the hub's writes,
//! `dm_history`, and polling for changes another process (`papo user …`) made to the file.
//!
//! The hub keeps every account and session in memory and is the authority while it runs;
//! these tables are what a restart starts from. Commands run from the command line write
//! the tables directly and append a row to `account_changes`, which the store thread reads
//! back (it notices them through `PRAGMA data_version`) and hands to the hub.

use crate::outbox::{EncodedFrame, Outbox};
use crate::protocol::{Event, Ref};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::value::RawValue;

/// Migration 1 → 2: accounts and what hangs off them. DMs gain the accounts of both ends,
/// so `dm_history` finds the messages two accounts exchanged, and never a guest's.
pub const MIGRATION: &str = "CREATE TABLE accounts (
         id            INTEGER PRIMARY KEY,
         name          TEXT NOT NULL,
         name_key      TEXT NOT NULL UNIQUE,
         password_hash TEXT NOT NULL,
         admin         INTEGER NOT NULL DEFAULT 0,
         created_at    INTEGER NOT NULL
     );
     CREATE TABLE sessions (
         id         INTEGER PRIMARY KEY,
         account_id INTEGER NOT NULL,
         token_hash BLOB NOT NULL UNIQUE,
         created_at INTEGER NOT NULL,
         last_seen  INTEGER NOT NULL,
         agent      TEXT NOT NULL
     );
     CREATE INDEX sessions_by_account ON sessions(account_id);
     CREATE TABLE memberships (
         account_id INTEGER NOT NULL,
         room_id    INTEGER NOT NULL,
         PRIMARY KEY (account_id, room_id)
     ) WITHOUT ROWID;
     CREATE TABLE read_marks (
         account_id INTEGER NOT NULL,
         room_id    INTEGER NOT NULL,
         partner_id INTEGER NOT NULL,
         last_read  INTEGER NOT NULL,
         PRIMARY KEY (account_id, room_id, partner_id)
     ) WITHOUT ROWID;
     CREATE TABLE invites (
         code_hash  BLOB PRIMARY KEY,
         created_at INTEGER NOT NULL,
         expires_at INTEGER NOT NULL
     );
     CREATE TABLE account_changes (
         id       INTEGER PRIMARY KEY AUTOINCREMENT,
         kind     TEXT NOT NULL,
         name_key TEXT NOT NULL,
         at       INTEGER NOT NULL
     );
     CREATE TABLE id_high_water (
         one     INTEGER PRIMARY KEY CHECK (one = 1),
         last_id INTEGER NOT NULL
     );
     ALTER TABLE messages ADD COLUMN sender_account INTEGER;
     ALTER TABLE messages ADD COLUMN recipient_account INTEGER;
     CREATE INDEX messages_by_conversation
         ON messages(sender_account, recipient_account, id)
         WHERE recipient_account IS NOT NULL;";

/// An account as stored.
#[derive(Debug, Clone)]
pub struct StoredAccount {
    /// Random, positive (see `accounts::AccountId`).
    pub id: i64,
    /// As registered; its key (`protocol::fold`) is what must be unique.
    pub name: String,
    /// The argon2id PHC string.
    pub password_hash: String,
    /// The server's admin (the first account, or as the operator set it).
    pub admin: bool,
    /// When it was made (ms since the epoch).
    pub created_at: u64,
}

/// A session as stored: only the SHA-256 of its token, never the token.
#[derive(Debug, Clone)]
pub struct StoredSession {
    /// Random, positive: what `revoke` names it by.
    pub id: i64,
    /// The account it signs in.
    pub account_id: i64,
    /// SHA-256 of the token in the cookie.
    pub token_hash: [u8; 32],
    /// When it began (ms since the epoch).
    pub created_at: u64,
    /// When it was last used (ms, coarse): it ends `--session-days` after this.
    pub last_seen: u64,
    /// The `User-Agent` it signed in with.
    pub agent: String,
}

/// A read mark: on a room (`room_id`) or on the conversation with `partner_id`.
#[derive(Debug, Clone, Copy)]
pub struct StoredReadMark {
    /// Whose mark it is.
    pub account_id: i64,
    /// The room it is on (0 in the table when it is on a conversation).
    pub room_id: Option<i64>,
    /// The other account of the conversation it is on (0 in the table for a room).
    pub partner_id: Option<i64>,
    /// The newest message id read.
    pub last_read: u64,
}

/// Everything about accounts the hub starts from.
#[derive(Debug, Default)]
pub struct LoadedAccounts {
    /// Every account.
    pub accounts: Vec<StoredAccount>,
    /// Every session (expired ones end at their first use or the next housekeeping).
    pub sessions: Vec<StoredSession>,
    /// (account, room) pairs: rooms each account is a member of.
    pub memberships: Vec<(i64, i64)>,
    /// Every read mark.
    pub read_marks: Vec<StoredReadMark>,
    /// Every room message as (room, id), in id order: unread counts are counted from them.
    pub room_message_ids: Vec<(i64, u64)>,
    /// Every DM between two accounts as (id, sender, recipient), in id order.
    pub dm_ids: Vec<(u64, i64, i64)>,
    /// Unused invites: (hash of the code, expiry in ms since the epoch).
    pub invites: Vec<([u8; 32], u64)>,
    /// The newest row of `account_changes` already reflected in this load.
    pub last_change: i64,
}

/// A change to accounts the hub asked for, kept by the store thread in its batches.
#[derive(Debug, Clone)]
pub enum AccountWrite {
    CreateAccount(StoredAccount),
    SetPassword {
        account_id: i64,
        password_hash: String,
    },
    CreateSession(StoredSession),
    /// Sessions ended (logout, revoke, password change, expiry).
    DeleteSessions(Vec<i64>),
    /// Coarse `last_seen` updates: (session, ms since the epoch).
    TouchSessions(Vec<(i64, u64)>),
    AddMembership {
        account_id: i64,
        room_id: i64,
    },
    RemoveMembership {
        account_id: i64,
        room_id: i64,
    },
    SetReadMark(StoredReadMark),
    /// A single-use invite was spent.
    UseInvite([u8; 32]),
    /// The admin made an invite: (hash of the code, expiry in ms).
    CreateInvite([u8; 32], u64),
}

/// A `dm_history` query, answered straight to the asking connection.
#[derive(Debug)]
pub struct DmHistoryQuery {
    /// The asking account.
    pub me: i64,
    /// The account at the other end.
    pub partner: i64,
    /// The partner's name as the reply spells it.
    pub partner_name: String,
    /// Only DMs with an id below this (absent: the newest).
    pub before: Option<u64>,
    /// At most this many (1 to 100).
    pub limit: usize,
    /// The command's ref, for the reply.
    pub reference: Option<Ref>,
    /// The asking connection, answered straight from the store.
    pub reply: Outbox,
}

/// A change someone else made to the database, for the hub to apply.
#[derive(Debug, Clone)]
pub enum AccountChange {
    /// Added, or its password or admin flag changed. `password_reset` ends its sessions.
    Upsert {
        account: StoredAccount,
        password_reset: bool,
    },
    /// Deleted (with its sessions); identified by its name key as of the deletion.
    Deleted { name_key: String },
    /// The set of valid invites changed (one was made).
    Invites(Vec<([u8; 32], u64)>),
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn blob32(bytes: Vec<u8>) -> [u8; 32] {
    let mut out = [0u8; 32];
    if bytes.len() == 32 {
        out.copy_from_slice(&bytes);
    }
    out
}

fn nonzero(v: i64) -> Option<i64> {
    (v != 0).then_some(v)
}

pub fn load(conn: &Connection) -> rusqlite::Result<LoadedAccounts> {
    let mut loaded = LoadedAccounts::default();
    let mut q = conn.prepare("SELECT id, name, password_hash, admin, created_at FROM accounts")?;
    loaded.accounts = q.query_map([], account_row)?.collect::<Result<_, _>>()?;
    let mut q = conn
        .prepare("SELECT id, account_id, token_hash, created_at, last_seen, agent FROM sessions")?;
    loaded.sessions = q
        .query_map([], |row| {
            Ok(StoredSession {
                id: row.get(0)?,
                account_id: row.get(1)?,
                token_hash: blob32(row.get(2)?),
                created_at: row.get::<_, i64>(3)? as u64,
                last_seen: row.get::<_, i64>(4)? as u64,
                agent: row.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut q = conn.prepare("SELECT account_id, room_id FROM memberships")?;
    loaded.memberships = q
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut q =
        conn.prepare("SELECT account_id, room_id, partner_id, last_read FROM read_marks")?;
    loaded.read_marks = q
        .query_map([], |row| {
            Ok(StoredReadMark {
                account_id: row.get(0)?,
                room_id: nonzero(row.get(1)?),
                partner_id: nonzero(row.get(2)?),
                last_read: row.get::<_, i64>(3)? as u64,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut q =
        conn.prepare("SELECT room_id, id FROM messages WHERE room_id IS NOT NULL ORDER BY id")?;
    loaded.room_message_ids = q
        .query_map([], |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as u64)))?
        .collect::<Result<_, _>>()?;
    let mut q = conn.prepare(
        "SELECT id, sender_account, recipient_account FROM messages
         WHERE recipient_account IS NOT NULL AND sender_account IS NOT NULL ORDER BY id",
    )?;
    loaded.dm_ids = q
        .query_map([], |row| {
            Ok((row.get::<_, i64>(0)? as u64, row.get(1)?, row.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    loaded.invites = load_invites(conn)?;
    loaded.last_change = last_change(conn)?;
    Ok(loaded)
}

fn account_row(row: &rusqlite::Row) -> rusqlite::Result<StoredAccount> {
    Ok(StoredAccount {
        id: row.get(0)?,
        name: row.get(1)?,
        password_hash: row.get(2)?,
        admin: row.get::<_, i64>(3)? != 0,
        created_at: row.get::<_, i64>(4)? as u64,
    })
}

fn load_invites(conn: &Connection) -> rusqlite::Result<Vec<([u8; 32], u64)>> {
    let now = now_ms() as i64;
    let mut q = conn.prepare("SELECT code_hash, expires_at FROM invites WHERE expires_at > ?1")?;
    let rows = q
        .query_map([now], |row| {
            Ok((blob32(row.get(0)?), row.get::<_, i64>(1)? as u64))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

fn last_change(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT coalesce(max(id), 0) FROM account_changes",
        [],
        |row| row.get(0),
    )
}

/// Applies one of the hub's writes inside the store's batch transaction.
pub fn apply(tx: &Connection, write: AccountWrite) -> rusqlite::Result<()> {
    match write {
        AccountWrite::CreateAccount(a) => {
            tx.prepare_cached(
                "INSERT INTO accounts (id, name, name_key, password_hash, admin, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                a.id,
                a.name,
                crate::protocol::fold(&a.name),
                a.password_hash,
                a.admin as i64,
                a.created_at as i64
            ])?;
        }
        AccountWrite::SetPassword {
            account_id,
            password_hash,
        } => {
            tx.prepare_cached("UPDATE accounts SET password_hash = ?2 WHERE id = ?1")?
                .execute(params![account_id, password_hash])?;
        }
        AccountWrite::CreateSession(s) => {
            tx.prepare_cached(
                "INSERT INTO sessions (id, account_id, token_hash, created_at, last_seen, agent)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                s.id,
                s.account_id,
                &s.token_hash[..],
                s.created_at as i64,
                s.last_seen as i64,
                s.agent
            ])?;
        }
        AccountWrite::DeleteSessions(ids) => {
            let mut delete = tx.prepare_cached("DELETE FROM sessions WHERE id = ?1")?;
            for id in ids {
                delete.execute([id])?;
            }
        }
        AccountWrite::TouchSessions(seen) => {
            let mut touch =
                tx.prepare_cached("UPDATE sessions SET last_seen = ?2 WHERE id = ?1")?;
            for (id, at) in seen {
                touch.execute(params![id, at as i64])?;
            }
        }
        AccountWrite::AddMembership {
            account_id,
            room_id,
        } => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO memberships (account_id, room_id) VALUES (?1, ?2)",
            )?
            .execute(params![account_id, room_id])?;
        }
        AccountWrite::RemoveMembership {
            account_id,
            room_id,
        } => {
            tx.prepare_cached("DELETE FROM memberships WHERE account_id = ?1 AND room_id = ?2")?
                .execute(params![account_id, room_id])?;
        }
        AccountWrite::SetReadMark(m) => {
            tx.prepare_cached(
                "INSERT INTO read_marks (account_id, room_id, partner_id, last_read)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (account_id, room_id, partner_id)
                 DO UPDATE SET last_read = max(last_read, excluded.last_read)",
            )?
            .execute(params![
                m.account_id,
                m.room_id.unwrap_or(0),
                m.partner_id.unwrap_or(0),
                m.last_read as i64
            ])?;
        }
        AccountWrite::CreateInvite(hash, expires_at) => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO invites (code_hash, created_at, expires_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![&hash[..], now_ms() as i64, expires_at as i64])?;
        }
        AccountWrite::UseInvite(hash) => {
            tx.prepare_cached("DELETE FROM invites WHERE code_hash = ?1")?
                .execute([&hash[..]])?;
        }
    }
    Ok(())
}

/// Answers a `dm_history` query, oldest first, inside the batch's transaction (so it sees
/// every DM written before it). Returns the reply for the asking connection.
pub fn dm_history(
    tx: &Connection,
    q: &DmHistoryQuery,
) -> rusqlite::Result<std::sync::Arc<EncodedFrame>> {
    let before = q
        .before
        .map(|b| b.min(i64::MAX as u64) as i64)
        .unwrap_or(i64::MAX);
    let mut query = tx.prepare_cached(
        "SELECT id, sender, recipient, text, ts, edited_ts FROM messages
         WHERE id < ?3 AND ((sender_account = ?1 AND recipient_account = ?2)
                         OR (sender_account = ?2 AND recipient_account = ?1))
         ORDER BY id DESC LIMIT ?4",
    )?;
    type Row = (u64, String, Option<String>, String, u64, Option<u64>);
    let found: Vec<Row> = query
        .query_map(params![q.me, q.partner, before, q.limit as i64], |row| {
            Ok((
                row.get::<_, i64>(0)? as u64,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get::<_, i64>(4)? as u64,
                row.get::<_, Option<i64>>(5)?.map(|t| t as u64),
            ))
        })?
        .collect::<Result<_, _>>()?;
    let files = super::files::files_json_for(tx, found.iter().map(|(id, ..)| *id))?;
    let mut rows: Vec<String> = found
        .iter()
        .map(|(id, sender, recipient, text, ts, edited_ts)| {
            Event::Dm {
                id: *id,
                edited_ts: *edited_ts,
                from: sender,
                to: recipient.as_deref().unwrap_or_default(),
                text,
                ts: *ts,
                files: files
                    .get(id)
                    .and_then(|json| serde_json::from_str::<&RawValue>(json).ok()),
                reference: None,
            }
            .to_json()
        })
        .collect();
    rows.reverse();
    let raw: Vec<&RawValue> = rows
        .iter()
        .filter_map(|json| serde_json::from_str(json).ok())
        .collect();
    let json = Event::DmHistory {
        with: &q.partner_name,
        messages: raw,
        reference: q.reference.as_ref(),
    }
    .to_json();
    Ok(EncodedFrame::text(&json))
}

/// Watches the file for commits by other processes and reads the change log they wrote.
pub struct ChangeWatch {
    /// `PRAGMA data_version` when last looked: it moves only when another connection
    /// commits, so the poll costs one pragma while nobody else writes.
    data_version: i64,
    /// The newest change-log row already handed to the hub.
    last_change: i64,
}

impl ChangeWatch {
    pub fn new(conn: &Connection, last_change: i64) -> rusqlite::Result<ChangeWatch> {
        Ok(ChangeWatch {
            data_version: data_version(conn)?,
            last_change,
        })
    }

    /// The changes made by others since the last poll (usually none).
    pub fn poll(&mut self, conn: &Connection) -> rusqlite::Result<Vec<AccountChange>> {
        let version = data_version(conn)?;
        if version == self.data_version {
            return Ok(Vec::new());
        }
        self.data_version = version;
        let mut q = conn.prepare_cached(
            "SELECT id, kind, name_key FROM account_changes WHERE id > ?1 ORDER BY id",
        )?;
        let rows: Vec<(i64, String, String)> = q
            .query_map([self.last_change], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut changes = Vec::new();
        for (id, kind, name_key) in rows {
            self.last_change = id;
            if kind == "invite" {
                changes.push(AccountChange::Invites(load_invites(conn)?));
                continue;
            }
            let account = conn
                .query_row(
                    "SELECT id, name, password_hash, admin, created_at FROM accounts WHERE name_key = ?1",
                    [&name_key],
                    account_row,
                )
                .optional()?;
            changes.push(match account {
                Some(account) => AccountChange::Upsert {
                    account,
                    password_reset: kind == "passwd",
                },
                None => AccountChange::Deleted { name_key },
            });
        }
        Ok(changes)
    }
}

fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "data_version", |row| row.get(0))
}

// ----- The operator's commands, run on the file from the command line. -----

/// Records a change for a running server to pick up.
fn log_change(conn: &Connection, kind: &str, name_key: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO account_changes (kind, name_key, at) VALUES (?1, ?2, ?3)",
        params![kind, name_key, now_ms() as i64],
    )?;
    Ok(())
}

/// Whether an account of this name (by key) exists.
pub fn find(conn: &Connection, name_key: &str) -> rusqlite::Result<Option<StoredAccount>> {
    conn.query_row(
        "SELECT id, name, password_hash, admin, created_at FROM accounts WHERE name_key = ?1",
        [name_key],
        account_row,
    )
    .optional()
}

/// Adds an account; the first one ever is the admin. False if the name is taken.
pub fn add(conn: &mut Connection, account: &StoredAccount) -> rusqlite::Result<bool> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let key = crate::protocol::fold(&account.name);
    if find(&tx, &key)?.is_some() {
        return Ok(false);
    }
    let first: bool = tx.query_row("SELECT count(*) = 0 FROM accounts", [], |r| r.get(0))?;
    let mut account = account.clone();
    account.admin = account.admin || first;
    apply(&tx, AccountWrite::CreateAccount(account))?;
    log_change(&tx, "add", &key)?;
    tx.commit()?;
    Ok(true)
}

/// Sets a new password and ends every session of the account. False if there is none.
pub fn set_password(conn: &mut Connection, name_key: &str, phc: &str) -> rusqlite::Result<bool> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let Some(account) = find(&tx, name_key)? else {
        return Ok(false);
    };
    tx.execute(
        "UPDATE accounts SET password_hash = ?2 WHERE id = ?1",
        params![account.id, phc],
    )?;
    tx.execute("DELETE FROM sessions WHERE account_id = ?1", [account.id])?;
    log_change(&tx, "passwd", name_key)?;
    tx.commit()?;
    Ok(true)
}

/// Grants or removes admin. False if there is no such account.
pub fn set_admin(conn: &mut Connection, name_key: &str, admin: bool) -> rusqlite::Result<bool> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let changed = tx.execute(
        "UPDATE accounts SET admin = ?2 WHERE name_key = ?1",
        params![name_key, admin as i64],
    )?;
    if changed == 0 {
        return Ok(false);
    }
    log_change(&tx, "admin", name_key)?;
    tx.commit()?;
    Ok(true)
}

/// Deletes an account with its sessions, memberships and read marks. Its messages stay
/// (they were said), under the name they were said with. False if there is none.
pub fn delete(conn: &mut Connection, name_key: &str) -> rusqlite::Result<bool> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let Some(account) = find(&tx, name_key)? else {
        return Ok(false);
    };
    for table in ["sessions", "memberships", "read_marks"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE account_id = ?1"),
            [account.id],
        )?;
    }
    tx.execute("DELETE FROM accounts WHERE id = ?1", [account.id])?;
    log_change(&tx, "del", name_key)?;
    tx.commit()?;
    Ok(true)
}

/// Every account, in name order.
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<StoredAccount>> {
    let mut q = conn.prepare(
        "SELECT id, name, password_hash, admin, created_at FROM accounts ORDER BY name_key",
    )?;
    let rows = q.query_map([], account_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Keeps a new invite (only the hash of its code).
pub fn add_invite(
    conn: &mut Connection,
    code_hash: [u8; 32],
    expires_at: u64,
) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO invites (code_hash, created_at, expires_at) VALUES (?1, ?2, ?3)",
        params![&code_hash[..], now_ms() as i64, expires_at as i64],
    )?;
    log_change(&tx, "invite", "")?;
    tx.commit()
}
