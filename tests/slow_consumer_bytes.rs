//! A connection's queue is bounded in bytes, not only in frames (PROTOCOL.md 1.1, "Large
//! servers"): a client that never reads but keeps asking for big replies (`joined` of a room
//! whose remembered messages are long, a full `history`) is closed with 1008 `slow consumer`
//! after a bounded number of commands, while the room's other members miss nothing.

mod common;

use std::time::Instant;

use common::*;
use serde_json::{json, Value};

/// The longest text PROTOCOL.md allows, in four-byte characters: 16,000 bytes a message.
fn long_text() -> String {
    "😀".repeat(4000)
}

/// Commands a never-reading client may send before it is dropped. Each reply here is
/// 0.8 MB (`joined`) or 1.6 MB (`history`): what the socket buffers take, one writer batch,
/// and 4 MiB of queue come to a few dozen. A bound in frames alone (1,024) let the same
/// client earn over a thousand replies, about 800 MB of them.
const MAX_COMMANDS: usize = 150;

/// A server with room "big" holding `messages` texts of 4,000 four-byte characters, sent by
/// Ana; Ana and Beto are members and have read everything so far.
fn big_room(messages: usize) -> (TestServer, Client, Client) {
    let s = TestServer::start(test_config());
    let mut ana = Client::member(s.addr, "Ana", "big");
    let text = long_text();
    for _ in 0..messages {
        ana.say("big", &text);
        ana.recv_message("big", &text);
    }
    let mut beto = Client::hello(s.addr, "Beto");
    let joined = beto.join("big", None);
    assert_eq!(
        joined["history"].as_array().unwrap().len(),
        messages.min(50)
    );
    ana.recv_until(|v| v["type"] == "presence" && v["joined"] == json!(["Beto"]));
    (s, ana, beto)
}

/// Mallory joins "big", stops reading and sends `command` again and again; after each one
/// Ana says something that Beto must receive at once. Returns how many commands Mallory
/// sent before Beto saw her leave (the hub drops a slow consumer from its rooms).
fn flood_until_dropped(s: &TestServer, ana: &mut Client, beto: &mut Client, command: Value) {
    let mut mallory = Client::hello(s.addr, "Mallory");
    mallory.join("big", None);
    beto.recv_until(|v| v["type"] == "presence" && v["joined"] == json!(["Mallory"]));
    ana.recv_until(|v| v["type"] == "presence" && v["joined"] == json!(["Mallory"]));

    let mut dropped_after = None;
    let mut sent = 0;
    // Ten more rounds after the drop show Beto unaffected by it.
    while dropped_after.is_none_or(|n| sent < n + 10) {
        assert!(
            sent < MAX_COMMANDS,
            "Mallory not dropped after {sent} commands"
        );
        // Not once she is dropped: bytes arriving at a socket the server has closed make
        // the kernel answer with a reset, which would throw away the close she is owed.
        if dropped_after.is_none() {
            mallory.send(command.clone());
        }
        sent += 1;
        let text = format!("round {sent}");
        ana.say("big", &text);
        ana.recv_message("big", &text);
        // Every message reaches Beto, in order, with only Mallory's leave in between. Then
        // a small `history` of his own: Mallory's command, sent a round trip earlier, is
        // ahead of it at the hub and the store answers in order, so her reply has been
        // queued or refused before the next round (the store is slow in a debug build).
        let sync = json!({"type": "history", "room": "big", "limit": 1, "ref": sent});
        let mut synced = false;
        let deadline = Instant::now() + WAIT;
        while !synced {
            match beto.next_event(deadline) {
                Event::Frame(v) if v["type"] == "message" => {
                    assert_eq!(v["text"], text.as_str(), "Beto missed a message");
                    beto.send(sync.clone());
                }
                Event::Frame(v) if v["type"] == "history" => {
                    assert_eq!(v["ref"], sent, "{v}");
                    synced = true;
                }
                Event::Frame(v) if v["type"] == "presence" => {
                    assert_eq!(v["left"], json!(["Mallory"]), "{v}");
                    assert_eq!(v["member_count"], 2);
                    assert!(dropped_after.is_none(), "Mallory left twice");
                    dropped_after = Some(sent);
                }
                other => panic!("Beto: {other:?} in round {sent}"),
            }
        }
    }
    eprintln!("Mallory dropped after {} commands", dropped_after.unwrap());

    // Once Mallory reads, she gets what the socket held, then 1008 `slow consumer`.
    let deadline = Instant::now() + WAIT;
    loop {
        match mallory.next_event(deadline) {
            Event::Frame(_) => {}
            Event::Close(code) => {
                assert_eq!(code, Some(1008), "slow consumer close code");
                break;
            }
            other => panic!("Mallory: {other:?} instead of the 1008 close"),
        }
    }
}

#[test]
fn a_client_repeating_join_of_a_big_room_without_reading_is_closed() {
    let (s, mut ana, mut beto) = big_room(50);
    flood_until_dropped(
        &s,
        &mut ana,
        &mut beto,
        json!({"type": "join", "room": "big"}),
    );
}

#[test]
fn a_client_repeating_a_full_history_without_reading_is_closed() {
    let (s, mut ana, mut beto) = big_room(100);
    let history = json!({"type": "history", "room": "big", "limit": 100});
    // The reply is as big as the test means: 100 messages of 16,000 bytes.
    let reply = beto.request(history.clone(), json!("h"));
    assert_eq!(reply["messages"].as_array().unwrap().len(), 100);
    flood_until_dropped(&s, &mut ana, &mut beto, history);
}

#[test]
fn the_largest_reply_fits_the_default_byte_bound() {
    // A full history whose every character JSON escapes to six bytes (`\u0001`): the
    // largest single reply papo sends must not make a reading client a slow consumer.
    let s = TestServer::start(test_config());
    let mut ana = Client::member(s.addr, "Ana", "big");
    let text = format!("x{}x", "\u{1}".repeat(3998));
    for i in 0..100 {
        let (_, msg) = ana.text_ref("big", &text, json!(i));
        assert_eq!(msg["text"], text.as_str());
    }
    for _ in 0..3 {
        let reply = ana.request(
            json!({"type": "history", "room": "big", "limit": 100}),
            json!("h"),
        );
        assert_eq!(reply["messages"].as_array().unwrap().len(), 100);
    }
    ana.assert_alive();
}
