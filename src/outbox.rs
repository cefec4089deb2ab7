//! A connection's outgoing queue: frames encoded once and shared, the bound past which a
//! connection is a slow consumer, and the claim that lets one writer at a time drain it.

use crate::writer::Route;
use std::collections::VecDeque;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A server→client WebSocket text frame, encoded once (header and JSON payload in one
/// buffer) so a broadcast to a thousand members costs a thousand `Arc` clones, not a
/// thousand serialisations. Server frames are unmasked, so the bytes are the same for
/// every recipient.
#[derive(Debug)]
pub struct EncodedFrame {
    wire: Vec<u8>,
    payload_start: usize,
}

impl EncodedFrame {
    /// Encodes `json` as one final text frame.
    pub fn text(json: &str) -> Arc<Self> {
        Arc::new(Self::encode(0x1, json.as_bytes()))
    }

    /// Encodes a control or data frame with the given opcode (RFC 6455 §5.2).
    fn encode(opcode: u8, payload: &[u8]) -> Self {
        let len = payload.len();
        let mut wire = Vec::with_capacity(len + 10);
        wire.push(0x80 | opcode); // FIN set: we never fragment.
        if len < 126 {
            wire.push(len as u8);
        } else if len <= u16::MAX as usize {
            wire.push(126);
            wire.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            wire.push(127);
            wire.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let payload_start = wire.len();
        wire.extend_from_slice(payload);
        EncodedFrame {
            wire,
            payload_start,
        }
    }

    /// The bytes to write to the socket.
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// The JSON text this frame carries.
    pub fn json(&self) -> &str {
        // Only `text` builds frames whose payload is read back, and it took a &str.
        std::str::from_utf8(&self.wire[self.payload_start..]).unwrap_or("")
    }
}

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
        Outbound::Pong(EncodedFrame::encode(0xA, payload).wire)
    }

    pub fn close_wire(code: u16, reason: &str) -> Vec<u8> {
        let mut payload = code.to_be_bytes().to_vec();
        // A control frame's payload is at most 125 bytes.
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        payload.extend_from_slice(&reason.as_bytes()[..end]);
        EncodedFrame::encode(0x8, &payload).wire
    }
}

/// A ping frame with no payload.
pub const PING_WIRE: [u8; 2] = [0x89, 0x00];

/// Close codes of RFC 6455 that papo sends.
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const UNSUPPORTED_DATA: u16 = 1003;
    pub const INVALID_PAYLOAD: u16 = 1007;
    pub const POLICY_VIOLATION: u16 = 1008;
    pub const MESSAGE_TOO_BIG: u16 = 1009;
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
    fn frames_carry_their_length_in_the_header() {
        let small = EncodedFrame::text("{}");
        assert_eq!(small.wire(), b"\x81\x02{}");
        assert_eq!(small.json(), "{}");
        let medium = "x".repeat(300);
        assert_eq!(
            &EncodedFrame::text(&medium).wire()[..4],
            &[0x81, 126, 0x01, 0x2c]
        );
        let large = "y".repeat(70_000);
        let frame = EncodedFrame::text(&large);
        assert_eq!(frame.wire()[1], 127);
        assert_eq!(frame.json().len(), 70_000);
    }

    #[test]
    fn close_reason_is_cut_to_fit_a_control_frame() {
        let wire = Outbound::close_wire(1008, &"é".repeat(100));
        assert!(wire.len() <= 127);
        assert_eq!(&wire[2..4], &1008u16.to_be_bytes());
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
