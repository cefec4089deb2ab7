//! PROTOCOL.md 1.1 "Large servers" over real TCP: the paged `list` and `welcome`'s first
//! page (issue 9, findings 3 and 4), limits on making rooms (per connection, per address,
//! the server's cap), and the removal of long-empty rooms with `room_removed`.

mod common;

use common::*;
use serde_json::{json, Value};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use tungstenite::Message;

/// The test configuration with no limits on making rooms, which each test then sets.
fn unlimited() -> papo::Config {
    papo::Config {
        max_rooms: 0,
        rooms_per_connection: 0,
        rooms_per_address: 0,
        ..test_config()
    }
}

/// Connects from `local` (another loopback address is another client address), says
/// hello as `name`, and returns the client with the welcome's raw text.
fn hello_from(addr: SocketAddr, local: &str, name: &str) -> (Client, String) {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let local: SocketAddr = format!("{local}:0").parse().unwrap();
    socket.bind(&local.into()).expect("bind the client side");
    socket.connect(&addr.into()).expect("tcp connect");
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.set_nodelay(true).unwrap();
    let (ws, _) = tungstenite::client(format!("ws://{addr}/ws").as_str(), stream)
        .expect("websocket handshake");
    let mut client = Client {
        ws,
        name: name.to_string(),
        pings: 0,
    };
    client.send(json!({"type": "hello", "name": name}));
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "{name}: no welcome");
        match client.ws.read().expect("reading the welcome") {
            Message::Text(text) => {
                let welcome: Value = serde_json::from_str(text.as_str()).unwrap();
                assert_eq!(welcome["type"], "welcome", "{welcome}");
                return (client, text.as_str().to_string());
            }
            _ => continue,
        }
    }
}

/// Creates `names` from one connection, a window at a time so its queue never fills.
fn create_all(client: &mut Client, names: &[String]) {
    for chunk in names.chunks(256) {
        for name in chunk {
            client.send(json!({"type": "create", "room": name}));
        }
        for _ in chunk {
            let reply = client.recv();
            assert_eq!(reply["type"], "created", "{reply}");
        }
    }
}

fn room_names(reply: &Value) -> Vec<String> {
    reply["rooms"]
        .as_array()
        .unwrap_or_else(|| panic!("no rooms in {reply}"))
        .iter()
        .map(|r| r["room"].as_str().unwrap().to_string())
        .collect()
}

/// The order PROTOCOL.md lists rooms in: by case-folded name (these names fold as they
/// lower-case).
fn folded_order(names: &[String]) -> Vec<String> {
    let mut sorted = names.to_vec();
    sorted.sort_by_key(|n| n.to_lowercase());
    sorted
}

