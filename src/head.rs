//! Reading an HTTP request head off a connection (its first request or a later one on a
//! kept-alive connection), with a deadline and a size cap so a half-sent request cannot hold
//! a thread, and parsing just enough of it to route.

use std::io::{self, Read};
use std::net::{IpAddr, TcpStream};
use std::time::{Duration, Instant};

/// The largest request head accepted.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// A request's method, path and headers, plus every byte read so far.
#[derive(Debug)]
pub struct Head {
    pub method: String,
    /// The path without its query string.
    pub path: String,
    /// The query string, without its `?` (empty if none): an asset's fingerprint.
    pub query: String,
    /// Header names lower-cased, values trimmed, in order.
    pub headers: Vec<(String, String)>,
    /// The head and any bytes the client sent after it, to pass on unchanged.
    pub bytes: Vec<u8>,
    /// Where the head ends in `bytes`.
    pub head_len: usize,
    /// An HTTP/1.0 request: its connection closes after the answer unless it asks for
    /// `keep-alive`, and it is answered without 1.1-only features.
    pub http10: bool,
    /// The body's length once `read_body` has read it into `bytes` (just after the head);
    /// `None` while it is unread. What follows it in `bytes` is the next request, pipelined.
    pub body_len: Option<usize>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the client wants the connection kept open after this request: HTTP/1.1 unless
    /// it says `Connection: close`, HTTP/1.0 only if it says `Connection: keep-alive`.
    pub fn wants_keep_alive(&self) -> bool {
        if self.http10 {
            self.has_token("connection", "keep-alive")
        } else {
            !self.has_token("connection", "close")
        }
    }

    /// The bytes read past this request (its head and, if read, its body): the start of
    /// the next request on a kept-alive connection, sent before this one was answered.
    pub fn into_pipelined(mut self) -> Vec<u8> {
        let end = (self.head_len + self.body_len.unwrap_or(0)).min(self.bytes.len());
        self.bytes.split_off(end)
    }

    /// True if a comma-separated header lists `token` (case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// The bytes read, with the head rewritten to ask for `Connection: close` (one request
    /// per connection, so no idle keep-alive connection holds a server thread), every `X-Papo-…`
    /// header a client sent removed, the `drop` headers too, and `extra` headers added: the server's own word on
    /// things a client must not be able to forge (its address).
    pub fn rewritten(&self, drop: &[&str], extra: &[(&str, &str)]) -> Vec<u8> {
        // `parse` checked that the head is UTF-8 and ends with an empty line.
        let head = std::str::from_utf8(&self.bytes[..self.head_len]).unwrap_or("");
        let mut out = Vec::with_capacity(self.bytes.len() + 20);
        for line in head.split("\r\n").filter(|l| !l.is_empty()) {
            let name = line.split(':').next().unwrap_or("").trim();
            // By bytes: a name with a multi-byte character across byte 7 must not panic.
            let ours = name
                .as_bytes()
                .get(..7)
                .is_some_and(|p| p.eq_ignore_ascii_case(b"x-papo-"));
            if ours
                || drop.iter().any(|d| name.eq_ignore_ascii_case(d))
                || name.eq_ignore_ascii_case("connection")
                || name.eq_ignore_ascii_case("keep-alive")
            {
                continue;
            }
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        for (name, value) in extra {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        // A body read whole is passed on alone (a pipelined request after it is ours to
        // answer next); an unread one is passed on with whatever of it arrived.
        let end = match self.body_len {
            Some(len) => self.head_len + len,
            None => self.bytes.len(),
        };
        out.extend_from_slice(&self.bytes[self.head_len..end]);
        out
    }
}

/// Where a request comes from, as limits and cookies should see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientInfo {
    pub addr: IpAddr,
    /// Reached over https (only a trusted proxy can say so; papo itself speaks plain HTTP).
    pub https: bool,
}

impl Head {
    /// The client: the socket's peer, or with `trust_proxy` the last hop of
    /// `X-Forwarded-For` and the scheme of `X-Forwarded-Proto` (the last ones, which the
    /// proxy in front of us wrote; earlier ones came from the client). Without
    /// `trust_proxy` both headers are ignored: anyone can send them.
    pub fn client(&self, peer: IpAddr, trust_proxy: bool) -> ClientInfo {
        let peer = peer.to_canonical();
        if !trust_proxy {
            return ClientInfo {
                addr: peer,
                https: false,
            };
        }
        let last = |name: &str| {
            self.headers
                .iter()
                .filter(|(n, _)| n == name)
                .flat_map(|(_, v)| v.split(','))
                .map(str::trim)
                .rfind(|v| !v.is_empty())
                .map(str::to_string)
        };
        let addr = last("x-forwarded-for")
            .and_then(|a| a.parse::<IpAddr>().ok())
            .map(|a| a.to_canonical())
            .unwrap_or(peer);
        let https = last("x-forwarded-proto").is_some_and(|p| p.eq_ignore_ascii_case("https"));
        ClientInfo { addr, https }
    }
}

/// Whether a request carries a body: a `Transfer-Encoding`, or a `Content-Length` that is
/// not 0 (an unreadable one counts: it cannot be trusted to be empty).
pub fn has_body(head: &Head) -> bool {
    head.header("transfer-encoding").is_some()
        || head
            .header("content-length")
            .is_some_and(|v| v.trim().parse::<u64>() != Ok(0))
}

/// Why a request body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// No `Content-Length` (chunked bodies are not accepted here).
    LengthRequired,
    TooLarge,
    /// The client closed or stalled past the deadline.
    Gone,
}

