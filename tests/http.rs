//! The plain HTTP side of the one public port: the page, `/healthz`, unknown paths,
//! and that HTTP and WebSocket traffic share the port.

mod common;

use std::io::Write;

use common::*;

#[test]
fn healthz_is_200_ok() {
    let s = TestServer::default_config();
    let (status, _, body) = http_get(s.addr, "/healthz");
    assert_eq!(status, 200);
    assert_eq!(body, b"ok");
}

#[test]
fn root_serves_the_html_page() {
    let s = TestServer::default_config();
    let (status, head, body) = http_get(s.addr, "/");
    assert_eq!(status, 200, "{head}");
    let ct = header(&head, "content-type").unwrap_or_default();
    assert!(ct.starts_with("text/html"), "content-type {ct:?}");
    let text = String::from_utf8_lossy(&body).to_lowercase();
    assert!(
        text.contains("<html") || text.contains("<!doctype html"),
        "{text}"
    );
}

#[test]
fn unknown_path_is_404() {
    let s = TestServer::default_config();
    let (status, _, _) = http_get(s.addr, "/no/such/thing");
    assert_eq!(status, 404);
}

#[test]
fn http_and_websocket_share_the_port_concurrently() {
    let s = TestServer::default_config();
    let mut pair = Pair::new(s.addr, "http");
    let addr = s.addr;
    let handles: Vec<_> = (0..20)
        .map(|_| std::thread::spawn(move || http_get(addr, "/healthz")))
        .collect();
    pair.chat();
    for h in handles {
        let (status, _, body) = h.join().unwrap();
        assert_eq!((status, body.as_slice()), (200, &b"ok"[..]));
    }
    pair.chat();
}

#[test]
fn ws_path_without_upgrade_is_not_a_websocket() {
    let s = TestServer::default_config();
    let mut st = raw_connect(s.addr);
    st.write_all(
        format!(
            "GET /ws HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            s.addr
        )
        .as_bytes(),
    )
    .unwrap();
    if let Some((status, head, _)) = read_head(&mut st, WAIT) {
        assert!((400..500).contains(&status), "plain GET /ws: {head}");
    }
}

/// A browser loading the page opens several keep-alive connections at once; every request
/// must be answered while the others stay open (tiny_http's pool once left some waiting
/// behind idle keep-alive connections until those closed).
#[test]
fn a_burst_of_keep_alive_requests_is_all_answered() {
    const CONNECTIONS: usize = 16;
    let s = TestServer::default_config();
    for _round in 0..3 {
        let all_read = std::sync::Arc::new(std::sync::Barrier::new(CONNECTIONS));
        let handles: Vec<_> = (0..CONNECTIONS)
            .map(|_| {
                let (addr, all_read) = (s.addr, all_read.clone());
                std::thread::spawn(move || {
                    let mut stream = raw_connect(addr);
                    let request = format!("GET /favicon.svg HTTP/1.1\r\nHost: {addr}\r\n\r\n");
                    stream.write_all(request.as_bytes()).unwrap();
                    let head = read_head(&mut stream, std::time::Duration::from_secs(3));
                    // Held open, as a browser would, until every connection had its answer.
                    all_read.wait();
                    head.map(|(status, _, _)| status)
                })
            })
            .collect();
        let statuses: Vec<Option<u16>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(statuses.iter().all(|s| *s == Some(200)), "{statuses:?}");
    }
}
