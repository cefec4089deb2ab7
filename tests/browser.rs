//! The page in `ui/` driven in real headless Chromium through the DevTools protocol: two people
//! (Ana and Beto, in separate browser contexts) replay the original project's scenario — room
//! "jogos" with password "123" — plus a wrong password, a DM, the typing indicator, a server
//! restart with reconnect, and screenshots at desktop and phone widths in light and dark. Beside
//! the scenario it checks what people noticed in use (issue 13): the list keeps its newest message
//! in view through drawers and columns, focus never falls to <body>, every word follows the
//! language, timestamps have 4.5:1 contrast, emoji are in colour, no stale error after a reconnect.
//!
//! Without Chromium the test prints SKIPPED and passes, unless `CI=true` or
//! `PAPO_REQUIRE_BROWSER=1`, where a missing browser is a failure. `PAPO_CHROMIUM` points at a
//! browser elsewhere. Screenshots: `target/test-artifacts/*.png` (paths printed at the end).

use std::cell::RefCell;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

#[macro_use]
#[path = "common/chromium.rs"]
mod chromium;
use chromium::*;

/// Bytes the current page's load took off the network: the document and every resource.
const TRANSFERRED: &str = "performance.getEntriesByType('navigation')[0].transferSize + \
     performance.getEntriesByType('resource').reduce((sum, e) => sum + e.transferSize, 0)";

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
        TempDb::named("main")
    }

    fn named(tag: &str) -> TempDb {
        let name = format!("papo-browser-{}-{tag}.db", std::process::id());
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

/// Someone on a plain WebSocket who stays connected: owns and sits in rooms for the checks on a
/// big server, so the server's removal of empty rooms leaves them be.
struct Bot {
    ws: WebSocket<TcpStream>,
}

impl Bot {
    fn hello(addr: SocketAddr, name: &str) -> Bot {
        Bot::hello_with(addr, json!({ "type": "hello", "name": name }))
    }

    /// Says this `hello` (a guest's, or an account's with its password) and waits for the welcome.
    fn hello_with(addr: SocketAddr, hello: Value) -> Bot {
        let stream = TcpStream::connect(addr).expect("bot connects");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let (ws, _) =
            tungstenite::client(format!("ws://{addr}/ws"), stream).expect("bot handshake");
        let mut bot = Bot { ws };
        bot.send(hello);
        bot.expect("welcome");
        bot
    }

    fn send(&mut self, command: Value) {
        self.ws.send(Message::text(command.to_string())).unwrap();
    }

    /// Reads until a frame of type `want` (skipping events); an error fails the test.
    fn expect(&mut self, want: &str) -> Value {
        loop {
            let Message::Text(frame) = self.ws.read().expect("bot reads") else {
                continue;
            };
            let v: Value = serde_json::from_str(frame.as_str()).unwrap();
            assert_ne!(v["type"], "error", "bot waiting for {want} got {v}");
            if v["type"] == want {
                return v;
            }
        }
    }

    /// Creates the rooms and joins each right after making it (the server removes rooms that
    /// stand empty), a hundred at a time so no queue fills.
    fn create_and_join(&mut self, rooms: &[String], password: &str) {
        for chunk in rooms.chunks(100) {
            for room in chunk {
                self.send(json!({ "type": "create", "room": room, "password": password }));
                self.send(json!({ "type": "join", "room": room, "password": password }));
            }
            for _ in chunk {
                self.expect("created");
                self.expect("joined");
            }
        }
    }
}

/// One HTTP request to the API, as a client that is not the page (another device, a script):
/// returns the status, the session cookie it was given (`papo_session=…`) if any, and the body.
fn api(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
    cookie: Option<&str>,
) -> (u16, Option<String>, Value) {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(addr).expect("connect for the API");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: papo-test (Linux)\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    if let Some(cookie) = cookie {
        head.push_str(&format!("Cookie: {cookie}\r\n"));
    }
    stream
        .write_all(format!("{head}\r\n{body}").as_bytes())
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).to_string();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let cookie = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        let pair = value.trim().split(';').next()?;
        (name.eq_ignore_ascii_case("set-cookie")
            && pair.starts_with("papo_session=")
            && pair.len() > 13)
            .then(|| pair.to_string())
    });
    (
        status,
        cookie,
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

/// A server for the checks on PROTOCOL 1.1 "Large servers", with its own limits on rooms.
fn start_big_server(max_rooms: usize, rooms_per_connection: u32) -> papo::Server {
    let config = papo::Config {
        port: 0,
        db: ":memory:".into(),
        rate_limit: 0,
        max_rooms,
        rooms_per_connection,
        rooms_per_address: 0,
        remove_empty_rooms_after: Some(Duration::from_secs(3)),
        // The bot reads nothing while the page is driven: no ping may find it silent.
        idle_timeout: Duration::from_secs(600),
        ..Default::default()
    };
    papo::start(config).expect("start the big server")
}

fn room_rows(tab: &Tab) -> Value {
    tab.eval("[...document.querySelectorAll('#room-dir .room-row')].map(e => e.dataset.room)")
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

// ------------------------------------------------------------------ page probes (JS)

/// True when the open conversation shows its newest item in full: scrolled to the end, and the
/// last item's bottom edge inside the list.
const AT_BOTTOM: &str = "(() => { const s = document.getElementById('scroller');
    const last = document.querySelector('#messages > li:last-child');
    return s.clientHeight > 0 && s.scrollHeight - s.scrollTop - s.clientHeight < 2
      && (!last || last.getBoundingClientRect().bottom <= s.getBoundingClientRect().bottom + 1); })()";

/// WCAG contrast ratios, as the browser computed the colours from the CSS: each element's text
/// colour (its alpha times every ancestor's opacity) over the backgrounds behind it, composited
/// down to the first opaque one. Returns {name: ratio} for the first element matching each selector.
const CONTRAST: &str = r#"(() => {
  const parse = (c) => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) throw new Error('colour ' + c);
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const over = (top, under) => [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3])).concat(1);
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    return layers.reverse().reduce((under, top) => over(top, under), [255, 255, 255, 1]);
  };
  const opacity = (el) => { let o = 1; for (let e = el; e; e = e.parentElement) o *= Number(getComputedStyle(e).opacity); return o; };
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const ratio = (sel) => { const el = document.querySelector(sel); if (!el) return 'missing';
    const bg = background(el); const fg = parse(getComputedStyle(el).color); fg[3] *= opacity(el);
    const [a, b] = [lum(over(fg, bg)), lum(bg)].sort((x, y) => y - x);
    return Math.round((a + 0.05) / (b + 0.05) * 100) / 100; };
  return { own_time: ratio('.msg.own .time'), other_time: ratio('.msg:not(.own) .time'), system_time: ratio('.sys .time'),
           name: ratio('.msg .from'), subtitle: ratio('#conv-sub') };
})()"#;

