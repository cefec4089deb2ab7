//! Every command of PROTOCOL.md and its replies and side effects, over real TCP:
//! hello, create, join, leave, text, list, who, history, dm, typing, presence batching,
//! and the name, text and password rules.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn assert_ts_now(v: &Value) {
    let ts = v["ts"]
        .as_i64()
        .unwrap_or_else(|| panic!("no integer ts: {v}"));
    assert!(
        (ts - now_ms()).abs() < 60_000,
        "ts {ts} is not the server's time: {v}"
    );
}

/// Wait for the next presence of `room` and check it exactly.
fn expect_presence(c: &mut Client, room: &str, joined: &[&str], left: &[&str], count: u64) {
    let r = room.to_string();
    let p = c.recv_until(move |v| v["type"] == "presence" && v["room"] == r.as_str());
    let mut got_joined = names(&p["joined"]);
    let mut got_left = names(&p["left"]);
    got_joined.sort();
    got_left.sort();
    let mut want_joined: Vec<String> = joined.iter().map(|s| s.to_string()).collect();
    let mut want_left: Vec<String> = left.iter().map(|s| s.to_string()).collect();
    want_joined.sort();
    want_left.sort();
    assert_eq!(got_joined, want_joined, "{}: presence {p}", c.name);
    assert_eq!(got_left, want_left, "{}: presence {p}", c.name);
    assert_eq!(p["member_count"], count, "{}: presence {p}", c.name);
}

fn summary<'a>(rooms: &'a Value, room: &str) -> &'a Value {
    rooms
        .as_array()
        .unwrap_or_else(|| panic!("rooms is not an array: {rooms}"))
        .iter()
        .find(|r| r["room"] == room)
        .unwrap_or_else(|| panic!("room {room} missing from {rooms}"))
}

#[test]
fn hello_gets_welcome_with_ref_name_and_rooms() {
    let s = TestServer::default_config();
    let mut a = Client::connect(s.addr);
    a.name = "Ana".into();
    let w = a.request(json!({"type": "hello", "name": "Ana"}), json!(1));
    assert_eq!(w["type"], "welcome");
    assert_eq!(w["name"], "Ana");
    assert_eq!(w["rooms"], json!([]));

    a.create("jogos", Some("123"));
    a.create("livre", None);
    a.join("livre", None);

    let mut b = Client::connect(s.addr);
    b.name = "Beto".into();
    let w = b.request(json!({"type": "hello", "name": "Beto"}), json!("h"));
    assert_eq!(w["type"], "welcome");
    assert_eq!(w["name"], "Beto");
    assert_eq!(w["rooms"].as_array().unwrap().len(), 2, "{w}");
    assert_eq!(
        summary(&w["rooms"], "jogos"),
        &json!({"room": "jogos", "protected": true, "member_count": 0})
    );
    assert_eq!(
        summary(&w["rooms"], "livre"),
        &json!({"room": "livre", "protected": false, "member_count": 1})
    );
    // hello without ref gets a welcome without ref
    let mut c = Client::connect(s.addr);
    c.send(json!({"type": "hello", "name": "Caio"}));
    let w = c.expect_type("welcome");
    assert!(w.get("ref").is_none(), "{w}");
}

#[test]
fn create_replies_created_and_does_not_join() {
    let s = TestServer::default_config();
    let mut a = Client::hello(s.addr, "Ana");
    let r = a.request(
        json!({"type": "create", "room": "jogos", "password": "123"}),
        json!(5),
    );
    assert_eq!(
        r,
        json!({"type": "created", "room": "jogos", "protected": true, "ref": 5})
    );
    let r = a.request(json!({"type": "create", "room": "livre"}), json!(6));
    assert_eq!(r["type"], "created");
    assert_eq!(r["protected"], false);
    let r = a.request(
        json!({"type": "create", "room": "vazia", "password": ""}),
        json!(7),
    );
    assert_eq!(
        r["protected"], false,
        "an empty password makes a public room"
    );

    // create does not join
    for cmd in [
        json!({"type": "who", "room": "jogos"}),
        json!({"type": "text", "room": "jogos", "text": "oi"}),
        json!({"type": "history", "room": "jogos"}),
        json!({"type": "typing", "room": "jogos"}),
        json!({"type": "leave", "room": "jogos"}),
    ] {
        a.expect_error(cmd, "not_in_room");
    }
    let rooms = a.request(json!({"type": "list"}), json!(8));
    assert_eq!(summary(&rooms["rooms"], "jogos")["member_count"], 0);
    // no presence or message of the room reached the creator
    a.assert_silent(QUIET);
}

