//! Attachments as stored: one `files` row per uploaded file (its owner, name, type, size,
//! picture dimensions, checksum and preview), and `message_files` linking a message to the
//! files it carries, in order. The bytes live in a directory beside the database (see
//! `crate::files::storage`); this file only keeps what is known about them.
//!
//! Neither table has a foreign key to the other or to `messages`: a message may go (a room
//! removed, a message deleted by a moderator) and take its files with it, and a file may be
//! swept while unattached; a link whose file is gone is simply not shown. What removes
//! rows also reports the ids whose bytes must go, so the bytes follow once the removal is
//! committed (`Removed`), never before.

use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;

/// 2 → 3: attachments.
pub const MIGRATION: &str = "CREATE TABLE files (
         id           TEXT PRIMARY KEY,
         owner        INTEGER NOT NULL,
         name         TEXT NOT NULL,
         type         TEXT NOT NULL,
         size         INTEGER NOT NULL,
         width        INTEGER,
         height       INTEGER,
         created      INTEGER NOT NULL,
         sha256       TEXT NOT NULL,
         preview      TEXT,
         preview_type TEXT
     );
     CREATE INDEX files_by_owner ON files(owner, created);
     CREATE TABLE message_files (
         message_id INTEGER NOT NULL,
         position   INTEGER NOT NULL,
         file_id    TEXT NOT NULL,
         PRIMARY KEY (message_id, position)
     );
     CREATE INDEX message_files_by_file ON message_files(file_id);";

/// One stored file, as its row says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    /// The capability: at least 128 random bits, URL-safe; also the file's name on disk.
    pub id: String,
    /// The account that uploaded it: only it may attach the file to a message.
    pub owner: i64,
    /// The uploader's file name, sanitised (shown, and offered when downloading).
    pub name: String,
    /// The media type decided from the bytes, never from the client's header.
    pub kind: String,
    /// Bytes, exactly: the `Content-Length` it is served with.
    pub size: u64,
    /// Pixels, for pictures.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Upload time, ms since the epoch: the per-day quota and the unattached sweep count it.
    pub created: u64,
    /// SHA-256 of the bytes as stored, hex: the ETag.
    pub sha256: String,
    /// The preview's file name in the files directory, for pictures that have one.
    pub preview: Option<String>,
    /// The preview's media type.
    pub preview_kind: Option<String>,
}

/// A stored file and whether any message refers to it, as loaded at start.
#[derive(Debug, Clone)]
pub struct LoadedFile {
    pub row: FileRow,
    /// Some message carries it: the unattached sweep leaves it alone.
    pub attached: bool,
}

/// What a `message` or `dm` event says of one file (PROTOCOL.md 1.1, "Attachments").
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileSummary {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

impl FileRow {
    pub fn summary(&self) -> FileSummary {
        FileSummary {
            id: self.id.clone(),
            name: self.name.clone(),
            kind: self.kind.clone(),
            size: self.size,
            width: self.width,
            height: self.height,
        }
    }
}

/// File ids whose rows a job removed: their bytes are deleted once the transaction that
/// removed them commits (and not at all if it does not).
pub type Removed = Vec<String>;

/// Keeps a new file's row (inside the batch's transaction).
pub(super) fn insert_file(conn: &Connection, row: &FileRow) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO files (id, owner, name, type, size, width, height, created, sha256, preview, preview_type)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        row.id,
        row.owner,
        row.name,
        row.kind,
        row.size as i64,
        row.width,
        row.height,
        row.created as i64,
        row.sha256,
        row.preview,
        row.preview_kind
    ])?;
    Ok(())
}

/// Links a message to its files, in the order it names them.
pub(super) fn link(conn: &Connection, message_id: u64, files: &[String]) -> rusqlite::Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO message_files (message_id, position, file_id) VALUES (?1, ?2, ?3)",
    )?;
    for (position, file) in files.iter().enumerate() {
        insert.execute(params![message_id as i64, position as i64, file])?;
    }
    Ok(())
}

