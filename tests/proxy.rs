//! The deployment recipe, run for real: the papo binary with `--trust-proxy` behind a real
//! Caddy serving `deploy/Caddyfile` over TLS from Caddy's internal CA, both on 127.0.0.1
//! ports this test picks. A client that trusts only that CA's root registers over https
//! from 127.0.0.2 and gets a `Secure` session cookie, then signs a `wss://` connection in
//! with it from 127.0.0.3. papo must know those addresses, not Caddy's 127.0.0.1.
//!
//! The observable for the address is papo's own log, the operator's view of who did what:
//! "account … registered from 127.0.0.2" and "connection … opened from 127.0.0.3 via
//! 127.0.0.1". It is what `--trust-proxy` changes and what an operator reads; the limits
//! that count by address follow the same `ClientInfo` and are tested with the header
//! directly in tests/accounts_api.rs.
//!
//! Without Caddy the test prints SKIPPED and passes, unless `CI=true` or
//! `PAPO_REQUIRE_PROXY=1`, where a missing Caddy is a failure. `PAPO_CADDY` points at a
//! caddy elsewhere (Debian: `apt-get install caddy`).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::{json, Value};
use socket2::{Domain, Socket, Type};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

/// Writes straight to stderr: the harness captures `eprintln!`, and a SKIPPED proxy test
/// must be seen even when it passes.
macro_rules! loud {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// How long any one wait may take (Caddy makes its CA and a certificate at first start).
const WAIT: Duration = Duration::from_secs(20);

fn find_caddy() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PAPO_CADDY") {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("caddy"))
        .find(|p| p.is_file())
}

fn proxy_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("PAPO_REQUIRE_PROXY").is_ok_and(|v| v == "1")
}

/// A port free on 127.0.0.1 a moment ago (Caddy binds it by itself).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().unwrap().port()
}

