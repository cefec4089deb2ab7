//! A connection's inputs waiting behind its password check (or its search, which holds
//! them the same way: see `search`).
//!
//! While the pool checks a join's password, that connection's later commands, the errors
//! its reader refused on its own, and its disconnect wait here; the answer releases them in
//! the order they came, so every reply keeps the order of its request (a `leave` sent right
//! after a `join` finds the connection in the room). Other connections never wait.
//!
//! Bounded: at most `HELD_REQUESTS` commands are kept whole. With the default rate limit a
//! client cannot send more than its burst (50) plus 20 a second, and a check waits well
//! under a second for its turn, so this is normally never reached. Past it (a client with
//! `--rate-limit 0`, or a check stuck behind a long queue), each further command keeps only
//! its `ref` and is answered `rate_limited`, still in its place. Past `HELD_MAX` inputs the
//! connection is closed (1008): it has sent a thousand commands behind one unanswered
//! join, and its replies would overflow its queue anyway.

use super::Hub;
use crate::ids::ConnId;
use crate::outbox::close_code;
use crate::protocol::{ErrorCode, Ref, Rejection, Request};
use std::collections::VecDeque;
use std::time::Instant;

/// Commands kept whole behind a password check.
pub(super) const HELD_REQUESTS: usize = 64;
/// Inputs kept at all behind a password check (the default outbox holds 1024 frames).
pub(super) const HELD_MAX: usize = 1024;

/// One input waiting.
#[derive(Debug)]
pub(super) enum HeldInput {
    /// A command, run when its turn comes.
    Request(Request),
    /// An error decided already, sent when its turn comes.
    Refused {
        rejection: Rejection,
        reference: Option<Ref>,
    },
}

/// What waits behind one connection's password check.
#[derive(Debug, Default)]
pub(super) struct Held {
    /// Inputs in arrival order.
    queue: VecDeque<HeldInput>,
    /// The connection closed while its check ran: it is removed once `queue` is done.
    disconnect: bool,
}

impl Held {
    /// Keeps an input in its place; false when the connection has sent too many to keep.
    fn push(&mut self, input: HeldInput) -> bool {
        if self.queue.len() >= HELD_MAX {
            return false;
        }
        let input = match input {
            HeldInput::Request(request) if self.queue.len() >= HELD_REQUESTS => {
                HeldInput::Refused {
                    rejection: Rejection::new(
                        ErrorCode::RateLimited,
                        "too many commands waiting behind a password check; slow down",
                    ),
                    reference: request.reference,
                }
            }
            other => other,
        };
        self.queue.push_back(input);
        true
    }
}

impl Hub {
    /// True while `conn` waits for a password check or a search (its inputs must wait too).
    pub(super) fn is_checking(&self, conn: ConnId) -> bool {
        self.conns
            .get(&conn)
            .is_some_and(|c| c.checking || c.searching)
    }

    /// Keeps an input of a connection whose check is running.
    pub(super) fn hold(&mut self, conn: ConnId, input: HeldInput, now: Instant) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !c.held.push(input) {
            log::info!("connection {conn} closed: {HELD_MAX} commands behind a password check");
            c.outbox
                .close(close_code::POLICY_VIOLATION, "too many commands waiting");
            self.remove_conn(conn, now);
        }
    }

    /// Remembers that a connection whose check is running has closed.
    pub(super) fn hold_disconnect(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.held.disconnect = true;
        }
    }

    /// Runs a connection's held inputs in order, until one starts another check (the rest
    /// wait for that one) or none is left (then a held disconnect happens).
    pub(super) fn release_held(&mut self, conn: ConnId, now: Instant) {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            if c.checking || c.searching {
                return;
            }
            match c.held.queue.pop_front() {
                Some(HeldInput::Request(request)) => self.on_request(conn, request, now),
                Some(HeldInput::Refused {
                    rejection,
                    reference,
                }) => self.reply_error(conn, &rejection, reference.as_ref()),
                None => {
                    if c.held.disconnect {
                        self.remove_conn(conn, now);
                    }
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::parse_request;

    fn request(n: usize) -> HeldInput {
        let frame = format!(r#"{{"type":"list","ref":{n}}}"#);
        HeldInput::Request(parse_request(&frame).unwrap())
    }

    #[test]
    fn past_the_bound_commands_keep_only_their_place_then_the_connection_goes() {
        let mut held = Held::default();
        for n in 0..HELD_MAX {
            assert!(held.push(request(n)));
        }
        assert!(!held.push(request(HELD_MAX)), "past HELD_MAX: close");
        let kept = held
            .queue
            .iter()
            .filter(|i| matches!(i, HeldInput::Request(_)))
            .count();
        assert_eq!(kept, HELD_REQUESTS);
        match &held.queue[HELD_REQUESTS] {
            HeldInput::Refused {
                rejection,
                reference,
            } => {
                assert_eq!(rejection.code, ErrorCode::RateLimited);
                assert_eq!(reference, &Some(Ref::Int(HELD_REQUESTS as i64)));
            }
            other => panic!("{other:?}"),
        }
    }
}