/// How many strongly coloured pixels "☕" has when drawn with the fonts of the message that holds
/// it. A monochrome glyph drawn in black has none: the test that emoji inside text are in colour.
/// (Ubuntu's and Debian's text fonts have a black-and-white ☕, which the stack must not pick.)
const EMOJI_COLOUR: &str = r#"(async () => {
  const el = [...document.querySelectorAll('#messages .msg .text')].find((e) => e.textContent.includes('☕'));
  const family = getComputedStyle(el).fontFamily;
  await document.fonts.load(`32px ${family}`, '☕');
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 48;
  const g = canvas.getContext('2d');
  g.font = `32px ${family}`;
  g.textBaseline = 'top';
  g.fillStyle = '#000';
  g.fillText('☕', 4, 4);
  const d = g.getImageData(0, 0, 48, 48).data;
  let coloured = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 128 && Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 40) coloured += 1;
  }
  return coloured;
})()"#;

/// Every string in both languages, with the same {placeholders} and plural forms; the gaps found.
const I18N_GAPS: &str = r#"import('/i18n.js').then(({ STRINGS }) => {
  const [pt, en] = [STRINGS['pt-BR'], STRINGS.en];
  const holes = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort().join();
  const gaps = [];
  for (const k of new Set([...Object.keys(pt), ...Object.keys(en)])) {
    if (!(k in pt) || !(k in en)) gaps.push(`${k}: missing in ${k in pt ? 'en' : 'pt-BR'}`);
    else if (holes(pt[k]) !== holes(en[k])) gaps.push(`${k}: placeholders differ`);
    else if (pt[k].includes('|') !== en[k].includes('|')) gaps.push(`${k}: plural forms differ`);
  }
  return gaps;
})"#;

/// Portuguese left on screen after switching to English: visible text (message texts aside, they
/// are what people wrote), and the labels, tooltips and placeholders of visible elements.
const PORTUGUESE_LEFT: &str = r#"(() => {
  const words = ['Conectado', 'Sem conexão', 'Sair da sala', 'Desconectar', 'pessoas', 'Participantes', 'Mensagem',
    'Explorar', 'Suas salas', 'Você', 'você', 'Hoje', 'Fechar', 'Enviar', 'Início', 'Participando', 'Novas', 'Abrir menu'];
  const found = [];
  const look = (where, text) => { for (const w of words) if (text.includes(w)) found.push(`${where}: ${text.trim().slice(0, 80)}`); };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (el.closest('.msg .text, #announcer') || !el.checkVisibility()) continue;
    look('text', n.textContent);
  }
  for (const el of document.querySelectorAll('[aria-label], [title], [placeholder]')) {
    if (!el.checkVisibility()) continue;
    for (const a of ['aria-label', 'title', 'placeholder']) if (el.getAttribute(a)) look(a, el.getAttribute(a));
  }
  return found;
})()"#;

/// Whether the machine has a colour-emoji font (CI installs Debian's fonts-noto-color-emoji).
fn colour_emoji_font_installed() -> bool {
    let listed = Command::new("fc-list")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains("Color Emoji"))
        .unwrap_or(false);
    listed || Path::new("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf").is_file()
}

/// The i-th message of the "arquivo" room. The newest are long: they wrap onto more lines when the
/// members column narrows the list, which is what pushed the newest message below the edge.
fn archive_text(i: u32) -> String {
    if i > 55 {
        format!(
            "msg {i}: {}",
            "uma mensagem comprida, que ocupa várias linhas quando a lista fica estreita; "
                .repeat(3)
        )
        .trim_end()
        .to_string()
    } else {
        format!("msg {i}")
    }
}

fn set_language(tab: &Tab, lang: &str) {
    tab.eval(&format!(
        "(() => {{ const s = document.querySelector('#app .lang-select'); s.value = {}; s.dispatchEvent(new Event('change')); }})()",
        js(lang)
    ));
}

fn active_id(tab: &Tab) -> Value {
    tab.eval("document.activeElement?.id ?? ''")
}

