//! Failed room-password attempts, limited per connection and per client address, and
//! refused (`rate_limited`) before any hashing, so guessing costs the guesser, not the
//! server.
//!
//! The numbers (defaults; `--password-failures-per-connection`, `--password-failures-per-ip`):
//! - **5 failures a minute per connection**: a person mistyping a room's password gets five
//!   tries at once and one more every 12 s, and one connection cannot use up its whole
//!   address's budget (a class behind one address keeps the rest).
//! - **10 failures per 3 minutes per address**, PROTOCOL.md 1.1's number for account
//!   sign-ins: ten at once, then one every 18 s. A guesser gets about 80 tries an hour per
//!   address, and each address costs the pool at most ~0.06 argon2 checks a second (about
//!   0.2 % of a core) once its first ten are spent.
//!
//! Both are token buckets of failures. A success costs nothing, so everyone who knows the
//! password gets in however many of them share an address. Checks still running hold a
//! place in their address's bucket (`pending`) until their answer settles it, so a
//! hundred connections from one address guessing at once cannot all get past a budget of
//! ten: at most ten failures can ever be in the bucket's hands.
//!
//! The address table is bounded: an entry is forgotten once its bucket is full again (no
//! failure for a whole window) and nothing of it is pending; it is swept when it doubles;
//! at `max_addresses` entries the one quiet longest is forgotten (that address starts with
//! a fresh budget: failing open for one guesser beats locking every newcomer out). Clients
//! count as `--max-connections-per-ip` counts them: IPv4 addresses, IPv6 /64s.

pub use crate::address_limit::ClientAddress;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A failure limit: `failures` at once, earned back evenly over `window`; 0 = no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Failures allowed at once (the bucket's size).
    pub failures: u32,
    /// How long it takes to earn them all back.
    pub window: Duration,
}

/// The limits on failed room-password attempts (see the module comment for the numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptLimits {
    pub per_connection: Rate,
    pub per_address: Rate,
    /// Addresses remembered at most.
    pub max_addresses: usize,
}

impl AttemptLimits {
    pub const CONNECTION_FAILURES: u32 = 5;
    pub const CONNECTION_WINDOW: Duration = Duration::from_secs(60);
    pub const ADDRESS_FAILURES: u32 = 10;
    pub const ADDRESS_WINDOW: Duration = Duration::from_secs(180);
    /// At ~64 bytes an entry, about 1 MiB.
    pub const MAX_ADDRESSES: usize = 16_384;

    /// The defaults with other failure counts (0 turns a limit off).
    pub fn with_failures(per_connection: u32, per_address: u32) -> Self {
        AttemptLimits {
            per_connection: Rate {
                failures: per_connection,
                window: Self::CONNECTION_WINDOW,
            },
            per_address: Rate {
                failures: per_address,
                window: Self::ADDRESS_WINDOW,
            },
            max_addresses: Self::MAX_ADDRESSES,
        }
    }
}

impl Default for AttemptLimits {
    fn default() -> Self {
        Self::with_failures(Self::CONNECTION_FAILURES, Self::ADDRESS_FAILURES)
    }
}

/// Why an attempt was refused, and when trying again can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    Connection(Duration),
    Address(Duration),
    /// Every remembered address has a check running: too many at once to track another.
    Busy,
}

impl Limited {
    /// The `rate_limited` error's message.
    pub fn message(&self) -> String {
        let secs = |d: &Duration| d.as_secs() + 1;
        match self {
            Limited::Connection(d) => format!(
                "too many wrong passwords on this connection; try again in {} s",
                secs(d)
            ),
            Limited::Address(d) => format!(
                "too many wrong passwords from your address; try again in {} s",
                secs(d)
            ),
            Limited::Busy => "too many password checks at once; try again shortly".into(),
        }
    }
}

/// A bucket of failures.
#[derive(Debug, Clone, Copy)]
struct Budget {
    /// Failures still allowed (fractional while earning one back).
    tokens: f64,
    /// When `tokens` was last brought up to date.
    last: Instant,
}

impl Budget {
    fn full(rate: Rate, now: Instant) -> Self {
        Budget {
            tokens: f64::from(rate.failures),
            last: now,
        }
    }

    fn per_second(rate: Rate) -> f64 {
        f64::from(rate.failures) / rate.window.as_secs_f64().max(0.001)
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens =
            (self.tokens + elapsed * Self::per_second(rate)).min(f64::from(rate.failures));
    }

    fn is_full(&self, rate: Rate) -> bool {
        self.tokens >= f64::from(rate.failures)
    }

