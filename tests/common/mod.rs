//! Shared helpers for the integration tests: a server started in-process on port 0,
//! a WebSocket `Client` whose every wait is bounded by a deadline, and raw-TCP helpers
//! for HTTP requests, hand-made handshakes and hand-made WebSocket frames.
#![allow(dead_code)]

pub mod db;
pub mod files;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

/// How long any single wait for an expected frame may take before the test fails.
/// Generous: the tests run on a loaded 2-core machine.
pub const WAIT: Duration = Duration::from_secs(10);
/// How long a test watches a connection to assert that nothing arrives.
pub const QUIET: Duration = Duration::from_millis(400);

/// A test configuration: port 0, in-memory database, no rate limit.
pub fn test_config() -> papo::Config {
    papo::Config {
        host: "127.0.0.1".into(),
        port: 0,
        db: ":memory:".into(),
        rate_limit: 0,
        ..papo::Config::default()
    }
}

/// A running server, shut down when dropped.
pub struct TestServer {
    server: Option<papo::Server>,
    pub addr: SocketAddr,
}

impl TestServer {
    pub fn start(config: papo::Config) -> TestServer {
        let server = papo::start(config).expect("server starts");
        let addr = server.local_addr();
        TestServer {
            server: Some(server),
            addr,
        }
    }

    pub fn default_config() -> TestServer {
        TestServer::start(test_config())
    }

    /// Shut the server down now; panics if that takes longer than `WAIT`.
    pub fn shutdown(&mut self) {
        if let Some(server) = self.server.take() {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                server.shutdown();
                let _ = tx.send(());
            });
            rx.recv_timeout(WAIT)
                .expect("server.shutdown() returns within the deadline");
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            // Do not hang a failing test on a stuck shutdown: run it aside and wait bounded.
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                server.shutdown();
                let _ = tx.send(());
            });
            let _ = rx.recv_timeout(WAIT);
        }
    }
}

/// What a bounded read from a WebSocket produced.
#[derive(Debug)]
pub enum Event {
    /// A text frame, parsed as JSON.
    Frame(Value),
    /// A close frame from the server, with its code if it had one.
    Close(Option<u16>),
    /// The connection ended without a close frame (EOF, reset, protocol error).
    Ended(String),
    /// The deadline passed with nothing read.
    Timeout,
}

/// A WebSocket client over a std `TcpStream`; every read is bounded.
pub struct Client {
    pub ws: WebSocket<TcpStream>,
    pub name: String,
    /// Pings received from the server (tungstenite answers them on the next read).
    pub pings: usize,
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

impl Client {
    /// Connect and complete the WebSocket handshake (no `hello`).
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("tcp connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_write_timeout(Some(WAIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let url = format!("ws://{addr}/ws");
        let (ws, response) = match tungstenite::client(url.as_str(), stream) {
            Ok(pair) => pair,
            Err(e) => panic!("websocket handshake failed: {e}"),
        };
        assert_eq!(response.status().as_u16(), 101);
        Client {
            ws,
            name: String::new(),
            pings: 0,
        }
    }

    /// Connect and identify as `name`; returns after the `welcome`.
    pub fn hello(addr: SocketAddr, name: &str) -> Client {
        let mut c = Client::connect(addr);
        c.send(json!({"type": "hello", "name": name}));
        let welcome = c.expect_type("welcome");
        c.name = welcome["name"].as_str().expect("welcome.name").to_string();
        c
    }

    /// Connect, identify and join `room` (creating it first if `create`); drains the
    /// joiner's own presence so the connection starts quiet.
    pub fn member(addr: SocketAddr, name: &str, room: &str) -> Client {
        let mut c = Client::hello(addr, name);
        c.join(room, None);
        c
    }

    pub fn send(&mut self, v: Value) {
        self.send_text(&v.to_string());
    }

    pub fn send_text(&mut self, s: &str) {
        self.ws
            .send(Message::text(s.to_string()))
            .unwrap_or_else(|e| panic!("{}: send failed: {e}", self.name));
    }

    /// Send, but tolerate the server having closed the connection already.
    pub fn try_send(&mut self, msg: Message) -> Result<(), tungstenite::Error> {
        self.ws.send(msg)
    }

