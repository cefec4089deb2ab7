//! One WebSocket connection after its handshake, on the connection's own thread: it reads
//! frames and turns them into hub requests, and keeps the ping and idle schedule. It never
//! writes: replies go to the connection's outbox, which the writer pool drains, so frames
//! never interleave. Reader and writers share one descriptor through `Arc<TcpStream>`.

use crate::config::Config;
use crate::hub::HubInput;
use crate::outbox::{self, close_code, Limits, Outbound, Outbox, Push, Route};
use crate::protocol::{self, ErrorCode, Ref, Rejection};
use crate::ratelimit::RateLimiter;
use crate::room::ConnId;
use crate::writer::WriterPool;
use crossbeam_channel::Sender;
use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Error as WsError, Message, WebSocket};

/// tungstenite's read buffer, allocated (and zero-filled) up front for every connection:
/// sized for a chat command, not bulk transfer. A frame whose header announces more grows
/// the buffer to fit it.
const READ_BUFFER: usize = 512;
/// The read timeout is kept in whole seconds while the next deadline is further away than
/// this, to spare a system call per read on a busy connection.
const TIMER_GRAIN: Duration = Duration::from_secs(1);

/// What a connection needs from the server around it.
pub struct Context<'a> {
    pub config: &'a Config,
    pub hub: &'a Sender<HubInput>,
    pub writers: &'a WriterPool,
}

/// Runs a connection whose handshake is done until it closes. `early` holds bytes the
/// client sent right after its request head (frames already on their way); `addr` is the
/// client's address as limits count it (`head::Head::client`), `session` the hash of its
/// session cookie's token, if any.
pub fn serve(
    stream: Arc<TcpStream>,
    early: Vec<u8>,
    conn: ConnId,
    addr: IpAddr,
    session: Option<[u8; 32]>,
    ctx: &Context,
) {
    let config = ctx.config;
    // The write timeout bounds a writer thread waiting on a client that stopped reading.
    let _ = stream.set_write_timeout(Some(config.idle_timeout));
    let route = Route {
        conn,
        stream: stream.clone(),
        worker: ctx.writers.worker_for(conn),
    };
    let limits = Limits {
        frames: config.queue_frames,
        bytes: config.queue_bytes,
    };
    let outbox = outbox::routed(limits, route);
    if ctx
        .hub
        .send(HubInput::Connect {
            conn,
            addr,
            session,
            outbox: outbox.clone(),
        })
        .is_ok()
    {
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_message_size(Some(config.max_message_bytes))
            .max_frame_size(Some(config.max_message_bytes));
        let half = ReadHalf {
            stream,
            outbox: outbox.clone(),
            clock: Liveness::new(config.ping_interval, config.idle_timeout, Instant::now()),
        };
        let mut ws = WebSocket::from_partially_read(half, early, Role::Server, Some(ws_config));
        let mut reader = Reader {
            conn,
            outbox: &outbox,
            hub: ctx.hub,
            limiter: RateLimiter::new(config.rate_limit, config.rate_burst, Instant::now()),
            told_hub_slow: false,
        };
        reader.run(&mut ws);
        let _ = ctx.hub.send(HubInput::Disconnect { conn });
    }
    // The writer ends the connection after whatever is already queued.
    outbox.finish();
}

/// The read side of the shared socket, and the connection's clock. tungstenite's reader
/// queues pongs and close replies and writes them on its next read; here those writes go
/// nowhere, because the reader forwards every reply it owes to the outbox instead.
struct ReadHalf {
    stream: Arc<TcpStream>,
    outbox: Outbox,
    clock: Liveness,
}

/// PROTOCOL.md's schedule: a ping every `ping_interval`, and a close after `idle_timeout`
/// without a byte from the client. The read timeout is the only timer: it is armed for
/// whichever comes first, so an idle connection wakes only to ping.
struct Liveness {
    ping_interval: Duration,
    idle_timeout: Duration,
    next_ping: Instant,
    last_heard: Instant,
    /// The read timeout currently set on the socket.
    armed: Option<Duration>,
}

