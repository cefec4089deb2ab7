//! Suspensions over real TCP (PROTOCOL.md 1.1, "Moderation"): only the admin suspends;
//! a suspended account's connections close with 4003 `suspended`, its sessions end, and it
//! cannot sign in (by `/api/login` or by `hello` with a password) until `until` or
//! `unsuspend`; suspensions survive a restart. And `papo audit` shows every action, newest
//! first, without message text.

mod common;

use common::*;
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse";
const SUSPENDED: u16 = 4003;
const MINUTE: Duration = Duration::from_millis(400);

fn server_on(db: &str) -> TestServer {
    let mut config = test_config();
    config.db = db.into();
    config.accounts.registrations_per_hour = 0;
    config.accounts.sign_in_failures = 0;
    config.moderation_minute = MINUTE;
    TestServer::start(config)
}

fn server() -> TestServer {
    server_on(":memory:")
}

fn account(s: &TestServer, name: &str) -> (Client, String) {
    let cookie = register(s.addr, name, PASSWORD);
    let (client, _) = Client::signed_in(s.addr, &cookie);
    (client, cookie)
}

fn login_reply(s: &TestServer, name: &str) -> HttpReply {
    api_post(
        s.addr,
        "/api/login",
        json!({"name": name, "password": PASSWORD}),
        None,
    )
}

fn hello_with_password(s: &TestServer, name: &str) -> serde_json::Value {
    let mut c = Client::connect(s.addr);
    c.request(
        json!({"type": "hello", "name": name, "password": PASSWORD}),
        json!("hello"),
    )
}

#[test]
fn a_suspended_account_is_closed_with_4003_and_cannot_sign_in_until_unsuspended() {
    let s = server();
    let (mut admin, _) = account(&s, "Admin");
    let (mut beto, beto_cookie) = account(&s, "Beto");
    let (mut beto_phone, _) = Client::signed_in(s.addr, &beto_cookie);
    let mut ana = Client::member(s.addr, "Ana", "sala");
    beto.join("sala", None);
    ana.recv_until(|v| v["type"] == "presence" && v["joined"] == json!(["Beto"]));

    let reply = admin.request(json!({"type": "suspend", "user": "beto"}), json!("s"));
    assert_eq!(
        reply,
        json!({"type": "suspended", "user": "Beto", "ref": "s"})
    );
    assert_eq!(beto.expect_closed(WAIT), Some(SUSPENDED));
    assert_eq!(beto_phone.expect_closed(WAIT), Some(SUSPENDED));
    let left = ana.recv_type("presence");
    assert_eq!(left["left"], json!(["Beto"]), "{left}");

    // Its sessions ended: the cookie signs nothing in (the name stays registered).
    let session = api_get(s.addr, "/api/session", Some(&beto_cookie));
    assert_eq!(session.status, 401);
    let mut c = Client::connect_with(s.addr, &[("Cookie", &beto_cookie)]);
    c.expect_error(json!({"type": "hello", "name": "Beto"}), "name_registered");
    // The right password signs nothing in either, on the API or the WebSocket.
    let refused = login_reply(&s, "Beto");
    assert_eq!(
        (refused.status, refused.code()),
        (403, "forbidden".to_string())
    );
    assert!(refused.set_cookie().is_none());
    assert!(
        refused.json().get("until").is_none(),
        "until unsuspend: no until"
    );
    let refused = hello_with_password(&s, "Beto");
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("forbidden"))
    );
    // A wrong password is still just wrong: the suspension shows only to the right one.
    let wrong = api_post(
        s.addr,
        "/api/login",
        json!({"name": "Beto", "password": "wrong one!"}),
        None,
    );
    assert_eq!(wrong.status, 401);

    let reply = admin.request(json!({"type": "unsuspend", "user": "Beto"}), json!("u"));
    assert_eq!(
        reply,
        json!({"type": "unsuspended", "user": "Beto", "ref": "u"})
    );
    let cookie = login(s.addr, "Beto", PASSWORD);
    let (_, welcome) = Client::signed_in(s.addr, &cookie);
    assert_eq!(welcome["name"], "Beto");
    // The membership outlived the suspension.
    assert_eq!(welcome["memberships"][0]["room"], "sala", "{welcome}");
}

