//! Attacks from outside, over real TCP: what one unauthenticated client can do to the
//! whole server with a request a browser would never send (a body on a page request
//! that claims a terabyte, a header name that is not ASCII), and what a signed-in
//! attacker can learn or keep. Each test names the finding it pins.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use common::*;
use serde_json::json;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::mpsc;

/// Sends `request` raw and returns the status of the answer (None: no answer within
/// `WAIT`), after checking that the server also closes the connection within `WAIT`
/// (a connection left open by a dead thread leaks a descriptor for good).
fn raw_status_and_closed(addr: SocketAddr, request: &[u8]) -> Option<u16> {
    let mut s = raw_connect(addr);
    s.write_all(request).unwrap();
    let (status, _, _) = read_head(&mut s, WAIT)?;
    let deadline = Instant::now() + WAIT;
    let mut sink = [0u8; 4096];
    loop {
        let now = Instant::now();
        assert!(now < deadline, "the server never closed the connection");
        s.set_read_timeout(Some(deadline - now)).unwrap();
        match s.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    Some(status)
}

fn healthy(addr: SocketAddr) {
    let (status, _, _) = http_get(addr, "/healthz");
    assert_eq!(status, 200, "the server still answers /healthz");
}

/// Finding: tiny_http, when a request it holds is dropped with its body unread, reads the
/// rest into `vec![0; Content-Length]`: a 1 TiB `Content-Length` on a page request made
/// the allocation fail and the whole process abort (one request, no account needed).
#[test]
fn a_page_request_claiming_a_huge_body_does_not_kill_the_server() {
    let server = TestServer::default_config();
    let addr = server.addr;
    for (method, path) in [("GET", "/"), ("GET", "/healthz"), ("POST", "/api/files")] {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 1099511627776\r\n\r\nabc"
        );
        let status = raw_status_and_closed(addr, request.as_bytes());
        assert!(
            matches!(status, Some(400..=499)),
            "{method} {path} with a 1 TiB body: {status:?}"
        );
        healthy(addr);
    }
    // A chunked body on a page request is refused too (no length to bound it by).
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\n\r\n10000000\r\nabc"
    );
    let status = raw_status_and_closed(addr, request.as_bytes());
    assert!(matches!(status, Some(400..=499)), "chunked: {status:?}");
    healthy(addr);
}

/// A small body on a page request still gets its page (nothing a browser does changes).
#[test]
fn a_page_request_with_a_small_body_is_still_served() {
    let server = TestServer::default_config();
    let addr = server.addr;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(raw_status_and_closed(addr, request.as_bytes()), Some(200));
}

/// Finding: a header name with a multi-byte character across its 7th byte (`X-Papoé`)
/// panicked the connection's thread while the head was rewritten; the socket then stayed
/// in the server's table, open and unanswered, for good: one descriptor leaked per
/// request, and the table counts against `--max-connections`, so a few thousand such
/// requests refuse every new client.
#[test]
fn a_non_ascii_header_name_is_answered_and_its_socket_closed() {
    let server = TestServer::default_config();
    let addr = server.addr;
    for path in ["/healthz", "/", "/api/session"] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nX-Papo\u{e9}: 1\r\n\r\n");
        let status = raw_status_and_closed(addr, request.as_bytes());
        assert!(status.is_some(), "GET {path}: no answer");
    }
    healthy(addr);
}

/// The most sessions one account keeps (`MAX_SESSIONS_PER_ACCOUNT` in the hub).
const SESSION_CAP: usize = 100;

/// Finding: every successful login made a session, with no cap, and success costs
/// nothing against the limits: one client with the account's password made ~50 sessions
/// a second (600 in 12 s on the 2-core test machine), each kept 30 days in memory and on
/// disk, and the hub scans all sessions of all accounts on every `GET /api/session`.
/// Past the cap the least recently used session ends.
#[test]
fn an_account_keeps_a_bounded_number_of_sessions() {
    let server = TestServer::default_config();
    let addr = server.addr;
    let first = register(addr, "many", "many-sessions-1");
    let mut last = String::new();
    for _ in 0..SESSION_CAP + 5 {
        last = login(addr, "many", "many-sessions-1");
    }
    let view = api_get(addr, "/api/session", Some(&last));
    assert_eq!(view.status, 200);
    let sessions = view.json()["sessions"].as_array().unwrap().len();
    assert!(sessions <= SESSION_CAP, "{sessions} sessions kept");
    assert_eq!(
        api_get(addr, "/api/session", Some(&first)).status,
        401,
        "the least recently used session ended"
    );
}

