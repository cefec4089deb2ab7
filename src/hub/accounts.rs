//! Accounts as the hub decides them: signing connections in (by cookie or by password),
//! the welcome of an account, read marks, `dm_history`, the HTTP API's questions, the
//! failure limits, sessions that end (their connections close with 4001 `signed out`),
//! and changes the operator made on the command line.

use super::{now_millis, Hub, HubInput};
use crate::accounts::calls::{
    AccountCall, ApiError, Client, RevokeTarget, SessionInfo, SessionView, SignedIn, Ticket,
};
use crate::accounts::hashing::{verify_ticket, HashPool};
use crate::accounts::limits::{retry_secs, WindowLimit};
use crate::accounts::registry::{unread, Session};
use crate::accounts::{token, AccountId, Policy, Registration, SessionId};
use crate::address_limit::ClientAddress;
use crate::ids::{ConnId, RoomId};
use crate::metrics::Limit;
use crate::protocol::{
    fold, Conversation, ErrorCode, Event, ListQuery, Membership, ReadTarget, Ref, Rejection,
};
use crate::room::UserKey;
use crate::store::accounts::{
    AccountChange, AccountWrite, DmHistoryQuery, StoredAccount, StoredReadMark, StoredSession,
};
use crate::store::StoreJob;
use crossbeam_channel::Sender;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Close code for a connection whose session ended (PROTOCOL.md).
pub const SIGNED_OUT: u16 = 4001;
/// The window of `--sign-in-failures` (per address).
pub const SIGN_IN_WINDOW: Duration = Duration::from_secs(180);
/// Failed sign-ins per account name per minute.
pub const ACCOUNT_FAILURES: u32 = 5;
const ACCOUNT_WINDOW: Duration = Duration::from_secs(60);
const REGISTRATION_WINDOW: Duration = Duration::from_secs(3600);
/// A session's `last_seen` is written at most this often (ms): coarse on purpose.
const TOUCH_EVERY: u64 = 10 * 60 * 1000;
/// The most sessions one account keeps; a new one past it ends the least recently used.
/// Far above one person's browsers and devices, and it bounds what a client holding the
/// password can pile up by signing in in a loop (a success costs nothing against the
/// limits): sessions live 30 days in memory and on disk.
pub const MAX_SESSIONS_PER_ACCOUNT: usize = 100;
/// The most characters of a failed sign-in's name the log shows: a name can be 16 KiB.
const LOGGED_NAME_CHARS: usize = 64;

/// The hub's account state besides the registry: settings, the pool, and the limits.
pub struct AccountsState {
    /// The operator's settings: guests, registration, session days, limits.
    pub policy: Policy,
    /// Where argon2 runs; `None` (hub unit tests without it) refuses password sign-ins.
    pub pool: Option<HashPool>,
    /// The hub's own queue, for the pool's answers.
    pub inputs: Option<Sender<HubInput>>,
    /// Failed sign-ins per client address (an IPv6 client by its /64, as every
    /// per-address limit counts: one client holds the whole /64).
    pub address_failures: WindowLimit<ClientAddress>,
    /// Failed sign-ins per account name (its key), whether or not it exists, so the limit
    /// itself says nothing about which names are registered.
    pub name_failures: WindowLimit<String>,
    /// Registrations per client address (counted when they reach hashing).
    pub registrations: WindowLimit<ClientAddress>,
}

impl AccountsState {
    pub fn new(policy: Policy, pool: Option<HashPool>, inputs: Option<Sender<HubInput>>) -> Self {
        AccountsState {
            address_failures: WindowLimit::new(policy.sign_in_failures, SIGN_IN_WINDOW),
            name_failures: WindowLimit::new(ACCOUNT_FAILURES, ACCOUNT_WINDOW),
            registrations: WindowLimit::new(policy.registrations_per_hour, REGISTRATION_WINDOW),
            policy,
            pool,
            inputs,
        }
    }
}