/// The files of the messages in `ids`, by message id, in each message's order. One query
/// for a page of history (the ids travel as one JSON array), an index lookup per message.
pub(super) fn files_of(
    conn: &Connection,
    ids: &[u64],
) -> rusqlite::Result<HashMap<u64, Vec<FileSummary>>> {
    let mut out: HashMap<u64, Vec<FileSummary>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut query = conn.prepare_cached(
        "SELECT l.message_id, f.id, f.name, f.type, f.size, f.width, f.height
         FROM message_files l JOIN files f ON f.id = l.file_id
         WHERE l.message_id IN (SELECT value FROM json_each(?1))
         ORDER BY l.message_id, l.position",
    )?;
    let list = serde_json::to_string(ids).expect("integers serialise");
    let rows = query.query_map([list], |row| {
        Ok((
            row.get::<_, i64>(0)? as u64,
            FileSummary {
                id: row.get(1)?,
                name: row.get(2)?,
                kind: row.get(3)?,
                size: row.get::<_, i64>(4)?.max(0) as u64,
                width: row.get(5)?,
                height: row.get(6)?,
            },
        ))
    })?;
    for row in rows {
        let (message, file) = row?;
        out.entry(message).or_default().push(file);
    }
    Ok(out)
}

/// The `files` of every message in `ids` as event JSON (absent for messages without).
pub(super) fn files_json_for(
    conn: &Connection,
    ids: impl Iterator<Item = u64>,
) -> rusqlite::Result<HashMap<u64, String>> {
    let ids: Vec<u64> = ids.collect();
    Ok(files_of(conn, &ids)?
        .into_iter()
        .map(|(id, files)| (id, summaries_json(&files)))
        .collect())
}

/// A `files` array as JSON.
pub fn summaries_json(files: &[FileSummary]) -> String {
    // Plain strings and numbers: serialising cannot fail.
    serde_json::to_string(files).expect("file summaries serialise")
}

/// Every stored file, with whether a message refers to it.
pub(super) fn load(conn: &Connection) -> rusqlite::Result<Vec<LoadedFile>> {
    let mut query = conn.prepare(
        "SELECT id, owner, name, type, size, width, height, created, sha256, preview, preview_type,
                EXISTS (SELECT 1 FROM message_files l WHERE l.file_id = files.id)
         FROM files ORDER BY created",
    )?;
    let rows = query.query_map([], |row| {
        Ok(LoadedFile {
            row: FileRow {
                id: row.get(0)?,
                owner: row.get(1)?,
                name: row.get(2)?,
                kind: row.get(3)?,
                size: row.get::<_, i64>(4)?.max(0) as u64,
                width: row.get(5)?,
                height: row.get(6)?,
                created: row.get::<_, i64>(7)?.max(0) as u64,
                sha256: row.get(8)?,
                preview: row.get(9)?,
                preview_kind: row.get(10)?,
            },
            attached: row.get(11)?,
        })
    })?;
    rows.collect()
}

/// Deletes the rows of files nothing refers to (the unattached sweep). A file a message
/// links to after all is kept, and not reported.
pub(super) fn delete_unattached(
    conn: &Connection,
    ids: &[String],
    removed: &mut Removed,
) -> rusqlite::Result<()> {
    let mut delete = conn.prepare_cached(
        "DELETE FROM files WHERE id = ?1
         AND NOT EXISTS (SELECT 1 FROM message_files WHERE file_id = ?1)",
    )?;
    for id in ids {
        if delete.execute([id])? > 0 {
            removed.push(id.clone());
        }
    }
    Ok(())
}

