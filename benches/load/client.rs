//! One benchmark connection over tokio: papo's own protocol on `/ws`, or Socket.IO v4 over
//! the Engine.IO websocket transport, behind one small API (connect, send a command,
//! receive the next application frame, parse it into an [`Event`]).

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

/// Any error of the load generator: it only ever gets reported.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, Error>;

/// Which wire protocol the server speaks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Proto {
    /// PROTOCOL.md: JSON objects with a `type`, WebSocket at `/ws`.
    Papo,
    /// Socket.IO v4 (the flask-seed and node-socketio peers): `42["event",{...}]`.
    SocketIo,
}

impl Proto {
    pub fn parse(s: &str) -> Option<Proto> {
        match s {
            "papo" | "native" => Some(Proto::Papo),
            "socketio" | "socket.io" => Some(Proto::SocketIo),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Proto::Papo => "papo",
            Proto::SocketIo => "socketio",
        }
    }
}

/// Where the server is: its TCP address and the WebSocket URL to ask for.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub url: String,
    pub proto: Proto,
}

impl Target {
    /// `url` is `ws://HOST:PORT` (or `http://`), with or without a path; without one the
    /// protocol's default path is used (`/ws`, or Socket.IO's websocket transport).
    pub fn new(url: &str, proto: Proto) -> Result<Target> {
        let rest = url
            .strip_prefix("ws://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or("--url must start with ws:// or http://")?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let hostport = hostport.replace("localhost", "127.0.0.1");
        let addr: SocketAddr = hostport
            .parse()
            .map_err(|_| format!("--url needs a numeric loopback address: {hostport}"))?;
        if !addr.ip().is_loopback() {
            return Err("load only ever targets the loopback interface".into());
        }
        let path = if path.is_empty() || path == "/" {
            match proto {
                Proto::Papo => "/ws",
                Proto::SocketIo => "/socket.io/?EIO=4&transport=websocket",
            }
        } else {
            path
        };
        Ok(Target {
            addr,
            url: format!("ws://{hostport}{path}"),
            proto,
        })
    }
}

/// A command, encoded per protocol by [`Conn::send`].
pub enum Cmd<'a> {
    Hello(&'a str),
    Create(&'a str),
    Join(&'a str),
    Text(&'a str, &'a str),
}

/// A server event, the fields of both protocols' events in one flat struct. Strings are
/// borrowed from the frame when they hold no escapes.
#[derive(Deserialize, Default, Debug)]
pub struct Event<'a> {
    #[serde(rename = "type", borrow, default)]
    pub kind: Cow<'a, str>,
    #[serde(default)]
    pub id: u64,
    #[serde(borrow, default)]
    pub text: Option<Cow<'a, str>>,
    #[serde(default)]
    pub member_count: Option<u64>,
    #[serde(borrow, default)]
    pub members: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow, default)]
    pub joined: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow, default)]
    pub left: Option<Vec<Cow<'a, str>>>,
    /// Socket.IO presence: `{room, user, event: "join" | "leave"}`.
    #[serde(borrow, default)]
    pub user: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub event: Option<Cow<'a, str>>,
}

impl<'a> Event<'a> {
    /// Parses one application frame as [`Conn::recv`] returned it.
    pub fn parse(proto: Proto, frame: &'a str) -> Option<Event<'a>> {
        match proto {
            Proto::Papo => serde_json::from_str(frame).ok(),
            Proto::SocketIo => {
                let body = frame.strip_prefix("42")?;
                let (name, mut ev): (Cow<'a, str>, Event<'a>) = serde_json::from_str(body).ok()?;
                ev.kind = name;
                if ev.kind == "presence" {
                    if let Some(user) = ev.user.take() {
                        if ev.event.as_deref() == Some("leave") {
                            ev.left = Some(vec![user]);
                        } else {
                            ev.joined = Some(vec![user]);
                        }
                    }
                }
                Some(ev)
            }
        }
    }
}

/// One WebSocket connection.
pub struct Conn {
    ws: WebSocketStream<TcpStream>,
    pub proto: Proto,
    /// Application frames received so far (events, replies).
    pub frames: u64,
    /// Why the connection ended, once it has (close code and reason, or the error).
    pub ended: Option<String>,
}

fn ws_config() -> WebSocketConfig {
    // Small buffers: the client holds thousands of connections carrying short frames.
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 24))
}

impl Conn {
    /// Connects and, for Socket.IO, completes the Engine.IO open and the namespace connect.
    pub async fn connect(target: &Target) -> Result<Conn> {
        Conn::connect_from(target, None).await
    }

    /// `connect`, from the local address `from` when given (any 127.0.0.0/8 address is
    /// ours on Linux, so one machine can play several clients' addresses).
    pub async fn connect_from(target: &Target, from: Option<std::net::IpAddr>) -> Result<Conn> {
        let tcp = match from {
            None => TcpStream::connect(target.addr).await?,
            Some(ip) => {
                let socket = match ip {
                    std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
                    std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
                };
                socket.bind(SocketAddr::new(ip, 0))?;
                socket.connect(target.addr).await?
            }
        };
        tcp.set_nodelay(true)?;
        let (ws, _resp) = tokio_tungstenite::client_async_with_config(
            target.url.as_str(),
            tcp,
            Some(ws_config()),
        )
        .await?;
        let mut conn = Conn {
            ws,
            proto: target.proto,
            frames: 0,
            ended: None,
        };
        if conn.proto == Proto::SocketIo {
            // Engine.IO open packet `0{...}`, then connect to the default namespace.
            conn.raw_until(|t| t.starts_with('0')).await?;
            conn.send_raw("40".to_string()).await?;
            conn.raw_until(|t| t.starts_with("40")).await?;
        }
        Ok(conn)
    }

