//! Moderation of messages over real TCP (PROTOCOL.md 1.1, "Moderation"): `edit` by the
//! author, `delete` by the author or a moderator of the room, in rooms and DMs, with who
//! may and who may not; `history`, `joined.history` and `dm_history` showing edits and
//! leaving deleted messages out, also after a restart; and no deleted text left in the file.

mod common;

use common::*;
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse";

fn server_on(db: &str) -> TestServer {
    let mut config = test_config();
    config.db = db.into();
    config.accounts.registrations_per_hour = 0;
    TestServer::start(config)
}

fn server() -> TestServer {
    server_on(":memory:")
}

/// Registers `name` and signs a connection in with its cookie.
fn account(s: &TestServer, name: &str) -> (Client, String) {
    let cookie = register(s.addr, name, PASSWORD);
    let (client, _) = Client::signed_in(s.addr, &cookie);
    (client, cookie)
}

/// Sends a room text with a ref and returns the message's id.
fn say(c: &mut Client, room: &str, text: &str) -> u64 {
    let (ack, _) = c.text_ref(room, text, json!(format!("say-{text}")));
    ack["id"].as_u64().unwrap()
}

fn history(c: &mut Client, room: &str) -> Vec<Value> {
    let h = c.request(json!({"type": "history", "room": room}), json!("history"));
    assert_eq!(h["type"], "history", "{h}");
    h["messages"].as_array().unwrap().clone()
}

