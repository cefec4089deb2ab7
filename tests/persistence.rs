//! Persistence over real TCP: rooms, passwords, ids and history survive a restart; acked
//! messages survive SIGKILL; bad database files are refused untouched; backup works live.

mod common;

use common::db::{refused_start, spawn_binary};
use common::{test_config, Client, TempDir, TestServer, WAIT};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn server_on(db: &str) -> TestServer {
    TestServer::start(papo::Config {
        db: db.into(),
        ..test_config()
    })
}

/// Every message of a room, oldest first, paging back with `before`.
fn all_history(client: &mut Client, room: &str) -> Vec<Value> {
    let mut messages: Vec<Value> = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let mut cmd = json!({"type": "history", "room": room, "limit": 100});
        if let Some(b) = before {
            cmd["before"] = json!(b);
        }
        let page = client.request(cmd, json!("page"));
        assert_eq!(page["type"], "history", "{page}");
        let batch = page["messages"].as_array().unwrap().clone();
        if batch.is_empty() {
            break;
        }
        before = batch[0]["id"].as_u64();
        messages.splice(0..0, batch);
    }
    messages
}

#[test]
fn rooms_passwords_ids_and_history_survive_a_restart() {
    let dir = TempDir::new("restart");
    let db = dir.file("papo.db");
    let mut server = server_on(&db);
    let mut ana = Client::hello(server.addr, "Ana");
    let _beto = Client::hello(server.addr, "Beto");
    ana.create("jogos", Some("123"));
    ana.create("Livre", None);
    ana.join("jogos", Some("123"));
    let mut last_id = 0;
    for text in ["primeira", "segunda", "terceira"] {
        let (ack, _) = ana.text_ref("jogos", text, json!(text));
        last_id = ack["id"].as_u64().unwrap();
    }
    let dm = ana.request(
        json!({"type": "dm", "to": "Beto", "text": "oi"}),
        json!("dm"),
    );
    let dm_id = dm["id"].as_u64().unwrap();
    assert!(dm_id > last_id);
    drop(ana);
    server.shutdown();

    let server = server_on(&db);
    let mut caio = Client::hello(server.addr, "Caio");
    let rooms = caio.request(json!({"type": "list"}), json!(1));
    assert_eq!(
        rooms["rooms"],
        json!([
            {"room": "jogos", "protected": true, "member_count": 0},
            {"room": "Livre", "protected": false, "member_count": 0}
        ])
    );
    caio.expect_error(
        json!({"type": "join", "room": "jogos", "password": "12"}),
        "wrong_password",
    );
    caio.expect_error(json!({"type": "join", "room": "jogos"}), "wrong_password");
    caio.expect_error(json!({"type": "create", "room": "LIVRE"}), "room_exists");
    let joined = caio.join("jogos", Some("123"));
    let texts: Vec<&str> = joined["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["primeira", "segunda", "terceira"]);
    assert_eq!(joined["history"][0]["from"], "Ana");

    let (ack, _) = caio.text_ref("jogos", "depois", json!("after"));
    assert!(
        ack["id"].as_u64().unwrap() > dm_id,
        "ids continue after the DM's: {ack}"
    );
    let history = all_history(&mut caio, "jogos");
    assert_eq!(history.len(), 4);
    assert_eq!(history[3]["text"], "depois");
}

#[test]
fn history_pages_through_more_than_memory_holds() {
    let dir = TempDir::new("pages");
    let db = dir.file("papo.db");
    let server = server_on(&db);
    let mut ana = Client::hello(server.addr, "Ana");
    ana.join("longa", None);
    for i in 0..250 {
        ana.say("longa", &format!("m{i}"));
    }
    ana.recv_message("longa", "m249");
    let history = all_history(&mut ana, "longa");
    let texts: Vec<String> = history
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = (0..250).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, expected);
}

