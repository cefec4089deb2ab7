//! `search` over real TCP (PROTOCOL.md 1.1, "Search"): whole words and prefixes, accents
//! and case ignored, newest first, `limit`, `room`, an account's DMs, and never a room the
//! asker has not joined; edits and deletes made in the database show at once; the index
//! survives restarts and is built for databases from before it.

mod common;

use common::{register, test_config, Client, TempDir, TestServer};
use serde_json::{json, Value};

fn server_on(db: &str) -> TestServer {
    TestServer::start(papo::Config {
        db: db.into(),
        ..test_config()
    })
}

/// Runs a search and returns its reply, which must be a `search`.
fn search(client: &mut Client, mut command: Value) -> Value {
    command["type"] = json!("search");
    let reply = client.request(command.clone(), json!("s"));
    assert_eq!(reply["type"], "search", "{command} -> {reply}");
    assert_eq!(reply["q"], command["q"], "the reply echoes q: {reply}");
    reply
}

/// The texts a search found, in the order given.
fn texts(reply: &Value) -> Vec<String> {
    reply["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect()
}

fn found(client: &mut Client, q: &str) -> Vec<String> {
    texts(&search(client, json!({"q": q})))
}

#[test]
fn finds_whole_words_and_prefixes_ignoring_accents_and_case() {
    let dir = TempDir::new("search-words");
    let server = server_on(&dir.file("papo.db"));
    let mut ana = Client::member(server.addr, "Ana", "jogos");
    // Sent without waiting for acks: a search sees every message sent before it.
    for text in [
        "Ação no jogo de hoje",
        "bora jogar amanhã?",
        "nada a ver",
        "ÉPICO: a AÇÃO continua",
    ] {
        ana.say("jogos", text);
    }
    assert_eq!(
        found(&mut ana, "acao"),
        ["ÉPICO: a AÇÃO continua", "Ação no jogo de hoje"]
    );
    assert_eq!(found(&mut ana, "AÇÃO hoje"), ["Ação no jogo de hoje"]);
    assert_eq!(
        found(&mut ana, "JOG"),
        ["bora jogar amanhã?", "Ação no jogo de hoje"],
        "a prefix finds jogo and jogar"
    );
    assert_eq!(found(&mut ana, "bora jogar"), ["bora jogar amanhã?"]);
    assert_eq!(found(&mut ana, "epico"), ["ÉPICO: a AÇÃO continua"]);
    assert!(
        found(&mut ana, "ogo").is_empty(),
        "not the middle of a word"
    );
    assert!(
        found(&mut ana, "jogos").is_empty(),
        "a word is not its own prefix's extension"
    );
    assert!(found(&mut ana, "xadrez").is_empty());
    // One letter is a whole word, not every word that starts with it.
    assert_eq!(
        found(&mut ana, "A"),
        ["ÉPICO: a AÇÃO continua", "nada a ver"]
    );
    assert_eq!(
        found(&mut ana, "am"),
        ["bora jogar amanhã?"],
        "two letters are a prefix"
    );

    // The reply's messages are `message` events, all their fields there.
    let reply = search(&mut ana, json!({"q": "nada"}));
    let m = &reply["messages"][0];
    assert_eq!(m["type"], "message");
    assert_eq!(m["room"], "jogos");
    assert_eq!(m["from"], "Ana");
    assert!(m["id"].is_u64() && m["ts"].is_u64(), "{m}");
    assert_eq!(reply["ref"], "s");
}

#[test]
fn full_text_syntax_in_q_is_only_words() {
    let dir = TempDir::new("search-syntax");
    let server = server_on(&dir.file("papo.db"));
    let mut ana = Client::member(server.addr, "Ana", "sala");
    ana.say("sala", "gatos OR cachorros");
    ana.say("sala", "gatos");
    for q in [
        "\"gatos", "gatos*", "gatos OR", "^gatos", "(gatos)", "{gatos}", "gatos:",
    ] {
        let reply = search(&mut ana, json!({"q": q}));
        assert!(
            !texts(&reply).is_empty(),
            "{q:?} is searched as its words: {reply}"
        );
    }
    // Operators are words too, which these messages do not have; no error either way.
    for q in [
        "NEAR(gatos",
        "text: gatos",
        "{scope} : gatos",
        "gatos NOT x",
    ] {
        let reply = search(&mut ana, json!({"q": q}));
        assert!(texts(&reply).is_empty(), "{q:?}: {reply}");
    }
    // The words that say where a message may be read are not searchable text: the room's
    // (r1) is never found, though every message here carries it.
    for q in ["r1", "r", "scope", "d"] {
        let reply = search(&mut ana, json!({"q": q}));
        assert!(texts(&reply).is_empty(), "{q:?}: {reply}");
    }
    // "OR" is a word like any other here: both words must be there.
    assert_eq!(found(&mut ana, "gatos OR"), ["gatos OR cachorros"]);
}

#[test]
fn newest_first_at_most_limit() {
    let dir = TempDir::new("search-limit");
    let server = server_on(&dir.file("papo.db"));
    let mut ana = Client::member(server.addr, "Ana", "sala");
    for i in 0..60 {
        ana.say("sala", &format!("item {i}"));
    }
    let reply = search(&mut ana, json!({"q": "item", "limit": 3}));
    assert_eq!(texts(&reply), ["item 59", "item 58", "item 57"]);
    let ids: Vec<u64> = reply["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    assert_eq!(found(&mut ana, "item").len(), 20, "20 by default");
    let most = search(&mut ana, json!({"q": "item", "limit": 1000}));
    assert_eq!(texts(&most).len(), 50, "at most 50");
    ana.expect_error(
        json!({"type": "search", "q": "item", "limit": 0}),
        "bad_request",
    );
    ana.expect_error(
        json!({"type": "search", "q": "item", "limit": "3"}),
        "bad_request",
    );
}

#[test]
fn only_rooms_the_connection_has_joined_never_others_even_by_name() {
    let dir = TempDir::new("search-rooms");
    let server = server_on(&dir.file("papo.db"));
    let mut ana = Client::member(server.addr, "Ana", "jogos");
    ana.join("filmes", None);
    let mut beto = Client::member(server.addr, "Beto", "segredo");
    beto.say("segredo", "plano secreto de sábado");
    ana.say("jogos", "sábado tem jogo");
    ana.say("filmes", "sábado tem filme");
    // A protected room Ana knows the name of but never joined.
    beto.join("cofre", Some("senha-forte"));
    let (_, _) = beto.text_ref("cofre", "sábado no cofre", json!("k"));

    assert_eq!(
        found(&mut ana, "sabado"),
        ["sábado tem filme", "sábado tem jogo"],
        "Beto's rooms are not Ana's"
    );
    assert!(found(&mut ana, "secreto").is_empty());
    assert_eq!(
        found(&mut beto, "sabado"),
        ["sábado no cofre", "plano secreto de sábado"]
    );

    // Naming a room: only that room; one not joined is refused, whether it exists or not.
    let only = search(&mut ana, json!({"q": "sabado", "room": "FILMES"}));
    assert_eq!(texts(&only), ["sábado tem filme"]);
    assert_eq!(only["messages"][0]["room"], "filmes");
    ana.expect_error(
        json!({"type": "search", "q": "sabado", "room": "segredo"}),
        "not_in_room",
    );
    ana.expect_error(
        json!({"type": "search", "q": "sabado", "room": "cofre"}),
        "not_in_room",
    );
    ana.expect_error(
        json!({"type": "search", "q": "sabado", "room": "nenhuma"}),
        "no_such_room",
    );
    ana.expect_error(
        json!({"type": "search", "q": "sabado", "room": ""}),
        "invalid_room",
    );

    // Leaving takes a room out of the search.
    let left = ana.request(json!({"type": "leave", "room": "filmes"}), json!("l"));
    assert_eq!(left["type"], "left");
    assert_eq!(found(&mut ana, "sabado"), ["sábado tem jogo"]);

    // A connection in no room finds nothing, and is not refused.
    let mut caio = Client::hello(server.addr, "Caio");
    assert!(found(&mut caio, "sabado").is_empty());
}

#[test]
fn an_account_finds_its_dms_and_nobody_else_does() {
    let dir = TempDir::new("search-dms");
    let server = server_on(&dir.file("papo.db"));
    let password = "senha-longa-1";
    let cookies: Vec<String> = ["Ana", "Beto", "Caio"]
        .iter()
        .map(|n| register(server.addr, n, password))
        .collect();
    let (mut ana, _) = Client::signed_in(server.addr, &cookies[0]);
    let (mut beto, _) = Client::signed_in(server.addr, &cookies[1]);
    let (mut caio, _) = Client::signed_in(server.addr, &cookies[2]);
    ana.join("sala", None);
    caio.join("sala", None);
    let dm = ana.request(
        json!({"type": "dm", "to": "Beto", "text": "encontro às três"}),
        json!("dm"),
    );
    assert_eq!(dm["type"], "dm");
    beto.recv_type("dm");
    ana.say("sala", "encontro na sala");

    let reply = search(&mut beto, json!({"q": "encontro"}));
    assert_eq!(
        texts(&reply),
        ["encontro às três"],
        "Beto is not in the room"
    );
    let got = &reply["messages"][0];
    assert_eq!(got["type"], "dm");
    assert_eq!(got["from"], "Ana");
    assert_eq!(got["to"], "Beto");
    assert_eq!(got["id"], dm["id"]);
    assert!(got.get("ref").is_none(), "{got}");

    assert_eq!(
        found(&mut ana, "encontro"),
        ["encontro na sala", "encontro às três"]
    );
    assert_eq!(
        found(&mut caio, "encontro"),
        ["encontro na sala"],
        "a third account never sees the DM"
    );
    let room_only = search(&mut ana, json!({"q": "encontro", "room": "sala"}));
    assert_eq!(
        texts(&room_only),
        ["encontro na sala"],
        "a room search has no DMs"
    );

    // A guest has no DMs to search, and a guest's DMs are never kept.
    let mut dani = Client::member(server.addr, "Dani", "sala");
    let to_guest = ana.request(
        json!({"type": "dm", "to": "Dani", "text": "encontro secreto"}),
        json!("dm2"),
    );
    assert_eq!(to_guest["type"], "dm");
    assert_eq!(found(&mut dani, "encontro"), ["encontro na sala"]);
}

#[test]
fn edit_and_delete_show_at_once_in_search() {
    // The moderation commands: the author edits, a moderator deletes; the very next
    // search (sent without waiting for anything else) sees both.
    let dir = TempDir::new("search-moderation");
    let server = server_on(&dir.file("papo.db"));
    let cookie = register(server.addr, "Ana", "senha-longa-1");
    let (mut ana, _) = Client::signed_in(server.addr, &cookie);
    ana.join("sala", None);
    let (typo, _) = ana.text_ref("sala", "vamos jogr hoje", json!(1));
    let (spam, _) = ana.text_ref("sala", "compre pilulas", json!(2));
    assert_eq!(found(&mut ana, "jogr"), ["vamos jogr hoje"]);

    ana.send(json!({"type": "edit", "id": typo["id"], "text": "vamos jogar hoje"}));
    ana.send(json!({"type": "delete", "id": spam["id"]}));
    let reply = search(&mut ana, json!({"q": "jogar"}));
    assert_eq!(texts(&reply), ["vamos jogar hoje"]);
    assert!(reply["messages"][0]["edited_ts"].is_u64(), "{reply}");
    assert!(found(&mut ana, "jogr").is_empty(), "the old text is gone");
    assert!(
        found(&mut ana, "pilulas").is_empty(),
        "a deleted message is gone"
    );
}

#[test]
fn edits_and_deletes_in_the_database_show_at_once() {
    // The moderation commands (edit, delete) are another helper's; they change `messages`
    // with a plain UPDATE or DELETE, which the index's triggers follow. Here the same
    // statements come from another connection to the file while the server runs.
    let dir = TempDir::new("search-edits");
    let db = dir.file("papo.db");
    let server = server_on(&db);
    let mut ana = Client::member(server.addr, "Ana", "sala");
    let (first, _) = ana.text_ref("sala", "errro de digitação", json!(1));
    let (second, _) = ana.text_ref("sala", "mensagem de spam", json!(2));
    assert_eq!(found(&mut ana, "errro"), ["errro de digitação"]);

    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn.execute(
        "UPDATE messages SET text = 'erro de digitação' WHERE id = ?1",
        [first["id"].as_i64().unwrap()],
    )
    .unwrap();
    conn.execute(
        "DELETE FROM messages WHERE id = ?1",
        [second["id"].as_i64().unwrap()],
    )
    .unwrap();
    assert!(found(&mut ana, "errro").is_empty(), "the old text is gone");
    assert_eq!(found(&mut ana, "erro"), ["erro de digitação"]);
    assert!(
        found(&mut ana, "spam").is_empty(),
        "a deleted message is gone"
    );
    assert_eq!(found(&mut ana, "de"), ["erro de digitação"]);
}

#[test]
fn survives_a_restart() {
    let dir = TempDir::new("search-restart");
    let db = dir.file("papo.db");
    let mut server = server_on(&db);
    let mut ana = Client::member(server.addr, "Ana", "sala");
    ana.text_ref("sala", "lembrança de ontem", json!(1));
    drop(ana);
    server.shutdown();
    let server = server_on(&db);
    let mut ana = Client::member(server.addr, "Ana", "sala");
    ana.say("sala", "lembrança de hoje");
    assert_eq!(
        found(&mut ana, "lembranca"),
        ["lembrança de hoje", "lembrança de ontem"]
    );
}

#[test]
fn a_database_from_before_the_index_is_indexed_by_the_migration() {
    // What papo wrote before search (the schema version before it, marked as papo's),
    // with messages: one of them edited.
    let dir = TempDir::new("search-migrate");
    let db = dir.file("papo.db");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(&format!(
        "CREATE TABLE rooms (
             id INTEGER PRIMARY KEY, name TEXT NOT NULL, name_key TEXT NOT NULL UNIQUE,
             password_hash TEXT, creator TEXT NOT NULL, created_at INTEGER NOT NULL);
         CREATE TABLE messages (
             id INTEGER PRIMARY KEY, room_id INTEGER REFERENCES rooms(id),
             sender TEXT NOT NULL, recipient TEXT, text TEXT NOT NULL, ts INTEGER NOT NULL);
         CREATE INDEX messages_by_room ON messages(room_id, id);
         {}
         {}
         INSERT INTO rooms (id, name, name_key, password_hash, creator, created_at) VALUES (1, 'Antiga', 'antiga', NULL, 'Ana', {now_ms});
         INSERT INTO rooms (id, name, name_key, password_hash, creator, created_at) VALUES (2, 'Outra', 'outra', NULL, 'Beto', {now_ms});
         INSERT INTO messages (id, room_id, sender, recipient, text, ts, sender_account, recipient_account, edited_ts) VALUES (7, 1, 'Ana', NULL, 'Conversa de antes', {now_ms}, NULL, NULL, {now_ms});
         INSERT INTO messages (id, room_id, sender, recipient, text, ts, sender_account, recipient_account, edited_ts) VALUES (8, 2, 'Beto', NULL, 'conversa alheia', {now_ms}, NULL, NULL, NULL);
         PRAGMA user_version = {};
         PRAGMA application_id = {};",
        papo::store::accounts::MIGRATION,
        papo::store::moderation::MIGRATION,
        // The version before search's migration: attachments' (files) came after it.
        papo::store::SCHEMA_VERSION - 2,
        papo::store::APPLICATION_ID
    ))
    .unwrap();
    drop(conn);
    let server = server_on(&db);
    let mut ana = Client::member(server.addr, "Ana", "antiga");
    ana.say("antiga", "conversa de agora");
    let reply = search(&mut ana, json!({"q": "conversa"}));
    assert_eq!(texts(&reply), ["conversa de agora", "Conversa de antes"]);
    assert!(
        reply["messages"][1]["edited_ts"].is_u64(),
        "an edited message says so: {reply}"
    );
    let version: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, papo::store::SCHEMA_VERSION);
}

