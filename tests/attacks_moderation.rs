//! Moderation attacked over real TCP, as a hostile user and a security reviewer would: a
//! banned author putting its spam back by editing, a ban slipping past a join whose
//! password was being checked, a room owner using `kick` to push notices at people who are
//! not in its room and no-op actions filling the audit table, an edit or deletion told as
//! done that the failing disk did not keep, a deleted room's late password hash becoming
//! its successor's, bans piling up without a cap, and made-up ids and minutes.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

const PASSWORD: &str = "correct horse";

fn server() -> TestServer {
    let mut config = test_config();
    config.accounts.registrations_per_hour = 0;
    TestServer::start(config)
}

fn account(s: &TestServer, name: &str) -> (Client, String) {
    let cookie = register(s.addr, name, PASSWORD);
    let (client, _) = Client::signed_in(s.addr, &cookie);
    (client, cookie)
}

fn say(c: &mut Client, room: &str, text: &str) -> u64 {
    let (ack, _) = c.text_ref(room, text, json!(format!("say-{text}")));
    ack["id"].as_u64().unwrap()
}

/// A kicked or banned author must not rewrite what the room shows: its old messages would
/// carry its spam straight back to every member, ban or not.
#[test]
fn a_kicked_or_banned_author_cannot_edit_its_messages_back_into_the_room() {
    let s = server();
    let (_admin, _) = account(&s, "Admin");
    let (mut ana, _) = account(&s, "Ana");
    let (mut beto, _) = account(&s, "Beto");
    ana.create("clube", None);
    ana.join("clube", None);
    beto.join("clube", None);
    let mut guest = Client::member(s.addr, "Visita", "clube");
    let spam = say(&mut beto, "clube", "spam");
    let guest_spam = say(&mut guest, "clube", "mais spam");

    let reply = ana.request(
        json!({"type": "kick", "room": "clube", "user": "Beto", "ban": true}),
        json!("ban"),
    );
    assert_eq!(reply["type"], "kicked", "{reply}");
    beto.recv_type("kicked");
    beto.expect_error(
        json!({"type": "edit", "id": spam, "text": "SPAM AGAIN"}),
        "not_in_room",
    );
    let reply = ana.request(
        json!({"type": "kick", "room": "clube", "user": "Visita"}),
        json!("kick"),
    );
    assert_eq!(reply["type"], "kicked", "{reply}");
    guest.recv_type("kicked");
    guest.expect_error(
        json!({"type": "edit", "id": guest_spam, "text": "SPAM AGAIN"}),
        "not_in_room",
    );
    // Nothing reached the room, and what it keeps is unchanged.
    let events = ana.collect_for(QUIET);
    assert!(
        events.iter().all(|e| e["type"] != "edited"),
        "an edit reached the room: {events:?}"
    );
    let h = ana.request(json!({"type": "history", "room": "clube"}), json!("h"));
    let texts: Vec<&str> = h["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["spam", "mais spam"], "{h}");
    // Taking its own words back stays possible.
    let reply = beto.request(json!({"type": "delete", "id": spam}), json!("del"));
    assert_eq!(reply["type"], "deleted", "{reply}");
}

/// A join to a protected room waits for its password's check (after a restart the server
/// knows only the hash, so argon2 runs); a ban set meanwhile must keep the user out when
/// the check comes back right.
#[test]
fn a_ban_set_while_the_join_password_is_checked_keeps_the_user_out() {
    let dir = TempDir::new("attack-ban-race");
    let db = dir.file("papo.db");
    let start = || {
        let mut config = test_config();
        config.db = db.clone();
        config.accounts.registrations_per_hour = 0;
        TestServer::start(config)
    };
    let mut s = start();
    let (_admin, _) = account(&s, "Admin");
    let ana_cookie = register(s.addr, "Ana", PASSWORD);
    let beto_cookie = register(s.addr, "Beto", PASSWORD);
    let (mut ana, _) = Client::signed_in(s.addr, &ana_cookie);
    ana.create("cofre", Some("segredo"));
    drop(ana);
    s.shutdown();
    drop(s);

    let s = start();
    let (mut ana, _) = Client::signed_in(s.addr, &ana_cookie);
    let (mut beto, _) = Client::signed_in(s.addr, &beto_cookie);
    beto.send(json!({"type": "join", "room": "cofre", "password": "segredo", "ref": "j"}));
    // The join reaches the hub first and waits for argon2 (tens of milliseconds).
    std::thread::sleep(Duration::from_millis(5));
    let reply = ana.request(
        json!({"type": "kick", "room": "cofre", "user": "Beto", "minutes": 60}),
        json!("ban"),
    );
    assert_eq!(reply["type"], "kicked", "{reply}");
    let join = beto.recv_until(|v| v["ref"] == "j");
    assert_eq!(join["type"], "error", "a banned user got in: {join}");
    assert_eq!(join["code"], "banned", "{join}");
    beto.expect_error(json!({"type": "who", "room": "cofre"}), "not_in_room");
}

/// Any account can make a room and so own one. `kick` must not become a way to push
/// notices (a room name of the sender's choosing) at people who are not in that room, nor
/// a way to fill the audit log with actions that changed nothing.
#[test]
fn kick_reaches_only_people_in_the_room_and_no_ops_leave_no_trace() {
    let dir = TempDir::new("attack-kick-spam");
    let db = dir.file("papo.db");
    let mut config = test_config();
    config.db = db.clone();
    config.accounts.registrations_per_hour = 0;
    let s = TestServer::start(config);
    let (_admin, _) = account(&s, "Admin");
    let (mut ana, _) = account(&s, "Ana");
    let (mut caio, _) = account(&s, "Caio");
    let mut guest = Client::hello(s.addr, "Visita");
    ana.create("compre-bitcoin-aqui", None);
    caio.collect_for(QUIET);
    guest.collect_for(QUIET);
    let room = "compre-bitcoin-aqui";
    for round in 0..3 {
        for user in ["Caio", "Visita"] {
            let reply = ana.request(
                json!({"type": "kick", "room": room, "user": user}),
                json!(format!("kick-{user}-{round}")),
            );
            assert_eq!(reply["type"], "error", "{reply}");
            assert_eq!(reply["code"], "not_in_room", "{reply}");
        }
        // Lifting a ban nobody has changes nothing.
        let reply = ana.request(
            json!({"type": "unban", "room": room, "user": "Caio"}),
            json!(format!("unban-{round}")),
        );
        assert_eq!(reply["type"], "unbanned", "{reply}");
    }
    caio.assert_silent(QUIET);
    guest.assert_silent(QUIET);
    // A ban set ahead of time holds at the door, and is no notice either.
    let reply = ana.request(
        json!({"type": "kick", "room": room, "user": "Caio", "ban": true}),
        json!("ban"),
    );
    assert_eq!(reply["type"], "kicked", "{reply}");
    caio.assert_silent(QUIET);
    caio.expect_error(json!({"type": "join", "room": room}), "banned");
    std::thread::sleep(Duration::from_millis(300));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_papo"))
        .args(["audit", "--db", &db])
        .output()
        .expect("papo audit runs");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 2, "one action, the ban: {text}");
}