#[test]
fn acked_messages_survive_sigkill() {
    let dir = TempDir::new("crash");
    let db = dir.file("papo.db");
    let (mut child, addr) = spawn_binary(&db);
    let mut ana = Client::hello(addr, "Ana");
    ana.join("jogos", Some("123"));
    const N: usize = 300;
    for i in 0..N {
        ana.send(json!({"type": "text", "room": "jogos", "text": format!("m{i}"), "ref": i}));
    }
    let mut acked = Vec::new();
    let deadline = Instant::now() + WAIT;
    while acked.len() < N / 2 && Instant::now() < deadline {
        let frame = ana.recv_until(|v| v["type"] == "ack");
        acked.push(frame["id"].as_u64().unwrap());
    }
    // Killed mid-stream, right after half the acks: no chance to shut down cleanly.
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    drop(ana);

    let (mut child, addr) = spawn_binary(&db);
    let mut beto = Client::hello(addr, "Beto");
    beto.join("jogos", Some("123"));
    let kept: std::collections::HashSet<u64> = all_history(&mut beto, "jogos")
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    let lost: Vec<&u64> = acked.iter().filter(|id| !kept.contains(id)).collect();
    assert!(lost.is_empty(), "acked but lost after SIGKILL: {lost:?}");
    assert!(acked.len() >= N / 2);
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn a_corrupt_database_is_refused_and_left_untouched() {
    let dir = TempDir::new("corrupt");
    let db = dir.file("papo.db");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&db, &garbage).unwrap();
    let stderr = refused_start(&db);
    assert!(
        stderr.contains("database") && stderr.contains("not a database"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&db).unwrap(), garbage);
    assert!(!Path::new(&format!("{db}-wal")).exists());
}

