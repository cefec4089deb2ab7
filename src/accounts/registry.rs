//! The accounts, sessions and invites the hub holds in memory: loaded from the store at
//! start, changed by the hub's decisions (each change also handed to the store), and by
//! the operator's commands through the store's change watch.

use super::{AccountId, SessionId};
use crate::protocol::fold;
use crate::store::accounts::{LoadedAccounts, StoredAccount, StoredSession};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// An account as the hub knows it.
#[derive(Debug)]
pub struct Account {
    /// Random, positive; also what DMs and memberships name it by on disk.
    pub id: AccountId,
    /// The name as registered (how it is always written).
    pub name: Arc<str>,
    /// The argon2id PHC string of its password.
    pub phc: Arc<str>,
    /// The server's admin: may make invites.
    pub admin: bool,
    /// Bumped at each password change, so a sign-in checked against the old hash while
    /// the change happened does not count.
    pub password_generation: u64,
    /// Rooms it is a member of (by room id): kept across connections and restarts.
    pub memberships: BTreeSet<i64>,
    /// Read marks on rooms (room id → last read message id).
    pub room_marks: HashMap<i64, u64>,
    /// Read marks on conversations (other account → last read DM id).
    pub dm_marks: HashMap<AccountId, u64>,
    /// Accounts it has exchanged DMs with.
    pub partners: BTreeSet<AccountId>,
}

/// A session: what a cookie signs in.
#[derive(Debug, Clone)]
pub struct Session {
    /// What `revoke` names it by.
    pub id: SessionId,
    /// The account it signs in.
    pub account: AccountId,
    /// SHA-256 of its token; the token itself is only ever in the client's cookie.
    pub token_hash: [u8; 32],
    /// When it began (ms since the epoch).
    pub created: u64,
    /// When it was last used (ms): coarse, updated at most every `TOUCH_EVERY`.
    pub last_seen: u64,
    /// The `User-Agent` it signed in with.
    pub agent: String,
}

#[derive(Default)]
pub struct Registry {
    /// Every account, by id.
    accounts: HashMap<AccountId, Account>,
    /// Folded name → account.
    by_key: HashMap<String, AccountId>,
    /// Every session, by its token's hash: what a cookie sign-in looks up.
    sessions: HashMap<[u8; 32], Session>,
    /// Session id → its token hash.
    session_ids: HashMap<SessionId, [u8; 32]>,
    /// Unused invite codes (their hashes) → expiry in ms.
    pub invites: HashMap<[u8; 32], u64>,
    /// DM ids between two accounts, by (lower id, higher id), in id order: unread counts
    /// and `last_id` come from here without the disk.
    conversations: HashMap<(AccountId, AccountId), Vec<u64>>,
}

/// The key a conversation between two accounts is kept under.
pub fn pair(a: AccountId, b: AccountId) -> (AccountId, AccountId) {
    (a.min(b), a.max(b))
}

impl Registry {
    /// The registry as stored; room marks and memberships name rooms by id.
    pub fn load(loaded: &LoadedAccounts) -> Registry {
        let mut d = Registry::default();
        for a in &loaded.accounts {
            d.insert(a);
        }
        for s in &loaded.sessions {
            if d.accounts.contains_key(&s.account_id) {
                d.add_session(Session::from(s));
            }
        }
        for &(account, room) in &loaded.memberships {
            if let Some(a) = d.accounts.get_mut(&account) {
                a.memberships.insert(room);
            }
        }
        for m in &loaded.read_marks {
            let Some(a) = d.accounts.get_mut(&m.account_id) else {
                continue;
            };
            match (m.room_id, m.partner_id) {
                (Some(room), _) => {
                    a.room_marks.insert(room, m.last_read);
                }
                (None, Some(partner)) => {
                    a.dm_marks.insert(partner, m.last_read);
                }
                (None, None) => {}
            }
        }
        for &(id, from, to) in &loaded.dm_ids {
            d.note_dm(id, from, to);
        }
        d.invites = loaded.invites.iter().copied().collect();
        d
    }

    /// Adds (or replaces the basics of) an account.
    pub fn insert(&mut self, a: &StoredAccount) {
        let key = fold(&a.name);
        if let Some(existing) = self.accounts.get_mut(&a.id) {
            existing.phc = a.password_hash.as_str().into();
            existing.admin = a.admin;
            return;
        }
        self.by_key.insert(key, a.id);
        self.accounts.insert(
            a.id,
            Account {
                id: a.id,
                name: a.name.as_str().into(),
                phc: a.password_hash.as_str().into(),
                admin: a.admin,
                password_generation: 0,
                memberships: BTreeSet::new(),
                room_marks: HashMap::new(),
                dm_marks: HashMap::new(),
                partners: BTreeSet::new(),
            },
        );
    }