/// A `hello` with a password, checked on the pool.
#[derive(Debug)]
pub struct PasswordSignIn {
    /// The connection that said `hello`; its later commands wait for this answer.
    pub conn: ConnId,
    /// Which account (and password generation) was checked, and the name's key.
    pub ticket: Ticket,
    /// The client's address, whose failure count the attempt holds a place in.
    pub addr: IpAddr,
    /// Whether the password matched.
    pub ok: bool,
    /// The `hello`'s ref, for its reply.
    pub reference: Option<Ref>,
}

fn rejection(code: ErrorCode, message: &str) -> Rejection {
    Rejection::new(code, message)
}

impl Hub {
    /// Sets the account policy, the hashing pool and the hub's own queue.
    pub fn with_accounts(
        mut self,
        policy: Policy,
        pool: Option<HashPool>,
        inputs: Option<Sender<HubInput>>,
    ) -> Self {
        self.accounts = AccountsState::new(policy, pool, inputs);
        self
    }

    // ----- connections signed in -----

    /// The session a connection's cookie names, if it is valid; touches it.
    pub(super) fn resolve_session(&mut self, token_hash: &[u8; 32]) -> Option<&Session> {
        let now = now_millis();
        let cutoff = now.saturating_sub(self.accounts.policy.session_ms());
        let stale = self.registry.session(token_hash)?.last_seen < cutoff;
        if stale {
            let id = self.registry.session(token_hash)?.id;
            self.end_sessions(vec![id]);
            return None;
        }
        let session = self.registry.session_mut(token_hash)?;
        if now.saturating_sub(session.last_seen) >= TOUCH_EVERY {
            session.last_seen = now;
            let touch = AccountWrite::TouchSessions(vec![(session.id, now)]);
            self.persist(StoreJob::Account(touch));
        }
        self.registry.session(token_hash)
    }

    /// A `hello` on a connection its cookie signed in: the name may be left out, and must
    /// be the account's if given.
    pub(super) fn hello_by_cookie(
        &mut self,
        conn: ConnId,
        account: AccountId,
        name: Option<&str>,
        reference: Option<&Ref>,
    ) -> Result<(), Rejection> {
        let Some(a) = self.registry.get(account) else {
            return Err(rejection(
                ErrorCode::BadCredentials,
                "this session has ended",
            ));
        };
        if name.is_some_and(|n| fold(n) != fold(&a.name)) {
            return Err(rejection(
                ErrorCode::BadCredentials,
                "this connection is signed in to another account",
            ));
        }
        self.sign_in(conn, account, reference)
    }

    /// A `hello` with a name and a password (a client without cookies): limits first, then
    /// argon2 on the pool; the connection's later commands wait for the answer.
    pub(super) fn hello_by_password(
        &mut self,
        conn: ConnId,
        name: &str,
        password: String,
        reference: Option<&Ref>,
        now: Instant,
    ) -> Result<(), Rejection> {
        let Some(addr) = self.conns.get(&conn).map(|c| c.addr) else {
            return Ok(());
        };
        let ticket = self
            .begin_sign_in(name, addr, now)
            .map_err(|e| rejection(ErrorCode::RateLimited, &e.message))?;
        let (Some(pool), Some(inputs)) = (&self.accounts.pool, &self.accounts.inputs) else {
            self.give_back(&ticket.key, addr);
            return Err(rejection(ErrorCode::RateLimited, "sign-in is unavailable"));
        };
        let inputs = inputs.clone();
        let reference = reference.cloned();
        let job_ticket = ticket.clone();
        let submitted = pool.submit(Box::new(move || {
            let ok = verify_ticket(&job_ticket, &password);
            let _ = inputs.send(HubInput::PasswordSignIn(PasswordSignIn {
                conn,
                ticket: job_ticket,
                addr,
                ok,
                reference,
            }));
        }));
        if submitted.is_err() {
            self.give_back(&ticket.key, addr);
            return Err(rejection(
                ErrorCode::RateLimited,
                "too many sign-ins at once; try again shortly",
            ));
        }
        // Its later inputs wait behind the check (`held`), as behind a room password's.
        if let Some(c) = self.conns.get_mut(&conn) {
            c.checking = true;
        }
        Ok(())
    }

