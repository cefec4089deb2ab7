//! The page in `ui/` driven in real headless Chromium through the DevTools protocol: two people
//! (Ana and Beto, in separate browser contexts) replay the original project's scenario — room
//! "jogos" with password "123" — plus a wrong password, a DM, the typing indicator, a server
//! restart with reconnect, and screenshots at desktop and phone widths in light and dark.
//!
//! Without Chromium the test prints SKIPPED and passes, unless `CI=true` or
//! `PAPO_REQUIRE_BROWSER=1`, where a missing browser is a failure. `PAPO_CHROMIUM` points at a
//! browser elsewhere. Screenshots: `target/test-artifacts/*.png` (paths printed at the end).

use std::cell::RefCell;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

/// Writes straight to the process's stderr: the test harness captures `eprintln!`, and a
/// SKIPPED browser test or a list of screenshots must be seen even when the test passes.
macro_rules! loud {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

const WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);

// ------------------------------------------------------------------ finding and launching Chromium

/// `PAPO_CHROMIUM` names the browser explicitly (a path that does not exist counts as none);
/// otherwise Debian's /usr/bin/chromium, then `chromium` or `chromium-browser` on PATH.
fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PAPO_CHROMIUM") {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let fixed = Path::new("/usr/bin/chromium");
    if fixed.is_file() {
        return Some(fixed.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|n| dir.join(n)))
        .find(|p| p.is_file())
}

