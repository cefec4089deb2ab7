//! Plain HTTP, served by tiny_http on a private loopback socket: the embedded page,
//! `/healthz`, and the bridge that hands it connections our accept loop routed here.

use crate::store::Health;
use crate::threads::ThreadCount;
use rust_embed::RustEmbed;
use std::borrow::Cow;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tiny_http::{Header, Method, Request, Response};

/// The web page, compiled into the binary.
#[derive(RustEmbed)]
#[folder = "ui/"]
struct Assets;

/// The page may load only its own files and talk only to its own server.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
     form-action 'self'";

/// Stack of a bridge thread: it only copies bytes.
const BRIDGE_STACK: usize = 64 * 1024;

pub struct HttpServer {
    server: Arc<tiny_http::Server>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Starts tiny_http on 127.0.0.1 with a port of its own; only the bridge connects to it.
    /// `/api/` requests go to `api`; `/healthz` reports `health`: 503 while the database
    /// cannot be written.
    pub fn start(api: Arc<crate::accounts::api::Api>, health: Health) -> io::Result<HttpServer> {
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
                    if request.url().starts_with("/api/") {
                        crate::accounts::api::handle(&api, request);
                    } else {
                        respond(request, &health);
                    }
                }
            })?;
        Ok(HttpServer {
            server,
            addr,
            thread: Some(thread),
        })
    }

    /// Passes a client connection to tiny_http: `already_read` (the request head our
    /// accept loop read to route it) first, then bytes both ways until either side ends.
    /// A keep-alive connection silent for `idle` is closed.
    pub fn bridge(
        &self,
        client: Arc<TcpStream>,
        already_read: &[u8],
        idle: Duration,
        threads: &ThreadCount,
    ) {
        let upstream = match TcpStream::connect(self.addr) {
            Ok(s) => s,
            Err(e) => {
                log::warn!("cannot reach the HTTP server: {e}");
                return;
            }
        };
        let _ = upstream.set_nodelay(true);
        let _ = client.set_read_timeout(Some(idle));
        if (&upstream).write_all(already_read).is_err() {
            return;
        }
        let Ok(upstream_writer) = upstream.try_clone() else {
            return;
        };
        let client_reader = client.clone();
        let to_server = threads.spawn("papo-bridge".into(), BRIDGE_STACK, move || {
            let _ = io::copy(&mut &*client_reader, &mut &upstream_writer);
            let _ = upstream_writer.shutdown(Shutdown::Write);
        });
        let _ = forward_answer(&upstream, &client);
        let _ = client.shutdown(Shutdown::Both);
        let _ = upstream.shutdown(Shutdown::Both);
        if let Ok(handle) = to_server {
            let _ = handle.join();
        }
    }

    /// Stops serving and joins the request thread.
    pub fn stop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The largest answer head the bridge rewrites; tiny_http's are a few hundred bytes.
const MAX_ANSWER_HEAD: usize = 8 * 1024;

/// Copies tiny_http's answer to the client, its head saying `Connection: close`. The bridge
/// serves one request per connection and closes it after the answer, and an HTTP/1.1 client
/// must be told so (RFC 9112 §9.6) or it may send its next request into a closing socket.
/// tiny_http never says it: it drops any `Connection` header a response sets, and writes
/// none itself even when the request asked to close. Interim (1xx) answers pass unchanged.
fn forward_answer(upstream: &TcpStream, client: &TcpStream) -> io::Result<u64> {
    let mut pending = Vec::with_capacity(1024);
    let mut chunk = vec![0u8; 4096];
    loop {
        match pending.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(end) if is_interim(&pending) => {
                (&*client).write_all(&pending[..end + 4])?;
                pending.drain(..end + 4);
                continue;
            }
            Some(end) => {
                (&*client).write_all(&with_connection_close(&pending[..end + 4]))?;
                (&*client).write_all(&pending[end + 4..])?;
                break;
            }
            // Not an answer head we understand: pass it on as it is.
            None if pending.len() > MAX_ANSWER_HEAD => {
                (&*client).write_all(&pending)?;
                break;
            }
            None => {}
        }
        let n = (&*upstream).read(&mut chunk)?;
        if n == 0 {
            (&*client).write_all(&pending)?;
            return Ok(0);
        }
        pending.extend_from_slice(&chunk[..n]);
    }
    drop((pending, chunk));
    io::copy(&mut &*upstream, &mut &*client)
}