#[test]
fn two_people_chat_in_chromium() {
    let Some(binary) = chromium_or_skip("tests/browser.rs", "The page was") else {
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
    // A second visit (issue 11): the page names its assets by content hash and they are
    // cached as immutable, so the visit costs the page's revalidation alone. Resource
    // Timing's transferSize counts each response's header and body bytes as they came
    // over the wire (0 from the cache).
    let first = ana.eval(TRANSFERRED).as_u64().unwrap();
    ana.eval("window.firstVisit = true");
    ana.navigate(&url);
    ana.wait_for(
        "!window.firstVisit && document.readyState === 'complete'",
        "the second visit",
    );
    let second = ana.eval(TRANSFERRED).as_u64().unwrap();
    loud!("page load: first visit {first} bytes, second visit {second} bytes");
    assert!(second < 2048, "a second visit downloads {second} bytes");
    beto.navigate(&url);
    let mut shots = Vec::new();

    // Language: picked from navigator.language, with a visible switch; both languages complete.
    assert_eq!(ana.eval(I18N_GAPS), json!([]), "pt-BR and en differ");
    assert_eq!(ana.text_of("#login-title"), "Bate-papo em tempo real");
    assert_eq!(beto.text_of("#login-title"), "Real-time chat");
    // The visible switch changes every word at once (and is remembered).
    beto.eval("(() => { const s = document.querySelector('#login .lang-select'); s.value = 'pt-BR'; s.dispatchEvent(new Event('change')); })()");
    assert_eq!(beto.text_of("#login-title"), "Bate-papo em tempo real");
    assert_eq!(beto.eval("document.documentElement.lang"), json!("pt-BR"));
    beto.eval("(() => { const s = document.querySelector('#login .lang-select'); s.value = 'en'; s.dispatchEvent(new Event('change')); })()");
    assert_eq!(beto.text_of("#login-title"), "Real-time chat");
    // Common names get different avatar colours (eight names, sixteen colours).
    assert!(
        ana.eval("import('/render.js').then((m) => new Set(['Ana', 'Beto', 'Carla', 'Caio', 'Maria', 'João', 'Pedro', 'Lucas'].map(m.colorClass)).size)")
            .as_u64()
            .unwrap()
            >= 7,
        "common names share avatar colours"
    );
    shots.push(ana.screenshot("login-desktop-light"));

    // Installable on a phone's home screen: the manifest parses, and Chromium finds nothing
    // that keeps the page from being installed (icons of the sizes it wants, served as PNG).
    let manifest = ana.call("Page.getAppManifest", json!({}));
    assert_eq!(manifest["errors"], json!([]), "manifest errors: {manifest}");
    assert!(
        manifest["url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/manifest.webmanifest")),
        "no manifest linked: {manifest}"
    );
    let home = Tab::open_in_profile(&cdp, "home", "pt-BR");
    home.navigate(&url);
    let installable = home.call("Page.getInstallabilityErrors", json!({}));
    assert_eq!(
        installable["installabilityErrors"],
        json!([]),
        "the page cannot be installed"
    );
    home.call("Page.close", json!({}));

    // Ana connects, creates "jogos" with password "123" and is inside it. The skip link leads to
    // the message box, so it exists only where there is one.
    login(&ana, "Ana");
    let skip_link_shown =
        "getComputedStyle(document.querySelector('.skip-link')).display !== 'none'";
    assert_eq!(
        ana.eval(skip_link_shown),
        json!(false),
        "no skip link in the lobby"
    );
    ana.fill("#create-name", "jogos");
    ana.fill("#create-password", "123");
    ana.click("#create-form button[type=submit]");
    ana.wait_for("document.body.dataset.pane === 'room'", "Ana inside jogos");
    assert_eq!(ana.text_of("#conv-title"), "#jogos");
    assert_eq!(
        ana.eval(skip_link_shown),
        json!(true),
        "a skip link in a room"
    );
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
    // Focus is in the room's message box, not lost to <body> with the closed dialog.
    beto.wait_for(
        "document.activeElement === document.getElementById('composer-input')",
        "focus in the message box after the password dialog",
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
    send(&beto, "um café antes? ☕");
    wait_message(&ana, "um café antes? ☕");

    // Emoji inside text are drawn in colour, not by the text font's black-and-white glyphs.
    if colour_emoji_font_installed() {
        let coloured = ana.eval(EMOJI_COLOUR).as_u64().unwrap();
        assert!(
            coloured > 20,
            "☕ in a message is drawn without colour ({coloured} coloured pixels)"
        );
    } else if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI must install a colour-emoji font (Debian: fonts-noto-color-emoji)");
    } else {
        loud!("NOTE: no colour-emoji font here (fonts-noto-color-emoji): emoji colour not checked");
    }

    // A direct message from the member list; it shows up unread in Beto's sidebar, and opens at a
    // "new messages" divider above it.
    ana.click("#member-list [data-dm=\"Beto\"]");
    ana.wait_for("document.body.dataset.pane === 'dm'", "Ana's DM with Beto");
    assert_eq!(
        ana.text_of("#conv-sub"),
        "Online",
        "Beto is in a room with Ana"
    );
    assert_eq!(
        ana.text_of("#history-start"),
        "Mensagens diretas com Beto. Não ficam guardadas: somem quando você sai ou recarrega a página."
    );
    send(&ana, "psiu, Beto: é segredo");
    wait_message(&ana, "psiu, Beto: é segredo");
    beto.wait_for(
        "document.querySelector('#dm-convs [data-conv=\"dm:ana\"] .badge')?.textContent === '1'",
        "an unread DM from Ana",
    );
    beto.click("#dm-convs [data-conv=\"dm:ana\"]");
    wait_message(&beto, "psiu, Beto: é segredo");
    assert_eq!(
        beto.eval("document.querySelector('#messages .new-sep + .msg .text')?.textContent"),
        json!("psiu, Beto: é segredo"),
        "the divider sits above the first unread message"
    );
    assert_eq!(beto.text_of("#messages .new-sep"), "New messages");
    send(&beto, "segredo guardado 🤐");
    wait_message(&ana, "segredo guardado 🤐");
    beto.click("#room-convs [data-conv=\"room:jogos\"]");
    beto.click("#dm-convs [data-conv=\"dm:ana\"]");
    wait_message(&beto, "segredo guardado 🤐");
    assert_eq!(
        beto.eval("document.querySelectorAll('#messages .new-sep').length"),
        json!(0),
        "read once, the divider is gone"
    );
    ana.click("#room-convs [data-conv=\"room:jogos\"]");
    beto.click("#room-convs [data-conv=\"room:jogos\"]");
    wait_message(&ana, "bora jogar? 🎮");

    // English: every word on screen follows the switch, the connection status included.
    set_language(&ana, "en");
    assert_eq!(ana.text_of("#conn-status"), "Connected");
    assert_eq!(ana.text_of("#conv-sub"), "2 people");
    assert_eq!(
        ana.eval(PORTUGUESE_LEFT),
        json!([]),
        "Portuguese left after switching to English"
    );
    set_language(&ana, "pt-BR");
    assert_eq!(ana.text_of("#conn-status"), "Conectado");

    // Screenshots: desktop, light and dark; the timestamps' contrast as computed from the CSS.
    shots.push(ana.screenshot("desktop-light-ana"));
    beto.color_scheme("dark");
    shots.push(beto.screenshot("desktop-dark-beto"));
    for (tab, scheme) in [(&ana, "light"), (&beto, "dark")] {
        let ratios = tab.eval(CONTRAST);
        for (what, ratio) in ratios.as_object().unwrap() {
            assert!(
                ratio.as_f64().is_some_and(|r| r >= 4.5),
                "{scheme}: {what} contrast {ratio} is below 4.5:1 (all: {ratios})"
            );
        }
    }

    // Below the wide layout the members panel is an overlay: focus goes into it, Esc closes it
    // and gives focus back to its button.
    beto.viewport(1000, 800, false);
    beto.wait_for(
        "document.getElementById('members-panel').hidden",
        "the panel closed at medium width",
    );
    beto.click("#toggle-members");
    beto.wait_for(
        "document.activeElement === document.getElementById('members-close')",
        "focus inside the members overlay",
    );
    shots.push(beto.screenshot("medium-dark-members"));
    beto.press("Escape", "Escape", 27, "", 0);
    beto.wait_for(
        "document.getElementById('members-panel').hidden && document.activeElement === document.getElementById('toggle-members')",
        "the overlay closed, focus on its button",
    );

    // The phone (390×844, touch), light and dark. The header is at the top of the screen (nothing
    // left of the desktop grid pushes it down).
    ana.viewport(390, 844, true);
    ana.wait_for(
        "document.querySelector('.main-head').getBoundingClientRect().top === 0",
        "the header at the top on the phone",
    );
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
    // On a touch screen Enter makes a new line (no Shift key there); the button sends.
    ana.focus("#composer-input");
    ana.type_text("primeira linha");
    ana.enter();
    ana.type_text("segunda linha");
    assert_eq!(
        ana.eval("document.getElementById('composer-input').value"),
        json!("primeira linha\nsegunda linha")
    );
    assert_eq!(
        ana.text_of("#composer-help"),
        "Enter quebra a linha; o botão Enviar envia."
    );
    ana.click("#send");
    wait_message(&beto, "primeira linha\nsegunda linha");

    beto.viewport(390, 844, true);
    shots.push(beto.screenshot("phone-dark-beto"));
    beto.click("#sidebar-open");
    beto.click("#nav-lobby");
    beto.wait_for("document.body.dataset.pane === 'lobby'", "Beto's lobby");
    assert_eq!(
        beto.text_of(".room-row[data-room=\"jogos\"] .chip"),
        "Joined"
    );
    // Fields of 16 px or more: smaller ones make iOS zoom the page on focus.
    let small_fields = "[...document.querySelectorAll('input, textarea, select')].filter((e) => e.checkVisibility() && parseFloat(getComputedStyle(e).fontSize) < 16).map((e) => e.id || e.className)";
    assert_eq!(beto.eval(small_fields), json!([]), "fields under 16px");
    shots.push(beto.screenshot("phone-dark-lobby"));
    // A long room name is shown whole on a phone: the header's buttons are icons there.
    let long_name = "Campeonato regional de futebol de várzea 2025 ab";
    beto.fill("#create-name", long_name);
    beto.enter();
    beto.wait_for(
        "document.body.dataset.pane === 'room'",
        "Beto inside the long-named room",
    );
    assert_eq!(beto.text_of("#conv-title"), format!("#{long_name}"));
    assert_eq!(
        beto.eval("(() => { const t = document.getElementById('conv-title'); return t.scrollWidth <= t.clientWidth + 1 && t.scrollHeight <= t.clientHeight + 1; })()"),
        json!(true),
        "the long name is cut"
    );
    assert_eq!(
        beto.eval(&format!(
            "document.querySelector('#room-convs .conv-name[title={}]') !== null",
            js(long_name)
        )),
        json!(true),
        "a name the sidebar cuts has a tooltip"
    );
    assert_eq!(beto.eval(small_fields), json!([]), "fields under 16px");
    shots.push(beto.screenshot("phone-dark-long-room"));
    beto.click("#leave-room");
    beto.wait_for(
        "document.body.dataset.pane === 'lobby'",
        "Beto out of the long-named room",
    );
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
        ana.type_text(&archive_text(i));
        ana.enter();
    }
    wait_message(&ana, &archive_text(60));
    beto.click("#nav-lobby");
    beto.click(".room-row[data-room=\"arquivo\"]");
    wait_message(&beto, &archive_text(60));
    // The members column opens with the room and narrows the list: the newest message stays in view.
    beto.wait_for(
        &format!("!document.getElementById('members-panel').hidden && {AT_BOTTOM}"),
        "the newest message in view with the members column open",
    );
    let texts = "[...document.querySelectorAll('#messages .msg .text')].map(e => e.textContent)";
    assert_eq!(beto.eval(&format!("{texts}.length")), json!(50));
    assert_eq!(beto.eval(&format!("{texts}[0]")), json!(archive_text(11)));
    beto.eval("document.getElementById('scroller').scrollTop = 0");
    beto.wait_for(
        &format!("{texts}.length === 60 && !document.getElementById('history-start').hidden"),
        "the older history",
    );
    assert_eq!(beto.eval(&format!("new Set({texts}).size")), json!(60));
    assert_eq!(beto.eval(&format!("{texts}[0]")), json!(archive_text(1)));
    // Away from the bottom there is a way back, which says when something new arrived there.
    beto.eval("document.getElementById('scroller').scrollTop = 0");
    beto.wait_for(
        "!document.getElementById('jump-latest').hidden && document.getElementById('jump-latest').textContent.trim() === 'Jump to latest'",
        "the jump-to-latest button",
    );
    send(&ana, "msg 61");
    beto.wait_for(
        "document.getElementById('jump-latest').textContent.trim() === 'New messages'",
        "the button to say there are new messages",
    );
    shots.push(beto.screenshot("desktop-dark-jump-latest"));
    beto.click("#jump-latest");
    beto.wait_for(
        &format!("document.getElementById('jump-latest').hidden && {AT_BOTTOM}"),
        "the newest message after jumping",
    );
    // Leaving: Beto's sidebar drops the room, Ana sees him go.
    beto.click("#leave-room");
    beto.wait_for(
        "document.body.dataset.pane === 'lobby' && !document.querySelector('[data-conv=\"room:arquivo\"]')",
        "Beto out of arquivo",
    );
    wait_system_line(&ana, "Beto saiu da sala");

    // Beto writes Ana more than a phone screen of DMs while she is in arquivo.
    beto.click("#dm-convs [data-conv=\"dm:ana\"]");
    beto.focus("#composer-input");
    for i in 1..=25 {
        beto.type_text(&format!("dm {i}"));
        beto.enter();
    }
    wait_message(&beto, "dm 25");
    ana.wait_for(
        "document.querySelector('#dm-convs [data-conv=\"dm:beto\"] .badge')?.textContent === '25'",
        "25 unread DMs from Beto",
    );

    // On the phone the drawer opens over the conversation without moving it, and a conversation
    // picked in the drawer opens at its newest message.
    ana.viewport(390, 844, true);
    ana.wait_for(AT_BOTTOM, "arquivo at its newest message on the phone");
    ana.click("#sidebar-open");
    ana.wait_for(
        "document.body.classList.contains('drawer-open')",
        "the drawer",
    );
    ana.wait_for(
        &format!("document.getElementById('scroller').clientHeight < 844 && {AT_BOTTOM}"),
        "the list in place under the open drawer",
    );
    ana.click("#room-convs [data-conv=\"room:jogos\"]");
    ana.wait_for(
        &format!("document.body.dataset.pane === 'room' && document.getElementById('conv-title').textContent === '#jogos' && {AT_BOTTOM}"),
        "jogos at its newest message",
    );
    ana.click("#sidebar-open");
    ana.click("#room-convs [data-conv=\"room:arquivo\"]");
    ana.wait_for(
        &format!("document.getElementById('conv-title').textContent === '#arquivo' && {AT_BOTTOM}"),
        "arquivo at its newest message",
    );
    shots.push(ana.screenshot("phone-light-arquivo"));
    // More unread than fits: the DM opens at the divider, with the way down to the newest.
    ana.click("#sidebar-open");
    ana.click("#dm-convs [data-conv=\"dm:beto\"]");
    wait_message(&ana, "dm 25");
    ana.wait_for(
        "(() => { const d = document.querySelector('#messages .new-sep'); const s = document.getElementById('scroller').getBoundingClientRect();
                  if (!d) return false; const top = d.getBoundingClientRect().top; return top >= s.top && top < s.top + 80; })()",
        "the DM open at its 'new messages' divider",
    );
    assert_eq!(
        ana.eval("document.querySelector('#messages .new-sep + .msg .text')?.textContent"),
        json!("dm 1")
    );
    assert_eq!(
        ana.eval("document.getElementById('jump-latest').hidden ? '' : document.getElementById('jump-latest').textContent.trim()"),
        json!("Novas mensagens")
    );
    shots.push(ana.screenshot("phone-light-dm-unread"));
    ana.viewport(1280, 800, false);

    // A DM to someone in none of Ana's rooms: the page says it cannot tell whether they are online,
    // and once the server says they are not, it says so and keeps what she wrote. Esc closes the
    // "new direct message" form and gives focus back to its button.
    ana.click("#new-dm");
    ana.fill("#dm-name", "Zé");
    ana.press("Escape", "Escape", 27, "", 0);
    ana.wait_for(
        "document.getElementById('dm-form').hidden && document.activeElement === document.getElementById('new-dm')",
        "Esc to close the DM form",
    );
    ana.click("#new-dm");
    ana.fill("#dm-name", "Zé");
    ana.enter();
    ana.wait_for("document.body.dataset.pane === 'dm'", "Ana's DM with Zé");
    assert_eq!(
        ana.text_of("#dm-notice"),
        "Vocês não estão numa mesma sala, então não dá para ver se Zé está online. Se não estiver, a mensagem não chega."
    );
    send(&ana, "oi Zé");
    ana.wait_for(
        "document.getElementById('dm-notice').classList.contains('is-warning')",
        "the offline warning",
    );
    assert_eq!(
        ana.text_of("#dm-notice"),
        "Zé não está online. Mensagens diretas só chegam a quem está online."
    );
    assert_eq!(ana.text_of("#conv-sub"), "Offline");
    assert_eq!(
        ana.eval("document.getElementById('composer-input').value"),
        json!("oi Zé"),
        "what Ana wrote is kept"
    );
    shots.push(ana.screenshot("desktop-light-dm-offline"));
    ana.click("#close-dm");
    ana.click("#room-convs [data-conv=\"room:jogos\"]");
    beto.click("#room-convs [data-conv=\"room:jogos\"]");
    ana.wait_for(AT_BOTTOM, "jogos at its newest message");

    // Restart 1, same port and database: the rooms survive. The pages say they lost the server
    // (over the conversation, not pushing it), keep what is typed meanwhile, reconnect, rejoin,
    // and show what was said meanwhile exactly once.
    let port = addr.port();
    let before = ana.eval("document.querySelectorAll('#messages .msg').length");
    let list_height = ana.eval("document.getElementById('scroller').clientHeight");
    stop_server(server, [&ana, &beto]);
    wait_system_line(&ana, "Conexão perdida");
    assert_eq!(
        ana.eval("document.getElementById('scroller').clientHeight"),
        list_height,
        "the banner must not push the conversation"
    );
    ana.wait_for(AT_BOTTOM, "the 'connection lost' line in view");
    assert_eq!(
        ana.eval("document.getElementById('conn-retry').hidden"),
        json!(false),
        "a 'retry now' button while waiting"
    );
    send(&ana, "escrito sem conexão");
    ana.wait_for(
        "!document.getElementById('composer-error').hidden",
        "the offline error",
    );
    assert_eq!(
        ana.eval("document.getElementById('composer-input').value"),
        json!("escrito sem conexão")
    );
    shots.push(ana.screenshot("reconnecting-desktop-light"));
    let server = start_server(port, &db.path());
    bot_says(
        addr,
        "Carla",
        "jogos",
        "123",
        "cheguei enquanto vocês estavam fora",
    );
    // Ana does not wait for the back-off: she presses "retry now".
    ana.eval(
        "(() => { const b = document.getElementById('conn-retry'); if (!b.hidden) b.click(); })()",
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
    // No stale "no connection" error once connected; what she typed is still there to send.
    ana.wait_for(
        "document.getElementById('composer-error').hidden",
        "the offline error to go",
    );
    assert_eq!(
        ana.eval("document.getElementById('composer-input').value"),
        json!("escrito sem conexão")
    );
    // Beto never left: his return after the restart is not news to Ana.
    ana.wait_for(
        "[...document.querySelectorAll('#member-list .member-name')].some(e => e.firstChild.textContent === 'Beto')",
        "Beto back in Ana's member list",
    );
    assert_eq!(
        ana.eval("[...document.querySelectorAll('#messages .sys-text')].filter(e => e.textContent === 'Beto entrou na sala').length"),
        json!(1),
        "Beto's return after the restart announced as a join"
    );
    // The outage lines went to the conversation on screen only.
    assert_eq!(
        ana.eval("import('/app.js').then(({ store }) => [...store.convs.values()].filter(c => c.items.some(i => i.key === 'sysDisconnected' || i.key === 'sysReconnected')).map(c => c.id))"),
        json!(["room:jogos"])
    );
    ana.focus("#composer-input");
    ana.enter();
    wait_message(&beto, "escrito sem conexão");
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

    // Logging out asks first; Esc keeps Ana in and gives focus back to the button.
    ana.click("#logout");
    ana.wait_for(
        "document.getElementById('logout-dialog').open",
        "the log-out question",
    );
    shots.push(ana.screenshot("logout-desktop-light"));
    ana.press("Escape", "Escape", 27, "", 0);
    ana.wait_for(
        "!document.getElementById('logout-dialog').open && document.activeElement === document.getElementById('logout')",
        "the question gone, focus on the button",
    );
    assert_eq!(ana.eval("document.body.dataset.view"), json!("app"));
    assert_eq!(active_id(&ana), json!("logout"));

    // Only the name and the language are kept in the browser.
    let stored = "Object.keys(localStorage).sort().join()";
    assert_eq!(ana.eval(stored), json!("papo.lang,papo.name"));
    assert_eq!(beto.eval(stored), json!("papo.lang,papo.name"));

    // The CSP forbids inline style attributes; the page never creates one.
    for tab in [&ana, &beto] {
        assert_eq!(
            tab.eval("document.querySelectorAll('[style]').length"),
            json!(0)
        );
    }
    let carla = Tab::open(&cdp, "carla", "en-US");
    big_server_pages_its_rooms(&carla, &mut shots);
    let dora = Tab::open(&cdp, "dora", "pt-BR");
    an_account_comes_back_signed_in(&dora, &mut shots);

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

/// PROTOCOL 1.1 "Large servers" as a person meets it: 451 rooms, of which the page gets the first
/// 200 and the rest as the list scrolls; the filter asks the server for rooms not loaded yet; a
/// room the server removes leaves the list (and the password dialog open for it, saying so); the
/// server's cap and the allowance of new rooms are said in words, not codes.
fn big_server_pages_its_rooms(carla: &Tab, shots: &mut Vec<PathBuf>) {
    let mut names: Vec<String> = (0..450).map(|i| format!("sala {i:03}")).collect();
    let server = start_big_server(451, 0);
    let addr = server.local_addr();
    let mut bot = Bot::hello(addr, "Dono");
    bot.create_and_join(&names, "");
    // First by name: in the first page. Protected, so Carla is asked for its password.
    bot.create_and_join(&["efêmera".to_string()], "segredo");
    names.insert(0, "efêmera".to_string());

    carla.navigate(&format!("http://{addr}/"));
    login(carla, "Carla");
    let status = "(document.getElementById('room-dir-status').hidden ? '' : document.getElementById('room-dir-status').textContent)";
    carla.wait_for(
        &format!("{status} === 'Showing 200 of 451 rooms, by name.'"),
        "the first page of rooms",
    );
    assert_eq!(
        room_rows(carla),
        json!(names[..200]),
        "the first page, by name"
    );
    assert_eq!(
        carla.eval("document.getElementById('more-rooms').hidden"),
        json!(false),
        "a way to more rooms"
    );
    shots.push(carla.screenshot("lobby-many-rooms-desktop-light"));

    // The filter asks the server: "sala 44…" are not loaded yet.
    carla.fill("#room-filter", "sala 44");
    carla.wait_for(
        &format!("{status} === '10 rooms with “sala 44”.'"),
        "the server's answer to the filter",
    );
    assert_eq!(room_rows(carla), json!(names[441..451]));
    shots.push(carla.screenshot("lobby-search-desktop-light"));
    carla.eval("(() => { const f = document.getElementById('room-filter'); f.value = ''; f.dispatchEvent(new Event('input')); })()");
    carla.wait_for(
        &format!("{status} === 'Showing 200 of 451 rooms, by name.' && document.querySelectorAll('#room-dir .room-row').length === 200"),
        "the first page back without the filter",
    );

    // Scrolling to the end of the list brings the next page; the button there the rest.
    carla.eval("document.getElementById('room-dir-scroll').scrollTop = 1e9");
    carla.wait_for(
        &format!("{status} === 'Showing 400 of 451 rooms, by name.'"),
        "the second page after scrolling",
    );
    assert_eq!(room_rows(carla), json!(names[..400]));
    carla.click("#more-rooms");
    carla.wait_for(
        &format!("{status} === '' && document.getElementById('more-rooms').hidden && document.querySelectorAll('#room-dir .room-row').length === 451"),
        "every room loaded",
    );
    // Still by name: the rows scrolled through do not move when the last page comes.
    assert_eq!(room_rows(carla), json!(names));
    // Every room is here now: the filter needs no server.
    carla.fill("#room-filter", "sala 44");
    carla.wait_for(
        "document.querySelectorAll('#room-dir .room-row').length === 10",
        "the local filter",
    );
    assert_eq!(carla.eval(status), json!(""));
    carla.eval("(() => { const f = document.getElementById('room-filter'); f.value = ''; f.dispatchEvent(new Event('input')); })()");

    // The server's cap, in words.
    carla.fill("#create-name", "mais uma");
    carla.enter();
    carla.wait_for(
        "!document.getElementById('create-error').hidden",
        "the too-many-rooms error",
    );
    assert_eq!(
        carla.text_of("#create-error"),
        "The server holds as many rooms as it allows. Join one that exists."
    );

    // A room removed while Carla is about to join it: the dialog closes and the page says why.
    carla.eval("document.getElementById('room-dir-scroll').scrollTop = 0");
    carla.click(".room-row[data-room=\"efêmera\"]");
    carla.wait_for(
        "document.getElementById('password-dialog').open",
        "the password dialog for efêmera",
    );
    bot.send(json!({ "type": "leave", "room": "efêmera" }));
    bot.expect("left");
    carla.wait_for(
        "!document.getElementById('password-dialog').open && !document.querySelector('.room-row[data-room=\"efêmera\"]')",
        "efêmera gone from the list and the dialog",
    );
    assert_eq!(
        carla.text_of("#main-error-text"),
        "Room efêmera was removed from the server."
    );
    assert_eq!(room_rows(carla), json!(names[1..]));
    assert_eq!(
        carla.eval("import('/app.js').then(({ store }) => store.directory.total)"),
        json!(450)
    );
    shots.push(carla.screenshot("lobby-room-removed-desktop-light"));

    // The phone: the list scrolls inside its card, the form to create a room right below it.
    carla.viewport(390, 844, true);
    carla.wait_for(
        "document.getElementById('create-form').getBoundingClientRect().top < 2 * 844",
        "the create form within two screens on the phone",
    );
    shots.push(carla.screenshot("phone-lobby-many-rooms"));
    carla.viewport(1280, 800, false);
    drop(bot);
    server.shutdown();

    // One room an hour per connection: the second is refused with the reason.
    let server = start_big_server(0, 1);
    carla.navigate(&format!("http://{}/", server.local_addr()));
    login(carla, "Carla");
    carla.fill("#create-name", "um");
    carla.enter();
    carla.wait_for("document.body.dataset.pane === 'room'", "Carla inside um");
    carla.click("#nav-lobby");
    carla.fill("#create-name", "dois");
    carla.enter();
    carla.wait_for(
        "!document.getElementById('create-error').hidden",
        "the create allowance error",
    );
    assert_eq!(
        carla.text_of("#create-error"),
        "You made too many rooms lately. Try again later."
    );
    server.shutdown();
}

/// Records the page's notifications and puts the tab out of sight (as another tab in front
/// would: headless Chromium keeps every page visible).
const NOTIFICATION_SPY: &str = r#"(() => {
  window.__shown = [];
  const Real = window.Notification;
  window.Notification = class extends Real {
    constructor(title, options) { super(title, options); window.__shown.push([title, options.body]); }
  };
  Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
  document.dispatchEvent(new Event('visibilitychange'));
})()"#;

