//! Full-text search over stored messages (PROTOCOL.md 1.1, "Search"): the index, the
//! query built from a person's words, and the answer.
//!
//! The index is an FTS5 table with external content: it keeps only the index, never a
//! second copy of the text, and reads words through the view `message_search_source`.
//! Triggers on `messages` keep it current: an edit or a delete by any code (a plain
//! `UPDATE` or `DELETE`) changes the index in the same statement, so it is reflected at
//! once and a failed statement undoes its index change with it; new messages are indexed
//! with the rest of their batch, in its transaction (see `MIGRATION` for why). Words are cut and folded by
//! `unicode61 remove_diacritics 2`: case and accents are ignored, so "acao" finds "Ação".
//!
//! Who may read what is in the index too: each message carries scope words in a column
//! of their own, `r<room id>` for a room message and `d<account id>` for each end of a DM
//! between accounts (the only DMs kept). A search ANDs the person's words with the scopes
//! they may read, so FTS5 walks matching messages newest first and stops at `limit`,
//! whichever rooms the words are common in. The same permission is checked again on each
//! row in SQL, so a stale scope word can never show a message to someone else.

use crate::ids::{ConnId, RoomId};
use crate::outbox::EncodedFrame;
use crate::protocol::{Event, Ref};
use rusqlite::{params, Connection};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::Arc;

/// The migration that adds the index, fills it from the messages already kept, and keeps
/// it current. The scope of a message is written once, in the view, and everything that
/// writes the index reads it from there.
///
/// New messages are queued by a trigger in `message_search_pending` and indexed together
/// at the end of the batch that wrote them, in the same transaction (`index_pending`):
/// FTS5 writes what it holds in memory to disk at every statement that may need undoing
/// within a transaction, so a trigger indexing each message as it is inserted made one
/// tiny segment per message (measured: writes 4 to 7 times slower; one statement per
/// batch costs a fraction of that). Edits and deletes change the index in their own
/// statement, at once, unless the message still waits in the queue (then the batch's
/// indexing reads its text as it is by then).
pub const MIGRATION: &str = "CREATE VIEW message_search_source AS
         SELECT id, text,
                CASE WHEN room_id IS NOT NULL THEN 'r' || room_id
                     WHEN recipient_account IS NOT NULL
                         THEN 'd' || sender_account || ' d' || recipient_account
                     ELSE '' END AS scope
         FROM messages;
     CREATE VIRTUAL TABLE message_search USING fts5(
         text, scope,
         content = 'message_search_source', content_rowid = 'id',
         tokenize = 'unicode61 remove_diacritics 2',
         prefix = '2 3', columnsize = 0
     );
     INSERT INTO message_search(message_search) VALUES ('rebuild');
     CREATE TABLE message_search_pending (id INTEGER PRIMARY KEY);
     CREATE TRIGGER message_search_insert AFTER INSERT ON messages BEGIN
         INSERT OR IGNORE INTO message_search_pending(id) VALUES (new.id);
     END;
     CREATE TRIGGER message_search_delete BEFORE DELETE ON messages
         WHEN old.id NOT IN (SELECT id FROM message_search_pending) BEGIN
         INSERT INTO message_search(message_search, rowid, text, scope)
             SELECT 'delete', id, text, scope FROM message_search_source WHERE id = old.id;
     END;
     CREATE TRIGGER message_search_update_old
         BEFORE UPDATE OF id, text, room_id, sender_account, recipient_account ON messages
         WHEN old.id NOT IN (SELECT id FROM message_search_pending) BEGIN
         INSERT INTO message_search(message_search, rowid, text, scope)
             SELECT 'delete', id, text, scope FROM message_search_source WHERE id = old.id;
     END;
     CREATE TRIGGER message_search_update_new
         AFTER UPDATE OF id, text, room_id, sender_account, recipient_account ON messages
         WHEN new.id NOT IN (SELECT id FROM message_search_pending) BEGIN
         INSERT INTO message_search(rowid, text, scope)
             SELECT id, text, scope FROM message_search_source WHERE id = new.id;
     END;";

/// Takes the index and its triggers away, for benchmarks that compare the server without
/// it (a build made with `PAPO_BENCH_NO_SEARCH_INDEX`, see `Store::open`); searches then
/// fail with `unavailable`.
pub const DROP_FOR_BENCH: &str = "DROP TRIGGER IF EXISTS message_search_insert;
     DROP TRIGGER IF EXISTS message_search_delete;
     DROP TRIGGER IF EXISTS message_search_update_old;
     DROP TRIGGER IF EXISTS message_search_update_new;
     DROP TABLE IF EXISTS message_search;";