    /// Connects to papo's `/ws` with a `Cookie` header (a signed-in session).
    pub async fn connect_with_cookie(target: &Target, cookie: &str) -> Result<Conn> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = target.url.as_str().into_client_request()?;
        request.headers_mut().insert("Cookie", cookie.parse()?);
        let tcp = TcpStream::connect(target.addr).await?;
        tcp.set_nodelay(true)?;
        let (ws, _resp) =
            tokio_tungstenite::client_async_with_config(request, tcp, Some(ws_config())).await?;
        Ok(Conn {
            ws,
            proto: Proto::Papo,
            frames: 0,
            ended: None,
        })
    }

    async fn raw_until(&mut self, want: impl Fn(&str) -> bool) -> Result<()> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) if want(t.as_str()) => return Ok(()),
                Some(Ok(Message::Text(t))) if t.starts_with("44") => {
                    return Err(format!("socket.io connect refused: {t}").into())
                }
                Some(Ok(Message::Close(_))) | None => return Err("closed during handshake".into()),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }

    pub async fn send_raw(&mut self, text: String) -> Result<()> {
        self.ws.send(Message::Text(text.into())).await?;
        Ok(())
    }

    /// Encodes a command for this connection's protocol and sends it.
    pub async fn send(&mut self, cmd: Cmd<'_>) -> Result<()> {
        let frame = encode(self.proto, cmd);
        self.send_raw(frame).await
    }

    /// The next application frame; answers Socket.IO pings (`2` → `3`) on the way.
    /// `None` once the connection is closed. Cancel-safe between frames.
    pub async fn recv(&mut self) -> Option<Result<Utf8Bytes>> {
        loop {
            let msg = match self.ws.next().await {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    self.ended = Some(format!("error: {e}"));
                    return Some(Err(e.into()));
                }
                None => {
                    self.ended.get_or_insert_with(|| "stream ended".into());
                    return None;
                }
            };
            match msg {
                Message::Text(t) => match self.proto {
                    Proto::Papo => {
                        self.frames += 1;
                        return Some(Ok(t));
                    }
                    Proto::SocketIo => {
                        if t.starts_with("42") {
                            self.frames += 1;
                            return Some(Ok(t));
                        } else if t.as_str() == "2" {
                            if let Err(e) = self.send_raw("3".to_string()).await {
                                return Some(Err(e));
                            }
                        } else if t.starts_with('1') || t.starts_with("41") {
                            self.ended = Some(format!("socket.io close {t}"));
                            return None;
                        }
                    }
                },
                Message::Close(f) => {
                    self.ended = Some(match f {
                        Some(f) => format!("close {} {}", u16::from(f.code), f.reason),
                        None => "close".into(),
                    });
                    return None;
                }
                _ => continue,
            }
        }
    }

    /// Waits for an event of `kind` (skipping others); an `error` event fails.
    pub async fn expect(&mut self, kind: &str, within: Duration) -> Result<Utf8Bytes> {
        let proto = self.proto;
        let wait = async {
            while let Some(frame) = self.recv().await {
                let frame = frame?;
                let Some(ev) = Event::parse(proto, &frame) else {
                    continue;
                };
                if ev.kind == kind {
                    return Ok(frame.clone());
                }
                if ev.kind == "error" {
                    return Err(format!("server error while waiting for {kind}: {frame}").into());
                }
            }
            Err(format!("closed while waiting for {kind}").into())
        };
        tokio::time::timeout(within, wait)
            .await
            .map_err(|_| format!("timed out waiting for {kind}"))?
    }

    /// `hello` then `join`; returns the `joined` frame.
    pub async fn hello_join(&mut self, name: &str, room: &str) -> Result<Utf8Bytes> {
        let t = Duration::from_secs(30);
        self.send(Cmd::Hello(name)).await?;
        self.expect("welcome", t).await?;
        self.send(Cmd::Join(room)).await?;
        self.expect("joined", t).await
    }
}

/// The frame a command becomes on the wire.
pub fn encode(proto: Proto, cmd: Cmd<'_>) -> String {
    let body = match cmd {
        Cmd::Hello(name) => serde_json::json!({"type": "hello", "name": name}),
        Cmd::Create(room) => serde_json::json!({"type": "create", "room": room, "password": ""}),
        Cmd::Join(room) => serde_json::json!({"type": "join", "room": room, "password": ""}),
        Cmd::Text(room, text) => serde_json::json!({"type": "text", "room": room, "text": text}),
    };
    match proto {
        Proto::Papo => body.to_string(),
        Proto::SocketIo => {
            let mut body = body;
            let kind = body
                .as_object_mut()
                .and_then(|o| o.remove("type"))
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            format!("42[{},{}]", serde_json::Value::from(kind), body)
        }
    }
}

/// Creates the named rooms over one connection (a room that exists already is fine) and
/// keeps that connection open, drained, until the returned task is aborted, so that a
/// server that dropped empty rooms of departed creators would still have them.
pub async fn create_rooms(
    target: &Target,
    owner: &str,
    rooms: &[String],
) -> Result<tokio::task::JoinHandle<()>> {
    let mut c = Conn::connect(target).await?;
    c.send(Cmd::Hello(owner)).await?;
    c.expect("welcome", Duration::from_secs(30)).await?;
    for room in rooms {
        c.send(Cmd::Create(room)).await?;
        match c.expect("created", Duration::from_secs(30)).await {
            Ok(_) => {}
            Err(e) if e.to_string().contains("room_exists") => {}
            Err(e) => return Err(e),
        }
    }
    Ok(tokio::spawn(async move {
        while let Some(Ok(_)) = c.recv().await {}
    }))
}
