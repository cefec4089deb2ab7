//! Moderation of rooms over real TCP (PROTOCOL.md 1.1, "Moderation"): `kick` with and
//! without a ban, timed and open bans on accounts and on guests (name and address),
//! `unban`, `delete_room`, who may do each, and bans holding across reconnects and
//! restarts and ending on time. A moderation minute is shortened for the tests (the
//! server's `moderation_minute`), so a one-minute ban ends in a fraction of a second.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse";
/// How long one of the protocol's `minutes` lasts in these tests.
const MINUTE: Duration = Duration::from_millis(400);

fn server_on(db: &str) -> TestServer {
    let mut config = test_config();
    config.db = db.into();
    config.accounts.registrations_per_hour = 0;
    config.moderation_minute = MINUTE;
    TestServer::start(config)
}

fn server() -> TestServer {
    server_on(":memory:")
}

fn account(s: &TestServer, name: &str) -> (Client, String) {
    let cookie = register(s.addr, name, PASSWORD);
    let (client, _) = Client::signed_in(s.addr, &cookie);
    (client, cookie)
}

/// Says `hello` as `name`, again while the name is still held by a connection the test has
/// just dropped: the server frees it when it notices the close, a moment later.
fn hello_once_free(s: &TestServer, name: &str) -> Client {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = Client::connect(s.addr);
        c.send(json!({"type": "hello", "name": name}));
        let reply = c.recv();
        if reply["type"] == "welcome" {
            return c;
        }
        assert_eq!(reply["code"], "name_taken", "{reply}");
        assert!(Instant::now() < deadline, "{name} was never freed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn join_reply(c: &mut Client, room: &str) -> Value {
    c.request(json!({"type": "join", "room": room}), json!("join"))
}

fn left_presence(c: &mut Client, room: &str, who: &str) -> Value {
    let (room, who) = (room.to_string(), who.to_string());
    c.recv_until(move |v| {
        v["type"] == "presence"
            && v["room"] == room.as_str()
            && v["left"]
                .as_array()
                .is_some_and(|l| l.iter().any(|n| n == who.as_str()))
    })
}

#[test]
fn the_owner_kicks_a_member_who_leaves_and_may_come_back() {
    let s = server();
    let (_admin, _) = account(&s, "Admin");
    let (mut ana, _) = account(&s, "Ana");
    let (mut beto, beto_cookie) = account(&s, "Beto");
    let (mut beto_phone, _) = Client::signed_in(s.addr, &beto_cookie);
    let mut caio = Client::hello(s.addr, "Caio");
    ana.create("clube", None);
    ana.join("clube", None);
    beto.join("clube", None);
    // The account's second connection is no presence news: no presence to wait for.
    assert_eq!(join_reply(&mut beto_phone, "clube")["type"], "joined");
    caio.join("clube", None);

    let reply = ana.request(
        json!({"type": "kick", "room": "clube", "user": "beto"}),
        json!("k"),
    );
    assert_eq!(
        reply,
        json!({"type": "kicked", "room": "clube", "user": "Beto", "ref": "k"})
    );
    for c in [&mut beto, &mut beto_phone] {
        assert_eq!(
            c.recv_type("kicked"),
            json!({"type": "kicked", "room": "clube", "user": "Beto"})
        );
    }
    let p = left_presence(&mut caio, "clube", "Beto");
    assert_eq!(p["member_count"], 2, "{p}");
    // Out of the room: its events no longer reach Beto.
    beto.expect_error(json!({"type": "who", "room": "clube"}), "not_in_room");
    caio.say("clube", "depois do kick");
    ana.recv_message("clube", "depois do kick");
    beto.assert_silent(QUIET);
    // The membership ended: a new connection of Beto's is not a member any more.
    let (_, welcome) = Client::signed_in(s.addr, &beto_cookie);
    assert_eq!(welcome["memberships"], json!([]), "{welcome}");
    // A kick without a ban: Beto may come straight back.
    assert_eq!(join_reply(&mut beto, "clube")["type"], "joined");
    // A guest is kicked the same way.
    let reply = ana.request(
        json!({"type": "kick", "room": "clube", "user": "Caio"}),
        json!(2),
    );
    assert_eq!(reply["type"], "kicked", "{reply}");
    caio.recv_type("kicked");
    caio.expect_error(
        json!({"type": "text", "room": "clube", "text": "oi"}),
        "not_in_room",
    );
}

#[test]
fn only_moderators_moderate_a_room() {
    let s = server();
    let (mut admin, _) = account(&s, "Admin");
    let (mut ana, _) = account(&s, "Ana");
    let (mut beto, _) = account(&s, "Beto");
    let (mut dario, _) = account(&s, "Dario");
    let mut guest = Client::hello(s.addr, "Visita");
    ana.create("clube", None);
    dario.create("outra", None);
    guest.create("da-visita", None);
    for c in [&mut ana, &mut beto, &mut dario, &mut guest] {
        c.join("clube", None);
    }
    let kick = |user: &str| json!({"type": "kick", "room": "clube", "user": user});
    // A member, the owner of another room, and a guest cannot kick, ban, unban or delete it.
    for c in [&mut beto, &mut dario, &mut guest] {
        c.expect_error(kick("Ana"), "forbidden");
        c.expect_error(
            json!({"type": "kick", "room": "clube", "user": "Beto", "minutes": 5}),
            "forbidden",
        );
        c.expect_error(
            json!({"type": "unban", "room": "clube", "user": "Beto"}),
            "forbidden",
        );
        c.expect_error(json!({"type": "delete_room", "room": "clube"}), "forbidden");
    }
    // The owner cannot kick itself, nor the admin.
    ana.expect_error(kick("Ana"), "forbidden");
    ana.expect_error(kick("Admin"), "forbidden");
    // The room must exist and the user too.
    ana.expect_error(
        json!({"type": "kick", "room": "nada", "user": "Beto"}),
        "no_such_room",
    );
    ana.expect_error(kick("Ninguém"), "no_such_user");
    ana.expect_error(
        json!({"type": "kick", "room": "clube", "user": "Beto", "minutes": 0}),
        "bad_request",
    );
    // A room a guest made has no owner: an account that is not the admin cannot moderate
    // it; the admin can.
    beto.expect_error(
        json!({"type": "delete_room", "room": "da-visita"}),
        "forbidden",
    );
    guest.expect_error(
        json!({"type": "delete_room", "room": "da-visita"}),
        "forbidden",
    );
    let reply = admin.request(
        json!({"type": "delete_room", "room": "da-visita"}),
        json!("d"),
    );
    assert_eq!(
        reply,
        json!({"type": "room_removed", "room": "da-visita", "ref": "d"})
    );
    // The admin moderates every room, also one it has not joined.
    let reply = admin.request(kick("Beto"), json!("k"));
    assert_eq!(reply["type"], "kicked", "{reply}");
    beto.recv_type("kicked");
}

#[test]
fn a_timed_ban_holds_across_reconnects_then_ends_on_time() {
    let s = server();
    let (_admin, _) = account(&s, "Admin");
    let (mut ana, _) = account(&s, "Ana");
    let (mut beto, beto_cookie) = account(&s, "Beto");
    ana.create("clube", None);
    beto.join("clube", None);
    let asked = Instant::now();
    let reply = ana.request(
        json!({"type": "kick", "room": "clube", "user": "Beto", "minutes": 2}),
        json!("b"),
    );
    let until = reply["until"].as_u64().expect("until");
    assert_eq!(reply["ban"], true, "{reply}");
    let kicked = beto.recv_type("kicked");
    assert_eq!(kicked["until"], until);
    let banned = beto.expect_error(json!({"type": "join", "room": "clube"}), "banned");
    assert!(
        banned["message"].as_str().unwrap().contains("until"),
        "{banned}"
    );
    // A new connection is the same account: still banned.
    drop(beto);
    let (mut beto, _) = Client::signed_in(s.addr, &beto_cookie);
    beto.expect_error(json!({"type": "join", "room": "clube"}), "banned");
    // Two minutes of the test's clock later, the ban is over.
    let ends = asked + 2 * MINUTE + Duration::from_millis(100);
    std::thread::sleep(ends.saturating_duration_since(Instant::now()));
    assert_eq!(join_reply(&mut beto, "clube")["type"], "joined");
}

#[test]
fn an_open_ban_lasts_until_unban() {
    let s = server();
    let (_admin, _) = account(&s, "Admin");
    let (mut ana, _) = account(&s, "Ana");
    let (mut beto, _) = account(&s, "Beto");
    ana.create("clube", None);
    let reply = ana.request(
        json!({"type": "kick", "room": "clube", "user": "Beto", "ban": true}),
        json!("b"),
    );
    assert_eq!(
        reply,
        json!({"type": "kicked", "room": "clube", "user": "Beto", "ban": true, "ref": "b"})
    );
    std::thread::sleep(2 * MINUTE);
    beto.expect_error(json!({"type": "join", "room": "clube"}), "banned");
    let reply = ana.request(
        json!({"type": "unban", "room": "clube", "user": "BETO"}),
        json!("u"),
    );
    assert_eq!(
        reply,
        json!({"type": "unbanned", "room": "clube", "user": "Beto", "ref": "u"})
    );
    assert_eq!(join_reply(&mut beto, "clube")["type"], "joined");
    ana.expect_error(
        json!({"type": "unban", "room": "clube", "user": "Ninguém"}),
        "no_such_user",
    );
}

#[test]
fn a_banned_guest_stays_out_under_its_name_and_under_another_from_its_address() {
    let s = server();
    let (_admin, _) = account(&s, "Admin");
    let (mut ana, _) = account(&s, "Ana");
    ana.create("clube", None);
    let mut ze = Client::member(s.addr, "Zé", "clube");
    let reply = ana.request(
        json!({"type": "kick", "room": "clube", "user": "zé", "ban": true}),
        json!("b"),
    );
    assert_eq!(reply["user"], "Zé", "{reply}");
    ze.recv_type("kicked");
    ze.expect_error(json!({"type": "join", "room": "clube"}), "banned");
    drop(ze);
    // The same name (any case, any look-alike spelling), and another name from the same
    // address (every test client comes from 127.0.0.1).
    for name in ["Zé", "ZÉ", "Outro Nome"] {
        let mut again = hello_once_free(&s, name);
        again.expect_error(json!({"type": "join", "room": "clube"}), "banned");
    }
    // An account from that address is someone known: not banned.
    let (mut beto, _) = account(&s, "Beto");
    assert_eq!(join_reply(&mut beto, "clube")["type"], "joined");
    // The guest is gone, its ban is not: unban names it by its name.
    let reply = ana.request(
        json!({"type": "unban", "room": "clube", "user": "Zé"}),
        json!("u"),
    );
    assert_eq!(reply["type"], "unbanned", "{reply}");
    let mut back = Client::hello(s.addr, "Outro Nome");
    assert_eq!(join_reply(&mut back, "clube")["type"], "joined");
    // Banned again; back as Maria, kept out by the address; `unban Maria` lets her in.
    let ban = json!({"type": "kick", "room": "clube", "user": "Outro Nome", "ban": true});
    assert_eq!(ana.request(ban, json!("b2"))["type"], "kicked");
    drop(back);
    let mut maria = Client::hello(s.addr, "Maria");
    maria.expect_error(json!({"type": "join", "room": "clube"}), "banned");
    let unban = json!({"type": "unban", "room": "clube", "user": "Maria"});
    assert_eq!(ana.request(unban, json!("u2"))["type"], "unbanned");
    assert_eq!(join_reply(&mut maria, "clube")["type"], "joined");
}

#[test]
fn bans_survive_a_restart_and_still_end_on_time() {
    let dir = TempDir::new("moderation-bans");
    let db = dir.file("papo.db");
    let mut server = server_on(&db);
    let (_admin, _) = account(&server, "Admin");
    let (mut ana, ana_cookie) = account(&server, "Ana");
    let (_beto, beto_cookie) = account(&server, "Beto");
    let (_caio, caio_cookie) = account(&server, "Caio");
    ana.create("clube", None);
    ana.request(
        json!({"type": "kick", "room": "clube", "user": "Beto", "ban": true}),
        json!(1),
    );
    let asked = Instant::now();
    ana.request(
        json!({"type": "kick", "room": "clube", "user": "Caio", "minutes": 3}),
        json!(2),
    );
    ana.assert_alive();
    drop(ana);
    server.shutdown();

    let server = server_on(&db);
    let (mut beto, _) = Client::signed_in(server.addr, &beto_cookie);
    let (mut caio, _) = Client::signed_in(server.addr, &caio_cookie);
    beto.expect_error(json!({"type": "join", "room": "clube"}), "banned");
    caio.expect_error(json!({"type": "join", "room": "clube"}), "banned");
    // The owner is still the owner after the restart.
    let (mut ana, _) = Client::signed_in(server.addr, &ana_cookie);
    let reply = ana.request(
        json!({"type": "unban", "room": "clube", "user": "Beto"}),
        json!(3),
    );
    assert_eq!(reply["type"], "unbanned", "{reply}");
    assert_eq!(join_reply(&mut beto, "clube")["type"], "joined");
    let ends = asked + 3 * MINUTE + Duration::from_millis(100);
    std::thread::sleep(ends.saturating_duration_since(Instant::now()));
    assert_eq!(join_reply(&mut caio, "clube")["type"], "joined");
}

#[test]
fn delete_room_removes_it_for_everyone_with_its_messages() {
    let dir = TempDir::new("moderation-delete-room");
    let db = dir.file("papo.db");
    let mut server = server_on(&db);
    let (_admin, _) = account(&server, "Admin");
    let (mut ana, ana_cookie) = account(&server, "Ana");
    let (mut beto, beto_cookie) = account(&server, "Beto");
    let (mut caio, caio_cookie) = account(&server, "Caio");
    let mut watcher = Client::hello(server.addr, "Olho");
    ana.create("efêmera", Some("senha"));
    ana.join("efêmera", Some("senha"));
    beto.join("efêmera", Some("senha"));
    let (ack, _) = ana.text_ref("efêmera", "não fica", json!("t"));
    assert_eq!(ack["type"], "ack");
    beto.expect_error(
        json!({"type": "delete_room", "room": "efêmera"}),
        "forbidden",
    );
    let ban = json!({"type": "kick", "room": "efêmera", "user": "Caio", "ban": true});
    assert_eq!(ana.request(ban, json!("b"))["type"], "kicked");
    let join = json!({"type": "join", "room": "efêmera", "password": "senha"});
    caio.expect_error(join, "banned");

    let reply = ana.request(
        json!({"type": "delete_room", "room": "EFÊMERA"}),
        json!("x"),
    );
    assert_eq!(
        reply,
        json!({"type": "room_removed", "room": "efêmera", "ref": "x"})
    );
    for c in [&mut beto, &mut watcher] {
        assert_eq!(
            c.recv_type("room_removed"),
            json!({"type": "room_removed", "room": "efêmera"})
        );
    }
    ana.assert_silent(QUIET);
    beto.expect_error(
        json!({"type": "text", "room": "efêmera", "text": "oi"}),
        "no_such_room",
    );
    let rooms = watcher.request(json!({"type": "list"}), json!("l"));
    assert_eq!(rooms["total"], 0, "{rooms}");
    ana.assert_alive();
    drop((ana, beto, caio));
    server.shutdown();

    let server = server_on(&db);
    let (_, welcome) = Client::signed_in(server.addr, &beto_cookie);
    assert_eq!(welcome["rooms_total"], 0, "{welcome}");
    assert_eq!(welcome["memberships"], json!([]), "{welcome}");
    // The name is free again, and the new room under it has no history of the old.
    let (mut ana, _) = Client::signed_in(server.addr, &ana_cookie);
    ana.create("efêmera", None);
    let joined = ana.join("efêmera", None);
    assert_eq!(joined["history"], json!([]));
    // The new room may have the old one's id; the old one's bans are not its bans.
    let (mut caio, _) = Client::signed_in(server.addr, &caio_cookie);
    assert_eq!(join_reply(&mut caio, "efêmera")["type"], "joined");
}

#[test]
fn memberships_name_the_rooms_owner_so_every_device_knows_its_moderator() {
    let s = server();
    let (_admin, _) = account(&s, "Admin");
    let (mut ana, ana_cookie) = account(&s, "Ana");
    ana.create("clube", None);
    assert_eq!(join_reply(&mut ana, "clube")["type"], "joined");
    // A guest's room has no owner: only the admin moderates it.
    let mut guest = Client::hello(s.addr, "Zé");
    guest.create("praça", None);
    let (mut beto, beto_cookie) = account(&s, "Beto");
    assert_eq!(join_reply(&mut beto, "clube")["type"], "joined");
    assert_eq!(join_reply(&mut beto, "praça")["type"], "joined");
    // `joined` stays as version 1 has it; `welcome.memberships` names the owner.
    let owner_in = |cookie: &str, room: &str| {
        let (_device, welcome) = Client::signed_in(s.addr, cookie);
        welcome["memberships"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["room"] == room)
            .unwrap_or_else(|| panic!("{welcome}"))["owner"]
            .clone()
    };
    assert_eq!(owner_in(&ana_cookie, "clube"), "Ana");
    assert_eq!(owner_in(&beto_cookie, "clube"), "Ana");
    assert!(owner_in(&beto_cookie, "praça").is_null());
}