/// Reads a request's whole body (its `Content-Length`, at most `max` bytes) into
/// `head.bytes`, before `deadline`: the request is then complete before it is passed on,
/// so the server thread that handles it never waits on a slow client.
pub fn read_body(
    mut stream: &TcpStream,
    head: &mut Head,
    max: usize,
    deadline: Instant,
) -> Result<(), BodyError> {
    if head.header("transfer-encoding").is_some() {
        return Err(BodyError::LengthRequired);
    }
    let length = match head.header("content-length") {
        None => 0,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| BodyError::LengthRequired)?,
    };
    if length > max {
        return Err(BodyError::TooLarge);
    }
    let want = head.head_len + length;
    // Bytes past `want` (a pipelined next request) may already be in `bytes`: they stay.
    while head.bytes.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(BodyError::Gone);
        }
        let filled = head.bytes.len();
        head.bytes.resize(want, 0);
        match stream.read(&mut head.bytes[filled..]) {
            Ok(0) => return Err(BodyError::Gone),
            Ok(n) => head.bytes.truncate(filled + n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => head.bytes.truncate(filled),
            Err(_) => return Err(BodyError::Gone),
        }
    }
    let _ = stream.set_read_timeout(None);
    head.body_len = Some(length);
    Ok(())
}

#[derive(Debug)]
pub enum HeadError {
    /// The client closed, stalled past the deadline, or the socket failed: nothing to say.
    Gone,
    /// Larger than `MAX_HEAD_BYTES`.
    TooLarge,
    /// Not an HTTP/1.x request head.
    Malformed,
}

/// Reads until the blank line that ends the head. `carried` holds bytes already read past
/// the previous request on this connection (pipelined), searched first.
///
/// On a fresh connection (`idle` is `None`) the whole head must arrive within `timeout` of
/// the call, as the connection was opened to send it. On a kept-alive connection the
/// client may first stay silent for up to `idle` (then the connection is given up, `Gone`),
/// and the head must then be complete within `timeout` of its first byte: a slow client
/// holds the thread no longer on its tenth request than on its first.
pub fn read_head(
    mut stream: &TcpStream,
    carried: Vec<u8>,
    idle: Option<Duration>,
    timeout: Duration,
) -> Result<Head, HeadError> {
    let mut bytes = carried;
    if let Some(end) = find_blank_line(&bytes) {
        return finish(bytes, end);
    }
    let mut deadline = match idle {
        Some(idle) if bytes.is_empty() => Instant::now() + idle,
        _ => Instant::now() + timeout,
    };
    let mut waiting_for_first_byte = idle.is_some() && bytes.is_empty();
    // Read straight into the heap buffer: a stack array would leave pages of this
    // long-lived thread's stack resident for the connection's whole life.
    const CHUNK: usize = 1024;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(HeadError::Gone);
        }
        let filled = bytes.len();
        bytes.resize(filled + CHUNK, 0);
        let n = match stream.read(&mut bytes[filled..]) {
            Ok(0) => return Err(HeadError::Gone),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                bytes.truncate(filled);
                continue;
            }
            Err(_) => return Err(HeadError::Gone),
        };
        bytes.truncate(filled + n);
        if waiting_for_first_byte {
            waiting_for_first_byte = false;
            deadline = Instant::now() + timeout;
        }
        let searched_from = filled.saturating_sub(3);
        if let Some(end) = find_blank_line(&bytes[searched_from..]) {
            // The read timeout is left as it is (one system call less per request): whoever
            // reads this socket next sets its own.
            return finish(bytes, searched_from + end);
        }
        if bytes.len() > MAX_HEAD_BYTES {
            return Err(HeadError::TooLarge);
        }
    }
}

