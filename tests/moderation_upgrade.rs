//! A database from before moderation (schema 2, with rows) upgrades in place: rooms that
//! an account made become that account's (the owner moderates them), rooms a guest made
//! have no owner, even when the guest's name is an account's now, and old messages can be
//! edited and deleted by their authors.

mod common;

use common::*;
use serde_json::json;

const PASSWORD: &str = "correct horse";

/// A schema-2 file: Ana's account (made at t=1000), her room `da-ana` (made at 2000, with a
/// message of hers), and `de-antes` made by a guest called Ana at 500, before the account.
fn schema_2_database(db: &str) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let phc = papo::accounts::hashing::hash(PASSWORD);
    conn.execute_batch(
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
         CREATE INDEX messages_by_room ON messages(room_id, id);",
    )
    .unwrap();
    conn.execute_batch(papo::store::accounts::MIGRATION)
        .unwrap();
    conn.execute(
        "INSERT INTO accounts (id, name, name_key, password_hash, admin, created_at)
         VALUES (7, 'Ana', 'ana', ?1, 0, 1000)",
        [&phc],
    )
    .unwrap();
    conn.execute_batch(
        "INSERT INTO rooms VALUES (1, 'de-antes', 'de-antes', NULL, 'Ana', 500);
         INSERT INTO rooms VALUES (2, 'da-ana', 'da-ana', NULL, 'Ana', 2000);
         INSERT INTO messages (id, room_id, sender, text, ts, sender_account)
             VALUES (5, 2, 'Ana', 'antiga', 2500, 7);
         INSERT INTO memberships VALUES (7, 2);
         PRAGMA application_id = 1885433967;
         PRAGMA user_version = 2;",
    )
    .unwrap();
}

#[test]
fn a_schema_2_database_gets_owners_and_editable_messages() {
    let dir = TempDir::new("moderation-upgrade");
    let db = dir.file("papo.db");
    schema_2_database(&db);
    let mut config = test_config();
    config.db = db.clone();
    config.remove_empty_rooms_after = None;
    let server = TestServer::start(config);

    let mut ana = Client::connect(server.addr);
    let welcome = ana.request(
        json!({"type": "hello", "name": "Ana", "password": PASSWORD}),
        json!("hello"),
    );
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    ana.name = "Ana".into();
    let mut beto = Client::hello(server.addr, "Beto");
    beto.join("da-ana", None);
    ana.request(json!({"type": "join", "room": "da-ana"}), json!("j"));

    // The room the account made is hers: she moderates it.
    let kicked = ana.request(
        json!({"type": "kick", "room": "da-ana", "user": "Beto"}),
        json!("k"),
    );
    assert_eq!(kicked["type"], "kicked", "{kicked}");
    // The one a guest of that name made before the account existed is not.
    ana.expect_error(
        json!({"type": "delete_room", "room": "de-antes"}),
        "forbidden",
    );
    // Her old message is hers to edit.
    let edited = ana.request(
        json!({"type": "edit", "id": 5, "text": "renovada"}),
        json!("e"),
    );
    assert_eq!(edited["type"], "edited", "{edited}");
    let h = ana.request(json!({"type": "history", "room": "da-ana"}), json!("h"));
    assert_eq!(h["messages"][0]["text"], "renovada");
    let version: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, papo::store::SCHEMA_VERSION);
}
