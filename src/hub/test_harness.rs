//! What the hub's pure tests share: a hub loaded with Ana (the admin) and one session of
//! hers, driven directly with a hand-moved clock, and the frames each connection was sent.

use super::*;
use crate::accounts::token;
use crate::outbox::{self, Inbox, Outbound};
use crate::protocol::parse_request;
use crate::store::accounts::{LoadedAccounts, StoredAccount, StoredSession};
use crate::store::{self, Loaded};
use serde_json::{json, Value};

/// Ana's account id.
pub(super) const ANA: i64 = 7;

/// Ana, the admin, and one session of hers `last_seen` at `seen` (ms): the accounts to
/// load, and the session's token hash (what a cookie signs in with).
pub(super) fn ana_with_a_session(seen: u64) -> (LoadedAccounts, [u8; 32]) {
    let token_hash = token::digest(&token::new_token());
    let accounts = LoadedAccounts {
        accounts: vec![StoredAccount {
            id: ANA,
            name: "Ana".into(),
            password_hash: "$argon2id$not-a-real-hash".into(),
            admin: true,
            created_at: 0,
        }],
        sessions: vec![StoredSession {
            id: 1,
            account_id: ANA,
            token_hash,
            created_at: seen,
            last_seen: seen,
            agent: "test".into(),
        }],
        ..Default::default()
    };
    (accounts, token_hash)
}

/// A hub with `accounts` loaded and no hashing pool at all (anything that needed argon2
/// would fail), and the store queue it writes to.
pub(super) fn hub_knowing(accounts: LoadedAccounts) -> (Hub, Receiver<StoreJob>) {
    let (verify_tx, _verify_rx) = crate::password::queue(1);
    let (store_tx, store_rx) = store::queue();
    let loaded = Loaded {
        accounts,
        ..Default::default()
    };
    let hub = Hub::new(Duration::from_millis(50), verify_tx, store_tx, loaded);
    (hub, store_rx)
}

/// A hub under test with its connections' inboxes and the clock the test moves.
pub(super) struct Harness {
    pub(super) hub: Hub,
    /// What the hub asked the store to do, for the test to read and answer.
    pub(super) store_rx: Receiver<StoreJob>,
    /// Each connection's queue, as the writer pool would drain it.
    pub(super) inboxes: HashMap<ConnId, Inbox>,
    /// The hub's "now", moved by hand.
    pub(super) now: Instant,
}

impl Harness {
    /// A harness around a hub that knows Ana and a session of hers last seen at `seen`.
    pub(super) fn with_ana(seen: u64) -> (Harness, [u8; 32]) {
        let (accounts, token_hash) = ana_with_a_session(seen);
        let (hub, store_rx) = hub_knowing(accounts);
        let h = Harness {
            hub,
            store_rx,
            inboxes: HashMap::new(),
            now: Instant::now(),
        };
        (h, token_hash)
    }

    pub(super) fn connect(&mut self, conn: ConnId, session: Option<[u8; 32]>) {
        let (outbox, inbox) = outbox::channel(1000);
        self.inboxes.insert(conn, inbox);
        let input = HubInput::Connect {
            conn,
            addr: std::net::Ipv4Addr::LOCALHOST.into(),
            session,
            outbox,
        };
        self.hub.handle(input, self.now);
    }

    pub(super) fn send(&mut self, conn: ConnId, command: Value) {
        let request = parse_request(&command.to_string()).expect("well-formed frame");
        self.hub
            .handle(HubInput::Request { conn, request }, self.now);
    }

    /// Everything queued for `conn` since the last call: frames as JSON, a close as
    /// `{"close": code, "reason": …}`.
    pub(super) fn frames(&mut self, conn: ConnId) -> Vec<Value> {
        let inbox = &self.inboxes[&conn];
        let mut out = Vec::new();
        while let Some(item) = inbox.try_recv() {
            out.push(match item {
                Outbound::Frame(frame) => serde_json::from_str(frame.json()).unwrap(),
                Outbound::Close(code, reason) => json!({"close": code, "reason": reason}),
                _ => json!({"other": true}),
            });
        }
        out
    }

    pub(super) fn advance(&mut self, by: Duration) {
        self.now += by;
        self.hub.flush_due(self.now);
    }
}