fn texts(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_author_edits_and_every_member_sees_it_in_events_and_history() {
    let s = server();
    let (mut ana, _) = account(&s, "Ana");
    let (mut beto, _) = account(&s, "Beto");
    ana.join("jogos", None);
    beto.join("jogos", None);
    let id = say(&mut beto, "jogos", "oi gente");
    ana.recv_message("jogos", "oi gente");

    let edited = beto.request(
        json!({"type": "edit", "id": id, "text": "  olá, gente  "}),
        json!("e"),
    );
    assert_eq!(edited["type"], "edited", "{edited}");
    assert_eq!(
        (&edited["room"], &edited["id"], &edited["text"]),
        (&json!("jogos"), &json!(id), &json!("olá, gente")),
        "the text is trimmed as text is: {edited}"
    );
    let edited_ts = edited["edited_ts"].as_u64().expect("edited_ts");
    let seen = ana.recv_type("edited");
    assert_eq!(
        seen,
        json!({"type": "edited", "room": "jogos", "id": id, "text": "olá, gente", "edited_ts": edited_ts})
    );
    beto.assert_silent(QUIET);

    // history and a newcomer's joined.history carry the current text and edited_ts.
    let h = history(&mut ana, "jogos");
    assert_eq!(texts(&h), vec!["olá, gente"]);
    assert_eq!(h[0]["edited_ts"], edited_ts);
    assert_eq!(h[0]["from"], "Beto");
    let mut caio = Client::hello(s.addr, "Caio");
    let joined = caio.join("jogos", None);
    assert_eq!(joined["history"][0]["text"], "olá, gente");
    assert_eq!(joined["history"][0]["edited_ts"], edited_ts);

    // Only the author edits: not the admin, not another member.
    ana.expect_error(json!({"type": "edit", "id": id, "text": "x"}), "forbidden");
    caio.expect_error(json!({"type": "edit", "id": id, "text": "x"}), "forbidden");
    // The text rules hold, and a message that does not exist is no_such_message.
    beto.expect_error(
        json!({"type": "edit", "id": id, "text": "   "}),
        "invalid_text",
    );
    let long = "é".repeat(4001);
    beto.expect_error(
        json!({"type": "edit", "id": id, "text": long}),
        "invalid_text",
    );
    beto.expect_error(
        json!({"type": "edit", "id": id + 1000, "text": "x"}),
        "no_such_message",
    );
    beto.expect_error(json!({"type": "edit", "text": "x"}), "bad_request");
}

#[test]
fn the_author_or_a_moderator_deletes_and_nobody_else() {
    let s = server();
    let (_admin, _) = account(&s, "Admin");
    let (mut caio, _) = account(&s, "Caio");
    let (mut beto, _) = account(&s, "Beto");
    let (mut dario, _) = account(&s, "Dario");
    caio.create("sala-do-caio", None);
    dario.create("sala-do-dario", None);
    for c in [&mut caio, &mut beto, &mut dario] {
        c.join("sala-do-caio", None);
    }
    let mut guest = Client::member(s.addr, "Visita", "sala-do-caio");
    let first = say(&mut beto, "sala-do-caio", "primeira");
    let second = say(&mut beto, "sala-do-caio", "segunda");
    let third = say(&mut beto, "sala-do-caio", "terceira");

    // A member, the owner of another room, and a guest may not delete Beto's message.
    dario.expect_error(json!({"type": "delete", "id": first}), "forbidden");
    guest.expect_error(json!({"type": "delete", "id": first}), "forbidden");
    // Someone who cannot read the room is told there is no such message.
    let mut outsider = Client::hello(s.addr, "Fora");
    outsider.expect_error(json!({"type": "delete", "id": first}), "no_such_message");

    // The author deletes: every member hears it, the author gets the reply with its ref.
    let deleted = beto.request(json!({"type": "delete", "id": first}), json!("d"));
    assert_eq!(
        deleted,
        json!({"type": "deleted", "room": "sala-do-caio", "id": first, "ref": "d"})
    );
    for c in [&mut caio, &mut dario, &mut guest] {
        let d = c.recv_type("deleted");
        assert_eq!(
            d,
            json!({"type": "deleted", "room": "sala-do-caio", "id": first})
        );
    }
    // The owner of the room deletes anyone's message.
    let deleted = caio.request(json!({"type": "delete", "id": second}), json!("d2"));
    assert_eq!(deleted["type"], "deleted", "{deleted}");
    beto.recv_type("deleted");
    // Gone is gone.
    beto.expect_error(json!({"type": "delete", "id": first}), "no_such_message");
    beto.expect_error(
        json!({"type": "edit", "id": second, "text": "x"}),
        "no_such_message",
    );

    assert_eq!(
        texts(&history(&mut dario, "sala-do-caio")),
        vec!["terceira"]
    );
    let mut late = Client::hello(s.addr, "Tarde");
    let joined = late.join("sala-do-caio", None);
    assert_eq!(
        texts(joined["history"].as_array().unwrap()),
        vec!["terceira"]
    );
    assert_eq!(joined["history"][0]["id"], third);
}

#[test]
fn a_guest_edits_what_it_sent_on_this_connection_only() {
    let s = server();
    let mut ze = Client::member(s.addr, "Zé", "praça");
    let mut ana = Client::member(s.addr, "Ana", "praça");
    let id = say(&mut ze, "praça", "oi");
    let edited = ze.request(json!({"type": "edit", "id": id, "text": "oi!"}), json!(1));
    assert_eq!(edited["type"], "edited", "{edited}");
    ana.recv_type("edited");
    // Someone else under the same name later is someone else.
    drop(ze);
    ana.recv_until(|v| v["type"] == "presence" && v["left"] == json!(["Zé"]));
    let mut other_ze = Client::member(s.addr, "Zé", "praça");
    other_ze.expect_error(
        json!({"type": "edit", "id": id, "text": "meu"}),
        "forbidden",
    );
    other_ze.expect_error(json!({"type": "delete", "id": id}), "forbidden");
    // A guest moderates nothing, even in a room a guest made (only the admin does).
    let own = say(&mut ana, "praça", "da Ana");
    other_ze.expect_error(json!({"type": "delete", "id": own}), "forbidden");
}

#[test]
fn dm_edits_and_deletes_reach_both_accounts_on_every_connection() {
    let s = server();
    let (mut ana, ana_cookie) = account(&s, "Ana");
    let (mut ana_phone, _) = Client::signed_in(s.addr, &ana_cookie);
    let (mut beto, _) = account(&s, "Beto");
    let (mut caio, _) = account(&s, "Caio");
    let dm = ana.request(
        json!({"type": "dm", "to": "Beto", "text": "segredo"}),
        json!("dm"),
    );
    let id = dm["id"].as_u64().unwrap();
    beto.recv_type("dm");
    ana_phone.recv_type("dm");

    let edited = ana.request(
        json!({"type": "edit", "id": id, "text": "outro"}),
        json!("e"),
    );
    assert_eq!(edited["with"], "Beto", "{edited}");
    assert!(edited.get("room").is_none(), "{edited}");
    let ts = edited["edited_ts"].clone();
    assert_eq!(
        beto.recv_type("edited"),
        json!({"type": "edited", "with": "Ana", "id": id, "text": "outro", "edited_ts": ts})
    );
    assert_eq!(ana_phone.recv_type("edited")["with"], "Beto");
    caio.assert_silent(QUIET);

    // The recipient may not edit or delete the sender's DM; a third account cannot see it.
    beto.expect_error(json!({"type": "edit", "id": id, "text": "x"}), "forbidden");
    beto.expect_error(json!({"type": "delete", "id": id}), "forbidden");
    caio.expect_error(json!({"type": "delete", "id": id}), "no_such_message");
    caio.expect_error(
        json!({"type": "edit", "id": id, "text": "x"}),
        "no_such_message",
    );

    let h = beto.request(json!({"type": "dm_history", "with": "Ana"}), json!("h"));
    assert_eq!(h["messages"][0]["text"], "outro");
    assert_eq!(h["messages"][0]["edited_ts"], ts);

    let deleted = ana_phone.request(json!({"type": "delete", "id": id}), json!("d"));
    assert_eq!(
        deleted,
        json!({"type": "deleted", "with": "Beto", "id": id, "ref": "d"})
    );
    assert_eq!(
        beto.recv_type("deleted"),
        json!({"type": "deleted", "with": "Ana", "id": id})
    );
    assert_eq!(ana.recv_type("deleted")["with"], "Beto");
    let h = beto.request(json!({"type": "dm_history", "with": "Ana"}), json!("h2"));
    assert_eq!(h["messages"], json!([]));
}

#[test]
fn replies_keep_request_order_behind_the_lookup() {
    let s = server();
    let (mut ana, _) = account(&s, "Ana");
    ana.join("ordem", None);
    let id = say(&mut ana, "ordem", "um");
    // edit, then at once more commands: their replies come in the order sent.
    ana.send(json!({"type": "edit", "id": id, "text": "dois", "ref": 1}));
    ana.send(json!({"type": "who", "room": "ordem", "ref": 2}));
    ana.send(json!({"type": "delete", "id": id, "ref": 3}));
    ana.send(json!({"type": "list", "ref": 4}));
    let mut refs = Vec::new();
    while refs.len() < 4 {
        let v = ana.recv();
        if let Some(r) = v.get("ref") {
            refs.push((r.as_i64().unwrap(), v["type"].as_str().unwrap().to_string()));
        }
    }
    assert_eq!(
        refs,
        vec![
            (1, "edited".to_string()),
            (2, "members".to_string()),
            (3, "deleted".to_string()),
            (4, "rooms".to_string())
        ]
    );
}

#[test]
fn edits_and_deletes_survive_a_restart_and_deleted_text_leaves_the_file() {
    let dir = TempDir::new("moderation-restart");
    let db = dir.file("papo.db");
    let mut server = server_on(&db);
    let (mut ana, ana_cookie) = account(&server, "Ana");
    let (mut beto, _) = account(&server, "Beto");
    ana.join("arquivo", None);
    let kept = say(&mut ana, "arquivo", "fica");
    let changed = say(&mut ana, "arquivo", "antes");
    let gone = say(&mut ana, "arquivo", "zqxj-apagada-zqxj");
    let dm = ana.request(
        json!({"type": "dm", "to": "Beto", "text": "dm-zqxj-some"}),
        json!(1),
    );
    let dm_id = dm["id"].as_u64().unwrap();
    beto.recv_type("dm");
    let edited = ana.request(
        json!({"type": "edit", "id": changed, "text": "depois"}),
        json!(2),
    );
    let edited_ts = edited["edited_ts"].clone();
    ana.request(json!({"type": "delete", "id": gone}), json!(3));
    ana.request(json!({"type": "delete", "id": dm_id}), json!(4));
    ana.assert_alive();
    drop((ana, beto));
    server.shutdown();

    let bytes = dir.all_bytes();
    let found = |needle: &str| find(&bytes, needle.as_bytes()).is_some();
    assert!(
        found("fica") && found("depois"),
        "the kept text is in the file"
    );
    assert!(
        !found("zqxj-apagada-zqxj"),
        "a deleted message's text stays nowhere"
    );
    assert!(!found("dm-zqxj-some"), "a deleted DM's text stays nowhere");

    let server = server_on(&db);
    let (mut ana, _) = Client::signed_in(server.addr, &ana_cookie);
    let joined = ana.join("arquivo", None);
    let h = joined["history"].as_array().unwrap();
    assert_eq!(texts(h), vec!["fica", "depois"]);
    assert_eq!(h[0]["id"], kept);
    assert!(h[0].get("edited_ts").is_none(), "never edited: {}", h[0]);
    assert_eq!(h[1]["edited_ts"], edited_ts);
    assert_eq!(texts(&history(&mut ana, "arquivo")), vec!["fica", "depois"]);
    let dms = ana.request(json!({"type": "dm_history", "with": "Beto"}), json!(5));
    assert_eq!(dms["messages"], json!([]));
    ana.expect_error(
        json!({"type": "edit", "id": gone, "text": "x"}),
        "no_such_message",
    );
    let again = ana.request(
        json!({"type": "edit", "id": changed, "text": "de novo"}),
        json!(6),
    );
    assert_eq!(
        again["type"], "edited",
        "the author is known after a restart: {again}"
    );
}
