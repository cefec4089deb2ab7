//! The public port: our own accept loop (capped, retrying accept errors with back-off), a
//! thread per connection that reads the request head, and the routing of each connection
//! to the WebSocket handshake or to tiny_http.

use crate::config::Config;
use crate::head::{self, HeadError};
use crate::http::HttpServer;
use crate::hub::HubInput;
use crate::threads::ThreadCount;
use crate::upgrade::{self, Refusal};
use crate::writer::WriterPool;
use crate::ws;
use crossbeam_channel::Sender;
use std::collections::HashMap;
use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Stack of a connection thread: it reads the head, then runs the WebSocket reader
/// (JSON parsing is bounded by serde_json's recursion limit).
const CONNECTION_STACK: usize = 256 * 1024;
/// Sockets allowed beyond `max_connections`, for page loads and handshakes in progress.
const SPARE_SOCKETS: usize = 256;

/// What every connection thread shares.
pub struct Shared {
    pub config: Config,
    pub hub: Sender<HubInput>,
    pub threads: ThreadCount,
    pub http: HttpServer,
    pub writers: WriterPool,
    /// Every open client socket, so shutdown can close them all.
    sockets: Mutex<HashMap<u64, Arc<TcpStream>>>,
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
    ) -> Self {
        Shared {
            config,
            hub,
            threads,
            http,
            writers,
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
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = listener.accept();
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff = Duration::from_millis(5);
                stream
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
        if shared.lock_sockets().len() >= shared.config.max_connections + SPARE_SOCKETS {
            log::warn!("too many open sockets; dropping a new connection");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
        let stream = Arc::new(stream);
        shared.lock_sockets().insert(id, stream.clone());
        let conn_shared = shared.clone();
        let spawned = shared
            .threads
            .spawn(format!("papo-c{id}"), CONNECTION_STACK, move || {
                serve_connection(&conn_shared, stream, id);
                conn_shared.lock_sockets().remove(&id);
            });
        if let Err(e) = spawned {
            log::warn!("no thread for a new connection ({e}); dropping it");
            shared.lock_sockets().remove(&id);
        }
    }
}

/// Reads the request head and routes the connection.
fn serve_connection(shared: &Shared, stream: Arc<TcpStream>, id: u64) {
    let head = match head::read_head(&stream, shared.config.head_timeout) {
        Ok(head) => head,
        Err(HeadError::Gone) => return,
        Err(HeadError::TooLarge) => return answer(&stream, "431 Request Header Fields Too Large"),
        Err(HeadError::Malformed) => return answer(&stream, "400 Bad Request"),
    };
    if head.path == "/ws" {
        serve_websocket(shared, stream, head, id);
    } else {
        // tiny_http 0.12's worker pool can queue a new connection behind workers held by
        // idle keep-alive connections (its idle count is updated late), stalling page
        // loads; one request per connection keeps every worker short-lived.
        shared.http.bridge(
            stream,
            &head.with_connection_close(),
            shared.config.idle_timeout,
            &shared.threads,
        );
    }
}

fn serve_websocket(shared: &Shared, stream: Arc<TcpStream>, head: head::Head, id: u64) {
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
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    log::info!("connection {id} opened from {peer}");
    let early = head.bytes[head.head_len..].to_vec();
    // The head is not needed any more; free it rather than hold it for the connection's life.
    drop(head);
    let ctx = ws::Context {
        config: &shared.config,
        hub: &shared.hub,
        writers: &shared.writers,
    };
    ws::serve(stream, early, id, &ctx);
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
