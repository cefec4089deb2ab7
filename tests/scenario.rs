//! The original project's scenario: Ana creates the protected room "jogos" and joins,
//! Beto joins with the password, both see the presence and each other's messages, and
//! Caio, with a wrong or no password, is refused and sees nothing of the room.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[test]
fn ana_beto_chat_in_jogos_and_caio_is_kept_out() {
    let s = TestServer::default_config();

    // Ana connects, creates "jogos" with password "123" and joins
    let mut ana = Client::hello(s.addr, "Ana");
    let c = ana.create("jogos", Some("123"));
    assert_eq!(c["protected"], true);
    let j = ana.request(
        json!({"type": "join", "room": "jogos", "password": "123"}),
        json!(1),
    );
    assert_eq!(j["type"], "joined");
    assert_eq!(j["members"], json!(["Ana"]));
    let p = ana.expect_type("presence");
    assert_eq!(
        p,
        json!({"type": "presence", "room": "jogos", "joined": ["Ana"], "left": [], "member_count": 1})
    );

    // Beto connects, sees the room, joins with "123"
    let mut beto = Client::connect(s.addr);
    beto.send(json!({"type": "hello", "name": "Beto"}));
    let w = beto.expect_type("welcome");
    beto.name = "Beto".into();
    assert_eq!(
        w["rooms"],
        json!([{"room": "jogos", "protected": true, "member_count": 1}])
    );
    let j = beto.request(
        json!({"type": "join", "room": "jogos", "password": "123"}),
        json!(2),
    );
    assert_eq!(j["type"], "joined");
    assert_eq!(j["protected"], true);
    assert_eq!(j["member_count"], 2);
    assert_eq!(j["members"], json!(["Ana", "Beto"]));
    let presence = json!({"type": "presence", "room": "jogos", "joined": ["Beto"], "left": [], "member_count": 2});
    assert_eq!(beto.expect_type("presence"), presence);
    assert_eq!(ana.expect_type("presence"), presence);

    // both see each other's messages, in the same order
    ana.say("jogos", "oi Beto, bora jogar?");
    let m1 = ana.expect_type("message");
    assert_eq!(beto.expect_type("message"), m1);
    assert_eq!(m1["from"], "Ana");
    assert_eq!(m1["text"], "oi Beto, bora jogar?");
    beto.say("jogos", "bora!");
    let m2 = beto.expect_type("message");
    assert_eq!(ana.expect_type("message"), m2);
    assert_eq!(m2["from"], "Beto");
    assert!(m2["id"].as_u64() > m1["id"].as_u64());

    // Caio, with no or a wrong password, is refused
    let mut caio = Client::hello(s.addr, "Caio");
    caio.expect_error(json!({"type": "join", "room": "jogos"}), "wrong_password");
    caio.expect_error(
        json!({"type": "join", "room": "jogos", "password": "321"}),
        "wrong_password",
    );
    caio.expect_error(
        json!({"type": "join", "room": "JOGOS", "password": "123 "}),
        "wrong_password",
    );
    caio.expect_error(json!({"type": "who", "room": "jogos"}), "not_in_room");
    caio.expect_error(json!({"type": "history", "room": "jogos"}), "not_in_room");
    caio.expect_error(
        json!({"type": "text", "room": "jogos", "text": "me deixa entrar"}),
        "not_in_room",
    );
    caio.expect_error(json!({"type": "typing", "room": "jogos"}), "not_in_room");

    // ... and receives nothing of the room while it goes on
    for i in 0..5 {
        ana.say("jogos", &format!("rodada {i}"));
        beto.send(json!({"type": "typing", "room": "jogos"}));
    }
    beto.send(json!({"type": "leave", "room": "jogos"}));
    beto.recv_type("left");
    beto.join("jogos", Some("123"));
    let mut davi = Client::hello(s.addr, "Davi");
    davi.join("jogos", Some("123"));
    davi.say("jogos", "cheguei");
    ana.recv_message("jogos", "cheguei");
    beto.recv_message("jogos", "cheguei");
    let seen = caio.collect_for(Duration::from_millis(1500));
    assert!(seen.is_empty(), "Caio must see nothing of jogos: {seen:?}");
    caio.assert_alive();

    // the room's messages are intact for the members
    let h = ana.request(json!({"type": "history", "room": "jogos"}), json!(3));
    let texts: Vec<&str> = h["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "oi Beto, bora jogar?",
            "bora!",
            "rodada 0",
            "rodada 1",
            "rodada 2",
            "rodada 3",
            "rodada 4",
            "cheguei"
        ]
    );
}
