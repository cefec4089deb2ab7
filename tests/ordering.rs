//! Ordering and isolation guarantees: rooms are isolated, every member sees a room's
//! messages in the same id order with no loss or duplicates under concurrent senders,
//! and pending presence is flushed before any later event of the room.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

#[test]
fn ten_rooms_of_five_are_isolated() {
    let s = TestServer::default_config();
    let mut rooms: Vec<Vec<Client>> = Vec::new();
    for r in 0..10 {
        let mut members = Vec::new();
        for m in 0..5 {
            members.push(Client::member(
                s.addr,
                &format!("r{r}m{m}"),
                &format!("room{r}"),
            ));
        }
        rooms.push(members);
    }
    for (r, members) in rooms.iter_mut().enumerate() {
        for (m, c) in members.iter_mut().enumerate() {
            for k in 0..3 {
                c.say(&format!("room{r}"), &format!("room{r} m{m} #{k}"));
            }
            c.send(json!({"type": "typing", "room": format!("room{r}")}));
        }
    }
    for (r, members) in rooms.iter_mut().enumerate() {
        let room = format!("room{r}");
        let mut orders: Vec<Vec<u64>> = Vec::new();
        for c in members.iter_mut() {
            let mut ids = Vec::new();
            let deadline = Instant::now() + WAIT;
            let name = c.name.clone();
            let check = |v: &Value| {
                if let Some(x) = v.get("room") {
                    if v["type"] != "room_added" {
                        assert_eq!(x, room.as_str(), "{name}: frame of another room: {v}");
                    }
                }
                if v["type"] == "message" {
                    assert!(v["text"].as_str().unwrap().starts_with(&format!("{room} ")));
                }
            };
            while ids.len() < 15 {
                match c.next_event(deadline) {
                    Event::Frame(v) => {
                        check(&v);
                        if v["type"] == "message" {
                            ids.push(v["id"].as_u64().unwrap());
                        }
                    }
                    other => panic!("{}: {other:?} after {} messages", c.name, ids.len()),
                }
            }
            for v in c.collect_for(Duration::from_millis(100)) {
                check(&v);
                assert_ne!(v["type"], "message", "{}: extra message {v}", c.name);
            }
            orders.push(ids);
        }
        for o in &orders[1..] {
            assert_eq!(o, &orders[0], "every member of {room} sees the same order");
        }
        let unique: HashSet<_> = orders[0].iter().collect();
        assert_eq!(unique.len(), 15);
    }
}

/// A message as one member received it: (id, from, text).
type Received = (u64, String, String);

#[test]
fn twenty_concurrent_senders_same_order_no_loss_no_duplicates() {
    const SENDERS: usize = 20;
    const EACH: usize = 50;
    let mut config = test_config();
    config.queue_frames = 8192;
    let s = TestServer::start(config);
    let mut clients = Vec::new();
    for i in 0..SENDERS {
        clients.push(Client::member(s.addr, &format!("s{i:02}"), "arena"));
    }
    let barrier = Arc::new(Barrier::new(SENDERS));
    let handles: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                for k in 0..EACH {
                    c.say("arena", &format!("s{i:02}-{k:03}"));
                }
                let mut got: Vec<(u64, String, String)> = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(30);
                while got.len() < SENDERS * EACH {
                    match c.next_event(deadline) {
                        Event::Frame(v) if v["type"] == "message" => got.push((
                            v["id"].as_u64().unwrap(),
                            v["from"].as_str().unwrap().to_string(),
                            v["text"].as_str().unwrap().to_string(),
                        )),
                        // presence of the joins may still be arriving; nobody leaves
                        Event::Frame(v) if v["type"] == "presence" => {
                            assert_eq!(v["left"], json!([]), "{}: {v}", c.name)
                        }
                        Event::Frame(v) => panic!("{}: unexpected {v}", c.name),
                        other => panic!("{}: {other:?} after {} messages", c.name, got.len()),
                    }
                }
                c.assert_silent(Duration::from_millis(200));
                // Handed back, not dropped: a member that left now would show up as a
                // presence in the others' silence checks.
                (got, c)
            })
        })
        .collect();
    let finished: Vec<(Vec<Received>, Client)> =
        handles.into_iter().map(|h| h.join().unwrap()).collect();
    let results: Vec<&Vec<Received>> = finished.iter().map(|(got, _)| got).collect();
    let first = results[0];
    // ids strictly increase: no duplicates, delivered in id order
    assert!(first.windows(2).all(|w| w[0].0 < w[1].0), "not in id order");
    // no loss: every text exactly once
    let texts: HashSet<&str> = first.iter().map(|m| m.2.as_str()).collect();
    assert_eq!(texts.len(), SENDERS * EACH);
    for i in 0..SENDERS {
        for k in 0..EACH {
            assert!(texts.contains(format!("s{i:02}-{k:03}").as_str()));
        }
        // each sender's messages keep their sending order
        let mine: Vec<&str> = first
            .iter()
            .filter(|m| m.1 == format!("s{i:02}"))
            .map(|m| m.2.as_str())
            .collect();
        let mut sorted = mine.clone();
        sorted.sort();
        assert_eq!(mine, sorted, "s{i:02}'s messages out of order");
    }
    for (i, r) in results.iter().enumerate() {
        assert_eq!(*r, first, "member {i} saw a different sequence");
    }
}