/// Holds the database's write lock from another connection, as another process could.
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

/// A deletion or edit the store cannot keep must not be told as done: the moderator would
/// believe the abuse gone, and it would be back after the next restart.
#[test]
fn an_edit_or_delete_the_store_cannot_keep_is_unavailable_and_told_to_nobody() {
    let dir = TempDir::new("attack-unkept-delete");
    let db = dir.file("papo.db");
    let start = || {
        let mut config = test_config();
        config.db = db.clone();
        TestServer::start(config)
    };
    let mut s = start();
    let mut ana = Client::member(s.addr, "Ana", "sala");
    let mut beto = Client::member(s.addr, "Beto", "sala");
    let abuse = say(&mut ana, "sala", "abuso");
    let typo = say(&mut ana, "sala", "erro");
    beto.recv_message("sala", "erro");

    let lock = WriteLock::take(&db);
    let deleted = ana.request(json!({"type": "delete", "id": abuse}), json!("del"));
    assert_eq!(deleted["type"], "error", "told as done: {deleted}");
    assert_eq!(deleted["code"], "unavailable", "{deleted}");
    let edited = ana.request(
        json!({"type": "edit", "id": typo, "text": "certo"}),
        json!("edit"),
    );
    assert_eq!(edited["code"], "unavailable", "{edited}");
    let seen = beto.collect_for(QUIET);
    assert!(
        seen.iter()
            .all(|f| f["type"] != "deleted" && f["type"] != "edited"),
        "the room was told of a change that is not kept: {seen:?}"
    );
    drop(lock);
    drop((ana, beto));
    s.shutdown();
    drop(s);

    // What the room was told is what the file holds.
    let s = start();
    let mut caio = Client::hello(s.addr, "Caio");
    let joined = caio.join("sala", None);
    let texts: Vec<&str> = joined["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["abuso", "erro"], "{joined}");
}

/// A protected room deleted while its password is being hashed, and made again under its
/// name with another password: the first room's hash, coming back late, must not become
/// the new room's password (it would be the one kept on disk, in force after a restart).
#[test]
fn a_deleted_rooms_late_password_hash_does_not_become_its_successors() {
    let dir = TempDir::new("attack-late-hash");
    let db = dir.file("papo.db");
    let start = || {
        let mut config = test_config();
        config.db = db.clone();
        config.accounts.registrations_per_hour = 0;
        TestServer::start(config)
    };
    let mut s = start();
    let (_admin, _) = account(&s, "Admin");
    let ana_cookie = register(s.addr, "Ana", PASSWORD);
    let (mut ana, _) = Client::signed_in(s.addr, &ana_cookie);
    // A typo, taken back at once, then the room again with the right password: all three
    // reach the hub long before argon2 is done with the first.
    ana.send(json!({"type": "create", "room": "cofre", "password": "errada", "ref": 1}));
    ana.send(json!({"type": "delete_room", "room": "cofre", "ref": 2}));
    ana.send(json!({"type": "create", "room": "cofre", "password": "certa", "ref": 3}));
    assert_eq!(ana.recv_until(|v| v["ref"] == 3)["type"], "created");
    // Both hashes back, and on disk.
    std::thread::sleep(Duration::from_millis(500));
    ana.assert_alive();
    drop(ana);
    s.shutdown();
    drop(s);

    let s = start();
    let mut beto = Client::hello(s.addr, "Beto");
    beto.expect_error(
        json!({"type": "join", "room": "cofre", "password": "errada"}),
        "wrong_password",
    );
    let joined = beto.request(
        json!({"type": "join", "room": "cofre", "password": "certa"}),
        json!("j"),
    );
    assert_eq!(joined["type"], "joined", "{joined}");
}

/// Ids and minutes a hostile client makes up: a clear error each, the connection lives on.
#[test]
fn made_up_ids_and_minutes_get_clear_errors() {
    let s = server();
    let (mut admin, _) = account(&s, "Admin");
    admin.join("sala", None);
    let mut beto = Client::member(s.addr, "Beto", "sala");
    for id in [
        json!(-1),
        json!(1.5),
        json!("1"),
        json!(null),
        json!(true),
        json!(1e300),
    ] {
        admin.expect_error(json!({"type": "delete", "id": id}), "bad_request");
        admin.expect_error(
            json!({"type": "edit", "id": id, "text": "x"}),
            "bad_request",
        );
    }
    // Past i64 (SQLite's integers) and past every id handed out: no such message.
    for id in [json!(u64::MAX), json!(i64::MAX), json!(0)] {
        admin.expect_error(json!({"type": "delete", "id": id}), "no_such_message");
    }
    for minutes in [
        json!(0),
        json!(-5),
        json!(1.5),
        json!("10"),
        json!(u64::MAX),
    ] {
        let kick = json!({"type": "kick", "room": "sala", "user": "Beto", "minutes": minutes});
        admin.expect_error(kick, "bad_request");
        let suspend = json!({"type": "suspend", "user": "Beto", "minutes": minutes});
        admin.expect_error(suspend, "bad_request");
    }
    // The longest ban there is (ten years) is kept and shown.
    let reply = admin.request(
        json!({"type": "kick", "room": "sala", "user": "Beto", "minutes": 10 * 365 * 24 * 60}),
        json!("long"),
    );
    assert_eq!(reply["type"], "kicked", "{reply}");
    assert!(reply["until"].as_u64().is_some(), "{reply}");
    beto.recv_type("kicked");
    let refused = beto.expect_error(json!({"type": "join", "room": "sala"}), "banned");
    assert!(
        refused["message"].as_str().unwrap().contains("until"),
        "{refused}"
    );
    admin.assert_alive();
    beto.assert_alive();
}

/// Bans are kept in memory and looked through at every join: a room's owner banning guest
/// puppet after guest puppet must meet a cap (`--max-bans-per-room`), not grow them forever.
#[test]
fn a_room_keeps_at_most_its_cap_of_bans() {
    let mut config = test_config();
    config.accounts.registrations_per_hour = 0;
    config.max_bans_per_room = 2;
    let s = TestServer::start(config);
    let (_admin, _) = account(&s, "Admin");
    let (mut ana, _) = account(&s, "Ana");
    ana.create("clube", None);
    let puppets: Vec<Client> = (0..3)
        .map(|n| Client::hello(s.addr, &format!("boneco{n}")))
        .collect();
    let ban = |user: &str| json!({"type": "kick", "room": "clube", "user": user, "ban": true});
    for n in 0..2 {
        let reply = ana.request(ban(&format!("boneco{n}")), json!(n));
        assert_eq!(reply["type"], "kicked", "{reply}");
    }
    ana.expect_error(ban("boneco2"), "forbidden");
    // Banning someone banned already replaces its ban: no more room taken.
    let reply = ana.request(
        json!({"type": "kick", "room": "clube", "user": "BONECO0", "minutes": 5}),
        json!("again"),
    );
    assert_eq!(reply["type"], "kicked", "{reply}");
    // Lifting one makes room.
    ana.request(
        json!({"type": "unban", "room": "clube", "user": "boneco1"}),
        json!("unban"),
    );
    let reply = ana.request(ban("boneco2"), json!("third"));
    assert_eq!(reply["type"], "kicked", "{reply}");
    drop(puppets);
}

/// A bot's sign-in (`hello` with a password) waits for argon2; a suspension decided
/// meanwhile must refuse it when the check comes back right, and leave no connection in.
#[test]
fn a_sign_in_under_way_when_the_account_is_suspended_is_refused() {
    let s = server();
    let (mut admin, _) = account(&s, "Admin");
    let _ = register(s.addr, "Beto", PASSWORD);
    let mut bot = Client::connect(s.addr);
    bot.send(json!({"type": "hello", "name": "Beto", "password": PASSWORD, "ref": "h"}));
    std::thread::sleep(Duration::from_millis(5));
    let reply = admin.request(json!({"type": "suspend", "user": "Beto"}), json!("s"));
    assert_eq!(reply["type"], "suspended", "{reply}");
    let hello = bot.recv_until(|v| v["ref"] == "h");
    assert_eq!(hello["type"], "error", "signed in while suspended: {hello}");
    assert_eq!(hello["code"], "forbidden", "{hello}");
    bot.assert_alive_unidentified();
}
