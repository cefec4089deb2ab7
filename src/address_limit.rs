//! How many sockets each client address holds, so that one address cannot take every
//! socket the server has (`--max-connections-per-ip`). A socket counts from its accept to
//! its close, whatever it is meanwhile: a request head being read, a plain HTTP exchange,
//! or a WebSocket. The books hold only addresses with an open socket, so they never hold
//! more entries than the server has sockets.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// An address's refusals are logged at most once in this long, so a flood of connections
/// from it cannot flood the log; the line says how many were refused unlogged meanwhile.
pub const LOG_EVERY: Duration = Duration::from_secs(10);
/// The most addresses whose last logged refusal is remembered; past it (only with very many
/// addresses refused within `LOG_EVERY`), refusals of further addresses go unlogged and are
/// counted in the next line that is logged.
const LOGGED_ADDRESSES: usize = 4096;

/// Who a client is, for counting: an IPv4 address (also when it reaches a dual-stack
/// listener as an IPv4-mapped IPv6 address), or an IPv6 /64. One host usually has a whole
/// /64 to itself (a home network, a virtual server) and can take any address in it, so
/// counting single IPv6 addresses would limit nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientAddress {
    V4(Ipv4Addr),
    /// The first 64 bits of the address.
    V6Net(u64),
}

impl ClientAddress {
    pub fn of(ip: IpAddr) -> ClientAddress {
        match ip.to_canonical() {
            IpAddr::V4(v4) => ClientAddress::V4(v4),
            IpAddr::V6(v6) => ClientAddress::V6Net((v6.to_bits() >> 64) as u64),
        }
    }
}

impl fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientAddress::V4(v4) => write!(f, "{v4}"),
            ClientAddress::V6Net(net) => {
                write!(f, "{}/64", Ipv6Addr::from_bits(u128::from(*net) << 64))
            }
        }
    }
}

/// The per-address socket counts, shared by the accept loop (which counts sockets in) and
/// the connection threads (whose `Ticket`s count them out).
pub struct AddressLimit {
    /// Sockets one address may hold; 0 means no limit and no bookkeeping at all.
    max: usize,
    /// The counts and the refusal log, behind one lock: the accept loop and closing
    /// connections touch them for a few instructions each.
    books: Mutex<Books>,
}

#[derive(Default)]
struct Books {
    /// Open sockets per address. An address leaves when its count reaches 0, so this never
    /// has more entries than there are open sockets.
    held: HashMap<ClientAddress, usize>,
    /// When each recently refused address was last logged, and how many of its refusals
    /// went unlogged since. Entries older than `LOG_EVERY` are swept out when it is full.
    logged: HashMap<ClientAddress, (Instant, u64)>,
    /// Refusals of addresses that found `logged` full: told in the next line logged.
    unlisted: u64,
}

/// Why a connection was turned away, for the log line.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub address: ClientAddress,
    /// None: stay quiet, this address was logged less than `LOG_EVERY` ago. Some(n): log it,
    /// with the `n` refusals that went unlogged since the last line.
    pub log: Option<u64>,
}

/// One socket counted against its address until dropped.
pub struct Ticket {
    /// The books to count out of; None when the limit is off.
    limit: Option<Arc<AddressLimit>>,
    address: ClientAddress,
}

impl AddressLimit {
    pub fn new(max: usize) -> Arc<AddressLimit> {
        Arc::new(AddressLimit {
            max,
            books: Mutex::new(Books::default()),
        })
    }

    /// The limit this was built with (0: off).
    pub fn max(&self) -> usize {
        self.max
    }

    /// Counts a new socket from `ip` in, or refuses it if its address holds `max` already.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<Ticket, Refusal> {
        let address = ClientAddress::of(ip);
        if self.max == 0 {
            return Ok(Ticket {
                limit: None,
                address,
            });
        }
        let mut books = self.lock();
        let held = books.held.entry(address).or_insert(0);
        if *held < self.max {
            *held += 1;
            return Ok(Ticket {
                limit: Some(self.clone()),
                address,
            });
        }
        let log = books.note_refusal(address, now);
        Err(Refusal { address, log })
    }

    /// Sockets `ip`'s address holds now.
    #[cfg(test)]
    fn held(&self, ip: IpAddr) -> usize {
        let books = self.lock();
        books.held.get(&ClientAddress::of(ip)).copied().unwrap_or(0)
    }

    /// Addresses with at least one open socket.
    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.lock().held.len()
    }

    fn lock(&self) -> MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn release(&self, address: ClientAddress) {
        let mut books = self.lock();
        if let Some(held) = books.held.get_mut(&address) {
            *held -= 1;
            if *held == 0 {
                books.held.remove(&address);
            }
        }
    }
}