/// Indexes the oldest `at_most` messages waiting in the queue, in one statement (see
/// `MIGRATION`), and takes them out of it; how many it indexed. The caller's transaction
/// makes both one change. `CROSS JOIN` keeps the queue the outer loop: otherwise SQLite
/// carries `id <= ?1` over to `messages` and walks every message up to there.
pub(super) fn index_pending(conn: &Connection, at_most: usize) -> rusqlite::Result<usize> {
    let last: Option<i64> = conn
        .prepare_cached(
            "SELECT max(id) FROM (SELECT id FROM message_search_pending ORDER BY id LIMIT ?1)",
        )?
        .query_row([at_most as i64], |r| r.get(0))?;
    let Some(last) = last else {
        return Ok(0);
    };
    conn.prepare_cached(
        "INSERT INTO message_search(rowid, text, scope)
         SELECT s.id, s.text, s.scope
         FROM message_search_pending p CROSS JOIN message_search_source s ON s.id = p.id
         WHERE p.id <= ?1",
    )?
    .execute([last])?;
    conn.prepare_cached("DELETE FROM message_search_pending WHERE id <= ?1")?
        .execute([last])
}

/// Messages waiting in the queue (at start, for `Store`'s count of them).
pub(super) fn pending_count(conn: &Connection) -> rusqlite::Result<usize> {
    conn.query_row("SELECT count(*) FROM message_search_pending", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n as usize)
}

/// Words shorter than this are matched whole, not as prefixes: a one-letter prefix
/// matches most of the index, and FTS5 gathers every posting of a prefix before it can
/// give the newest. Prefixes of two and three letters have an index of their own
/// (`prefix = '2 3'`), so those answer as fast as whole words; longer ones gather only
/// the few words that start with them.
pub const MIN_PREFIX_CHARS: usize = 2;

/// Scopes ANDed into the full-text query at most; past it (a connection in very many
/// rooms) the rooms are checked row by row in SQL alone, since every scope is one more
/// list each step of FTS5's walk advances.
const MAX_SCOPES_IN_MATCH: usize = 64;

/// A search the hub decided may run: what to look for and where the asker may read.
#[derive(Debug)]
pub struct SearchJob {
    /// Who asked; the answer goes back through the hub, which keeps replies in order.
    pub conn: ConnId,
    /// `q` as sent, for the reply.
    pub q: String,
    /// The words, each matched as a word prefix (see `protocol::search_terms`).
    pub terms: Vec<String>,
    /// The rooms searched, with the names the reply gives them: the ones the connection
    /// has joined, or the one it named.
    pub rooms: Vec<(RoomId, Arc<str>)>,
    /// The asking account, whose DMs are searched too (`None`: a guest, or a search
    /// limited to one room).
    pub account: Option<i64>,
    /// At most this many results.
    pub limit: usize,
    /// The command's ref, for the reply.
    pub reference: Option<Ref>,
}

/// A search's reply, on its way back to the hub for the asking connection.
#[derive(Debug, Clone)]
pub struct SearchAnswer {
    /// Who asked.
    pub conn: ConnId,
    /// The `search` reply, or the `unavailable` error when the index could not be read.
    pub frame: Arc<EncodedFrame>,
}

impl PartialEq for SearchAnswer {
    fn eq(&self, other: &Self) -> bool {
        self.conn == other.conn && self.frame.json() == other.frame.json()
    }
}

impl Eq for SearchAnswer {}

/// The FTS5 query for `terms` within `scopes`: every term quoted (so nothing a person
/// types is read as query syntax) and matched as a prefix (a one-letter term as a whole
/// word), in the `text` column only, all of them required; then any one of the scopes.
pub fn match_expression(terms: &[String], scopes: &[String]) -> String {
    let words: Vec<String> = terms
        .iter()
        .map(|t| {
            let quoted = format!("\"{}\"", t.replace('"', "\"\""));
            if t.chars().count() < MIN_PREFIX_CHARS {
                quoted
            } else {
                quoted + "*"
            }
        })
        .collect();
    let mut expression = format!("{{text}} : ({})", words.join(" AND "));
    if !scopes.is_empty() && scopes.len() <= MAX_SCOPES_IN_MATCH {
        expression.push_str(&format!(" AND {{scope}} : ({})", scopes.join(" OR ")));
    }
    expression
}

