//! Accounts on the WebSocket, over real TCP: `hello` by cookie and by password, the new
//! error codes, one account on many connections (presence counts users), memberships,
//! read marks, DMs kept for offline accounts, `dm_history`, and sessions that end closing
//! their connections with 4001.

mod common;

use common::*;
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse";
const SIGNED_OUT: u16 = 4001;

/// A test server without the registration limit (tests register many accounts from one
/// address).
fn server() -> TestServer {
    let mut config = test_config();
    config.accounts.registrations_per_hour = 0;
    TestServer::start(config)
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_cookie_signs_the_websocket_in_and_hello_needs_no_name() {
    let s = server();
    let cookie = register(s.addr, "Ana", PASSWORD);
    let (_ana, welcome) = Client::signed_in(s.addr, &cookie);
    assert_eq!(
        welcome,
        json!({"type": "welcome", "name": "Ana", "rooms": [], "rooms_total": 0, "account": true, "admin": true,
               "memberships": [], "dms": []})
    );
    // With a name, it must be the account's (case does not matter).
    let mut c = Client::connect_with(s.addr, &[("Cookie", &cookie)]);
    let w = c.request(json!({"type": "hello", "name": "ANA"}), json!(1));
    assert_eq!(
        (w["type"].clone(), w["name"].clone()),
        (json!("welcome"), json!("Ana"))
    );
    let mut c = Client::connect_with(s.addr, &[("Cookie", &cookie)]);
    c.expect_error(json!({"type": "hello", "name": "Beto"}), "bad_credentials");
    // A guest gets version 1's welcome, with the two new fields false.
    let mut guest = Client::connect(s.addr);
    let w = guest.request(json!({"type": "hello", "name": "Caio"}), json!(2));
    assert_eq!(
        w,
        json!({"type": "welcome", "name": "Caio", "rooms": [], "rooms_total": 0, "account": false,
               "admin": false, "ref": 2})
    );
    // An unknown cookie is no session: such a connection is a guest.
    let mut stranger = Client::connect_with(
        s.addr,
        &[("Cookie", &format!("papo_session={}", "ab".repeat(32)))],
    );
    stranger.expect_error(json!({"type": "hello"}), "bad_request");
}

#[test]
fn guests_cannot_take_registered_names_and_can_be_turned_off() {
    let s = server();
    register(s.addr, "Ana", PASSWORD);
    let mut guest = Client::connect(s.addr);
    guest.expect_error(json!({"type": "hello", "name": "ana"}), "name_registered");
    guest.expect_error(json!({"type": "hello", "name": " ANA "}), "name_registered");

    let mut config = test_config();
    config.accounts.guests = false;
    let s = TestServer::start(config);
    let cookie = register(s.addr, "Ana", PASSWORD);
    let mut guest = Client::connect(s.addr);
    guest.expect_error(json!({"type": "hello", "name": "Beto"}), "sign_in_required");
    let (_, welcome) = Client::signed_in(s.addr, &cookie);
    assert_eq!(welcome["account"], true);
    let mut bot = Client::connect(s.addr);
    let w = bot.request(
        json!({"type": "hello", "name": "Ana", "password": PASSWORD}),
        json!("b"),
    );
    assert_eq!(w["type"], "welcome", "{w}");
}

#[test]
fn hello_with_a_password_signs_a_bot_in_and_its_next_commands_wait_for_it() {
    let s = server();
    register(s.addr, "eco", PASSWORD);
    let mut bot = Client::connect(s.addr);
    bot.send(json!({"type": "hello", "name": "Eco", "password": PASSWORD, "ref": 1}));
    // Sent before the password is checked: it runs after the welcome, not before.
    bot.send(json!({"type": "create", "room": "robôs", "ref": 2}));
    let w = bot.recv();
    assert_eq!(w["type"], "welcome", "{w}");
    assert_eq!(
        (w["name"].clone(), w["account"].clone(), w["ref"].clone()),
        (json!("eco"), json!(true), json!(1))
    );
    assert_eq!(bot.recv()["type"], "created");

    let mut wrong = Client::connect(s.addr);
    let e = wrong.expect_error(
        json!({"type": "hello", "name": "eco", "password": "not it at all"}),
        "bad_credentials",
    );
    let mut unknown = Client::connect(s.addr);
    let e2 = unknown.expect_error(
        json!({"type": "hello", "name": "nobody", "password": "not it at all"}),
        "bad_credentials",
    );
    assert_eq!(e["message"], e2["message"], "the same answer for both");
    // Still not identified after a failure.
    wrong.expect_error(json!({"type": "list"}), "not_identified");
    // A hello without a name on a connection with no cookie is malformed.
    wrong.expect_error(
        json!({"type": "hello", "password": PASSWORD}),
        "bad_request",
    );
}

#[test]
fn hello_with_a_password_is_limited_per_address() {
    let mut config = test_config();
    config.accounts.sign_in_failures = 2;
    let s = TestServer::start(config);
    register(s.addr, "eco", PASSWORD);
    let mut c = Client::connect(s.addr);
    for _ in 0..2 {
        c.expect_error(
            json!({"type": "hello", "name": "eco", "password": "wrong password"}),
            "bad_credentials",
        );
    }
    c.expect_error(
        json!({"type": "hello", "name": "eco", "password": PASSWORD}),
        "rate_limited",
    );
    // The HTTP login shares the limit (same address).
    let r = api_post(
        s.addr,
        "/api/login",
        json!({"name": "eco", "password": PASSWORD}),
        None,
    );
    assert_eq!(r.status, 429);
}

#[test]
fn two_connections_of_one_account_in_a_room_are_one_member() {
    let s = server();
    let cookie = register(s.addr, "Ana", PASSWORD);
    let mut beto = Client::member(s.addr, "Beto", "sala");
    let _ = &mut beto;
    let (mut tab1, _) = Client::signed_in(s.addr, &cookie);
    let (mut tab2, _) = Client::signed_in(s.addr, &cookie);
    let joined = tab1.join("sala", None);
    assert_eq!(joined["member_count"], 2);
    let p = beto.recv_type("presence");
    assert_eq!(names(&p["joined"]), ["Ana"]);
    assert_eq!(p["member_count"], 2);
    // No presence follows a second connection's join: Ana is in already.
    let joined = tab2.request(json!({"type": "join", "room": "sala"}), json!("j2"));
    assert_eq!(joined["member_count"], 2, "{joined}");
    assert_eq!(names(&joined["members"]), ["Beto", "Ana"]);
    beto.assert_silent(QUIET);
    let who = beto.request(json!({"type": "who", "room": "sala"}), json!("w"));
    assert_eq!(names(&who["members"]), ["Beto", "Ana"]);
    assert_eq!(who["member_count"], 2);
    let rooms = beto.request(json!({"type": "list"}), json!("l"));
    assert_eq!(rooms["rooms"][0]["member_count"], 2);

    // Room events reach every connection that joined.
    beto.say("sala", "oi Ana");
    beto.recv_message("sala", "oi Ana");
    tab1.recv_message("sala", "oi Ana");
    tab2.recv_message("sala", "oi Ana");

    // One tab closing is no news; the membership stays.
    drop(tab2);
    beto.assert_silent(QUIET);

    // `leave` from any connection ends the membership: every connection in the room gets
    // `left` (the ref only on the one that asked), and the room sees Ana leave once.
    let (mut tab3, _) = Client::signed_in(s.addr, &cookie);
    tab3.request(json!({"type": "join", "room": "sala"}), json!("j3"));
    beto.assert_silent(QUIET);
    let left = tab1.request(json!({"type": "leave", "room": "sala"}), json!("bye"));
    assert_eq!(left, json!({"type": "left", "room": "sala", "ref": "bye"}));
    let other = tab3.recv_type("left");
    assert_eq!(other, json!({"type": "left", "room": "sala"}));
    let p = beto.recv_type("presence");
    assert_eq!(names(&p["left"]), ["Ana"]);
    assert_eq!(p["member_count"], 1);
}

#[test]
fn memberships_need_no_password_and_come_back_in_welcome() {
    let s = server();
    let cookie = register(s.addr, "Ana", PASSWORD);
    let mut beto = Client::hello(s.addr, "Beto");
    beto.create("segredo", Some("123"));
    beto.join("segredo", Some("123"));
    let (mut ana, _) = Client::signed_in(s.addr, &cookie);
    ana.join("segredo", Some("123"));
    let (_, _) = beto.text_ref("segredo", "um", json!(1));
    let (ack, _) = beto.text_ref("segredo", "dois", json!(2));
    let last = ack["id"].as_u64().unwrap();
    drop(ana);
    // Once the server has seen her go (a moment after the drop), she is offline.
    beto.recv_until(|v| {
        v["type"] == "presence"
            && v["left"]
                .as_array()
                .is_some_and(|l| l.contains(&json!("Ana")))
    });

    let (mut ana, welcome) = Client::signed_in(s.addr, &cookie);
    assert_eq!(
        welcome["memberships"],
        json!([{"room": "segredo", "protected": true, "owner": null, "member_count": 1,
                "last_id": last, "read_id": 0, "unread": 2}])
    );
    // A member's join needs no password.
    let joined = ana.join("segredo", None);
    assert_eq!(joined["member_count"], 2);
    // Read marks: answered to every connection of the account; never back, never past
    // the newest message.
    let (mut phone, _) = Client::signed_in(s.addr, &cookie);
    let r = ana.request(
        json!({"type": "read", "room": "segredo", "id": last - 1}),
        json!("r"),
    );
    assert_eq!(
        r,
        json!({"type": "read", "room": "segredo", "id": last - 1, "ref": "r"})
    );
    assert_eq!(
        phone.recv_type("read"),
        json!({"type": "read", "room": "segredo", "id": last - 1})
    );
    let r = ana.request(
        json!({"type": "read", "room": "segredo", "id": 1}),
        json!("back"),
    );
    assert_eq!(r["id"], last - 1, "a mark never moves back");
    let r = ana.request(
        json!({"type": "read", "room": "segredo", "id": last + 1000}),
        json!("far"),
    );
    assert_eq!(r["id"], last);
    let (_, welcome) = Client::signed_in(s.addr, &cookie);
    assert_eq!(welcome["memberships"][0]["read_id"], last);
    assert_eq!(welcome["memberships"][0]["unread"], 0);

    ana.expect_error(
        json!({"type": "read", "room": "nada", "id": 1}),
        "no_such_room",
    );
    beto.create("outra", None);
    ana.expect_error(
        json!({"type": "read", "room": "outra", "id": 1}),
        "not_in_room",
    );
    ana.expect_error(json!({"type": "read", "room": "outra"}), "bad_request");
    ana.expect_error(json!({"type": "read", "id": 1}), "bad_request");

    // After `leave`, the password is asked again.
    ana.request(json!({"type": "leave", "room": "segredo"}), json!("l"));
    ana.expect_error(json!({"type": "join", "room": "segredo"}), "wrong_password");
    let (_, welcome) = Client::signed_in(s.addr, &cookie);
    assert_eq!(welcome["memberships"], json!([]));
}

#[test]
fn dms_between_accounts_are_kept_for_the_offline_recipient() {
    let s = server();
    let ana_cookie = register(s.addr, "Ana", PASSWORD);
    let beto_cookie = register(s.addr, "Beto", PASSWORD);
    let (mut ana, _) = Client::signed_in(s.addr, &ana_cookie);
    let (mut ana_phone, _) = Client::signed_in(s.addr, &ana_cookie);
    let first = ana.request(json!({"type": "dm", "to": "beto", "text": "oi"}), json!(1));
    assert_eq!(first["type"], "dm");
    assert_eq!(
        (first["from"].clone(), first["to"].clone()),
        (json!("Ana"), json!("Beto"))
    );
    // The sender's other connections get it too.
    let copy = ana_phone.recv_type("dm");
    assert_eq!(copy["id"], first["id"]);
    assert!(copy.get("ref").is_none());
    let second = ana.request(
        json!({"type": "dm", "to": "Beto", "text": "tudo bem?"}),
        json!(2),
    );

    let (mut beto, welcome) = Client::signed_in(s.addr, &beto_cookie);
    assert_eq!(
        welcome["dms"],
        json!([{"with": "Ana", "last_id": second["id"], "read_id": 0, "unread": 2}])
    );
    let history = beto.request(json!({"type": "dm_history", "with": "ana"}), json!("h"));
    assert_eq!(history["type"], "dm_history");
    assert_eq!(history["with"], "Ana");
    let texts: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["oi", "tudo bem?"]);
    assert_eq!(history["messages"][0]["id"], first["id"]);
    let page = beto.request(
        json!({"type": "dm_history", "with": "Ana", "before": second["id"], "limit": 1}),
        json!("p"),
    );
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
    assert_eq!(page["messages"][0]["text"], "oi");

    // A DM reaches every connection of the recipient.
    let (mut beto_phone, _) = Client::signed_in(s.addr, &beto_cookie);
    ana.request(
        json!({"type": "dm", "to": "Beto", "text": "três"}),
        json!(3),
    );
    assert_eq!(beto.recv_type("dm")["text"], "três");
    assert_eq!(beto_phone.recv_type("dm")["text"], "três");

    let read = beto.request(
        json!({"type": "read", "with": "Ana", "id": second["id"]}),
        json!("r"),
    );
    assert_eq!(
        read,
        json!({"type": "read", "with": "Ana", "id": second["id"], "ref": "r"})
    );
    assert_eq!(beto_phone.recv_type("read")["with"], "Ana");
    let (_, welcome) = Client::signed_in(s.addr, &beto_cookie);
    assert_eq!(welcome["dms"][0]["unread"], 1);
    beto.expect_error(
        json!({"type": "read", "with": "Zeca", "id": 1}),
        "no_such_user",
    );
    beto.expect_error(
        json!({"type": "dm_history", "with": "Zeca"}),
        "no_such_user",
    );
    beto.expect_error(
        json!({"type": "dm_history", "with": "Ana", "limit": 0}),
        "bad_request",
    );
}

