//! Room-password checks over real TCP, after a restart (the passwords are not verified yet
//! in this run, so every join with a password goes to argon2 on the password pool):
//! a connection's replies keep the order of its commands across a check, a disconnect
//! waits for it, and failed attempts are limited per connection and per address before
//! any hashing.

mod common;

use common::{test_config, Client, TempDir, TestServer, WAIT};
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const PASSWORD: &str = "segredo";

fn server_on(db: &str, config: papo::Config) -> TestServer {
    TestServer::start(papo::Config {
        db: db.into(),
        ..config
    })
}

/// A server restarted on a database holding protected rooms `rooms` (password
/// `segredo`), so that no password of theirs is known in memory yet.
fn restarted(tag: &str, rooms: &[&str], config: papo::Config) -> (TempDir, TestServer) {
    let dir = TempDir::new(tag);
    let mut first = server_on(&dir.file("papo.db"), config.clone());
    let mut owner = Client::hello(first.addr, "Dona");
    for room in rooms {
        owner.create(room, Some(PASSWORD));
    }
    drop(owner);
    first.shutdown();
    let server = server_on(&dir.file("papo.db"), config);
    (dir, server)
}

/// Reads frames until every ref in `refs` has had its reply; returns the replies' (type,
/// ref) in arrival order. Frames without a ref (presence, messages) are skipped.
fn replies(client: &mut Client, refs: &[i64]) -> Vec<(String, i64)> {
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    while got.len() < refs.len() {
        assert!(Instant::now() < deadline, "replies so far: {got:?}");
        let frame = client.recv();
        if let Some(r) = frame.get("ref").and_then(Value::as_i64) {
            let kind = match frame["type"].as_str() {
                Some("error") => format!("error:{}", frame["code"].as_str().unwrap()),
                Some(other) => other.to_string(),
                None => panic!("{frame}"),
            };
            got.push((kind, r));
        }
    }
    got
}

fn pairs(expected: &[(&str, i64)]) -> Vec<(String, i64)> {
    expected.iter().map(|(k, r)| (k.to_string(), *r)).collect()
}

fn join(room: &str, password: &str, r: i64) -> Value {
    json!({"type": "join", "room": room, "password": password, "ref": r})
}

#[test]
fn a_leave_right_after_a_checked_join_finds_the_client_in_the_room() {
    let (_dir, server) = restarted("leave", &["cofre"], test_config());
    let mut ana = Client::hello(server.addr, "Ana");
    ana.send(join("cofre", PASSWORD, 1));
    ana.send(json!({"type": "leave", "room": "cofre", "ref": 2}));
    assert_eq!(
        replies(&mut ana, &[1, 2]),
        pairs(&[("joined", 1), ("left", 2)])
    );
    let who = ana.request(json!({"type": "who", "room": "cofre"}), json!(3));
    assert_eq!(who["code"], "not_in_room", "the leave took effect: {who}");
}

#[test]
fn a_text_right_after_a_checked_join_is_sent_in_the_room() {
    let (_dir, server) = restarted("text", &["cofre"], test_config());
    let mut ana = Client::hello(server.addr, "Ana");
    ana.send(join("cofre", PASSWORD, 1));
    ana.send(json!({"type": "text", "room": "cofre", "text": "cheguei", "ref": 2}));
    assert_eq!(
        replies(&mut ana, &[1, 2]),
        pairs(&[("joined", 1), ("ack", 2)])
    );
}

#[test]
fn a_list_right_after_a_wrong_password_comes_second() {
    let (_dir, server) = restarted("list", &["cofre"], test_config());
    let mut ana = Client::hello(server.addr, "Ana");
    ana.send(join("cofre", "errada", 1));
    ana.send(json!({"type": "list", "ref": 2}));
    assert_eq!(
        replies(&mut ana, &[1, 2]),
        pairs(&[("error:wrong_password", 1), ("rooms", 2)])
    );
}

#[test]
fn an_error_the_reader_decides_waits_behind_the_check_too() {
    let (_dir, server) = restarted("bad", &["cofre"], test_config());
    let mut ana = Client::hello(server.addr, "Ana");
    ana.send(join("cofre", PASSWORD, 1));
    // Valid JSON with a valid ref but no string `type`: the reader refuses it itself.
    ana.send(json!({"type": 5, "ref": 2}));
    assert_eq!(
        replies(&mut ana, &[1, 2]),
        pairs(&[("joined", 1), ("error:bad_request", 2)])
    );
}