/// The scope words `job` may read (see the file's header).
fn scopes(job: &SearchJob) -> Vec<String> {
    let rooms = job.rooms.iter().map(|(id, _)| format!("r{id}"));
    rooms.chain(job.account.map(|a| format!("d{a}"))).collect()
}

/// Runs `job` on `conn` and returns the JSON of its reply: matching messages the asker may
/// read, newest first.
pub fn answer(conn: &Connection, job: &SearchJob) -> rusqlite::Result<String> {
    let scopes = scopes(job);
    if scopes.is_empty() {
        return Ok(reply(job, &[]));
    }
    let rooms: HashMap<RoomId, &str> = job.rooms.iter().map(|(id, n)| (*id, &**n)).collect();
    let room_ids = serde_json::to_string(&rooms.keys().collect::<Vec<_>>()).unwrap_or_default();
    let mut query = conn.prepare_cached(
        "SELECT m.id, m.room_id, m.sender, m.recipient, m.text, m.ts, m.edited_ts
         FROM message_search s JOIN messages m ON m.id = s.rowid
         WHERE message_search MATCH ?1
           AND (m.room_id IN (SELECT value FROM json_each(?2))
                OR (m.room_id IS NULL AND m.recipient_account IS NOT NULL
                    AND ?3 IN (m.sender_account, m.recipient_account)))
         ORDER BY s.rowid DESC LIMIT ?4",
    )?;
    let expression = match_expression(&job.terms, &scopes);
    type Row = (
        u64,
        Option<RoomId>,
        String,
        Option<String>,
        String,
        u64,
        Option<u64>,
    );
    let rows: Vec<Row> = query
        .query_map(
            params![expression, room_ids, job.account, job.limit as i64],
            |row| {
                Ok((
                    row.get::<_, i64>(0)? as u64,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get::<_, i64>(5)? as u64,
                    row.get::<_, Option<i64>>(6)?.map(|t| t as u64),
                ))
            },
        )?
        .collect::<rusqlite::Result<_>>()?;
    // The messages' files, as every other message event carries them.
    let files = super::files::files_json_for(conn, rows.iter().map(|row| row.0))?;
    let found: Vec<String> = rows
        .iter()
        .map(|(id, room_id, sender, recipient, text, ts, edited_ts)| {
            let (id, ts, edited_ts) = (*id, *ts, *edited_ts);
            let files = files
                .get(&id)
                .and_then(|json| serde_json::from_str::<&RawValue>(json).ok());
            match room_id {
                Some(room_id) => Event::Message {
                    room: rooms.get(room_id).copied().unwrap_or_default(),
                    id,
                    from: sender,
                    text,
                    ts,
                    edited_ts,
                    files,
                }
                .to_json(),
                None => Event::Dm {
                    id,
                    from: sender,
                    to: recipient.as_deref().unwrap_or_default(),
                    text,
                    ts,
                    edited_ts,
                    files,
                    reference: None,
                }
                .to_json(),
            }
        })
        .collect();
    Ok(reply(job, &found))
}