fn browser_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("PAPO_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

/// Owns the Chromium process and its throw-away profile; killing happens in Drop, so a failing
/// assertion anywhere in the test never leaves a browser behind.
struct Chromium {
    child: Child,
    profile: PathBuf,
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn launch_chromium(binary: &Path) -> (Chromium, String) {
    let profile = std::env::temp_dir().join(format!(
        "papo-chromium-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    std::fs::create_dir_all(&profile).expect("create the Chromium profile dir");
    let mut child = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Two pages are driven at once; neither may have its timers throttled as a background tab.
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--remote-debugging-port=0")
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let stderr = child.stderr.take().expect("chromium stderr");
    let guard = Chromium { child, profile };

    // Read stderr on a thread for the whole run: the DevTools line comes first, and the pipe must
    // keep draining afterwards or a chatty Chromium would block on a full pipe.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find("ws://") {
                if line.contains("DevTools listening on") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(line[at..].trim().to_string());
                    }
                }
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("Chromium printed no 'DevTools listening on ws://…' line within 30 s");
    (guard, url)
}

// ------------------------------------------------------------------ the DevTools protocol client

/// One WebSocket to the browser; pages are flattened sessions on it. Events are not needed for
/// driving, except errors worth failing the test for, which are collected.
struct Cdp {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    problems: Vec<String>,
}

impl Cdp {
    fn connect(url: &str) -> Cdp {
        let rest = url.strip_prefix("ws://").expect("a ws:// DevTools URL");
        let host = rest.split('/').next().unwrap();
        let stream = TcpStream::connect(host).expect("connect to DevTools");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let (ws, _) = tungstenite::client(url, stream).expect("DevTools WebSocket handshake");
        Cdp {
            ws,
            next_id: 1,
            problems: Vec::new(),
        }
    }

    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .expect("send to DevTools");
        loop {
            let frame = self.ws.read().expect("read from DevTools");
            let Message::Text(text) = frame else { continue };
            let v: Value = serde_json::from_str(text.as_str()).expect("DevTools sends JSON");
            if v["id"].as_u64() == Some(id) {
                if let Some(err) = v.get("error") {
                    panic!("DevTools {method} failed: {err}");
                }
                return v["result"].clone();
            }
            self.note_event(&v);
        }
    }

    fn note_event(&mut self, v: &Value) {
        let who = v["sessionId"]
            .as_str()
            .unwrap_or("-")
            .get(..6)
            .unwrap_or("-");
        match v["method"].as_str() {
            Some("Runtime.exceptionThrown") => {
                let d = &v["params"]["exceptionDetails"];
                let text = d["exception"]["description"]
                    .as_str()
                    .or(d["text"].as_str())
                    .unwrap_or("?");
                self.problems
                    .push(format!("[{who}] uncaught exception: {text}"));
            }
            Some("Log.entryAdded") => {
                let e = &v["params"]["entry"];
                let (level, source) = (e["level"].as_str(), e["source"].as_str());
                // Failed WebSocket attempts while the server restarts are expected network noise.
                if level == Some("error") && source != Some("network") {
                    let text = e["text"].as_str().unwrap_or("?");
                    self.problems
                        .push(format!("[{who}] console {source:?}: {text}"));
                }
            }
            _ => {}
        }
    }
}

/// A page in its own browser context (separate cookies and storage: a different person).
struct Tab {
    cdp: Rc<RefCell<Cdp>>,
    session: String,
    who: &'static str,
}

impl Tab {
    fn open(cdp: &Rc<RefCell<Cdp>>, who: &'static str, locale: &str) -> Tab {
        let mut c = cdp.borrow_mut();
        let ctx = c.call(None, "Target.createBrowserContext", json!({}));
        let ctx = ctx["browserContextId"].as_str().unwrap().to_string();
        let target = c.call(
            None,
            "Target.createTarget",
            json!({ "url": "about:blank", "browserContextId": ctx }),
        );
        let target = target["targetId"].as_str().unwrap().to_string();
        let attached = c.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target, "flatten": true }),
        );
        let session = attached["sessionId"].as_str().unwrap().to_string();
        drop(c);
        let tab = Tab {
            cdp: cdp.clone(),
            session,
            who,
        };
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            tab.call(domain, json!({}));
        }
        // Both pages act as if focused, so focus and key events behave as for a person at the keyboard.
        tab.call(
            "Emulation.setFocusEmulationEnabled",
            json!({ "enabled": true }),
        );
        // The person's language: navigator.language comes from Accept-Language, Intl from the locale.
        tab.call("Emulation.setLocaleOverride", json!({ "locale": locale }));
        let agent = tab.eval("navigator.userAgent");
        tab.call(
            "Emulation.setUserAgentOverride",
            json!({ "userAgent": agent, "acceptLanguage": locale }),
        );
        tab.viewport(1280, 800, false);
        tab
    }

    fn call(&self, method: &str, params: Value) -> Value {
        self.cdp
            .borrow_mut()
            .call(Some(&self.session), method, params)
    }

    /// Loads the page; every request of the page load must be answered promptly (a stalled
    /// module is a server bug this test exists to catch).
    fn navigate(&self, url: &str) {
        let loaded =
            "document.readyState === 'complete' && !!document.getElementById('login-name')";
        self.call("Page.navigate", json!({ "url": url }));
        if !self.poll(loaded, Duration::from_secs(5)) {
            let pending = self.eval(
                "performance.getEntriesByType('resource').map(e => e.name.replace(location.origin, '')).join(' ')",
            );
            panic!(
                "[{}] the page did not finish loading in 5 s (loaded so far: {pending})",
                self.who
            );
        }
    }

    /// Evaluates an expression (awaiting a promise) and returns its JSON value.
    fn eval(&self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expr, "awaitPromise": true, "returnByValue": true }),
        );
        if let Some(ex) = r.get("exceptionDetails") {
            panic!("[{}] evaluating `{expr}` threw: {ex}", self.who);
        }
        r["result"]["value"].clone()
    }

    /// Polls a JS predicate every 50 ms until it is true or the deadline passes.
    /// Polls a JS predicate every 50 ms for up to `limit`; true once it holds.
    fn poll(&self, predicate: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.eval(&format!("!!({predicate})")) == json!(true) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Polls a JS predicate until it holds; fails the test with a screenshot and the page's text
    /// after 10 s.
    fn wait_for(&self, predicate: &str, what: &str) {
        if self.poll(predicate, WAIT) {
            return;
        }
        let shot = self.capture(&format!("FAILED-{}", self.who));
        let text = self.eval(
            "`readyState: ${document.readyState}\nresources: ${performance.getEntriesByType('resource').map(e => e.name + ' ' + Math.round(e.duration) + 'ms').join(', ')}\n${document.body.innerText.slice(0, 3000)}`",
        );
        panic!(
            "[{}] timed out after {WAIT:?} waiting for {what}\n  predicate: {predicate}\n  screenshot: {}\n  page text:\n{}",
            self.who,
            shot.display(),
            text.as_str().unwrap_or("")
        );
    }

    fn text_of(&self, selector: &str) -> String {
        let expr = format!(
            "document.querySelector({})?.textContent ?? ''",
            js(selector)
        );
        self.eval(&expr).as_str().unwrap_or("").to_string()
    }

    /// A real mouse click at the element's centre, once it is visible and nothing covers it there
    /// (drawers slide in, dialogs open: wait for the page to settle, as a person would).
    fn click(&self, selector: &str) {
        let probe = format!(
            "(() => {{ const el = document.querySelector({s}); if (!el || !el.getClientRects().length) return null;
               el.scrollIntoView({{block: 'nearest'}});
               const r = el.getBoundingClientRect(); const x = r.x + r.width / 2, y = r.y + r.height / 2;
               const hit = document.elementFromPoint(x, y);
               return hit && (el === hit || el.contains(hit)) ? [x, y] : null; }})()",
            s = js(selector)
        );
        self.wait_for(&probe, &format!("{selector} to be clickable"));
        let at = self.eval(&probe);
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": at[0], "y": at[1], "button": "left", "clickCount": 1 }),
            );
        }
    }

    fn focus(&self, selector: &str) {
        self.wait_for(
            &format!(
                "document.querySelector({})?.getClientRects().length > 0",
                js(selector)
            ),
            &format!("{selector} to be visible"),
        );
        self.eval(&format!("document.querySelector({}).focus()", js(selector)));
    }

    /// Types into the focused element as an input method would.
    fn type_text(&self, text: &str) {
        self.call("Input.insertText", json!({ "text": text }));
    }

    fn press(&self, key: &str, code: &str, key_code: u32, text: &str, modifiers: u32) {
        self.call(
            "Input.dispatchKeyEvent",
            json!({ "type": "keyDown", "key": key, "code": code, "windowsVirtualKeyCode": key_code,
                     "text": text, "unmodifiedText": text, "modifiers": modifiers }),
        );
        self.call(
            "Input.dispatchKeyEvent",
            json!({ "type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": key_code,
                     "modifiers": modifiers }),
        );
    }

    fn enter(&self) {
        self.press("Enter", "Enter", 13, "\r", 0);
    }

    fn shift_enter(&self) {
        self.press("Enter", "Enter", 13, "\r", 8);
    }

    fn fill(&self, selector: &str, text: &str) {
        self.focus(selector);
        self.eval(&format!(
            "document.querySelector({}).select()",
            js(selector)
        ));
        self.type_text(text);
    }

    fn viewport(&self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }),
        );
    }

    fn color_scheme(&self, scheme: &str) {
        self.call(
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] }),
        );
    }

    fn screenshot(&self, name: &str) -> PathBuf {
        // Drawers slide: wait for running transitions to end, then two frames for layout and paint.
        self.wait_for(
            "document.getAnimations().every(a => a.playState !== 'running')",
            "animations to finish",
        );
        self.eval(
            "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))",
        );
        self.capture(name)
    }

    /// The screenshot as it is now (also used on failure, so it must not wait for anything).
    fn capture(&self, name: &str) -> PathBuf {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        let png = base64_decode(shot["data"].as_str().expect("screenshot data"));
        let dir = artifacts_dir();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }
}

