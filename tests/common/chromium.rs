//! Driving real headless Chromium through the DevTools protocol, for the browser tests
//! (`tests/browser.rs`, `tests/browser_files.rs`): finding and launching the browser, a CDP client,
//! and `Tab`, a page a test clicks, types into, waits on and photographs. Included by path
//! (`#[path = "common/chromium.rs"] mod chromium;`) only by the tests that drive a browser.
#![allow(dead_code)]

use std::cell::RefCell;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
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

pub const WAIT: Duration = Duration::from_secs(10);
pub const POLL: Duration = Duration::from_millis(50);

// ------------------------------------------------------------------ finding and launching Chromium

/// `PAPO_CHROMIUM` names the browser explicitly (a path that does not exist counts as none);
/// otherwise Debian's /usr/bin/chromium, then `chromium` or `chromium-browser` on PATH.
pub fn find_chromium() -> Option<PathBuf> {
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

pub fn browser_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("PAPO_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

/// The Chromium to drive, or `None` after saying loudly that `test` (its file) left
/// `untested` untested; with CI=true or PAPO_REQUIRE_BROWSER=1 a missing browser panics.
pub fn chromium_or_skip(test: &str, untested: &str) -> Option<PathBuf> {
    let found = find_chromium();
    if found.is_none() {
        let msg = format!(
            "\n==================================================================\n\
             SKIPPED {test}: Chromium not found (PAPO_CHROMIUM, /usr/bin/chromium,\n\
             or `chromium` on PATH). {untested} NOT tested in a real browser.\n\
             Install it (apt-get install chromium) to run this test; with CI=true\n\
             or PAPO_REQUIRE_BROWSER=1 a missing Chromium is a failure.\n\
             ==================================================================\n"
        );
        if browser_required() {
            panic!("{msg}");
        }
        loud!("{msg}");
    }
    found
}

/// Owns the Chromium process and its throw-away profile; killing happens in Drop, so a failing
/// assertion anywhere in the test never leaves a browser behind.
pub struct Chromium {
    pub child: Child,
    pub profile: PathBuf,
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

pub fn launch_chromium(binary: &Path) -> (Chromium, String) {
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
pub struct Cdp {
    pub ws: WebSocket<TcpStream>,
    pub next_id: u64,
    pub problems: Vec<String>,
}

impl Cdp {
    pub fn connect(url: &str) -> Cdp {
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

    pub fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
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

    pub fn note_event(&mut self, v: &Value) {
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
pub struct Tab {
    pub cdp: Rc<RefCell<Cdp>>,
    pub session: String,
    pub who: &'static str,
    /// The browser context (cookies, storage) the page lives in; None for the browser's own.
    pub context: Option<String>,
}

impl Tab {
    pub fn open(cdp: &Rc<RefCell<Cdp>>, who: &'static str, locale: &str) -> Tab {
        let ctx = cdp
            .borrow_mut()
            .call(None, "Target.createBrowserContext", json!({}));
        let ctx = ctx["browserContextId"].as_str().unwrap().to_string();
        Tab::open_in(
            cdp,
            who,
            locale,
            json!({ "url": "about:blank", "browserContextId": ctx }),
        )
    }

    /// Another page of the same person: the same context, so the same cookies (a second tab).
    pub fn open_beside(&self, who: &'static str, locale: &str) -> Tab {
        let ctx = self.context.clone().expect("a tab of its own context");
        Tab::open_in(
            &self.cdp,
            who,
            locale,
            json!({ "url": "about:blank", "browserContextId": ctx }),
        )
    }

    /// A page in the browser's own profile, not a separate context: Chromium counts those
    /// contexts as incognito, where it does not look at whether a page can be installed.
    pub fn open_in_profile(cdp: &Rc<RefCell<Cdp>>, who: &'static str, locale: &str) -> Tab {
        Tab::open_in(cdp, who, locale, json!({ "url": "about:blank" }))
    }

    pub fn open_in(cdp: &Rc<RefCell<Cdp>>, who: &'static str, locale: &str, target: Value) -> Tab {
        let context = target["browserContextId"].as_str().map(String::from);
        let mut c = cdp.borrow_mut();
        let target = c.call(None, "Target.createTarget", target);
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
            context,
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

    pub fn call(&self, method: &str, params: Value) -> Value {
        self.cdp
            .borrow_mut()
            .call(Some(&self.session), method, params)
    }

    /// Loads the page; every request of the page load must be answered promptly (a stalled
    /// module is a server bug this test exists to catch).
    pub fn navigate(&self, url: &str) {
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
    pub fn eval(&self, expr: &str) -> Value {
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
    pub fn poll(&self, predicate: &str, limit: Duration) -> bool {
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
    pub fn wait_for(&self, predicate: &str, what: &str) {
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

    pub fn text_of(&self, selector: &str) -> String {
        let expr = format!(
            "document.querySelector({})?.textContent ?? ''",
            js(selector)
        );
        self.eval(&expr).as_str().unwrap_or("").to_string()
    }

    /// A real mouse click at the element's centre, once it is visible and nothing covers it there
    /// (drawers slide in, dialogs open: wait for the page to settle, as a person would).
    pub fn click(&self, selector: &str) {
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

    pub fn focus(&self, selector: &str) {
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
    pub fn type_text(&self, text: &str) {
        self.call("Input.insertText", json!({ "text": text }));
    }

    pub fn press(&self, key: &str, code: &str, key_code: u32, text: &str, modifiers: u32) {
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

    pub fn enter(&self) {
        self.press("Enter", "Enter", 13, "\r", 0);
    }

    pub fn shift_enter(&self) {
        self.press("Enter", "Enter", 13, "\r", 8);
    }

    pub fn fill(&self, selector: &str, text: &str) {
        self.focus(selector);
        self.eval(&format!(
            "document.querySelector({}).select()",
            js(selector)
        ));
        self.type_text(text);
    }

    /// The window size; `mobile` is a phone: a mobile viewport and a touch screen (so the page
    /// sees `pointer: coarse`, as on a real phone).
    pub fn viewport(&self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }),
        );
        self.call(
            "Emulation.setTouchEmulationEnabled",
            json!({ "enabled": mobile, "maxTouchPoints": if mobile { 5 } else { 1 } }),
        );
    }

    pub fn color_scheme(&self, scheme: &str) {
        self.call(
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] }),
        );
    }

    pub fn screenshot(&self, name: &str) -> PathBuf {
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
    pub fn capture(&self, name: &str) -> PathBuf {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        let png = base64_decode(shot["data"].as_str().expect("screenshot data"));
        let dir = artifacts_dir();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }
}

/// A Rust string as a JS string literal.
pub fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

pub fn artifacts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
    dir
}

pub fn base64_decode(s: &str) -> Vec<u8> {
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
