//! The HTTP API of PROTOCOL.md 1.1 over real TCP: every row of the accounts table, every
//! error code, the cookie, JSON-only POSTs, the Origin rule, the body cap, and the
//! failure limits (per address, per account, registrations), with and without
//! `--trust-proxy`.

mod common;

use common::*;
use papo::accounts::Registration;
use serde_json::json;

const PASSWORD: &str = "correct horse";

fn server_with(change: impl FnOnce(&mut papo::Config)) -> TestServer {
    let mut config = test_config();
    change(&mut config);
    TestServer::start(config)
}

#[test]
fn register_answers_201_with_a_session_cookie_and_the_first_account_is_admin() {
    let s = TestServer::default_config();
    let r = api_post(
        s.addr,
        "/api/register",
        json!({"name": "  Ana ", "password": PASSWORD}),
        None,
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.json(), json!({"name": "Ana", "admin": true}));
    assert_eq!(
        header(&r.head, "content-type").as_deref(),
        Some("application/json")
    );
    let set = r.set_cookie().unwrap();
    let token = set
        .strip_prefix("papo_session=")
        .and_then(|rest| rest.split(';').next())
        .unwrap();
    assert!(token.len() >= 32, "at least 128 bits of token: {token:?}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=2592000"] {
        assert!(set.contains(attribute), "{attribute} missing from {set}");
    }
    assert!(!set.contains("Secure"), "plain http: no Secure: {set}");

    let beto = api_post(
        s.addr,
        "/api/register",
        json!({"name": "Beto", "password": PASSWORD}),
        None,
    );
    assert_eq!(beto.json(), json!({"name": "Beto", "admin": false}));

    let me = api_get(s.addr, "/api/session", Some(&r.cookie()));
    assert_eq!(me.status, 200);
    let v = me.json();
    assert_eq!(
        (v["name"].clone(), v["admin"].clone()),
        (json!("Ana"), json!(true))
    );
    let sessions = v["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    let one = &sessions[0];
    assert_eq!(one["current"], true);
    assert!(one["id"].is_i64() && one["created"].is_u64() && one["last_seen"].is_u64());
    assert!(one["agent"].is_string());
}

#[test]
fn register_refuses_bad_input_with_400_and_taken_names_with_409() {
    let s = TestServer::default_config();
    let post = |body| api_post(s.addr, "/api/register", body, None);
    let cases = [
        (json!({"password": PASSWORD}), 400, "bad_request"),
        (json!({"name": 5, "password": PASSWORD}), 400, "bad_request"),
        (
            json!({"name": "Ana", "password": PASSWORD, "invite": 7}),
            400,
            "bad_request",
        ),
        (json!(["Ana"]), 400, "bad_request"),
        (
            json!({"name": "   ", "password": PASSWORD}),
            400,
            "invalid_name",
        ),
        (
            json!({"name": "x".repeat(33), "password": PASSWORD}),
            400,
            "invalid_name",
        ),
        (
            json!({"name": "Ana", "password": "1234567"}),
            400,
            "weak_password",
        ),
        (
            json!({"name": "Ana", "password": "p".repeat(129)}),
            400,
            "weak_password",
        ),
    ];
    for (body, status, code) in cases {
        let r = post(body.clone());
        assert_eq!((r.status, r.code()), (status, code.to_string()), "{body}");
        assert!(r.set_cookie().is_none());
    }
    // Exactly 8 and 128 code points are fine.
    assert_eq!(
        post(json!({"name": "Oito", "password": "çççççççç"})).status,
        201
    );
    assert_eq!(
        post(json!({"name": "Cento", "password": "é".repeat(128)})).status,
        201
    );

    register(s.addr, "Ana", PASSWORD);
    let r = post(json!({"name": "ANA", "password": PASSWORD}));
    assert_eq!((r.status, r.code().as_str()), (409, "name_taken"));
    // A guest online holds the name too.
    let _caio = Client::hello(s.addr, "Caio");
    let r = post(json!({"name": "caio", "password": PASSWORD}));
    assert_eq!((r.status, r.code().as_str()), (409, "name_taken"));
}

#[test]
fn closed_and_invite_only_registration() {
    let s = server_with(|c| c.accounts.registration = Registration::Closed);
    let r = api_post(
        s.addr,
        "/api/register",
        json!({"name": "Ana", "password": PASSWORD}),
        None,
    );
    assert_eq!((r.status, r.code().as_str()), (403, "registration_closed"));

    let dir = TempDir::new("invite");
    let db = dir.file("papo.db");
    // The invite is made on the file first, so the server loads it at start.
    let code = papo::accounts::cli::invite(&db).unwrap();
    let s = server_with(|c| {
        c.db = db.clone();
        c.accounts.registration = Registration::Invite;
    });
    let post = |body| api_post(s.addr, "/api/register", body, None);
    let r = post(json!({"name": "Ana", "password": PASSWORD}));
    assert_eq!((r.status, r.code().as_str()), (403, "bad_invite"));
    let r = post(
        json!({"name": "Ana", "password": PASSWORD, "invite": "0123456789abcdef0123456789abcdef"}),
    );
    assert_eq!((r.status, r.code().as_str()), (403, "bad_invite"));
    let r = post(json!({"name": "Ana", "password": PASSWORD, "invite": code}));
    assert_eq!(r.status, 201, "{:?}", r.json());
    let r = post(json!({"name": "Beto", "password": PASSWORD, "invite": code}));
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "bad_invite"),
        "single use"
    );
}

