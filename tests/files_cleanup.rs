//! Files no message refers to are deleted after 24 hours, rows and bytes; here the day is
//! a second (the hidden `--files-unattached-secs` and `--files-sweep-secs` settings).
//! Files on messages stay, also across a restart.

mod common;

use common::files::*;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn an_unattached_file_goes_after_its_time_and_an_attached_one_stays() {
    let dir = TempDir::new("files-sweep");
    let mut config = files_config(&dir);
    config.db = dir.file("papo.db");
    config.files.unattached_after = Duration::from_secs(1);
    config.files.sweep_every = Duration::from_millis(300);
    let mut server = TestServer::start(config.clone());
    let ana_cookie = account(server.addr, "Ana");
    let kept = uploaded(server.addr, &ana_cookie, "kept.txt", b"on a message");
    let lonely = uploaded(server.addr, &ana_cookie, "lonely.txt", b"on nothing");
    let (kept_id, lonely_id) = (kept["id"].as_str().unwrap(), lonely["id"].as_str().unwrap());
    let (mut ana, _) = Client::signed_in(server.addr, &ana_cookie);
    ana.create("sala", None);
    ana.join("sala", None);
    let ack = ana.request(
        json!({"type": "text", "room": "sala", "files": [kept_id]}),
        json!(1),
    );
    assert_eq!(ack["type"], "ack");
    // Younger than its time, the unattached file can still be attached.
    assert!(listing(&dir.file("files")).contains(&lonely_id.to_string()));

    let deadline = Instant::now() + WAIT;
    while listing(&dir.file("files")).contains(&lonely_id.to_string()) {
        assert!(
            Instant::now() < deadline,
            "the unattached file was never deleted"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(listing(&dir.file("files")), [kept_id.to_string()]);
    ana.expect_error(
        json!({"type": "text", "room": "sala", "files": [lonely_id]}),
        "no_such_file",
    );
    drop(ana);
    server.shutdown();

    // After a restart the attached file is still there and attachable; the other is gone
    // from the database too.
    let server = TestServer::start(config);
    let (mut ana, _) = Client::signed_in(server.addr, &ana_cookie);
    ana.join("sala", None);
    let ack = ana.request(
        json!({"type": "text", "room": "sala", "files": [kept_id]}),
        json!(2),
    );
    assert_eq!(ack["type"], "ack", "{ack}");
    ana.expect_error(
        json!({"type": "text", "room": "sala", "files": [lonely_id]}),
        "no_such_file",
    );
    assert_eq!(listing(&dir.file("files")), [kept_id.to_string()]);
}

#[test]
fn by_default_an_unattached_file_is_kept_for_a_day() {
    let dir = TempDir::new("files-day");
    let mut config = files_config(&dir);
    config.files.sweep_every = Duration::from_millis(100);
    let server = TestServer::start(config);
    let ana_cookie = account(server.addr, "Ana");
    let file = uploaded(server.addr, &ana_cookie, "a.txt", b"a");
    std::thread::sleep(Duration::from_millis(600));
    assert!(listing(&dir.file("files")).contains(&file["id"].as_str().unwrap().to_string()));
}
