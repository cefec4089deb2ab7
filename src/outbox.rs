//! A connection's outgoing queue: frames encoded once and shared, the bounded channel the
//! writer thread drains, and the slow-consumer rule for when that channel fills up.

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::cell::Cell;
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

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

/// What the writer thread is asked to write.
#[derive(Debug)]
pub enum Outbound {
    /// An event or reply, possibly shared with other recipients.
    Frame(Arc<EncodedFrame>),
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

    pub fn ping_wire() -> Vec<u8> {
        EncodedFrame::encode(0x9, &[]).wire
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

/// The sending side of a connection's queue; cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbox {
    tx: Sender<Outbound>,
    state: Arc<QueueState>,
}

/// The writer's side: the queue, and whether the connection was found too slow.
pub struct Inbox {
    rx: Receiver<Outbound>,
    state: Arc<QueueState>,
    /// When the writer last took an item, and the time between its last two: how busy it is.
    last_item: Cell<Instant>,
    last_gap: Cell<Duration>,
}

/// A writer whose last two items came closer together than this counts as busy...
const BUSY_WINDOW: Duration = Duration::from_micros(500);
/// ...and yields this many times before it parks.
const BUSY_YIELDS: u32 = 4;

/// The bound is counted here rather than by a bounded channel, because crossbeam's bounded
/// channel allocates every slot up front (tens of KiB per idle connection), while its
/// unbounded one grows in small blocks only when frames are actually waiting.
///
/// The writer also sleeps here rather than in crossbeam's blocking `recv`, which spins and
/// calls `sched_yield` before it parks: profiled under fan-out to 1,000 idle-between-
/// messages writers, that spinning was over a third of the server's CPU. The writer parks
/// its thread outright, and a push unparks it only when it announced it was asleep.
#[derive(Debug)]
struct QueueState {
    queued: AtomicUsize,
    capacity: usize,
    slow: AtomicBool,
    /// The writer thread, once it starts waiting.
    writer: OnceLock<Thread>,
    /// True while the writer is (about to be) parked.
    sleeping: AtomicBool,
}

impl QueueState {
    fn wake_writer(&self) {
        // Pairs with the fence in `Inbox::recv_deadline`: either the writer sees the item
        // just queued, or this sees `sleeping` and unparks it.
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            if let Some(writer) = self.writer.get() {
                writer.unpark();
            }
        }
    }
}

/// A queue holding at most `capacity` frames (close frames always fit).
pub fn channel(capacity: usize) -> (Outbox, Inbox) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let state = Arc::new(QueueState {
        queued: AtomicUsize::new(0),
        capacity,
        slow: AtomicBool::new(false),
        writer: OnceLock::new(),
        sleeping: AtomicBool::new(false),
    });
    (
        Outbox {
            tx,
            state: state.clone(),
        },
        Inbox {
            rx,
            state,
            last_item: Cell::new(Instant::now()),
            last_gap: Cell::new(Duration::MAX),
        },
    )
}

impl Inbox {
    pub fn is_slow(&self) -> bool {
        self.state.slow.load(Ordering::Acquire)
    }

    /// The next item, parking the calling thread until one comes or `deadline` passes.
    ///
    /// A busy writer (its last two frames came close together) yields its core a few times
    /// before parking: under a steady stream the next frame usually arrives meanwhile, which
    /// saves a park and a wake-up per frame. A writer fed now and then parks at once.
    pub fn recv_deadline(&self, deadline: Instant) -> Result<Outbound, RecvTimeoutError> {
        let state = &*self.state;
        let mut yields = 0;
        loop {
            match self.rx.try_recv() {
                Ok(item) => {
                    state.queued.fetch_sub(1, Ordering::AcqRel);
                    self.note_arrival();
                    return Ok(item);
                }
                Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty) => {}
            }
            if self.is_slow() {
                return Err(RecvTimeoutError::Timeout);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(RecvTimeoutError::Timeout);
            }
            if yields < BUSY_YIELDS && self.last_gap.get() < BUSY_WINDOW {
                yields += 1;
                std::thread::yield_now();
                continue;
            }
            let _ = state.writer.set(std::thread::current());
            state.sleeping.store(true, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            // Re-check after announcing the sleep, so a push that missed the flag is seen.
            if self.rx.is_empty() && !self.is_slow() {
                std::thread::park_timeout(deadline - now);
            }
            state.sleeping.store(false, Ordering::SeqCst);
        }
    }

