//! `GET /metrics` over real TCP: who may read it (loopback, not through a proxy, or the
//! bearer token), that its counters follow what happens, and `papo healthcheck`'s exit
//! codes against a healthy server, an unhealthy one and none at all.

mod common;

use common::*;
use serde_json::json;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::time::{Duration, Instant};

const TOKEN: &str = "s3cret-metrics-token-0123";

/// `/metrics` with extra request headers: the status and the body as text.
fn scrape(addr: SocketAddr, headers: &[(&str, &str)]) -> (u16, String) {
    let reply = http_request(addr, "GET", "/metrics", headers, b"");
    (
        reply.status,
        String::from_utf8_lossy(&reply.body).into_owned(),
    )
}

/// The value of the sample line `series value` (a name with its labels), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

/// Scrapes until `series` has `want`, or panics after `WAIT` with the last scrape.
fn wait_for(addr: SocketAddr, series: &str, want: f64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, text) = scrape(addr, &[]);
        assert_eq!(status, 200);
        if sample(&text, series) == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{series} never became {want}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn loopback_reads_every_metric_in_the_prometheus_format() {
    let server = TestServer::default_config();
    let reply = http_request(server.addr, "GET", "/metrics", &[], b"");
    assert_eq!(reply.status, 200);
    let content_type = header(&reply.head, "content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = String::from_utf8_lossy(&reply.body);
    for family in [
        "# TYPE papo_connections_open gauge",
        "# TYPE papo_users_online gauge",
        "# TYPE papo_rooms gauge",
        "# TYPE papo_messages_in counter",
        "# TYPE papo_deliveries_out counter",
        "# TYPE papo_sign_ins counter",
        "# TYPE papo_sign_in_failures counter",
        "# TYPE papo_rate_limited counter",
        "# TYPE papo_slow_consumer_drops counter",
        "# TYPE papo_uploads counter",
        "# TYPE papo_upload_bytes counter",
        "# TYPE papo_store_commit_seconds histogram",
        "# TYPE papo_hub_queue_depth gauge",
        "# TYPE papo_moderation_actions counter",
    ] {
        assert!(
            text.lines().any(|l| l == family),
            "no {family:?} in\n{text}"
        );
    }
    // The scrape itself is an HTTP connection being served.
    assert_eq!(
        sample(&text, "papo_connections_open{kind=\"http\"}"),
        Some(1.0)
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
}

#[test]
fn a_request_that_came_through_a_proxy_gets_404() {
    for trust_proxy in [true, false] {
        let server = TestServer::start(papo::Config {
            trust_proxy,
            ..test_config()
        });
        for forwarded in [
            ("X-Forwarded-For", "127.0.0.1"),
            ("X-Forwarded-For", "203.0.113.9"),
            ("Forwarded", "for=203.0.113.9"),
            ("X-Real-IP", "203.0.113.9"),
            ("X-Forwarded-Proto", "https"),
        ] {
            let (status, text) = scrape(server.addr, &[forwarded]);
            assert_eq!(status, 404, "{forwarded:?} trust_proxy={trust_proxy}");
            assert!(!text.contains("papo_"), "{text}");
        }
        // A client cannot claim to be local either: papo sets that header itself.
        let (status, _) = scrape(
            server.addr,
            &[("X-Papo-Local", "1"), ("X-Forwarded-For", "203.0.113.9")],
        );
        assert_eq!(status, 404);
    }
}

#[test]
fn with_a_token_only_its_bearer_reads() {
    let server = TestServer::start(papo::Config {
        metrics_token: Some(TOKEN.into()),
        trust_proxy: true,
        ..test_config()
    });
    let right = format!("Bearer {TOKEN}");
    let wrong = format!("Bearer {TOKEN}x");
    let basic = format!("Basic {TOKEN}");
    assert_eq!(scrape(server.addr, &[]).0, 404, "loopback without a token");
    assert_eq!(scrape(server.addr, &[("Authorization", &wrong)]).0, 404);
    assert_eq!(scrape(server.addr, &[("Authorization", &basic)]).0, 404);
    assert_eq!(scrape(server.addr, &[("Authorization", "Bearer")]).0, 404);
    let (status, text) = scrape(server.addr, &[("Authorization", &right)]);
    assert_eq!(status, 200);
    assert!(text.contains("papo_messages_in_total 0"), "{text}");
    // With the token, where the request came from does not matter.
    let (status, _) = scrape(
        server.addr,
        &[
            ("Authorization", &right),
            ("X-Forwarded-For", "203.0.113.9"),
        ],
    );
    assert_eq!(status, 200);
}

#[test]
fn the_counters_follow_what_happens() {
    let server = TestServer::default_config();
    let (_, before) = scrape(server.addr, &[]);
    assert_eq!(sample(&before, "papo_messages_in_total"), Some(0.0));
    assert_eq!(sample(&before, "papo_users_online"), Some(0.0));

    let mut ana = Client::member(server.addr, "Ana", "sala");
    let mut beto = Client::member(server.addr, "Beto", "sala");
    ana.send(json!({"type": "text", "room": "sala", "text": "oi", "ref": 1}));
    // Beto's join reaches Ana as a presence first.
    let ack = ana.recv_until(|v| v["type"] == "ack");
    assert_eq!(ack["ref"], 1);
    beto.recv_until(|v| v["type"] == "message");

    let (_, after) = scrape(server.addr, &[]);
    assert_eq!(sample(&after, "papo_messages_in_total"), Some(1.0));
    // One copy to each member, the sender's own included.
    assert_eq!(sample(&after, "papo_deliveries_out_total"), Some(2.0));
    assert_eq!(sample(&after, "papo_users_online"), Some(2.0));
    assert_eq!(sample(&after, "papo_rooms"), Some(1.0));
    assert_eq!(
        sample(&after, "papo_connections_open{kind=\"ws\"}"),
        Some(2.0)
    );
    // The ack came after the message's commit, which was timed.
    let commits = sample(&after, "papo_store_commit_seconds_count").unwrap_or(0.0);
    assert!(commits >= 1.0, "{after}");

    beto.send(json!({"type": "dm", "to": "Ana", "text": "psiu"}));
    ana.recv_until(|v| v["type"] == "dm");
    wait_for(server.addr, "papo_messages_in_total", 2.0);
    wait_for(server.addr, "papo_deliveries_out_total", 4.0);

    drop(beto);
    wait_for(server.addr, "papo_users_online", 1.0);
    wait_for(server.addr, "papo_connections_open{kind=\"ws\"}", 1.0);
}

#[test]
fn sign_ins_failures_and_limits_are_counted() {
    let server = TestServer::default_config();
    register(server.addr, "Clara", "senha-boa-123");
    let wrong = api_post(
        server.addr,
        "/api/login",
        json!({"name": "Clara", "password": "senha-errada"}),
        None,
    );
    assert_eq!(wrong.status, 401);
    let right = api_post(
        server.addr,
        "/api/login",
        json!({"name": "Clara", "password": "senha-boa-123"}),
        None,
    );
    assert_eq!(right.status, 200);
    // A bot signs in on the WebSocket with its password, and fails once.
    let mut bot = Client::connect(server.addr);
    bot.expect_error(
        json!({"type": "hello", "name": "Clara", "password": "senha-errada"}),
        "bad_credentials",
    );
    bot.send(json!({"type": "hello", "name": "Clara", "password": "senha-boa-123"}));
    bot.expect_type("welcome");
    let (_, text) = scrape(server.addr, &[]);
    // Registering signs in too.
    assert_eq!(sample(&text, "papo_sign_ins_total"), Some(3.0), "{text}");
    assert_eq!(sample(&text, "papo_sign_in_failures_total"), Some(2.0));

    let server = TestServer::start(papo::Config {
        rate_limit: 1,
        rate_burst: 1,
        ..test_config()
    });
    let mut dani = Client::connect(server.addr);
    for _ in 0..3 {
        dani.send(json!({"type": "list"}));
    }
    dani.expect_error(json!({"type": "list"}), "rate_limited");
    let (_, text) = scrape(server.addr, &[]);
    let limited = sample(&text, "papo_rate_limited_total{kind=\"commands\"}").unwrap_or(0.0);
    assert!(limited >= 1.0, "{text}");
}

/// Runs `papo healthcheck` against `port` on 127.0.0.1; its exit code and output.
fn healthcheck(port: u16) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_papo"))
        .args([
            "healthcheck",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .env_remove("HOST")
        .env_remove("PORT")
        .output()
        .expect("papo runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

#[test]
fn healthcheck_exits_0_for_a_healthy_server_and_1_otherwise() {
    let server = TestServer::default_config();
    let (code, out) = healthcheck(server.addr.port());
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("200"), "{out}");

    // A server that answers, but not 200 (as papo's /healthz does while its database fails).
    let unhealthy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = unhealthy.local_addr().unwrap().port();
    let answering = std::thread::spawn(move || {
        let (mut s, _) = unhealthy.accept().unwrap();
        let mut head = [0u8; 1024];
        let _ = s.read(&mut head);
        let _ = s.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 22\r\n\r\ndatabase unavailable\r\n",
        );
    });
    let (code, out) = healthcheck(port);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("503"), "{out}");
    answering.join().unwrap();

    // Nobody listening at all.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, out) = healthcheck(port);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("cannot connect"), "{out}");
}

#[test]
fn healthcheck_finds_a_server_on_every_interface_through_host_and_port() {
    // As in the container image: HOST=0.0.0.0 and the platform's PORT, no flags.
    let server = TestServer::start(papo::Config {
        host: "0.0.0.0".into(),
        ..test_config()
    });
    let out = Command::new(env!("CARGO_BIN_EXE_papo"))
        .arg("healthcheck")
        .env("HOST", "0.0.0.0")
        .env("PORT", server.addr.port().to_string())
        .output()
        .expect("papo runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("127.0.0.1:{}", server.addr.port())),
        "{text}"
    );
}

#[test]
fn moderation_actions_are_counted_by_action() {
    let server = TestServer::default_config();
    let cookie = register(server.addr, "Ana", "senha-boa-123");
    let (mut ana, _) = Client::signed_in(server.addr, &cookie);
    ana.join("clube", None);
    let mut caio = Client::member(server.addr, "Caio", "clube");
    let (ack, _) = ana.text_ref("clube", "oi", json!("t"));
    let id = ack["id"].clone();
    let edited = ana.request(json!({"type": "edit", "id": id, "text": "olá"}), json!("e"));
    assert_eq!(edited["type"], "edited", "{edited}");
    let kicked = ana.request(
        json!({"type": "kick", "room": "clube", "user": "Caio"}),
        json!("k"),
    );
    assert_eq!(kicked["type"], "kicked", "{kicked}");
    caio.recv_until(|v| v["type"] == "kicked");

    // The hub records an action after queuing its replies, which writers may send first.
    let series = |action: &str| format!("papo_moderation_actions_total{{action=\"{action}\"}}");
    wait_for(server.addr, &series("edit"), 1.0);
    wait_for(server.addr, &series("kick"), 1.0);
    let (_, text) = scrape(server.addr, &[]);
    assert_eq!(sample(&text, &series("ban")), Some(0.0), "{text}");
}

#[test]
fn each_request_on_a_kept_alive_connection_is_judged_by_its_own_headers() {
    let server = TestServer::default_config();
    let mut s = raw_connect(server.addr);
    // Two requests on one connection: the first plain, the second as a proxy forwards it.
    let requests = format!(
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n\
         GET /metrics HTTP/1.1\r\nHost: {addr}\r\nX-Forwarded-For: 203.0.113.9\r\n\
         Connection: close\r\n\r\n",
        addr = server.addr
    );
    s.write_all(requests.as_bytes()).unwrap();
    let mut answers = String::new();
    s.read_to_string(&mut answers).unwrap();
    assert!(answers.starts_with("HTTP/1.1 200"), "{answers}");
    let second = answers
        .split("# EOF\n")
        .nth(1)
        .unwrap_or_else(|| panic!("one answer only:\n{answers}"));
    assert!(second.starts_with("HTTP/1.1 404"), "{second}");
    assert!(!second.contains("papo_"), "{second}");
}

#[test]
fn a_kept_upload_is_counted_with_its_bytes() {
    let dir = TempDir::new("metrics-uploads");
    let server = TestServer::start(files::files_config(&dir));
    let cookie = files::account(server.addr, "Ana");
    let body = b"not a picture, just some bytes of a note\n".repeat(10);
    let reply = files::uploaded(server.addr, &cookie, "nota.txt", &body);
    let size = reply["size"].as_f64().expect("size");
    wait_for(server.addr, "papo_uploads_total", 1.0);
    wait_for(server.addr, "papo_upload_bytes_total", size);
    // A refused upload (no session) is not counted.
    assert_eq!(
        files::upload(server.addr, "papo_session=nope", "x.txt", b"x").status,
        401
    );
    let (_, text) = scrape(server.addr, &[]);
    assert_eq!(sample(&text, "papo_uploads_total"), Some(1.0), "{text}");
}
