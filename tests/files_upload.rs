//! `POST /api/files` over real TCP: who may upload, what the answer holds, and every limit
//! (size by the declared length and while streaming, the daily quota, the Origin rule),
//! with nothing of a refused upload left on disk.

mod common;

use common::files::*;
use common::*;

const MIB: usize = 1 << 20;

#[test]
fn a_signed_in_upload_is_answered_201_with_its_summary_and_kept_whole() {
    let dir = TempDir::new("files-201");
    let server = TestServer::start(files_config(&dir));
    let ana = account(server.addr, "Ana");
    let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let r = upload(server.addr, &ana, "../../etc/notas\u{202E}.txt", &body);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        header(&r.head, "content-type").as_deref(),
        Some("application/json")
    );
    let file = r.json();
    let id = file["id"].as_str().unwrap();
    assert_eq!(id.len(), 22, "128 random bits, URL-safe: {id}");
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert_eq!(file["name"], "notas_.txt", "no path, no control characters");
    assert_eq!(file["size"], body.len());
    assert!(file["type"].is_string());
    assert!(file.get("width").is_none() && file.get("height").is_none());
    let stored = std::fs::read(format!("{}/{id}", dir.file("files"))).unwrap();
    assert_eq!(stored, body, "the bytes are stored as they came");
    let again = uploaded(server.addr, &ana, "notas.txt", &body);
    assert_ne!(again["id"], file["id"], "every upload has its own id");
}

#[test]
fn guests_and_strangers_get_401_not_signed_in() {
    let dir = TempDir::new("files-401");
    let server = TestServer::start(files_config(&dir));
    let r = upload_with(server.addr, None, "a.txt", b"hello", &[]);
    assert_eq!((r.status, r.code().as_str()), (401, "not_signed_in"));
    let forged = format!("papo_session={}", "ab".repeat(32));
    let r = upload_with(server.addr, Some(&forged), "a.txt", b"hello", &[]);
    assert_eq!((r.status, r.code().as_str()), (401, "not_signed_in"));
    // A logged-out session no longer uploads.
    let ana = account(server.addr, "Ana");
    assert_eq!(
        api_post(
            server.addr,
            "/api/logout",
            serde_json::json!({}),
            Some(&ana)
        )
        .status,
        204
    );
    let r = upload(server.addr, &ana, "a.txt", b"hello");
    assert_eq!((r.status, r.code().as_str()), (401, "not_signed_in"));
    assert!(listing(&dir.file("files")).is_empty());
}

#[test]
fn a_declared_length_over_the_limit_is_refused_413_before_the_body_is_sent() {
    let dir = TempDir::new("files-413-head");
    let mut config = files_config(&dir);
    config.files.max_upload_bytes = MIB as u64;
    let server = TestServer::start(config);
    let ana = account(server.addr, "Ana");
    // Only the head goes: the answer must come without waiting for a body.
    let r = upload_head_only(server.addr, &ana, 2 * MIB as u64);
    assert_eq!((r.status, r.code().as_str()), (413, "too_large"));
    // Exactly the limit passes.
    let file = uploaded(server.addr, &ana, "exact.bin", &vec![1u8; MIB]);
    assert_eq!(file["size"], MIB);
}

#[test]
fn a_chunked_upload_is_stopped_at_the_limit_and_nothing_of_it_is_kept() {
    let dir = TempDir::new("files-413-stream");
    let mut config = files_config(&dir);
    config.files.max_upload_bytes = MIB as u64;
    let server = TestServer::start(config);
    let ana = account(server.addr, "Ana");
    let r = upload_chunked(server.addr, &ana, 3 * MIB);
    assert_eq!((r.status, r.code().as_str()), (413, "too_large"));
    assert!(
        listing(&dir.file("files")).is_empty(),
        "no file and no temporary file left: {:?}",
        listing(&dir.file("files"))
    );
    // Under the limit, chunked works.
    let r = upload_chunked(server.addr, &ana, MIB / 2);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["size"], MIB / 2);
}

#[test]
fn the_daily_quota_answers_429_with_retry_after() {
    let dir = TempDir::new("files-429");
    let mut config = files_config(&dir);
    config.files.max_upload_bytes = MIB as u64;
    config.files.upload_quota_bytes = 2 * MIB as u64;
    let server = TestServer::start(config);
    let ana = account(server.addr, "Ana");
    let beto = account(server.addr, "Beto");
    uploaded(server.addr, &ana, "1.bin", &vec![0u8; 900_000]);
    uploaded(server.addr, &ana, "2.bin", &vec![0u8; 900_000]);
    let r = upload(server.addr, &ana, "3.bin", &vec![0u8; 900_000]);
    assert_eq!((r.status, r.code().as_str()), (429, "rate_limited"));
    let retry: u64 = header(&r.head, "retry-after").unwrap().parse().unwrap();
    assert_eq!(r.json()["retry_after"], retry);
    assert!(
        retry > 80_000 && retry <= 86_400,
        "the first upload frees up in a day: {retry}"
    );
    // What is left still fits; another account has its own quota.
    uploaded(server.addr, &ana, "small.bin", &vec![0u8; 100_000]);
    uploaded(server.addr, &beto, "b.bin", &vec![0u8; 900_000]);
}

#[test]
fn a_quota_of_zero_is_off() {
    let dir = TempDir::new("files-quota-off");
    let mut config = files_config(&dir);
    config.files.max_upload_bytes = MIB as u64;
    config.files.upload_quota_bytes = 0;
    let server = TestServer::start(config);
    let ana = account(server.addr, "Ana");
    for n in 0..4 {
        uploaded(server.addr, &ana, &format!("{n}.bin"), &vec![0u8; MIB]);
    }
}

#[test]
fn another_origin_is_403_and_the_page_s_own_origin_uploads() {
    let dir = TempDir::new("files-403");
    let server = TestServer::start(files_config(&dir));
    let ana = account(server.addr, "Ana");
    let evil = [("Origin", "http://evil.example")];
    let r = upload_with(server.addr, Some(&ana), "a.txt", b"x", &evil);
    assert_eq!((r.status, r.code().as_str()), (403, "forbidden_origin"));
    let own = format!("http://{}", server.addr);
    let r = upload_with(server.addr, Some(&ana), "a.txt", b"x", &[("Origin", &own)]);
    assert_eq!(r.status, 201);
    assert!(listing(&dir.file("files")).len() == 1);
}

#[test]
fn uploads_are_posted() {
    let dir = TempDir::new("files-405");
    let server = TestServer::start(files_config(&dir));
    let ana = account(server.addr, "Ana");
    let r = http_request(server.addr, "GET", "/api/files", &[("Cookie", &ana)], b"");
    assert_eq!(r.status, 405);
    assert_eq!(header(&r.head, "allow").as_deref(), Some("POST"));
}