    /// The next item if one is waiting.
    pub fn try_recv(&self) -> Option<Outbound> {
        let item = self.rx.try_recv().ok()?;
        self.state.queued.fetch_sub(1, Ordering::AcqRel);
        self.note_arrival();
        Some(item)
    }

    fn note_arrival(&self) {
        let now = Instant::now();
        self.last_gap
            .set(now.saturating_duration_since(self.last_item.get()));
        self.last_item.set(now);
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
            self.state.wake_writer();
        }
        pushed
    }

    /// Queues a frame but leaves the writer asleep until `wake`: for a broadcast, which
    /// queues for every member first and wakes them all after.
    pub fn push_unwoken(&self, frame: Arc<EncodedFrame>) -> Push {
        self.queue(Outbound::Frame(frame))
    }

    /// Wakes the writer if it sleeps.
    pub fn wake(&self) {
        self.state.wake_writer();
    }

    fn queue(&self, item: Outbound) -> Push {
        let state = &*self.state;
        if state.slow.load(Ordering::Acquire) {
            return Push::Closed;
        }
        if state.queued.fetch_add(1, Ordering::AcqRel) >= state.capacity {
            state.queued.fetch_sub(1, Ordering::AcqRel);
            // Only the first overflow reports Slow, so the connection is dropped once.
            return if state.slow.swap(true, Ordering::AcqRel) {
                Push::Closed
            } else {
                Push::Slow
            };
        }
        self.enqueue(item)
    }

    fn enqueue(&self, item: Outbound) -> Push {
        match self.tx.send(item) {
            Ok(()) => Push::Queued,
            Err(_) => {
                self.state.queued.fetch_sub(1, Ordering::AcqRel);
                Push::Closed
            }
        }
    }

    pub fn is_slow(&self) -> bool {
        self.state.slow.load(Ordering::Acquire)
    }

    /// Queues a close frame, past the bound if need be; the writer ends the connection
    /// after it.
    pub fn close(&self, code: u16, reason: &str) {
        self.state.queued.fetch_add(1, Ordering::AcqRel);
        self.enqueue(Outbound::Close(code, reason.to_string()));
        self.state.wake_writer();
    }

    /// Tells the writer to stop without writing anything more: the peer is gone.
    pub fn finish(&self) {
        self.state.queued.fetch_add(1, Ordering::AcqRel);
        self.enqueue(Outbound::Finish);
        self.state.wake_writer();
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
    fn a_parked_writer_wakes_for_every_push_and_at_its_deadline() {
        use std::time::Duration;
        let (outbox, inbox) = channel(100);
        let writer = std::thread::spawn(move || {
            let mut got = 0;
            while got < 1000 {
                let deadline = Instant::now() + Duration::from_secs(10);
                match inbox.recv_deadline(deadline) {
                    Ok(Outbound::Frame(_)) => got += 1,
                    other => panic!("{other:?}"),
                }
            }
            let start = Instant::now();
            let timed_out = inbox.recv_deadline(start + Duration::from_millis(50));
            assert!(matches!(timed_out, Err(RecvTimeoutError::Timeout)));
            assert!(start.elapsed() >= Duration::from_millis(50));
            inbox
        });
        let frame = EncodedFrame::text("{}");
        for i in 0..1000 {
            assert_eq!(outbox.push(frame.clone()), Push::Queued);
            if i % 7 == 0 {
                // Let the writer fall asleep now and then, so pushes meet a parked writer.
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        let inbox = writer.join().unwrap();
        drop(outbox);
        let gone = inbox.recv_deadline(Instant::now() + Duration::from_secs(1));
        assert!(matches!(gone, Err(RecvTimeoutError::Disconnected)));
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
        drop(inbox);
        let (outbox, inbox) = channel(2);
        drop(inbox);
        assert_eq!(outbox.push(frame), Push::Closed);
    }
}
