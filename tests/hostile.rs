//! Hostile input: malformed JSON of every kind, wrong field types, deep nesting, huge
//! numbers, oversized, binary and invalid-UTF-8 frames, garbage bytes, stalled and
//! oversized HTTP heads. Each attack runs next to a well-behaved pair of clients that
//! must keep chatting; one test runs them all while a pair chats without pause.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use tungstenite::Message;

const HEAD_TIMEOUT: Duration = Duration::from_millis(1000);

fn hostile_server() -> TestServer {
    let mut config = test_config();
    config.head_timeout = HEAD_TIMEOUT;
    TestServer::start(config)
}

/// Start a server, check a pair chats, run `attack`, check the pair still chats.
fn with_pair(attack: fn(SocketAddr)) {
    let s = hostile_server();
    let mut pair = Pair::new(s.addr, "x");
    pair.chat();
    attack(s.addr);
    pair.chat();
    let (status, _, body) = http_get(s.addr, "/healthz");
    assert_eq!((status, body.as_slice()), (200, &b"ok"[..]));
}

fn malformed_frames() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        " ",
        "not json",
        "hello",
        "{",
        "}",
        "[",
        "[]",
        "[{\"type\":\"list\"}]",
        "\"list\"",
        "\"{\\\"type\\\":\\\"list\\\"}\"",
        "42",
        "-1.5e10",
        "null",
        "true",
        "{}",
        "{\"Type\":\"list\"}",
        "{\"type\":5}",
        "{\"type\":null}",
        "{\"type\":true}",
        "{\"type\":[\"list\"]}",
        "{\"type\":{\"a\":\"list\"}}",
        "{\"type\":\"list\"",
        "{\"type\":\"li",
        "{\"type\":\"list\",}",
        "{type:\"list\"}",
        "{'type':'list'}",
        "{\"type\":\"list\"} trailing",
        "{\"type\":\"list\"}{\"type\":\"list\"}",
        "{\"type\":\"list\"}]",
        "\u{feff}{\"type\":\"list\"}x",
        "{\"type\":\"\\ud800\"}",
        "{\"type\":\"list\\u0000\",\"x\":\"\\uZZZZ\"}",
        "\u{0}\u{1}\u{2}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("{".repeat(5000));
    v.push(format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)));
    // deeply nested objects are in hostile_nesting.rs (they once aborted the process)
    v
}