    /// The pool checked a `hello`'s password: sign in or refuse, then run the commands that
    /// waited behind it.
    pub(super) fn on_password_sign_in(&mut self, done: PasswordSignIn, now: Instant) {
        match self.conns.get_mut(&done.conn) {
            Some(c) if c.checking => c.checking = false,
            _ => return,
        }
        let reference = done.reference.as_ref();
        let account = done.ticket.account.and_then(|(id, generation)| {
            let a = self.registry.get(id)?;
            (done.ok && a.password_generation == generation).then_some(id)
        });
        let result = match account {
            Some(id) => {
                self.give_back(&done.ticket.key, done.addr);
                self.metrics.sign_ins.inc();
                self.sign_in(done.conn, id, reference)
            }
            None => {
                self.metrics.sign_in_failures.inc();
                let name: String = done.ticket.key.chars().take(LOGGED_NAME_CHARS).collect();
                log::info!(
                    "sign-in failed for {name:?} from {} (connection {})",
                    done.addr,
                    done.conn
                );
                Err(rejection(
                    ErrorCode::BadCredentials,
                    "wrong name or password",
                ))
            }
        };
        if let Err(r) = result {
            self.reply_error(done.conn, &r, reference);
        }
        self.release_held(done.conn, now);
    }

    /// Gives `conn` the account's identity and sends the account's `welcome`.
    fn sign_in(
        &mut self,
        conn: ConnId,
        account: AccountId,
        reference: Option<&Ref>,
    ) -> Result<(), Rejection> {
        let Some(a) = self.registry.get(account) else {
            return Err(rejection(
                ErrorCode::BadCredentials,
                "wrong name or password",
            ));
        };
        let name = a.name.clone();
        if let Some(refusal) = self.suspended_refusal(account) {
            return Err(refusal);
        }
        if self.names.contains_key(&fold(&name)) {
            // Made from the command line while a guest of that name was online.
            return Err(rejection(
                ErrorCode::NameTaken,
                &format!("{name} is in use by a guest right now"),
            ));
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return Ok(());
        };
        log::info!(
            "connection {conn} signed in to account {name:?} ({})",
            if c.session.is_some() {
                "session cookie"
            } else {
                "password"
            }
        );
        c.name = Some(name);
        c.account = Some(account);
        self.online.entry(account).or_default().push(conn);
        self.send_account_welcome(conn, account, reference);
        Ok(())
    }

    fn send_account_welcome(&mut self, conn: ConnId, account: AccountId, reference: Option<&Ref>) {
        let Some(a) = self.registry.get(account) else {
            return;
        };
        let memberships: Vec<Membership> = a
            .memberships
            .iter()
            .filter_map(|&room_id| self.rooms.get(room_id))
            .map(|room| {
                let read_id = a.room_marks.get(&room.id).copied().unwrap_or(0);
                Membership {
                    room: &room.name,
                    protected: room.is_protected(),
                    owner: self.owner_name(room.id),
                    member_count: room.member_count(),
                    last_id: room.last_id(),
                    read_id,
                    unread: unread(&room.message_ids, read_id),
                }
            })
            .collect();
        let dms: Vec<Conversation> = a
            .partners
            .iter()
            .filter_map(|&partner| {
                let with = self.registry.get(partner)?;
                let ids = self.registry.conversation(account, partner);
                let read_id = a.dm_marks.get(&partner).copied().unwrap_or(0);
                Some(Conversation {
                    with: &with.name,
                    last_id: ids.last().copied().unwrap_or(0),
                    read_id,
                    unread: unread(ids, read_id),
                })
            })
            .collect();
        let page = self.directory.page(&ListQuery::default());
        let json = Event::Welcome {
            name: &a.name,
            rooms: self.summaries(&page.ids),
            rooms_total: page.total,
            account: true,
            admin: a.admin,
            memberships: Some(memberships),
            dms: Some(dms),
            reference,
        }
        .to_json();
        self.send(conn, &json);
    }

    /// Every connection of an online account.
    pub(super) fn conns_of_account(&self, account: AccountId) -> Vec<ConnId> {
        self.online.get(&account).cloned().unwrap_or_default()
    }

    pub(super) fn user_key(&self, conn: ConnId) -> UserKey {
        match self.conns.get(&conn).and_then(|c| c.account) {
            Some(account) => UserKey::Account(account),
            None => UserKey::Guest(conn),
        }
    }