/// Removes the files of the given messages: their links, and every file no other message
/// refers to then (rows here; the bytes once the caller's transaction commits, through
/// `removed`). What "deleting a message removes its files" means; `delete_room` uses it for
/// a whole room.
pub fn remove_for_messages(
    conn: &Connection,
    message_ids: &[u64],
    removed: &mut Removed,
) -> rusqlite::Result<()> {
    let mut files_of = conn.prepare_cached(
        "SELECT file_id FROM message_files WHERE message_id = ?1 ORDER BY position",
    )?;
    let mut unlink = conn.prepare_cached("DELETE FROM message_files WHERE message_id = ?1")?;
    let mut candidates = Vec::new();
    for &id in message_ids {
        let files: Vec<String> = files_of
            .query_map([id as i64], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if !files.is_empty() {
            unlink.execute([id as i64])?;
            candidates.extend(files);
        }
    }
    candidates.sort();
    candidates.dedup();
    delete_unattached(conn, &candidates, removed)
}

/// Removes the files of every message of a room (the room is being deleted).
pub fn remove_for_room(
    conn: &Connection,
    room_id: i64,
    removed: &mut Removed,
) -> rusqlite::Result<()> {
    let ids: Vec<u64> = conn
        .prepare_cached(
            "SELECT DISTINCT l.message_id FROM message_files l
             JOIN messages m ON m.id = l.message_id WHERE m.room_id = ?1",
        )?
        .query_map([room_id], |row| row.get::<_, i64>(0).map(|id| id as u64))?
        .collect::<rusqlite::Result<_>>()?;
    remove_for_messages(conn, &ids, removed)
}

/// Whether a row for this file id exists (the garbage collector of the files directory
/// asks before deleting bytes it finds without a known row).
pub fn exists(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM files WHERE id = ?1")?
        .query_row([id], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE messages (id INTEGER PRIMARY KEY, room_id INTEGER, sender TEXT, text TEXT, ts INTEGER);",
        )
        .unwrap();
        conn.execute_batch(MIGRATION).unwrap();
        conn
    }

    fn row(id: &str) -> FileRow {
        FileRow {
            id: id.into(),
            owner: 7,
            name: format!("{id}.png"),
            kind: "image/png".into(),
            size: 10,
            width: Some(2),
            height: Some(3),
            created: 1,
            sha256: "ab".into(),
            preview: None,
            preview_kind: None,
        }
    }

    #[test]
    fn links_come_back_in_order_and_deleting_a_message_removes_only_its_own_files() {
        let c = conn();
        for id in ["a", "b", "c"] {
            insert_file(&c, &row(id)).unwrap();
        }
        c.execute_batch("INSERT INTO messages VALUES (5, 1, 'x', '', 0), (9, 2, 'x', '', 0)")
            .unwrap();
        link(&c, 5, &["b".into(), "a".into()]).unwrap();
        link(&c, 9, &["a".into()]).unwrap();
        let files = files_of(&c, &[5, 9, 10]).unwrap();
        let names: Vec<&str> = files[&5].iter().map(|f| f.id.as_str()).collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(
            summaries_json(&files[&9]),
            r#"[{"id":"a","name":"a.png","type":"image/png","size":10,"width":2,"height":3}]"#
        );

        let loaded = load(&c).unwrap();
        let attached: Vec<(&str, bool)> = loaded
            .iter()
            .map(|f| (f.row.id.as_str(), f.attached))
            .collect();
        assert_eq!(attached, [("a", true), ("b", true), ("c", false)]);

        let mut removed = Removed::new();
        remove_for_messages(&c, &[5], &mut removed).unwrap();
        assert_eq!(removed, ["b"], "a is still on message 9");
        assert!(exists(&c, "a").unwrap() && !exists(&c, "b").unwrap());

        let mut removed = Removed::new();
        remove_for_room(&c, 2, &mut removed).unwrap();
        assert_eq!(removed, ["a"]);

        let mut removed = Removed::new();
        delete_unattached(&c, &["c".into(), "nope".into()], &mut removed).unwrap();
        assert_eq!(removed, ["c"]);
        assert!(load(&c).unwrap().is_empty());
    }

    #[test]
    fn the_sweep_keeps_a_file_a_message_refers_to() {
        let c = conn();
        insert_file(&c, &row("a")).unwrap();
        link(&c, 3, &["a".into()]).unwrap();
        let mut removed = Removed::new();
        delete_unattached(&c, &["a".into()], &mut removed).unwrap();
        assert!(removed.is_empty());
        assert!(exists(&c, "a").unwrap());
    }
}