#[test]
fn guests_write_only_to_who_is_online_and_their_dms_are_not_kept() {
    let s = server();
    let ana_cookie = register(s.addr, "Ana", PASSWORD);
    register(s.addr, "Beto", PASSWORD);
    let mut caio = Client::hello(s.addr, "Caio");
    // Beto is registered but offline: a guest cannot write to him.
    caio.expect_error(
        json!({"type": "dm", "to": "Beto", "text": "oi"}),
        "no_such_user",
    );
    caio.expect_error(
        json!({"type": "dm", "to": "Zeca", "text": "oi"}),
        "no_such_user",
    );
    caio.expect_error(
        json!({"type": "dm_history", "with": "Ana"}),
        "sign_in_required",
    );
    caio.expect_error(
        json!({"type": "read", "with": "Ana", "id": 1}),
        "sign_in_required",
    );

    let (mut ana, _) = Client::signed_in(s.addr, &ana_cookie);
    let dm = caio.request(
        json!({"type": "dm", "to": "ana", "text": "de convidado"}),
        json!(1),
    );
    assert_eq!(dm["to"], "Ana");
    assert_eq!(ana.recv_type("dm")["text"], "de convidado");
    let back = ana.request(
        json!({"type": "dm", "to": "Caio", "text": "de conta"}),
        json!(2),
    );
    assert_eq!(back["to"], "Caio");
    assert_eq!(caio.recv_type("dm")["text"], "de conta");
    // Neither is kept: Caio has no account, and Ana's conversations list no one.
    ana.expect_error(
        json!({"type": "dm_history", "with": "Caio"}),
        "no_such_user",
    );
    let (_, welcome) = Client::signed_in(s.addr, &ana_cookie);
    assert_eq!(welcome["dms"], json!([]));
}