    /// How long until `need` tokens are there.
    fn wait_for(&self, rate: Rate, need: f64) -> Duration {
        Duration::from_secs_f64(((need - self.tokens) / Self::per_second(rate)).max(0.0))
    }
}

/// One connection's failures; lives in the hub's connection record and goes with it.
#[derive(Debug, Default)]
pub struct ConnAttempts {
    /// `None` until the first failure: a connection that never fails costs nothing.
    budget: Option<Budget>,
}

/// One address's failures.
#[derive(Debug)]
struct AddressEntry {
    budget: Budget,
    /// Checks from this address still running, each holding a place in `budget`.
    pending: u32,
}

/// The failure limits, and the per-address table they need.
#[derive(Debug)]
pub struct Attempts {
    limits: AttemptLimits,
    addresses: HashMap<ClientAddress, AddressEntry>,
    /// The table size at which forgotten entries are next swept out.
    next_sweep: usize,
}

/// The smallest table size worth sweeping at.
const FIRST_SWEEP: usize = 64;

impl Attempts {
    pub fn new(limits: AttemptLimits) -> Self {
        Attempts {
            limits,
            addresses: HashMap::new(),
            next_sweep: FIRST_SWEEP,
        }
    }

    /// Asks to try a password. `Ok` holds a place in the address's budget until `settle`.
    pub fn begin(
        &mut self,
        conn: &mut ConnAttempts,
        address: ClientAddress,
        now: Instant,
    ) -> Result<(), Limited> {
        let rate = self.limits.per_connection;
        if rate.failures > 0 {
            if let Some(budget) = &mut conn.budget {
                budget.refill(rate, now);
                if budget.tokens < 1.0 {
                    return Err(Limited::Connection(budget.wait_for(rate, 1.0)));
                }
            }
        }
        let rate = self.limits.per_address;
        if rate.failures == 0 {
            return Ok(());
        }
        if !self.addresses.contains_key(&address) {
            self.make_room(now)?;
        }
        let entry = self
            .addresses
            .entry(address)
            .or_insert_with(|| AddressEntry {
                budget: Budget::full(rate, now),
                pending: 0,
            });
        entry.budget.refill(rate, now);
        let pending = f64::from(entry.pending);
        if entry.budget.tokens - pending < 1.0 {
            return Err(Limited::Address(entry.budget.wait_for(rate, pending + 1.0)));
        }
        entry.pending += 1;
        Ok(())
    }

    /// An attempt's answer: a failure spends from both budgets, a success costs nothing.
    /// `conn` is `None` when the connection is gone by then.
    pub fn settle(
        &mut self,
        conn: Option<&mut ConnAttempts>,
        address: ClientAddress,
        failed: bool,
        now: Instant,
    ) {
        let rate = self.limits.per_connection;
        if let (true, Some(conn), true) = (failed, conn, rate.failures > 0) {
            let budget = conn.budget.get_or_insert(Budget::full(rate, now));
            budget.refill(rate, now);
            budget.tokens -= 1.0;
        }
        let rate = self.limits.per_address;
        if let Some(entry) = self.addresses.get_mut(&address) {
            entry.pending = entry.pending.saturating_sub(1);
            if failed {
                entry.budget.refill(rate, now);
                entry.budget.tokens -= 1.0;
            }
        }
    }

    /// Makes room in the table for one more address, or says it is full of checks.
    fn make_room(&mut self, now: Instant) -> Result<(), Limited> {
        let max = self.limits.max_addresses.max(1);
        if self.addresses.len() < self.next_sweep.min(max) {
            return Ok(());
        }
        let rate = self.limits.per_address;
        self.addresses.retain(|_, entry| {
            entry.budget.refill(rate, now);
            entry.pending > 0 || !entry.budget.is_full(rate)
        });
        self.next_sweep = (self.addresses.len() * 2).max(FIRST_SWEEP);
        if self.addresses.len() < max {
            return Ok(());
        }
        let quietest = self
            .addresses
            .iter()
            .filter(|(_, entry)| entry.pending == 0)
            .min_by_key(|(_, entry)| entry.budget.last)
            .map(|(key, _)| *key);
        match quietest {
            Some(key) => {
                self.addresses.remove(&key);
                Ok(())
            }
            None => Err(Limited::Busy),
        }
    }

