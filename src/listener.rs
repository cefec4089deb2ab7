//! The public port: our own accept loop (capped in all and per client address, retrying
//! accept errors with back-off), a thread per connection that reads the request head, and
//! the routing of each request to the WebSocket handshake or to the HTTP side, request
//! after request on a kept-alive connection.

use crate::accounts::token;
use crate::address_limit::{self, AddressLimit, Ticket};
use crate::config::Config;
use crate::head::{self, HeadError};
use crate::http::{self, HttpServer};
use crate::hub::HubInput;
use crate::metrics::{ConnKind, Limit, Metrics};
use crate::threads::ThreadCount;
use crate::upgrade::{self, Refusal};
use crate::writer::WriterPool;
use crate::ws;
use crossbeam_channel::Sender;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Stack of a connection thread: it reads the head, then runs the WebSocket reader
/// (JSON parsing is bounded by serde_json's recursion limit).
const CONNECTION_STACK: usize = 256 * 1024;
/// Sockets allowed beyond `max_connections`, for page loads and handshakes in progress.
const SPARE_SOCKETS: usize = 256;

/// The answer to a connection whose address holds `--max-connections-per-ip` sockets
/// already. 429, not 503: the server is not full, this client is over its share, and
/// version 1.1's HTTP API answers every limit with 429, `rate_limited` and `retry_after`;
/// a page or a bot reading it learns the same thing either way. Retry-After is a guess at
/// when a place frees up: page loads take milliseconds, stalled heads are shed within the
/// head deadline.
const TOO_MANY_FROM_ADDRESS: &str = concat!(
    "HTTP/1.1 429 Too Many Requests\r\n",
    "Retry-After: 5\r\n",
    "Content-Type: application/json\r\n",
    "Content-Length: 106\r\n",
    "Connection: close\r\n\r\n",
    r#"{"code":"rate_limited","message":"too many connections from your address, try again soon","retry_after":5}"#,
);
/// The answer to a connection past every socket the server keeps (`max_connections` plus
/// the spare ones), rather than a silent reset.
const SERVER_FULL: &str = concat!(
    "HTTP/1.1 503 Service Unavailable\r\n",
    "Retry-After: 5\r\n",
    "Content-Type: text/plain; charset=utf-8\r\n",
    "Content-Length: 35\r\n",
    "Connection: close\r\n\r\n",
    "the server is full, try again soon\n",
);

/// What every connection thread shares.
pub struct Shared {
    pub config: Config,
    pub hub: Sender<HubInput>,
    pub threads: ThreadCount,
    pub http: HttpServer,
    pub writers: WriterPool,
    /// Uploads (`POST /api/files`), read from the socket as they stream in, and the stored
    /// files `GET /files/…` serves.
    pub uploads: Arc<crate::files::upload::Uploads>,
    /// The operator's counters: connections open, sockets refused per address.
    pub metrics: Arc<Metrics>,
    /// Every open client socket, so shutdown can close them all.
    sockets: Mutex<HashMap<u64, Arc<TcpStream>>>,
    /// Open sockets per client address, so one address cannot take them all.
    addresses: Arc<AddressLimit>,
    /// When "the server is full" was last logged, and how many went unlogged since: a
    /// flood of connections must not flood the log.
    full_logged: Mutex<(Option<Instant>, u64)>,
    websockets: AtomicUsize,
    next_conn: AtomicU64,
    stopping: AtomicBool,
}

impl Shared {
    pub fn new(
        config: Config,
        hub: Sender<HubInput>,
        threads: ThreadCount,
        http: HttpServer,
        writers: WriterPool,
        uploads: Arc<crate::files::upload::Uploads>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Shared {
            uploads,
            addresses: AddressLimit::new(config.max_connections_per_ip),
            full_logged: Mutex::new((None, 0)),
            config,
            hub,
            threads,
            http,
            writers,
            metrics,
            sockets: Mutex::new(HashMap::new()),
            websockets: AtomicUsize::new(0),
            next_conn: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
        }
    }