#[test]
fn pending_presence_is_sent_before_later_events_of_the_room() {
    let mut config = test_config();
    config.presence_window = Duration::from_millis(1000);
    let s = TestServer::start(config);
    let mut a = Client::hello(s.addr, "Ana");
    a.create("sala", None);
    let j = a.request(json!({"type": "join", "room": "sala"}), json!(1));
    assert_eq!(j["type"], "joined");
    // a message right after the join flushes the pending presence first
    a.say("sala", "primeira");
    let p = a.expect_type("presence");
    assert_eq!(p["joined"], json!(["Ana"]));
    assert_eq!(a.expect_type("message")["text"], "primeira");

    let mut b = Client::hello(s.addr, "Beto");
    let t = Instant::now();
    let j = b.request(json!({"type": "join", "room": "sala"}), json!(2));
    assert_eq!(j["members"], json!(["Ana", "Beto"]));
    // replies such as `members` do not flush pending presence
    let w = a.request(json!({"type": "who", "room": "sala"}), json!("w"));
    assert_eq!(w["members"], json!(["Ana", "Beto"]));
    b.say("sala", "oi");
    let p = a.expect_type("presence");
    assert_eq!(p["joined"], json!(["Beto"]), "{p}");
    assert_eq!(p["member_count"], 2);
    let m = a.expect_type("message");
    assert_eq!(m["text"], "oi");
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "the message must not wait for the presence window"
    );
    assert_eq!(b.expect_type("presence")["joined"], json!(["Beto"]));
    assert_eq!(b.expect_type("message"), m);

    // typing flushes too
    let mut c = Client::hello(s.addr, "Caio");
    let j = c.request(json!({"type": "join", "room": "sala"}), json!(3));
    assert_eq!(j["type"], "joined");
    c.send(json!({"type": "typing", "room": "sala"}));
    assert_eq!(a.expect_type("presence")["joined"], json!(["Caio"]));
    assert_eq!(
        a.expect_type("typing"),
        json!({"type": "typing", "room": "sala", "user": "Caio"})
    );

    // a leave: the remaining members see it before the next message; the leaver sees
    // neither (its `left` does not flush the presence)
    let l = b.request(json!({"type": "leave", "room": "sala"}), json!(4));
    assert_eq!(l["type"], "left");
    a.say("sala", "tchau Beto");
    let p = a.expect_type("presence");
    assert_eq!(p["left"], json!(["Beto"]), "{p}");
    assert_eq!(p["joined"], json!([]), "{p}");
    assert_eq!(p["member_count"], 2);
    assert_eq!(a.expect_type("message")["text"], "tchau Beto");
    b.assert_silent(Duration::from_millis(1300));
}
