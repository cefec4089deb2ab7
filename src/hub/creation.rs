//! Limits on making rooms: a cap on rooms server-wide (`too_many_rooms`), and allowances
//! per connection and per client address (`rate_limited`). `create` checks them after the
//! name and before anything that costs (a password's hashing included), and spends the
//! allowances only when a room is made.
//!
//! Allowances are token buckets of N rooms an hour that may be spent at once: someone
//! setting up a server makes a handful of rooms in a minute, a flood of thousands is cut
//! to N and then one every 60/N minutes.

use super::Hub;
use crate::address_limit::ClientAddress;
use crate::config::Config;
use crate::ids::ConnId;
use crate::metrics::Limit;
use crate::protocol::{ErrorCode, Rejection};
use crate::ratelimit::RateLimiter;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The window the allowances count rooms in.
const ALLOWANCE_WINDOW: Duration = Duration::from_secs(3600);
/// Address allowances kept before the first clean-up of the ones that filled up again.
const ADDRESSES_BEFORE_PRUNE: usize = 1024;

/// What the operator set for rooms: how many, how fast, and how long an empty one stays.
#[derive(Debug, Clone)]
pub struct RoomRules {
    /// Rooms the server holds at most; 0 = no cap.
    pub max_rooms: usize,
    /// Rooms a connection may make per hour; 0 = no limit.
    pub per_connection: u32,
    /// Rooms a client address may make per hour; 0 = no limit.
    pub per_address: u32,
    /// How long a room may stand empty (no members, no messages) before it is removed.
    pub remove_after: Option<Duration>,
}

impl RoomRules {
    pub fn from_config(config: &Config) -> Self {
        RoomRules {
            max_rooms: config.max_rooms,
            per_connection: config.rooms_per_connection,
            per_address: config.rooms_per_address,
            remove_after: config.remove_empty_rooms_after,
        }
    }

    /// A connection's own allowance, made when it connects.
    pub(super) fn connection_allowance(&self, now: Instant) -> RateLimiter {
        RateLimiter::per_window(self.per_connection, ALLOWANCE_WINDOW, now)
    }
}

impl Default for RoomRules {
    fn default() -> Self {
        RoomRules::from_config(&Config::default())
    }
}

/// Allowances of the addresses that made rooms lately.
#[derive(Default)]
pub(super) struct AddressAllowances {
    /// By client address (an IPv4 address or an IPv6 /64, as the connection limit counts).
    by_address: HashMap<ClientAddress, RateLimiter>,
    /// Size at which the allowances that filled up again are dropped; doubling it after
    /// each clean-up keeps the cost per room made constant, and the map no larger than
    /// twice the addresses that made a room within the last hour.
    prune_at: usize,
}

impl Hub {
    /// Sets the operator's rules for rooms (the defaults hold until then).
    pub fn with_room_rules(mut self, rules: RoomRules) -> Self {
        self.room_rules = rules;
        self
    }

    /// Whether `conn` may make a room now: the cap first (nobody may), then this
    /// connection's and this address's allowances. Spends nothing.
    pub(super) fn check_room_limits(
        &mut self,
        conn: ConnId,
        now: Instant,
    ) -> Result<(), Rejection> {
        let rules = &self.room_rules;
        if rules.max_rooms > 0 && self.rooms.len() >= rules.max_rooms {
            return Err(Rejection::new(
                ErrorCode::TooManyRooms,
                format!(
                    "this server holds at most {} rooms; join one of them",
                    rules.max_rooms
                ),
            ));
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return Ok(());
        };
        let per_address = rules.per_address;
        let connection_ok = c.room_allowance.has_token(now);
        let address_ok = per_address == 0
            || self
                .address_allowances
                .by_address
                .get_mut(&ClientAddress::of(c.addr))
                .is_none_or(|allowance| allowance.has_token(now));
        if connection_ok && address_ok {
            return Ok(());
        }
        let (who, count) = if connection_ok {
            ("from your address", per_address)
        } else {
            ("on this connection", self.room_rules.per_connection)
        };
        self.metrics.rate_limited(Limit::RoomCreation);
        Err(Rejection::new(
            ErrorCode::RateLimited,
            format!("at most {count} new rooms an hour {who}; try again later"),
        ))
    }

    /// Counts a room `conn` made against its allowances.
    pub(super) fn spend_room_allowance(&mut self, conn: ConnId, now: Instant) {
        let per_address = self.room_rules.per_address;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.room_allowance.allow(now);
        if per_address == 0 {
            return;
        }
        let addresses = &mut self.address_allowances;
        addresses
            .by_address
            .entry(ClientAddress::of(c.addr))
            .or_insert_with(|| RateLimiter::per_window(per_address, ALLOWANCE_WINDOW, now))
            .allow(now);
        if addresses.by_address.len() >= addresses.prune_at.max(ADDRESSES_BEFORE_PRUNE) {
            addresses
                .by_address
                .retain(|_, allowance| !allowance.is_full(now));
            addresses.prune_at = addresses.by_address.len() * 2;
        }
    }
}