/// What the clock wants before the next read.
#[derive(Debug, PartialEq, Eq)]
enum Due {
    /// Send a ping now, then ask again.
    Ping,
    /// The client has been silent too long.
    Idle,
    /// Read, waiting at most this long.
    Wait(Duration),
}

impl Liveness {
    fn new(ping_interval: Duration, idle_timeout: Duration, now: Instant) -> Self {
        Liveness {
            ping_interval,
            idle_timeout,
            next_ping: now + ping_interval,
            last_heard: now,
            armed: None,
        }
    }

    fn due(&mut self, now: Instant) -> Due {
        if now >= self.last_heard + self.idle_timeout {
            return Due::Idle;
        }
        if now >= self.next_ping {
            self.next_ping = now + self.ping_interval;
            return Due::Ping;
        }
        let until = self.next_ping.min(self.last_heard + self.idle_timeout) - now;
        Due::Wait(until)
    }

    fn heard(&mut self, now: Instant) {
        self.last_heard = now;
    }

    /// The read timeout to set before waiting `wait`, unless it is already set. The timeout
    /// is `wait` rounded down to a whole second (or a tenth, under a second), so a busy
    /// connection re-arms it about once a second rather than on every read; waking a
    /// little early only means asking `due` again.
    fn rearm(&mut self, wait: Duration) -> Option<Duration> {
        let tenth = Duration::from_millis(100);
        let timeout = if wait >= TIMER_GRAIN {
            Duration::from_secs(wait.as_secs())
        } else if wait >= tenth {
            tenth * (wait.as_millis() / 100) as u32
        } else {
            // Rounded up: a zero timeout would mean none at all.
            Duration::from_millis(wait.as_millis() as u64 + 1)
        };
        if self.armed == Some(timeout) {
            return None;
        }
        self.armed = Some(timeout);
        Some(timeout)
    }
}

impl Read for ReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let wait = match self.clock.due(Instant::now()) {
                Due::Ping => {
                    self.outbox.push_outbound(Outbound::Ping);
                    continue;
                }
                // `close_for` turns this into the 1001 "idle timeout" close.
                Due::Idle => return Err(io::ErrorKind::TimedOut.into()),
                Due::Wait(wait) => wait,
            };
            if let Some(timeout) = self.clock.rearm(wait) {
                self.stream.set_read_timeout(Some(timeout))?;
            }
            match (&*self.stream).read(buf) {
                Ok(n) => {
                    self.clock.heard(Instant::now());
                    return Ok(n);
                }
                // The timer fired: see what is due.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for ReadHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Reader<'a> {
    conn: ConnId,
    outbox: &'a Outbox,
    hub: &'a Sender<HubInput>,
    limiter: RateLimiter,
    /// The hub was told this connection is gone because its queue overflowed.
    told_hub_slow: bool,
}