#[test]
fn room_added_goes_to_other_identified_connections_only() {
    let s = TestServer::default_config();
    let mut a = Client::hello(s.addr, "Ana");
    let mut b = Client::hello(s.addr, "Beto");
    let mut c = Client::connect(s.addr); // not identified
    c.name = "unidentified".into();
    a.create("Jogos", Some("x"));
    assert_eq!(
        b.recv(),
        json!({"type": "room_added", "room": "Jogos", "protected": true})
    );
    a.create("livre", None);
    assert_eq!(
        b.recv(),
        json!({"type": "room_added", "room": "livre", "protected": false})
    );
    a.assert_silent(QUIET);
    b.assert_silent(Duration::from_millis(100));
    c.assert_silent(Duration::from_millis(100));
    c.send(json!({"type": "hello", "name": "Caio"}));
    let w = c.expect_type("welcome");
    assert_eq!(w["rooms"].as_array().unwrap().len(), 2);
    assert_eq!(summary(&w["rooms"], "Jogos")["protected"], true);
}

#[test]
fn join_replies_joined_with_members_history_then_presence() {
    let s = TestServer::default_config();
    let mut a = Client::hello(s.addr, "Ana");
    a.create("sala", None);
    let j = a.request(json!({"type": "join", "room": "sala"}), json!("j1"));
    assert_eq!(
        j,
        json!({"type": "joined", "room": "sala", "protected": false, "member_count": 1,
               "members": ["Ana"], "history": [], "ref": "j1"})
    );
    // the joiner gets its own presence after joined
    expect_presence(&mut a, "sala", &["Ana"], &[], 1);

    let mut sent = Vec::new();
    for i in 0..3 {
        let (_, m) = a.text_ref("sala", &format!("m{i}"), json!(i));
        assert_eq!(m["text"], format!("m{i}"));
        sent.push(m);
    }
    let mut b = Client::hello(s.addr, "Beto");
    let j = b.request(json!({"type": "join", "room": "sala"}), json!("j2"));
    assert_eq!(j["type"], "joined");
    assert_eq!(j["room"], "sala");
    assert_eq!(j["protected"], false);
    assert_eq!(j["member_count"], 2);
    assert_eq!(j["members"], json!(["Ana", "Beto"]));
    assert_eq!(
        j["history"],
        Value::Array(sent),
        "history holds the messages"
    );
    expect_presence(&mut b, "sala", &["Beto"], &[], 2);
    expect_presence(&mut a, "sala", &["Beto"], &[], 2);
    a.assert_silent(QUIET);
    b.assert_silent(Duration::from_millis(50));
}

#[test]
fn join_protected_room_checks_password() {
    let s = TestServer::default_config();
    let mut a = Client::hello(s.addr, "Ana");
    a.create("jogos", Some("123"));
    let mut b = Client::hello(s.addr, "Beto");
    b.expect_error(json!({"type": "join", "room": "jogos"}), "wrong_password");
    b.expect_error(
        json!({"type": "join", "room": "jogos", "password": "124"}),
        "wrong_password",
    );
    b.expect_error(
        json!({"type": "join", "room": "jogos", "password": ""}),
        "wrong_password",
    );
    let j = b.request(
        json!({"type": "join", "room": "jogos", "password": "123"}),
        json!(1),
    );
    assert_eq!(j["type"], "joined");
    assert_eq!(j["protected"], true);
    // a public room ignores any password
    a.create("livre", None);
    let j = b.request(
        json!({"type": "join", "room": "livre", "password": "whatever"}),
        json!(2),
    );
    assert_eq!(j["type"], "joined", "{j}");
}