#[test]
fn a_database_from_a_newer_papo_is_refused_and_left_untouched() {
    let dir = TempDir::new("newer");
    let db = dir.file("papo.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
            .unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let stderr = refused_start(&db);
    assert!(stderr.contains("newer papo"), "{stderr}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[test]
fn backup_copies_a_database_while_it_serves() {
    let dir = TempDir::new("backup");
    let db = dir.file("papo.db");
    let copy = dir.file("copy.db");
    let server = server_on(&db);
    let mut ana = Client::hello(server.addr, "Ana");
    ana.join("jogos", Some("123"));
    ana.text_ref("jogos", "guardada", json!(1));

    let output = Command::new(env!("CARGO_BIN_EXE_papo"))
        .args(["backup", &copy, "--db", &db])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    ana.text_ref("jogos", "ainda serve", json!(2));

    let restored = server_on(&copy);
    let mut beto = Client::hello(restored.addr, "Beto");
    beto.expect_error(
        json!({"type": "join", "room": "jogos", "password": "x"}),
        "wrong_password",
    );
    let joined = beto.join("jogos", Some("123"));
    assert_eq!(joined["history"][0]["text"], "guardada");
    assert_eq!(joined["history"].as_array().unwrap().len(), 1);
}

#[test]
fn passwords_are_stored_only_as_argon2id_hashes() {
    let dir = TempDir::new("hash");
    let db = dir.file("papo.db");
    let mut server = server_on(&db);
    let mut ana = Client::hello(server.addr, "Ana");
    ana.create("cofre", Some("segredo-123"));
    ana.join("cofre", Some("segredo-123"));
    drop(ana);
    server.shutdown();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (hash, creator): (String, String) = conn
        .query_row(
            "SELECT password_hash, creator FROM rooms WHERE name = 'cofre'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert_eq!(creator, "Ana");
    let bytes = std::fs::read(&db).unwrap();
    assert!(
        !bytes.windows(11).any(|w| w == b"segredo-123"),
        "the password itself is never written"
    );
}

/// papo's mark in a database header (`PRAGMA application_id`): "papo" in ASCII.
const PAPO_APPLICATION_ID: i64 = 0x7061_706f;

/// The schema version-1 papo wrote (user_version 1, no application_id), with a room and
/// two messages in it, made just now (so no removal of long-empty rooms takes it).
fn version_1_database(db: &str) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(&format!(
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
         CREATE INDEX messages_by_room ON messages(room_id, id);
         INSERT INTO rooms VALUES (1, 'Antiga', 'antiga', NULL, 'Ana', {now_ms});
         INSERT INTO messages VALUES (7, 1, 'Ana', NULL, 'de antes', {now_ms});
         INSERT INTO messages VALUES (8, NULL, 'Ana', 'Beto', 'dm de antes', {now_ms});
         PRAGMA user_version = 1;"
    ))
    .unwrap();
}

/// Expects papo to refuse `db` and leave it exactly as it was: same bytes, no `-wal` or
/// `-shm` beside it. Returns what papo said.
fn refused_untouched(db: &str) -> String {
    let before = common::db::snapshot(db);
    let stderr = refused_start(db);
    assert_eq!(
        common::db::snapshot(db),
        before,
        "the file, and what lies beside it, are as they were"
    );
    stderr
}

#[test]
fn another_programs_database_is_refused_untouched() {
    let dir = TempDir::new("foreign");
    let db = dir.file("notes.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
             INSERT INTO notes (body) VALUES ('not papo''s');",
        )
        .unwrap();
    }
    let stderr = refused_untouched(&db);
    assert!(
        stderr.contains("not a papo database") && stderr.contains("notes"),
        "{stderr}"
    );

    // Marked by another program (here, an empty file with a foreign application_id).
    let marked = dir.file("other.db");
    rusqlite::Connection::open(&marked)
        .unwrap()
        .execute_batch("PRAGMA application_id = 1234;")
        .unwrap();
    let stderr = refused_untouched(&marked);
    assert!(
        stderr.contains("not a papo database") && stderr.contains("application_id"),
        "{stderr}"
    );

    // In WAL mode already: nothing may be left beside it either.
    let wal = dir.file("wal.db");
    {
        let conn = rusqlite::Connection::open(&wal).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
    }
    let stderr = refused_untouched(&wal);
    assert!(stderr.contains("not a papo database"), "{stderr}");
}

#[test]
fn a_papo_looking_database_with_a_table_of_its_own_is_refused() {
    let dir = TempDir::new("extra");
    let db = dir.file("papo.db");
    version_1_database(&db);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE mine (x);")
        .unwrap();
    let stderr = refused_untouched(&db);
    assert!(
        stderr.contains("not a papo database") && stderr.contains("mine"),
        "{stderr}"
    );
}

#[test]
fn a_negative_schema_version_is_refused_untouched() {
    let dir = TempDir::new("negative");
    let db = dir.file("papo.db");
    version_1_database(&db);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA user_version = -1;")
        .unwrap();
    let stderr = refused_untouched(&db);
    assert!(stderr.contains("schema version -1"), "{stderr}");

    let empty = dir.file("empty.db");
    rusqlite::Connection::open(&empty)
        .unwrap()
        .execute_batch("PRAGMA user_version = -1;")
        .unwrap();
    let stderr = refused_untouched(&empty);
    assert!(stderr.contains("schema version -1"), "{stderr}");
}

#[test]
fn a_newer_papo_database_is_refused_untouched() {
    let dir = TempDir::new("newer-marked");
    let db = dir.file("papo.db");
    version_1_database(&db);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(&format!(
            "PRAGMA application_id = {PAPO_APPLICATION_ID}; PRAGMA user_version = 1000;"
        ))
        .unwrap();
    let stderr = refused_untouched(&db);
    assert!(
        stderr.contains("newer papo") && stderr.contains("1000"),
        "{stderr}"
    );
}

#[test]
fn a_version_1_database_is_adopted_and_marked() {
    let dir = TempDir::new("adopt");
    let db = dir.file("papo.db");
    version_1_database(&db);
    let mut server = server_on(&db);
    let mut ana = Client::hello(server.addr, "Ana");
    let joined = ana.join("antiga", None);
    assert_eq!(joined["room"], "Antiga");
    assert_eq!(joined["history"][0]["text"], "de antes");
    assert_eq!(joined["history"][0]["id"], 7);
    let (ack, _) = ana.text_ref("Antiga", "de agora", json!(1));
    assert!(ack["id"].as_u64().unwrap() > 8, "{ack}");
    drop(ana);
    server.shutdown();

    let conn = rusqlite::Connection::open(&db).unwrap();
    let application_id: i64 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .unwrap();
    assert_eq!(application_id, PAPO_APPLICATION_ID);
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, papo::store::SCHEMA_VERSION);
    let texts: Vec<String> = conn
        .prepare("SELECT text FROM messages ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(texts, ["de antes", "dm de antes", "de agora"]);
}

#[test]
fn a_new_database_is_marked_as_papos() {
    let dir = TempDir::new("mark");
    let db = dir.file("papo.db");
    drop(server_on(&db));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let application_id: i64 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .unwrap();
    assert_eq!(application_id, PAPO_APPLICATION_ID);
    drop(conn);
    // And it is taken again on the next start.
    drop(server_on(&db));
}

#[test]
fn ids_seen_before_a_crash_are_never_given_to_other_messages() {
    let dir = TempDir::new("crash-ids");
    let db = dir.file("papo.db");
    let (mut child, addr) = spawn_binary(&db);
    let mut ana = Client::hello(addr, "Ana");
    let mut beto = Client::hello(addr, "Beto");
    ana.join("jogos", None);
    beto.join("jogos", None);
    ana.text_ref("jogos", "guardada", json!(0));

    // Another process holds the write lock: messages are delivered, none is committed.
    let lock = rusqlite::Connection::open(&db).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    for i in 0..20 {
        ana.send(json!({"type": "text", "room": "jogos", "text": format!("w{i}")}));
    }
    let mut seen = std::collections::HashMap::new();
    while seen.len() < 20 {
        let m = beto.recv_type("message");
        if m["text"] != "guardada" {
            seen.insert(m["id"].as_u64().unwrap(), m["text"].clone());
        }
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    drop(lock);
    drop((ana, beto));

    let (mut child, addr) = spawn_binary(&db);
    let mut caio = Client::hello(addr, "Caio");
    caio.join("jogos", None);
    let (ack, _) = caio.text_ref("jogos", "depois", json!(1));
    let id = ack["id"].as_u64().unwrap();
    assert!(
        seen.keys().all(|&seen| seen < id),
        "id {id} was seen before the crash: {seen:?}"
    );
    for m in all_history(&mut caio, "jogos") {
        if let Some(text) = seen.get(&m["id"].as_u64().unwrap()) {
            assert_eq!(&m["text"], text, "another message under a seen id: {m}");
        }
    }
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn a_schema_2_database_from_before_the_mark_is_adopted_and_marked() {
    // What papo wrote with accounts (schema version 2) before it marked its files.
    let dir = TempDir::new("adopt-2");
    let db = dir.file("papo.db");
    version_1_database(&db);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(&format!(
            "{} ; PRAGMA user_version = 2;",
            papo::store::accounts::MIGRATION
        ))
        .unwrap();
    let mut server = server_on(&db);
    let mut ana = Client::hello(server.addr, "Ana");
    let joined = ana.join("antiga", None);
    assert_eq!(joined["history"][0]["text"], "de antes");
    drop(ana);
    server.shutdown();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let application_id: i64 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .unwrap();
    assert_eq!(application_id, PAPO_APPLICATION_ID);

    // The same with a table of someone else's beside papo's: refused.
    let other = dir.file("other.db");
    version_1_database(&other);
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch(&format!(
            "{} ; CREATE TABLE mine (x); PRAGMA user_version = 2;",
            papo::store::accounts::MIGRATION
        ))
        .unwrap();
    let stderr = refused_untouched(&other);
    assert!(
        stderr.contains("not a papo database") && stderr.contains("(mine)"),
        "{stderr}"
    );
}
