//! `GET /files/ID` and `GET /files/ID/thumb` over real TCP: every header PROTOCOL.md 1.1
//! "Attachments" lists (exact length, ETag, immutable caching, nosniff, the sandbox CSP),
//! HEAD, If-None-Match → 304, a single Range → 206 and past the end → 416, inline only for
//! the four picture types and a download for everything else (a PDF, an SVG or HTML page
//! named .png), previews only for pictures, 404 for unknown ids.

mod common;

use common::files::*;
use common::*;

fn server(dir: &TempDir) -> (TestServer, String) {
    let server = TestServer::start(files_config(dir));
    let ana = account(server.addr, "Ana");
    (server, ana)
}

fn id(file: &serde_json::Value) -> String {
    file["id"].as_str().unwrap().to_string()
}

fn assert_common_headers(head: &str) {
    assert_eq!(
        header(head, "cache-control").as_deref(),
        Some("private, max-age=31536000, immutable"),
        "{head}"
    );
    assert_eq!(
        header(head, "x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(
        header(head, "content-security-policy").as_deref(),
        Some("default-src 'none'; sandbox")
    );
    assert!(
        header(head, "etag").is_some_and(|e| e.starts_with('"')),
        "{head}"
    );
}

#[test]
fn a_png_is_served_inline_with_every_header_and_a_preview() {
    let dir = TempDir::new("serve-png");
    let (server, ana) = server(&dir);
    let png = zero_png(640, 320, 8);
    let file = uploaded(server.addr, &ana, "foto.png", &png);
    assert_eq!(file["type"], "image/png");
    assert_eq!(
        (file["width"].as_u64(), file["height"].as_u64()),
        (Some(640), Some(320))
    );
    let r = fetch(server.addr, "GET", &format!("/files/{}", id(&file)), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(
        header(&r.head, "content-type").as_deref(),
        Some("image/png")
    );
    assert_common_headers(&r.head);
    let size = file["size"].as_u64().unwrap() as usize;
    assert_eq!(header(&r.head, "content-length"), Some(size.to_string()));
    assert_eq!(r.body.len(), size);
    assert!(r.body.starts_with(b"\x89PNG"));
    assert!(!header(&r.head, "content-disposition").is_some_and(|d| d.starts_with("attachment")));

    let thumb = fetch(
        server.addr,
        "GET",
        &format!("/files/{}/thumb", id(&file)),
        &[],
    );
    assert_eq!(thumb.status, 200, "{}", thumb.head);
    assert_common_headers(&thumb.head);
    let kind = header(&thumb.head, "content-type").unwrap();
    assert!(kind == "image/png" || kind == "image/jpeg", "{kind}");
    assert_ne!(header(&thumb.head, "etag"), header(&r.head, "etag"));
    assert_eq!(
        header(&thumb.head, "content-length"),
        Some(thumb.body.len().to_string())
    );
}

#[test]
fn head_304_206_and_416_follow_the_rules() {
    let dir = TempDir::new("serve-rules");
    let (server, ana) = server(&dir);
    let body: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let file = uploaded(server.addr, &ana, "dados.bin", &body);
    let path = format!("/files/{}", id(&file));

    let head = fetch(server.addr, "HEAD", &path, &[]);
    assert_eq!(head.status, 200);
    assert_eq!(header(&head.head, "content-length"), Some("10000".into()));
    assert_common_headers(&head.head);
    let etag = header(&head.head, "etag").unwrap();

    let cached = fetch(server.addr, "GET", &path, &[("If-None-Match", &etag)]);
    assert_eq!(cached.status, 304);
    assert_eq!(header(&cached.head, "etag"), Some(etag.clone()));
    let other = fetch(server.addr, "GET", &path, &[("If-None-Match", "\"nope\"")]);
    assert_eq!(other.status, 200);

    let part = fetch(server.addr, "GET", &path, &[("Range", "bytes=100-199")]);
    assert_eq!(part.status, 206);
    assert_eq!(
        header(&part.head, "content-range").as_deref(),
        Some("bytes 100-199/10000")
    );
    assert_eq!(header(&part.head, "content-length").as_deref(), Some("100"));
    assert_eq!(part.body, body[100..200]);
    assert_common_headers(&part.head);
    let tail = fetch(server.addr, "GET", &path, &[("Range", "bytes=-10")]);
    assert_eq!((tail.status, tail.body.as_slice()), (206, &body[9_990..]));

    let past = fetch(server.addr, "GET", &path, &[("Range", "bytes=20000-")]);
    assert_eq!(past.status, 416);
    assert_eq!(
        header(&past.head, "content-range").as_deref(),
        Some("bytes */10000")
    );
}

#[test]
fn everything_but_the_four_pictures_is_a_download() {
    let dir = TempDir::new("serve-download");
    let (server, ana) = server(&dir);
    let pdf = uploaded(
        server.addr,
        &ana,
        "relatório final.pdf",
        b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n%%EOF\n",
    );
    let svg = uploaded(
        server.addr,
        &ana,
        "gato.png",
        b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>",
    );
    let html = uploaded(
        server.addr,
        &ana,
        "foto.png",
        b"<!doctype html><script>alert(document.cookie)</script>",
    );
    assert_eq!(pdf["type"], "application/pdf");
    assert_ne!(
        svg["type"], "image/png",
        "the type comes from the bytes, not the name"
    );
    assert_ne!(html["type"], "image/png");
    assert!(svg.get("width").is_none() && html.get("width").is_none());
    for (file, name) in [
        (&pdf, "relat%C3%B3rio%20final.pdf"),
        (&svg, "gato.png"),
        (&html, "foto.png"),
    ] {
        let r = fetch(server.addr, "GET", &format!("/files/{}", id(file)), &[]);
        assert_eq!(r.status, 200);
        assert_eq!(
            header(&r.head, "content-type").as_deref(),
            Some("application/octet-stream"),
            "{}",
            r.head
        );
        assert_eq!(
            header(&r.head, "content-disposition"),
            Some(format!("attachment; filename*=UTF-8''{name}"))
        );
        assert_common_headers(&r.head);
        let thumb = fetch(
            server.addr,
            "GET",
            &format!("/files/{}/thumb", id(file)),
            &[],
        );
        assert_eq!(thumb.status, 404, "no preview of a download");
    }
}

#[test]
fn unknown_ids_are_404_and_no_cookie_is_needed() {
    let dir = TempDir::new("serve-404");
    let (server, ana) = server(&dir);
    let file = uploaded(server.addr, &ana, "a.txt", b"hello");
    for path in [
        "/files/AAAAAAAAAAAAAAAAAAAAAA".to_string(),
        "/files/AAAAAAAAAAAAAAAAAAAAAA/thumb".to_string(),
        "/files/..%2F..%2Fetc%2Fpasswd".to_string(),
        format!("/files/{}/other", id(&file)),
    ] {
        assert_eq!(fetch(server.addr, "GET", &path, &[]).status, 404, "{path}");
    }
    // The id is the capability: anyone holding it fetches the file, signed in or not.
    let r = fetch(server.addr, "GET", &format!("/files/{}", id(&file)), &[]);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
}