#[test]
fn names_are_case_insensitive_and_keep_the_first_spelling() {
    let s = TestServer::default_config();
    let mut a = Client::hello(s.addr, "Ana");
    a.create("Jogos", None);
    a.expect_error(json!({"type": "create", "room": "jogos"}), "room_exists");
    a.expect_error(json!({"type": "create", "room": "JOGOS"}), "room_exists");
    a.expect_error(
        json!({"type": "create", "room": "  jOgOs  "}),
        "room_exists",
    );
    let j = a.request(json!({"type": "join", "room": "JOGOS"}), json!(1));
    assert_eq!(j["room"], "Jogos", "the creator's spelling is kept");
    expect_presence(&mut a, "Jogos", &["Ana"], &[], 1);
    a.say("jOgos", "oi");
    let msg = a.recv_type("message");
    assert_eq!(msg["room"], "Jogos");
    let w = a.request(json!({"type": "who", "room": "jOGOS"}), json!(3));
    assert_eq!(w["room"], "Jogos");

    let mut x = Client::connect(s.addr);
    x.expect_error(json!({"type": "hello", "name": "ANA"}), "name_taken");
    x.expect_error(json!({"type": "hello", "name": " ana "}), "name_taken");
    // the connection is still unidentified and can pick another name
    let w = x.request(json!({"type": "hello", "name": "Beto"}), json!(4));
    assert_eq!(w["type"], "welcome");
    assert_eq!(w["name"], "Beto");
    x.name = "Beto".into();
    let mut y = Client::connect(s.addr);
    y.expect_error(json!({"type": "hello", "name": "bEtO"}), "name_taken");

    // a name becomes free when its owner disconnects
    drop(a);
    let deadline = Instant::now() + WAIT;
    loop {
        let r = y.request(json!({"type": "hello", "name": "ana"}), json!("again"));
        if r["type"] == "welcome" {
            assert_eq!(r["name"], "ana");
            break;
        }
        assert_eq!(r["code"], "name_taken", "{r}");
        assert!(Instant::now() < deadline, "name not freed after disconnect");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn rejoin_returns_fresh_joined_without_password_check_or_presence() {
    let s = TestServer::default_config();
    let mut a = Client::hello(s.addr, "Ana");
    a.create("jogos", Some("123"));
    a.join("jogos", Some("123"));
    let mut b = Client::member(s.addr, "Beto", "livre");
    b.join("jogos", Some("123"));
    expect_presence(&mut a, "jogos", &["Beto"], &[], 2);
    a.say("jogos", "antes");
    let m = a.recv_message("jogos", "antes");
    b.recv_message("jogos", "antes");

    for (i, pw) in [json!("wrong"), json!("123"), Value::Null]
        .into_iter()
        .enumerate()
    {
        let mut cmd = json!({"type": "join", "room": "jogos"});
        if !pw.is_null() {
            cmd["password"] = pw;
        }
        let j = a.request(cmd, json!(i));
        assert_eq!(j["type"], "joined", "{j}");
        assert_eq!(j["member_count"], 2);
        assert_eq!(j["members"], json!(["Ana", "Beto"]));
        assert_eq!(j["history"], json!([m]));
    }
    // no second presence, to anyone
    a.assert_silent(QUIET);
    b.assert_silent(Duration::from_millis(50));
}

#[test]
fn leave_replies_left_and_tells_the_remaining_members() {
    let s = TestServer::default_config();
    let mut a = Client::member(s.addr, "Ana", "sala");
    let mut b = Client::member(s.addr, "Beto", "sala");
    expect_presence(&mut a, "sala", &["Beto"], &[], 2);
    let l = b.request(json!({"type": "leave", "room": "sala"}), json!(9));
    assert_eq!(l, json!({"type": "left", "room": "sala", "ref": 9}));
    expect_presence(&mut a, "sala", &[], &["Beto"], 1);
    // the leaver gets nothing more of the room
    a.say("sala", "depois");
    a.recv_message("sala", "depois");
    b.assert_silent(QUIET);
    b.expect_error(
        json!({"type": "text", "room": "sala", "text": "x"}),
        "not_in_room",
    );
    b.expect_error(json!({"type": "leave", "room": "sala"}), "not_in_room");
    b.expect_error(json!({"type": "leave", "room": "nada"}), "no_such_room");
    // leave without ref still gets its reply, without ref
    b.join("sala", None);
    b.send(json!({"type": "leave", "room": "sala"}));
    let l = b.recv_type("left");
    assert!(l.get("ref").is_none(), "{l}");
    // the room stays listed after everyone left
    a.send(json!({"type": "leave", "room": "sala"}));
    a.recv_type("left");
    let rooms = a.request(json!({"type": "list"}), json!(1));
    assert_eq!(summary(&rooms["rooms"], "sala")["member_count"], 0);
}

#[test]
fn disconnect_is_a_leave_from_every_room() {
    let s = TestServer::default_config();
    let mut a = Client::member(s.addr, "Ana", "um");
    a.join("dois", None);
    let mut b = Client::member(s.addr, "Beto", "um");
    b.join("dois", None);
    expect_presence(&mut a, "um", &["Beto"], &[], 2);
    expect_presence(&mut a, "dois", &["Beto"], &[], 2);
    drop(b);
    let mut seen = Vec::new();
    for _ in 0..2 {
        let p = a.recv_type("presence");
        assert_eq!(p["left"], json!(["Beto"]), "{p}");
        assert_eq!(p["joined"], json!([]), "{p}");
        assert_eq!(p["member_count"], 1, "{p}");
        seen.push(p["room"].as_str().unwrap().to_string());
    }
    seen.sort();
    assert_eq!(seen, ["dois", "um"]);
    let w = a.request(json!({"type": "who", "room": "um"}), json!(1));
    assert_eq!(w["members"], json!(["Ana"]));
}

#[test]
fn text_with_ref_is_acked_and_delivered_to_every_member() {
    let s = TestServer::default_config();
    let mut a = Client::member(s.addr, "Ana", "sala");
    let mut b = Client::member(s.addr, "Beto", "sala");
    a.recv_type("presence");
    a.send(json!({"type": "text", "room": "sala", "text": "  olá\n  mundo \t\n", "ref": "t1"}));
    let mut ack = None;
    let mut msg_a = None;
    for _ in 0..2 {
        let v = a.recv();
        match v["type"].as_str().unwrap() {
            "ack" => ack = Some(v),
            "message" => msg_a = Some(v),
            _ => panic!("unexpected {v}"),
        }
    }
    let ack = ack.unwrap();
    let msg_a = msg_a.unwrap();
    assert_eq!(ack["ref"], "t1");
    assert!(ack["id"].is_u64(), "{ack}");
    assert_ts_now(&ack);
    assert_eq!(msg_a["room"], "sala");
    assert_eq!(msg_a["from"], "Ana");
    assert_eq!(
        msg_a["text"], "olá\n  mundo",
        "trimmed, inner white space kept"
    );
    assert_eq!(msg_a["id"], ack["id"]);
    assert_eq!(msg_a["ts"], ack["ts"]);
    assert!(
        msg_a.get("ref").is_none(),
        "the event is not the reply: {msg_a}"
    );
    let msg_b = b.expect_type("message");
    assert_eq!(msg_b, msg_a);

    // without ref: no ack, only the message
    a.say("sala", "sem ref");
    let m = a.expect_type("message");
    assert_eq!(m["text"], "sem ref");
    assert!(m["id"].as_u64().unwrap() > msg_a["id"].as_u64().unwrap());
    b.expect_type("message");
    a.assert_silent(QUIET);
    b.assert_silent(Duration::from_millis(50));
}

#[test]
fn ids_are_unique_and_increasing_and_shared_with_dms() {
    let s = TestServer::default_config();
    let mut a = Client::member(s.addr, "Ana", "sala");
    let _b = Client::hello(s.addr, "Beto");
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = a.request(
            json!({"type": "text", "room": "sala", "text": format!("t{i}")}),
            json!(i * 2),
        );
        assert_eq!(r["type"], "ack");
        ids.push(r["id"].as_u64().unwrap());
        let d = a.request(
            json!({"type": "dm", "to": "Beto", "text": format!("d{i}")}),
            json!(i * 2 + 1),
        );
        assert_eq!(d["type"], "dm");
        ids.push(d["id"].as_u64().unwrap());
    }
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids must increase in acceptance order: {ids:?}"
    );
}