#[test]
fn seven_thousand_rooms_page_in_order_and_welcome_stays_small() {
    const ROOMS: usize = 7_333;
    let s = TestServer::start(unlimited());
    // Long names with two-byte letters, in a creation order far from the name order, in
    // mixed case: 48 code points each, as big as a room name gets.
    let prefixes = ["Sala ", "sala-", "ÁGORA ", "zona ", "Zé "];
    let names: Vec<String> = (0..ROOMS)
        .map(|i| {
            let n = (i * 7919) % ROOMS;
            let head = format!("{}{n:04} ", prefixes[n % prefixes.len()]);
            let pad = 48 - head.chars().count();
            head + &"ção".repeat(pad / 3) + &"é".repeat(pad % 3)
        })
        .collect();
    let mut owner = Client::hello(s.addr, "Dono");
    create_all(&mut owner, &names);
    let expected = folded_order(&names);

    // A stock Python `websockets` client refuses frames over 1 MiB; welcome is far below.
    let (mut reader, raw) = hello_from(s.addr, "127.0.0.1", "Leitora");
    let welcome: Value = serde_json::from_str(&raw).unwrap();
    assert!(raw.len() < 64 * 1024, "welcome is {} bytes", raw.len());
    assert_eq!(welcome["rooms_total"], ROOMS);
    assert_eq!(room_names(&welcome), expected[..200]);

    // A version-1 `list` gets the same first page, and says more follow.
    let first = reader.request(json!({"type": "list"}), json!("v1"));
    assert_eq!(room_names(&first), expected[..200]);
    assert_eq!(
        (first["total"].as_u64(), first["more"].as_bool()),
        (Some(ROOMS as u64), Some(true))
    );

    // Paging with `after` returns every room once, in order.
    let mut seen: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        reader.send(json!({"type": "list", "limit": 500, "after": after, "ref": pages}));
        let reply = loop {
            // Read the raw frame to check its size too: the largest page is bounded.
            match reader.ws.read().expect("reading a page") {
                Message::Text(text) => {
                    assert!(
                        text.len() < 256 * 1024,
                        "a page of 500 is {} bytes",
                        text.len()
                    );
                    break serde_json::from_str::<Value>(text.as_str()).unwrap();
                }
                _ => continue,
            }
        };
        assert_eq!(reply["type"], "rooms", "{reply}");
        assert_eq!(reply["ref"], pages);
        assert_eq!(reply["total"], ROOMS);
        let page = room_names(&reply);
        assert!(page.len() <= 500);
        seen.extend(page);
        pages += 1;
        assert_eq!(reply["more"], seen.len() < ROOMS, "page {pages}");
        if reply["more"] == false {
            break;
        }
        after = seen.last().cloned();
    }
    assert_eq!(pages, ROOMS.div_ceil(500));
    assert_eq!(seen, expected, "every room once, in case-folded order");
}

#[test]
fn q_filters_ignoring_case_and_limit_is_bounded() {
    let s = TestServer::start(unlimited());
    let mut a = Client::hello(s.addr, "Ana");
    let names: Vec<String> = ["Jogos de mesa", "xadrez", "MEUS JOGOS", "jogo", "Cozinha"]
        .iter()
        .map(|n| n.to_string())
        .collect();
    create_all(&mut a, &names);
    // Up to 200 rooms, everything is on the first page, in case-folded order.
    let (_b, raw) = hello_from(s.addr, "127.0.0.1", "Caio");
    let welcome: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        room_names(&welcome),
        ["Cozinha", "jogo", "Jogos de mesa", "MEUS JOGOS", "xadrez"]
    );
    assert_eq!(welcome["rooms_total"], 5);

    let r = a.request(json!({"type": "list", "q": "jOgOs"}), json!(1));
    assert_eq!(room_names(&r), ["Jogos de mesa", "MEUS JOGOS"]);
    assert_eq!(
        (r["total"].as_u64(), r["more"].as_bool()),
        (Some(2), Some(false))
    );
    let r = a.request(json!({"type": "list", "q": "JOGOS", "limit": 1}), json!(2));
    assert_eq!(room_names(&r), ["Jogos de mesa"]);
    assert_eq!(
        (r["total"].as_u64(), r["more"].as_bool()),
        (Some(2), Some(true))
    );
    let r = a.request(
        json!({"type": "list", "q": "jogos", "limit": 1, "after": "Jogos de mesa"}),
        json!(3),
    );
    assert_eq!(room_names(&r), ["MEUS JOGOS"]);
    assert_eq!(
        (r["total"].as_u64(), r["more"].as_bool()),
        (Some(2), Some(false))
    );
    let r = a.request(json!({"type": "list", "q": "nada"}), json!(4));
    assert_eq!(r["rooms"], json!([]));
    assert_eq!(
        (r["total"].as_u64(), r["more"].as_bool()),
        (Some(0), Some(false))
    );
    // `after` is a position: it need not be a room.
    let r = a.request(json!({"type": "list", "after": "k"}), json!(5));
    assert_eq!(room_names(&r), ["MEUS JOGOS", "xadrez"]);
    assert_eq!(r["total"], 5);

    for limit in [json!(0), json!(501), json!(-1), json!(2.5), json!("5")] {
        a.expect_error(json!({"type": "list", "limit": limit}), "bad_request");
    }
    a.expect_error(json!({"type": "list", "after": 3}), "bad_request");
    a.expect_error(json!({"type": "list", "q": {"x": 1}}), "bad_request");
    let r = a.request(json!({"type": "list", "limit": 500}), json!(6));
    assert_eq!(room_names(&r).len(), 5);
    let r = a.request(json!({"type": "list", "limit": 1}), json!(7));
    assert_eq!(room_names(&r), ["Cozinha"]);
    assert_eq!(r["more"], true);
}