    // ----- account commands -----

    pub(super) fn read(
        &mut self,
        conn: ConnId,
        target: ReadTarget,
        id: u64,
        reference: Option<&Ref>,
    ) -> Result<(), Rejection> {
        let account = self.signed_in_account(conn)?;
        let (room_id, partner_id, shown, last) = match &target {
            ReadTarget::Room(name) => {
                let index = self.room_by_name(name)?;
                let room = &self.rooms[index];
                let member = self
                    .registry
                    .get(account)
                    .is_some_and(|a| a.memberships.contains(&room.id));
                if !member {
                    let message = format!("you are not a member of room {}", room.name);
                    return Err(Rejection::new(ErrorCode::NotInRoom, message));
                }
                (Some(room.id), None, room.name.clone(), room.last_id())
            }
            ReadTarget::With(name) => {
                let Some(partner) = self.registry.by_name(name) else {
                    let message = format!("{name} has no account");
                    return Err(Rejection::new(ErrorCode::NoSuchUser, message));
                };
                let last = self
                    .registry
                    .conversation(account, partner.id)
                    .last()
                    .copied()
                    .unwrap_or(0);
                (None, Some(partner.id), partner.name.clone(), last)
            }
        };
        let Some(a) = self.registry.get_mut(account) else {
            return Ok(());
        };
        // A mark never moves back, nor past the newest message.
        let mark = match (room_id, partner_id) {
            (Some(room), _) => a.room_marks.entry(room).or_insert(0),
            (None, Some(partner)) => a.dm_marks.entry(partner).or_insert(0),
            (None, None) => return Ok(()),
        };
        let wanted = id.min(last);
        let moved = wanted > *mark;
        if moved {
            *mark = wanted;
        }
        let mark = *mark;
        if moved {
            let write = AccountWrite::SetReadMark(StoredReadMark {
                account_id: account,
                room_id,
                partner_id,
                last_read: mark,
            });
            self.persist(StoreJob::Account(write));
        }
        let (room, with) = match target {
            ReadTarget::Room(_) => (Some(&*shown), None),
            ReadTarget::With(_) => (None, Some(&*shown)),
        };
        let event = |reference| {
            Event::Read {
                room,
                with,
                id: mark,
                reference,
            }
            .to_json()
        };
        let (mine, others) = (event(reference), event(None));
        for c in self.conns_of_account(account) {
            let json = if c == conn { &mine } else { &others };
            self.send(c, json);
        }
        Ok(())
    }

    pub(super) fn dm_history(
        &mut self,
        conn: ConnId,
        with: &str,
        before: Option<u64>,
        limit: usize,
        reference: Option<&Ref>,
    ) -> Result<(), Rejection> {
        let me = self.signed_in_account(conn)?;
        let Some(partner) = self.registry.by_name(with) else {
            let message = format!("{with} has no account");
            return Err(Rejection::new(ErrorCode::NoSuchUser, message));
        };
        let Some(reply) = self.conns.get(&conn).map(|c| c.outbox.clone()) else {
            return Ok(());
        };
        let query = DmHistoryQuery {
            me,
            partner: partner.id,
            partner_name: partner.name.to_string(),
            before,
            limit,
            reference: reference.cloned(),
            reply,
        };
        self.persist(StoreJob::DmHistory(query));
        Ok(())
    }

    fn signed_in_account(&self, conn: ConnId) -> Result<AccountId, Rejection> {
        self.conns
            .get(&conn)
            .and_then(|c| c.account)
            .ok_or_else(|| {
                rejection(
                    ErrorCode::SignInRequired,
                    "this is for signed-in accounts only",
                )
            })
    }

    /// Keeps an account's membership of a room (a join).
    pub(super) fn remember_membership(&mut self, account: AccountId, index: RoomId) {
        let room_id = self.rooms[index].id;
        if let Some(a) = self.registry.get_mut(account) {
            if a.memberships.insert(room_id) {
                let write = AccountWrite::AddMembership {
                    account_id: account,
                    room_id,
                };
                self.persist(StoreJob::Account(write));
            }
        }
    }