#[test]
fn list_returns_room_summaries() {
    let s = TestServer::default_config();
    let mut a = Client::hello(s.addr, "Ana");
    let r = a.request(json!({"type": "list"}), json!(-3));
    assert_eq!(
        r,
        json!({"type": "rooms", "rooms": [], "total": 0, "more": false, "ref": -3})
    );
    a.create("p", Some("pw"));
    a.join("p", Some("pw"));
    a.create("q", None);
    let mut b = Client::hello(s.addr, "Beto");
    b.join("p", Some("pw"));
    let r = a.request(json!({"type": "list"}), json!(1));
    assert_eq!(r["rooms"].as_array().unwrap().len(), 2);
    assert_eq!(
        summary(&r["rooms"], "p"),
        &json!({"room": "p", "protected": true, "member_count": 2})
    );
    assert_eq!(
        summary(&r["rooms"], "q"),
        &json!({"room": "q", "protected": false, "member_count": 0})
    );
    a.send(json!({"type": "list"}));
    let r = a.recv_type("rooms");
    assert!(r.get("ref").is_none());
}

#[test]
fn who_lists_every_member_in_join_order() {
    let s = TestServer::default_config();
    let mut a = Client::member(s.addr, "Zé", "sala");
    let _b = Client::member(s.addr, "Ana", "sala");
    let _c = Client::member(s.addr, "Maria", "sala");
    let w = a.request(json!({"type": "who", "room": "sala"}), json!("w"));
    assert_eq!(
        w,
        json!({"type": "members", "room": "sala", "member_count": 3,
               "members": ["Zé", "Ana", "Maria"], "ref": "w"})
    );
    a.expect_error(json!({"type": "who", "room": "nada"}), "no_such_room");
    a.create("outra", None);
    a.expect_error(json!({"type": "who", "room": "outra"}), "not_in_room");
}

