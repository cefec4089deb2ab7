//! A connection's outgoing queue: frames encoded once and shared, the bound past which a
//! connection is a slow consumer, and the claim that lets one writer at a time drain it.
//! It knows whoever drains it only through `Drainer`, so the writer pool depends on the
//! outbox and never the other way round.

use crate::frame;
pub use crate::frame::{close_code, EncodedFrame, PING_WIRE};
use crate::room::ConnId;
use std::collections::VecDeque;
use std::net::TcpStream;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// What a writer is asked to write.
#[derive(Debug)]
pub enum Outbound {
    /// An event or reply, possibly shared with other recipients.
    Frame(Arc<EncodedFrame>),
    /// A ping; the reader asks for one on schedule.
    Ping,
    /// A pong answering the client's ping.
    Pong(Vec<u8>),
    /// A close frame; the writer writes it last and ends the connection.
    Close(u16, String),
    /// The reader is done and the peer gone: the writer ends without writing more.
    Finish,
}

impl Outbound {
    pub fn pong(payload: &[u8]) -> Self {
        Outbound::Pong(frame::pong_wire(payload))
    }
}

/// How a push went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    Queued,
    /// The queue was full: the connection is now marked slow and is being closed.
    Slow,
    /// The connection is already gone or closing.
    Closed,
}

/// Whoever drains announced queues: the writer pool implements it. This is all the outbox
/// knows of its writer, which keeps the dependency one way (writer → outbox).
pub trait Drainer: Send + Sync {
    /// Takes a queue whose claim the caller holds, to drain it soon.
    fn enqueue(&self, inbox: Inbox);
    /// Wakes the drainer if it sleeps.
    fn wake(&self);
}

/// Where a connection's queue is written: its socket, and who drains the queue onto it.
pub struct Route {
    /// The connection, for the writer's logs and the name of a thread it may give it.
    pub conn: ConnId,
    /// The socket the queue is written to (shared with the connection's reader).
    pub stream: Arc<TcpStream>,
    /// The writer that drains this queue whenever a push announces it.
    pub worker: Arc<dyn Drainer>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Route(connection {})", self.conn)
    }
}

/// The pushing side of a connection's queue (the hub, the store, the reader); cheap to
/// clone.
#[derive(Clone, Debug)]
pub struct Outbox(Arc<Queue>);

/// The draining side: whoever holds the queue's claim takes frames from it here.
#[derive(Clone, Debug)]
pub struct Inbox(Arc<Queue>);

/// Frames wait in a plain `VecDeque` behind a mutex, held only to push one or to take a
/// batch, never across a write. An idle connection's queue costs a few dozen bytes: a
/// crossbeam channel keeps a 1.2 KiB block and two cache-padded counters allocated for
/// the connection's whole life (its bounded flavour, every slot up front).
#[derive(Debug)]
struct Queue {
    items: Mutex<VecDeque<Outbound>>,
    capacity: usize,
    slow: AtomicBool,
    /// Held by exactly one writer while the queue is announced to the pool, being written,
    /// or served by a thread of its own: one writer at a time keeps frames in order, and a
    /// push announces the queue only when it takes a free claim.
    claimed: AtomicBool,
    /// The connection's writing side has ended: nothing more is accepted.
    ended: AtomicBool,
    /// The socket and the pool worker that serve this queue; `None` for a queue read
    /// directly (the hub's unit tests).
    route: Option<Route>,
}

/// A queue holding at most `capacity` frames (close frames always fit), drained by
/// whoever reads the returned `Inbox`.
pub fn channel(capacity: usize) -> (Outbox, Inbox) {
    let queue = Arc::new(Queue::new(capacity, None));
    (Outbox(queue.clone()), Inbox(queue))
}

/// A queue drained by the writer pool: each push that finds it unclaimed hands it to the
/// route's worker.
pub fn routed(capacity: usize, route: Route) -> Outbox {
    Outbox(Arc::new(Queue::new(capacity, Some(route))))
}

impl Queue {
    fn new(capacity: usize, route: Option<Route>) -> Self {
        Queue {
            items: Mutex::new(VecDeque::new()),
            capacity,
            slow: AtomicBool::new(false),
            claimed: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            route,
        }
    }
}

impl Inbox {
    pub fn is_slow(&self) -> bool {
        self.0.slow.load(Ordering::Acquire)
    }

    /// The next item if one is waiting.
    pub fn try_recv(&self) -> Option<Outbound> {
        self.0.lock().pop_front()
    }

    /// Moves waiting items into `batch` until it holds `max`, stopping after a close or a
    /// finish (nothing is written after those).
    pub fn take_batch(&self, batch: &mut Vec<Outbound>, max: usize) {
        let mut items = self.0.lock();
        while batch.len() < max {
            let Some(item) = items.pop_front() else {
                break;
            };
            let last = matches!(item, Outbound::Close(..) | Outbound::Finish);
            batch.push(item);
            if last {
                break;
            }
        }
        if items.is_empty() && items.capacity() > KEEP_CAPACITY {
            // A burst is over: give its memory back rather than keep it per connection.
            *items = VecDeque::new();
        }
    }