#[test]
fn only_the_admin_suspends_and_never_itself_or_an_admin() {
    let s = server();
    let (mut admin, _) = account(&s, "Admin");
    let (mut ana, _) = account(&s, "Ana");
    let (mut beto, _) = account(&s, "Beto");
    let mut guest = Client::hello(s.addr, "Visita");
    ana.create("da-ana", None);
    // An owner of a room, a plain account and a guest are not the admin.
    for c in [&mut ana, &mut beto, &mut guest] {
        c.expect_error(json!({"type": "suspend", "user": "Admin"}), "forbidden");
        c.expect_error(
            json!({"type": "suspend", "user": "Beto", "minutes": 5}),
            "forbidden",
        );
        c.expect_error(json!({"type": "unsuspend", "user": "Beto"}), "forbidden");
    }
    admin.expect_error(json!({"type": "suspend", "user": "Admin"}), "forbidden");
    admin.expect_error(
        json!({"type": "suspend", "user": "Ninguém"}),
        "no_such_user",
    );
    // A guest has no account to suspend.
    admin.expect_error(json!({"type": "suspend", "user": "Visita"}), "no_such_user");
    admin.expect_error(
        json!({"type": "suspend", "user": "Beto", "minutes": -1}),
        "bad_request",
    );
    beto.assert_alive();
}

#[test]
fn a_timed_suspension_survives_a_restart_and_ends_on_time() {
    let dir = TempDir::new("moderation-suspend");
    let db = dir.file("papo.db");
    let mut server = server_on(&db);
    let (mut admin, _) = account(&server, "Admin");
    let (mut beto, _) = account(&server, "Beto");
    let asked = Instant::now();
    let reply = admin.request(
        json!({"type": "suspend", "user": "Beto", "minutes": 3}),
        json!("s"),
    );
    assert!(reply["until"].as_u64().is_some(), "{reply}");
    assert_eq!(beto.expect_closed(WAIT), Some(SUSPENDED));
    admin.assert_alive();
    drop(admin);
    server.shutdown();

    let server = server_on(&db);
    let refused = login_reply(&server, "Beto");
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.json()["until"],
        reply["until"],
        "the answer says until when"
    );
    let ends = asked + 3 * MINUTE + Duration::from_millis(100);
    std::thread::sleep(ends.saturating_duration_since(Instant::now()));
    assert_eq!(login_reply(&server, "Beto").status, 200);
    let welcome = hello_with_password(&server, "Beto");
    assert_eq!(welcome["type"], "welcome", "{welcome}");
}

#[test]
fn papo_audit_lists_every_action_newest_first_without_message_text() {
    let dir = TempDir::new("moderation-audit");
    let db = dir.file("papo.db");
    let mut server = server_on(&db);
    let (mut admin, _) = account(&server, "Admin");
    let (mut ana, _) = account(&server, "Ana");
    let (mut beto, _) = account(&server, "Beto");
    ana.create("clube", None);
    ana.join("clube", None);
    beto.join("clube", None);
    let (ack, _) = beto.text_ref("clube", "texto-zqxj-secreto", json!(1));
    let id = ack["id"].as_u64().unwrap();
    beto.request(
        json!({"type": "edit", "id": id, "text": "outro-zqxj"}),
        json!(2),
    );
    ana.request(json!({"type": "delete", "id": id}), json!(3));
    ana.request(
        json!({"type": "kick", "room": "clube", "user": "Beto", "minutes": 60}),
        json!(4),
    );
    ana.request(
        json!({"type": "unban", "room": "clube", "user": "Beto"}),
        json!(5),
    );
    admin.request(json!({"type": "suspend", "user": "Beto"}), json!(6));
    admin.request(json!({"type": "unsuspend", "user": "Beto"}), json!(7));
    ana.request(json!({"type": "delete_room", "room": "clube"}), json!(8));
    admin.assert_alive();
    // While the server runs: the log is read from the same file.
    std::thread::sleep(Duration::from_millis(300));
    let out = Command::new(env!("CARGO_BIN_EXE_papo"))
        .args(["audit", "--db", &db])
        .output()
        .expect("papo audit runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("time (UTC)"), "{text}");
    let actions: Vec<(&str, &str)> = lines[1..]
        .iter()
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols[2], cols[3])
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("Ana", "delete_room"),
            ("Admin", "unsuspend"),
            ("Admin", "suspend"),
            ("Ana", "unban"),
            ("Ana", "ban"),
            ("Ana", "delete"),
            ("Beto", "edit"),
        ],
        "{text}"
    );
    assert!(lines[3].contains("Beto"), "suspend names whom: {text}");
    assert!(lines[5].contains("until "), "a ban says until when: {text}");
    assert!(lines[6].contains(&format!("message {id}")), "{text}");
    assert!(lines[6].contains("clube"), "{text}");
    assert!(
        !text.contains("zqxj"),
        "no message text in the audit: {text}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_papo"))
        .args(["audit", "--limit", "2", "--db", &db])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 3, "a header and two rows: {text}");
    drop((admin, ana, beto));
    server.shutdown();
}
