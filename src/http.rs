//! Plain HTTP, served by tiny_http on a private loopback socket: the embedded page,
//! `/healthz`, and the bridge that hands it connections our accept loop routed here.

use crate::threads::ThreadCount;
use rust_embed::RustEmbed;
use std::borrow::Cow;
use std::io::{self, Write};
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
    pub fn start() -> io::Result<HttpServer> {
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
                    respond(request);
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
        let _ = io::copy(&mut &upstream, &mut &*client);
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

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn respond(request: Request) {
    let path = request.url().split('?').next().unwrap_or("/").to_string();
    let response = match request.method() {
        Method::Get | Method::Head => route(&path),
        _ => text(405, "method not allowed\n").with_header(header("Allow", "GET, HEAD")),
    };
    if let Err(e) = request.respond(response) {
        log::debug!("HTTP response for {path} not sent: {e}");
    }
}

fn route(path: &str) -> Response<io::Cursor<Vec<u8>>> {
    if path == "/healthz" {
        return text(200, "ok");
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
        "json" | "webmanifest" => "application/json",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}