impl Reader<'_> {
    fn run(&mut self, ws: &mut WebSocket<ReadHalf>) {
        loop {
            let message = match ws.read() {
                Ok(message) => message,
                Err(e) => {
                    if let Some((code, reason)) = close_for(&e) {
                        log::debug!("connection {}: closing with {code}: {e}", self.conn);
                        self.outbox.close(code, reason);
                    }
                    return;
                }
            };
            let keep_going = match message {
                Message::Text(text) => self.on_text(text.as_str()),
                Message::Binary(_) => {
                    self.outbox.close(
                        close_code::UNSUPPORTED_DATA,
                        "binary frames are not accepted",
                    );
                    false
                }
                Message::Ping(payload) => {
                    self.outbox.push_outbound(Outbound::pong(&payload)) == Push::Queued
                }
                Message::Pong(_) | Message::Frame(_) => true,
                Message::Close(frame) => {
                    let code = frame
                        .map(|f| u16::from(f.code))
                        .unwrap_or(close_code::NORMAL);
                    self.outbox.close(code, "");
                    false
                }
            };
            if !keep_going {
                return;
            }
        }
    }

    /// Handles one text frame; false when the connection should end.
    fn on_text(&mut self, text: &str) -> bool {
        if self.outbox.is_slow() {
            return self.ignore_while_closing();
        }
        let allowed = self.limiter.allow(Instant::now());
        let request = match protocol::parse_request(text) {
            Ok(request) => request,
            Err(bad) => {
                let rejection = if allowed {
                    bad.rejection
                } else {
                    rate_limited()
                };
                return self.refuse(rejection, bad.reference);
            }
        };
        if !allowed {
            return self.refuse(rate_limited(), request.reference);
        }
        self.hub
            .send(HubInput::Request {
                conn: self.conn,
                request,
            })
            .is_ok()
    }

    /// A connection whose queue overflowed is closed with 1008 once its writer gets to the
    /// socket, which for a client that stopped reading is up to the write timeout away.
    /// Meanwhile its commands are not served (a `history` would be built only to be
    /// dropped), and at the first of them the hub takes it out of its rooms, which it does
    /// by itself only when its own push overflowed the queue. The reader goes on reading,
    /// so what the client still sends cannot turn the final close into a reset.
    fn ignore_while_closing(&mut self) -> bool {
        if !self.told_hub_slow {
            self.told_hub_slow = true;
            let _ = self.hub.send(HubInput::Disconnect { conn: self.conn });
        }
        true
    }

    /// Answers a frame with an error through the hub, so that the error comes after the
    /// replies to the commands before it (one may wait for a password check).
    fn refuse(&self, rejection: Rejection, reference: Option<Ref>) -> bool {
        self.hub
            .send(HubInput::Refused {
                conn: self.conn,
                reference,
                rejection,
            })
            .is_ok()
    }
}

fn rate_limited() -> Rejection {
    Rejection::new(ErrorCode::RateLimited, "too many commands; slow down")
}

/// The close frame a read error earns, if the peer is still there to get one.
fn close_for(error: &WsError) -> Option<(u16, &'static str)> {
    match error {
        WsError::Capacity(_) => Some((close_code::MESSAGE_TOO_BIG, "message too big")),
        WsError::Utf8(_) => Some((close_code::INVALID_PAYLOAD, "text is not valid UTF-8")),
        WsError::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => None,
        WsError::Protocol(_) => Some((close_code::PROTOCOL_ERROR, "WebSocket protocol error")),
        WsError::Io(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Some((close_code::GOING_AWAY, "idle timeout"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn the_clock_pings_on_schedule_and_closes_after_silence() {
        let start = Instant::now();
        let mut clock = Liveness::new(25 * S, 60 * S, start);
        assert_eq!(clock.due(start), Due::Wait(25 * S));
        assert_eq!(clock.due(start + 25 * S), Due::Ping);
        // The next ping counts from this one.
        assert_eq!(clock.due(start + 25 * S), Due::Wait(25 * S));
        clock.heard(start + 40 * S);
        assert_eq!(clock.due(start + 50 * S), Due::Ping);
        assert_eq!(clock.due(start + 75 * S), Due::Ping);
        // Silence is counted from the last byte heard, not from the last ping.
        assert_eq!(clock.due(start + 99 * S), Due::Wait(S));
        assert_eq!(clock.due(start + 100 * S), Due::Idle);
    }

    #[test]
    fn the_read_timeout_is_rearmed_about_once_a_second() {
        let mut clock = Liveness::new(25 * S, 60 * S, Instant::now());
        let ms = Duration::from_millis;
        assert_eq!(clock.rearm(ms(24_700)), Some(24 * S));
        // The same whole second: the armed timeout stands.
        assert_eq!(clock.rearm(ms(24_100)), None);
        assert_eq!(clock.rearm(ms(23_900)), Some(23 * S));
        // Under a second, in tenths; under a tenth, to the millisecond rounded up, never
        // zero (which would mean no timeout at all).
        assert_eq!(clock.rearm(ms(650)), Some(ms(600)));
        assert_eq!(clock.rearm(ms(640)), None);
        assert_eq!(clock.rearm(ms(40)), Some(ms(41)));
        assert_eq!(clock.rearm(Duration::from_micros(300)), Some(ms(1)));
    }
}
