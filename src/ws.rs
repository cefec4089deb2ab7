//! One WebSocket connection after its handshake: the reader (the connection's own thread)
//! turns frames into hub requests; the writer thread is the only one that writes to the
//! socket, so frames never interleave. Both share one descriptor through `Arc<TcpStream>`.

use crate::config::Config;
use crate::hub::HubInput;
use crate::outbox::{self, close_code, Inbox, Outbound, Outbox, Push};
use crate::protocol::{self, ErrorCode, Ref, Rejection};
use crate::ratelimit::RateLimiter;
use crate::room::ConnId;
use crate::threads::ThreadCount;
use crossbeam_channel::{RecvTimeoutError, Sender};
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::Instant;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Error as WsError, Message, WebSocket};

/// The writer's stack: it only moves bytes.
const WRITER_STACK: usize = 128 * 1024;
/// tungstenite's read buffer, allocated up front for every connection: sized for chat
/// commands (bigger messages are read in several pieces), not bulk transfer.
const READ_BUFFER: usize = 2048;
/// Frames written with one system call at most.
const WRITE_BATCH: usize = 64;

/// What a connection needs from the server around it.
pub struct Context<'a> {
    pub config: &'a Config,
    pub hub: &'a Sender<HubInput>,
    pub threads: &'a ThreadCount,
}

/// Runs a connection whose handshake is done until it closes. `early` holds bytes the
/// client sent right after its request head (frames already on their way).
pub fn serve(stream: Arc<TcpStream>, early: Vec<u8>, conn: ConnId, ctx: &Context) {
    let config = ctx.config;
    // The idle rule of PROTOCOL.md: a read that waits this long means the client said
    // nothing, not even a pong to our pings. The write timeout bounds a writer stuck on a
    // client that stopped reading.
    let _ = stream.set_read_timeout(Some(config.idle_timeout));
    let _ = stream.set_write_timeout(Some(config.idle_timeout));
    let (outbox, inbox) = outbox::channel(config.queue_frames);
    let writer_stream = stream.clone();
    let ping_interval = config.ping_interval;
    let writer = ctx
        .threads
        .spawn(format!("papo-w{conn}"), WRITER_STACK, move || {
            write_loop(&writer_stream, inbox, ping_interval);
        });
    let writer = match writer {
        Ok(handle) => handle,
        Err(e) => {
            log::warn!("connection {conn}: no thread for its writer ({e}); closing");
            return;
        }
    };
    if ctx
        .hub
        .send(HubInput::Connect {
            conn,
            outbox: outbox.clone(),
        })
        .is_ok()
    {
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_message_size(Some(config.max_message_bytes))
            .max_frame_size(Some(config.max_message_bytes));
        let mut ws =
            WebSocket::from_partially_read(ReadHalf(stream), early, Role::Server, Some(ws_config));
        let mut reader = Reader {
            conn,
            outbox: &outbox,
            hub: ctx.hub,
            limiter: RateLimiter::new(config.rate_limit, config.rate_burst, Instant::now()),
        };
        reader.run(&mut ws);
        let _ = ctx.hub.send(HubInput::Disconnect { conn });
    }
    // A parked writer does not notice the last sender going away (the hub or the store
    // may still hold clones): tell it to end, after whatever is already queued.
    outbox.finish();
    let _ = writer.join();
}

/// The read side of the shared socket. tungstenite's reader queues pongs and close
/// replies and writes them on its next read; here those writes go nowhere, because the
/// reader forwards every reply it owes to the writer thread instead.
struct ReadHalf(Arc<TcpStream>);

impl Read for ReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
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
        let allowed = self.limiter.allow(Instant::now());
        let request = match protocol::parse_request(text) {
            Ok(request) => request,
            Err(bad) => {
                let rejection = if allowed {
                    bad.rejection
                } else {
                    rate_limited()
                };
                return self.reply_error(&rejection, bad.reference.as_ref());
            }
        };
        if !allowed {
            return self.reply_error(&rate_limited(), request.reference.as_ref());
        }
        self.hub
            .send(HubInput::Request {
                conn: self.conn,
                request,
            })
            .is_ok()
    }

    fn reply_error(&self, rejection: &Rejection, reference: Option<&Ref>) -> bool {
        let frame = outbox::EncodedFrame::text(&protocol::error_json(rejection, reference));
        self.outbox.push(frame) == Push::Queued
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

/// The writer thread: waits on the queue, writes everything queued with one system call,
/// pings on schedule, and ends the connection after a close frame, a write error, or when
/// the connection was found too slow.
fn write_loop(stream: &TcpStream, inbox: Inbox, ping_interval: std::time::Duration) {
    let mut next_ping = Instant::now() + ping_interval;
    let mut batch: Vec<Outbound> = Vec::with_capacity(WRITE_BATCH);
    loop {
        if inbox.is_slow() {
            let _ = write_all(
                stream,
                &Outbound::close_wire(close_code::POLICY_VIOLATION, "slow consumer"),
            );
            break;
        }
        match inbox.recv_deadline(next_ping) {
            Ok(item) => batch.push(item),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        while batch.len() < WRITE_BATCH {
            match inbox.try_recv() {
                Some(item) => batch.push(item),
                None => break,
            }
        }
        let now = Instant::now();
        let ping = now >= next_ping;
        if ping {
            next_ping = now + ping_interval;
        }
        match write_batch(stream, &mut batch, ping) {
            Ok(false) => {}
            Ok(true) | Err(_) => break,
        }
    }
    // Wakes the reader if it is still blocked on this socket.
    let _ = stream.shutdown(Shutdown::Both);
}

/// Writes a batch (and a ping) with one system call; true if the connection ends after it
/// (a close frame, or the reader's `Finish`).
/// The slices live on the stack: the hot path of every delivery allocates nothing.
fn write_batch(stream: &TcpStream, batch: &mut Vec<Outbound>, ping: bool) -> io::Result<bool> {
    let ping_wire = if ping {
        Outbound::ping_wire()
    } else {
        Vec::new()
    };
    let mut close = None;
    let mut finish = false;
    let mut slices = [IoSlice::new(&[]); WRITE_BATCH + 1];
    let mut used = 0;
    for item in batch.iter() {
        slices[used] = match item {
            Outbound::Frame(frame) => IoSlice::new(frame.wire()),
            Outbound::Pong(wire) => IoSlice::new(wire),
            Outbound::Close(code, reason) => {
                close = Some(Outbound::close_wire(*code, reason));
                break;
            }
            Outbound::Finish => {
                finish = true;
                break;
            }
        };
        used += 1;
    }
    // The batch holds at most WRITE_BATCH items, so one slot is always left here.
    if let Some(close) = &close {
        slices[used] = IoSlice::new(close);
        used += 1;
    } else if ping && !finish {
        slices[used] = IoSlice::new(&ping_wire);
        used += 1;
    }
    let result = write_all_vectored(stream, &mut slices[..used]);
    batch.clear();
    result.map(|()| close.is_some() || finish)
}

fn write_all(stream: &TcpStream, bytes: &[u8]) -> io::Result<()> {
    write_all_vectored(stream, &mut [IoSlice::new(bytes)])
}

fn write_all_vectored(mut stream: &TcpStream, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !slices.is_empty() {
        match stream.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