    /// The next event before `deadline`.
    pub fn next_event(&mut self, deadline: Instant) -> Event {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Event::Timeout;
            }
            let left = (deadline - now).max(Duration::from_millis(1));
            if self.ws.get_ref().set_read_timeout(Some(left)).is_err() {
                return Event::Ended("set_read_timeout failed".into());
            }
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(t.as_str())
                        .unwrap_or_else(|e| panic!("server sent invalid JSON {t:?}: {e}"));
                    assert!(v.is_object(), "server frame is not an object: {v}");
                    assert!(v["type"].is_string(), "server frame has no type: {v}");
                    return Event::Frame(v);
                }
                Ok(Message::Binary(b)) => panic!("server sent a binary frame: {b:?}"),
                Ok(Message::Ping(_)) => self.pings += 1,
                Ok(Message::Pong(_)) | Ok(Message::Frame(_)) => {}
                Ok(Message::Close(cf)) => return Event::Close(cf.map(|f| u16::from(f.code))),
                Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {}
                Err(e) => return Event::Ended(e.to_string()),
            }
        }
    }

    /// The next frame within `timeout`, or None if nothing came. Panics if the
    /// connection ends.
    pub fn try_recv(&mut self, timeout: Duration) -> Option<Value> {
        match self.next_event(Instant::now() + timeout) {
            Event::Frame(v) => Some(v),
            Event::Timeout => None,
            other => panic!("{}: connection ended unexpectedly: {other:?}", self.name),
        }
    }

    /// The next frame; panics after `WAIT`.
    pub fn recv(&mut self) -> Value {
        match self.try_recv(WAIT) {
            Some(v) => v,
            None => panic!("{}: no frame within {WAIT:?}", self.name),
        }
    }

    /// The next frame, which must be of type `ty` (nothing skipped).
    pub fn expect_type(&mut self, ty: &str) -> Value {
        let v = self.recv();
        assert_eq!(
            v["type"], ty,
            "{}: expected a {ty} frame, got {v}",
            self.name
        );
        v
    }

    /// Skip frames until one matches `pred`; panics after `WAIT`.
    pub fn recv_until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        let mut skipped = Vec::new();
        loop {
            match self.next_event(deadline) {
                Event::Frame(v) if pred(&v) => return v,
                Event::Frame(v) => skipped.push(v),
                Event::Timeout => panic!(
                    "{}: no matching frame within {WAIT:?}; skipped: {skipped:?}",
                    self.name
                ),
                other => panic!(
                    "{}: connection ended while waiting: {other:?}; skipped: {skipped:?}",
                    self.name
                ),
            }
        }
    }

    /// Skip frames until one of type `ty`.
    pub fn recv_type(&mut self, ty: &str) -> Value {
        let ty = ty.to_string();
        self.recv_until(move |v| v["type"] == ty.as_str())
    }

    /// Skip frames until one carrying `ref` equal to `r`.
    pub fn recv_ref(&mut self, r: &Value) -> Value {
        let r = r.clone();
        self.recv_until(move |v| v.get("ref") == Some(&r))
    }

    /// Collect every frame that arrives within `d` (reads for the whole duration).
    pub fn collect_for(&mut self, d: Duration) -> Vec<Value> {
        let deadline = Instant::now() + d;
        let mut out = Vec::new();
        loop {
            match self.next_event(deadline) {
                Event::Frame(v) => out.push(v),
                Event::Timeout => return out,
                other => panic!("{}: connection ended: {other:?}", self.name),
            }
        }
    }

    /// Assert that no frame arrives within `d`.
    pub fn assert_silent(&mut self, d: Duration) {
        if let Some(v) = self.try_recv(d) {
            panic!("{}: expected silence, got {v}", self.name);
        }
    }

    /// Send `cmd` with `ref` set to `r` and return the frame carrying that ref, which
    /// must be the next frame with a ref (frames without ref, e.g. presence, are skipped).
    pub fn request(&mut self, mut cmd: Value, r: Value) -> Value {
        cmd["ref"] = r.clone();
        self.send(cmd);
        let reply = self.recv_until(|v| v.get("ref").is_some());
        assert_eq!(
            reply["ref"], r,
            "{}: reply carries another ref: {reply}",
            self.name
        );
        reply
    }

    /// Send `cmd` with a ref and assert the reply is an error with `code`.
    pub fn expect_error(&mut self, cmd: Value, code: &str) -> Value {
        let r = json!(format!("err-{code}"));
        let reply = self.request(cmd.clone(), r);
        assert_eq!(
            reply["type"], "error",
            "{}: {cmd} should fail with {code}, got {reply}",
            self.name
        );
        assert_eq!(reply["code"], code, "{}: {cmd} -> {reply}", self.name);
        assert!(
            reply["message"].is_string(),
            "error without message: {reply}"
        );
        reply
    }

    /// Send a raw text frame and expect the next frame (skipping presence) to be an error
    /// with `code`, without a ref.
    pub fn expect_raw_error(&mut self, raw: &str, code: &str) -> Value {
        self.send_text(raw);
        // Events of other clients' activity (presence, room_added) are not replies.
        let reply = self.recv_until(|v| v["type"] != "presence" && v["type"] != "room_added");
        assert_eq!(reply["type"], "error", "{}: {raw:?} -> {reply}", self.name);
        assert_eq!(reply["code"], code, "{}: {raw:?} -> {reply}", self.name);
        reply
    }

    /// Prove the connection still works: a `list` with a ref gets its `rooms` reply.
    pub fn assert_alive(&mut self) {
        let r = json!("alive-check");
        let reply = self.request(json!({"type": "list"}), r);
        assert_eq!(reply["type"], "rooms", "{}: {reply}", self.name);
    }

    /// Prove the (not yet identified) connection still works: a frame with an unknown
    /// type gets `not_identified` with its ref.
    pub fn assert_alive_unidentified(&mut self) {
        let reply = self.request(json!({"type": "list"}), json!("alive-check"));
        assert_eq!(reply["type"], "error");
        assert_eq!(reply["code"], "not_identified");
    }

    pub fn create(&mut self, room: &str, password: Option<&str>) -> Value {
        let mut cmd = json!({"type": "create", "room": room});
        if let Some(p) = password {
            cmd["password"] = json!(p);
        }
        let reply = self.request(cmd, json!("create"));
        assert_eq!(
            reply["type"], "created",
            "{}: create {room}: {reply}",
            self.name
        );
        reply
    }

    /// Join (creating the room if it does not exist) and wait for the `joined` and for
    /// the joiner's own presence. Returns the `joined` reply.
    pub fn join(&mut self, room: &str, password: Option<&str>) -> Value {
        let mut cmd = json!({"type": "join", "room": room});
        if let Some(p) = password {
            cmd["password"] = json!(p);
        }
        let mut reply = self.request(cmd.clone(), json!("join"));
        if reply["type"] == "error" && reply["code"] == "no_such_room" {
            self.create(room, password);
            reply = self.request(cmd, json!("join"));
        }
        assert_eq!(
            reply["type"], "joined",
            "{}: join {room}: {reply}",
            self.name
        );
        let me = self.name.clone();
        let canonical = reply["room"].as_str().unwrap().to_string();
        self.recv_until(|v| {
            v["type"] == "presence"
                && v["room"] == canonical.as_str()
                && v["joined"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|n| n == me.as_str()))
        });
        reply
    }

    /// Send a room text with a ref; returns (ack, own message event), in whichever order
    /// they came (presence and other rooms' frames are skipped).
    pub fn text_ref(&mut self, room: &str, text: &str, r: Value) -> (Value, Value) {
        self.send(json!({"type": "text", "room": room, "text": text, "ref": r.clone()}));
        let mut ack = None;
        let mut msg = None;
        let deadline = Instant::now() + WAIT;
        while ack.is_none() || msg.is_none() {
            match self.next_event(deadline) {
                Event::Frame(v) if v.get("ref").is_some() => {
                    assert!(ack.is_none(), "{}: second reply {v}", self.name);
                    assert_eq!(v["ref"], r, "{}: reply with another ref: {v}", self.name);
                    ack = Some(v);
                }
                Event::Frame(v) if v["type"] == "message" && v["from"] == self.name.as_str() => {
                    if msg.is_none() && ack.as_ref().is_none_or(|a| a["id"] == v["id"]) {
                        msg = Some(v);
                    }
                }
                Event::Frame(_) => {}
                other => panic!("{}: waiting for ack and message: {other:?}", self.name),
            }
        }
        let (ack, msg) = (ack.unwrap(), msg.unwrap());
        assert_eq!(ack["type"], "ack", "{}: {ack}", self.name);
        assert_eq!(
            ack["id"], msg["id"],
            "{}: ack {ack} for message {msg}",
            self.name
        );
        (ack, msg)
    }

    /// Send a room text without ref.
    pub fn say(&mut self, room: &str, text: &str) {
        self.send(json!({"type": "text", "room": room, "text": text}));
    }

    /// Skip frames until a `message` in `room` with `text`.
    pub fn recv_message(&mut self, room: &str, text: &str) -> Value {
        let (room, text) = (room.to_string(), text.to_string());
        self.recv_until(move |v| {
            v["type"] == "message" && v["room"] == room.as_str() && v["text"] == text.as_str()
        })
    }

    /// Read until the server closes the connection. Returns the close code if a close
    /// frame came (None if the connection just ended); panics on timeout. Text frames
    /// before the close are skipped.
    pub fn expect_closed(&mut self, timeout: Duration) -> Option<u16> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next_event(deadline) {
                Event::Frame(_) => {}
                Event::Close(code) => return code,
                Event::Ended(_) => return None,
                Event::Timeout => panic!("{}: connection not closed within {timeout:?}", self.name),
            }
        }
    }
}