    /// Addresses remembered now.
    pub fn tracked(&self) -> usize {
        self.addresses.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn v4(last: u8) -> ClientAddress {
        ClientAddress::of(IpAddr::from([10, 0, 0, last]))
    }

    fn fail(attempts: &mut Attempts, conn: &mut ConnAttempts, key: ClientAddress, now: Instant) {
        attempts.begin(conn, key, now).expect("allowed");
        attempts.settle(Some(conn), key, true, now);
    }

    #[test]
    fn a_connection_gets_five_failures_then_one_every_twelve_seconds() {
        let now = Instant::now();
        let mut attempts = Attempts::new(AttemptLimits::default());
        let mut conn = ConnAttempts::default();
        for _ in 0..5 {
            fail(&mut attempts, &mut conn, v4(1), now);
        }
        let refused = attempts.begin(&mut conn, v4(1), now).unwrap_err();
        assert!(
            matches!(refused, Limited::Connection(d) if (11.9..12.1).contains(&d.as_secs_f64())),
            "{refused:?}"
        );
        let later = now + Duration::from_secs(13);
        fail(&mut attempts, &mut conn, v4(1), later);
        assert!(attempts.begin(&mut conn, v4(1), later).is_err());
    }

    #[test]
    fn an_address_gets_ten_failures_across_its_connections() {
        let now = Instant::now();
        let mut attempts = Attempts::new(AttemptLimits::default());
        let mut conns: Vec<ConnAttempts> = (0..4).map(|_| ConnAttempts::default()).collect();
        for i in 0..10 {
            fail(&mut attempts, &mut conns[i % 4], v4(1), now);
        }
        let mut fresh = ConnAttempts::default();
        assert!(matches!(
            attempts.begin(&mut fresh, v4(1), now),
            Err(Limited::Address(_))
        ));
        assert!(
            attempts.begin(&mut fresh, v4(2), now).is_ok(),
            "others unaffected"
        );
        let later = now + Duration::from_secs(19);
        assert!(attempts.begin(&mut fresh, v4(1), later).is_ok());
    }

    #[test]
    fn checks_in_flight_hold_their_place_and_successes_cost_nothing() {
        let now = Instant::now();
        let mut attempts = Attempts::new(AttemptLimits::default());
        let mut conns: Vec<ConnAttempts> = (0..20).map(|_| ConnAttempts::default()).collect();
        let mut admitted = 0;
        for conn in conns.iter_mut() {
            admitted += usize::from(attempts.begin(conn, v4(1), now).is_ok());
        }
        assert_eq!(admitted, 10, "no more checks than failures allowed");
        for conn in conns.iter_mut().take(10) {
            attempts.settle(Some(conn), v4(1), false, now);
        }
        let mut admitted = 0;
        for conn in conns.iter_mut() {
            admitted += usize::from(attempts.begin(conn, v4(1), now).is_ok());
        }
        assert_eq!(admitted, 10, "successes gave every place back");
    }

    #[test]
    fn off_means_off() {
        let now = Instant::now();
        let mut attempts = Attempts::new(AttemptLimits::with_failures(0, 0));
        let mut conn = ConnAttempts::default();
        for _ in 0..1000 {
            fail(&mut attempts, &mut conn, v4(1), now);
        }
        assert_eq!(attempts.tracked(), 0);
    }

    #[test]
    fn the_table_forgets_quiet_addresses_and_stays_bounded() {
        let now = Instant::now();
        let limits = AttemptLimits {
            max_addresses: 100,
            ..AttemptLimits::default()
        };
        let mut attempts = Attempts::new(limits);
        for i in 0..1000u32 {
            let key = ClientAddress::of(IpAddr::from(Ipv4Addr::from(i)));
            fail(&mut attempts, &mut ConnAttempts::default(), key, now);
            assert!(attempts.tracked() <= 100);
        }
        // A whole window later every bucket is full again: the next sweep forgets them.
        let later = now + Duration::from_secs(181);
        for i in 0..200u32 {
            let key = ClientAddress::of(IpAddr::from(Ipv4Addr::from(100_000 + i)));
            attempts
                .begin(&mut ConnAttempts::default(), key, later)
                .unwrap();
            attempts.settle(None, key, false, later);
        }
        assert!(attempts.tracked() <= 100);
    }

    #[test]
    fn a_table_full_of_running_checks_refuses_newcomers() {
        let now = Instant::now();
        let limits = AttemptLimits {
            max_addresses: 2,
            ..AttemptLimits::default()
        };
        let mut attempts = Attempts::new(limits);
        let mut conn = ConnAttempts::default();
        attempts.begin(&mut conn, v4(1), now).unwrap();
        attempts.begin(&mut conn, v4(2), now).unwrap();
        assert_eq!(attempts.begin(&mut conn, v4(3), now), Err(Limited::Busy));
        attempts.settle(None, v4(1), true, now);
        assert!(attempts.begin(&mut conn, v4(3), now).is_ok());
    }
}
