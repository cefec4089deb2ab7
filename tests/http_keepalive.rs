//! The HTTP side over real TCP, request after request on one connection: keep-alive,
//! `Connection: close`, HTTP/1.0, the idle timeout, pipelining, and the rules the one
//! response writer applies (gzip and `Vary`, ETag and 304, HEAD, byte ranges), the page's
//! fingerprinted assets (a second visit downloads under 2 KB), and a slow client's share.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;

/// One response as it came off the wire.
struct Answer {
    status: u16,
    /// The head, status line included, without the blank line.
    head: String,
    body: Vec<u8>,
    /// Every byte of it on the wire (head, blank line, body).
    wire_bytes: usize,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        header(&self.head, name)
    }
}

/// A client connection that reads answers one by one, keeping any bytes past one answer
/// for the next.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        Conn {
            stream: raw_connect(addr),
            buf: Vec::new(),
        }
    }

    fn send(&mut self, request: &str) {
        self.stream.write_all(request.as_bytes()).unwrap();
    }

    fn get(&mut self, path: &str, headers: &str) -> Answer {
        self.send(&format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n"));
        self.answer(true).expect("an answer")
    }

    /// Reads more, within `WAIT`; false if the connection ended.
    fn fill(&mut self, deadline: Instant) -> bool {
        let mut chunk = [0u8; 16384];
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no answer in time");
        self.stream.set_read_timeout(Some(left)).unwrap();
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next answer; `with_body` false for answers to HEAD. None if the connection ended.
    fn answer(&mut self, with_body: bool) -> Option<Answer> {
        let deadline = Instant::now() + WAIT;
        let end = loop {
            if let Some(at) = find(&self.buf, b"\r\n\r\n") {
                break at;
            }
            if !self.fill(deadline) {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        let length: usize = header(&head, "content-length").map_or(0, |v| v.parse().unwrap());
        let length = if with_body && status != 304 {
            length
        } else {
            0
        };
        while self.buf.len() < end + 4 + length {
            assert!(self.fill(deadline), "the body was cut short");
        }
        let body = self.buf[end + 4..end + 4 + length].to_vec();
        self.buf.drain(..end + 4 + length);
        Some(Answer {
            status,
            head,
            body,
            wire_bytes: end + 4 + length,
        })
    }

    /// Whether the server closes the connection within `WAIT` without sending more.
    fn closed_by_server(&mut self) -> bool {
        let mut chunk = [0u8; 1024];
        self.stream.set_read_timeout(Some(WAIT)).unwrap();
        match self.stream.read(&mut chunk) {
            Ok(0) => self.buf.is_empty(),
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
            Ok(_) => false,
        }
    }
}

#[test]
fn several_requests_share_one_connection() {
    let s = TestServer::default_config();
    let mut conn = Conn::open(s.addr);
    for path in ["/healthz", "/", "/app.js", "/healthz", "/no/such/thing"] {
        let answer = conn.get(path, "");
        let expected = if path == "/no/such/thing" { 404 } else { 200 };
        assert_eq!(answer.status, expected, "{path}: {}", answer.head);
        assert_eq!(answer.header("connection"), None, "{}", answer.head);
    }
    assert_eq!(conn.get("/healthz", "").body, b"ok");
}

#[test]
fn a_request_that_asks_to_close_is_told_so_and_closed() {
    let s = TestServer::default_config();
    let mut conn = Conn::open(s.addr);
    assert_eq!(conn.get("/healthz", "").status, 200);
    let answer = conn.get("/healthz", "Connection: close\r\n");
    assert_eq!((answer.status, answer.body.as_slice()), (200, &b"ok"[..]));
    assert_eq!(answer.header("connection").as_deref(), Some("close"));
    assert!(conn.closed_by_server());
}

#[test]
fn http_1_0_closes_unless_it_asks_for_keep_alive() {
    let s = TestServer::default_config();
    let mut conn = Conn::open(s.addr);
    conn.send("GET /healthz HTTP/1.0\r\n\r\n");
    let answer = conn.answer(true).unwrap();
    assert!(answer.head.starts_with("HTTP/1.0 200"), "{}", answer.head);
    assert_eq!(answer.header("connection").as_deref(), Some("close"));
    assert!(conn.closed_by_server());

    let mut conn = Conn::open(s.addr);
    for _ in 0..2 {
        conn.send("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let answer = conn.answer(true).unwrap();
        assert_eq!(answer.body, b"ok");
        assert_eq!(answer.header("connection").as_deref(), Some("keep-alive"));
    }
}

#[test]
fn an_idle_kept_alive_connection_is_closed() {
    let mut config = test_config();
    config.http_idle_timeout = Duration::from_secs(1);
    let s = TestServer::start(config);
    let mut conn = Conn::open(s.addr);
    assert_eq!(conn.get("/healthz", "").status, 200);
    assert!(conn.closed_by_server(), "an idle connection stays open");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let s = TestServer::default_config();
    let mut conn = Conn::open(s.addr);
    conn.send(
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\
         HEAD /app.js HTTP/1.1\r\nHost: x\r\n\r\n\
         GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n\
         POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\
         GET /favicon.svg HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let healthz = conn.answer(true).unwrap();
    assert_eq!((healthz.status, healthz.body.as_slice()), (200, &b"ok"[..]));
    let head = conn.answer(false).unwrap();
    assert_eq!(head.status, 200);
    assert!(head
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    assert_eq!(conn.answer(true).unwrap().status, 404);
    let post = conn.answer(true).unwrap();
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow").as_deref(), Some("GET, HEAD"));
    let svg = conn.answer(true).unwrap();
    assert_eq!(svg.status, 200);
    assert!(String::from_utf8_lossy(&svg.body).contains("<svg"));
}

#[test]
fn text_assets_are_gzipped_for_browsers_that_accept_it() {
    let s = TestServer::default_config();
    let mut conn = Conn::open(s.addr);
    let plain = conn.get("/app.js", "");
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("vary").as_deref(), Some("Accept-Encoding"));
    let zipped = conn.get("/app.js", "Accept-Encoding: gzip, deflate, br\r\n");
    assert_eq!(zipped.header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(zipped.header("vary").as_deref(), Some("Accept-Encoding"));
    assert!(zipped.body.len() < plain.body.len() / 2);
    assert_ne!(zipped.header("etag"), plain.header("etag"));
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&zipped.body[..])
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, plain.body);
    // Refused with q=0, and never for images (compressed already).
    let refused = conn.get("/app.js", "Accept-Encoding: gzip;q=0\r\n");
    assert_eq!(refused.header("content-encoding"), None);
    let png = conn.get("/icon-192.png", "Accept-Encoding: gzip\r\n");
    assert_eq!((png.status, png.header("content-encoding")), (200, None));
    // The page's security headers stay.
    let page = conn.get("/", "Accept-Encoding: gzip\r\n");
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(
        page.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
}

#[test]
fn an_etag_revalidates_to_304_and_head_says_the_length_without_the_body() {
    let s = TestServer::default_config();
    let mut conn = Conn::open(s.addr);
    let first = conn.get("/style.css", "");
    let etag = first.header("etag").expect("an ETag");
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "a strong tag: {etag}"
    );
    let again = conn.get("/style.css", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(again.status, 304, "{}", again.head);
    assert_eq!(again.header("etag").as_ref(), Some(&etag));
    assert!(again.header("cache-control").is_some() && again.header("date").is_some());
    let other = conn.get("/style.css", "If-None-Match: \"something-else\"\r\n");
    assert_eq!((other.status, other.body.len()), (200, first.body.len()));

    conn.send("HEAD /style.css HTTP/1.1\r\nHost: x\r\n\r\n");
    let head = conn.answer(false).unwrap();
    assert_eq!(head.status, 200);
    let length = head.header("content-length").unwrap();
    assert_eq!(length, first.body.len().to_string());
    // Had HEAD carried a body, this answer would be read from the middle of it.
    assert_eq!(conn.get("/healthz", "").body, b"ok");
}

#[test]
fn single_ranges_are_206_past_the_end_416_and_several_the_whole() {
    let s = TestServer::default_config();
    let mut conn = Conn::open(s.addr);
    let whole = conn.get("/app.js", "").body;
    let len = whole.len();
    assert_eq!(
        conn.get("/app.js", "").header("accept-ranges").as_deref(),
        Some("bytes")
    );

    let part = conn.get("/app.js", "Range: bytes=0-9\r\n");
    assert_eq!(part.status, 206);
    assert_eq!(part.body, whole[..10]);
    let expected = format!("bytes 0-9/{len}");
    assert_eq!(part.header("content-range").as_ref(), Some(&expected));

    let tail = conn.get("/app.js", "Range: bytes=-5\r\n");
    assert_eq!(
        (tail.status, tail.body.as_slice()),
        (206, &whole[len - 5..])
    );
    let from = conn.get("/app.js", &format!("Range: bytes={}-\r\n", len - 3));
    assert_eq!(
        (from.status, from.body.as_slice()),
        (206, &whole[len - 3..])
    );

    let past = conn.get("/app.js", &format!("Range: bytes={len}-\r\n"));
    assert_eq!(past.status, 416);
    let unsatisfiable = format!("bytes */{len}");
    assert_eq!(past.header("content-range").as_ref(), Some(&unsatisfiable));

    let several = conn.get("/app.js", "Range: bytes=0-1,5-6\r\n");
    assert_eq!((several.status, several.body.len()), (200, len));
    // An If-Range that is not the current ETag gets the whole, new body.
    let stale = conn.get("/app.js", "Range: bytes=0-9\r\nIf-Range: \"old\"\r\n");
    assert_eq!((stale.status, stale.body.len()), (200, len));
}

/// A browser's second visit: every asset the page names, and every module the modules
/// import, is fetched by a fingerprinted URL the first time and cached as immutable, so
/// the second visit asks only for the page again, which revalidates to a 304.
#[test]
fn a_second_visit_downloads_under_2_kb() {
    let s = TestServer::default_config();
    let mut conn = Conn::open(s.addr);
    let gzip = "Accept-Encoding: gzip, deflate, br\r\n";
    let page = conn.get("/", gzip);
    let mut html = Vec::new();
    flate2::read::GzDecoder::new(&page.body[..])
        .read_to_end(&mut html)
        .unwrap();
    let html = String::from_utf8(html).unwrap();
    // The import map: each module's bare path and the URL the browser fetches instead.
    let map_start = html
        .find("<script type=\"importmap\">")
        .expect("an import map")
        + 25;
    let map_end = map_start + html[map_start..].find("</script>").unwrap();
    let map: serde_json::Value = serde_json::from_str(&html[map_start..map_end]).unwrap();
    let imports = map["imports"].as_object().unwrap().clone();
    // Every `="/NAME?v=HASH"` the page names, and every module through the map.
    let mut urls: Vec<String> = html
        .split("=\"/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|url| url.contains("?v="))
        .map(|url| format!("/{url}"))
        .collect();
    urls.extend(imports.values().map(|v| v.as_str().unwrap().to_string()));
    urls.sort();
    urls.dedup();
    assert!(
        urls.iter().any(|u| u.starts_with("/style.css?v=")),
        "{urls:?}"
    );
    for url in &urls {
        let asset = conn.get(url, gzip);
        assert_eq!(asset.status, 200, "{url}");
        let cache = asset.header("cache-control").unwrap_or_default();
        assert!(
            cache.contains("immutable") && cache.contains("max-age=31536000"),
            "{url}: {cache}"
        );
        if url.contains(".js?") {
            let mut js = Vec::new();
            flate2::read::GzDecoder::new(&asset.body[..])
                .read_to_end(&mut js)
                .unwrap();
            // Each relative import must be in the map, or the browser would fetch (and
            // revalidate) it by its bare name.
            for import in String::from_utf8(js).unwrap().split("from './").skip(1) {
                let name = import.split('\'').next().unwrap();
                assert!(
                    imports.contains_key(&format!("/{name}")),
                    "{url} imports {name}"
                );
            }
        }
    }
    // A bare name (an old page, a bookmark) is still served, revalidated on each use.
    let bare = conn.get("/app.js", gzip);
    assert_eq!(bare.header("cache-control").as_deref(), Some("no-cache"));

    // The second visit: the page itself, revalidated.
    let etag = page.header("etag").unwrap();
    let second = conn.get("/", &format!("{gzip}If-None-Match: {etag}\r\n"));
    assert_eq!(second.status, 304);
    assert!(
        second.wire_bytes < 2048,
        "a second visit downloads {} bytes",
        second.wire_bytes
    );
    eprintln!(
        "second visit: {} bytes ({} assets cached as immutable)",
        second.wire_bytes,
        urls.len()
    );
}

/// A client that stalls halfway through its second request's head is cut off at the head
/// deadline like one that stalls on its first, and kept-alive connections count against
/// the per-address cap for their whole life.
#[test]
fn a_slow_client_holds_no_more_than_its_share() {
    let mut config = test_config();
    config.head_timeout = Duration::from_secs(1);
    config.http_idle_timeout = Duration::from_secs(30);
    config.max_connections_per_ip = 2;
    let s = TestServer::start(config);
    let mut slow = Conn::open(s.addr);
    assert_eq!(slow.get("/healthz", "").status, 200);
    slow.send("GET /healthz HTTP/1.1\r\nHo");
    let mut idle = Conn::open(s.addr);
    assert_eq!(idle.get("/healthz", "").status, 200);
    // Both places of this address are held: a third connection is turned away.
    let mut third = Conn::open(s.addr);
    third.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(third.answer(true).map(|a| a.status), Some(429));
    // The stalled head is cut off (long before the 30 s idle timeout), giving its place back.
    assert!(
        slow.closed_by_server(),
        "a stalled second head holds its thread"
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let mut next = Conn::open(s.addr);
        next.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        match next.answer(true).map(|a| a.status) {
            Some(200) => break,
            other => assert!(Instant::now() < deadline, "no place freed: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn api_answers_keep_the_connection_and_a_websocket_may_follow() {
    let s = TestServer::default_config();
    let mut conn = Conn::open(s.addr);
    for _ in 0..2 {
        conn.send(
            "POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: 2\r\n\r\n{}",
        );
        let answer = conn.answer(true).unwrap();
        assert_eq!(answer.status, 400, "{}", answer.head);
        assert_eq!(answer.header("connection"), None, "{}", answer.head);
        let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(json["code"], "bad_request");
    }
    assert_eq!(conn.get("/healthz", "").body, b"ok");
    conn.send(&format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        s.addr
    ));
    let switched = conn.answer(false).unwrap();
    assert_eq!(switched.status, 101, "{}", switched.head);
}
