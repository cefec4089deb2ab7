//! `search`: the hub decides where the asker may read (the rooms the connection has
//! joined, or the one it named, and an account's DMs) and hands the query to the store,
//! which runs it off this thread once everything before it is committed (see
//! `store::search_pool`). While it runs, the connection's later commands wait (`held`),
//! so its replies keep the order of its requests; other connections never wait.
//!
//! Limits: each connection may search `SEARCH_RATE` times a second on average, in bursts
//! of `SEARCH_BURST`, and the server lets `SEARCHES_IN_FLIGHT` searches out at once; past
//! either, `search` is `rate_limited`.

use super::Hub;
use crate::ids::ConnId;
use crate::protocol::{ErrorCode, Event, Ref, Rejection, SearchRequest};
use crate::ratelimit::RateLimiter;
use crate::store::search::{SearchAnswer, SearchJob};
use crate::store::search_pool::SEARCHES_IN_FLIGHT;
use crate::store::StoreJob;
use std::time::Instant;

/// Searches a connection may run a second, on average: a search box typed into with a
/// pause between words, not a scraper.
pub(super) const SEARCH_RATE: u32 = 2;
/// Searches a connection may run at once when it has saved them up.
pub(super) const SEARCH_BURST: u32 = 20;

/// A connection's allowance of searches.
pub(super) fn allowance(now: Instant) -> RateLimiter {
    RateLimiter::new(SEARCH_RATE, SEARCH_BURST, now)
}

impl Hub {
    pub(super) fn search(
        &mut self,
        conn: ConnId,
        request: SearchRequest,
        reference: Option<&Ref>,
        now: Instant,
    ) -> Result<(), Rejection> {
        // A named room must be one the connection has joined (`no_such_room`, `not_in_room`
        // otherwise, as for every command naming a room), and then it is all that is
        // searched: no other room, no DMs.
        let named = match &request.room {
            Some(name) => Some(self.joined_room(conn, name)?),
            None => None,
        };
        let Some(c) = self.conns.get_mut(&conn) else {
            return Ok(());
        };
        if !c.searches.allow(now) {
            return Err(Rejection::new(
                ErrorCode::RateLimited,
                format!("at most {SEARCH_RATE} searches a second; slow down"),
            ));
        }
        if self.searches_in_flight >= SEARCHES_IN_FLIGHT {
            return Err(Rejection::new(
                ErrorCode::RateLimited,
                "the server is busy with other searches; try again in a moment",
            ));
        }
        let (room_ids, account) = match named {
            Some(room) => (vec![room], None),
            None => (c.rooms.clone(), c.account),
        };
        let rooms = room_ids
            .into_iter()
            .filter_map(|id| self.rooms.get(id).map(|r| (r.id, r.name.clone())))
            .collect::<Vec<_>>();
        if rooms.is_empty() && account.is_none() {
            // Nowhere to look: nothing to wait for either.
            let json = Event::Search {
                q: &request.q,
                messages: Vec::new(),
                reference,
            }
            .to_json();
            self.send(conn, &json);
            return Ok(());
        }
        let job = SearchJob {
            conn,
            q: request.q,
            terms: request.terms,
            rooms,
            account,
            limit: request.limit,
            reference: reference.cloned(),
        };
        if let Some(c) = self.conns.get_mut(&conn) {
            c.searching = true;
        }
        self.searches_in_flight += 1;
        self.persist(StoreJob::Search(job));
        Ok(())
    }

    /// A search's reply came back: it goes out, then whatever the connection sent after it.
    pub(super) fn on_searched(&mut self, answer: SearchAnswer, now: Instant) {
        self.searches_in_flight = self.searches_in_flight.saturating_sub(1);
        let Some(c) = self.conns.get_mut(&answer.conn) else {
            return;
        };
        c.searching = false;
        self.push(answer.conn, answer.frame);
        self.release_held(answer.conn, now);
    }
}