/// Two identified clients in a room of their own, used to prove the server keeps
/// serving well-behaved users while something else goes on.
pub struct Pair {
    pub a: Client,
    pub b: Client,
    pub room: String,
    n: u64,
}

impl Pair {
    pub fn new(addr: SocketAddr, tag: &str) -> Pair {
        let room = format!("pair-{tag}");
        let a = Client::member(addr, &format!("pa-{tag}"), &room);
        let b = Client::member(addr, &format!("pb-{tag}"), &room);
        Pair { a, b, room, n: 0 }
    }

    /// A says something and B receives it (and vice versa), each within `WAIT`.
    pub fn chat(&mut self) {
        self.n += 1;
        let t1 = format!("ping {}", self.n);
        self.a.say(&self.room, &t1);
        self.b.recv_message(&self.room, &t1);
        self.a.recv_message(&self.room, &t1);
        let t2 = format!("pong {}", self.n);
        self.b.say(&self.room, &t2);
        self.a.recv_message(&self.room, &t2);
        self.b.recv_message(&self.room, &t2);
    }
}

// ---------------------------------------------------------------------------------
// Raw TCP helpers
// ---------------------------------------------------------------------------------

pub fn raw_connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("tcp connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Read an HTTP response head from `s` (up to the blank line). Returns the status code,
/// the head text and any bytes read past the head. None if the connection ended or
/// the deadline passed first.
pub fn read_head(s: &mut TcpStream, timeout: Duration) -> Option<(u16, String, Vec<u8>)> {
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..pos]).into_owned();
            let rest = buf[pos + 4..].to_vec();
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| panic!("bad status line in {head:?}"));
            return Some((status, head, rest));
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        s.set_read_timeout(Some(deadline - now)).unwrap();
        match s.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if is_timeout(&e) => {}
            Err(_) => return None,
        }
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The value of header `name` in a response head (case-insensitive name).
pub fn header(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// A simple HTTP/1.1 GET with `Connection: close`; returns (status, head, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
    let mut s = raw_connect(addr);
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let (status, head, mut body) = read_head(&mut s, WAIT).expect("an HTTP response head");
    let len: Option<usize> = header(&head, "content-length").and_then(|v| v.parse().ok());
    read_body(&mut s, &mut body, len);
    if header(&head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body);
    }
    (status, head, body)
}