    /// Ends an account's membership of a room (a `leave`).
    pub(super) fn forget_membership(&mut self, account: AccountId, index: RoomId) {
        let room_id = self.rooms[index].id;
        if let Some(a) = self.registry.get_mut(account) {
            if a.memberships.remove(&room_id) {
                let write = AccountWrite::RemoveMembership {
                    account_id: account,
                    room_id,
                };
                self.persist(StoreJob::Account(write));
            }
        }
    }

    pub(super) fn is_account_member(&self, conn: ConnId, index: RoomId) -> bool {
        let room_id = self.rooms[index].id;
        self.conns
            .get(&conn)
            .and_then(|c| c.account)
            .and_then(|a| self.registry.get(a))
            .is_some_and(|a| a.memberships.contains(&room_id))
    }

    // ----- the failure limits -----

    /// Counts a sign-in attempt against the address and the name, or says how long to
    /// wait; then which hash the attempt is checked against.
    fn begin_sign_in(
        &mut self,
        name: &str,
        addr: IpAddr,
        now: Instant,
    ) -> Result<Ticket, ApiError> {
        let key = fold(name.trim());
        let addr = ClientAddress::of(addr);
        let limits = &mut self.accounts;
        if let Err(wait) = limits.address_failures.take(&addr, now) {
            self.metrics.rate_limited(Limit::SignIn);
            return Err(ApiError::rate_limited(retry_secs(wait)));
        }
        if let Err(wait) = limits.name_failures.take(&key, now) {
            limits.address_failures.give_back(&addr);
            self.metrics.rate_limited(Limit::SignIn);
            return Err(ApiError::rate_limited(retry_secs(wait)));
        }
        let account = self.registry.by_key(&key);
        Ok(Ticket {
            account: account.map(|a| (a.id, a.password_generation)),
            phc: account.map(|a| a.phc.clone()),
            key,
        })
    }

    /// A sign-in that succeeded costs nothing against the limits.
    fn give_back(&mut self, key: &str, addr: IpAddr) {
        let addr = ClientAddress::of(addr);
        self.accounts.address_failures.give_back(&addr);
        self.accounts.name_failures.give_back(&key.to_string());
    }

    // ----- sessions -----

    fn start_session(&mut self, account: AccountId, token_hash: [u8; 32], client: &Client) {
        let now = now_millis();
        let session = StoredSession {
            id: token::random_id(),
            account_id: account,
            token_hash,
            created_at: now,
            last_seen: now,
            agent: client.agent.clone(),
        };
        let new_id = session.id;
        self.registry.add_session(Session::from(&session));
        self.persist(StoreJob::Account(AccountWrite::CreateSession(session)));
        // Least recently used first; among equals, the oldest.
        let mut others: Vec<(u64, u64, SessionId)> = self
            .registry
            .sessions_of(account)
            .into_iter()
            .filter(|&id| id != new_id)
            .filter_map(|id| {
                let s = self.registry.session_by_id(id)?;
                Some((s.last_seen, s.created, id))
            })
            .collect();
        if others.len() >= MAX_SESSIONS_PER_ACCOUNT {
            others.sort_unstable();
            let excess = others.len() + 1 - MAX_SESSIONS_PER_ACCOUNT;
            self.end_sessions(
                others
                    .into_iter()
                    .take(excess)
                    .map(|(_, _, id)| id)
                    .collect(),
            );
        }
    }