/// A Rust string as a JS string literal.
fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn artifacts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
    dir
}

fn base64_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue, // padding and line breaks
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

// ------------------------------------------------------------------ the server

fn start_server(port: u16, db: &str) -> papo::Server {
    let config = papo::Config {
        port,
        db: db.into(),
        rate_limit: 0,
        ..Default::default()
    };
    // Right after a shutdown the port can take a moment to be free again.
    let deadline = Instant::now() + WAIT;
    loop {
        match papo::start(config.clone()) {
            Ok(server) => return server,
            Err(e) if Instant::now() < deadline => {
                loud!("start on port {port} failed ({e}); retrying");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("could not start papo on port {port}: {e}"),
        }
    }
}

/// A database file for the run, removed (with SQLite's side files) when the test ends.
struct TempDb(PathBuf);

impl TempDb {
    fn new() -> TempDb {
        let name = format!("papo-browser-{}.db", std::process::id());
        TempDb(std::env::temp_dir().join(name))
    }

    fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

/// Someone on a plain WebSocket (a bot, no browser): says one thing in a room and leaves.
fn bot_says(addr: SocketAddr, name: &str, room: &str, password: &str, text: &str) {
    let stream = TcpStream::connect(addr).expect("bot connects");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let (mut ws, _) =
        tungstenite::client(format!("ws://{addr}/ws"), stream).expect("bot handshake");
    let commands = [
        json!({ "type": "hello", "name": name }),
        json!({ "type": "join", "room": room, "password": password }),
        json!({ "type": "text", "room": room, "text": text, "ref": 1 }),
    ];
    for (command, reply) in commands.iter().zip(["welcome", "joined", "ack"]) {
        ws.send(Message::text(command.to_string())).unwrap();
        loop {
            let Message::Text(frame) = ws.read().expect("bot reads") else {
                continue;
            };
            let v: Value = serde_json::from_str(frame.as_str()).unwrap();
            assert_ne!(v["type"], "error", "bot got {v} for {command}");
            if v["type"] == reply {
                break;
            }
        }
    }
    let _ = ws.close(None);
}

/// Stops the server and checks both pages say they lost it.
fn stop_server(server: papo::Server, tabs: [&Tab; 2]) {
    server.shutdown();
    for tab in tabs {
        tab.wait_for(
            "document.body.dataset.conn === 'offline' && !document.getElementById('conn-banner').hidden",
            "the page to say the connection dropped",
        );
    }
}

fn message_count(tab: &Tab, text: &str) -> Value {
    tab.eval(&format!(
        "[...document.querySelectorAll('#messages .msg .text')].filter(e => e.textContent === {}).length",
        js(text)
    ))
}

// ------------------------------------------------------------------ the scenario

/// Logs in through the form, the way a person does: type the name, press Enter.
fn login(tab: &Tab, name: &str) {
    tab.fill("#login-name", name);
    tab.enter();
    tab.wait_for(
        "document.body.dataset.view === 'app' && document.body.dataset.conn === 'online'",
        &format!("{name} to be connected"),
    );
}

fn send(tab: &Tab, text: &str) {
    tab.focus("#composer-input");
    tab.type_text(text);
    tab.enter();
}

/// Waits until the open conversation shows a message with exactly this text.
fn wait_message(tab: &Tab, text: &str) {
    tab.wait_for(
        &format!(
            "[...document.querySelectorAll('#messages .msg .text')].some(e => e.textContent === {})",
            js(text)
        ),
        &format!("the message {text:?}"),
    );
}

fn wait_system_line(tab: &Tab, text: &str) {
    tab.wait_for(
        &format!(
            "[...document.querySelectorAll('#messages .sys-text')].some(e => e.textContent === {})",
            js(text)
        ),
        &format!("the line {text:?}"),
    );
}

fn open_jogos_with_password(beto: &Tab) {
    beto.click("#nav-lobby");
    beto.wait_for(
        "document.querySelector('.room-row[data-room=\"jogos\"] .room-ico.locked')",
        "jogos listed with a lock",
    );
    beto.click(".room-row[data-room=\"jogos\"]");
    beto.wait_for(
        "document.getElementById('password-dialog').open",
        "the password dialog",
    );
    beto.fill("#pw-input", "123");
    beto.enter();
    beto.wait_for(
        "!document.getElementById('password-dialog').open && document.body.dataset.pane === 'room'",
        "Beto inside jogos",
    );
}

#[test]
fn two_people_chat_in_chromium() {
    let Some(binary) = find_chromium() else {
        let msg = "\n\
            ==================================================================\n\
            SKIPPED tests/browser.rs: Chromium not found (PAPO_CHROMIUM,\n\
            /usr/bin/chromium, or `chromium` on PATH). The page was NOT tested\n\
            in a real browser.\n\
            Install it (apt-get install chromium) to run this test; with CI=true\n\
            or PAPO_REQUIRE_BROWSER=1 a missing Chromium is a failure.\n\
            ==================================================================\n";
        if browser_required() {
            panic!("{msg}");
        }
        loud!("{msg}");
        return;
    };
    let started = Instant::now();
    let db = TempDb::new();
    let server = start_server(0, &db.path());
    let addr: SocketAddr = server.local_addr();
    let url = format!("http://{addr}/");

    let (_chromium, ws_url) = launch_chromium(&binary);
    let cdp = Rc::new(RefCell::new(Cdp::connect(&ws_url)));
    let ana = Tab::open(&cdp, "ana", "pt-BR");
    let beto = Tab::open(&cdp, "beto", "en-US");
    ana.navigate(&url);
    beto.navigate(&url);
    let mut shots = Vec::new();

    // Language: picked from navigator.language, with a visible switch.
    assert_eq!(ana.text_of("#login-title"), "Bate-papo em tempo real");
    assert_eq!(beto.text_of("#login-title"), "Real-time chat");
    // The visible switch changes every word at once (and is remembered).
    beto.eval("(() => { const s = document.querySelector('#login .lang-select'); s.value = 'pt-BR'; s.dispatchEvent(new Event('change')); })()");
    assert_eq!(beto.text_of("#login-title"), "Bate-papo em tempo real");
    assert_eq!(beto.eval("document.documentElement.lang"), json!("pt-BR"));
    beto.eval("(() => { const s = document.querySelector('#login .lang-select'); s.value = 'en'; s.dispatchEvent(new Event('change')); })()");
    assert_eq!(beto.text_of("#login-title"), "Real-time chat");
    shots.push(ana.screenshot("login-desktop-light"));

    // Ana connects, creates "jogos" with password "123" and is inside it.
    login(&ana, "Ana");
    ana.fill("#create-name", "jogos");
    ana.fill("#create-password", "123");
    ana.click("#create-form button[type=submit]");
    ana.wait_for("document.body.dataset.pane === 'room'", "Ana inside jogos");
    assert_eq!(ana.text_of("#conv-title"), "#jogos");
    wait_system_line(&ana, "Você entrou na sala");

    // A name already online (in any case) is an inline error; then Beto connects. The room is
    // listed with a lock; a wrong password is an inline error.
    beto.fill("#login-name", "ANA");
    beto.enter();
    beto.wait_for(
        "!document.getElementById('login-error').hidden",
        "the name-taken error",
    );
    assert_eq!(
        beto.text_of("#login-error"),
        "That name is taken. Pick another one."
    );
    login(&beto, "Beto");
    beto.wait_for(
        "document.querySelector('.room-row[data-room=\"jogos\"] .room-ico.locked')",
        "jogos listed with a lock",
    );
    beto.click(".room-row[data-room=\"jogos\"]");
    beto.wait_for(
        "document.getElementById('password-dialog').open",
        "the password dialog",
    );
    beto.fill("#pw-input", "errada");
    beto.enter();
    beto.wait_for(
        "!document.getElementById('pw-error').hidden",
        "the wrong-password error",
    );
    assert_eq!(beto.text_of("#pw-error"), "Wrong password.");
    beto.fill("#pw-input", "123");
    beto.enter();
    beto.wait_for(
        "!document.getElementById('password-dialog').open && document.body.dataset.pane === 'room'",
        "Beto inside jogos",
    );
    wait_system_line(&ana, "Beto entrou na sala");
    ana.wait_for(
        "[...document.querySelectorAll('#member-list .member-name')].map(e => e.firstChild.textContent).join() === 'Ana,Beto'",
        "Ana and Beto in the member list",
    );

    // Typing indicator, then the message itself, on both sides.
    beto.focus("#composer-input");
    beto.type_text("oi Ana");
    ana.wait_for(
        "document.getElementById('typing').textContent === 'Beto está digitando…'",
        "the typing indicator",
    );
    beto.enter();
    wait_message(&ana, "oi Ana");
    wait_message(&beto, "oi Ana");
    assert_eq!(
        beto.eval("document.querySelector('#messages .msg:last-child').classList.contains('own')"),
        json!(true),
        "own messages are marked"
    );
    ana.wait_for(
        "document.getElementById('typing').textContent === ''",
        "the typing indicator to clear",
    );

    // Markup is text, links are safe, Shift+Enter is a new line.
    let hostile = "<img src=x onerror=alert(1)> olha https://example.com/a?b=1.";
    send(&ana, hostile);
    wait_message(&beto, hostile);
    assert_eq!(
        beto.eval("document.querySelectorAll('#messages img').length"),
        json!(0)
    );
    assert_eq!(
        beto.eval("(() => { const a = document.querySelector('#messages a.link'); return [a.href, a.rel, a.target]; })()"),
        json!(["https://example.com/a?b=1", "noopener noreferrer", "_blank"])
    );
    beto.focus("#composer-input");
    beto.type_text("linha 1");
    beto.shift_enter();
    beto.type_text("linha 2 🎉");
    beto.enter();
    wait_message(&ana, "linha 1\nlinha 2 🎉");
    send(&ana, "bora jogar? 🎮");
    wait_message(&beto, "bora jogar? 🎮");

    // A direct message from the member list; it shows up unread in Beto's sidebar.
    ana.click("#member-list [data-dm=\"Beto\"]");
    ana.wait_for("document.body.dataset.pane === 'dm'", "Ana's DM with Beto");
    send(&ana, "psiu, Beto: é segredo");
    wait_message(&ana, "psiu, Beto: é segredo");
    beto.wait_for(
        "document.querySelector('#dm-convs [data-conv=\"dm:ana\"] .badge')?.textContent === '1'",
        "an unread DM from Ana",
    );
    beto.click("#dm-convs [data-conv=\"dm:ana\"]");
    wait_message(&beto, "psiu, Beto: é segredo");
    send(&beto, "segredo guardado 🤐");
    wait_message(&ana, "segredo guardado 🤐");
    ana.click("#room-convs [data-conv=\"room:jogos\"]");
    beto.click("#room-convs [data-conv=\"room:jogos\"]");
    wait_message(&ana, "bora jogar? 🎮");

    // Screenshots: desktop and phone, light and dark.
    shots.push(ana.screenshot("desktop-light-ana"));
    beto.color_scheme("dark");
    shots.push(beto.screenshot("desktop-dark-beto"));
    ana.viewport(360, 740, true);
    shots.push(ana.screenshot("phone-light-ana"));
    ana.click("#sidebar-open");
    ana.wait_for(
        "document.body.classList.contains('drawer-open')",
        "the drawer",
    );
    shots.push(ana.screenshot("phone-light-drawer"));
    ana.eval("document.activeElement.blur()");
    ana.press("Escape", "Escape", 27, "", 0);
    ana.wait_for(
        "!document.body.classList.contains('drawer-open')",
        "the drawer to close",
    );
    beto.viewport(360, 740, true);
    shots.push(beto.screenshot("phone-dark-beto"));
    beto.click("#sidebar-open");
    beto.click("#nav-lobby");
    beto.wait_for("document.body.dataset.pane === 'lobby'", "Beto's lobby");
    shots.push(beto.screenshot("phone-dark-lobby"));
    beto.click("#sidebar-open");
    beto.click("#room-convs [data-conv=\"room:jogos\"]");
    beto.wait_for(
        "document.body.dataset.pane === 'room'",
        "Beto back in jogos",
    );
    ana.viewport(1280, 800, false);
    beto.viewport(1280, 800, false);

    // History: Beto joins a room with 60 messages, gets the newest 50, scrolls up for the rest.
    ana.click("#nav-lobby");
    ana.fill("#create-name", "arquivo");
    ana.enter();
    ana.wait_for(
        "document.body.dataset.pane === 'room' && document.getElementById('conv-title').textContent === '#arquivo'",
        "Ana inside arquivo",
    );
    ana.focus("#composer-input");
    for i in 1..=60 {
        ana.type_text(&format!("msg {i}"));
        ana.enter();
    }
    wait_message(&ana, "msg 60");
    beto.click("#nav-lobby");
    beto.click(".room-row[data-room=\"arquivo\"]");
    wait_message(&beto, "msg 60");
    let texts = "[...document.querySelectorAll('#messages .msg .text')].map(e => e.textContent)";
    assert_eq!(beto.eval(&format!("{texts}.length")), json!(50));
    assert_eq!(beto.eval(&format!("{texts}[0]")), json!("msg 11"));
    beto.eval("document.getElementById('scroller').scrollTop = 0");
    beto.wait_for(
        &format!("{texts}.length === 60 && !document.getElementById('history-start').hidden"),
        "the older history",
    );
    assert_eq!(beto.eval(&format!("new Set({texts}).size")), json!(60));
    assert_eq!(beto.eval(&format!("{texts}[0]")), json!("msg 1"));
    // Leaving: Beto's sidebar drops the room, Ana sees him go.
    beto.click("#leave-room");
    beto.wait_for(
        "document.body.dataset.pane === 'lobby' && !document.querySelector('[data-conv=\"room:arquivo\"]')",
        "Beto out of arquivo",
    );
    wait_system_line(&ana, "Beto saiu da sala");
    ana.click("#room-convs [data-conv=\"room:jogos\"]");
    beto.click("#room-convs [data-conv=\"room:jogos\"]");

    // Restart 1, same port and database: the rooms survive. The pages say they lost the server,
    // reconnect, rejoin, and show what was said meanwhile exactly once.
    let port = addr.port();
    let before = ana.eval("document.querySelectorAll('#messages .msg').length");
    stop_server(server, [&ana, &beto]);
    shots.push(ana.screenshot("reconnecting-desktop-light"));
    let server = start_server(port, &db.path());
    bot_says(
        addr,
        "Carla",
        "jogos",
        "123",
        "cheguei enquanto vocês estavam fora",
    );
    for tab in [&ana, &beto] {
        tab.wait_for(
            "document.body.dataset.conn === 'online'",
            "the page to reconnect",
        );
        wait_system_line(
            tab,
            if tab.who == "ana" {
                "Reconectado"
            } else {
                "Reconnected"
            },
        );
        wait_message(tab, "cheguei enquanto vocês estavam fora");
        assert_eq!(
            message_count(tab, "bora jogar? 🎮"),
            json!(1),
            "no duplicates after rejoin"
        );
    }
    assert_eq!(
        ana.eval("document.querySelectorAll('#messages .msg').length"),
        json!(before.as_u64().unwrap() + 1),
        "Ana's page holds what it had plus the one message it missed"
    );
    send(&ana, "voltamos!");
    wait_message(&beto, "voltamos!");
    shots.push(ana.screenshot("after-reconnect-desktop-light"));

    // Restart 2, a fresh in-memory server: the rooms are gone. The page says so, drops them, and
    // the people start over.
    stop_server(server, [&ana, &beto]);
    let server = start_server(port, ":memory:");
    ana.wait_for(
        "document.getElementById('main-error-text').textContent === 'As salas jogos e arquivo não existem mais (o servidor foi reiniciado). Elas foram removidas da lista.'",
        "the room-gone notice",
    );
    // Both pages must have found the room gone before Ana makes a new one of the same name.
    beto.wait_for(
        "document.getElementById('main-error-text').textContent === 'Room jogos no longer exists (the server restarted). It was removed from your list.' && !document.querySelector('#room-convs [data-conv=\"room:jogos\"]')",
        "Beto's page to drop the old jogos",
    );
    ana.fill("#create-name", "jogos");
    ana.fill("#create-password", "123");
    ana.enter();
    ana.wait_for(
        "document.body.dataset.pane === 'room'",
        "Ana inside the new jogos",
    );
    shots.push(beto.screenshot("room-gone-desktop-dark"));
    open_jogos_with_password(&beto);
    send(&ana, "de novo!");
    wait_message(&beto, "de novo!");
    send(&beto, "that was quick");
    wait_message(&ana, "that was quick");
    shots.push(beto.screenshot("after-restart-desktop-dark"));

    // Only the name and the language are kept in the browser.
    let stored = "Object.keys(localStorage).sort().join()";
    assert_eq!(ana.eval(stored), json!("papo.name"));
    assert_eq!(beto.eval(stored), json!("papo.lang,papo.name"));

    // The CSP forbids inline style attributes; the page never creates one.
    for tab in [&ana, &beto] {
        assert_eq!(
            tab.eval("document.querySelectorAll('[style]').length"),
            json!(0)
        );
    }
    let problems = std::mem::take(&mut cdp.borrow_mut().problems);
    for path in &shots {
        loud!("screenshot: {}", path.display());
    }
    assert!(
        problems.is_empty(),
        "the pages logged errors:\n{}",
        problems.join("\n")
    );
    server.shutdown();
    loud!("browser test took {:?}", started.elapsed());
}