#[test]
fn a_disconnect_during_a_check_comes_after_what_was_sent_before_it() {
    let (_dir, server) = restarted("gone", &["cofre"], test_config());
    let mut ana = Client::hello(server.addr, "Ana");
    ana.send(join("cofre", PASSWORD, 1));
    ana.send(json!({"type": "text", "room": "cofre", "text": "tchau"}));
    drop(ana);

    // The name comes free once the held disconnect has run.
    let deadline = Instant::now() + WAIT;
    let mut ana2 = loop {
        let mut c = Client::connect(server.addr);
        c.send(json!({"type": "hello", "name": "Ana", "ref": "h"}));
        let reply = c.recv_until(|v| v.get("ref").is_some());
        if reply["type"] == "welcome" {
            break c;
        }
        assert_eq!(reply["code"], "name_taken");
        assert!(Instant::now() < deadline, "the name never came free");
        std::thread::sleep(Duration::from_millis(20));
    };
    ana2.name = "Ana".into();
    let joined = ana2.join("cofre", Some(PASSWORD));
    let history: Vec<&str> = joined["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["tchau"], "the text sent before leaving was kept");
    assert_eq!(joined["members"], json!(["Ana"]), "no ghost member left");
}

/// A WebSocket client whose socket is bound to `from` (any 127.0.0.0/8 address is ours).
fn client_from(server: SocketAddr, from: IpAddr, name: &str) -> Client {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::new(from, 0).into())
        .expect("bind a loopback address");
    socket.connect(&server.into()).expect("connect");
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.set_nodelay(true).unwrap();
    let url = format!("ws://{server}/ws");
    let (ws, _) = tungstenite::client(url.as_str(), stream).expect("handshake");
    let mut client = Client {
        ws,
        name: name.into(),
        pings: 0,
    };
    client.send(json!({"type": "hello", "name": name}));
    client.expect_type("welcome");
    client
}

fn expect_code(client: &mut Client, cmd: Value, code: &str) {
    let reply = client.request(cmd, json!("x"));
    assert_eq!(reply["code"], code, "{}: {reply}", client.name);
}

#[test]
fn wrong_passwords_are_limited_per_connection_and_per_address() {
    let (_dir, server) = restarted("limits", &["cofre"], test_config());
    let one: IpAddr = [127, 0, 0, 1].into();
    let mut ana = client_from(server.addr, one, "Ana");
    let wrong = json!({"type": "join", "room": "cofre", "password": "errada"});
    for _ in 0..5 {
        expect_code(&mut ana, wrong.clone(), "wrong_password");
    }
    let limited = ana.request(wrong.clone(), json!("x"));
    assert_eq!(limited["code"], "rate_limited", "{limited}");
    assert!(limited["message"].as_str().unwrap().contains("try again"));

    let mut beto = client_from(server.addr, one, "Beto");
    for _ in 0..5 {
        expect_code(&mut beto, wrong.clone(), "wrong_password");
    }
    // Ten failures from 127.0.0.1: even the right password waits for the address.
    let mut caio = client_from(server.addr, one, "Caio");
    let right = json!({"type": "join", "room": "cofre", "password": PASSWORD});
    expect_code(&mut caio, right.clone(), "rate_limited");

    // Another address is not affected.
    let mut duda = client_from(server.addr, [127, 0, 0, 2].into(), "Duda");
    let joined = duda.request(right, json!("x"));
    assert_eq!(joined["type"], "joined", "{joined}");
}

#[test]
fn the_limits_can_be_turned_off() {
    let config = papo::Config {
        password_failures_per_connection: 0,
        password_failures_per_ip: 0,
        ..test_config()
    };
    let (_dir, server) = restarted("off", &["cofre"], config);
    let mut ana = Client::hello(server.addr, "Ana");
    for _ in 0..12 {
        expect_code(
            &mut ana,
            json!({"type": "join", "room": "cofre", "password": "errada"}),
            "wrong_password",
        );
    }
}