/// Parses a head found to end at `head_len`, unless it is too large.
fn finish(bytes: Vec<u8>, head_len: usize) -> Result<Head, HeadError> {
    if head_len > MAX_HEAD_BYTES {
        return Err(HeadError::TooLarge);
    }
    parse(bytes, head_len)
}

/// The index just past the first "\r\n\r\n".
fn find_blank_line(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

fn parse(bytes: Vec<u8>, head_len: usize) -> Result<Head, HeadError> {
    let text = std::str::from_utf8(&bytes[..head_len]).map_err(|_| HeadError::Malformed)?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().ok_or(HeadError::Malformed)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed);
    };
    if method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
        || !version.starts_with("HTTP/1.")
    {
        return Err(HeadError::Malformed);
    }
    let http10 = version == "HTTP/1.0";
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (path, query) = (path.to_string(), query.to_string());
    let mut headers = Vec::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').ok_or(HeadError::Malformed)?;
        // A header name is a token: visible ASCII only (no space, tab or other byte).
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(HeadError::Malformed);
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(Head {
        method: method.to_string(),
        path,
        query,
        headers,
        bytes,
        head_len,
        http10,
        body_len: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_request_line_and_headers() {
        let raw =
            b"GET /ws?x=1 HTTP/1.1\r\nHost: a:80\r\nConnection: keep-alive, Upgrade\r\n\r\nextra"
                .to_vec();
        let end = find_blank_line(&raw).unwrap();
        let head = parse(raw, end).unwrap();
        assert_eq!((head.method.as_str(), head.path.as_str()), ("GET", "/ws"));
        assert_eq!(head.header("host"), Some("a:80"));
        assert!(head.has_token("connection", "upgrade"));
        assert_eq!(&head.bytes[head.head_len..], b"extra");
    }

    #[test]
    fn forwarded_heads_ask_to_close() {
        let raw =
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\n\r\nbody"
                .to_vec();
        let end = find_blank_line(&raw).unwrap();
        let head = parse(raw, end).unwrap();
        assert_eq!(
            head.rewritten(&[], &[]),
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nbody".to_vec()
        );
    }

    #[test]
    fn our_headers_cannot_be_forged_and_proxies_are_trusted_only_when_told() {
        let raw = b"POST /api/login HTTP/1.1\r\nHost: a\r\nX-Papo-Client: 6.6.6.6\r\n\
            X-Forwarded-For: 1.1.1.1, 2.2.2.2\r\nX-Forwarded-Proto: https\r\n\r\n{}"
            .to_vec();
        let end = find_blank_line(&raw).unwrap();
        let head = parse(raw, end).unwrap();
        let out = head.rewritten(&[], &[("X-Papo-Client", "9.9.9.9")]);
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("6.6.6.6"), "{text}");
        assert!(text.contains("X-Papo-Client: 9.9.9.9\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n{}"), "{text}");
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(
            head.client(peer, false),
            ClientInfo {
                addr: peer,
                https: false
            }
        );
        assert_eq!(
            head.client(peer, true),
            ClientInfo {
                addr: "2.2.2.2".parse().unwrap(),
                https: true
            }
        );
    }

    #[test]
    fn rejects_garbage() {
        for raw in [
            &b"\x00\x01\x02\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"get / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        ] {
            assert!(parse(raw.to_vec(), raw.len()).is_err(), "{raw:?}");
        }
    }
}