/// Reads the rest of a response body after its head: `len` bytes when the length is known
/// (anything past it cut off), else until the server closes. Bounded by `WAIT`.
pub fn read_body(s: &mut TcpStream, body: &mut Vec<u8>, len: Option<usize>) {
    let deadline = Instant::now() + WAIT;
    let mut chunk = [0u8; 8192];
    while len.is_none_or(|len| body.len() < len) {
        let now = Instant::now();
        assert!(now < deadline, "HTTP body not complete within {WAIT:?}");
        s.set_read_timeout(Some(deadline - now)).unwrap();
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if is_timeout(&e) => {}
            Err(e) => panic!("reading HTTP body: {e}"),
        }
    }
    if let Some(len) = len {
        body.truncate(len);
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = find(data, b"\r\n") {
        let size_line = String::from_utf8_lossy(&data[..pos]);
        let size = usize::from_str_radix(size_line.split(';').next().unwrap().trim(), 16)
            .expect("chunk size");
        data = &data[pos + 2..];
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[..size.min(data.len())]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

/// Send a WebSocket upgrade request with the given `Host` and optional `Origin` and
/// return the response status (and the stream, for a 101).
pub fn upgrade(addr: SocketAddr, host: &str, origin: Option<&str>) -> (u16, TcpStream) {
    let mut s = raw_connect(addr);
    let mut req = format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    if let Some(o) = origin {
        req.push_str(&format!("Origin: {o}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let (status, _, _) = read_head(&mut s, WAIT).expect("a response to the upgrade");
    (status, s)
}

/// A WebSocket connection driven by hand: masked frames out, raw frames in.
pub struct RawWs {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

/// A frame read by `RawWs`, or how reading ended.
#[derive(Debug, PartialEq)]
pub enum RawEvent {
    Frame { opcode: u8, payload: Vec<u8> },
    Ended,
    Timeout,
}

impl RawWs {
    pub fn connect(addr: SocketAddr) -> RawWs {
        let mut s = raw_connect(addr);
        let req = format!(
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        s.write_all(req.as_bytes()).unwrap();
        let (status, head, rest) = read_head(&mut s, WAIT).expect("handshake response");
        assert_eq!(status, 101, "upgrade refused: {head}");
        RawWs {
            stream: s,
            buf: rest,
        }
    }

    /// Encode one masked client frame.
    pub fn encode(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![(if fin { 0x80 } else { 0 }) | opcode];
        let len = payload.len();
        if len < 126 {
            f.push(0x80 | len as u8);
        } else if len <= 0xffff {
            f.push(0x80 | 126);
            f.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            f.push(0x80 | 127);
            f.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let key = [0x37u8, 0xfa, 0x21, 0x3d];
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        f
    }

    pub fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        let f = RawWs::encode(true, opcode, payload);
        self.stream.write_all(&f).expect("raw frame write");
    }

    pub fn send_json(&mut self, v: &Value) {
        self.send_frame(0x1, v.to_string().as_bytes());
    }

    /// Read one server frame (server frames are unmasked).
    pub fn read_frame(&mut self, timeout: Duration) -> RawEvent {
        let deadline = Instant::now() + timeout;
        let mut chunk = [0u8; 8192];
        loop {
            if let Some((opcode, payload, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                return RawEvent::Frame { opcode, payload };
            }
            let now = Instant::now();
            if now >= deadline {
                return RawEvent::Timeout;
            }
            self.stream.set_read_timeout(Some(deadline - now)).unwrap();
            match self.stream.read(&mut chunk) {
                Ok(0) => return RawEvent::Ended,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if is_timeout(&e) => {}
                Err(_) => return RawEvent::Ended,
            }
        }
    }

    /// Read until a close frame (returns its code, 0 if it had none) or the end of the
    /// connection (None). Panics on timeout.
    pub fn expect_closed(&mut self, timeout: Duration) -> Option<u16> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.read_frame(deadline.saturating_duration_since(Instant::now())) {
                RawEvent::Frame {
                    opcode: 0x8,
                    payload,
                } => {
                    return Some(if payload.len() >= 2 {
                        u16::from_be_bytes([payload[0], payload[1]])
                    } else {
                        0
                    });
                }
                RawEvent::Frame { .. } => {}
                RawEvent::Ended => return None,
                RawEvent::Timeout => panic!("raw connection not closed within {timeout:?}"),
            }
        }
    }

    /// Read the next text frame as JSON, skipping pings.
    pub fn recv_json(&mut self, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            match self.read_frame(deadline.saturating_duration_since(Instant::now())) {
                RawEvent::Frame {
                    opcode: 0x1,
                    payload,
                } => return serde_json::from_slice(&payload).expect("JSON frame"),
                RawEvent::Frame { opcode: 0x9, .. } => {}
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// Parse one unmasked (server) frame from the front of `buf`; returns (opcode,
/// payload, bytes used), or None if `buf` holds no complete frame yet.
fn parse_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0f;
    let masked = buf[1] & 0x80 != 0;
    let mut len = (buf[1] & 0x7f) as usize;
    let mut pos = 2;
    if len == 126 {
        if buf.len() < 4 {
            return None;
        }
        len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
        pos = 4;
    } else if len == 127 {
        if buf.len() < 10 {
            return None;
        }
        len = u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize;
        pos = 10;
    }
    assert!(!masked, "server frames must not be masked");
    if buf.len() < pos + len {
        return None;
    }
    Some((opcode, buf[pos..pos + len].to_vec(), pos + len))
}

/// Names of a presence list as strings.
pub fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array of names, got {v}"))
        .iter()
        .map(|n| n.as_str().expect("name is a string").to_string())
        .collect()
}

// ---------------------------------------------------------------------------------
// Accounts: the HTTP API and cookie-signed WebSocket connections
// ---------------------------------------------------------------------------------

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl HttpReply {
    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?} (status {})",
                String::from_utf8_lossy(&self.body),
                self.status
            )
        })
    }

    /// The error code of a JSON error body.
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_string()
    }

    /// The whole `Set-Cookie` header, if any.
    pub fn set_cookie(&self) -> Option<String> {
        header(&self.head, "set-cookie")
    }

    /// `papo_session=TOKEN` from `Set-Cookie`, ready for a `Cookie` header.
    pub fn cookie(&self) -> String {
        let set = self
            .set_cookie()
            .unwrap_or_else(|| panic!("no Set-Cookie in {}", self.head));
        set.split(';').next().unwrap().trim().to_string()
    }
}

/// Any HTTP/1.1 request, with `Connection: close`; the body is read whole.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpReply {
    let mut s = raw_connect(addr);
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    s.write_all(&bytes).unwrap();
    let (status, head, mut body) = read_head(&mut s, WAIT).expect("an HTTP response head");
    let len: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    read_body(&mut s, &mut body, Some(len));
    HttpReply { status, head, body }
}