fn attack_malformed_json(addr: SocketAddr) {
    // before hello: every malformed frame is bad_request and the connection stays open
    let mut c = Client::connect(addr);
    c.name = "malformed-anon".into();
    for raw in malformed_frames() {
        let e = c.expect_raw_error(&raw, "bad_request");
        assert!(e.get("ref").is_none(), "{e}");
    }
    // an object without type but with a valid ref: the error carries the ref
    let e = c.expect_raw_error(r#"{"ref":1}"#, "bad_request");
    assert_eq!(e["ref"], 1);
    c.assert_alive_unidentified();
    // after hello too
    let mut c = Client::hello(addr, "malformed");
    for raw in malformed_frames() {
        let short: String = raw.chars().take(60).collect();
        c.send_text(&raw);
        // Another test's pair may create its room meanwhile: skip such events.
        let e = c.recv_until(|v| v["type"] != "presence" && v["type"] != "room_added");
        assert_eq!(e["type"], "error", "{short:?} -> {e}");
        assert_eq!(e["code"], "bad_request", "{short:?} -> {e}");
    }
    c.assert_alive();
}

fn attack_wrong_types(addr: SocketAddr) {
    let mut c = Client::member(addr, "wrongtypes", "wt");
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    for raw in [
        r#"{"type":"hello","name":"x"}"#.to_string(),
        r#"{"type":"join","room":{"room":"wt"}}"#.into(),
        r#"{"type":"text","room":"wt","text":1e400}"#.into(),
        r#"{"type":"text","room":"wt","text":99999999999999999999999}"#.into(),
        r#"{"type":"text","room":["wt"],"text":"x"}"#.into(),
        r#"{"type":"history","room":"wt","limit":1e400}"#.into(),
        r#"{"type":"history","room":"wt","limit":-99999999999999999999999}"#.into(),
        r#"{"type":"history","room":"wt","before":1e400}"#.into(),
        r#"{"type":"history","room":"wt","before":"1"}"#.into(),
        r#"{"type":"dm","to":["wrongtypes"],"text":"x"}"#.into(),
        format!(r#"{{"type":"text","room":"wt","text":{deep}}}"#),
        format!(r#"{{"type":"join","room":{deep}}}"#),
    ] {
        let short: String = raw.chars().take(70).collect();
        c.send_text(&raw);
        let e = c.recv_until(|v| v["type"] != "presence");
        assert_eq!(e["type"], "error", "{short} -> {e}");
        let want = if raw.contains("hello") {
            "already_identified"
        } else {
            "bad_request"
        };
        assert_eq!(e["code"], want, "{short} -> {e}");
    }
    // numbers the server cannot hold: an error or a capped reply, never a crash
    for raw in [
        r#"{"type":"list","x":1e400}"#,
        r#"{"type":"history","room":"wt","limit":99999999999999999999999}"#,
        r#"{"type":"history","room":"wt","before":99999999999999999999999}"#,
        r#"{"type":"history","room":"wt","limit":1e2}"#,
    ] {
        c.send_text(raw);
        let r = c.recv_until(|v| v["type"] != "presence");
        assert!(
            r["type"] == "error" && r["code"] == "bad_request"
                || r["type"] == "rooms"
                || r["type"] == "history" && r["messages"].as_array().unwrap().len() <= 100,
            "{raw} -> {r}"
        );
    }
    // unknown extra fields nested deep, in an otherwise valid command
    let deep_extra = format!(
        r#"{{"type":"list","ref":"d","x":{}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    c.send_text(&deep_extra);
    let r = c.recv_until(|v| v["type"] != "presence");
    assert!(
        r["type"] == "rooms" && r["ref"] == "d" || r["code"] == "bad_request",
        "{r}"
    );
    c.assert_alive();
}

fn attack_oversized_frame(addr: SocketAddr) {
    let mut c = Client::hello(addr, "bigframe");
    let big = format!(
        r#"{{"type":"text","room":"x","text":"{}"}}"#,
        "a".repeat(100 * 1024)
    );
    let _ = c.try_send(Message::text(big));
    assert_eq!(
        c.expect_closed(WAIT),
        Some(1009),
        "a 100 KiB frame closes with 1009"
    );
}

fn attack_binary_frame(addr: SocketAddr) {
    let mut c = Client::hello(addr, "binary");
    let _ = c.try_send(Message::binary(br#"{"type":"list"}"#.to_vec()));
    assert_eq!(
        c.expect_closed(WAIT),
        Some(1003),
        "a binary frame closes with 1003"
    );
}

fn attack_invalid_utf8(addr: SocketAddr) {
    let mut w = RawWs::connect(addr);
    w.send_json(&json!({"type": "hello", "name": "utf8", "ref": 1}));
    let welcome = w.recv_json(WAIT);
    assert_eq!(welcome["type"], "welcome");
    let mut payload = br#"{"type":"list","x":""#.to_vec();
    payload.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    payload.extend_from_slice(br#""}"#);
    w.send_frame(0x1, &payload);
    assert_eq!(
        w.expect_closed(WAIT),
        Some(1007),
        "invalid UTF-8 closes with 1007"
    );

    // the same before hello, and split across a continuation frame
    let mut w = RawWs::connect(addr);
    let mut first = RawWs::encode(false, 0x1, &[b'"', 0xe2, 0x82]);
    first.extend_from_slice(&RawWs::encode(true, 0x0, &[0x28, b'"']));
    w.stream.write_all(&first).unwrap();
    assert_eq!(w.expect_closed(WAIT), Some(1007));
}

fn attack_garbage_bytes(addr: SocketAddr) {
    // garbage with a head terminator: an HTTP error or a closed connection, promptly
    let mut s = raw_connect(addr);
    let mut junk: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    junk.extend_from_slice(b"\r\n\r\n");
    let _ = s.write_all(&junk);
    assert_rejected(&mut s, "garbage");
    // not even a request line
    let mut s = raw_connect(addr);
    let _ = s.write_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS hello\r\n\r\n");
    assert_rejected(&mut s, "tls hello");
    let mut s = raw_connect(addr);
    let _ = s.write_all(b"BREW /ws HTCPCP/1.0\r\n\r\n");
    assert_rejected(&mut s, "brew");
    // garbage without a terminator: closed by the head timeout at the latest
    let mut s = raw_connect(addr);
    let _ = s.write_all(&[0u8; 1000]);
    assert_rejected(&mut s, "zeros");
}

/// The connection gets an HTTP error status (4xx/5xx) or is closed, within `WAIT`.
fn assert_rejected(s: &mut std::net::TcpStream, what: &str) {
    let t = Instant::now();
    match read_head(s, WAIT) {
        Some((status, head, _)) => {
            assert!((400..600).contains(&status), "{what}: answered {head}")
        }
        None => assert!(t.elapsed() < WAIT, "{what}: neither answered nor closed"),
    }
}

fn attack_stalled_heads(addr: SocketAddr) {
    // many connections each send half a head and stall
    let mut stalled = Vec::new();
    for i in 0..20 {
        let mut s = raw_connect(addr);
        let part: &[u8] = if i % 2 == 0 {
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: webso"
        } else {
            b"GE"
        };
        s.write_all(part).unwrap();
        stalled.push(s);
    }
    let idle = raw_connect(addr); // sends nothing at all
    stalled.push(idle);
    let t = Instant::now();
    // meanwhile the server serves others
    let mut p = Pair::new(addr, "stall");
    p.chat();
    let (status, _, _) = http_get(addr, "/healthz");
    assert_eq!(status, 200);
    // and closes the stalled ones after the head timeout
    for mut s in stalled {
        let mut buf = [0u8; 1024];
        s.set_read_timeout(Some(WAIT)).unwrap();
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {} // e.g. a 408 response; keep reading until the end
            }
        }
    }
    let took = t.elapsed();
    assert!(
        took < WAIT,
        "stalled connections not closed in time: {took:?}"
    );
    assert!(
        took >= HEAD_TIMEOUT / 2,
        "stalled connections closed before the head timeout: {took:?}"
    );
}

fn attack_oversized_head(addr: SocketAddr) {
    let mut s = raw_connect(addr);
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        let line = format!("X-Pad: {}\r\n", "a".repeat(1000));
        for _ in 0..1024 {
            if w.write_all(line.as_bytes()).is_err() {
                return;
            }
        }
        let _ = w.write_all(b"\r\n");
    });
    // refused with a 4xx, or closed without an answer
    if let Some((status, head, _)) = read_head(&mut s, WAIT) {
        assert!(
            (400..500).contains(&status),
            "a 1 MiB head must be refused, got {head}"
        );
    }
    writer.join().unwrap();
    // a long but acceptable head still works
    let mut s = raw_connect(addr);
    let req = format!(
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nX-Pad: {}\r\nConnection: close\r\n\r\n",
        "b".repeat(2000)
    );
    s.write_all(req.as_bytes()).unwrap();
    let (status, _, _) = read_head(&mut s, WAIT).expect("a response");
    assert_eq!(status, 200);
}

#[test]
fn malformed_json_is_bad_request_and_the_connection_stays_open() {
    with_pair(attack_malformed_json);
}

#[test]
fn wrong_field_types_deep_nesting_and_huge_numbers() {
    with_pair(attack_wrong_types);
}

#[test]
fn a_100_kib_frame_closes_with_1009() {
    with_pair(attack_oversized_frame);
}

#[test]
fn a_binary_frame_closes_with_1003() {
    with_pair(attack_binary_frame);
}

#[test]
fn invalid_utf8_closes_with_1007() {
    with_pair(attack_invalid_utf8);
}

#[test]
fn garbage_bytes_on_the_port() {
    with_pair(attack_garbage_bytes);
}

#[test]
fn stalled_half_sent_heads_do_not_block_others_and_time_out() {
    with_pair(attack_stalled_heads);
}

#[test]
fn an_oversized_request_head_is_refused() {
    with_pair(attack_oversized_head);
}

#[test]
fn all_attacks_while_a_pair_keeps_chatting() {
    let s = hostile_server();
    let addr = s.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let chatter = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut pair = Pair::new(addr, "bg");
            let mut rounds = 0u32;
            while !stop.load(Ordering::Relaxed) {
                pair.chat();
                rounds += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            rounds
        })
    };
    type Attack = (&'static str, fn(SocketAddr));
    let attacks: [Attack; 8] = [
        ("malformed", attack_malformed_json),
        ("wrong types", attack_wrong_types),
        ("100 KiB frame", attack_oversized_frame),
        ("binary", attack_binary_frame),
        ("utf8", attack_invalid_utf8),
        ("garbage", attack_garbage_bytes),
        ("stalled heads", attack_stalled_heads),
        ("oversized head", attack_oversized_head),
    ];
    for (name, attack) in attacks {
        let t = Instant::now();
        attack(addr);
        eprintln!("attack {name}: {:?}", t.elapsed());
        assert!(
            !chatter.is_finished(),
            "the chatting pair failed during {name}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let rounds = chatter.join().expect("the chatting pair never failed");
    assert!(rounds >= 5, "the pair chatted only {rounds} rounds");
}