/// Finding: a failed sign-in is logged with the name as typed (folded), control
/// characters and all, and whole (16 KiB): a login named `x\n2026-… INFO … account root
/// registered (admin)` wrote a forged line into the operator's log. The name is now
/// escaped and cut short in that line.
#[test]
fn a_sign_in_name_cannot_forge_a_log_line() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_papo"))
        .args(["--port", "0", "--db", ":memory:", "--log-level", "info"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("papo runs");
    let (lines, logged) = mpsc::channel::<String>();
    // The log goes to standard output.
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    // Every line read, so a forged one is seen even when it is not the one waited for.
    let mut seen: Vec<String> = Vec::new();
    let mut next = |what: &str| -> String {
        loop {
            let line = logged
                .recv_timeout(WAIT)
                .unwrap_or_else(|_| panic!("no log line with {what:?} within {WAIT:?}"));
            seen.push(line.clone());
            if line.contains(what) {
                return line;
            }
        }
    };
    let listening = next("listening on ");
    let addr: SocketAddr = listening
        .rsplit("listening on ")
        .next()
        .unwrap()
        .trim()
        .replace("0.0.0.0", "127.0.0.1")
        .parse()
        .expect("the address papo listens on");
    let long = "w".repeat(10_000);
    for name in [
        "x\nzzz forged: account root registered (admin)",
        long.as_str(),
    ] {
        let reply = api_post(
            addr,
            "/api/login",
            json!({"name": name, "password": "wrong password"}),
            None,
        );
        assert_eq!(reply.status, 401);
    }
    next("sign-in failed");
    let second = next("sign-in failed");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !seen.iter().any(|l| l.starts_with("zzz")),
        "a forged line: {seen:?}"
    );
    assert!(second.len() < 1_000, "a 10,000-character name logged whole");
}

/// Finding (not fixed: the trade-off is the operator's and the protocol's): the
/// per-account limit counts every failed guess before any hashing, from any address, and
/// refuses the right password too. Five wrong guesses a minute (two addresses stay under
/// their own limit of 10 per 3 minutes) keep the owner from signing in by password for as
/// long as the attacker likes; sessions already open keep working.
#[test]
#[ignore = "finding: five wrong guesses a minute from anywhere lock the owner out of password sign-in"]
fn wrong_guesses_from_others_do_not_lock_the_owner_out() {
    let server = TestServer::default_config();
    let addr = server.addr;
    register(addr, "owner", "owner-password");
    for i in 0..5 {
        let guess = json!({"name": "owner", "password": format!("guess number {i}")});
        assert_eq!(api_post(addr, "/api/login", guess, None).status, 401);
    }
    let right = json!({"name": "owner", "password": "owner-password"});
    let reply = api_post(addr, "/api/login", right, None);
    assert_eq!(reply.status, 200, "the owner, with the right password");
}

/// Finding: the sign-in and registration limits counted single addresses, while every
/// other per-address limit (sockets, room passwords, room creation) counts an IPv6
/// client by its /64, which one client holds whole: rotating addresses inside it, a client
/// got unlimited guesses and registrations. Behind a trusted proxy, as here, the address
/// is the last `X-Forwarded-For` hop.
#[test]
fn the_account_limits_count_an_ipv6_client_by_its_64() {
    let mut config = test_config();
    config.trust_proxy = true;
    let server = TestServer::start(config);
    let addr = server.addr;
    let post = |path: &str, body: serde_json::Value, from: &str| {
        let headers = [
            ("Content-Type", "application/json"),
            ("X-Forwarded-For", from),
        ];
        http_request(addr, "POST", path, &headers, body.to_string().as_bytes())
    };
    let mut statuses = Vec::new();
    for i in 1..=11 {
        let guess = json!({"name": format!("nobody{i}"), "password": "a wrong guess"});
        statuses.push(post("/api/login", guess, &format!("2001:db8::{i:x}")).status);
    }
    assert_eq!(
        statuses.last(),
        Some(&429),
        "the 11th failed sign-in from one /64: {statuses:?}"
    );
    let mut statuses = Vec::new();
    for i in 1..=6 {
        let new = json!({"name": format!("fresh{i}"), "password": "a good password"});
        statuses.push(post("/api/register", new, &format!("2001:db8:0:1::{i:x}")).status);
    }
    assert_eq!(
        statuses.last(),
        Some(&429),
        "the 6th registration from one /64: {statuses:?}"
    );
}
