//! The writer pool: a few threads write every connection's queued frames to its socket,
//! never blocking on one of them. A connection whose socket is full is handed to a thread
//! of its own, which waits on that socket until the queue drains, so a slow reader never
//! holds up anybody else's frames.
//!
//! Why a pool and not a writer thread per connection: a writer thread costs a futex wake
//! and two context switches for every frame it sends to an idle-between-messages client
//! (about 13 µs of CPU per delivery, measured under fan-out to 1,000 members), plus its
//! stack. A pool thread that is already awake pays only for the send itself (about 1.5 µs
//! in a bare send loop on this machine).

use crate::frame::{self, close_code, PING_WIRE};
use crate::ids::ConnId;
use crate::outbox::{Drainer, Inbox, Outbound};
use crate::threads::ThreadCount;
use crossbeam_channel::{Receiver, Sender};
use std::io::{self, IoSlice, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{JoinHandle, Thread};

/// Frames written with one system call at most.
const WRITE_BATCH: usize = 64;
/// Bytes a batch takes from a queue, unless its first frame alone is bigger. A batch has
/// left its queue's byte count, and a connection whose socket is full keeps its batch while
/// its thread waits (up to the write timeout), so this bounds what a client that stopped
/// reading pins beyond its queue. A 256 KiB `writev` is already a big write: a larger
/// batch would only save system calls for clients that keep up with large frames.
const BATCH_BYTES: usize = 256 * 1024;
/// Batches a pool thread writes for one connection before serving the others first.
const TURN_BATCHES: usize = 4;
/// A pool thread's stack: it only moves bytes.
const POOL_STACK: usize = 256 * 1024;
/// The stack of a thread that waits on one full socket.
const BACKLOG_STACK: usize = 128 * 1024;

/// The writer threads, started with the server and stopped after its last connection.
pub struct WriterPool {
    workers: Vec<Arc<Worker>>,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

/// One pool thread's side: the queues announced to it, and how to wake it.
pub struct Worker {
    ready_tx: Sender<Inbox>,
    ready_rx: Receiver<Inbox>,
    thread: OnceLock<Thread>,
    /// True while the thread is (about to be) parked.
    sleeping: AtomicBool,
    stopping: AtomicBool,
    /// Counts the threads given to full sockets, so shutdown waits for them.
    threads: ThreadCount,
    /// Full-socket threads running now, and how many may run at once.
    backlogged: Arc<AtomicUsize>,
    backlog_limit: usize,
}

impl WriterPool {
    /// Starts `size` writer threads. At most `backlog_limit` connections at a time get a
    /// thread of their own while their socket is full; past that a full socket ends its
    /// connection, as a slow consumer.
    pub fn start(size: usize, backlog_limit: usize, threads: &ThreadCount) -> io::Result<Self> {
        let backlogged = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        let mut handles = Vec::new();
        for i in 0..size.max(1) {
            let (ready_tx, ready_rx) = crossbeam_channel::unbounded();
            let worker = Arc::new(Worker {
                ready_tx,
                ready_rx,
                thread: OnceLock::new(),
                sleeping: AtomicBool::new(false),
                stopping: AtomicBool::new(false),
                threads: threads.clone(),
                backlogged: backlogged.clone(),
                backlog_limit,
            });
            let running = worker.clone();
            let handle = std::thread::Builder::new()
                .name(format!("papo-writer{i}"))
                .stack_size(POOL_STACK)
                .spawn(move || running.run());
            workers.push(worker);
            match handle {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    // Dropping the pool stops the threads already started.
                    drop(WriterPool {
                        workers,
                        handles: Mutex::new(handles),
                    });
                    return Err(e);
                }
            }
        }
        Ok(WriterPool {
            workers,
            handles: Mutex::new(handles),
        })
    }

    /// The pool thread that writes for connection `conn`.
    pub fn worker_for(&self, conn: ConnId) -> Arc<Worker> {
        self.workers[conn as usize % self.workers.len()].clone()
    }

    /// Stops the pool threads once their queues are empty. Call it after the connections
    /// have ended: nothing is written for them afterwards.
    pub fn stop(&self) {
        for worker in &self.workers {
            worker.stopping.store(true, Ordering::SeqCst);
            worker.wake();
        }
        let handles = std::mem::take(&mut *self.handles.lock().unwrap_or_else(|e| e.into_inner()));
        for handle in handles {
            let _ = handle.join();
        }
    }
}

impl Drop for WriterPool {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Drainer for Worker {
    /// Takes a queue whose claim the caller holds; the thread writes it when it gets to it.
    fn enqueue(&self, inbox: Inbox) {
        // The worker holds the receiving end for as long as it exists.
        let _ = self.ready_tx.send(inbox);
    }

    /// Wakes the thread if it sleeps.
    fn wake(&self) {
        // Pairs with the fence in `run`: either the thread sees the queue just announced,
        // or this sees `sleeping` and unparks it.
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            if let Some(thread) = self.thread.get() {
                thread.unpark();
            }
        }
    }
}

impl Worker {
    fn run(&self) {
        let _ = self.thread.set(std::thread::current());
        let mut batch = Vec::with_capacity(WRITE_BATCH);
        loop {
            if let Ok(inbox) = self.ready_rx.try_recv() {
                self.serve(inbox, &mut batch);
                continue;
            }
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            self.sleeping.store(true, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            // Re-check after announcing the sleep, so an announcement that missed the flag
            // is seen.
            if self.ready_rx.is_empty() && !self.stopping.load(Ordering::SeqCst) {
                std::thread::park();
            }
            self.sleeping.store(false, Ordering::SeqCst);
        }
    }

    /// Writes one connection's turn without blocking.
    fn serve(&self, inbox: Inbox, batch: &mut Vec<Outbound>) {
        let Some(route) = inbox.route() else {
            return;
        };
        match drain(&inbox, &route.stream, batch, 0, Mode::NonBlocking) {
            Drained::Released | Drained::Ended => {}
            // Still claimed: to the back of the line, so others get their turn.
            Drained::TurnOver => self.enqueue(inbox),
            Drained::SocketFull { written } => self.hand_off(inbox, std::mem::take(batch), written),
        }
        batch.clear();
    }

    /// Gives a connection whose socket is full a thread that waits on it, holding the claim
    /// until its queue is empty.
    fn hand_off(&self, inbox: Inbox, mut batch: Vec<Outbound>, written: usize) {
        let Some(route) = inbox.route() else {
            return;
        };
        let (conn, stream) = (route.conn, route.stream.clone());
        let backlogged = self.backlogged.clone();
        if backlogged.fetch_add(1, Ordering::AcqRel) >= self.backlog_limit {
            backlogged.fetch_sub(1, Ordering::AcqRel);
            log::info!("connection {conn}: socket full and no writer thread to spare; closing");
            end(&inbox, &stream);
            return;
        }
        let waiting = inbox.clone();
        let spawned = self
            .threads
            .spawn(format!("papo-b{conn}"), BACKLOG_STACK, move || {
                // Blocking, the drain ends only with the queue empty or the connection.
                drain(&waiting, &stream, &mut batch, written, Mode::Blocking);
                backlogged.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(e) = spawned {
            self.backlogged.fetch_sub(1, Ordering::AcqRel);
            log::warn!("connection {conn}: socket full and no thread to wait on it ({e}); closing");
            end(&inbox, &route.stream);
        }
    }
}

/// How a writer may use the socket.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A pool thread: a full socket is handed off, never waited on.
    NonBlocking,
    /// A connection's own thread: waits on the socket (up to its write timeout).
    Blocking,
}

/// How a writer's turn on a queue ended.
enum Drained {
    /// The queue was empty and its claim is given back.
    Released,
    /// The connection ended (close frame, error, or the reader finished).
    Ended,
    /// The pool thread wrote its share and still holds the claim.
    TurnOver,
    /// The socket took only `written` bytes of the batch; the claim is still held.
    SocketFull { written: usize },
}

/// Writes the queue (the caller holds its claim) until it is empty, the connection ends,
/// or (pool threads only) the socket is full or the turn is over. `batch` may come in
/// holding a batch of which the first `written` bytes are already out.
fn drain(
    inbox: &Inbox,
    stream: &TcpStream,
    batch: &mut Vec<Outbound>,
    mut written: usize,
    mode: Mode,
) -> Drained {
    let mut batches = 0;
    loop {
        if mode == Mode::NonBlocking && batches == TURN_BATCHES {
            return Drained::TurnOver;
        }
        if batch.is_empty() {
            fill(inbox, batch);
        }
        if batch.is_empty() {
            if inbox.release() {
                return Drained::Released;
            }
            continue;
        }
        batches += 1;
        let result = write_batch(stream, batch, written, mode);
        written = 0;
        match result {
            Written::All { ends: false } => batch.clear(),
            Written::All { ends: true } | Written::Failed => {
                batch.clear();
                end(inbox, stream);
                return Drained::Ended;
            }
            Written::Partial(written) => return Drained::SocketFull { written },
        }
    }
}

/// Takes up to a batch of items, ending at a close or finish; a connection found too slow
/// gets its 1008 close instead of anything more.
fn fill(inbox: &Inbox, batch: &mut Vec<Outbound>) {
    if inbox.is_slow() {
        batch.push(Outbound::Close(
            close_code::POLICY_VIOLATION,
            "slow consumer".into(),
        ));
        return;
    }
    inbox.take_batch(batch, WRITE_BATCH, BATCH_BYTES);
}

/// Ends a connection's writing side and wakes its reader.
fn end(inbox: &Inbox, stream: &TcpStream) {
    inbox.end();
    let _ = stream.shutdown(Shutdown::Both);
}

/// What a write of a batch achieved.
enum Written {
    /// Everything went out; `ends` if the batch closes or finishes the connection.
    All { ends: bool },
    /// Only this many bytes went out before the socket was full (non-blocking mode).
    Partial(usize),
    /// The connection is broken.
    Failed,
}

/// Writes a batch, less the `skip` bytes already written, with as few system calls as
/// the socket allows. The slices live on the stack: a delivery allocates nothing.
fn write_batch(stream: &TcpStream, batch: &[Outbound], skip: usize, mode: Mode) -> Written {
    // `fill` ends a batch at its first close, so there is at most one.
    let close_wire = batch
        .iter()
        .find_map(|item| match item {
            Outbound::Close(code, reason) => Some(frame::close_wire(*code, reason)),
            _ => None,
        })
        .unwrap_or_default();
    let mut ends = false;
    let mut slices = [IoSlice::new(&[]); WRITE_BATCH + 1];
    let mut used = 0;
    for item in batch {
        match item {
            Outbound::Frame(frame) => slices[used] = IoSlice::new(frame.wire()),
            Outbound::Ping => slices[used] = IoSlice::new(&PING_WIRE),
            Outbound::Pong(wire) => slices[used] = IoSlice::new(wire),
            Outbound::Close(..) => {
                slices[used] = IoSlice::new(&close_wire);
                ends = true;
            }
            Outbound::Finish => {
                ends = true;
                break;
            }
        }
        used += 1;
        if ends || used == slices.len() {
            break;
        }
    }
    let mut slices = &mut slices[..used];
    IoSlice::advance_slices(&mut slices, skip);
    let mut written = skip;
    while !slices.is_empty() {
        let sent = match mode {
            Mode::NonBlocking => send_now(stream, slices),
            Mode::Blocking => (&*stream).write_vectored(slices),
        };
        match sent {
            Ok(0) => return Written::Failed,
            Ok(n) => {
                written += n;
                IoSlice::advance_slices(&mut slices, n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && mode == Mode::NonBlocking => {
                return Written::Partial(written);
            }
            Err(_) => return Written::Failed,
        }
    }
    Written::All { ends }
}

/// One `sendmsg` that takes what fits and never waits. `MSG_DONTWAIT` makes this one call
/// non-blocking while the reader keeps blocking on the same descriptor (`O_NONBLOCK` would
/// change both).
fn send_now(stream: &TcpStream, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    socket2::SockRef::from(stream)
        .send_vectored_with_flags(slices, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::EncodedFrame;
    use crate::outbox::{self, Limits, Outbox, Push, Route};
    use std::io::Read;
    use std::net::TcpListener;
    use std::time::{Duration, Instant};

    /// A connected pair of sockets on loopback with a small send buffer, so that a client
    /// that does not read fills it soon: the server's end, and the client's. A tiny
    /// receive buffer fills it sooner still, but makes TCP crawl once the client reads.
    fn pair_with(tiny_receive_buffer: bool) -> (Arc<TcpStream>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        socket2::SockRef::from(&server)
            .set_send_buffer_size(4096)
            .unwrap();
        if tiny_receive_buffer {
            socket2::SockRef::from(&client)
                .set_recv_buffer_size(4096)
                .unwrap();
        }
        server
            .set_write_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        (Arc::new(server), client)
    }

    fn pair() -> (Arc<TcpStream>, TcpStream) {
        pair_with(true)
    }

    fn outbox_for(pool: &WriterPool, conn: ConnId, stream: &Arc<TcpStream>, cap: usize) -> Outbox {
        let route = Route {
            conn,
            stream: stream.clone(),
            worker: pool.worker_for(conn),
        };
        let limits = Limits {
            frames: cap,
            bytes: usize::MAX,
        };
        outbox::routed(limits, route)
    }

    /// What a client read until the server ended the connection: the text frames, and
    /// the close code if a close frame came. Panics on a frame cut short.
    fn read_until_end(client: TcpStream) -> (Vec<String>, Option<u16>) {
        let (texts, close, cut) = read_frames_until_end(client);
        assert!(!cut, "the stream ends on a frame boundary");
        (texts, close)
    }

    /// The frames a client read until the end, and whether the last one was cut short.
    fn read_frames_until_end(mut client: TcpStream) -> (Vec<String>, Option<u16>, bool) {
        let mut bytes = Vec::new();
        let _ = client.read_to_end(&mut bytes);
        let (mut texts, mut close, mut at) = (Vec::new(), None, 0);
        while at + 4 <= bytes.len() {
            let opcode = bytes[at] & 0x0f;
            let (len, header) = match bytes[at + 1] {
                126 => (
                    u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize,
                    4,
                ),
                127 => panic!("no frame here is that big"),
                n => (n as usize, 2),
            };
            if at + header + len > bytes.len() {
                break;
            }
            let payload = &bytes[at + header..at + header + len];
            match opcode {
                0x1 => texts.push(String::from_utf8(payload.to_vec()).unwrap()),
                0x8 => close = Some(u16::from_be_bytes([payload[0], payload[1]])),
                other => panic!("unexpected opcode {other}"),
            }
            at += header + len;
        }
        (texts, close, at != bytes.len())
    }

    #[test]
    fn frames_from_many_pushers_arrive_whole_and_in_order_through_a_full_socket() {
        let threads = ThreadCount::default();
        let pool = WriterPool::start(2, 4, &threads).unwrap();
        let (server, client) = pair_with(false);
        let outbox = outbox_for(&pool, 1, &server, 1_000_000);
        let pad = "x".repeat(150);
        let pushers: Vec<_> = (0..4)
            .map(|p| {
                let (outbox, pad) = (outbox.clone(), pad.clone());
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        let frame = EncodedFrame::text(&format!("{p} {i} {pad}"));
                        assert_eq!(outbox.push(frame), Push::Queued);
                    }
                })
            })
            .collect();
        // The client reads only after everything is queued, so the socket fills up and the
        // connection is handed to a thread of its own.
        for pusher in pushers {
            pusher.join().unwrap();
        }
        outbox.close(close_code::NORMAL, "done");
        let (texts, close) = read_until_end(client);
        assert_eq!(close, Some(close_code::NORMAL));
        assert_eq!(texts.len(), 20_000);
        let mut next = [0usize; 4];
        for text in &texts {
            let mut words = text.split(' ');
            let p: usize = words.next().unwrap().parse().unwrap();
            let i: usize = words.next().unwrap().parse().unwrap();
            assert_eq!(i, next[p], "pusher {p}'s frames in order");
            next[p] += 1;
        }
        assert!(
            threads.wait(Duration::from_secs(10)),
            "the socket's thread ended"
        );
    }

    #[test]
    fn a_client_that_stops_reading_gets_1008_without_holding_up_another() {
        let threads = ThreadCount::default();
        // One pool thread, so both connections share it.
        let pool = WriterPool::start(1, 4, &threads).unwrap();
        let (slow_server, slow_client) = pair();
        let (fast_server, mut fast_client) = pair();
        let slow = outbox_for(&pool, 1, &slow_server, 64);
        let fast = outbox_for(&pool, 2, &fast_server, 1_000_000);
        let frame = EncodedFrame::text(&"y".repeat(200));
        let reader = std::thread::spawn(move || {
            // Counts frames of 204 bytes until the close frame (4 bytes: code 1000).
            let mut bytes = 0;
            let mut buf = vec![0; 65_536];
            loop {
                match fast_client.read(&mut buf) {
                    Ok(0) | Err(_) => return bytes,
                    Ok(n) => bytes += n,
                }
            }
        });
        let mut pushed = 0;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(
                Instant::now() < deadline,
                "the slow connection never filled"
            );
            assert_eq!(fast.push(frame.clone()), Push::Queued);
            pushed += 1;
            match slow.push(frame.clone()) {
                Push::Queued => {}
                Push::Slow => break,
                Push::Closed => panic!("closed before it was found slow"),
            }
            if pushed % 64 == 0 {
                // Let the writers catch up, so only the reader that stopped falls behind.
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        fast.close(close_code::NORMAL, "");
        // Everything reached the fast client while the slow one read nothing.
        assert_eq!(reader.join().unwrap(), pushed * 204 + 4);
        let (texts, close) = read_until_end(slow_client);
        // What the slow client got before its queue overflowed depends on when its writer
        // ran (on a loaded machine, maybe not at all); never everything.
        assert!(texts.len() < pushed);
        assert_eq!(close, Some(close_code::POLICY_VIOLATION));
        assert_eq!(slow.push(frame), Push::Closed);
        assert!(
            threads.wait(Duration::from_secs(10)),
            "the socket's thread ended"
        );
    }

    #[test]
    fn past_the_thread_budget_a_full_socket_ends_its_connection() {
        let threads = ThreadCount::default();
        let pool = WriterPool::start(1, 0, &threads).unwrap();
        let (server, client) = pair();
        let outbox = outbox_for(&pool, 1, &server, 1_000_000);
        let frame = EncodedFrame::text(&"z".repeat(200));
        let deadline = Instant::now() + Duration::from_secs(20);
        while outbox.push(frame.clone()) == Push::Queued {
            assert!(Instant::now() < deadline, "the connection never ended");
        }
        let (texts, close, _cut) = read_frames_until_end(client);
        assert!(!texts.is_empty());
        assert_eq!(close, None, "no room for a close frame in a full socket");
        assert_eq!(threads.live(), 0);
    }
}
