//! Plain HTTP on the public port, served on each connection's own thread, request after
//! request (keep-alive): the embedded page and `/healthz` answered right there through the
//! one response writer (`respond`); `/api/` passed to tiny_http on a private loopback socket,
//! one request at a time.
//!
//! Why not tiny_http for everything, as the design card has it: measured here with
//! `wrk -t1 -c50 -d5s`, tiny_http 0.12 alone answers a keep-alive "hello" at ~37k
//! requests/s (one thread takes every request from its queue, and its worker per connection
//! hands each one over), and the bridge in front of it (a second socket and a copy per
//! request) took papo to ~4k; the Node peer answers ~57k. Answering on the thread that read
//! the request costs one read and one write per request, no hand-over. The API keeps
//! tiny_http: it is not on any hot path, and its handlers already speak tiny_http.

pub mod assets;
pub mod respond;

use crate::accounts::api;
use crate::head::{self, BodyError, ClientInfo, Head};
use crate::metrics::{access, Metrics};
use crate::store::Health;
use respond::After;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The largest API answer relayed whole (they are small JSON); a larger one is streamed
/// and its connection closed.
const MAX_API_ANSWER: usize = 256 * 1024;
/// How long the relay waits on tiny_http's answer: longer than any API call takes (the
/// hub's wait is 5 s, the sign-in tarpit 1 s), short enough that a wedged one is let go.
const API_ANSWER_WAIT: Duration = Duration::from_secs(30);

pub struct HttpServer {
    /// tiny_http, serving `/api/` on a private loopback socket.
    server: Arc<tiny_http::Server>,
    /// Where that socket listens; only this module connects to it.
    addr: SocketAddr,
    /// The thread that takes tiny_http's requests and hands them to the API.
    thread: Option<JoinHandle<()>>,
    /// The database's health, which `/healthz` reports.
    health: Health,
    /// The operator's counters: `/metrics` serves them (an upload handler here counts each
    /// kept file with `metrics.upload(bytes)`).
    metrics: Arc<Metrics>,
    /// `--metrics-token`: when set, the only way into `/metrics` (see `metrics::access`).
    metrics_token: Option<String>,
}

/// What the connection does after a request.
#[derive(Debug)]
pub enum Next {
    /// Reads the next request; the bytes are its start, already read (pipelined).
    KeepAlive(Vec<u8>),
    /// Closes (the answer said `Connection: close`, or the client is gone).
    Close,
}

/// What serving a request needs of the server's settings.
pub struct Limits {
    /// How long a request body may take to arrive (the head's deadline, applied again).
    pub head_timeout: Duration,
}