#[test]
fn joined_members_capped_at_100_but_who_lists_all() {
    let s = TestServer::default_config();
    let mut clients = Vec::new();
    let mut first = Client::member(s.addr, "u000", "big");
    let mut order = vec!["u000".to_string()];
    for i in 1..105 {
        let name = format!("u{i:03}");
        let mut c = Client::hello(s.addr, &name);
        let j = c.request(json!({"type": "join", "room": "big"}), json!(i));
        assert_eq!(j["type"], "joined");
        order.push(name);
        clients.push(c);
    }
    let mut last = Client::hello(s.addr, "last");
    let j = last.request(json!({"type": "join", "room": "big"}), json!("x"));
    order.push("last".into());
    assert_eq!(j["member_count"], 106);
    let members = names(&j["members"]);
    assert_eq!(members.len(), 100, "joined.members is capped at 100");
    assert_eq!(members, order[..100], "the first 100 in join order");
    let w = first.request(json!({"type": "who", "room": "big"}), json!("w"));
    assert_eq!(w["member_count"], 106);
    assert_eq!(names(&w["members"]), order, "who lists everyone, in order");
    let l = first.request(json!({"type": "list"}), json!("l"));
    assert_eq!(summary(&l["rooms"], "big")["member_count"], 106);
}

#[test]
fn history_pages_with_before_and_limit() {
    let s = TestServer::default_config();
    let mut a = Client::member(s.addr, "Ana", "sala");
    let mut msgs: Vec<Value> = Vec::new();
    for i in 0..130 {
        a.say("sala", &format!("m{i}"));
    }
    while msgs.len() < 130 {
        let m = a.recv_type("message");
        msgs.push(m);
    }
    let ids: Vec<u64> = msgs.iter().map(|m| m["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));

    let h = a.request(json!({"type": "history", "room": "sala"}), json!(1));
    assert_eq!(h["type"], "history");
    assert_eq!(h["room"], "sala");
    assert_eq!(
        h["messages"],
        json!(msgs[80..]),
        "default: newest 50, oldest first"
    );

    let h = a.request(
        json!({"type": "history", "room": "sala", "limit": 100}),
        json!(2),
    );
    assert_eq!(h["messages"], json!(msgs[30..]));
    let h = a.request(
        json!({"type": "history", "room": "sala", "limit": 1000}),
        json!(3),
    );
    assert_eq!(h["messages"], json!(msgs[30..]), "above 100 counts as 100");
    let h = a.request(
        json!({"type": "history", "room": "sala", "limit": 1}),
        json!(4),
    );
    assert_eq!(h["messages"], json!(msgs[129..]));
    let h = a.request(
        json!({"type": "history", "room": "sala", "before": ids[100], "limit": 10}),
        json!(5),
    );
    assert_eq!(h["messages"], json!(msgs[90..100]), "before is exclusive");
    let h = a.request(
        json!({"type": "history", "room": "sala", "before": ids[100]}),
        json!(6),
    );
    assert_eq!(h["messages"], json!(msgs[50..100]));
    let h = a.request(
        json!({"type": "history", "room": "sala", "before": ids[129] + 1000}),
        json!(7),
    );
    assert_eq!(h["messages"], json!(msgs[80..]));
    // a new joiner gets the newest 50 in joined.history
    let mut b = Client::hello(s.addr, "Beto");
    let j = b.request(json!({"type": "join", "room": "sala"}), json!(9));
    assert_eq!(j["history"], json!(msgs[80..]));

    a.expect_error(
        json!({"type": "history", "room": "sala", "limit": 0}),
        "bad_request",
    );
    a.expect_error(
        json!({"type": "history", "room": "sala", "limit": -1}),
        "bad_request",
    );
    a.expect_error(json!({"type": "history", "room": "nada"}), "no_such_room");
    a.create("outra", None);
    a.expect_error(json!({"type": "history", "room": "outra"}), "not_in_room");
}

#[test]
fn dm_reaches_the_recipient_and_echoes_to_the_sender() {
    let s = TestServer::default_config();
    let mut a = Client::hello(s.addr, "Ana");
    let mut b = Client::hello(s.addr, "Beto");
    let d = a.request(
        json!({"type": "dm", "to": "beto", "text": "  oi  "}),
        json!("d1"),
    );
    assert_eq!(d["type"], "dm");
    assert_eq!(d["from"], "Ana");
    assert_eq!(d["to"], "Beto", "the recipient's own spelling");
    assert_eq!(d["text"], "oi");
    assert!(d["id"].is_u64());
    assert_ts_now(&d);
    let got = b.expect_type("dm");
    let mut without_ref = d.clone();
    without_ref.as_object_mut().unwrap().remove("ref");
    assert_eq!(got, without_ref, "the recipient's copy carries no ref");
    a.assert_silent(QUIET);
    b.assert_silent(Duration::from_millis(50));

    // without ref the sender still gets its copy
    b.send(json!({"type": "dm", "to": "Ana", "text": "tchau"}));
    let echo = b.expect_type("dm");
    assert!(echo.get("ref").is_none());
    let got = a.expect_type("dm");
    assert_eq!(got, echo);
    assert_eq!(got["from"], "Beto");
    assert_eq!(got["to"], "Ana");

    a.expect_error(
        json!({"type": "dm", "to": "Ninguém", "text": "oi"}),
        "no_such_user",
    );
    a.expect_error(
        json!({"type": "dm", "to": "", "text": "oi"}),
        "invalid_name",
    );
    a.expect_error(
        json!({"type": "dm", "to": "x".repeat(33), "text": "oi"}),
        "invalid_name",
    );
    a.expect_error(
        json!({"type": "dm", "to": "Beto", "text": " "}),
        "invalid_text",
    );
    a.expect_error(
        json!({"type": "dm", "to": "Beto", "text": "y".repeat(4001)}),
        "invalid_text",
    );
    b.assert_silent(QUIET);
}

#[test]
fn typing_is_relayed_to_others_and_throttled_per_user_and_room() {
    let s = TestServer::default_config();
    let mut a = Client::member(s.addr, "Ana", "um");
    a.join("dois", None);
    let mut b = Client::member(s.addr, "Beto", "um");
    b.join("dois", None);
    // let the presence settle
    a.collect_for(QUIET);
    b.collect_for(Duration::from_millis(50));

    let t0 = Instant::now();
    a.send(json!({"type": "typing", "room": "um"}));
    assert_eq!(
        b.expect_type("typing"),
        json!({"type": "typing", "room": "um", "user": "Ana"})
    );
    // throttled: a second typing within 2 s is not passed on, but a ref'd one is acked
    a.send(json!({"type": "typing", "room": "um"}));
    let ack = a.request(json!({"type": "typing", "room": "um"}), json!("tp"));
    assert_eq!(ack, json!({"type": "ack", "ref": "tp"}), "ack without id");
    // another room and another user are not throttled by it
    a.send(json!({"type": "typing", "room": "dois"}));
    assert_eq!(
        b.expect_type("typing"),
        json!({"type": "typing", "room": "dois", "user": "Ana"})
    );
    b.send(json!({"type": "typing", "room": "um"}));
    assert_eq!(
        a.expect_type("typing"),
        json!({"type": "typing", "room": "um", "user": "Beto"})
    );
    b.assert_silent(Duration::from_millis(600));
    // throttled typings do not move the window: it counts from the last one passed on
    std::thread::sleep(Duration::from_millis(1500).saturating_sub(t0.elapsed()));
    a.send(json!({"type": "typing", "room": "um"}));
    b.assert_silent(Duration::from_millis(200));
    assert!(
        t0.elapsed() < Duration::from_millis(1950),
        "machine too slow for the 2 s window check"
    );
    // after the window a typing passes again
    std::thread::sleep(Duration::from_millis(2100).saturating_sub(t0.elapsed()));
    let ack = a.request(json!({"type": "typing", "room": "um"}), json!(77));
    assert_eq!(ack, json!({"type": "ack", "ref": 77}));
    assert_eq!(
        b.expect_type("typing"),
        json!({"type": "typing", "room": "um", "user": "Ana"})
    );
    // the sender never gets its own typing
    a.assert_silent(QUIET);
}

#[test]
fn presence_changes_within_the_window_arrive_as_one_event() {
    let mut config = test_config();
    config.presence_window = Duration::from_millis(400);
    let s = TestServer::start(config);
    let mut a = Client::member(s.addr, "Ana", "sala");
    let mut joiners: Vec<Client> = ["B", "C", "D"]
        .iter()
        .map(|n| Client::hello(s.addr, n))
        .collect();
    let mut e = Client::hello(s.addr, "E");
    // line up with a flush: the joins below start right after Zé's presence is sent
    let mut z = Client::hello(s.addr, "Zé");
    z.send(json!({"type": "join", "room": "sala"}));
    expect_presence(&mut a, "sala", &["Zé"], &[], 2);
    let t = Instant::now();
    for j in joiners.iter_mut() {
        j.send(json!({"type": "join", "room": "sala", "ref": 1}));
    }
    for j in joiners.iter_mut() {
        let r = j.recv_ref(&json!(1));
        assert_eq!(r["type"], "joined");
    }
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "joins took too long for one window"
    );
    expect_presence(&mut a, "sala", &["B", "C", "D"], &[], 5);

    // a join and a leave within one window show the user only in `left`
    let t = Instant::now();
    let j = e.request(json!({"type": "join", "room": "sala"}), json!(2));
    assert_eq!(j["type"], "joined");
    let l = e.request(json!({"type": "leave", "room": "sala"}), json!(3));
    assert_eq!(l["type"], "left");
    assert!(t.elapsed() < Duration::from_millis(300));
    expect_presence(&mut a, "sala", &[], &["E"], 5);
    // E left again before the flush: it gets no presence at all
    e.assert_silent(Duration::from_millis(800));
    a.assert_silent(Duration::from_millis(50));
    for j in joiners.iter_mut() {
        expect_presence(j, "sala", &["B", "C", "D"], &[], 5);
        expect_presence(j, "sala", &[], &["E"], 5);
    }
    expect_presence(&mut z, "sala", &["Zé"], &[], 2);
    expect_presence(&mut z, "sala", &["B", "C", "D"], &[], 5);
    expect_presence(&mut z, "sala", &[], &["E"], 5);
}

#[test]
fn name_rules_trim_count_code_points_and_reject_controls() {
    let s = TestServer::default_config();
    let mut c = Client::connect(s.addr);
    for bad in [
        "",
        "   ",
        "\u{3000}\t\n",
        "A\u{7}na",
        "A\u{0}na",
        "Ana\u{1b}",
        "A\u{7f}na",
        "A\u{85}na",
    ] {
        c.expect_error(json!({"type": "hello", "name": bad}), "invalid_name");
    }
    let too_long: String = "😀".repeat(33);
    c.expect_error(json!({"type": "hello", "name": too_long}), "invalid_name");
    let r = c.request(
        json!({"type": "hello", "name": "\u{3000}\u{a0} Ana Maria\t\u{2003}"}),
        json!(1),
    );
    assert_eq!(r["type"], "welcome", "{r}");
    assert_eq!(r["name"], "Ana Maria", "trimmed, inner space kept");
    c.name = "Ana Maria".into();

    let mut e = Client::connect(s.addr);
    let max: String = "😀".repeat(32);
    let r = e.request(json!({"type": "hello", "name": max}), json!(2));
    assert_eq!(
        r["type"], "welcome",
        "32 code points (128 bytes) is fine: {r}"
    );
    assert_eq!(r["name"], max);

    // rooms: 48 code points
    for bad in ["", " \u{3000} ", "sa\u{7}la", "sala\n\u{1}"] {
        c.expect_error(json!({"type": "create", "room": bad}), "invalid_room");
        c.expect_error(json!({"type": "join", "room": bad}), "invalid_room");
    }
    c.expect_error(
        json!({"type": "create", "room": "é".repeat(49)}),
        "invalid_room",
    );
    let r = c.request(json!({"type": "create", "room": "é".repeat(48)}), json!(3));
    assert_eq!(r["type"], "created", "{r}");
    let r = c.request(
        json!({"type": "create", "room": "\u{3000} sala \n"}),
        json!(4),
    );
    assert_eq!(r["room"], "sala");
    let j = c.request(json!({"type": "join", "room": " sala\u{2028}"}), json!(5));
    assert_eq!(j["type"], "joined");
    assert_eq!(j["room"], "sala");
}

#[test]
fn text_rules_trim_and_limit_to_4000_code_points() {
    let s = TestServer::default_config();
    let mut a = Client::member(s.addr, "Ana", "sala");
    let max = "😀".repeat(4000);
    let (_, m) = a.text_ref("sala", &format!(" {max}\n"), json!(1));
    assert_eq!(m["text"], max.as_str(), "4000 code points is fine");
    a.expect_error(
        json!({"type": "text", "room": "sala", "text": "😀".repeat(4001)}),
        "invalid_text",
    );
    for blank in ["", " ", "\n\t\u{3000}"] {
        a.expect_error(
            json!({"type": "text", "room": "sala", "text": blank}),
            "invalid_text",
        );
    }
    a.assert_silent(QUIET);
}

#[test]
fn passwords_up_to_128_characters() {
    let s = TestServer::default_config();
    let mut a = Client::hello(s.addr, "Ana");
    a.expect_error(
        json!({"type": "create", "room": "r1", "password": "p".repeat(129)}),
        "invalid_text",
    );
    let pw = "ã".repeat(128);
    let r = a.request(
        json!({"type": "create", "room": "r2", "password": pw}),
        json!(1),
    );
    assert_eq!(r["type"], "created", "128 characters is fine: {r}");
    assert_eq!(r["protected"], true);
    let j = a.request(
        json!({"type": "join", "room": "r2", "password": pw}),
        json!(2),
    );
    assert_eq!(j["type"], "joined");
    // a password over 128 is invalid_text before the state is looked at
    a.expect_error(
        json!({"type": "join", "room": "nada", "password": "p".repeat(129)}),
        "invalid_text",
    );
    // the create that failed did not create the room
    a.expect_error(json!({"type": "join", "room": "r1"}), "no_such_room");
}

#[test]
fn history_reaches_back_past_the_newest_100_messages() {
    let s = TestServer::default_config();
    let mut a = Client::member(s.addr, "Ana", "sala");
    for i in 0..130 {
        a.say("sala", &format!("m{i}"));
    }
    let mut msgs: Vec<Value> = Vec::new();
    while msgs.len() < 130 {
        msgs.push(a.recv_type("message"));
    }
    let ids: Vec<u64> = msgs.iter().map(|m| m["id"].as_u64().unwrap()).collect();
    // paging back with `before` reaches every message of the room
    let h = a.request(
        json!({"type": "history", "room": "sala", "before": ids[60]}),
        json!(1),
    );
    assert_eq!(
        h["messages"],
        json!(msgs[10..60]),
        "older than m60, newest 50"
    );
    let h = a.request(
        json!({"type": "history", "room": "sala", "before": ids[5], "limit": 100}),
        json!(2),
    );
    assert_eq!(h["messages"], json!(msgs[..5]));
    let h = a.request(
        json!({"type": "history", "room": "sala", "before": ids[0]}),
        json!(3),
    );
    assert_eq!(h["messages"], json!([]));
}
