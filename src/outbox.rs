//! A connection's outgoing queue: frames encoded once and shared, the bounds (in frames and
//! in bytes) past which a connection is a slow consumer, and the claim that lets one writer
//! at a time drain it. It knows whoever drains it only through `Drainer`, so the writer pool
//! depends on the outbox and never the other way round.

use crate::frame;
pub use crate::frame::{close_code, EncodedFrame, PING_WIRE};
use crate::ids::ConnId;
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

    /// The bytes this item holds on to while it waits: what a queue's byte bound counts.
    /// A frame shared with other queues counts in each, since each keeps it alive.
    fn queued_bytes(&self) -> usize {
        match self {
            Outbound::Frame(frame) => frame.wire().len(),
            Outbound::Ping => PING_WIRE.len(),
            Outbound::Pong(wire) => wire.len(),
            // Its wire form: a two-byte header and the code before the reason.
            Outbound::Close(_, reason) => 4 + reason.len(),
            Outbound::Finish => 0,
        }
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

/// How much one connection's queue may hold before the connection counts as a slow
/// consumer; past either bound it is closed with 1008.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Frames waiting (`--queue-frames`): bounds the bookkeeping of many small frames.
    pub frames: usize,
    /// Bytes of the frames waiting (`--queue-bytes`): bounds the memory a client that
    /// does not read can make the server hold, whatever the size of its replies.
    pub bytes: usize,
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
    /// What waits, with its size, under the one lock a push takes anyway.
    waiting: Mutex<Waiting>,
    /// The bounds past which a push marks the connection slow.
    limits: Limits,
    /// Set once, by the push that found the queue full: the writer closes with 1008.
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

/// The items waiting in a queue and the bytes they hold. The count lives under the queue's
/// lock, which every push and take holds already, so bounding bytes costs no atomic
/// operation of its own.
#[derive(Debug, Default)]
struct Waiting {
    /// In the order they are to be written.
    items: VecDeque<Outbound>,
    /// The sum of `queued_bytes` over `items`.
    bytes: usize,
}

impl Waiting {
    fn push(&mut self, item: Outbound, size: usize) {
        self.bytes += size;
        self.items.push_back(item);
    }

    fn pop(&mut self) -> Option<Outbound> {
        let item = self.items.pop_front()?;
        self.bytes -= item.queued_bytes();
        Some(item)
    }
}

/// A queue holding at most `capacity` frames of any size (close frames always fit),
/// drained by whoever reads the returned `Inbox`.
pub fn channel(capacity: usize) -> (Outbox, Inbox) {
    bounded(Limits {
        frames: capacity,
        bytes: usize::MAX,
    })
}

/// A queue bounded by `limits` (close frames always fit), drained by whoever reads the
/// returned `Inbox`.
pub fn bounded(limits: Limits) -> (Outbox, Inbox) {
    let queue = Arc::new(Queue::new(limits, None));
    (Outbox(queue.clone()), Inbox(queue))
}

/// A queue drained by the writer pool: each push that finds it unclaimed hands it to the
/// route's worker.
pub fn routed(limits: Limits, route: Route) -> Outbox {
    Outbox(Arc::new(Queue::new(limits, Some(route))))
}

impl Queue {
    fn new(limits: Limits, route: Option<Route>) -> Self {
        Queue {
            waiting: Mutex::new(Waiting::default()),
            limits,
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
        self.0.lock().pop()
    }

    /// Moves waiting items into `batch` until it holds `max` of them or about `max_bytes`
    /// (never fewer than one item, however big), stopping after a close or a finish
    /// (nothing is written after those). The batch's bytes leave the queue's count: the
    /// writer holds at most one batch per connection, so a connection pins at most its
    /// queue's bound plus one batch.
    pub fn take_batch(&self, batch: &mut Vec<Outbound>, max: usize, max_bytes: usize) {
        let mut waiting = self.0.lock();
        let mut taken = 0;
        while batch.len() < max {
            let Some(next) = waiting.items.front() else {
                break;
            };
            let size = next.queued_bytes();
            if taken > 0 && taken + size > max_bytes {
                break;
            }
            let Some(item) = waiting.pop() else {
                break;
            };
            taken += size;
            let last = matches!(item, Outbound::Close(..) | Outbound::Finish);
            batch.push(item);
            if last {
                break;
            }
        }
        if waiting.items.is_empty() && waiting.items.capacity() > KEEP_CAPACITY {
            // A burst is over: give its memory back rather than keep it per connection.
            waiting.items = VecDeque::new();
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
        let waiting = !queue.lock().items.is_empty() || queue.slow.load(Ordering::SeqCst);
        !(waiting && !queue.ended.load(Ordering::SeqCst) && queue.try_claim())
    }

    /// Ends the writing side for good: later pushes are refused, what waits is dropped,
    /// and the claim is never given back.
    pub fn end(&self) {
        self.0.ended.store(true, Ordering::SeqCst);
        let dropped = std::mem::take(&mut *self.0.lock());
        drop(dropped);
    }
}

/// Queue slots an emptied queue keeps; a larger one is freed.
const KEEP_CAPACITY: usize = 16;

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        // A panic while holding the lock cannot leave the queue half-changed.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
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
        let size = item.queued_bytes();
        let mut waiting = queue.lock();
        if waiting.items.len() < queue.limits.frames && waiting.bytes + size <= queue.limits.bytes {
            waiting.push(item, size);
            return Push::Queued;
        }
        // Only the first overflow reports Slow, so the connection is dropped once.
        if queue.slow.swap(true, Ordering::SeqCst) {
            return Push::Closed;
        }
        // Nothing waiting will be written now (the writer's next turn writes the 1008
        // close instead), so let it go at once rather than when the connection ends, which
        // for a client that stopped reading is a write timeout away.
        let dropped = std::mem::take(&mut *waiting);
        drop(waiting);
        drop(dropped);
        // The caller announces the queue: a writer comes, sees the flag and closes the
        // connection with 1008, even if the last one had just released its claim.
        Push::Slow
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
        let size = item.queued_bytes();
        self.0.lock().push(item, size);
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

    /// A frame whose wire form is exactly `bytes` long (a 2-byte header and JSON).
    fn frame_of(bytes: usize) -> Arc<EncodedFrame> {
        assert!((4..128).contains(&bytes));
        let frame = EncodedFrame::text(&format!("\"{}\"", "x".repeat(bytes - 4)));
        assert_eq!(frame.wire().len(), bytes);
        frame
    }

    fn limits(frames: usize, bytes: usize) -> Limits {
        Limits { frames, bytes }
    }

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
    fn the_byte_bound_marks_a_queue_of_few_frames_slow() {
        let (outbox, inbox) = bounded(limits(1000, 250));
        let frame = frame_of(100);
        assert_eq!(outbox.push(frame.clone()), Push::Queued);
        assert_eq!(outbox.push(frame.clone()), Push::Queued);
        // 300 bytes would pass 250, however few the frames.
        assert_eq!(outbox.push(frame.clone()), Push::Slow);
        assert_eq!(outbox.push(frame_of(4)), Push::Closed);
        assert!(inbox.is_slow());
    }

    #[test]
    fn a_frame_that_fills_the_bound_exactly_fits() {
        let (outbox, _inbox) = bounded(limits(1000, 200));
        assert_eq!(outbox.push(frame_of(100)), Push::Queued);
        assert_eq!(outbox.push(frame_of(100)), Push::Queued);
        assert_eq!(outbox.push(frame_of(4)), Push::Slow);
    }

    #[test]
    fn a_shared_frame_counts_in_every_queue_that_holds_it() {
        let queues: Vec<_> = (0..3).map(|_| bounded(limits(1000, 200))).collect();
        let frame = frame_of(100);
        for _ in 0..2 {
            for (outbox, _) in &queues {
                assert_eq!(outbox.push(frame.clone()), Push::Queued);
            }
        }
        for (outbox, _) in &queues {
            assert_eq!(outbox.push(frame.clone()), Push::Slow);
        }
    }

    #[test]
    fn what_a_writer_takes_leaves_the_count() {
        let (outbox, inbox) = bounded(limits(1000, 300));
        let frame = frame_of(100);
        for _ in 0..3 {
            assert_eq!(outbox.push(frame.clone()), Push::Queued);
        }
        let mut batch = Vec::new();
        inbox.take_batch(&mut batch, 64, usize::MAX);
        assert_eq!(batch.len(), 3);
        for _ in 0..3 {
            assert_eq!(outbox.push(frame.clone()), Push::Queued);
        }
        assert!(inbox.try_recv().is_some());
        assert_eq!(outbox.push(frame), Push::Queued, "try_recv frees room too");
    }

    #[test]
    fn a_batch_stops_at_its_byte_budget_but_takes_at_least_one_frame() {
        let (outbox, inbox) = bounded(limits(1000, 10_000));
        for bytes in [120, 50, 50, 50, 10] {
            assert_eq!(outbox.push(frame_of(bytes)), Push::Queued);
        }
        let wire_lengths = |batch: &[Outbound]| -> Vec<usize> {
            batch
                .iter()
                .map(|item| match item {
                    Outbound::Frame(frame) => frame.wire().len(),
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        let mut batch = Vec::new();
        inbox.take_batch(&mut batch, 64, 100);
        assert_eq!(
            wire_lengths(&batch),
            [120],
            "one frame, even past the budget"
        );
        batch.clear();
        inbox.take_batch(&mut batch, 64, 100);
        assert_eq!(wire_lengths(&batch), [50, 50]);
        batch.clear();
        inbox.take_batch(&mut batch, 2, 100);
        assert_eq!(wire_lengths(&batch), [50, 10]);
    }

    #[test]
    fn a_slow_queue_lets_go_of_what_waited_at_once() {
        let (outbox, inbox) = bounded(limits(1000, 250));
        let frame = frame_of(100);
        outbox.push(frame.clone());
        outbox.push(frame.clone());
        assert_eq!(Arc::strong_count(&frame), 3);
        assert_eq!(outbox.push(frame.clone()), Push::Slow);
        assert_eq!(Arc::strong_count(&frame), 1, "the queue holds no copy");
        assert!(inbox.try_recv().is_none());
    }

    #[test]
    fn a_close_fits_past_the_byte_bound() {
        let (outbox, inbox) = bounded(limits(1000, 100));
        assert_eq!(outbox.push(frame_of(100)), Push::Queued);
        outbox.close(close_code::GOING_AWAY, "server shutting down");
        assert!(matches!(inbox.try_recv(), Some(Outbound::Frame(_))));
        assert!(matches!(
            inbox.try_recv(),
            Some(Outbound::Close(close_code::GOING_AWAY, _))
        ));
        assert!(!inbox.is_slow());
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
