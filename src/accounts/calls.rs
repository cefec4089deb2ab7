//! What the HTTP API asks the hub, and what it answers. Each call carries a channel for its
//! answer; the API waits for it (bounded), the hub never waits for anyone.

use super::{AccountId, SessionId};
use crossbeam_channel::Sender;
use std::net::IpAddr;

/// An API error: the HTTP status, the protocol's code, and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status (400, 401, 403, 404, 409, 415, 429, 503).
    pub status: u16,
    /// The protocol's error code, which clients act on.
    pub code: &'static str,
    /// For people; may change.
    pub message: String,
    /// Whole seconds, for `429` (`Retry-After` and `retry_after`).
    pub retry_after: Option<u64>,
    /// When a suspension ends (ms since the epoch), for a suspended account's `403`.
    pub until: Option<u64>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            until: None,
        }
    }

    pub fn rate_limited(retry_after: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after.max(1)),
            ..ApiError::new(429, "rate_limited", "too many attempts; try again later")
        }
    }

    pub fn bad_credentials() -> Self {
        ApiError::new(401, "bad_credentials", "wrong name or password")
    }

    pub fn not_signed_in() -> Self {
        ApiError::new(401, "not_signed_in", "not signed in")
    }

    pub fn unavailable() -> Self {
        ApiError::new(503, "unavailable", "the server is busy; try again shortly")
    }
}

/// Who is asking, as the connection edge saw them.
#[derive(Debug, Clone)]
pub struct Client {
    /// The client's address (the proxy's last hop with `--trust-proxy`): limits count by it.
    pub addr: IpAddr,
    /// The `User-Agent`, cut short: the session list shows it.
    pub agent: String,
}

/// A signed-in account, as the API answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The account's name as registered.
    pub name: String,
    /// Whether it is the server's admin.
    pub admin: bool,
}

/// A sign-in attempt the hub allowed to go to argon2.
#[derive(Debug, Clone)]
pub struct Ticket {
    /// The account, if the name has one, and its password generation when the attempt
    /// started (a password changed meanwhile fails the attempt).
    pub account: Option<(AccountId, u64)>,
    /// The hash to verify against: the account's, or `None` for the dummy (which the pool
    /// thread fetches: the hub never touches argon2, not even to make the dummy).
    pub phc: Option<std::sync::Arc<str>>,
    /// The name's key, which the per-account limit counts by.
    pub key: String,
}

/// One session in `GET /api/session`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionInfo {
    /// What `revoke` names it by.
    pub id: SessionId,
    /// When it began (ms since the epoch).
    pub created: u64,
    /// When it was last used (ms; coarse, to ten minutes).
    pub last_seen: u64,
    /// The `User-Agent` it signed in with, so people tell their devices apart.
    pub agent: String,
    /// True for the session that asked.
    pub current: bool,
}

/// The answer to `GET /api/session`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionView {
    /// The account's name as registered.
    pub name: String,
    /// Whether it is the server's admin.
    pub admin: bool,
    /// Every session of the account, oldest first.
    pub sessions: Vec<SessionInfo>,
}

/// Which sessions `revoke` ends.
#[derive(Debug, Clone, Copy)]
pub enum RevokeTarget {
    One(SessionId),
    Others,
}

type Reply<T> = Sender<Result<T, ApiError>>;

/// A question from the API to the hub.
#[derive(Debug)]
pub enum AccountCall {
    /// Before hashing a registration's password: is registration open (and the invite
    /// good), is the name free, and is the address within its limit (which this counts)?
    CheckRegister {
        name: String,
        invite: Option<String>,
        client: Client,
        reply: Reply<()>,
    },
    /// The password is hashed: claim the name (checked again), spend the invite, and
    /// start a session whose token hashes to `token_hash`.
    Register {
        name: String,
        phc: String,
        invite: Option<String>,
        client: Client,
        token_hash: [u8; 32],
        reply: Reply<SignedIn>,
    },
    /// Before verifying a login: within the limits (counted now)? Which hash to check?
    BeginSignIn {
        name: String,
        client: Client,
        reply: Reply<Ticket>,
    },
    /// The password was checked: on success start a session and give the attempt back;
    /// on failure the attempt stays counted.
    FinishSignIn {
        ticket: Ticket,
        ok: bool,
        client: Client,
        token_hash: [u8; 32],
        reply: Reply<SignedIn>,
    },
    /// The account a session cookie signs in (an upload's owner), or `not_signed_in`.
    SessionAccount {
        token_hash: [u8; 32],
        reply: Reply<AccountId>,
    },
    /// The account and sessions of a session cookie.
    Session {
        token_hash: [u8; 32],
        reply: Reply<SessionView>,
    },
    Logout {
        token_hash: [u8; 32],
        reply: Reply<()>,
    },
    Revoke {
        token_hash: [u8; 32],
        target: RevokeTarget,
        reply: Reply<()>,
    },
    /// The admin makes a single-use invite code (only its hash reaches the hub).
    CreateInvite {
        token_hash: [u8; 32],
        code_hash: [u8; 32],
        expires: u64,
        reply: Reply<()>,
    },
    /// Before a password change: the session's account, within the limits (counted).
    BeginPasswordChange {
        token_hash: [u8; 32],
        client: Client,
        reply: Reply<Ticket>,
    },
    /// The current password was checked and, if right, the new one hashed (`new_phc`).
    FinishPasswordChange {
        token_hash: [u8; 32],
        ticket: Ticket,
        new_phc: Option<String>,
        client: Client,
        reply: Reply<()>,
    },
}
