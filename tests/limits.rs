//! Operator limits: Origin check, connection limit, message size, rate limit, ping and
//! idle timeout, slow consumers, and shutdown with clients connected.

mod common;

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use tungstenite::Message;

#[test]
fn origin_must_match_host_or_be_allowed() {
    let mut config = test_config();
    config.allow_origins = vec!["https://friend.example".into()];
    let s = TestServer::start(config);
    let port = s.addr.port();
    let local = format!("127.0.0.1:{port}");
    let cases: Vec<(String, Option<String>, u16)> = vec![
        // no Origin: not a browser, let in
        (local.clone(), None, 101),
        // same host and port, either scheme
        (local.clone(), Some(format!("http://127.0.0.1:{port}")), 101),
        (
            local.clone(),
            Some(format!("https://127.0.0.1:{port}")),
            101,
        ),
        // case is ignored
        (
            "Chat.Example.COM".into(),
            Some("http://chat.example.com".into()),
            101,
        ),
        (
            "chat.example.com".into(),
            Some("HTTPS://CHAT.EXAMPLE.COM".into()),
            101,
        ),
        // default ports dropped from both
        (
            "chat.example.com:80".into(),
            Some("http://chat.example.com".into()),
            101,
        ),
        (
            "chat.example.com".into(),
            Some("http://chat.example.com:80".into()),
            101,
        ),
        (
            "chat.example.com:443".into(),
            Some("https://chat.example.com".into()),
            101,
        ),
        (
            "chat.example.com".into(),
            Some("https://chat.example.com:443".into()),
            101,
        ),
        // an allowed origin
        (local.clone(), Some("https://friend.example".into()), 101),
        // mismatches
        (local.clone(), Some("http://evil.example".into()), 403),
        (
            local.clone(),
            Some(format!("http://127.0.0.1:{}", port.wrapping_add(1))),
            403,
        ),
        (local.clone(), Some("http://127.0.0.1".into()), 403),
        (local.clone(), Some(format!("http://localhost:{port}")), 403),
        (local.clone(), Some("null".into()), 403),
        (local.clone(), Some("https://other.example".into()), 403),
        (
            "chat.example.com:8080".into(),
            Some("http://chat.example.com".into()),
            403,
        ),
        (
            "chat.example.com".into(),
            Some("http://chat.example.com:8080".into()),
            403,
        ),
        (
            "chat.example.com".into(),
            Some("http://chat.example.com.evil.example".into()),
            403,
        ),
        (
            "chat.example.com".into(),
            Some("http://evil.example/chat.example.com".into()),
            403,
        ),
    ];
    let mut failures = Vec::new();
    for (host, origin, want) in &cases {
        let (status, _) = upgrade(s.addr, host, origin.as_deref());
        if status != *want {
            failures.push(format!(
                "Host {host:?} Origin {origin:?}: want {want}, got {status}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // an accepted upgrade is a working connection
    let (status, stream) = upgrade(s.addr, &local, Some(&format!("http://127.0.0.1:{port}")));
    assert_eq!(status, 101);
    drop(stream);
}

#[test]
fn past_max_connections_an_upgrade_gets_503() {
    let mut config = test_config();
    config.max_connections = 3;
    let s = TestServer::start(config);
    let mut clients: Vec<Client> = (0..3)
        .map(|i| Client::hello(s.addr, &format!("c{i}")))
        .collect();
    let host = s.addr.to_string();
    for _ in 0..3 {
        let (status, _) = upgrade(s.addr, &host, None);
        assert_eq!(status, 503, "at the connection limit an upgrade gets 503");
    }
    for c in clients.iter_mut() {
        c.assert_alive();
    }
    // a slot frees when a client leaves
    drop(clients.pop());
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, _) = upgrade(s.addr, &host, None);
        if status == 101 {
            break;
        }
        assert_eq!(status, 503);
        assert!(Instant::now() < deadline, "slot never freed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_message_over_max_message_bytes_closes_with_1009() {
    let mut config = test_config();
    config.max_message_bytes = 2000;
    let s = TestServer::start(config);
    let mut c = Client::member(s.addr, "Ana", "r");
    let frame = |len: usize| {
        let base = json!({"type": "text", "room": "r", "text": "x", "ref": 1}).to_string();
        let pad = " ".repeat(len - base.len());
        let f = base.replace("\"x\"", &format!("\"x{pad}\""));
        assert_eq!(f.len(), len);
        f
    };
    c.send_text(&frame(2000));
    let ack = c.recv_ref(&json!(1));
    assert_eq!(ack["type"], "ack", "exactly at the limit is fine: {ack}");
    let _ = c.try_send(Message::text(frame(2001)));
    assert_eq!(c.expect_closed(WAIT), Some(1009));
}

#[test]
fn rate_limit_drops_excess_frames_with_rate_limited_and_recovers() {
    let mut config = test_config();
    config.rate_limit = 1;
    config.rate_burst = 5;
    let s = TestServer::start(config);
    let mut c = Client::connect(s.addr);
    c.name = "fast".into();
    // hello counts too: 5 bad hellos use the burst, the 6th frame is dropped
    for i in 0..5 {
        c.send(json!({"type": "hello", "name": "", "ref": i}));
    }
    c.send(json!({"type": "hello", "name": "Ana", "ref": 5}));
    // replies are matched by ref: PROTOCOL.md does not order replies across commands
    let mut replies: Vec<Value> = (0..6).map(|_| c.recv()).collect();
    replies.sort_by_key(|r| r["ref"].as_i64());
    for (i, e) in replies.iter().take(5).enumerate() {
        assert_eq!(
            (e["code"].as_str(), &e["ref"]),
            (Some("invalid_name"), &json!(i))
        );
    }
    let e = &replies[5];
    assert_eq!(e["type"], "error");
    assert_eq!(e["code"], "rate_limited", "{e}");
    assert_eq!(e["ref"], 5, "rate_limited carries the valid ref");
    // invalid frames count and are rate_limited rather than bad_request
    c.send_text("not json");
    let e = c.recv();
    assert_eq!(e["code"], "rate_limited", "{e}");
    assert!(e.get("ref").is_none());
    c.send_text(r#"{"type":"list","ref":1.0}"#);
    let e = c.recv();
    assert_eq!(e["code"], "rate_limited", "{e}");
    assert!(e.get("ref").is_none(), "an invalid ref is not echoed: {e}");
    c.send_text(r#"{"type":"list","ref":"s"}"#);
    let e = c.recv();
    assert_eq!(
        (e["code"].as_str(), &e["ref"]),
        (Some("rate_limited"), &json!("s"))
    );
    c.assert_silent(Duration::from_millis(100));

    // after waiting, tokens come back (1 per second)
    std::thread::sleep(Duration::from_millis(2200));
    let w = c.request(json!({"type": "hello", "name": "Ana"}), json!("h"));
    assert_eq!(
        w["type"], "welcome",
        "the dropped hello did not identify; this one does"
    );
    c.name = "Ana".into();
    let r = c.request(json!({"type": "list"}), json!("l"));
    assert_eq!(r["type"], "rooms");
    let e = c.request(json!({"type": "list"}), json!("l2"));
    assert_eq!(e["code"], "rate_limited");
}

#[test]
fn rate_limit_burst_then_steady_rate() {
    let mut config = test_config();
    config.rate_limit = 1;
    config.rate_burst = 10;
    let s = TestServer::start(config);
    let mut c = Client::hello(s.addr, "Ana"); // uses 1 token
    for i in 0..15 {
        c.send(json!({"type": "list", "ref": i}));
    }
    let mut replies: Vec<Value> = (0..15).map(|_| c.recv()).collect();
    replies.sort_by_key(|r| r["ref"].as_i64());
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(r["ref"], i, "one reply per frame, each with its ref: {r}");
    }
    let ok: Vec<usize> = (0..15).filter(|&i| replies[i]["type"] == "rooms").collect();
    assert!(
        ok.len() == 9 || ok.len() == 10,
        "burst of 10 minus hello: {ok:?}"
    );
    assert_eq!(ok, (0..ok.len()).collect::<Vec<_>>(), "the first ones pass");
    for r in &replies[ok.len()..] {
        assert_eq!(r["code"], "rate_limited", "{r}");
    }
    // the connection is still usable
    std::thread::sleep(Duration::from_millis(1100));
    c.assert_alive();
}

#[test]
fn ping_keeps_a_responsive_client_and_idle_timeout_closes_a_silent_one() {
    let mut config = test_config();
    config.ping_interval = Duration::from_millis(200);
    config.idle_timeout = Duration::from_millis(1000);
    let s = TestServer::start(config);
    // tungstenite answers pings while we read
    let mut good = Client::hello(s.addr, "Ana");
    // a raw client that never answers
    let mut silent = RawWs::connect(s.addr);
    let t = Instant::now();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut pings = 0;
        let end = loop {
            match silent.read_frame(WAIT) {
                RawEvent::Frame { opcode: 0x9, .. } => pings += 1,
                RawEvent::Frame { opcode: 0x8, .. } => {
                    // read on to the end of the connection
                    let mut buf = [0u8; 64];
                    let _ = silent.stream.read(&mut buf);
                    break "close";
                }
                RawEvent::Frame { .. } => {}
                RawEvent::Ended => break "ended",
                RawEvent::Timeout => break "timeout",
            }
        };
        let _ = tx.send((end, pings, t.elapsed()));
    });
    // a raw client that never pongs but keeps sending frames is not idle
    let mut chatty = RawWs::connect(s.addr);
    let chatty_thread = std::thread::spawn(move || {
        for i in 0..10 {
            chatty.send_json(&json!({"type": "list", "ref": i}));
            loop {
                match chatty.read_frame(WAIT) {
                    RawEvent::Frame { opcode: 0x9, .. } => {} // never answered
                    RawEvent::Frame {
                        opcode: 0x1,
                        payload,
                    } => {
                        let v: Value = serde_json::from_slice(&payload).unwrap();
                        assert_eq!(v["ref"], i, "{v}");
                        break;
                    }
                    other => panic!("chatty client: {other:?} at frame {i}"),
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    let frames = good.collect_for(Duration::from_millis(2500));
    assert!(frames.is_empty(), "{frames:?}");
    assert!(
        good.pings >= 3,
        "expected pings every 200 ms, got {}",
        good.pings
    );
    good.assert_alive();
    chatty_thread
        .join()
        .expect("a client sending frames every 250 ms stays connected");
    let (end, pings, took) = rx.recv_timeout(WAIT).expect("silent client thread");
    assert_ne!(end, "timeout", "a client that never answers must be closed");
    assert!(pings >= 1, "the silent client was pinged");
    assert!(
        took >= Duration::from_millis(800),
        "closed before the idle timeout: {took:?}"
    );
    assert!(
        took < Duration::from_millis(5000),
        "closed too late: {took:?}"
    );
}

#[test]
fn a_slow_consumer_is_dropped_without_slowing_the_others() {
    let mut config = test_config();
    config.queue_frames = 8;
    let s = TestServer::start(config);
    let mut a = Client::member(s.addr, "Ana", "flood");
    let mut b = Client::member(s.addr, "Beto", "flood");
    let mut slow = Client::member(s.addr, "Lento", "flood");
    a.recv_until(|v| v["type"] == "presence" && v["member_count"] == 3);
    b.recv_until(|v| v["type"] == "presence" && v["member_count"] == 3);
    // Lento stops reading from here on

    let start = Instant::now();
    // Beto's progress: Ana stays at most WINDOW (< queue_frames) messages ahead, so a Beto thread
    // starved by a loaded machine is not itself (rightly) dropped as a slow consumer
    const WINDOW: usize = 4;
    let beto_count = Arc::new(AtomicUsize::new(0));
    let beto_progress = beto_count.clone();
    let reader = std::thread::spawn(move || {
        let mut got: Vec<(u64, Duration)> = Vec::new();
        let mut slow_left = false;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match b.next_event(deadline) {
                Event::Frame(v) if v["type"] == "message" => {
                    if v["text"] == "END" {
                        break;
                    }
                    got.push((v["id"].as_u64().unwrap(), start.elapsed()));
                    beto_progress.store(got.len(), Ordering::Release);
                }
                Event::Frame(v) if v["type"] == "presence" => {
                    assert_eq!(v["left"], json!(["Lento"]), "{v}");
                    assert_eq!(v["member_count"], 2);
                    slow_left = true;
                }
                Event::Frame(v) => panic!("Beto: unexpected {v}"),
                other => panic!("Beto: {other:?} after {} messages", got.len()),
            }
        }
        (got, slow_left)
    });

    let body = "😀".repeat(4000);
    let mut sent: Vec<(u64, Duration)> = Vec::new();
    let mut removed_after = None;
    let deadline = Instant::now() + Duration::from_secs(40);
    while removed_after.is_none_or(|n| sent.len() < n + 20) {
        assert!(
            Instant::now() < deadline,
            "slow consumer not removed after {} messages",
            sent.len()
        );
        assert!(sent.len() < 5000, "slow consumer never removed");
        while sent.len() > beto_count.load(Ordering::Acquire) + WINDOW {
            assert!(Instant::now() < deadline, "Beto stopped receiving");
            std::thread::sleep(Duration::from_millis(1));
        }
        a.say("flood", &body);
        loop {
            let v = a.recv();
            if v["type"] == "presence" {
                assert_eq!(v["left"], json!(["Lento"]), "{v}");
                assert_eq!(v["joined"], json!([]));
                assert_eq!(v["member_count"], 2);
                removed_after = Some(sent.len());
                continue;
            }
            assert_eq!(v["type"], "message", "{v}");
            sent.push((v["id"].as_u64().unwrap(), start.elapsed()));
            break;
        }
    }
    a.say("flood", "END");
    let (got, slow_left) = reader.join().expect("Beto kept up");
    assert!(slow_left, "Beto saw Lento leave");
    let sent_ids: Vec<u64> = sent.iter().map(|m| m.0).collect();
    let got_ids: Vec<u64> = got.iter().map(|m| m.0).collect();
    assert_eq!(got_ids, sent_ids, "Beto received every message, in order");
    let worst = sent
        .iter()
        .zip(&got)
        .map(|(s, g)| g.1.saturating_sub(s.1))
        .max()
        .unwrap();
    assert!(
        worst < Duration::from_secs(3),
        "Beto fell behind by {worst:?} while Lento was stuck"
    );
    eprintln!(
        "slow consumer removed after {:?} messages; Beto's worst lag {worst:?}",
        removed_after
    );

    // Lento's socket holds what was written before; then 1008 or the end
    // (a connection that just ends, without a close frame, is allowed too)
    if let Some(code) = slow.expect_closed(Duration::from_secs(20)) {
        assert_eq!(code, 1008, "slow consumer close code");
    }
}

#[test]
fn shutdown_returns_promptly_and_ends_every_connection() {
    let mut s = TestServer::default_config();
    let addr = s.addr;
    let mut clients: Vec<Client> = (0..3)
        .map(|i| Client::member(addr, &format!("c{i}"), "sala"))
        .collect();
    let fresh = Client::connect(addr); // upgraded, never said hello
    let mut half = raw_connect(addr);
    std::io::Write::write_all(&mut half, b"GET / HTTP/1.1\r\nHo").unwrap();
    let mut idle = raw_connect(addr);
    clients[0].say("sala", "antes");
    for c in clients.iter_mut() {
        c.recv_message("sala", "antes");
    }
    let t = Instant::now();
    s.shutdown();
    let took = t.elapsed();
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    for mut c in clients.into_iter().chain([fresh]) {
        c.expect_closed(WAIT);
    }
    for sock in [&mut half, &mut idle] {
        let mut buf = [0u8; 256];
        sock.set_read_timeout(Some(WAIT)).unwrap();
        let t = Instant::now();
        loop {
            match sock.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    assert!(
                        !matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ),
                        "raw connection still open after shutdown"
                    );
                    break;
                }
            }
        }
        assert!(t.elapsed() < WAIT);
    }
    // no longer accepting
    if let Ok(mut late) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        late.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = std::io::Write::write_all(&mut late, b"GET /healthz HTTP/1.1\r\n\r\n");
        let mut buf = [0u8; 64];
        match late.read(&mut buf) {
            Ok(0) | Err(_) => {}
            Ok(n) => panic!(
                "served after shutdown: {:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
        }
    }
}