impl Books {
    /// Records a refusal of `address`; Some(unlogged since the last line) when it is to be
    /// logged now.
    fn note_refusal(&mut self, address: ClientAddress, now: Instant) -> Option<u64> {
        if let Some((last, unlogged)) = self.logged.get_mut(&address) {
            if now.saturating_duration_since(*last) < LOG_EVERY {
                *unlogged += 1;
                return None;
            }
            let since = std::mem::take(unlogged) + std::mem::take(&mut self.unlisted);
            *last = now;
            return Some(since);
        }
        if self.logged.len() >= LOGGED_ADDRESSES {
            self.logged
                .retain(|_, (last, _)| now.saturating_duration_since(*last) < LOG_EVERY);
            if self.logged.len() >= LOGGED_ADDRESSES {
                self.unlisted += 1;
                return None;
            }
        }
        self.logged.insert(address, (now, 0));
        Some(std::mem::take(&mut self.unlisted))
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(limit) = &self.limit {
            limit.release(self.address);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_address_holds_at_most_max_and_gets_them_back() {
        let limit = AddressLimit::new(2);
        let now = Instant::now();
        let a = limit.admit(ip("10.0.0.1"), now).unwrap();
        let b = limit.admit(ip("10.0.0.1"), now).unwrap();
        assert!(limit.admit(ip("10.0.0.1"), now).is_err());
        // Another address is not affected.
        let c = limit.admit(ip("10.0.0.2"), now).unwrap();
        assert_eq!(limit.held(ip("10.0.0.1")), 2);
        drop(a);
        let a = limit.admit(ip("10.0.0.1"), now).unwrap();
        drop((a, b, c));
        assert_eq!(limit.held(ip("10.0.0.1")), 0);
        assert_eq!(limit.addresses(), 0, "an address at 0 leaves the books");
    }

    #[test]
    fn zero_turns_the_limit_off_and_keeps_no_books() {
        let limit = AddressLimit::new(0);
        let tickets: Vec<Ticket> = (0..1000)
            .map(|_| limit.admit(ip("10.0.0.1"), Instant::now()).unwrap())
            .collect();
        assert_eq!(limit.addresses(), 0);
        drop(tickets);
    }

    #[test]
    fn ipv4_mapped_counts_as_ipv4_and_ipv6_counts_by_64() {
        assert_eq!(
            ClientAddress::of(ip("::ffff:192.0.2.7")),
            ClientAddress::of(ip("192.0.2.7"))
        );
        assert_ne!(
            ClientAddress::of(ip("::ffff:192.0.2.7")),
            ClientAddress::of(ip("::ffff:192.0.2.8"))
        );
        assert_eq!(
            ClientAddress::of(ip("2001:db8:1:2::1")),
            ClientAddress::of(ip("2001:db8:1:2:ffff:1:2:3"))
        );
        assert_ne!(
            ClientAddress::of(ip("2001:db8:1:2::1")),
            ClientAddress::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            ClientAddress::of(ip("2001:db8:1:2::1")).to_string(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            ClientAddress::of(ip("::ffff:10.1.2.3")).to_string(),
            "10.1.2.3"
        );

        let limit = AddressLimit::new(1);
        let _held = limit.admit(ip("10.9.8.7"), Instant::now()).unwrap();
        assert!(limit.admit(ip("::ffff:10.9.8.7"), Instant::now()).is_err());
    }

    #[test]
    fn refusals_are_logged_once_per_address_per_window() {
        let limit = AddressLimit::new(1);
        let t0 = Instant::now();
        let _held = limit.admit(ip("10.0.0.1"), t0).unwrap();
        let _other = limit.admit(ip("10.0.0.2"), t0).unwrap();
        let log_of = |from: &str, at: Instant| limit.admit(ip(from), at).err().unwrap().log;
        assert_eq!(log_of("10.0.0.1", t0), Some(0));
        for i in 1..=5 {
            assert_eq!(log_of("10.0.0.1", t0 + Duration::from_secs(i)), None);
        }
        // Each address has its own window.
        assert_eq!(log_of("10.0.0.2", t0 + Duration::from_secs(1)), Some(0));
        // After the window, one line telling the five that went unlogged.
        assert_eq!(log_of("10.0.0.1", t0 + LOG_EVERY), Some(5));
        assert_eq!(log_of("10.0.0.1", t0 + LOG_EVERY), None);
    }

    #[test]
    fn the_refusal_log_stays_bounded() {
        let mut books = Books::default();
        let t0 = Instant::now();
        for n in 0..LOGGED_ADDRESSES as u32 {
            let address = ClientAddress::V4(Ipv4Addr::from(n));
            assert_eq!(books.note_refusal(address, t0), Some(0));
        }
        // Full of addresses logged within the window: the next one is counted, not listed.
        let late = ClientAddress::V4(Ipv4Addr::new(255, 0, 0, 1));
        assert_eq!(books.note_refusal(late, t0), None);
        assert_eq!(books.logged.len(), LOGGED_ADDRESSES);
        // Once the window has passed the old entries are swept out, and the count is told.
        assert_eq!(books.note_refusal(late, t0 + LOG_EVERY), Some(1));
        assert_eq!(books.logged.len(), 1);
    }
}
