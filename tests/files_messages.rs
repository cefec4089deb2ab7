//! Files on messages over real TCP: `files` on `text` and `dm` (then the text may be
//! empty), what `message` and `dm` events carry, `no_such_file` for an unknown id, another
//! account's or a guest's, and `history` and `dm_history` after a restart.

mod common;

use common::files::*;
use common::*;
use serde_json::{json, Value};

fn server_on(dir: &TempDir) -> TestServer {
    let mut config = files_config(dir);
    config.db = dir.file("papo.db");
    TestServer::start(config)
}

/// The summary an upload answered, as events carry it.
fn summary(file: &Value) -> Value {
    file.clone()
}

#[test]
fn a_text_with_files_reaches_every_member_with_their_summaries() {
    let dir = TempDir::new("files-text");
    let server = TestServer::start(files_config(&dir));
    let ana_cookie = account(server.addr, "Ana");
    let a = uploaded(server.addr, &ana_cookie, "a.pdf", b"%PDF-1.4 a tiny pdf");
    let b = uploaded(server.addr, &ana_cookie, "b.txt", b"texto");
    let (mut ana, _) = Client::signed_in(server.addr, &ana_cookie);
    ana.create("fotos", None);
    ana.join("fotos", None);
    let mut beto = Client::member(server.addr, "Beto", "fotos");
    ana.recv_type("presence");
    let files = json!([a["id"], b["id"]]);
    let ack = ana.request(
        json!({"type": "text", "room": "fotos", "text": "", "files": files}),
        json!(1),
    );
    assert_eq!(ack["type"], "ack", "{ack}");
    let message = beto.recv_type("message");
    assert_eq!(message["text"], "");
    assert_eq!(message["files"], json!([summary(&a), summary(&b)]));
    // Without files the field is absent, as in version 1.
    ana.say("fotos", "sem anexos");
    let plain = beto.recv_message("fotos", "sem anexos");
    assert!(plain.get("files").is_none(), "{plain}");
    // And the room's recent history (joined.history) has them too.
    let mut caio = Client::hello(server.addr, "Caio");
    let joined = caio.join("fotos", None);
    let with_files = &joined["history"][0];
    assert_eq!(with_files["files"], message["files"], "{joined}");
}

#[test]
fn no_such_file_for_unknown_ids_another_account_s_and_guests() {
    let dir = TempDir::new("files-nosuch");
    let server = TestServer::start(files_config(&dir));
    let ana_cookie = account(server.addr, "Ana");
    let beto_cookie = account(server.addr, "Beto");
    let betos = uploaded(server.addr, &beto_cookie, "b.png", b"beto's");
    let anas = uploaded(server.addr, &ana_cookie, "a.png", b"ana's");
    let (mut ana, _) = Client::signed_in(server.addr, &ana_cookie);
    ana.create("sala", None);
    ana.join("sala", None);
    let unknown = "AAAAAAAAAAAAAAAAAAAAAA";
    for files in [json!([unknown]), json!([anas["id"], betos["id"]])] {
        let cmd = json!({"type": "text", "room": "sala", "text": "x", "files": files});
        ana.expect_error(cmd, "no_such_file");
        let cmd = json!({"type": "dm", "to": "Beto", "text": "x", "files": files});
        ana.expect_error(cmd, "no_such_file");
    }
    // A guest cannot attach anything, not even an id it saw.
    let mut guest = Client::member(server.addr, "Convidado", "sala");
    let cmd = json!({"type": "text", "room": "sala", "text": "x", "files": [anas["id"]]});
    guest.expect_error(cmd, "no_such_file");
    // Malformed lists are bad requests; a room not joined is still not_in_room first.
    ana.expect_error(
        json!({"type": "text", "room": "sala", "text": "x", "files": []}),
        "bad_request",
    );
    ana.expect_error(
        json!({"type": "text", "room": "sala", "text": "x", "files": [1, 2]}),
        "bad_request",
    );
    ana.expect_error(
        json!({"type": "text", "room": "outra", "text": "x", "files": [unknown]}),
        "no_such_room",
    );
    // Nothing was sent: the room is quiet, and the right file still works.
    ana.assert_alive();
    let ack = ana.request(
        json!({"type": "text", "room": "sala", "files": [anas["id"]]}),
        json!(2),
    );
    assert_eq!(ack["type"], "ack", "{ack}");
}

