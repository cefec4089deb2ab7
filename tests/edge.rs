//! The connection edge, over real TCP: that every HTTP answer followed by a close says
//! `Connection: close`, and the strict `Origin` rule (a serialized origin and nothing else,
//! exactly one of them).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use common::*;

// -------------------------------------------------------------------------------------
// Helpers for every section
// -------------------------------------------------------------------------------------

/// Sends `request` (if any) and reads the whole answer until the server closes; panics if
/// it does not close within `WAIT`. Returns (status, head, body).
fn exchange(mut s: TcpStream, request: &[u8]) -> (u16, String, Vec<u8>) {
    if !request.is_empty() {
        s.write_all(request).unwrap();
    }
    let (status, head, mut body) = read_head(&mut s, WAIT).expect("an HTTP answer");
    let deadline = Instant::now() + WAIT;
    let mut chunk = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the server kept the connection open: {head}"
        );
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            // The answer was read; a reset after it still closes the connection.
            Err(_) => break,
        }
    }
    (status, head, body)
}

fn get(path: &str, addr: SocketAddr) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes()
}

// -------------------------------------------------------------------------------------
// Connection: close
// -------------------------------------------------------------------------------------

/// The answer to `request`, which must say `Connection: close` and then close.
fn assert_closes_and_says_so(addr: SocketAddr, what: &str, request: &[u8]) -> u16 {
    let (status, head, _) = exchange(raw_connect(addr), request);
    assert_eq!(
        header(&head, "connection").map(|v| v.to_ascii_lowercase()),
        Some("close".to_string()),
        "{what}: {head}"
    );
    status
}

#[test]
fn every_http_answer_followed_by_a_close_says_connection_close() {
    let s = TestServer::default_config();
    let addr = s.addr;
    for (path, expected) in [("/", 200), ("/healthz", 200), ("/no/such/thing", 404)] {
        // Whether or not the request asked to close, the connection is closed after it.
        for connection in ["", "Connection: close\r\n", "Connection: keep-alive\r\n"] {
            let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{connection}\r\n");
            let what = format!("GET {path} with {connection:?}");
            let status = assert_closes_and_says_so(addr, &what, request.as_bytes());
            assert_eq!(status, expected, "{what}");
        }
    }
    let head_request = format!("HEAD / HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    assert_eq!(
        assert_closes_and_says_so(addr, "HEAD /", head_request.as_bytes()),
        200
    );
    let post = format!("POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(
        assert_closes_and_says_so(addr, "POST /", post.as_bytes()),
        405
    );
}

#[test]
fn the_listeners_own_refusals_say_connection_close() {
    let mut config = test_config();
    config.max_connections = 1;
    let s = TestServer::start(config);
    let addr = s.addr;
    let upgrade = |version: &str, origin: &str| {
        format!(
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: {version}\r\n\
             {origin}\r\n"
        )
    };
    let cases: [(&str, Vec<u8>, u16); 5] = [
        ("a malformed head", b"NOT HTTP\r\n\r\n".to_vec(), 400),
        // Exactly one byte over the cap and no end: all of it is read before the answer.
        (
            "an oversized head",
            format!("GET / HTTP/1.1\r\nX-Pad: {}", "a".repeat(16 * 1024))
                .into_bytes()
                .into_iter()
                .take(16 * 1024 + 1)
                .collect(),
            431,
        ),
        (
            "a foreign origin",
            upgrade("13", "Origin: http://evil.example\r\n").into_bytes(),
            403,
        ),
        ("an old version", upgrade("8", "").into_bytes(), 426),
        ("/ws without upgrade", get("/ws", addr), 400),
    ];
    for (what, request, expected) in cases {
        assert_eq!(
            assert_closes_and_says_so(addr, what, &request),
            expected,
            "{what}"
        );
    }
    // At the connection limit.
    let _only = Client::hello(addr, "unica");
    assert_eq!(
        assert_closes_and_says_so(addr, "at capacity", upgrade("13", "").as_bytes()),
        503
    );
}

// -------------------------------------------------------------------------------------
// Origin
// -------------------------------------------------------------------------------------

#[test]
fn an_origin_is_a_serialized_origin_and_nothing_more() {
    let s = TestServer::default_config();
    let addr = s.addr;
    let host = addr.to_string();
    let own = format!("http://{addr}");
    assert_eq!(
        upgrade(addr, &host, Some(&own)).0,
        101,
        "the server's own origin"
    );
    for origin in [
        format!("{own}/"),
        format!("{own}/chat"),
        format!("{own}?x=1"),
        format!("{own}#top"),
        format!("http://user@{addr}"),
        format!("http://user:pw@{addr}"),
        format!("{own} {own}"),
        format!("http://{}:", addr.ip()),
    ] {
        assert_eq!(
            upgrade(addr, &host, Some(&origin)).0,
            403,
            "Origin: {origin}"
        );
    }
}

#[test]
fn a_request_with_two_origins_is_refused() {
    let s = TestServer::default_config();
    let addr = s.addr;
    let own = format!("http://{addr}");
    for (first, second) in [
        (own.as_str(), own.as_str()),
        (own.as_str(), "http://evil.example"),
        ("http://evil.example", own.as_str()),
    ] {
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Origin: {first}\r\norigin: {second}\r\n\r\n"
        );
        let mut s = raw_connect(addr);
        s.write_all(request.as_bytes()).unwrap();
        let (status, head, _) = read_head(&mut s, WAIT).expect("an answer to the upgrade");
        assert_eq!(status, 403, "Origin {first} then {second}: {head}");
    }
}