#[test]
fn ended_sessions_close_their_connections_with_4001() {
    let s = server();
    let first = register(s.addr, "Ana", PASSWORD);
    let second = login(s.addr, "Ana", PASSWORD);
    let third = login(s.addr, "Ana", PASSWORD);
    let (mut one, _) = Client::signed_in(s.addr, &first);
    let (mut two, _) = Client::signed_in(s.addr, &second);
    let (mut two_again, _) = Client::signed_in(s.addr, &second);
    let (mut three, _) = Client::signed_in(s.addr, &third);
    let mut beto = Client::member(s.addr, "Beto", "sala");
    one.join("sala", None);
    two.request(json!({"type": "join", "room": "sala"}), json!("j"));
    beto.recv_type("presence");

    // Revoking the others from session one closes two's connections at once; the room
    // sees nothing, because Ana is still there through `one`.
    let r = api_post(
        s.addr,
        "/api/sessions/revoke",
        json!({"others": true}),
        Some(&first),
    );
    assert_eq!(r.status, 204);
    assert_eq!(two.expect_closed(WAIT), Some(SIGNED_OUT));
    assert_eq!(two_again.expect_closed(WAIT), Some(SIGNED_OUT));
    assert_eq!(three.expect_closed(WAIT), Some(SIGNED_OUT));
    one.assert_alive();
    beto.assert_silent(QUIET);

    // A connection that has not said hello yet closes too.
    let fourth = login(s.addr, "Ana", PASSWORD);
    let mut waiting = Client::connect_with(s.addr, &[("Cookie", &fourth)]);
    // One round trip through the hub: the connection is known there before the logout.
    waiting.assert_alive_unidentified();
    let r = api_post(s.addr, "/api/logout", json!({}), Some(&fourth));
    assert_eq!(r.status, 204);
    assert_eq!(waiting.expect_closed(WAIT), Some(SIGNED_OUT));

    // Logging out closes the session's connections; the room sees Ana leave.
    let r = api_post(s.addr, "/api/logout", json!({}), Some(&first));
    assert_eq!(r.status, 204);
    assert_eq!(one.expect_closed(WAIT), Some(SIGNED_OUT));
    let p = beto.recv_type("presence");
    assert_eq!(names(&p["left"]), ["Ana"]);
    // The session is gone: its cookie signs nothing in any more.
    let mut late = Client::connect_with(s.addr, &[("Cookie", &first)]);
    late.expect_error(json!({"type": "hello"}), "bad_request");
}

#[test]
fn a_password_change_closes_other_sessions_and_password_connections() {
    let s = server();
    let mine = register(s.addr, "Ana", PASSWORD);
    let other = login(s.addr, "Ana", PASSWORD);
    let (mut kept, _) = Client::signed_in(s.addr, &mine);
    let (mut ended, _) = Client::signed_in(s.addr, &other);
    let mut bot = Client::connect(s.addr);
    let w = bot.request(
        json!({"type": "hello", "name": "Ana", "password": PASSWORD}),
        json!(1),
    );
    assert_eq!(w["type"], "welcome");
    let r = api_post(
        s.addr,
        "/api/password",
        json!({"current": PASSWORD, "new": "another password"}),
        Some(&mine),
    );
    assert_eq!(r.status, 204);
    assert_eq!(ended.expect_closed(WAIT), Some(SIGNED_OUT));
    assert_eq!(bot.expect_closed(WAIT), Some(SIGNED_OUT));
    kept.assert_alive();
}