/// Every line a child process writes, collected by reader threads.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    fn follow(&self, stream: impl Read + Send + 'static) {
        let lines = self.0.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
    }

    fn all(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }

    /// Waits for a line containing every one of `parts`; panics with everything seen.
    fn wait_for(&self, what: &str, parts: &[&str]) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let found = self
                .0
                .lock()
                .unwrap()
                .iter()
                .find(|l| parts.iter().all(|p| l.contains(p)))
                .cloned();
            if let Some(line) = found {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no line with {parts:?} ({what}) in:\n{}",
                self.all()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A child process killed when dropped, so a failing assertion leaves nothing behind.
struct Running {
    child: Child,
    name: &'static str,
    output: Lines,
}

impl Running {
    fn spawn(name: &'static str, mut command: Command) -> Running {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let output = Lines::default();
        output.follow(child.stdout.take().unwrap());
        output.follow(child.stderr.take().unwrap());
        Running {
            child,
            name,
            output,
        }
    }

    /// Panics, with its output, if the process has ended.
    fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            std::thread::sleep(Duration::from_millis(200));
            panic!("{} exited ({status}):\n{}", self.name, self.output.all());
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!("papo-proxy-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// papo as deployed: the real binary, on loopback, trusting the proxy in front of it.
fn start_papo() -> (Running, SocketAddr) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_papo"));
    command
        .args(["--host", "127.0.0.1", "--port", "0", "--db", ":memory:"])
        .args(["--trust-proxy", "--max-connections-per-ip", "0"])
        .args(["--log-level", "info"]);
    for var in ["HOST", "PORT", "PAPO_DB", "PAPO_LOG", "PAPO_METRICS_TOKEN"] {
        command.env_remove(var);
    }
    let papo = Running::spawn("papo", command);
    let line = papo.output.wait_for("papo's address", &["papo is running"]);
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (papo, addr)
}

/// Caddy running `deploy/Caddyfile` for https://127.0.0.1:PORT in front of `upstream`,
/// with a home of its own in `scratch`. Returns it, its address and its CA's root.
fn start_caddy(
    caddy: &Path,
    scratch: &Path,
    upstream: SocketAddr,
) -> (Running, SocketAddr, PathBuf) {
    let port = free_port();
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/Caddyfile");
    // Test-only global options: certificates from Caddy's own CA (`tls internal` for every
    // site), no admin endpoint or port 80 to collide with other runs, and no attempt to
    // install the CA into the system's trust store. The site itself is the recipe.
    let config = scratch.join("Caddyfile");
    std::fs::write(
        &config,
        format!(
            "{{\n\tadmin off\n\tlocal_certs\n\tskip_install_trust\n\tauto_https disable_redirects\n}}\n\nimport {}\n",
            recipe.display()
        ),
    )
    .unwrap();
    let (data, conf) = (scratch.join("data"), scratch.join("config"));
    let mut command = Command::new(caddy);
    command
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&config)
        .env("HOME", scratch)
        .env("XDG_DATA_HOME", &data)
        .env("XDG_CONFIG_HOME", &conf)
        .env("PAPO_SITE", format!("https://127.0.0.1:{port}"))
        .env("PAPO_UPSTREAM", upstream.to_string());
    let mut running = Running::spawn("caddy", command);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let root = data.join("caddy/pki/authorities/local/root.crt");
    let deadline = Instant::now() + WAIT;
    while !(root.is_file() && TcpStream::connect(addr).is_ok()) {
        running.assert_alive();
        assert!(
            Instant::now() < deadline,
            "caddy did not serve {addr} with its root at {}:\n{}",
            root.display(),
            running.output.all()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The root is written before the site's certificate, which Caddy issues a moment later:
    // a handshake before then is refused with an `internal_error` alert.
    let config = trusting(&root);
    loop {
        let mut tls = tls_connect(&config, IpAddr::from([127, 0, 0, 1]), addr);
        match tls.conn.complete_io(&mut tls.sock) {
            Ok(_) => break,
            Err(e) => {
                running.assert_alive();
                assert!(
                    Instant::now() < deadline,
                    "caddy never completed a TLS handshake on {addr}: {e}\n{}",
                    running.output.all()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    (running, addr, root)
}

/// A TLS client configuration that trusts only `root` (Caddy's internal CA).
fn trusting(root: &Path) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    let cert = CertificateDer::from_pem_file(root).expect("Caddy's root certificate");
    roots.add(cert).expect("a usable root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A TLS connection to `to` from the loopback address `from` (Linux routes all of 127/8 to
/// this machine), verified against `config`'s roots for the name `to.ip()`.
fn tls_connect(config: &Arc<ClientConfig>, from: IpAddr, to: SocketAddr) -> Tls {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::new(from, 0).into())
        .unwrap_or_else(|e| panic!("bind {from}: {e}"));
    socket.connect_timeout(&to.into(), WAIT).unwrap();
    let tcp: TcpStream = socket.into();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    tcp.set_write_timeout(Some(WAIT)).unwrap();
    let name = ServerName::IpAddress(to.ip().into());
    let connection = ClientConnection::new(config.clone(), name).expect("a TLS client");
    StreamOwned::new(connection, tcp)
}

/// An https request with `Connection: close`; the status, the head and the body.
fn https_request(
    config: &Arc<ClientConfig>,
    from: IpAddr,
    to: SocketAddr,
    request_line: &str,
    body: &Value,
) -> (u16, String, String) {
    let mut tls = tls_connect(config, from, to);
    let body = body.to_string();
    let request = format!(
        "{request_line} HTTP/1.1\r\nHost: {to}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes())
        .expect("https request sent");
    let mut answer = Vec::new();
    match tls.read_to_end(&mut answer) {
        Ok(_) => {}
        // A server may close without TLS's close_notify after a complete answer.
        Err(e) if e.kind() == ErrorKind::UnexpectedEof && !answer.is_empty() => {}
        Err(e) => panic!("https answer: {e}"),
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, head.to_string(), body.to_string())
}

#[test]
fn papo_behind_caddy_serves_wss_and_https_and_knows_the_client() {
    let Some(caddy) = find_caddy() else {
        if proxy_required() {
            panic!("Caddy not found (PAPO_CADDY, PATH) and the proxy test is required here");
        }
        loud!(
            "\n\
            ************************************************************************\n\
            SKIPPED tests/proxy.rs: Caddy not found (PAPO_CADDY, or caddy on PATH).\n\
            Install it (apt-get install caddy) to run this test; with CI=true\n\
            or PAPO_REQUIRE_PROXY=1 a missing Caddy is a failure.\n\
            ************************************************************************\n"
        );
        return;
    };
    let scratch = Scratch::new();
    let (mut papo, papo_addr) = start_papo();
    let (mut proxy, proxy_addr, root) = start_caddy(&caddy, &scratch.0, papo_addr);
    let tls = trusting(&root);
    let (ana_addr, wss_addr): (IpAddr, IpAddr) = ([127, 0, 0, 2].into(), [127, 0, 0, 3].into());

    // Register over https from 127.0.0.2: the cookie is Secure, because Caddy said https.
    let (status, head, body) = https_request(
        &tls,
        ana_addr,
        proxy_addr,
        "POST /api/register",
        &json!({"name": "Ana", "password": "senha-forte-1"}),
    );
    assert_eq!(status, 201, "{head}\n{body}");
    let set_cookie = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no Set-Cookie in {head}"));
    let attributes: Vec<&str> = set_cookie.split(';').map(str::trim).collect();
    assert!(attributes.contains(&"Secure"), "{set_cookie}");
    assert!(attributes.contains(&"HttpOnly"), "{set_cookie}");
    let cookie = attributes[0].to_string();
    assert!(cookie.starts_with("papo_session="), "{set_cookie}");
    papo.output.wait_for(
        "the registration with the client's address",
        &["account Ana registered from 127.0.0.2"],
    );

    // The operator's page stops at the proxy.
    let (status, _, body) = https_request(&tls, ana_addr, proxy_addr, "GET /metrics", &json!({}));
    assert_eq!(status, 404, "{body}");
    assert!(!body.contains("papo_"), "{body}");

    // A WebSocket over TLS from 127.0.0.3, signed in by the cookie.
    let stream = tls_connect(&tls, wss_addr, proxy_addr);
    let mut request = format!("wss://{proxy_addr}/ws")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Cookie", cookie.parse().unwrap());
    let (mut ws, response) = tungstenite::client(request, stream)
        .unwrap_or_else(|e| panic!("wss handshake through caddy: {e}"));
    assert_eq!(response.status().as_u16(), 101);
    ws.send(Message::text(json!({"type": "hello"}).to_string()))
        .unwrap();
    let welcome: Value = loop {
        match ws.read().expect("a frame over wss") {
            Message::Text(t) => break serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["name"], "Ana");
    assert_eq!(welcome["account"], true, "{welcome}");

    let opened = papo.output.wait_for(
        "the wss connection with the client's address",
        &["opened from 127.0.0.3 via 127.0.0.1"],
    );
    let conn = opened
        .split("connection ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no connection id in {opened:?}"));
    papo.output.wait_for(
        "the sign-in by cookie",
        &[&format!(
            "connection {conn} signed in to account \"Ana\" (session cookie)"
        )],
    );
    papo.assert_alive();
    proxy.assert_alive();
    let _ = ws.close(None);
}