/// True for a `1xx` status line, which another answer follows.
fn is_interim(head: &[u8]) -> bool {
    head.starts_with(b"HTTP/") && head.get(9) == Some(&b'1')
}

/// A complete answer head (ending in the blank line) with `Connection: close`, replacing
/// any `Connection` or `Keep-Alive` header it had.
fn with_connection_close(head: &[u8]) -> Vec<u8> {
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
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn respond(request: Request, health: &Health) {
    let path = request.url().split('?').next().unwrap_or("/").to_string();
    let response = match request.method() {
        Method::Get | Method::Head => route(&path, health),
        _ => text(405, "method not allowed\n").with_header(header("Allow", "GET, HEAD")),
    };
    if let Err(e) = request.respond(response) {
        log::debug!("HTTP response for {path} not sent: {e}");
    }
}

fn route(path: &str, health: &Health) -> Response<io::Cursor<Vec<u8>>> {
    if path == "/healthz" {
        // A server that cannot keep messages should be taken out of rotation.
        return match health.writable() {
            true => text(200, "ok"),
            false => text(503, "database unavailable\n"),
        };
    }
    let name = match path {
        "/" => "index.html",
        other => other.trim_start_matches('/'),
    };
    match Assets::get(name) {
        Some(file) => {
            let body = match file.data {
                Cow::Borrowed(bytes) => bytes.to_vec(),
                Cow::Owned(bytes) => bytes,
            };
            Response::from_data(body)
                .with_header(header("Content-Type", content_type(name)))
                .with_header(header("Content-Security-Policy", CONTENT_SECURITY_POLICY))
                .with_header(header("X-Content-Type-Options", "nosniff"))
                .with_header(header("Referrer-Policy", "no-referrer"))
                .with_header(header("Cache-Control", "no-cache"))
        }
        None => text(404, "not found\n"),
    }
}

fn text(status: u16, body: &str) -> Response<io::Cursor<Vec<u8>>> {
    Response::from_string(body)
        .with_status_code(status)
        .with_header(header("Content-Type", "text/plain; charset=utf-8"))
        .with_header(header("X-Content-Type-Options", "nosniff"))
}

fn header(name: &str, value: &str) -> Header {
    // Only called with the constant, valid header names and values above.
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        // The type the Web App Manifest spec registers; browsers accept it for <link rel=manifest>.
        "webmanifest" => "application/manifest+json",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_and_icons_have_their_types() {
        assert_eq!(
            content_type("manifest.webmanifest"),
            "application/manifest+json"
        );
        assert_eq!(content_type("icon-192.png"), "image/png");
        for name in [
            "manifest.webmanifest",
            "icon-192.png",
            "icon-512.png",
            "icon-maskable-512.png",
            "apple-touch-icon.png",
        ] {
            assert!(Assets::get(name).is_some(), "{name} is not embedded");
        }
    }

    #[test]
    fn an_answer_head_gains_connection_close() {
        let head = b"HTTP/1.1 200 OK\r\nServer: tiny-http (Rust)\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(
            with_connection_close(head),
            b"HTTP/1.1 200 OK\r\nServer: tiny-http (Rust)\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
                .to_vec()
        );
    }

    #[test]
    fn a_connection_header_is_replaced_not_repeated() {
        let head = b"HTTP/1.1 404 Not Found\r\nconnection: keep-alive\r\nKeep-Alive: 5\r\n\r\n";
        assert_eq!(
            with_connection_close(head),
            b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n".to_vec()
        );
    }

    #[test]
    fn only_1xx_answers_are_interim() {
        assert!(is_interim(b"HTTP/1.1 100 Continue\r\n\r\n"));
        assert!(!is_interim(b"HTTP/1.1 200 OK\r\n\r\n"));
        assert!(!is_interim(b"garbage"));
    }
}