#[test]
fn empty_long_or_wordy_q_is_a_bad_request() {
    let server = TestServer::default_config();
    let mut ana = Client::member(server.addr, "Ana", "sala");
    for q in ["", "   ", "?!", &"a".repeat(201)] {
        ana.expect_error(json!({"type": "search", "q": q}), "bad_request");
    }
    ana.expect_error(
        json!({"type": "search", "q": "a b c d e f g h i"}),
        "bad_request",
    );
    ana.expect_error(json!({"type": "search"}), "bad_request");
    ana.expect_error(json!({"type": "search", "q": 5}), "bad_request");
    ana.expect_error(
        json!({"type": "search", "q": "oi", "room": 5}),
        "bad_request",
    );
    // The longest q and the most words are fine.
    search(&mut ana, json!({"q": "a".repeat(200)}));
    search(&mut ana, json!({"q": "a b c d e f g h"}));
    ana.assert_alive();
}

#[test]
fn on_a_memory_database_too() {
    let server = TestServer::default_config();
    let mut ana = Client::member(server.addr, "Ana", "sala");
    ana.say("sala", "na memória");
    assert_eq!(found(&mut ana, "memoria"), ["na memória"]);
}

#[test]
fn replies_keep_the_order_of_requests() {
    let dir = TempDir::new("search-order");
    let server = server_on(&dir.file("papo.db"));
    let mut ana = Client::member(server.addr, "Ana", "sala");
    ana.say("sala", "ordem");
    for i in 0..5 {
        ana.send(json!({"type": "search", "q": "ordem", "ref": format!("s{i}")}));
        ana.send(json!({"type": "list", "ref": format!("l{i}")}));
    }
    ana.send(json!({"type": "leave", "room": "sala", "ref": "leave"}));
    let mut refs = Vec::new();
    while refs.len() < 11 {
        let v = ana.recv();
        if let Some(r) = v.get("ref") {
            refs.push(r.as_str().unwrap().to_string());
        }
    }
    let expected: Vec<String> = (0..5)
        .flat_map(|i| [format!("s{i}"), format!("l{i}")])
        .chain(["leave".to_string()])
        .collect();
    assert_eq!(refs, expected);
}

#[test]
fn searches_are_rate_limited_per_connection() {
    let server = TestServer::default_config();
    let mut ana = Client::member(server.addr, "Ana", "sala");
    for i in 0..40 {
        ana.send(json!({"type": "search", "q": "x", "ref": i}));
    }
    let mut limited = 0;
    for _ in 0..40 {
        let v = ana.recv_until(|v| v.get("ref").is_some());
        if v["type"] == "error" {
            assert_eq!(v["code"], "rate_limited", "{v}");
            limited += 1;
        }
    }
    assert!(limited > 0 && limited < 40, "{limited} of 40 limited");
    let mut beto = Client::member(server.addr, "Beto", "sala");
    search(&mut beto, json!({"q": "x"}));
}