/// `POST` a JSON body to the API, with a session cookie (`papo_session=…`) if given.
pub fn api_post(addr: SocketAddr, path: &str, body: Value, cookie: Option<&str>) -> HttpReply {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(c) = cookie {
        headers.push(("Cookie", c));
    }
    http_request(addr, "POST", path, &headers, body.to_string().as_bytes())
}

/// `GET` from the API, with a session cookie if given.
pub fn api_get(addr: SocketAddr, path: &str, cookie: Option<&str>) -> HttpReply {
    let headers: Vec<(&str, &str)> = cookie.map(|c| ("Cookie", c)).into_iter().collect();
    http_request(addr, "GET", path, &headers, b"")
}

/// Registers an account; returns its cookie (`papo_session=…`).
pub fn register(addr: SocketAddr, name: &str, password: &str) -> String {
    let r = api_post(
        addr,
        "/api/register",
        json!({"name": name, "password": password}),
        None,
    );
    assert_eq!(
        r.status,
        201,
        "register {name}: {:?}",
        String::from_utf8_lossy(&r.body)
    );
    r.cookie()
}

/// Signs in by password; returns a new session's cookie.
pub fn login(addr: SocketAddr, name: &str, password: &str) -> String {
    let r = api_post(
        addr,
        "/api/login",
        json!({"name": name, "password": password}),
        None,
    );
    assert_eq!(
        r.status,
        200,
        "login {name}: {:?}",
        String::from_utf8_lossy(&r.body)
    );
    r.cookie()
}