fn reply(job: &SearchJob, found: &[String]) -> String {
    let messages: Vec<&RawValue> = found
        .iter()
        .filter_map(|json| serde_json::from_str(json).ok())
        .collect();
    Event::Search {
        q: &job.q,
        messages,
        reference: job.reference.as_ref(),
    }
    .to_json()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox;
    use crate::store::{MessageRecord, NewRoom, Store, StoreDone, StoreJob};
    use serde_json::Value;

    /// A message to store: (id, room, sender account, recipient account, text).
    type Row<'a> = (u64, Option<i64>, Option<i64>, Option<i64>, &'a str);

    /// A `:memory:` store with rooms 1 and 2 and `messages`.
    fn store_with(messages: &[Row]) -> Store {
        let mut store = Store::open(":memory:").unwrap();
        let (author, _inbox) = outbox::channel(64);
        let mut jobs: Vec<StoreJob> = [1, 2]
            .iter()
            .map(|&id| {
                StoreJob::CreateRoom(NewRoom {
                    id,
                    name: format!("sala{id}"),
                    key: format!("sala{id}"),
                    password_hash: None,
                    creator: "Ana".into(),
                    created_at: 0,
                })
            })
            .collect();
        for &(id, room_id, from, to, text) in messages {
            jobs.push(StoreJob::Append {
                record: MessageRecord {
                    id,
                    room_id,
                    sender: "Ana".into(),
                    recipient: to.map(|_| "Beto".into()),
                    sender_account: from,
                    recipient_account: to,
                    text: text.into(),
                    ts: id,
                    files: Vec::new(),
                },
                author: author.clone(),
                ack: None,
            });
        }
        store.apply(jobs);
        store
    }

    fn job(q: &str, rooms: &[i64], account: Option<i64>) -> SearchJob {
        SearchJob {
            conn: 9,
            q: q.into(),
            terms: crate::protocol::search_terms(q).unwrap(),
            rooms: rooms
                .iter()
                .map(|&id| (id, Arc::from(format!("sala{id}"))))
                .collect(),
            account,
            limit: 20,
            reference: None,
        }
    }

    /// The ids a search finds, through the store thread's own path (`apply`).
    fn ids(store: &mut Store, job: SearchJob) -> Vec<u64> {
        let done = store.apply(vec![StoreJob::Search(job)]);
        let [StoreDone::Searched(answer)] = &done[..] else {
            panic!("one answer: {done:?}");
        };
        assert_eq!(answer.conn, 9);
        let reply: Value = serde_json::from_str(answer.frame.json()).unwrap();
        assert_eq!(reply["type"], "search", "{reply}");
        reply["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_u64().unwrap())
            .collect()
    }

    #[test]
    fn the_query_quotes_every_word_and_keeps_it_to_the_text() {
        let terms = vec!["a\"b".to_string(), "ação".to_string(), "é".to_string()];
        assert_eq!(
            match_expression(&terms, &["r1".into(), "d5".into()]),
            "{text} : (\"a\"\"b\"* AND \"ação\"* AND \"é\") AND {scope} : (r1 OR d5)"
        );
    }

    #[test]
    fn scopes_keep_rooms_and_dms_apart() {
        let mut store = store_with(&[
            (1, Some(1), None, None, "bom dia"),
            (2, Some(2), None, None, "bom dia"),
            (3, None, Some(10), Some(20), "bom dia"),
            (4, None, Some(20), Some(30), "bom dia"),
            // A DM from before accounts: nobody's to read.
            (5, None, None, None, "bom dia"),
        ]);
        assert_eq!(ids(&mut store, job("bom", &[1], None)), [1]);
        assert_eq!(ids(&mut store, job("bom", &[1, 2], None)), [2, 1]);
        assert_eq!(ids(&mut store, job("bom", &[], Some(10))), [3]);
        assert_eq!(ids(&mut store, job("bom", &[2], Some(20))), [4, 3, 2]);
        assert_eq!(ids(&mut store, job("bom", &[], Some(30))), [4]);
        assert!(ids(&mut store, job("bom", &[3], Some(40))).is_empty());
        assert!(ids(&mut store, job("bom", &[], None)).is_empty());
    }

    #[test]
    fn many_rooms_are_checked_in_sql() {
        let mut store = store_with(&[(1, Some(1), None, None, "x"), (2, Some(2), None, None, "x")]);
        let rooms: Vec<i64> = (2..2 + MAX_SCOPES_IN_MATCH as i64 + 5).collect();
        assert_eq!(ids(&mut store, job("x", &rooms, None)), [2]);
    }

    #[test]
    fn updates_and_deletes_reach_the_index_in_the_same_statement() {
        let mut store = store_with(&[
            (1, Some(1), None, None, "primeira versão"),
            (2, Some(1), None, None, "apagar isto"),
            (3, Some(2), None, None, "outra sala"),
        ]);
        let conn = store.connection();
        conn.execute(
            "UPDATE messages SET text = 'segunda edição' WHERE id = 1",
            [],
        )
        .unwrap();
        conn.execute("DELETE FROM messages WHERE id = 2", [])
            .unwrap();
        // A message moved to another room (nothing does this today) changes scope too.
        conn.execute("UPDATE messages SET room_id = 1 WHERE id = 3", [])
            .unwrap();
        assert!(ids(&mut store, job("primeira", &[1, 2], None)).is_empty());
        assert_eq!(ids(&mut store, job("edicao", &[1], None)), [1]);
        assert!(ids(&mut store, job("apagar", &[1], None)).is_empty());
        assert_eq!(ids(&mut store, job("outra", &[1], None)), [3]);
        assert!(ids(&mut store, job("outra", &[2], None)).is_empty());
        // Deleting a room (as long-empty rooms are) takes its messages out of the index.
        store.apply(vec![StoreJob::DeleteRoom { id: 1 }]);
        let left: i64 = store
            .connection()
            .query_row(
                "SELECT count(*) FROM message_search WHERE message_search MATCH 'segunda'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0);
        // The index agrees with its content, row for row.
        store
            .connection()
            .execute(
                "INSERT INTO message_search(message_search, rank) VALUES ('integrity-check', 1)",
                [],
            )
            .unwrap();
    }

    #[test]
    fn messages_waiting_to_be_indexed_are_indexed_as_they_are_by_then() {
        let mut store = store_with(&[(1, Some(1), None, None, "já indexada")]);
        let conn = store.connection();
        // Rows written outside a batch wait in the queue; edits and deletes meanwhile
        // leave the index alone, and the indexing reads the text as it is then.
        conn.execute_batch(
            "INSERT INTO messages (id, room_id, sender, text, ts) VALUES (2, 1, 'Ana', 'antes', 2);
             INSERT INTO messages (id, room_id, sender, text, ts) VALUES (3, 1, 'Ana', 'sumiu', 3);
             UPDATE messages SET text = 'depois' WHERE id = 2;
             DELETE FROM messages WHERE id = 3;",
        )
        .unwrap();
        let in_index = |store: &mut Store| -> i64 {
            store
                .connection()
                .query_row(
                    "SELECT count(*) FROM message_search WHERE message_search MATCH 'depois'",
                    [],
                    |r| r.get(0),
                )
                .unwrap()
        };
        assert_eq!(in_index(&mut store), 0, "not yet");
        let (author, _inbox) = outbox::channel(4);
        // A batch of messages leaves them waiting too (the store indexes when idle)...
        store.apply(vec![StoreJob::Append {
            record: MessageRecord {
                id: 4,
                room_id: Some(1),
                sender: "Ana".into(),
                recipient: None,
                sender_account: None,
                recipient_account: None,
                text: "depois de tudo".into(),
                ts: 4,
                files: Vec::new(),
            },
            author,
            ack: None,
        }]);
        assert_eq!(in_index(&mut store), 0, "not yet");
        // ...but a search indexes everything before it first.
        assert_eq!(ids(&mut store, job("depois", &[1], None)), [4, 2]);
        assert!(ids(&mut store, job("antes", &[1], None)).is_empty());
        assert!(ids(&mut store, job("sumiu", &[1], None)).is_empty());
        assert_eq!(ids(&mut store, job("indexada", &[1], None)), [1]);
        let conn = store.connection();
        let waiting: i64 = conn
            .query_row("SELECT count(*) FROM message_search_pending", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(waiting, 0);
        conn.execute(
            "INSERT INTO message_search(message_search, rank) VALUES ('integrity-check', 1)",
            [],
        )
        .unwrap();
    }

    #[test]
    fn the_store_indexes_waiting_messages_in_chunks_when_idle() {
        let rows: Vec<Row> = (1..=10_000)
            .map(|id| (id, Some(1), None, None, "ocioso"))
            .collect();
        let mut store = store_with(&rows);
        let waiting = |store: &mut Store| -> i64 {
            store
                .connection()
                .query_row("SELECT count(*) FROM message_search_pending", [], |r| {
                    r.get(0)
                })
                .unwrap()
        };
        // One batch of 10,000 leaves no more than the bound waiting.
        assert_eq!(waiting(&mut store), super::super::MAX_UNINDEXED as i64);
        let mut rounds = 0;
        while store.has_unindexed() {
            store.index_while_idle();
            rounds += 1;
        }
        assert_eq!(
            rounds, 9,
            "8 full chunks, then one that finds the queue empty"
        );
        assert_eq!(waiting(&mut store), 0);
        let found: i64 = store
            .connection()
            .query_row(
                "SELECT count(*) FROM message_search WHERE message_search MATCH 'ocioso'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(found, 10_000);
    }

    #[test]
    fn words_the_index_does_not_keep_find_nothing_without_failing() {
        let mut store = store_with(&[(1, Some(1), None, None, "olá")]);
        for q in ["\u{E000}", "\u{1F600}x"] {
            assert!(ids(&mut store, job(q, &[1], None)).is_empty(), "{q:?}");
        }
        assert_eq!(ids(&mut store, job("ola \u{301}", &[1], None)), [1]);
        assert_eq!(ids(&mut store, job("OLÁ", &[1], None)), [1]);
    }
}