impl HttpServer {
    /// Starts tiny_http on 127.0.0.1 with a port of its own; only the relay connects to it.
    /// `/api/` requests go to `api`; `/healthz` reports `health`: 503 while the database
    /// cannot be written; `/metrics` serves `metrics` to whoever may read it. The page's
    /// assets are prepared (hashed, gzipped) here, once.
    pub fn start(
        api: Arc<crate::accounts::api::Api>,
        health: Health,
        metrics: Arc<Metrics>,
        metrics_token: Option<String>,
    ) -> io::Result<HttpServer> {
        assets::prepare();
        let server = tiny_http::Server::http("127.0.0.1:0").map_err(io::Error::other)?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| io::Error::other("tiny_http has no IP address"))?;
        let server = Arc::new(server);
        let serving = server.clone();
        let thread = std::thread::Builder::new()
            .name("papo-http".into())
            .spawn(move || {
                for request in serving.incoming_requests() {
                    crate::accounts::api::handle(&api, request);
                }
            })?;
        Ok(HttpServer {
            server,
            addr,
            thread: Some(thread),
            health,
            metrics,
            metrics_token,
        })
    }

    /// Answers one plain HTTP request (not a WebSocket upgrade) read off `stream`, and
    /// says whether the connection goes on. Any request body is read here, whole and
    /// bounded, within `limits.head_timeout`, so no thread ever waits on a slow body
    /// unbounded (tiny_http would read an unread one into `vec![0; Content-Length]`).
    pub fn serve(
        &self,
        stream: &Arc<TcpStream>,
        mut head: Head,
        client: ClientInfo,
        limits: &Limits,
    ) -> Next {
        let api = head.path.starts_with("/api/");
        // The upload seam: `POST /api/files` will stream its body to disk under a limit of
        // its own, so it is to be routed here, before any body is read, to a handler
        // given `stream`, `head` (`head.bytes[head.head_len..]` holds the body's first
        // bytes, already read), `client`, and the session cookie (`head.header("cookie")`).
        // Until then it is an API request like the others (tiny_http answers 404), its body
        // read whole and bounded by `api::MAX_BODY` like any body.
        if api || head::has_body(&head) {
            if head.has_token("expect", "100-continue") {
                // curl waits for this past 1 KiB of body.
                let _ = (&**stream).write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
            }
            let deadline = Instant::now() + limits.head_timeout;
            let refusal = match head::read_body(stream, &mut head, api::MAX_BODY, deadline) {
                Ok(()) => None,
                Err(BodyError::Gone) => return Next::Close,
                Err(BodyError::TooLarge) => Some((413, "too_large", "413 Payload Too Large")),
                Err(BodyError::LengthRequired) => Some((411, "bad_request", "411 Length Required")),
            };
            if let Some((status, code, message)) = refusal {
                // The body is not read, so the connection cannot go on.
                let body = format!("{{\"code\":\"{code}\",\"message\":\"{message}\"}}");
                let json = [("Content-Type", "application/json")];
                let _ =
                    respond::simple(stream, &head, status, &json, body.as_bytes(), After::Close);
                close_gently(stream);
                return Next::Close;
            }
        }
        let answered = match api {
            true => self.relay_api(stream, &head, client),
            false => self.serve_page(stream, &head),
        };
        match answered {
            Ok(After::KeepAlive) => Next::KeepAlive(head.into_pipelined()),
            Ok(After::Close) => {
                close_gently(stream);
                Next::Close
            }
            Err(e) => {
                log::debug!("HTTP answer for {} not sent: {e}", head.path);
                Next::Close
            }
        }
    }

    /// The page, `/healthz`, and 404 / 405, answered on this thread.
    fn serve_page(&self, stream: &TcpStream, head: &Head) -> io::Result<After> {
        let after = After::for_request(head, false);
        let text = ("Content-Type", "text/plain; charset=utf-8");
        let nosniff = ("X-Content-Type-Options", "nosniff");
        if head.method != "GET" && head.method != "HEAD" {
            let allow = ("Allow", "GET, HEAD");
            let body = b"method not allowed\n";
            respond::simple(stream, head, 405, &[text, nosniff, allow], body, after)?;
        } else if head.path == "/healthz" {
            // A server that cannot keep messages should be taken out of rotation; and a
            // health answer is never to be cached.
            let (status, body) = match self.health.writable() {
                true => (200, &b"ok"[..]),
                false => (503, &b"database unavailable\n"[..]),
            };
            let no_store = ("Cache-Control", "no-store");
            respond::simple(
                stream,
                head,
                status,
                &[text, nosniff, no_store],
                body,
                after,
            )?;
        } else if head.path == "/metrics" && self.may_read_metrics(stream, head) {
            let headers = [
                ("Content-Type", crate::metrics::CONTENT_TYPE),
                ("Cache-Control", "no-store"),
            ];
            let body = self.metrics.render();
            respond::simple(stream, head, 200, &headers, body.as_bytes(), after)?;
        } else if assets::exists(&head.path) {
            assets::serve(stream, head, &head.path, after)?;
        } else {
            respond::simple(stream, head, 404, &[text, nosniff], b"not found\n", after)?;
        }
        Ok(after)
    }

    /// Whether this request may read `/metrics`: the operator's token, or without one a
    /// request straight from this machine (a loopback peer, no forwarding header). Anyone
    /// else gets the 404 of a page that does not exist.
    fn may_read_metrics(&self, stream: &TcpStream, head: &Head) -> bool {
        let local = stream.peer_addr().is_ok_and(|peer| {
            access::is_local(peer.ip(), head.headers.iter().map(|(n, _)| n.as_str()))
        });
        access::may_read(
            local,
            head.header("authorization"),
            self.metrics_token.as_deref(),
        )
    }

    /// Passes one API request (its body already read) to tiny_http, asking it to close
    /// after answering, and relays the answer with the `Connection` header this connection
    /// needs: kept alive when the answer's length is known, closed otherwise. tiny_http
    /// sees every client as 127.0.0.1: the real address travels in a header only we set.
    fn relay_api(&self, stream: &TcpStream, head: &Head, client: ClientInfo) -> io::Result<After> {
        let addr = client.addr.to_string();
        let https = if client.https { "1" } else { "0" };
        // An `Expect` answered above is not tiny_http's to answer again.
        let forwarded = head.rewritten(
            &["expect"],
            &[(api::CLIENT_HEADER, &addr), (api::HTTPS_HEADER, https)],
        );
        let upstream = TcpStream::connect(self.addr)?;
        let _ = upstream.set_nodelay(true);
        upstream.set_read_timeout(Some(API_ANSWER_WAIT))?;
        (&upstream).write_all(&forwarded)?;
        let mut answer = Vec::with_capacity(1024);
        (&upstream)
            .take(MAX_API_ANSWER as u64 + 1)
            .read_to_end(&mut answer)?;
        let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
            (&*stream).write_all(&answer)?;
            return Ok(After::Close);
        };
        let (answer_head, body) = answer.split_at(end + 4);
        let whole = answer.len() <= MAX_API_ANSWER
            && content_length(answer_head) == Some(body.len())
            && !has_header(answer_head, b"transfer-encoding");
        let after = After::for_request(head, !whole);
        let connection = match after {
            After::Close => Some("close"),
            After::KeepAlive if head.http10 => Some("keep-alive"),
            After::KeepAlive => None,
        };
        (&*stream).write_all(&with_connection(answer_head, connection))?;
        (&*stream).write_all(body)?;
        if !whole {
            io::copy(&mut &upstream, &mut &*stream)?;
        }
        Ok(after)
    }

    /// Stops serving and joins the request thread.
    pub fn stop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Ends a connection after an answer that said `Connection: close`: the write side first,