#[test]
fn the_server_cap_is_too_many_rooms() {
    let s = TestServer::start(papo::Config {
        max_rooms: 3,
        ..unlimited()
    });
    let mut a = Client::hello(s.addr, "Ana");
    for room in ["um", "dois", "três"] {
        a.create(room, None);
    }
    let e = a.expect_error(
        json!({"type": "create", "room": "quatro"}),
        "too_many_rooms",
    );
    assert!(e["message"].as_str().unwrap().contains('3'), "{e}");
    a.expect_error(
        json!({"type": "create", "room": "quatro", "password": "segredo"}),
        "too_many_rooms",
    );
    let mut b = Client::hello(s.addr, "Beto");
    b.expect_error(json!({"type": "create", "room": "cinco"}), "too_many_rooms");
    a.expect_error(json!({"type": "create", "room": "UM"}), "room_exists");
    // The rooms there are still work.
    b.join("dois", None);
    let r = b.request(json!({"type": "list"}), json!(1));
    assert_eq!(r["total"], 3);
}

#[test]
fn room_creation_is_limited_per_connection() {
    let s = TestServer::start(papo::Config {
        rooms_per_connection: 2,
        ..unlimited()
    });
    let mut a = Client::hello(s.addr, "Ana");
    a.create("a1", None);
    a.create("a2", Some("segredo"));
    let e = a.expect_error(json!({"type": "create", "room": "a3"}), "rate_limited");
    assert!(e["message"].as_str().unwrap().contains("connection"), "{e}");
    a.expect_error(
        json!({"type": "create", "room": "a3", "password": "x"}),
        "rate_limited",
    );
    // Another connection from the same address has an allowance of its own.
    let mut b = Client::hello(s.addr, "Beto");
    b.create("b1", None);
    // The limit holds back making rooms, nothing else.
    a.join("b1", None);
    a.assert_alive();
}

#[test]
fn room_creation_is_limited_per_address() {
    let s = TestServer::start(papo::Config {
        rooms_per_address: 3,
        ..unlimited()
    });
    let (mut a, _) = hello_from(s.addr, "127.0.0.1", "Ana");
    let (mut b, _) = hello_from(s.addr, "127.0.0.1", "Beto");
    a.create("a1", None);
    a.create("a2", None);
    b.create("b1", None);
    let e = b.expect_error(json!({"type": "create", "room": "b2"}), "rate_limited");
    assert!(e["message"].as_str().unwrap().contains("address"), "{e}");
    a.expect_error(json!({"type": "create", "room": "a3"}), "rate_limited");
    // 127.0.0.2 is another address.
    let (mut c, _) = hello_from(s.addr, "127.0.0.2", "Caio");
    c.create("c1", None);
    c.create("c2", None);
    c.create("c3", None);
    c.expect_error(json!({"type": "create", "room": "c4"}), "rate_limited");
}

