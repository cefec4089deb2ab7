//! Accounts and sessions (PROTOCOL.md 1.1, "Accounts and sessions"): session tokens and
//! their hashes, argon2id account passwords hashed on a pool of their own, the per-address
//! and per-account failure limits, the in-memory registry the hub keeps, the HTTP API
//! under `/api/`, and the operator's `papo user …` / `papo invite` commands.
//!
//! Who decides what: the hub owns the registry (every account, session and invite), so a
//! name is claimed in one place and in one order with guests' names; the HTTP side and the
//! hashing pool ask it through `calls::AccountCall`. Nothing slow runs on the hub: argon2
//! runs on the pool, and cookie sign-ins cost one SHA-256 on the connection's own thread and
//! a hash-map lookup on the hub.

pub mod api;
pub mod calls;
pub mod cli;
pub mod hashing;
pub mod limits;
pub mod registry;
pub mod token;

/// An account's id: random, so ids made by the server and by the operator's commands
/// never collide, and a deleted account's id is never reused by the next one of its name.
pub type AccountId = i64;
/// A session's id, as `GET /api/session` lists it and `revoke` names it. Random too.
pub type SessionId = i64;

/// Account passwords: 8 to 128 code points (`weak_password` otherwise).
pub const MIN_PASSWORD: usize = 8;

/// True if `password` is acceptable for an account.
pub fn strong_enough(password: &str) -> bool {
    let n = password.chars().count();
    (MIN_PASSWORD..=crate::protocol::MAX_PASSWORD).contains(&n)
}

/// How registration works on this server (`--registration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// Anyone may register.
    Open,
    /// A valid single-use code from the operator is required.
    Invite,
    /// Accounts are made by the operator's command line only.
    Closed,
}

/// The account settings the hub and the API share, from the command line.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Whether name-only `hello` (version 1's guests) is allowed.
    pub guests: bool,
    pub registration: Registration,
    /// A session unused this long ends; also the cookie's Max-Age.
    pub session_days: u64,
    /// Failed sign-ins per client address per `SIGN_IN_WINDOW`; 0 turns it off.
    pub sign_in_failures: u32,
    /// Registrations per client address per hour; 0 turns it off.
    pub registrations_per_hour: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            guests: true,
            registration: Registration::Open,
            session_days: 30,
            sign_in_failures: 10,
            registrations_per_hour: 5,
        }
    }
}

impl Policy {
    /// How long an unused session lives, in milliseconds.
    pub fn session_ms(&self) -> u64 {
        self.session_days.saturating_mul(86_400_000)
    }
}