    pub fn stop_accepting(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Shuts every client socket down, waking any thread blocked on one.
    pub fn close_all_sockets(&self) {
        for socket in self.lock_sockets().values() {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    fn lock_sockets(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<TcpStream>>> {
        self.sockets.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Accepts connections until the server stops.
pub fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    match shared.addresses.max() {
        0 => log::info!("no limit on the sockets one client address may hold"),
        max => {
            log::info!("at most {max} open sockets per client address (--max-connections-per-ip)")
        }
    }
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = listener.accept();
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let (stream, peer) = match accepted {
            Ok(pair) => {
                backoff = Duration::from_millis(5);
                pair
            }
            Err(e) => {
                // Out of descriptors or memory, or an aborted connection: wait a little
                // rather than spin, and keep serving the connections we have.
                log::warn!("accept failed: {e}; retrying in {backoff:?}");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        // Counted out when the connection's thread ends (or here, if it is turned away).
        let Some(ticket) = admit(&shared, &stream, peer) else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
        let stream = Arc::new(stream);
        shared.lock_sockets().insert(id, stream.clone());
        let conn_shared = shared.clone();
        let spawned = shared
            .threads
            .spawn(format!("papo-c{id}"), CONNECTION_STACK, move || {
                let _ticket = ticket;
                serve_connection(&conn_shared, stream, id);
                conn_shared.lock_sockets().remove(&id);
            });
        if let Err(e) = spawned {
            log::warn!("no thread for a new connection ({e}); dropping it");
            shared.lock_sockets().remove(&id);
        }
    }
}

/// Counts a new connection against its address and the server's socket cap; turns it away
/// with a short answer, on this thread and without blocking it, if either is reached.
fn admit(shared: &Shared, stream: &TcpStream, peer: SocketAddr) -> Option<Ticket> {
    let now = Instant::now();
    let ticket = match shared.addresses.admit(peer.ip(), now) {
        Ok(ticket) => ticket,
        Err(refusal) => {
            shared.metrics.rate_limited(Limit::AddressSockets);
            if let Some(unlogged) = refusal.log {
                let max = shared.addresses.max();
                log::warn!(
                    "{} has {max} sockets open, its limit (--max-connections-per-ip); refusing \
                     its new connections{}. Behind a reverse proxy every client has the proxy's \
                     address: see --max-connections-per-ip in the README",
                    refusal.address,
                    more_since(unlogged),
                );
            }
            turn_away(stream, TOO_MANY_FROM_ADDRESS);
            return None;
        }
    };
    if shared.lock_sockets().len() >= shared.config.max_connections + SPARE_SOCKETS {
        let mut logged = shared.full_logged.lock().unwrap_or_else(|e| e.into_inner());
        let (last, unlogged) = &mut *logged;
        if last.is_none_or(|t| now.saturating_duration_since(t) >= address_limit::LOG_EVERY) {
            log::warn!(
                "too many open sockets; refusing new connections{}",
                more_since(std::mem::take(unlogged))
            );
            *last = Some(now);
        } else {
            *unlogged += 1;
        }
        turn_away(stream, SERVER_FULL);
        return None;
    }
    Some(ticket)
}

fn more_since(unlogged: u64) -> String {
    match unlogged {
        0 => String::new(),
        n => format!(" ({n} more refused since this was last logged)"),
    }
}

/// Writes `answer` and closes, on the accept thread: the socket is made non-blocking so a
/// client that reads nothing cannot hold the accept loop (a fresh socket's send buffer takes
/// a few hundred bytes whole).
fn turn_away(stream: &TcpStream, answer: &str) {
    if stream.set_nonblocking(true).is_ok() {
        let _ = (&*stream).write(answer.as_bytes());
    }
    let _ = stream.shutdown(Shutdown::Write);
    // Closing a socket with unread bytes resets the connection, and a reset may make the
    // client drop the answer unread: take in what the request already sent (a few reads
    // at most, never waiting for more).
    let mut unread = [0u8; 4096];
    for _ in 0..4 {
        if !matches!((&*stream).read(&mut unread), Ok(n) if n > 0) {
            break;
        }
    }
}

/// Reads request after request off a connection (HTTP keep-alive) and routes each: a
/// WebSocket upgrade takes the connection over; anything else is answered and, unless it
/// closes, the next request is awaited for `--http-idle-timeout`. Every request's head must
/// arrive within the head deadline (`Config::head_timeout`, 10 s) of its first byte, and
/// the connection keeps its place under the per-address cap the whole time, so a slow or
/// silent client holds one thread of its share however many requests it sends.
fn serve_connection(shared: &Shared, stream: Arc<TcpStream>, id: u64) {
    // A client that stops reading its answers holds this thread no longer than a slow head.
    let _ = stream.set_write_timeout(Some(shared.config.head_timeout));
    let peer = stream
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(std::net::Ipv6Addr::UNSPECIFIED.into());
    let limits = http::Limits {
        head_timeout: shared.config.head_timeout,
    };
    // The first request is what the connection was opened for: no idle wait before it.
    let mut idle = None;
    let mut open_http = None;
    let mut pipelined = Vec::new();
    loop {
        let read = head::read_head(&stream, pipelined, idle, shared.config.head_timeout);
        let head = match read {
            Ok(head) => head,
            Err(HeadError::Gone) => return,
            Err(HeadError::TooLarge) => {
                return answer(&stream, "431 Request Header Fields Too Large")
            }
            Err(HeadError::Malformed) => return answer(&stream, "400 Bad Request"),
        };
        let client = head.client(peer, shared.config.trust_proxy);
        if head.path == "/ws" {
            // The WebSocket sets its own timeouts; none of ours may linger.
            let _ = stream.set_read_timeout(None);
            let _ = stream.set_write_timeout(None);
            drop(open_http.take());
            return serve_websocket(shared, stream, head, id, client, peer);
        }
        // Counted as an HTTP connection from its first request until it closes or upgrades.
        open_http.get_or_insert_with(|| shared.metrics.open(ConnKind::Http));
        if head.path == crate::files::http_upload::PATH {
            // Streamed to disk under a limit of its own (not read whole like other
            // bodies); the connection closes after the answer.
            return crate::files::http_upload::serve(
                &shared.uploads,
                &shared.metrics,
                &stream,
                &head,
                &shared.config.allow_origins,
                shared.config.idle_timeout,
            );
        }
        if crate::files::serve::is_files_path(&head.path) {
            let files = &shared.uploads;
            match crate::files::serve::answer(&files.index, &files.dir, &stream, &head) {
                Ok(http::respond::After::KeepAlive) => {
                    pipelined = head.into_pipelined();
                    idle = Some(shared.config.http_idle_timeout);
                    continue;
                }
                Ok(http::respond::After::Close) => return http::close_gently(&stream),
                Err(e) => {
                    log::debug!("file answer for {} not sent: {e}", head.path);
                    return;
                }
            }
        }
        match shared.http.serve(&stream, head, client, &limits) {
            http::Next::KeepAlive(rest) => pipelined = rest,
            http::Next::Close => return,
        }
        idle = Some(shared.config.http_idle_timeout);
    }
}

fn serve_websocket(
    shared: &Shared,
    stream: Arc<TcpStream>,
    head: head::Head,
    id: u64,
    client: head::ClientInfo,
    peer: std::net::IpAddr,
) {
    let accept = match upgrade::check(&head, &shared.config.allow_origins) {
        Ok(accept) => accept,
        Err(refusal) => return refuse(&stream, refusal),
    };
    // Counted out by `Slot` on every path from here.
    let slot = Slot::take(&shared.websockets, shared.config.max_connections);
    if slot.is_none() {
        log::warn!(
            "at the connection limit ({}); refusing an upgrade",
            shared.config.max_connections
        );
        return refuse(&stream, Refusal::AtCapacity);
    }
    if (&*stream)
        .write_all(upgrade::switching_protocols(&accept).as_bytes())
        .is_err()
    {
        return;
    }
    let _open = shared.metrics.open(ConnKind::WebSocket);
    // The client's address, as limits see it: behind a trusted proxy, the one it forwarded.
    let via = if client.addr == peer.to_canonical() {
        String::new()
    } else {
        format!(" via {peer}")
    };
    log::info!("connection {id} opened from {}{via}", client.addr);
    let early = head.bytes[head.head_len..].to_vec();
    // A session cookie signs the connection in: one SHA-256 here, a map lookup on the hub,
    // no password hashing.
    let session = head
        .header("cookie")
        .and_then(token::from_cookie_header)
        .map(token::digest);
    // The head is not needed any more; free it rather than hold it for the connection's life.
    drop(head);
    let ctx = ws::Context {
        config: &shared.config,
        hub: &shared.hub,
        writers: &shared.writers,
    };
    ws::serve(stream, early, id, client.addr, session, &ctx);
    log::info!("connection {id} closed");
}

fn refuse(stream: &TcpStream, refusal: Refusal) {
    let mut s = stream;
    let _ = s.write_all(refusal.response().as_bytes());
    let _ = stream.shutdown(Shutdown::Write);
}

fn answer(stream: &TcpStream, status: &str) {
    let response = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let mut s = stream;
    let _ = s.write_all(response.as_bytes());
    let _ = stream.shutdown(Shutdown::Write);
}

/// One of the `max_connections` WebSocket places, given back on drop.
struct Slot<'a>(&'a AtomicUsize);

impl<'a> Slot<'a> {
    fn take(count: &'a AtomicUsize, max: usize) -> Option<Slot<'a>> {
        let taken = count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        });
        taken.ok().map(|_| Slot(count))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canned_answers_say_their_length_and_close() {
        for answer in [TOO_MANY_FROM_ADDRESS, SERVER_FULL] {
            let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
            assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())));
            assert!(head.contains("\r\nConnection: close"));
        }
        let body = TOO_MANY_FROM_ADDRESS.split_once("\r\n\r\n").unwrap().1;
        let json: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(json["code"], "rate_limited");
    }
}