/// so the answer is delivered, then whatever the client already sent is taken in (never
/// waiting for more): closing with unread bytes resets the connection, and a reset may
/// make the client drop the answer unread.
pub fn close_gently(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    if stream.set_nonblocking(true).is_ok() {
        let mut unread = [0u8; 4096];
        for _ in 0..4 {
            if !matches!((&*stream).read(&mut unread), Ok(n) if n > 0) {
                break;
            }
        }
    }
}

/// An answer head's `Content-Length`, if it has one readable one.
fn content_length(head: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(head).ok()?;
    text.split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
}

fn has_header(head: &[u8], name: &[u8]) -> bool {
    head.split(|&b| b == b'\n').any(|line| {
        line.split(|&b| b == b':')
            .next()
            .is_some_and(|n| n.trim_ascii().eq_ignore_ascii_case(name))
    })
}

/// A complete answer head with its `Connection` and `Keep-Alive` headers replaced by
/// `Connection: VALUE`, or by none.
fn with_connection(head: &[u8], value: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len() + 19);
    let lines = head
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty() && *l != b"\r");
    for (i, line) in lines.enumerate() {
        let name = line.split(|&b| b == b':').next().unwrap_or(b"");
        let connection =
            name.eq_ignore_ascii_case(b"connection") || name.eq_ignore_ascii_case(b"keep-alive");
        if i > 0 && connection {
            continue;
        }
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    if let Some(value) = value {
        out.extend_from_slice(format!("Connection: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_head_gains_connection_close() {
        let head = b"HTTP/1.1 200 OK\r\nServer: tiny-http (Rust)\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(
            with_connection(head, Some("close")),
            b"HTTP/1.1 200 OK\r\nServer: tiny-http (Rust)\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
                .to_vec()
        );
    }

    #[test]
    fn a_connection_header_is_replaced_not_repeated() {
        let head = b"HTTP/1.1 404 Not Found\r\nconnection: keep-alive\r\nKeep-Alive: 5\r\n\r\n";
        assert_eq!(
            with_connection(head, Some("close")),
            b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n".to_vec()
        );
    }

    #[test]
    fn a_kept_alive_answer_loses_its_connection_header() {
        let head = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(
            with_connection(head, None),
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n".to_vec()
        );
        assert_eq!(content_length(head), Some(2));
        assert!(!has_header(head, b"transfer-encoding"));
    }
}
