//! The connection edge, over real TCP: the strict `Origin` rule (a serialized origin and
//! nothing else, exactly one of them).

mod common;

use std::io::Write;

use common::*;

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