impl Client {
    /// Connect with extra handshake headers (a `Cookie`, say); no `hello`.
    pub fn connect_with(addr: SocketAddr, headers: &[(&str, &str)]) -> Client {
        use tungstenite::client::IntoClientRequest;
        let stream = TcpStream::connect(addr).expect("tcp connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_write_timeout(Some(WAIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
        for (name, value) in headers {
            let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
            request
                .headers_mut()
                .insert(name, value.parse().expect("header value"));
        }
        let (ws, response) = match tungstenite::client(request, stream) {
            Ok(pair) => pair,
            Err(e) => panic!("websocket handshake failed: {e}"),
        };
        assert_eq!(response.status().as_u16(), 101);
        Client {
            ws,
            name: String::new(),
            pings: 0,
        }
    }

    /// Connect with a session cookie and say `hello` without a name; returns the client
    /// and its `welcome`.
    pub fn signed_in(addr: SocketAddr, cookie: &str) -> (Client, Value) {
        let mut c = Client::connect_with(addr, &[("Cookie", cookie)]);
        c.send(json!({"type": "hello"}));
        let welcome = c.expect_type("welcome");
        c.name = welcome["name"].as_str().expect("welcome.name").to_string();
        (c, welcome)
    }
}

/// A fresh directory for one test's database files, removed afterwards.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("papo-test-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn file(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }

    /// Every byte papo left in the directory: the database, any side files (WAL, SHM),
    /// and what is in directories beside them (the uploaded files).
    pub fn all_bytes(&self) -> Vec<u8> {
        fn collect(dir: &std::path::Path, bytes: &mut Vec<u8>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    collect(&path, bytes);
                } else {
                    bytes.extend(std::fs::read(&path).unwrap());
                }
            }
        }
        let mut bytes = Vec::new();
        collect(&self.0, &mut bytes);
        bytes
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
