//! Every error code of PROTOCOL.md, the "which error wins" precedence, the `ref`
//! rules, and that the connection keeps working after every error.

mod common;

use common::*;
use serde_json::{json, Value};

/// `cmd` (sent with a ref) fails with `code`, carrying the ref, and the connection
/// still answers a valid command afterwards.
fn check(c: &mut Client, cmd: Value, code: &str) {
    c.expect_error(cmd, code);
    c.assert_alive();
}

/// A raw frame fails with `code` and no ref; the connection still works.
fn check_raw(c: &mut Client, raw: &str, code: &str) {
    let e = c.expect_raw_error(raw, code);
    assert!(e.get("ref").is_none(), "{raw:?}: no valid ref to echo: {e}");
    c.assert_alive();
}

#[test]
fn ref_rules() {
    let s = TestServer::default_config();
    let mut c = Client::hello(s.addr, "Ana");
    for good in [
        json!(""),
        json!("a"),
        json!("é".repeat(64)),
        json!("😀".repeat(64)),
        json!(0),
        json!(-1),
        json!(9_007_199_254_740_991i64),
        json!(-9_007_199_254_740_991i64),
    ] {
        let r = c.request(json!({"type": "list"}), good.clone());
        assert_eq!(r["type"], "rooms", "ref {good} is valid: {r}");
        assert_eq!(r["ref"], good);
    }
    for bad in [
        "\"".to_string() + &"é".repeat(65) + "\"",
        "\"".to_string() + &"😀".repeat(65) + "\"",
        "9007199254740992".into(),
        "-9007199254740992".into(),
        "18446744073709551616".into(),
        "99999999999999999999999".into(),
        "1e400".into(),
        "1.0".into(),
        "0.5".into(),
        "-0.0".into(),
        "1e3".into(),
        "null".into(),
        "true".into(),
        "[]".into(),
        "[1]".into(),
        "{}".into(),
    ] {
        check_raw(
            &mut c,
            &format!(r#"{{"type":"list","ref":{bad}}}"#),
            "bad_request",
        );
    }
}

#[test]
fn invalid_ref_is_bad_request_even_before_hello_and_on_a_second_hello() {
    let s = TestServer::default_config();
    let mut c = Client::connect(s.addr);
    c.name = "new".into();
    let e = c.expect_raw_error(r#"{"type":"list","ref":1.0}"#, "bad_request");
    assert!(e.get("ref").is_none());
    c.expect_raw_error(r#"{"type":"hello","name":"Ana","ref":null}"#, "bad_request");
    c.assert_alive_unidentified();
    // the failed hello did not identify
    let w = c.request(json!({"type": "hello", "name": "Ana"}), json!(1));
    assert_eq!(w["type"], "welcome");
    c.name = "Ana".into();
    c.expect_raw_error(r#"{"type":"hello","name":"Ana","ref":1.5}"#, "bad_request");
    c.assert_alive();
}

#[test]
fn before_hello_everything_but_hello_is_not_identified() {
    let s = TestServer::default_config();
    let mut c = Client::connect(s.addr);
    c.name = "new".into();
    for cmd in [
        json!({"type": "list"}),
        json!({"type": "create", "room": "r"}),
        json!({"type": "join", "room": "r"}),
        json!({"type": "join"}),
        json!({"type": "leave", "room": 5}),
        json!({"type": "text", "room": "", "text": ""}),
        json!({"type": "who", "room": "r"}),
        json!({"type": "history", "room": "r", "limit": 0}),
        json!({"type": "dm", "to": "x", "text": "y"}),
        json!({"type": "typing", "room": "r"}),
        json!({"type": "no_such_command"}),
        json!({"type": ""}),
    ] {
        c.expect_error(cmd, "not_identified");
    }
    // but a frame that is not a command at all is bad_request
    for raw in ["nope", "[]", r#"{"type":7}"#, r#"{"ref":1}"#] {
        c.expect_raw_error(raw, "bad_request");
    }
    // a malformed hello is judged as a hello
    c.expect_error(json!({"type": "hello"}), "bad_request");
    c.expect_error(json!({"type": "hello", "name": 5}), "bad_request");
    c.expect_error(json!({"type": "hello", "name": null}), "bad_request");
    c.expect_error(json!({"type": "hello", "name": " "}), "invalid_name");
    let w = c.request(json!({"type": "hello", "name": "Ana"}), json!(1));
    assert_eq!(w["type"], "welcome");
}

#[test]
fn after_hello_every_hello_is_already_identified() {
    let s = TestServer::default_config();
    let mut c = Client::hello(s.addr, "Ana");
    let _b = Client::hello(s.addr, "Beto");
    for cmd in [
        json!({"type": "hello", "name": "Caio"}),
        json!({"type": "hello", "name": "Ana"}),
        json!({"type": "hello", "name": "Beto"}),
        json!({"type": "hello"}),
        json!({"type": "hello", "name": 5}),
        json!({"type": "hello", "name": ""}),
        json!({"type": "hello", "name": "x".repeat(100)}),
    ] {
        check(&mut c, cmd, "already_identified");
    }
    // still called Ana
    c.create("sala", None);
    let j = c.request(json!({"type": "join", "room": "sala"}), json!(2));
    assert_eq!(j["members"], json!(["Ana"]));
}

#[test]
fn unknown_type_after_hello() {
    let s = TestServer::default_config();
    let mut c = Client::hello(s.addr, "Ana");
    for ty in ["nope", "", "Hello", "LIST", "message", "welcome", "error"] {
        check(&mut c, json!({"type": ty}), "unknown_type");
    }
    // unknown type wins over bad fields
    check(
        &mut c,
        json!({"type": "nope", "room": 5, "limit": 0}),
        "unknown_type",
    );
}

#[test]
fn missing_or_wrong_typed_fields_are_bad_request() {
    let s = TestServer::default_config();
    let mut c = Client::member(s.addr, "Ana", "sala");
    for cmd in [
        json!({"type": "create"}),
        json!({"type": "create", "room": 5}),
        json!({"type": "create", "room": null}),
        json!({"type": "create", "room": "r", "password": 123}),
        json!({"type": "create", "room": "r", "password": ["x"]}),
        json!({"type": "join"}),
        json!({"type": "join", "room": ["sala"]}),
        json!({"type": "join", "room": "sala", "password": {}}),
        json!({"type": "leave"}),
        json!({"type": "leave", "room": true}),
        json!({"type": "text", "room": "sala"}),
        json!({"type": "text", "text": "oi"}),
        json!({"type": "text", "room": "sala", "text": 5}),
        json!({"type": "text", "room": "sala", "text": null}),
        json!({"type": "text", "room": "sala", "text": ["oi"]}),
        json!({"type": "who"}),
        json!({"type": "who", "room": 1}),
        json!({"type": "history"}),
        json!({"type": "history", "room": "sala", "before": "10"}),
        json!({"type": "history", "room": "sala", "limit": "10"}),
        json!({"type": "history", "room": "sala", "limit": 0}),
        json!({"type": "history", "room": "sala", "limit": -7}),
        json!({"type": "dm", "to": "Ana"}),
        json!({"type": "dm", "text": "oi"}),
        json!({"type": "dm", "to": 5, "text": "oi"}),
        json!({"type": "dm", "to": "Ana", "text": {"a": 1}}),
        json!({"type": "typing"}),
        json!({"type": "typing", "room": 0}),
    ] {
        check(&mut c, cmd, "bad_request");
    }
}

#[test]
fn which_error_wins() {
    let s = TestServer::default_config();
    let mut c = Client::hello(s.addr, "Ana");
    c.create("existe", Some("pw"));
    // bad_request beats invalid_room / invalid_text / state
    check(
        &mut c,
        json!({"type": "text", "room": "", "text": 5}),
        "bad_request",
    );
    check(
        &mut c,
        json!({"type": "history", "room": "nada", "limit": 0}),
        "bad_request",
    );
    check(
        &mut c,
        json!({"type": "history", "room": "", "limit": 0}),
        "bad_request",
    );
    // invalid_room beats no_such_room, in every command naming a room
    for cmd in [
        json!({"type": "text", "room": "", "text": "oi"}),
        json!({"type": "text", "room": "x".repeat(49), "text": "oi"}),
        json!({"type": "join", "room": "  "}),
        json!({"type": "leave", "room": ""}),
        json!({"type": "who", "room": "a\u{1}"}),
        json!({"type": "history", "room": "\t"}),
        json!({"type": "typing", "room": ""}),
        json!({"type": "create", "room": ""}),
    ] {
        check(&mut c, cmd, "invalid_room");
    }
    // invalid_text beats the state (no_such_room, not_in_room, wrong_password)
    check(
        &mut c,
        json!({"type": "text", "room": "nada", "text": " "}),
        "invalid_text",
    );
    check(
        &mut c,
        json!({"type": "text", "room": "existe", "text": ""}),
        "invalid_text",
    );
    check(
        &mut c,
        json!({"type": "join", "room": "existe", "password": "p".repeat(129)}),
        "invalid_text",
    );
    check(
        &mut c,
        json!({"type": "create", "room": "existe", "password": "p".repeat(129)}),
        "invalid_text",
    );
    // invalid_name beats no_such_user; invalid_text beats no_such_user
    check(
        &mut c,
        json!({"type": "dm", "to": "", "text": "oi"}),
        "invalid_name",
    );
    check(
        &mut c,
        json!({"type": "dm", "to": "a\u{7}", "text": "oi"}),
        "invalid_name",
    );
    check(
        &mut c,
        json!({"type": "dm", "to": "Ninguém", "text": ""}),
        "invalid_text",
    );
    // then the state
    check(
        &mut c,
        json!({"type": "dm", "to": "Ninguém", "text": "oi"}),
        "no_such_user",
    );
    check(
        &mut c,
        json!({"type": "create", "room": "EXISTE"}),
        "room_exists",
    );
    check(
        &mut c,
        json!({"type": "join", "room": "nada"}),
        "no_such_room",
    );
    check(
        &mut c,
        json!({"type": "join", "room": "existe"}),
        "wrong_password",
    );
    for cmd in [
        json!({"type": "text", "room": "nada", "text": "oi"}),
        json!({"type": "leave", "room": "nada"}),
        json!({"type": "who", "room": "nada"}),
        json!({"type": "history", "room": "nada"}),
        json!({"type": "typing", "room": "nada"}),
    ] {
        check(&mut c, cmd, "no_such_room");
    }
    for cmd in [
        json!({"type": "text", "room": "existe", "text": "oi"}),
        json!({"type": "leave", "room": "existe"}),
        json!({"type": "who", "room": "existe"}),
        json!({"type": "history", "room": "existe"}),
        json!({"type": "typing", "room": "existe"}),
    ] {
        check(&mut c, cmd, "not_in_room");
    }
    let mut d = Client::connect(s.addr);
    check_name_taken(&mut d);
}

fn check_name_taken(d: &mut Client) {
    d.name = "dup".into();
    d.expect_error(json!({"type": "hello", "name": "ANA"}), "name_taken");
    d.assert_alive_unidentified();
}

#[test]
fn every_reply_carries_the_ref_of_its_command() {
    let s = TestServer::default_config();
    let mut a = Client::member(s.addr, "Ana", "sala");
    let _b = Client::hello(s.addr, "Beto");
    a.collect_for(QUIET);
    // pipeline commands with refs; each gets exactly one reply carrying its ref
    let cmds = [
        (json!({"type": "list"}), "rooms"),
        (json!({"type": "who", "room": "sala"}), "members"),
        (json!({"type": "text", "room": "sala", "text": "oi"}), "ack"),
        (json!({"type": "typing", "room": "sala"}), "ack"),
        (json!({"type": "history", "room": "sala"}), "history"),
        (json!({"type": "dm", "to": "Beto", "text": "oi"}), "dm"),
        (json!({"type": "create", "room": "nova"}), "created"),
        (json!({"type": "join", "room": "nova"}), "joined"),
        (json!({"type": "leave", "room": "nova"}), "left"),
        (json!({"type": "join", "room": "sala"}), "joined"),
        (json!({"type": "hello", "name": "x"}), "error"),
        (json!({"type": "nope"}), "error"),
        (
            json!({"type": "text", "room": "nada", "text": "x"}),
            "error",
        ),
        (json!({"type": "join"}), "error"),
    ];
    for (i, (cmd, _)) in cmds.iter().enumerate() {
        let mut cmd = cmd.clone();
        cmd["ref"] = json!(format!("r{i}"));
        a.send(cmd);
    }
    let frames = a.collect_for(std::time::Duration::from_millis(1500));
    let replies: Vec<&Value> = frames.iter().filter(|f| f.get("ref").is_some()).collect();
    assert_eq!(
        replies.len(),
        cmds.len(),
        "one reply per ref'd command: {frames:?}"
    );
    for (i, (_, ty)) in cmds.iter().enumerate() {
        let r = format!("r{i}");
        let mine: Vec<&&Value> = replies.iter().filter(|f| f["ref"] == r.as_str()).collect();
        assert_eq!(mine.len(), 1, "exactly one reply for {r}: {frames:?}");
        assert_eq!(mine[0]["type"], *ty, "{}", mine[0]);
    }
    // events (message, presence) never carry a ref
    for f in &frames {
        if ["message", "presence", "room_added", "typing"].contains(&f["type"].as_str().unwrap()) {
            assert!(f.get("ref").is_none(), "{f}");
        }
    }
}

#[test]
fn connection_survives_every_error_code() {
    let s = TestServer::default_config();
    let mut a = Client::connect(s.addr);
    a.name = "a".into();
    check_raw_unidentified(&mut a, "{", "bad_request");
    a.expect_error(json!({"type": "list"}), "not_identified");
    a.assert_alive_unidentified();
    a.expect_error(json!({"type": "hello", "name": ""}), "invalid_name");
    a.assert_alive_unidentified();
    let w = a.request(json!({"type": "hello", "name": "Ana"}), json!(0));
    assert_eq!(w["type"], "welcome");
    a.name = "Ana".into();
    a.create("jogos", Some("1"));
    let mut b = Client::connect(s.addr);
    b.name = "b".into();
    b.expect_error(json!({"type": "hello", "name": "ana"}), "name_taken");
    b.assert_alive_unidentified();
    let w = b.request(json!({"type": "hello", "name": "Beto"}), json!(0));
    assert_eq!(w["type"], "welcome");
    b.name = "Beto".into();
    for (cmd, code) in [
        (json!({"type": "hello", "name": "x"}), "already_identified"),
        (json!({"type": "zzz"}), "unknown_type"),
        (json!({"type": "who"}), "bad_request"),
        (json!({"type": "who", "room": ""}), "invalid_room"),
        (json!({"type": "create", "room": "JOGOS"}), "room_exists"),
        (json!({"type": "join", "room": "x"}), "no_such_room"),
        (
            json!({"type": "join", "room": "jogos", "password": "2"}),
            "wrong_password",
        ),
        (json!({"type": "who", "room": "jogos"}), "not_in_room"),
        (
            json!({"type": "dm", "to": "Ana", "text": ""}),
            "invalid_text",
        ),
        (
            json!({"type": "dm", "to": "Caio", "text": "a"}),
            "no_such_user",
        ),
        (json!({"type": "dm", "to": "", "text": "a"}), "invalid_name"),
    ] {
        check(&mut b, cmd, code);
    }
    // and after all of that it still chats
    b.create("sala", None);
    b.join("sala", None);
    a.join("sala", None);
    b.say("sala", "ainda aqui");
    a.recv_message("sala", "ainda aqui");
}

fn check_raw_unidentified(c: &mut Client, raw: &str, code: &str) {
    let e = c.expect_raw_error(raw, code);
    assert!(e.get("ref").is_none());
    c.assert_alive_unidentified();
}