    pub fn route(&self) -> Option<&Route> {
        self.0.route.as_ref()
    }

    /// Gives the claim back once the queue looks empty. False if a frame slipped in
    /// meanwhile and the claim was taken again: the caller still holds it and must go on.
    pub fn release(&self) -> bool {
        let queue = &*self.0;
        queue.claimed.store(false, Ordering::SeqCst);
        // A push that saw the claim still held did not announce; look once more. The
        // fence pairs with the one in `announce`.
        fence(Ordering::SeqCst);
        let waiting = !queue.lock().is_empty() || queue.slow.load(Ordering::SeqCst);
        !(waiting && !queue.ended.load(Ordering::SeqCst) && queue.try_claim())
    }

    /// Ends the writing side for good: later pushes are refused, what waits is dropped,
    /// and the claim is never given back.
    pub fn end(&self) {
        self.0.ended.store(true, Ordering::SeqCst);
        *self.0.lock() = VecDeque::new();
    }
}

/// Queue slots an emptied queue keeps; a larger one is freed.
const KEEP_CAPACITY: usize = 16;

impl Queue {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Outbound>> {
        // A panic while holding the lock cannot leave the deque half-changed.
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn try_claim(&self) -> bool {
        !self.claimed.swap(true, Ordering::SeqCst)
    }

    /// Hands the queue to its worker if nobody holds it; true if the worker must be woken.
    fn announce(self: &Arc<Self>) -> bool {
        fence(Ordering::SeqCst);
        match &self.route {
            Some(route) if self.try_claim() => {
                route.worker.enqueue(Inbox(self.clone()));
                true
            }
            _ => false,
        }
    }

    fn wake(&self) {
        if let Some(route) = &self.route {
            route.worker.wake();
        }
    }
}

impl Outbox {
    /// Queues a frame without ever blocking: a full queue marks the connection slow.
    pub fn push(&self, frame: Arc<EncodedFrame>) -> Push {
        self.push_outbound(Outbound::Frame(frame))
    }

    pub fn push_outbound(&self, item: Outbound) -> Push {
        let pushed = self.queue(item);
        if pushed != Push::Closed {
            self.hand_to_writer();
        }
        pushed
    }

    /// Queues a frame but leaves the writer asleep until `wake`: for a broadcast, which
    /// queues for every member first and wakes the writers after.
    pub fn push_unwoken(&self, frame: Arc<EncodedFrame>) -> Push {
        let pushed = self.queue(Outbound::Frame(frame));
        if pushed != Push::Closed {
            self.0.announce();
        }
        pushed
    }

    /// Wakes the writer if it sleeps.
    pub fn wake(&self) {
        self.0.wake();
    }

    fn queue(&self, item: Outbound) -> Push {
        let queue = &*self.0;
        if queue.slow.load(Ordering::Acquire) || queue.ended.load(Ordering::Acquire) {
            return Push::Closed;
        }
        let mut items = queue.lock();
        if items.len() < queue.capacity {
            items.push_back(item);
            return Push::Queued;
        }
        drop(items);
        // Only the first overflow reports Slow, so the connection is dropped once. A full
        // queue is claimed (every queued frame was announced), so its writer sees the flag
        // and closes the connection with 1008.
        if queue.slow.swap(true, Ordering::SeqCst) {
            Push::Closed
        } else {
            Push::Slow
        }
    }

    pub fn is_slow(&self) -> bool {
        self.0.slow.load(Ordering::Acquire)
    }

    /// Queues a close frame, past the bound if need be; the writer ends the connection
    /// after it.
    pub fn close(&self, code: u16, reason: &str) {
        self.push_past_bound(Outbound::Close(code, reason.to_string()));
    }

    /// Tells the writer to stop without writing anything more: the peer is gone.
    pub fn finish(&self) {
        self.push_past_bound(Outbound::Finish);
    }

    fn push_past_bound(&self, item: Outbound) {
        if self.0.ended.load(Ordering::Acquire) {
            return;
        }
        self.0.lock().push_back(item);
        self.hand_to_writer();
    }

    /// Announces the queue to its writer, waking it, unless a writer already holds it.
    fn hand_to_writer(&self) {
        if self.0.announce() {
            self.0.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_marks_the_connection_slow_once() {
        let (outbox, inbox) = channel(2);
        let frame = EncodedFrame::text("{}");
        assert_eq!(outbox.push(frame.clone()), Push::Queued);
        assert_eq!(outbox.push(frame.clone()), Push::Queued);
        assert_eq!(outbox.push(frame.clone()), Push::Slow);
        assert_eq!(outbox.push(frame.clone()), Push::Closed);
        assert!(inbox.is_slow());
    }

    #[test]
    fn an_ended_queue_refuses_and_forgets() {
        let (outbox, inbox) = channel(8);
        let frame = EncodedFrame::text("{}");
        assert_eq!(outbox.push(frame.clone()), Push::Queued);
        inbox.end();
        assert!(inbox.try_recv().is_none(), "what waited is dropped");
        assert_eq!(outbox.push(frame), Push::Closed);
        outbox.close(close_code::NORMAL, "");
        assert!(
            inbox.try_recv().is_none(),
            "nothing is queued after the end"
        );
    }
}