#[test]
fn files_on_text_and_dm_survive_a_restart_in_history_and_dm_history() {
    let dir = TempDir::new("files-restart");
    let mut server = server_on(&dir);
    let ana_cookie = account(server.addr, "Ana");
    let beto_cookie = account(server.addr, "Beto");
    let pdf = uploaded(server.addr, &ana_cookie, "relatório.pdf", b"%PDF-1.7 ...");
    let txt = uploaded(server.addr, &ana_cookie, "n.txt", b"notas");
    let (mut ana, _) = Client::signed_in(server.addr, &ana_cookie);
    let (mut beto, _) = Client::signed_in(server.addr, &beto_cookie);
    ana.create("docs", None);
    ana.join("docs", None);
    let (ack, _) = {
        let ack = ana.request(
            json!({"type": "text", "room": "docs", "text": "o relatório", "files": [pdf["id"]]}),
            json!("t"),
        );
        (ack, ())
    };
    assert_eq!(ack["type"], "ack");
    let dm = ana.request(
        json!({"type": "dm", "to": "Beto", "text": "", "files": [txt["id"], pdf["id"]]}),
        json!("d"),
    );
    assert_eq!(dm["files"], json!([summary(&txt), summary(&pdf)]));
    let got = beto.recv_type("dm");
    assert_eq!(got["files"], dm["files"]);
    ana.assert_alive();
    std::thread::sleep(std::time::Duration::from_millis(300));
    drop((ana, beto));
    server.shutdown();

    let server = server_on(&dir);
    let (mut ana, _) = Client::signed_in(server.addr, &ana_cookie);
    let joined = ana.join("docs", None);
    let message = joined["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["text"] == "o relatório")
        .cloned()
        .expect("the message is kept");
    assert_eq!(message["files"], json!([summary(&pdf)]));
    let history = ana.request(json!({"type": "history", "room": "docs"}), json!("h"));
    assert_eq!(history["messages"][0]["files"], json!([summary(&pdf)]));
    let dms = ana.request(json!({"type": "dm_history", "with": "Beto"}), json!("dh"));
    assert_eq!(
        dms["messages"][0]["files"],
        json!([summary(&txt), summary(&pdf)])
    );
    // The files are still Ana's to attach after the restart.
    let ack = ana.request(
        json!({"type": "text", "room": "docs", "files": [txt["id"]]}),
        json!("again"),
    );
    assert_eq!(ack["type"], "ack", "{ack}");
}

#[test]
fn deleting_a_message_removes_its_files_and_an_edit_keeps_them() {
    let dir = TempDir::new("files-delete");
    let server = TestServer::start(files_config(&dir));
    let ana_cookie = account(server.addr, "Ana");
    let a = uploaded(server.addr, &ana_cookie, "a.txt", b"only on the first");
    let b = uploaded(server.addr, &ana_cookie, "b.txt", b"on both");
    let (mut ana, _) = Client::signed_in(server.addr, &ana_cookie);
    ana.create("sala", None);
    ana.join("sala", None);
    let first = ana.request(
        json!({"type": "text", "room": "sala", "text": "1", "files": [a["id"], b["id"]]}),
        json!("m1"),
    );
    let second = ana.request(
        json!({"type": "text", "room": "sala", "text": "2", "files": [b["id"]]}),
        json!("m2"),
    );
    let edited = ana.request(
        json!({"type": "edit", "id": second["id"], "text": "dois"}),
        json!("e"),
    );
    assert_eq!(edited["type"], "edited", "{edited}");
    let deleted = ana.request(json!({"type": "delete", "id": first["id"]}), json!("d"));
    assert_eq!(deleted["type"], "deleted", "{deleted}");

    let (a_id, b_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let deadline = std::time::Instant::now() + WAIT;
    while listing(&dir.file("files")).contains(&a_id.to_string()) {
        assert!(std::time::Instant::now() < deadline, "a's bytes stayed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        listing(&dir.file("files")),
        [b_id.to_string()],
        "b is still on message 2"
    );
    ana.expect_error(
        json!({"type": "text", "room": "sala", "files": [a_id]}),
        "no_such_file",
    );
    let history = ana.request(json!({"type": "history", "room": "sala"}), json!("h"));
    let messages = history["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{history}");
    assert_eq!(messages[0]["text"], "dois");
    assert_eq!(messages[0]["files"], json!([summary(&b)]));
    // The room's recent messages in memory agree (joined.history).
    let mut beto = Client::hello(server.addr, "Beto");
    let joined = beto.join("sala", None);
    assert_eq!(
        joined["history"][0]["files"],
        json!([summary(&b)]),
        "{joined}"
    );
    assert_eq!(joined["history"][0]["text"], "dois");
}

#[test]
fn deleting_a_room_removes_the_files_of_its_messages() {
    let dir = TempDir::new("files-delete-room");
    let server = TestServer::start(files_config(&dir));
    let ana_cookie = account(server.addr, "Ana");
    let a = uploaded(server.addr, &ana_cookie, "a.txt", b"in the room");
    let (mut ana, _) = Client::signed_in(server.addr, &ana_cookie);
    ana.create("sala", None);
    ana.join("sala", None);
    let ack = ana.request(
        json!({"type": "text", "room": "sala", "files": [a["id"]]}),
        json!(1),
    );
    assert_eq!(ack["type"], "ack");
    let removed = ana.request(json!({"type": "delete_room", "room": "sala"}), json!(2));
    assert_eq!(removed["type"], "room_removed", "{removed}");
    let deadline = std::time::Instant::now() + WAIT;
    while !listing(&dir.file("files")).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the room's files stayed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn search_results_carry_their_files() {
    let dir = TempDir::new("files-search");
    let server = TestServer::start(files_config(&dir));
    let ana_cookie = account(server.addr, "Ana");
    let file = uploaded(server.addr, &ana_cookie, "mapa.pdf", b"%PDF-1.4 mapa");
    let (mut ana, _) = Client::signed_in(server.addr, &ana_cookie);
    ana.create("viagem", None);
    ana.join("viagem", None);
    let ack = ana.request(
        json!({"type": "text", "room": "viagem", "text": "o mapa da trilha", "files": [file["id"]]}),
        json!(1),
    );
    assert_eq!(ack["type"], "ack");
    let found = ana.request(json!({"type": "search", "q": "trilha"}), json!(2));
    assert_eq!(
        found["messages"][0]["files"],
        json!([summary(&file)]),
        "{found}"
    );
}