    /// Ends sessions: forgotten, deleted from the store, and every connection they signed
    /// in closed with 4001.
    pub(super) fn end_sessions(&mut self, ids: Vec<SessionId>) {
        if ids.is_empty() {
            return;
        }
        for id in &ids {
            self.registry.end_session(*id);
        }
        let doomed: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.session.is_some_and(|s| ids.contains(&s)))
            .map(|(id, _)| *id)
            .collect();
        self.persist(StoreJob::Account(AccountWrite::DeleteSessions(ids)));
        self.sign_out(doomed);
    }

    /// Closes connections with 4001 `signed out` and takes them out of the hub at once.
    fn sign_out(&mut self, conns: Vec<ConnId>) {
        let now = Instant::now();
        for conn in conns {
            if let Some(c) = self.conns.get(&conn) {
                c.outbox.close(SIGNED_OUT, "signed out");
            }
            self.remove_conn(conn, now);
        }
    }

    /// Connections of an account that no session of `keep` signed in: the ones a new
    /// password must close (other sessions' and those signed in by the old password).
    pub(super) fn account_conns_except(
        &self,
        account: AccountId,
        keep: Option<SessionId>,
    ) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| c.account == Some(account) || c.cookie_account == Some(account))
            .filter(|(_, c)| keep.is_none() || c.session != keep)
            .map(|(id, _)| *id)
            .collect()
    }

    /// A new password: every session but `keep` ends, and so does every connection
    /// signed in by the old password.
    fn password_changed(&mut self, account: AccountId, phc: &str, keep: Option<SessionId>) {
        if let Some(a) = self.registry.get_mut(account) {
            a.phc = phc.into();
            a.password_generation += 1;
        }
        let ended: Vec<SessionId> = self
            .registry
            .sessions_of(account)
            .into_iter()
            .filter(|s| Some(*s) != keep)
            .collect();
        let conns = self.account_conns_except(account, keep);
        self.end_sessions(ended);
        self.sign_out(conns);
    }

    /// Once a minute: sessions still in use are touched (coarsely), unused ones past
    /// `--session-days` end, and the limits forget old attempts.
    pub fn housekeeping(&mut self, now: Instant) {
        let now_ms = now_millis();
        let live: Vec<SessionId> = self.conns.values().filter_map(|c| c.session).collect();
        let mut touched = Vec::new();
        for id in live {
            let Some(hash) = self.registry.session_by_id(id).map(|s| s.token_hash) else {
                continue;
            };
            if let Some(s) = self.registry.session_mut(&hash) {
                if now_ms.saturating_sub(s.last_seen) >= TOUCH_EVERY {
                    s.last_seen = now_ms;
                    touched.push((id, now_ms));
                }
            }
        }
        if !touched.is_empty() {
            self.persist(StoreJob::Account(AccountWrite::TouchSessions(touched)));
        }
        let cutoff = now_ms.saturating_sub(self.accounts.policy.session_ms());
        let stale = self.registry.stale_sessions(cutoff);
        self.end_sessions(stale);
        self.registry.invites.retain(|_, expires| *expires > now_ms);
        self.accounts.address_failures.sweep(now);
        self.accounts.name_failures.sweep(now);
        self.accounts.registrations.sweep(now);
        self.expire_moderation(now);
    }

    // ----- the operator's changes -----

    pub(super) fn on_account_changes(&mut self, changes: Vec<AccountChange>) {
        for change in changes {
            match change {
                AccountChange::Upsert {
                    account,
                    password_reset,
                } => {
                    let known = self.registry.get(account.id).is_some();
                    self.registry.insert(&account);
                    if known && password_reset {
                        log::info!("account {}: password reset by the operator", account.name);
                        self.password_changed(account.id, &account.password_hash, None);
                    }
                }
                AccountChange::Deleted { name_key } => {
                    let Some(id) = self.registry.by_key(&name_key).map(|a| a.id) else {
                        continue;
                    };
                    log::info!("account {name_key}: deleted by the operator");
                    let conns = self.account_conns_except(id, None);
                    let sessions = self.registry.remove(id);
                    self.end_sessions(sessions);
                    self.sign_out(conns);
                }
                AccountChange::Invites(invites) => {
                    self.registry.invites = invites.into_iter().collect();
                }
            }
        }
    }

    // ----- the HTTP API's questions -----

    pub(super) fn on_account_call(&mut self, call: AccountCall, now: Instant) {
        match call {
            AccountCall::SessionAccount { token_hash, reply } => {
                let account = self.resolve_session(&token_hash).map(|s| s.account);
                let _ = reply.send(account.ok_or_else(ApiError::not_signed_in));
            }
            AccountCall::CheckRegister {
                name,
                invite,
                client,
                reply,
            } => {
                let answer = self.may_register(&name, invite.as_deref()).and_then(|()| {
                    self.accounts
                        .registrations
                        .take(&ClientAddress::of(client.addr), now)
                        .map_err(|wait| {
                            self.metrics.rate_limited(Limit::Registration);
                            ApiError::rate_limited(retry_secs(wait))
                        })
                });
                let _ = reply.send(answer);
            }
            AccountCall::Register {
                name,
                phc,
                invite,
                client,
                token_hash,
                reply,
            } => {
                let answer = self.may_register(&name, invite.as_deref()).map(|()| {
                    let admin = self.registry.is_empty();
                    let account = StoredAccount {
                        id: token::random_id(),
                        name: name.clone(),
                        password_hash: phc,
                        admin,
                        created_at: now_millis(),
                    };
                    self.registry.insert(&account);
                    let id = account.id;
                    self.persist(StoreJob::Account(AccountWrite::CreateAccount(account)));
                    if let Some(code) =
                        invite.filter(|_| self.accounts.policy.registration == Registration::Invite)
                    {
                        let hash = token::digest(&code);
                        self.registry.invites.remove(&hash);
                        self.persist(StoreJob::Account(AccountWrite::UseInvite(hash)));
                    }
                    self.start_session(id, token_hash, &client);
                    self.metrics.sign_ins.inc();
                    log::info!(
                        "account {name} registered from {}{}",
                        client.addr,
                        if admin { " (admin)" } else { "" }
                    );
                    SignedIn { name, admin }
                });
                let _ = reply.send(answer);
            }
            AccountCall::BeginSignIn {
                name,
                client,
                reply,
            } => {
                let _ = reply.send(self.begin_sign_in(&name, client.addr, now));
            }
            AccountCall::FinishSignIn {
                ticket,
                ok,
                client,
                token_hash,
                reply,
            } => {
                let account = ticket.account.and_then(|(id, generation)| {
                    let a = self.registry.get(id)?;
                    (ok && a.password_generation == generation).then_some(id)
                });
                let answer = match account {
                    Some(id) if self.suspended(id).is_some() => {
                        // The right password: it costs nothing, and learns only this.
                        self.give_back(&ticket.key, client.addr);
                        let refusal = self.suspended_refusal(id);
                        let message = refusal.map(|r| r.message).unwrap_or_default();
                        Err(ApiError {
                            until: self.suspended(id).flatten(),
                            ..ApiError::new(403, "forbidden", message)
                        })
                    }
                    Some(id) => {
                        self.give_back(&ticket.key, client.addr);
                        self.start_session(id, token_hash, &client);
                        self.metrics.sign_ins.inc();
                        let who = self.signed_in(id);
                        log::info!("account {} signed in from {}", who.name, client.addr);
                        Ok(who)
                    }
                    None => {
                        // The name is the client's: escaped (no forged lines) and cut short.
                        let name: String = ticket.key.chars().take(LOGGED_NAME_CHARS).collect();
                        log::info!("sign-in failed for {name:?} from {}", client.addr);
                        self.metrics.sign_in_failures.inc();
                        Err(ApiError::bad_credentials())
                    }
                };
                let _ = reply.send(answer);
            }
            AccountCall::Session { token_hash, reply } => {
                let answer = self.session_view(&token_hash);
                let _ = reply.send(answer);
            }
            AccountCall::Logout { token_hash, reply } => {
                let answer = self
                    .current(&token_hash)
                    .map(|s| self.end_sessions(vec![s.id]));
                let _ = reply.send(answer);
            }
            AccountCall::Revoke {
                token_hash,
                target,
                reply,
            } => {
                let answer = self.current(&token_hash).and_then(|current| {
                    let ended = match target {
                        RevokeTarget::One(id) => {
                            let mine = self
                                .registry
                                .session_by_id(id)
                                .is_some_and(|s| s.account == current.account);
                            if !mine {
                                return Err(ApiError::new(
                                    404,
                                    "no_such_session",
                                    "no such session",
                                ));
                            }
                            vec![id]
                        }
                        RevokeTarget::Others => self
                            .registry
                            .sessions_of(current.account)
                            .into_iter()
                            .filter(|&s| s != current.id)
                            .collect(),
                    };
                    self.end_sessions(ended);
                    Ok(())
                });
                let _ = reply.send(answer);
            }
            AccountCall::CreateInvite {
                token_hash,
                code_hash,
                expires,
                reply,
            } => {
                let answer = self.current(&token_hash).and_then(|s| {
                    if !self.registry.get(s.account).is_some_and(|a| a.admin) {
                        return Err(ApiError::new(
                            403,
                            "forbidden",
                            "only the admin makes invites",
                        ));
                    }
                    self.registry.invites.insert(code_hash, expires);
                    let write = AccountWrite::CreateInvite(code_hash, expires);
                    self.persist(StoreJob::Account(write));
                    Ok(())
                });
                let _ = reply.send(answer);
            }
            AccountCall::BeginPasswordChange {
                token_hash,
                client,
                reply,
            } => {
                let answer = self.current(&token_hash).and_then(|s| {
                    let name = self.registry.get(s.account).map(|a| a.name.clone());
                    let name = name.ok_or_else(ApiError::not_signed_in)?;
                    self.begin_sign_in(&name, client.addr, now)
                });
                let _ = reply.send(answer);
            }
            AccountCall::FinishPasswordChange {
                token_hash,
                ticket,
                new_phc,
                client,
                reply,
            } => {
                let answer = self.current(&token_hash).and_then(|s| {
                    let still = ticket.account.is_some_and(|(id, generation)| {
                        id == s.account
                            && self
                                .registry
                                .get(id)
                                .is_some_and(|a| a.password_generation == generation)
                    });
                    let (Some(phc), true) = (new_phc, still) else {
                        self.metrics.sign_in_failures.inc();
                        return Err(ApiError::bad_credentials());
                    };
                    self.give_back(&ticket.key, client.addr);
                    let write = AccountWrite::SetPassword {
                        account_id: s.account,
                        password_hash: phc.clone(),
                    };
                    self.persist(StoreJob::Account(write));
                    self.password_changed(s.account, &phc, Some(s.id));
                    Ok(())
                });
                let _ = reply.send(answer);
            }
        }
    }

    /// Registration's rules short of the limit: the mode, the invite, the name.
    fn may_register(&self, name: &str, invite: Option<&str>) -> Result<(), ApiError> {
        match self.accounts.policy.registration {
            Registration::Closed => {
                return Err(ApiError::new(
                    403,
                    "registration_closed",
                    "registration is closed on this server",
                ))
            }
            Registration::Invite => {
                let valid = invite
                    .map(token::digest)
                    .and_then(|hash| self.registry.invites.get(&hash))
                    .is_some_and(|&expires| expires > now_millis());
                if !valid {
                    return Err(ApiError::new(
                        403,
                        "bad_invite",
                        "a valid invite code is required",
                    ));
                }
            }
            Registration::Open => {}
        }
        let key = fold(name);
        if self.registry.by_key(&key).is_some() || self.names.contains_key(&key) {
            return Err(ApiError::new(409, "name_taken", format!("{name} is taken")));
        }
        Ok(())
    }

    /// The session a cookie names, still valid.
    fn current(&mut self, token_hash: &[u8; 32]) -> Result<Session, ApiError> {
        self.resolve_session(token_hash)
            .cloned()
            .ok_or_else(ApiError::not_signed_in)
    }

    fn signed_in(&self, account: AccountId) -> SignedIn {
        let a = self.registry.get(account);
        SignedIn {
            name: a.map(|a| a.name.to_string()).unwrap_or_default(),
            admin: a.is_some_and(|a| a.admin),
        }
    }

    fn session_view(&mut self, token_hash: &[u8; 32]) -> Result<SessionView, ApiError> {
        let current = self.current(token_hash)?;
        let me = self.signed_in(current.account);
        let sessions = self
            .registry
            .sessions_of(current.account)
            .into_iter()
            .filter_map(|id| self.registry.session_by_id(id))
            .map(|s| SessionInfo {
                id: s.id,
                created: s.created,
                last_seen: s.last_seen,
                agent: s.agent.clone(),
                current: s.id == current.id,
            })
            .collect();
        Ok(SessionView {
            name: me.name,
            admin: me.admin,
            sessions,
        })
    }
}