#[test]
fn login_answers_the_same_for_an_unknown_name_and_a_wrong_password() {
    let s = TestServer::default_config();
    register(s.addr, "Ana", PASSWORD);
    let post = |body| api_post(s.addr, "/api/login", body, None);
    let r = post(json!({"name": "ana", "password": PASSWORD}));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"name": "Ana", "admin": true}));
    assert!(r.set_cookie().unwrap().contains("HttpOnly"));

    let wrong = post(json!({"name": "Ana", "password": "wrong password"}));
    let unknown = post(json!({"name": "Zeca", "password": "wrong password"}));
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.code(), "bad_credentials");
    assert_eq!(wrong.body, unknown.body, "same answer for both");
    assert_eq!(unknown.status, 401);
    assert!(wrong.set_cookie().is_none() && unknown.set_cookie().is_none());

    for body in [
        json!({"name": "Ana"}),
        json!({"name": "Ana", "password": 1}),
        json!("x"),
    ] {
        let r = post(body.clone());
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "bad_request"),
            "{body}"
        );
    }
}

#[test]
fn logout_ends_the_session_and_clears_the_cookie() {
    let s = TestServer::default_config();
    let cookie = register(s.addr, "Ana", PASSWORD);
    let r = api_post(s.addr, "/api/logout", json!({}), Some(&cookie));
    assert_eq!(r.status, 204);
    let cleared = r.set_cookie().unwrap();
    assert!(cleared.starts_with("papo_session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let again = api_get(s.addr, "/api/session", Some(&cookie));
    assert_eq!(
        (again.status, again.code().as_str()),
        (401, "not_signed_in")
    );
    let r = api_post(s.addr, "/api/logout", json!({}), Some(&cookie));
    assert_eq!((r.status, r.code().as_str()), (401, "not_signed_in"));
    let r = api_post(s.addr, "/api/logout", json!({}), None);
    assert_eq!((r.status, r.code().as_str()), (401, "not_signed_in"));
    let r = api_get(s.addr, "/api/session", None);
    assert_eq!((r.status, r.code().as_str()), (401, "not_signed_in"));
    let r = api_get(s.addr, "/api/session", Some("papo_session=00ff"));
    assert_eq!((r.status, r.code().as_str()), (401, "not_signed_in"));
}

#[test]
fn revoke_ends_one_session_or_all_the_others() {
    let s = TestServer::default_config();
    let first = register(s.addr, "Ana", PASSWORD);
    let second = login(s.addr, "Ana", PASSWORD);
    let third = login(s.addr, "Ana", PASSWORD);
    let beto = register(s.addr, "Beto", PASSWORD);
    let list = api_get(s.addr, "/api/session", Some(&first)).json();
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let second_id = api_get(s.addr, "/api/session", Some(&second)).json()["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .clone();

    let revoke = |body, cookie: &str| api_post(s.addr, "/api/sessions/revoke", body, Some(cookie));
    // Another account's session is not yours to end.
    let r = revoke(json!({"id": second_id}), &beto);
    assert_eq!((r.status, r.code().as_str()), (404, "no_such_session"));
    let r = revoke(json!({"id": 12345}), &first);
    assert_eq!((r.status, r.code().as_str()), (404, "no_such_session"));
    for body in [json!({}), json!({"id": "x"}), json!({"others": false})] {
        let r = revoke(body.clone(), &first);
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "bad_request"),
            "{body}"
        );
    }
    assert_eq!(revoke(json!({"id": second_id}), &first).status, 204);
    assert_eq!(api_get(s.addr, "/api/session", Some(&second)).status, 401);
    assert_eq!(api_get(s.addr, "/api/session", Some(&third)).status, 200);

    assert_eq!(revoke(json!({"others": true}), &first).status, 204);
    assert_eq!(api_get(s.addr, "/api/session", Some(&third)).status, 401);
    let mine = api_get(s.addr, "/api/session", Some(&first)).json();
    assert_eq!(mine["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(api_get(s.addr, "/api/session", Some(&beto)).status, 200);
    let r = api_post(
        s.addr,
        "/api/sessions/revoke",
        json!({"others": true}),
        None,
    );
    assert_eq!((r.status, r.code().as_str()), (401, "not_signed_in"));
}

#[test]
fn password_change_checks_the_current_one_and_ends_every_other_session() {
    let s = TestServer::default_config();
    let mine = register(s.addr, "Ana", PASSWORD);
    let other = login(s.addr, "Ana", PASSWORD);
    let change = |body, cookie: Option<&str>| api_post(s.addr, "/api/password", body, cookie);
    let r = change(
        json!({"current": "wrong one!", "new": "a new password"}),
        Some(&mine),
    );
    assert_eq!((r.status, r.code().as_str()), (401, "bad_credentials"));
    let r = change(json!({"current": PASSWORD, "new": "short"}), Some(&mine));
    assert_eq!((r.status, r.code().as_str()), (400, "weak_password"));
    let r = change(json!({"current": PASSWORD}), Some(&mine));
    assert_eq!((r.status, r.code().as_str()), (400, "bad_request"));
    let r = change(json!({"current": PASSWORD, "new": "a new password"}), None);
    assert_eq!((r.status, r.code().as_str()), (401, "not_signed_in"));
    assert_eq!(api_get(s.addr, "/api/session", Some(&other)).status, 200);

    let r = change(
        json!({"current": PASSWORD, "new": "a new password"}),
        Some(&mine),
    );
    assert_eq!(r.status, 204);
    assert_eq!(api_get(s.addr, "/api/session", Some(&mine)).status, 200);
    assert_eq!(api_get(s.addr, "/api/session", Some(&other)).status, 401);
    let old = api_post(
        s.addr,
        "/api/login",
        json!({"name": "Ana", "password": PASSWORD}),
        None,
    );
    assert_eq!(old.status, 401);
    login(s.addr, "Ana", "a new password");
}

#[test]
fn posts_must_be_json_and_pass_the_origin_rule() {
    let s = TestServer::default_config();
    let body = json!({"name": "Ana", "password": PASSWORD}).to_string();
    let r = http_request(
        s.addr,
        "POST",
        "/api/register",
        &[("Content-Type", "text/plain")],
        body.as_bytes(),
    );
    assert_eq!((r.status, r.code().as_str()), (415, "bad_request"));
    let r = http_request(
        s.addr,
        "POST",
        "/api/register",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"name=Ana&password=correct+horse",
    );
    assert_eq!(r.status, 415);
    let r = http_request(s.addr, "POST", "/api/register", &[], body.as_bytes());
    assert_eq!(r.status, 415, "no content type");

    let evil = [
        ("Content-Type", "application/json"),
        ("Origin", "http://evil.example"),
    ];
    let r = http_request(s.addr, "POST", "/api/register", &evil, body.as_bytes());
    assert_eq!((r.status, r.code().as_str()), (403, "forbidden_origin"));
    let r = http_request(s.addr, "GET", "/api/session", &evil[1..], b"");
    assert_eq!((r.status, r.code().as_str()), (403, "forbidden_origin"));
    let null = [("Content-Type", "application/json"), ("Origin", "null")];
    let r = http_request(s.addr, "POST", "/api/register", &null, body.as_bytes());
    assert_eq!(r.status, 403);

    let origin = format!("http://{}", s.addr);
    let own = [
        ("Content-Type", "application/json; charset=utf-8"),
        ("Origin", origin.as_str()),
    ];
    let r = http_request(s.addr, "POST", "/api/register", &own, body.as_bytes());
    assert_eq!(r.status, 201, "{:?}", r.json());
}

#[test]
fn bodies_are_capped_at_16_kib_and_unknown_paths_are_404() {
    let s = TestServer::default_config();
    let big = json!({"name": "Ana", "password": "p".repeat(17 * 1024)}).to_string();
    let r = http_request(
        s.addr,
        "POST",
        "/api/register",
        &[("Content-Type", "application/json")],
        big.as_bytes(),
    );
    assert_eq!(r.status, 413);
    assert_eq!(r.code(), "too_large");
    let r = http_request(
        s.addr,
        "POST",
        "/api/register",
        &[
            ("Content-Type", "application/json"),
            ("Transfer-Encoding", "chunked"),
        ],
        b"0\r\n\r\n",
    );
    assert_eq!(r.status, 411);
    let r = api_post(s.addr, "/api/nothing", json!({}), None);
    assert_eq!((r.status, r.code().as_str()), (404, "not_found"));
    let r = api_get(s.addr, "/api/login", None);
    assert_eq!(r.status, 405);
    let r = api_post(s.addr, "/api/session", json!({}), None);
    assert_eq!(r.status, 405);
    // The rest of the site is untouched.
    assert_eq!(http_get(s.addr, "/healthz").0, 200);
}

#[test]
fn failed_sign_ins_are_limited_per_address_before_any_hashing() {
    let s = server_with(|c| c.accounts.sign_in_failures = 3);
    register(s.addr, "Ana", PASSWORD);
    // Successes cost nothing against the limit.
    for _ in 0..5 {
        login(s.addr, "Ana", PASSWORD);
    }
    let wrong = |name: &str| {
        api_post(
            s.addr,
            "/api/login",
            json!({"name": name, "password": "wrong password"}),
            None,
        )
    };
    for name in ["Ana", "Beto", "Caio"] {
        assert_eq!(wrong(name).status, 401);
    }
    let r = wrong("Davi");
    assert_eq!((r.status, r.code().as_str()), (429, "rate_limited"));
    let retry: u64 = header(&r.head, "retry-after").unwrap().parse().unwrap();
    assert!((1..=180).contains(&retry), "{retry}");
    assert_eq!(r.json()["retry_after"], json!(retry));
    // The right password is refused too: the address is over its limit.
    let r = api_post(
        s.addr,
        "/api/login",
        json!({"name": "Ana", "password": PASSWORD}),
        None,
    );
    assert_eq!(r.status, 429);
    // A header a client sends cannot change its address: the listener replaces it.
    let r = http_request(
        s.addr,
        "POST",
        "/api/login",
        &[
            ("Content-Type", "application/json"),
            ("X-Papo-Client", "203.0.113.9"),
        ],
        json!({"name": "Ana", "password": PASSWORD})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 429);
    // Without --trust-proxy, X-Forwarded-For is ignored.
    let r = http_request(
        s.addr,
        "POST",
        "/api/login",
        &[
            ("Content-Type", "application/json"),
            ("X-Forwarded-For", "203.0.113.9"),
        ],
        json!({"name": "Ana", "password": PASSWORD})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 429);
}

#[test]
fn failed_sign_ins_are_limited_per_account() {
    let s = server_with(|c| c.accounts.sign_in_failures = 0);
    register(s.addr, "Ana", PASSWORD);
    register(s.addr, "Beto", PASSWORD);
    let attempt = |name: &str, password: &str| {
        api_post(
            s.addr,
            "/api/login",
            json!({"name": name, "password": password}),
            None,
        )
    };
    for _ in 0..5 {
        assert_eq!(attempt("Ana", "wrong password").status, 401);
    }
    let r = attempt("ana", PASSWORD);
    assert_eq!((r.status, r.code().as_str()), (429, "rate_limited"));
    assert!(r.json()["retry_after"].as_u64().unwrap() <= 60);
    // Other accounts are not affected, and neither are names without an account (which
    // are limited the same way, so the limit tells nothing about who is registered).
    assert_eq!(attempt("Beto", PASSWORD).status, 200);
    for _ in 0..5 {
        assert_eq!(attempt("Zeca", "wrong password").status, 401);
    }
    assert_eq!(attempt("Zeca", "wrong password").status, 429);
}

#[test]
fn registrations_are_limited_per_address() {
    let s = server_with(|c| c.accounts.registrations_per_hour = 2);
    register(s.addr, "Ana", PASSWORD);
    register(s.addr, "Beto", PASSWORD);
    let r = api_post(
        s.addr,
        "/api/register",
        json!({"name": "Caio", "password": PASSWORD}),
        None,
    );
    assert_eq!((r.status, r.code().as_str()), (429, "rate_limited"));
    assert!(header(&r.head, "retry-after").is_some());
    assert!(r.json()["retry_after"].as_u64().unwrap() >= 1);
}

#[test]
fn a_trusted_proxy_gives_the_client_address_and_https() {
    let s = server_with(|c| {
        c.trust_proxy = true;
        c.accounts.sign_in_failures = 1;
    });
    register(s.addr, "Ana", PASSWORD);
    let login_via = |hops: &str, proto: &str, password: &str| {
        http_request(
            s.addr,
            "POST",
            "/api/login",
            &[
                ("Content-Type", "application/json"),
                ("X-Forwarded-For", hops),
                ("X-Forwarded-Proto", proto),
            ],
            json!({"name": "Ana", "password": password})
                .to_string()
                .as_bytes(),
        )
    };
    // The last hop is the one the proxy saw; a client can only prepend.
    assert_eq!(
        login_via("9.9.9.9, 198.51.100.1", "http", "wrong password").status,
        401
    );
    assert_eq!(login_via("198.51.100.1", "http", PASSWORD).status, 429);
    let r = login_via("9.9.9.9, 198.51.100.2", "https", PASSWORD);
    assert_eq!(r.status, 200);
    assert!(
        r.set_cookie().unwrap().ends_with("; Secure"),
        "{:?}",
        r.set_cookie()
    );
}

#[test]
fn the_admin_makes_single_use_invites() {
    let dir = TempDir::new("admin-invite");
    let db = dir.file("papo.db");
    // The first account, made by the operator's command, is the admin.
    let mut add = std::io::Cursor::new(format!("{PASSWORD}\n"));
    let added =
        papo::accounts::cli::user(&db, &papo::config::UserCommand::Add("Ana".into()), &mut add);
    assert!(added.unwrap().contains("admin"));
    let mut add = std::io::Cursor::new(format!("{PASSWORD}\n"));
    papo::accounts::cli::user(
        &db,
        &papo::config::UserCommand::Add("Beto".into()),
        &mut add,
    )
    .unwrap();
    let s = server_with(|c| {
        c.db = db.clone();
        c.accounts.registration = Registration::Invite;
    });
    let admin = login(s.addr, "Ana", PASSWORD);
    let other = login(s.addr, "Beto", PASSWORD);
    let r = api_post(s.addr, "/api/invites", json!({}), Some(&other));
    assert_eq!((r.status, r.code().as_str()), (403, "forbidden"));
    let r = api_post(s.addr, "/api/invites", json!({}), None);
    assert_eq!((r.status, r.code().as_str()), (401, "not_signed_in"));
    let r = api_post(s.addr, "/api/invites", json!({}), Some(&admin));
    assert_eq!(r.status, 201);
    let code = r.json()["code"].as_str().unwrap().to_string();
    assert!(r.json()["expires"].as_u64().is_some());
    let register = |name: &str| {
        api_post(
            s.addr,
            "/api/register",
            json!({"name": name, "password": PASSWORD, "invite": code}),
            None,
        )
    };
    assert_eq!(register("Caio").status, 201);
    assert_eq!(register("Davi").code(), "bad_invite");
}

#[test]
fn a_client_waiting_for_100_continue_is_told_to_go_on() {
    use std::io::Write;
    let s = TestServer::default_config();
    let body = json!({"name": "Ana", "password": PASSWORD}).to_string();
    let mut stream = raw_connect(s.addr);
    let head = format!(
        "POST /api/register HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        s.addr,
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let (status, _, _) = read_head(&mut stream, WAIT).expect("an interim answer");
    assert_eq!(status, 100);
    stream.write_all(body.as_bytes()).unwrap();
    let (status, head, _) = read_head(&mut stream, WAIT).expect("the final answer");
    assert_eq!(status, 201, "{head}");
}
