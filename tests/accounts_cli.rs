//! The operator's commands (`papo user …`, `papo invite`), run as the real binary on the
//! database file while a server serves from it: their changes reach the running server
//! within a few seconds, ending sessions where they must.

mod common;

use common::*;
use papo::accounts::Registration;
use serde_json::json;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse";
const SIGNED_OUT: u16 = 4001;

/// Runs `papo ARGS --db DB` with `stdin`; returns (success, stdout, stderr).
fn papo(db: &str, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_papo"))
        .args(args)
        .args(["--db", db])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("papo runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn server_on(db: &str, registration: Registration) -> TestServer {
    let mut config = test_config();
    config.db = db.into();
    config.accounts.registration = registration;
    // The tests poll by signing in until a change lands: no failure limit in the way.
    config.accounts.sign_in_failures = 0;
    TestServer::start(config)
}

/// Retries `attempt` until it returns true, for up to `WAIT`.
fn eventually(what: &str, mut attempt: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !attempt() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether the server knows `name` as an account: a guest `hello` with it is refused.
/// (Polling by signing in would count failures against the per-account limit.)
fn registered(addr: std::net::SocketAddr, name: &str) -> bool {
    let mut c = Client::connect(addr);
    let reply = c.request(json!({"type": "hello", "name": name}), json!("probe"));
    reply["code"] == "name_registered"
}

fn login_status(addr: std::net::SocketAddr, name: &str, password: &str) -> u16 {
    api_post(
        addr,
        "/api/login",
        json!({"name": name, "password": password}),
        None,
    )
    .status
}

#[test]
fn user_commands_change_a_running_server() {
    let dir = TempDir::new("cli");
    let db = dir.file("papo.db");
    let s = server_on(&db, Registration::Closed);

    let (ok, out, err) = papo(&db, &["user", "add", "Ana"], &format!("{PASSWORD}\n"));
    assert!(ok, "{err}");
    assert!(out.contains("Ana"), "{out}");
    let (ok, _, err) = papo(&db, &["user", "add", "ana"], &format!("{PASSWORD}\n"));
    assert!(!ok && err.contains("already"), "{err}");
    let (ok, _, err) = papo(&db, &["user", "add", "Beto"], "short\n");
    assert!(!ok && err.contains("8 to 128"), "{err}");
    let (ok, _, _) = papo(&db, &["user", "add", "Beto"], &format!("{PASSWORD}\n"));
    assert!(ok);

    // The running server learns of them within a few seconds.
    eventually("Ana is registered", || registered(s.addr, "Ana"));
    let r = api_post(
        s.addr,
        "/api/login",
        json!({"name": "Ana", "password": PASSWORD}),
        None,
    );
    assert_eq!(
        r.json(),
        json!({"name": "Ana", "admin": true}),
        "the first is admin"
    );
    let cookie = r.cookie();
    let (mut ana, _) = Client::signed_in(s.addr, &cookie);

    let (ok, out, _) = papo(&db, &["user", "list"], "");
    assert!(ok);
    assert_eq!(out, "Ana\tadmin\nBeto\n");

    // A removed admin is no longer admin on the running server.
    let (ok, _, _) = papo(&db, &["user", "admin", "ana", "--off"], "");
    assert!(ok);
    let (ok, _, _) = papo(&db, &["user", "admin", "Beto"], "");
    assert!(ok);
    eventually("Ana is no longer admin", || {
        api_get(s.addr, "/api/session", Some(&cookie)).json()["admin"] == false
    });
    let (_, out, _) = papo(&db, &["user", "list"], "");
    assert_eq!(out, "Ana\nBeto\tadmin\n");

    // A reset password ends the account's sessions and closes its connections.
    let (ok, _, err) = papo(&db, &["user", "passwd", "Ana"], "a brand new one\n");
    assert!(ok, "{err}");
    assert_eq!(ana.expect_closed(WAIT), Some(SIGNED_OUT));
    assert_eq!(api_get(s.addr, "/api/session", Some(&cookie)).status, 401);
    assert_eq!(login_status(s.addr, "Ana", PASSWORD), 401);
    assert_eq!(login_status(s.addr, "Ana", "a brand new one"), 200);

    // A deleted account: its connections close, its name is free for a guest.
    let beto_cookie = login(s.addr, "Beto", PASSWORD);
    let (mut beto, _) = Client::signed_in(s.addr, &beto_cookie);
    let (ok, _, _) = papo(&db, &["user", "del", "beto"], "");
    assert!(ok);
    assert_eq!(beto.expect_closed(WAIT), Some(SIGNED_OUT));
    assert_eq!(
        api_get(s.addr, "/api/session", Some(&beto_cookie)).status,
        401
    );
    let guest = Client::hello(s.addr, "Beto");
    assert_eq!(guest.name, "Beto");
    let (ok, _, err) = papo(&db, &["user", "del", "Zeca"], "");
    assert!(!ok && err.contains("no account"), "{err}");
}

#[test]
fn invite_prints_a_single_use_code_the_running_server_accepts() {
    let dir = TempDir::new("cli-invite");
    let db = dir.file("papo.db");
    let s = server_on(&db, Registration::Invite);
    let (ok, out, err) = papo(&db, &["invite"], "");
    assert!(ok, "{err}");
    let code = out.trim_end_matches('\n');
    assert_eq!(out.lines().count(), 1, "the code alone: {out:?}");
    assert!(
        code.len() >= 32 && code.bytes().all(|b| b.is_ascii_hexdigit()),
        "{code}"
    );
    let register = |name: &str| {
        api_post(
            s.addr,
            "/api/register",
            json!({"name": name, "password": PASSWORD, "invite": code}),
            None,
        )
    };
    eventually("the invite is known", || register("Ana").status == 201);
    let r = register("Beto");
    assert_eq!((r.status, r.code().as_str()), (403, "bad_invite"));
}

#[test]
fn help_names_every_account_flag_and_command() {
    let out = Command::new(env!("CARGO_BIN_EXE_papo"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "--guests",
        "--registration",
        "--session-days",
        "--sign-in-failures",
        "--registrations-per-hour",
        "--trust-proxy",
        "papo user add NAME",
        "papo user passwd NAME",
        "papo user admin NAME [--off]",
        "papo user del NAME",
        "papo user list",
        "papo invite",
    ] {
        assert!(help.contains(word), "{word} missing from --help:\n{help}");
    }
}
