//! A failing database over real TCP: every command that needs it is answered (`unavailable`
//! when it cannot be carried out, never silence), `/healthz` answers 503 while the database
//! cannot be written and 200 once it can, a job that breaks fails alone, and a file papo
//! cannot write is refused at start.

mod common;

use common::db::refused;
use common::{http_get, test_config, Client, TempDir, TestServer, WAIT};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

fn server_on(db: &str) -> TestServer {
    TestServer::start(papo::Config {
        db: db.into(),
        ..test_config()
    })
}

/// Holds the database's write lock from another connection, as another process could;
/// released on drop.
struct WriteLock(rusqlite::Connection);

impl WriteLock {
    fn take(db: &str) -> WriteLock {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        WriteLock(conn)
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        let _ = self.0.execute_batch("ROLLBACK");
    }
}

fn healthz(server: &TestServer) -> u16 {
    http_get(server.addr, "/healthz").0
}

/// Polls `/healthz` until it answers `status`; panics after `WAIT`.
fn healthz_becomes(server: &TestServer, status: u16) {
    let deadline = Instant::now() + WAIT;
    while healthz(server) != status {
        assert!(
            Instant::now() < deadline,
            "/healthz never answered {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_unavailable(frame: &Value, reference: Option<Value>) {
    assert_eq!(frame["type"], "error", "{frame}");
    assert_eq!(frame["code"], "unavailable", "{frame}");
    assert_eq!(frame.get("ref").cloned(), reference, "{frame}");
}

#[test]
fn a_locked_database_answers_every_command_and_healthz_fails_until_it_recovers() {
    let dir = TempDir::new("locked");
    let db = dir.file("papo.db");
    let server = server_on(&db);
    let mut ana = Client::hello(server.addr, "Ana");
    let mut beto = Client::hello(server.addr, "Beto");
    ana.join("sala", None);
    beto.join("sala", None);
    ana.text_ref("sala", "guardada", json!("before"));
    beto.recv_message("sala", "guardada");
    assert_eq!(healthz(&server), 200);

    let lock = WriteLock::take(&db);
    let started = Instant::now();
    ana.send(json!({"type": "text", "room": "sala", "text": "com ref", "ref": "t"}));
    ana.send(json!({"type": "text", "room": "sala", "text": "sem ref"}));
    ana.send(json!({"type": "create", "room": "nova", "ref": "c"}));
    ana.send(json!({"type": "dm", "to": "Beto", "text": "oi", "ref": "d"}));
    ana.send(json!({"type": "history", "room": "sala", "ref": "h"}));

    // Everything Ana hears, up to the last of it: the room nova going away again.
    let mut frames: Vec<Value> = Vec::new();
    while !frames.iter().any(|f| f["type"] == "room_removed") || frames.len() < 9 {
        frames.push(ana.recv());
    }
    let by_ref = |r: &str| {
        frames
            .iter()
            .find(|f| f["ref"] == r)
            .unwrap_or_else(|| panic!("no reply for {r}: {frames:?}"))
    };
    assert_eq!(
        frames
            .iter()
            .filter(|f| f["type"] == "message")
            .map(|f| f["text"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["com ref", "sem ref"],
        "delivered before the commit, as always"
    );
    assert_unavailable(by_ref("t"), Some(json!("t")));
    // A room is made at once (version 1); one the store cannot keep is removed again.
    assert_eq!(by_ref("c")["type"], "created");
    assert!(frames.contains(&json!({"type": "room_removed", "room": "nova"})));
    // A DM between guests is not kept, so nothing about it can fail.
    assert_eq!(by_ref("d")["type"], "dm", "a DM's reply is the DM itself");
    let unref: Vec<&Value> = frames
        .iter()
        .filter(|f| f["type"] == "error" && f.get("ref").is_none())
        .collect();
    assert_eq!(
        unref.len(),
        2,
        "the text without ref and the room hear it: {frames:?}"
    );
    for frame in unref {
        assert_unavailable(frame, None);
    }
    let page = by_ref("h");
    assert_eq!(page["type"], "history", "reads still work: {page}");
    assert_eq!(page["messages"][0]["text"], "guardada");
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
    // One wait for the lock (2 s), then every job answered at once: PROTOCOL.md's "within
    // a few seconds" (a batch that made each job wait in turn took 8 s here).
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "answered within a few seconds: {:?}",
        started.elapsed()
    );
    assert_eq!(healthz(&server), 503);
    beto.recv_until(|f| f["type"] == "room_removed");
    let rooms = beto.request(json!({"type": "list"}), json!("l"));
    assert_eq!(
        rooms["rooms"].as_array().unwrap().len(),
        1,
        "no room nova: {rooms}"
    );

    drop(lock);
    // Back to 200 without any traffic, by the store's own probe.
    healthz_becomes(&server, 200);
    let (ack, _) = ana.text_ref("sala", "de novo", json!("after"));
    assert_eq!(ack["type"], "ack");
    ana.create("nova", None);
}

#[test]
fn a_failing_insert_fails_alone_and_the_rest_of_its_batch_is_kept() {
    let dir = TempDir::new("one-insert");
    let db = dir.file("papo.db");
    let mut server = server_on(&db);
    drop(Client::hello(server.addr, "Ana").join("sala", None));
    server.shutdown();
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER refuse_one BEFORE INSERT ON messages WHEN NEW.text = 'aborta'
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;
             CREATE TRIGGER refuse_all BEFORE INSERT ON messages WHEN NEW.text = 'desfaz'
             BEGIN SELECT RAISE(ROLLBACK, 'refused by the test'); END;",
        )
        .unwrap();

    let server = server_on(&db);
    let mut ana = Client::hello(server.addr, "Ana");
    ana.join("sala", None);
    const N: i64 = 600;
    let text = |i: i64| match i {
        200 => "aborta".to_string(),
        400 => "desfaz".to_string(),
        _ => format!("m{i}"),
    };
    // Sent in one go, so that the store takes them in few batches.
    for i in 0..N {
        ana.send(json!({"type": "text", "room": "sala", "text": text(i), "ref": i}));
    }
    let (mut acked, mut refused) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + WAIT;
    while acked.len() + refused.len() < N as usize {
        assert!(
            Instant::now() < deadline,
            "unanswered: {acked:?} {refused:?}"
        );
        let frame = ana.recv();
        match frame["type"].as_str() {
            Some("ack") => acked.push(frame["ref"].as_i64().unwrap()),
            Some("error") => {
                assert_eq!(frame["code"], "unavailable", "{frame}");
                refused.push(frame["ref"].as_i64().unwrap());
            }
            _ => {}
        }
    }
    assert_eq!(refused, [200, 400]);
    assert_eq!(acked.len(), N as usize - 2);
    assert_eq!(
        healthz(&server),
        200,
        "one job at fault is not a failing database"
    );
    let page = ana.request(
        json!({"type": "history", "room": "sala", "limit": 100}),
        json!("h"),
    );
    let texts: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (N - 100 - 1..N).filter(|&i| i != 400).map(text).collect();
    assert_eq!(texts, expected[expected.len() - 100..]);
}

#[test]
fn a_history_the_store_cannot_read_is_answered_unavailable() {
    let dir = TempDir::new("unreadable");
    let db = dir.file("papo.db");
    let server = server_on(&db);
    let mut ana = Client::hello(server.addr, "Ana");
    ana.join("sala", None);
    ana.text_ref("sala", "guardada", json!(1));
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("ALTER TABLE messages RENAME TO elsewhere;")
        .unwrap();
    let reply = ana.request(json!({"type": "history", "room": "sala"}), json!("h"));
    assert_unavailable(&reply, Some(json!("h")));
}

#[test]
fn a_read_only_database_file_is_refused_at_start() {
    let dir = TempDir::new("read-only");
    let db = dir.file("papo.db");
    drop(server_on(&db));
    let mut permissions = std::fs::metadata(&db).unwrap().permissions();
    permissions.set_readonly(true);
    std::fs::set_permissions(&db, permissions).unwrap();
    let before = common::db::snapshot(&db);

    let mut papo = Command::new(env!("CARGO_BIN_EXE_papo"));
    papo.args(["--db", &db]);
    // root writes whatever the permissions say: run papo as nobody, for whom they hold,
    // in a directory nobody may write to (as papo's own user may write to its directory).
    if is_root() {
        use std::os::unix::{fs::PermissionsExt, process::CommandExt};
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o777)).unwrap();
        papo.uid(65534).gid(65534);
    }
    let stderr = refused(papo);
    assert!(stderr.contains("read-only"), "{stderr}");
    assert_eq!(common::db::snapshot(&db), before);
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