/// PROTOCOL 1.1 "Accounts and sessions" from the page: Dora signs up, makes a room, and finds it
/// again after a reload, signed in by the cookie alone, with what she has not read counted (in
/// the room and in a DM kept while she was away); reading marks it read for every device. Her
/// settings list where she is signed in, sign out everywhere else, and change the password; a
/// session ended elsewhere puts the page back at "sign in", saying so; a guest cannot take her
/// name; signing out survives a reload.
fn an_account_comes_back_signed_in(dora: &Tab, shots: &mut Vec<PathBuf>) {
    let db = TempDb::named("accounts");
    let server = start_server(0, &db.path());
    let addr = server.local_addr();
    let url = format!("http://{addr}/");
    let signed_in =
        "document.body.dataset.view === 'app' && document.body.dataset.conn === 'online'";

    dora.navigate(&url);
    dora.wait_for(
        "!document.getElementById('auth-tabs').hidden && document.body.dataset.view === 'login'",
        "the ways in: guest, sign in, sign up",
    );
    dora.click("#tab-signup");
    dora.fill("#signup-name", "Dora");
    dora.fill("#signup-password", "curta");
    dora.enter();
    dora.wait_for(
        "!document.getElementById('signup-error').hidden",
        "the short-password error",
    );
    assert_eq!(
        dora.text_of("#signup-error"),
        "A senha precisa ter de 8 a 128 caracteres."
    );
    dora.fill("#signup-password", "senha do clube");
    shots.push(dora.screenshot("signup-desktop-light"));
    dora.enter();
    dora.wait_for(signed_in, "Dora signed up and in");
    assert_eq!(dora.text_of("#me-name"), "Dora");
    dora.fill("#create-name", "clube");
    dora.enter();
    dora.wait_for("document.body.dataset.pane === 'room'", "Dora inside clube");
    dora.click("#nav-lobby");

    // While she is in the lobby: two messages in clube (a guest), a DM from another account.
    let mut eco = Bot::hello(addr, "Eco");
    eco.send(json!({ "type": "join", "room": "clube" }));
    eco.expect("joined");
    for (i, text) in ["primeira", "segunda"].iter().enumerate() {
        eco.send(json!({ "type": "text", "room": "clube", "text": text, "ref": i }));
        eco.expect("ack");
    }
    let (status, _, _) = api(
        addr,
        "POST",
        "/api/register",
        Some(json!({ "name": "Fábio", "password": "senha do Fábio" })),
        None,
    );
    assert_eq!(status, 201, "Fábio registers");
    let mut fabio = Bot::hello_with(
        addr,
        json!({ "type": "hello", "name": "Fábio", "password": "senha do Fábio" }),
    );
    fabio.send(json!({ "type": "dm", "to": "Dora", "text": "guardei pra você", "ref": 1 }));
    fabio.expect("dm");
    dora.wait_for(
        "document.querySelector('#room-convs [data-conv=\"room:clube\"] .badge')?.textContent === '2' && document.querySelector('#dm-convs [data-conv=\"dm:fábio\"] .badge')?.textContent === '1'",
        "the unread counts before the reload",
    );

    // A reload: signed in by the cookie, the room and the DM back with their counts.
    dora.navigate(&url);
    dora.wait_for(signed_in, "Dora signed in after the reload");
    dora.wait_for(
        "document.querySelector('#room-convs [data-conv=\"room:clube\"] .badge')?.textContent === '2' && document.querySelector('#dm-convs [data-conv=\"dm:fábio\"] .badge')?.textContent === '1'",
        "the unread counts after the reload",
    );
    assert_eq!(dora.eval("document.title"), json!("(3) papo"));
    shots.push(dora.screenshot("account-after-reload-desktop-light"));
    dora.click("#room-convs [data-conv=\"room:clube\"]");
    wait_message(dora, "segunda");
    assert_eq!(
        dora.eval("document.querySelector('#messages .new-sep + .msg .text')?.textContent"),
        json!("primeira"),
        "the divider above the first message she had not read"
    );
    dora.click("#dm-convs [data-conv=\"dm:fábio\"]");
    wait_message(dora, "guardei pra você");
    assert_eq!(
        dora.text_of("#history-start"),
        "Mensagens diretas com Fábio. O histórico fica guardado para contas."
    );
    // Read here, read everywhere: another reload finds nothing unread.
    dora.wait_for(
        "document.title === 'papo' || document.title === '@Fábio · papo'",
        "nothing unread in the title",
    );
    std::thread::sleep(Duration::from_millis(800)); // the read marks leave after a short pause
    dora.navigate(&url);
    dora.wait_for(signed_in, "Dora signed in after the second reload");
    dora.wait_for(
        "document.querySelector('#room-convs [data-conv=\"room:clube\"]') && document.querySelector('#dm-convs [data-conv=\"dm:fábio\"]')",
        "the room and the DM listed",
    );
    assert_eq!(
        dora.eval("document.querySelectorAll('#room-convs .badge, #dm-convs .badge').length"),
        json!(0),
        "read marks kept by the server"
    );

    // A second tab of the same browser is signed in too; reading in one clears the count in both.
    let tab2 = dora.open_beside("dora-tab2", "pt-BR");
    tab2.navigate(&url);
    tab2.wait_for(signed_in, "the second tab signed in by the same cookie");
    eco.send(json!({ "type": "text", "room": "clube", "text": "terceira", "ref": 3 }));
    eco.expect("ack");
    let clube_badge = "(document.querySelector('#room-convs [data-conv=\"room:clube\"] .badge')?.textContent ?? '')";
    for tab in [dora, &tab2] {
        tab.wait_for(
            &format!("{clube_badge} === '1'"),
            "one unread in clube on both tabs",
        );
    }
    dora.click("#room-convs [data-conv=\"room:clube\"]");
    wait_message(dora, "terceira");
    tab2.wait_for(
        &format!("{clube_badge} === ''"),
        "the other tab to learn it was read",
    );
    tab2.call("Page.close", json!({}));
    dora.click("#nav-lobby");

    // Desktop notifications: asked for only from a button, never on load; then, with the tab out
    // of sight, a DM and a mention notify, other messages do not.
    assert_eq!(
        dora.eval("Notification.permission"),
        json!("default"),
        "asked on load"
    );
    dora.call(
        "Browser.grantPermissions",
        json!({ "origin": url.trim_end_matches('/'), "permissions": ["notifications"], "browserContextId": dora.context }),
    );
    dora.eval(NOTIFICATION_SPY);
    fabio.send(json!({ "type": "dm", "to": "Dora", "text": "psiu", "ref": 2 }));
    fabio.expect("dm");
    for (i, text) in ["sem menção", "@dora vem ver"].iter().enumerate() {
        eco.send(json!({ "type": "text", "room": "clube", "text": text, "ref": 10 + i }));
        eco.expect("ack");
    }
    dora.wait_for("window.__shown.length >= 2", "two notifications");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        dora.eval("window.__shown"),
        json!([
            ["Fábio (mensagem direta)", "psiu"],
            ["Eco em #clube", "@dora vem ver"]
        ])
    );
    assert_eq!(
        dora.eval("document.title"),
        json!("(3) papo"),
        "the title counts what came while away"
    );
    dora.eval(
        "delete document.visibilityState; document.dispatchEvent(new Event('visibilitychange'))",
    );

    // Settings: another device signed in (a script), signed out from here; then the password.
    let (status, other, _) = api(
        addr,
        "POST",
        "/api/login",
        Some(json!({ "name": "dora", "password": "senha do clube" })),
        None,
    );
    assert_eq!(status, 200);
    let other = other.expect("a session cookie for the other device");
    dora.click("#settings-btn");
    dora.wait_for(
        "document.querySelectorAll('#session-list .session').length === 2",
        "two sessions listed",
    );
    assert_eq!(
        dora.eval(
            "[...document.querySelectorAll('#session-list .session-here')].map(e => e.textContent)"
        ),
        json!(["Este aparelho"])
    );
    shots.push(dora.screenshot("settings-desktop-light"));
    // Every word of the settings follows the language.
    set_language(dora, "en");
    dora.wait_for(
        "document.querySelector('#session-list .session-here')?.textContent === 'This device'",
        "the settings in English",
    );
    assert_eq!(
        dora.eval(PORTUGUESE_LEFT),
        json!([]),
        "Portuguese left in the settings after switching to English"
    );
    set_language(dora, "pt-BR");
    dora.viewport(390, 844, true);
    dora.color_scheme("dark");
    shots.push(dora.screenshot("settings-phone-dark"));
    dora.color_scheme("light");
    dora.viewport(1280, 800, false);
    dora.click("#revoke-others");
    dora.wait_for(
        "document.querySelectorAll('#session-list .session').length === 1",
        "the other device signed out",
    );
    assert_eq!(
        api(addr, "GET", "/api/session", None, Some(&other)).0,
        401,
        "the other session ended"
    );
    dora.fill("#pwc-current", "senha do clube");
    dora.fill("#pwc-new", "nova senha do clube");
    dora.click("#pwc-form button[type=submit]");
    dora.wait_for(
        "!document.getElementById('pwc-done').hidden",
        "the password changed",
    );
    dora.click("#settings-close");

    // Ended from elsewhere (4001): back at "sign in", told why; in again with the new password.
    let (_, elsewhere, _) = api(
        addr,
        "POST",
        "/api/login",
        Some(json!({ "name": "Dora", "password": "nova senha do clube" })),
        None,
    );
    let elsewhere = elsewhere.expect("a session cookie elsewhere");
    let (status, _, _) = api(
        addr,
        "POST",
        "/api/sessions/revoke",
        Some(json!({ "others": true })),
        Some(&elsewhere),
    );
    assert_eq!(status, 204);
    dora.wait_for(
        "document.body.dataset.view === 'login' && !document.getElementById('signin-form').hidden && !document.getElementById('login-notice').hidden",
        "the sign-in screen after the session ended",
    );
    assert_eq!(
        dora.text_of("#login-notice"),
        "Você saiu da conta neste aparelho: a sessão foi encerrada (em outro aparelho, ou a senha foi trocada). Entre de novo."
    );
    assert_eq!(
        dora.eval("document.getElementById('signin-name').value"),
        json!("Dora")
    );
    dora.fill("#signin-password", "senha do clube");
    dora.enter();
    dora.wait_for(
        "!document.getElementById('signin-error').hidden",
        "the old password refused",
    );
    assert_eq!(dora.text_of("#signin-error"), "Nome ou senha incorretos.");
    dora.fill("#signin-password", "nova senha do clube");
    dora.enter();
    dora.wait_for(signed_in, "Dora signed in again");
    dora.wait_for(
        "document.querySelector('#room-convs [data-conv=\"room:clube\"]')",
        "clube back",
    );

    // Signing out asks first, says it is done, and a reload stays signed out.
    dora.click("#logout");
    dora.wait_for(
        "document.getElementById('logout-dialog').open",
        "the sign-out question",
    );
    assert_eq!(dora.text_of("#logout-title"), "Sair da conta?");
    dora.click("#logout-confirm");
    dora.wait_for(
        "document.body.dataset.view === 'login' && document.getElementById('login-notice').textContent === 'Você saiu da conta.'",
        "signed out",
    );
    dora.viewport(390, 844, true);
    shots.push(dora.screenshot("phone-signed-out-light"));
    dora.viewport(1280, 800, false);
    dora.navigate(&url);
    dora.wait_for(
        "document.body.dataset.view === 'login' && !document.getElementById('signin-form').hidden",
        "still signed out after a reload, at 'sign in'",
    );
    // A guest cannot take an account's name, and is told why, with the way to that account.
    dora.click("#tab-guest");
    dora.fill("#login-name", "dora");
    dora.enter();
    dora.wait_for(
        "!document.getElementById('login-error').hidden",
        "the name-registered error",
    );
    assert_eq!(
        dora.text_of("#login-error"),
        "dora é uma conta registrada: só quem tem a senha usa esse nome. Escolha outro nome, ou entre na conta."
    );
    assert_eq!(
        dora.eval("document.getElementById('login-to-signin').hidden"),
        json!(false)
    );
    shots.push(dora.screenshot("guest-name-registered-desktop-light"));
    drop((eco, fabio));
    server.shutdown();

    // A server that takes no guests: a guest's try says so, and the page offers accounts only.
    let server = papo::start(papo::Config {
        port: 0,
        db: ":memory:".into(),
        accounts: papo::accounts::Policy {
            guests: false,
            ..Default::default()
        },
        ..Default::default()
    })
    .expect("start a server without guests");
    dora.navigate(&format!("http://{}/", server.local_addr()));
    dora.click("#tab-guest");
    dora.fill("#login-name", "Zeca");
    dora.enter();
    dora.wait_for(
        "!document.getElementById('signin-form').hidden && document.getElementById('tab-guest').hidden",
        "the page to offer accounts only",
    );
    assert_eq!(
        dora.text_of("#login-notice"),
        "Este servidor não aceita convidados: entre com sua conta ou crie uma."
    );
    server.shutdown();
}