#[test]
fn long_empty_rooms_are_removed_and_every_identified_connection_hears_it() {
    let dir = TempDir::new("removal");
    let db = dir.file("papo.db");
    let config = papo::Config {
        db: db.clone(),
        remove_empty_rooms_after: Some(Duration::from_millis(1500)),
        ..unlimited()
    };
    let s = TestServer::start(config.clone());
    let mut a = Client::hello(s.addr, "Ana");
    let mut b = Client::hello(s.addr, "Beto");
    let mut quiet = Client::connect(s.addr); // never says hello
    a.create("velha", None);
    a.create("viva", None);
    b.recv_type("room_added");
    b.recv_type("room_added");
    a.join("viva", None);
    a.join("velha", None);
    a.request(
        json!({"type": "text", "room": "velha", "text": "olá"}),
        json!("t"),
    );
    let r = a.request(json!({"type": "leave", "room": "velha"}), json!("l"));
    assert_eq!(r["type"], "left");
    let left = Instant::now();

    let removed = json!({"type": "room_removed", "room": "velha"});
    assert_eq!(a.recv_type("room_removed"), removed);
    assert_eq!(b.recv_type("room_removed"), removed);
    assert!(
        left.elapsed() >= Duration::from_millis(1400),
        "removed only after standing empty for the setting"
    );
    quiet.assert_silent(QUIET);
    // A room with a member stays, however long.
    a.assert_silent(Duration::from_secs(2));
    let r = b.request(json!({"type": "list"}), json!(1));
    assert_eq!(room_names(&r), ["viva"]);
    b.expect_error(json!({"type": "join", "room": "velha"}), "no_such_room");

    // Gone from the database too: its row and its messages.
    let file = rusqlite::Connection::open(&db).unwrap();
    let count = |sql: &str| -> i64 { file.query_row(sql, [], |row| row.get(0)).unwrap() };
    let deadline = Instant::now() + WAIT;
    while count("SELECT count(*) FROM rooms WHERE name = 'velha'") > 0 {
        assert!(Instant::now() < deadline, "the room's row is still stored");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(count("SELECT count(*) FROM messages WHERE text = 'olá'"), 0);
    assert_eq!(count("SELECT count(*) FROM rooms WHERE name = 'viva'"), 1);

    // Its name is free again, and the new room has nothing of the old one.
    b.create("velha", None);
    let joined = b.request(json!({"type": "join", "room": "velha"}), json!("j"));
    assert_eq!(joined["history"], json!([]));
    drop((a, b, quiet));
    drop(s);

    // After a restart a stored room counts from its newest message or its creation, and
    // nobody is in it: both rooms go within the setting.
    let s = TestServer::start(config);
    let mut c = Client::hello(s.addr, "Caio");
    let deadline = Instant::now() + WAIT;
    loop {
        let r = c.request(json!({"type": "list"}), json!("l"));
        if r["total"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rooms left after the restart: {r}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + WAIT;
    while count("SELECT count(*) FROM rooms") > 0 {
        assert!(
            Instant::now() < deadline,
            "rooms still stored after the restart"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn rooms_are_listed_and_searched_by_their_case_folded_names() {
    let s = TestServer::default_config();
    let mut ana = Client::hello(s.addr, "Ana");
    for room in ["Straße", "ＺＯＯ", "ábaco", "beta"] {
        assert_eq!(ana.create(room, None)["type"], "created");
    }
    let listed = ana.request(json!({"type": "list"}), json!(1));
    let rooms: Vec<Value> = listed["rooms"].as_array().unwrap().clone();
    let names: Vec<&str> = rooms.iter().map(|r| r["room"].as_str().unwrap()).collect();
    // By case-folded name, code point by code point (PROTOCOL.md names no collation):
    // `beta` < `strasse` < `zoo` (fullwidth folds to ASCII) < `ábaco`.
    assert_eq!(names, ["beta", "Straße", "ＺＯＯ", "ábaco"]);
    let found = ana.request(json!({"type": "list", "q": "STRASSE"}), json!(2));
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["rooms"][0]["room"], "Straße");
    let zoo = ana.request(json!({"type": "list", "q": "zoo"}), json!(3));
    assert_eq!(zoo["rooms"][0]["room"], "ＺＯＯ");
}
