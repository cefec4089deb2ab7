//! Accounts survive a restart: accounts, sessions (the same cookie still signs in),
//! memberships, read marks, and DMs kept for an account that was offline; and the message
//! ids of DMs that were not kept (a guest's) are never used again.

mod common;

use common::*;
use serde_json::json;

const PASSWORD: &str = "correct horse";

fn server_on(db: &str) -> TestServer {
    let mut config = test_config();
    config.db = db.into();
    config.accounts.registrations_per_hour = 0;
    TestServer::start(config)
}

#[test]
fn restart_keeps_accounts_sessions_memberships_read_marks_and_dms() {
    let dir = TempDir::new("accounts-restart");
    let db = dir.file("papo.db");
    let mut server = server_on(&db);
    let ana_cookie = register(server.addr, "Ana", PASSWORD);
    register(server.addr, "Beto", PASSWORD);
    let (mut ana, _) = Client::signed_in(server.addr, &ana_cookie);
    ana.create("segredo", Some("123"));
    ana.join("segredo", Some("123"));
    let mut last = 0;
    for text in ["um", "dois", "três"] {
        let (ack, _) = ana.text_ref("segredo", text, json!(text));
        last = ack["id"].as_u64().unwrap();
    }
    let read = ana.request(
        json!({"type": "read", "room": "segredo", "id": last - 1}),
        json!("r"),
    );
    assert_eq!(read["id"], last - 1);
    let dm = ana.request(
        json!({"type": "dm", "to": "Beto", "text": "para depois"}),
        json!("dm"),
    );
    // A DM with a guest is not kept, but its id is never given out again.
    let _caio = Client::hello(server.addr, "Caio");
    let guest_dm = ana.request(
        json!({"type": "dm", "to": "Caio", "text": "efêmera"}),
        json!("g"),
    );
    let guest_id = guest_dm["id"].as_u64().unwrap();
    // Give the store a moment to commit what carries no ack (memberships, marks, DMs).
    ana.assert_alive();
    std::thread::sleep(std::time::Duration::from_millis(300));
    drop(ana);
    server.shutdown();

    let server = server_on(&db);
    let me = api_get(server.addr, "/api/session", Some(&ana_cookie));
    assert_eq!(me.status, 200, "the session survives: {:?}", me.json());
    assert_eq!(me.json()["name"], "Ana");
    assert_eq!(me.json()["admin"], true);
    let (mut ana, welcome) = Client::signed_in(server.addr, &ana_cookie);
    assert_eq!(
        welcome["memberships"],
        json!([{"room": "segredo", "protected": true, "owner": "Ana", "member_count": 0,
                "last_id": last, "read_id": last - 1, "unread": 1}])
    );
    // A member joins without the password, after a restart too.
    assert_eq!(
        ana.join("segredo", None)["history"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let beto_cookie = login(server.addr, "Beto", PASSWORD);
    let (mut beto, welcome) = Client::signed_in(server.addr, &beto_cookie);
    assert_eq!(
        welcome["dms"],
        json!([{"with": "Ana", "last_id": dm["id"], "read_id": 0, "unread": 1}])
    );
    let history = beto.request(json!({"type": "dm_history", "with": "Ana"}), json!("h"));
    assert_eq!(history["messages"].as_array().unwrap().len(), 1);
    assert_eq!(history["messages"][0]["text"], "para depois");

    let (ack, _) = ana.text_ref("segredo", "depois", json!("after"));
    assert!(
        ack["id"].as_u64().unwrap() > guest_id,
        "{ack} after {guest_id}"
    );
    // Passwords survive as hashes: the old one still works, a wrong one does not.
    let r = api_post(
        server.addr,
        "/api/login",
        json!({"name": "Ana", "password": "wrong password"}),
        None,
    );
    assert_eq!(r.status, 401);
    login(server.addr, "Ana", PASSWORD);
}

#[test]
fn only_hashes_reach_the_disk() {
    let dir = TempDir::new("accounts-hashes");
    let db = dir.file("papo.db");
    let mut server = server_on(&db);
    let cookie = register(server.addr, "Ana", PASSWORD);
    let token = cookie.trim_start_matches("papo_session=").to_string();
    server.shutdown();
    let mut bytes = std::fs::read(&db).unwrap();
    for suffix in ["-wal", "-shm"] {
        if let Ok(more) = std::fs::read(format!("{db}{suffix}")) {
            bytes.extend(more);
        }
    }
    let hay = String::from_utf8_lossy(&bytes);
    assert!(!hay.contains(PASSWORD), "the password is on disk");
    assert!(!hay.contains(&token), "the session token is on disk");
    assert!(hay.contains("$argon2id$"), "an argon2id hash is kept");
}