    /// Removes an account and its sessions; returns the sessions' ids.
    pub fn remove(&mut self, id: AccountId) -> Vec<SessionId> {
        let ended = self.sessions_of(id);
        for s in &ended {
            self.end_session(*s);
        }
        if let Some(a) = self.accounts.remove(&id) {
            self.by_key.remove(&fold(&a.name));
        }
        ended
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    pub fn get(&self, id: AccountId) -> Option<&Account> {
        self.accounts.get(&id)
    }

    pub fn get_mut(&mut self, id: AccountId) -> Option<&mut Account> {
        self.accounts.get_mut(&id)
    }

    /// The account registered under a name (ignoring case), if any.
    pub fn by_name(&self, name: &str) -> Option<&Account> {
        self.by_key(&fold(name))
    }

    pub fn by_key(&self, key: &str) -> Option<&Account> {
        self.by_key.get(key).and_then(|id| self.accounts.get(id))
    }

    pub fn add_session(&mut self, s: Session) {
        self.session_ids.insert(s.id, s.token_hash);
        self.sessions.insert(s.token_hash, s);
    }

    pub fn session(&self, token_hash: &[u8; 32]) -> Option<&Session> {
        self.sessions.get(token_hash)
    }

    pub fn session_mut(&mut self, token_hash: &[u8; 32]) -> Option<&mut Session> {
        self.sessions.get_mut(token_hash)
    }

    pub fn session_by_id(&self, id: SessionId) -> Option<&Session> {
        self.session_ids.get(&id).and_then(|h| self.sessions.get(h))
    }

    pub fn end_session(&mut self, id: SessionId) -> Option<Session> {
        let hash = self.session_ids.remove(&id)?;
        self.sessions.remove(&hash)
    }

    /// An account's sessions' ids, oldest first.
    pub fn sessions_of(&self, account: AccountId) -> Vec<SessionId> {
        let mut mine: Vec<&Session> = self
            .sessions
            .values()
            .filter(|s| s.account == account)
            .collect();
        mine.sort_by_key(|s| (s.created, s.id));
        mine.into_iter().map(|s| s.id).collect()
    }

    /// Sessions unused since before `cutoff` (ms).
    pub fn stale_sessions(&self, cutoff: u64) -> Vec<SessionId> {
        self.sessions
            .values()
            .filter(|s| s.last_seen < cutoff)
            .map(|s| s.id)
            .collect()
    }

    /// Whether any account is a member of the room (online or not).
    pub fn has_members(&self, room_id: i64) -> bool {
        self.accounts
            .values()
            .any(|a| a.memberships.contains(&room_id))
    }

    /// Records a DM between two accounts.
    pub fn note_dm(&mut self, id: u64, from: AccountId, to: AccountId) {
        self.conversations
            .entry(pair(from, to))
            .or_default()
            .push(id);
        if let Some(a) = self.accounts.get_mut(&from) {
            a.partners.insert(to);
        }
        if let Some(a) = self.accounts.get_mut(&to) {
            a.partners.insert(from);
        }
    }

    /// Forgets a deleted DM between two accounts.
    pub fn forget_dm(&mut self, id: u64, from: AccountId, to: AccountId) {
        if let Some(ids) = self.conversations.get_mut(&pair(from, to)) {
            if let Ok(i) = ids.binary_search(&id) {
                ids.remove(i);
            }
        }
    }

    /// A room is gone: no account is a member of it or has a read mark on it any more.
    pub fn forget_room(&mut self, room_id: i64) {
        for a in self.accounts.values_mut() {
            a.memberships.remove(&room_id);
            a.room_marks.remove(&room_id);
        }
    }

    /// A conversation's DM ids, in order.
    pub fn conversation(&self, a: AccountId, b: AccountId) -> &[u64] {
        self.conversations
            .get(&pair(a, b))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

impl From<&StoredSession> for Session {
    fn from(s: &StoredSession) -> Self {
        Session {
            id: s.id,
            account: s.account_id,
            token_hash: s.token_hash,
            created: s.created_at,
            last_seen: s.last_seen,
            agent: s.agent.clone(),
        }
    }
}

/// Messages with an id above `read` among `ids` (sorted).
pub fn unread(ids: &[u64], read: u64) -> usize {
    ids.len() - ids.partition_point(|&id| id <= read)
}
