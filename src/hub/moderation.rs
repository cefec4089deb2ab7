//! Moderation as the hub decides it (PROTOCOL.md 1.1, "Moderation"): who may moderate
//! (the admin everywhere; a room's owner, the account that made it, in that room), and
//! `kick` with its bans, `unban`, `delete_room`, `suspend` and `unsuspend`. `edit` and
//! `delete` are in `message_edits`. Every action passes through `record`, which logs it
//! and keeps it in the audit table.
//!
//! Bans and suspensions are few (moderators make them one at a time) and are needed at
//! every `join` and sign-in, so the hub keeps them in memory, loaded at start and written
//! through to the store. They end by the wall clock: a `join` or sign-in compares `until`
//! with the time it happens, so an ended ban is gone at once; the minute's housekeeping
//! forgets ended ones, in memory and on disk.
//!
//! A ban on an account holds for the account. A guest has nothing that lasts but its name
//! and where it connects from, so a ban on a guest holds for the name (its fold key, so
//! `ANA` and `Аna` are the same name) and for its client address (an IPv6 client by its
//! /64): the same person coming back under another name from the same address is still
//! out. Everyone sharing that address as guests (a school behind one NAT) is out with them;
//! accounts behind it are not. `unban` of a guest online lifts the bans on its name and on
//! its address; of a guest gone, the ban on its name (with the address it had).
//!
//! Any account can make a room and so moderate one: nothing here may reach people outside
//! it. `kicked` goes to the user's connections only if it was in the room (or its account a
//! member); a plain kick of anyone else is `not_in_room`, and a ban set ahead of time is
//! learnt at the door (`banned`). An `unban` that lifts nothing is answered and not logged.

use super::{now_millis, Hub};
use crate::accounts::AccountId;
use crate::address_limit::ClientAddress;
use crate::ids::{ConnId, RoomId};
use crate::outbox::EncodedFrame;
use crate::protocol::{fold, ErrorCode, Event, ModCommand, Ref, Rejection};
use crate::room::UserKey;
use crate::store::moderation::{AuditEntry, LoadedModeration, ModerationWrite, StoredBan};
use crate::store::StoreJob;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Close code for the connections of an account that is suspended (PROTOCOL.md).
pub const SUSPENDED: u16 = 4003;

/// The hub's moderation state.
pub(super) struct Moderation {
    /// How long one of the protocol's `minutes` lasts, in ms: 60,000; tests shorten it so
    /// bans can be seen to end without waiting minutes.
    minute_ms: u64,
    /// Room → the account that made it: its owner, a moderator of it. Guests' rooms have
    /// none.
    pub(super) owners: HashMap<RoomId, AccountId>,
    /// Bans by room.
    bans: HashMap<RoomId, Vec<Ban>>,
    /// Bans one room keeps in force at most (`--max-bans-per-room`; 0 = no cap): every
    /// `join` looks through its room's, and guest names to ban are endless.
    max_bans_per_room: usize,
    /// Suspended accounts → when the suspension ends (ms; `None`: until `unsuspend`).
    suspensions: HashMap<AccountId, Option<u64>>,
}

/// One ban in one room.
#[derive(Debug, Clone)]
struct Ban {
    /// Who is out: an account, or a guest's name key and address.
    subject: Subject,
    /// When it ends (ms since the epoch); `None` until `unban`.
    until: Option<u64>,
}

/// Whom a ban keeps out.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Subject {
    /// An account, whatever name or address it comes from.
    Account(AccountId),
    /// A guest: its name's fold key, and the address it connected from (if it was online).
    Guest {
        /// `protocol::fold` of the name: every look-alike spelling is the same name.
        name_key: String,
        /// `ClientAddress` as text (an IPv6 client's /64): every guest from it is out.
        address: Option<String>,
    },
}

impl Ban {
    /// Whether it still keeps its subject out at `now_ms` (it ends at `until`, exactly).
    fn live(&self, now_ms: u64) -> bool {
        self.until.is_none_or(|until| until > now_ms)
    }
}

impl Moderation {
    pub(super) fn new(loaded: &LoadedModeration) -> Self {
        let mut bans: HashMap<RoomId, Vec<Ban>> = HashMap::new();
        for b in &loaded.bans {
            let subject = match (b.account_id, &b.name_key) {
                (Some(account), _) => Subject::Account(account),
                (None, Some(key)) => Subject::Guest {
                    name_key: key.clone(),
                    address: b.address.clone(),
                },
                (None, None) => continue,
            };
            bans.entry(b.room_id).or_default().push(Ban {
                subject,
                until: b.until,
            });
        }
        Moderation {
            minute_ms: 60_000,
            max_bans_per_room: 10_000,
            owners: loaded.owners.iter().copied().collect(),
            bans,
            suspensions: loaded.suspensions.iter().copied().collect(),
        }
    }

    /// Forgets a room that is gone: its owner and its bans.
    pub(super) fn forget_room(&mut self, room: RoomId) {
        self.owners.remove(&room);
        self.bans.remove(&room);
    }
}

/// Who a `kick`, `unban` or `suspend` names.
enum Target {
    /// A registered account, online or not.
    Account {
        id: AccountId,
        /// Its name as registered, for replies and the audit log.
        name: Arc<str>,
    },
    /// A guest online now.
    Guest {
        /// Its one connection: the one kicked, and whose address a ban takes.
        conn: ConnId,
        /// Its name as it gave it.
        name: Arc<str>,
    },
    /// A guest name that is not online (only `unban` takes one).
    Offline {
        /// The name's fold key, which its bans are kept under.
        name_key: String,
    },
}

fn forbidden(message: impl Into<String>) -> Rejection {
    Rejection::new(ErrorCode::Forbidden, message)
}

/// A plain kick of someone not in the room: it would change nothing, and must not be a way
/// to push a notice (a room name of anyone's choosing) at any user online.
fn not_in_room(user: &str, room: &str) -> Rejection {
    Rejection::new(
        ErrorCode::NotInRoom,
        format!("{user} is not in room {room}"),
    )
}

fn no_such_user(name: &str) -> Rejection {
    Rejection::new(ErrorCode::NoSuchUser, format!("there is no user {name}"))
}

/// When a ban or suspension ends, for people; `open` says what ends one without `until`.
pub(super) fn until_text(until: Option<u64>, open: &str) -> String {
    match until {
        Some(ms) => format!("until {} UTC", crate::store::moderation::utc(ms)),
        None => open.into(),
    }
}

impl Hub {
    /// A shorter moderation minute, for tests (the protocol's `minutes` count in these).
    pub fn with_moderation_minute(mut self, minute: Duration) -> Self {
        self.moderation.minute_ms = (minute.as_millis() as u64).max(1);
        self
    }

    /// Another cap on the bans one room keeps (0: none).
    pub fn with_max_bans_per_room(mut self, max: usize) -> Self {
        self.moderation.max_bans_per_room = max;
        self
    }

    pub(super) fn moderate(
        &mut self,
        conn: ConnId,
        command: ModCommand,
        reference: Option<&Ref>,
        now: Instant,
    ) -> Result<(), Rejection> {
        match command {
            ModCommand::Edit { id, text } => self.look_up_message(
                conn,
                id,
                crate::store::moderation::MessageAction::Edit { text },
                reference,
            ),
            ModCommand::Delete { id } => self.look_up_message(
                conn,
                id,
                crate::store::moderation::MessageAction::Delete,
                reference,
            ),
            ModCommand::Kick {
                room,
                user,
                minutes,
                ban,
            } => self.kick(conn, &room, &user, minutes, ban, reference, now),
            ModCommand::Unban { room, user } => self.unban(conn, &room, &user, reference, now),
            ModCommand::DeleteRoom { room } => self.delete_room(conn, &room, reference, now),
            ModCommand::Suspend { user, minutes } => {
                self.suspend(conn, &user, minutes, reference, now)
            }
            ModCommand::Unsuspend { user } => self.unsuspend(conn, &user, reference, now),
        }
    }

    // ----- roles -----

    /// The account of `conn` if it moderates room `index` (its owner, or the admin).
    pub(super) fn moderator_of(&self, conn: ConnId, index: RoomId) -> Option<AccountId> {
        let account = self.conns.get(&conn)?.account?;
        let admin = self.registry.get(account)?.admin;
        (admin || self.moderation.owners.get(&index) == Some(&account)).then_some(account)
    }

    fn require_moderator(&self, conn: ConnId, index: RoomId) -> Result<AccountId, Rejection> {
        self.moderator_of(conn, index).ok_or_else(|| {
            forbidden(format!(
                "only the owner of room {} or the admin may do that",
                self.rooms[index].name
            ))
        })
    }

    fn require_admin(&self, conn: ConnId) -> Result<AccountId, Rejection> {
        self.conns
            .get(&conn)
            .and_then(|c| c.account)
            .filter(|&a| self.registry.get(a).is_some_and(|a| a.admin))
            .ok_or_else(|| forbidden("only the admin may do that"))
    }

    /// A room an account made is that account's: kept behind the room's own creation.
    /// The name of the account that owns room `index`, if an account made it.
    pub(super) fn owner_name(&self, index: RoomId) -> Option<&str> {
        let owner = *self.moderation.owners.get(&index)?;
        self.registry.get(owner).map(|a| &*a.name)
    }

    pub(super) fn note_owner(&mut self, conn: ConnId, index: RoomId) {
        let Some(account) = self.conns.get(&conn).and_then(|c| c.account) else {
            return;
        };
        self.moderation.owners.insert(index, account);
        let write = ModerationWrite::SetOwner {
            room_id: index,
            account_id: account,
        };
        self.persist_for_room(index, StoreJob::Moderation(write));
    }

    fn resolve(&self, user: &str) -> Result<Target, Rejection> {
        if let Some(a) = self.registry.by_name(user) {
            return Ok(Target::Account {
                id: a.id,
                name: a.name.clone(),
            });
        }
        match self.names.get(&fold(user)) {
            Some(&conn) => Ok(Target::Guest {
                conn,
                name: self.name_of(conn).unwrap_or(user).into(),
            }),
            None => Err(no_such_user(user)),
        }
    }

    fn actor_name(&self, account: AccountId) -> String {
        self.registry
            .get(account)
            .map(|a| a.name.to_string())
            .unwrap_or_default()
    }

    /// Every moderation action ends here: one info line (who did what to whom; never
    /// message text), a row in the audit table, and one in `papo_moderation_actions_total`.
    pub(super) fn record(&mut self, entry: AuditEntry) {
        self.metrics.moderation(entry.action);
        log::info!(
            "moderation: {:?} {} {}{}{}{}",
            entry.actor,
            entry.action,
            entry
                .target
                .as_deref()
                .map(|t| format!("{t:?}"))
                .unwrap_or_default(),
            entry
                .room
                .as_deref()
                .map(|r| format!(" in room {r:?}"))
                .unwrap_or_default(),
            entry
                .message_id
                .map(|id| format!(" (message {id})"))
                .unwrap_or_default(),
            match (entry.action, entry.until) {
                ("ban" | "suspend", until) => format!(" {}", until_text(until, "for good")),
                _ => String::new(),
            }
        );
        self.persist(StoreJob::Moderation(ModerationWrite::Audit(entry)));
    }

    fn audit(
        &self,
        actor: AccountId,
        action: &'static str,
        target: Option<&str>,
        room: Option<&str>,
        until: Option<u64>,
    ) -> AuditEntry {
        AuditEntry {
            at: now_millis(),
            actor: self.actor_name(actor),
            action,
            target: target.map(str::to_string),
            room: room.map(str::to_string),
            message_id: None,
            until,
        }
    }

    // ----- kick, ban, unban -----

    #[allow(clippy::too_many_arguments)]
    fn kick(
        &mut self,
        conn: ConnId,
        room: &str,
        user: &str,
        minutes: Option<u64>,
        ban: bool,
        reference: Option<&Ref>,
        now: Instant,
    ) -> Result<(), Rejection> {
        let index = self.room_by_name(room)?;
        let actor = self.require_moderator(conn, index)?;
        let target = self.resolve(user)?;
        if ban {
            self.make_room_for_ban(index, &target, now)?;
        }
        let (subject, name, reached) = match &target {
            Target::Account { id, name } => {
                if *id == actor {
                    return Err(forbidden("you cannot kick yourself"));
                }
                if self.registry.get(*id).is_some_and(|a| a.admin) {
                    return Err(forbidden("the admin cannot be kicked"));
                }
                let here = self.rooms[index].conns_of(UserKey::Account(*id));
                let member = !here.is_empty()
                    || self
                        .registry
                        .get(*id)
                        .is_some_and(|a| a.memberships.contains(&index));
                if !member && !ban {
                    return Err(not_in_room(name, &self.rooms[index].name));
                }
                self.forget_membership(*id, index);
                for c in here {
                    self.part(c, index, now);
                }
                // Every connection of a member hears it (its room list drops the room);
                // someone banned ahead of time learns it at the door.
                let reached = if member {
                    self.conns_of_account(*id)
                } else {
                    Vec::new()
                };
                (Subject::Account(*id), name.clone(), reached)
            }
            Target::Guest { conn: guest, name } => {
                let member = self.rooms[index].is_member(*guest);
                if !member && !ban {
                    return Err(not_in_room(name, &self.rooms[index].name));
                }
                self.part(*guest, index, now);
                let address = self
                    .conns
                    .get(guest)
                    .map(|c| ClientAddress::of(c.addr).to_string());
                let subject = Subject::Guest {
                    name_key: fold(name),
                    address,
                };
                let reached = if member { vec![*guest] } else { Vec::new() };
                (subject, name.clone(), reached)
            }
            Target::Offline { .. } => return Err(no_such_user(user)),
        };
        let now_ms = self.clock.millis(now);
        let until =
            minutes.map(|m| now_ms.saturating_add(m.saturating_mul(self.moderation.minute_ms)));
        let room_name = self.rooms[index].name.clone();
        let event = |reference| {
            Event::Kicked {
                room: &room_name,
                user: &name,
                until,
                ban,
                reference,
            }
            .to_json()
        };
        let notice = EncodedFrame::text(&event(None));
        for c in reached {
            self.push(c, notice.clone());
        }
        if ban {
            self.set_ban(index, subject, &name, until, actor);
        }
        self.send(conn, &event(reference));
        let action = if ban { "ban" } else { "kick" };
        let entry = self.audit(actor, action, Some(&name), Some(&room_name), until);
        self.record(entry);
        Ok(())
    }

    /// Before a ban: forgets the room's ended bans, then refuses a new one past the cap (a
    /// ban replacing one on the same user takes no more room).
    fn make_room_for_ban(
        &mut self,
        index: RoomId,
        target: &Target,
        now: Instant,
    ) -> Result<(), Rejection> {
        let max = self.moderation.max_bans_per_room;
        let now_ms = self.clock.millis(now);
        let Some(bans) = self.moderation.bans.get_mut(&index) else {
            return Ok(());
        };
        bans.retain(|b| b.live(now_ms));
        let probe = match target {
            Target::Account { id, .. } => Subject::Account(*id),
            Target::Guest { name, .. } => Subject::Guest {
                name_key: fold(name),
                address: None,
            },
            Target::Offline { .. } => return Ok(()),
        };
        let full = max > 0 && bans.len() >= max;
        if full && !bans.iter().any(|b| same_subject(&b.subject, &probe)) {
            return Err(forbidden(format!(
                "room {} has {max} bans in force, the most it keeps: lift some first",
                self.rooms[index].name
            )));
        }
        Ok(())
    }

    fn set_ban(
        &mut self,
        index: RoomId,
        subject: Subject,
        name: &str,
        until: Option<u64>,
        actor: AccountId,
    ) {
        let bans = self.moderation.bans.entry(index).or_default();
        bans.retain(|b| !same_subject(&b.subject, &subject));
        bans.push(Ban {
            subject: subject.clone(),
            until,
        });
        let (account_id, name_key, address) = match subject {
            Subject::Account(id) => (Some(id), None, None),
            Subject::Guest { name_key, address } => (None, Some(name_key), address),
        };
        let stored = StoredBan {
            room_id: index,
            account_id,
            name_key,
            address,
            name: name.to_string(),
            until,
            by: self.actor_name(actor),
            at: now_millis(),
        };
        self.persist_for_room(index, StoreJob::Moderation(ModerationWrite::SetBan(stored)));
    }

    fn unban(
        &mut self,
        conn: ConnId,
        room: &str,
        user: &str,
        reference: Option<&Ref>,
        _now: Instant,
    ) -> Result<(), Rejection> {
        let index = self.room_by_name(room)?;
        let actor = self.require_moderator(conn, index)?;
        let target = match self.resolve(user) {
            Ok(target) => target,
            Err(e) => {
                // A guest who was banned and went away: its name is still banned.
                let name_key = fold(user);
                let banned = self.moderation.bans.get(&index).is_some_and(|bans| {
                    bans.iter().any(|b| {
                        matches!(&b.subject, Subject::Guest { name_key: k, .. } if *k == name_key)
                    })
                });
                if !banned {
                    return Err(e);
                }
                Target::Offline { name_key }
            }
        };
        // An online guest is let in: the bans on its name, and those on the address it
        // connects from (it may be kept out by a ban set under another name).
        let (name, account_id, name_key, address) = match &target {
            Target::Account { id, name } => (name.to_string(), Some(*id), None, None),
            Target::Guest { conn: guest, name } => {
                let address = self
                    .conns
                    .get(guest)
                    .map(|c| ClientAddress::of(c.addr).to_string());
                (name.to_string(), None, Some(fold(name)), address)
            }
            Target::Offline { name_key } => (user.to_string(), None, Some(name_key.clone()), None),
        };
        let mut lifted = 0;
        if let Some(bans) = self.moderation.bans.get_mut(&index) {
            let before = bans.len();
            bans.retain(|b| match (&b.subject, account_id) {
                (Subject::Account(a), Some(id)) => *a != id,
                (
                    Subject::Guest {
                        name_key: k,
                        address: a,
                    },
                    None,
                ) => Some(k) != name_key.as_ref() && (a.is_none() || *a != address),
                _ => true,
            });
            lifted = before - bans.len();
        }
        let room_name = self.rooms[index].name.clone();
        let json = Event::Unbanned {
            room: &room_name,
            user: &name,
            reference,
        }
        .to_json();
        if lifted == 0 {
            // Nobody was kept out: the state asked for holds already, and a loop of these
            // leaves nothing on disk or in the audit log.
            self.send(conn, &json);
            return Ok(());
        }
        let write = ModerationWrite::RemoveBan {
            room_id: index,
            account_id,
            name_key,
            address,
        };
        self.persist_for_room(index, StoreJob::Moderation(write));
        self.send(conn, &json);
        let entry = self.audit(actor, "unban", Some(&name), Some(&room_name), None);
        self.record(entry);
        Ok(())
    }

    /// `banned` if a ban on room `index` keeps `conn` out now.
    pub(super) fn check_ban(
        &self,
        conn: ConnId,
        index: RoomId,
        now: Instant,
    ) -> Result<(), Rejection> {
        let Some(bans) = self.moderation.bans.get(&index) else {
            return Ok(());
        };
        let Some(c) = self.conns.get(&conn) else {
            return Ok(());
        };
        let now_ms = self.clock.millis(now);
        let key = c.name.as_deref().map(fold);
        let address = ClientAddress::of(c.addr).to_string();
        let ban = bans
            .iter()
            .filter(|b| b.live(now_ms))
            .find(|b| match (&b.subject, c.account) {
                (Subject::Account(a), Some(account)) => *a == account,
                (
                    Subject::Guest {
                        name_key,
                        address: banned_from,
                    },
                    None,
                ) => key.as_ref() == Some(name_key) || banned_from.as_ref() == Some(&address),
                _ => false,
            });
        match ban {
            Some(ban) => Err(Rejection::new(
                ErrorCode::Banned,
                format!(
                    "you are banned from room {} {}",
                    self.rooms[index].name,
                    until_text(ban.until, "until a moderator lifts the ban")
                ),
            )),
            None => Ok(()),
        }
    }

    // ----- rooms -----

    fn delete_room(
        &mut self,
        conn: ConnId,
        room: &str,
        reference: Option<&Ref>,
        now: Instant,
    ) -> Result<(), Rejection> {
        let index = self.room_by_name(room)?;
        let actor = self.require_moderator(conn, index)?;
        let name = self.rooms[index].name.clone();
        let members: Vec<ConnId> = self.rooms[index].members().collect();
        for member in members {
            self.part(member, index, now);
        }
        // Accounts' memberships end, online or not; so do their read marks.
        self.registry.forget_room(index);
        // A protected room whose hash is not back yet was never stored: it never will be.
        self.unstored.remove(&fold(&name));
        self.storing.remove(&index);
        // Before the room's own deletion (which takes its messages): see `PurgeRoom`.
        self.persist(StoreJob::Moderation(ModerationWrite::PurgeRoom {
            room_id: index,
        }));
        self.remove_room_telling(index, Some(conn));
        let json = Event::RoomRemoved {
            room: &name,
            reference,
        }
        .to_json();
        self.send(conn, &json);
        let entry = self.audit(actor, "delete_room", None, Some(&name), None);
        self.record(entry);
        Ok(())
    }

    // ----- accounts -----

    fn suspend(
        &mut self,
        conn: ConnId,
        user: &str,
        minutes: Option<u64>,
        reference: Option<&Ref>,
        now: Instant,
    ) -> Result<(), Rejection> {
        let actor = self.require_admin(conn)?;
        let Some(target) = self.registry.by_name(user) else {
            return Err(Rejection::new(
                ErrorCode::NoSuchUser,
                format!("{user} has no account"),
            ));
        };
        let (id, name) = (target.id, target.name.clone());
        if id == actor {
            return Err(forbidden("you cannot suspend yourself"));
        }
        if target.admin {
            return Err(forbidden(
                "an admin cannot be suspended (the operator takes admin away first: papo user admin NAME --off)",
            ));
        }
        let now_ms = self.clock.millis(now);
        let until =
            minutes.map(|m| now_ms.saturating_add(m.saturating_mul(self.moderation.minute_ms)));
        self.moderation.suspensions.insert(id, until);
        self.persist(StoreJob::Moderation(ModerationWrite::Suspend {
            account_id: id,
            until,
            by: self.actor_name(actor),
            at: now_millis(),
        }));
        // Its connections close with 4003 first, so the sessions' end closes none of them
        // with 4001.
        for c in self.account_conns_except(id, None) {
            if let Some(open) = self.conns.get(&c) {
                open.outbox.close(SUSPENDED, "suspended");
            }
            self.remove_conn(c, now);
        }
        let sessions = self.registry.sessions_of(id);
        self.end_sessions(sessions);
        let json = Event::Suspended {
            user: &name,
            until,
            reference,
        }
        .to_json();
        self.send(conn, &json);
        let entry = self.audit(actor, "suspend", Some(&name), None, until);
        self.record(entry);
        Ok(())
    }

    fn unsuspend(
        &mut self,
        conn: ConnId,
        user: &str,
        reference: Option<&Ref>,
        _now: Instant,
    ) -> Result<(), Rejection> {
        let actor = self.require_admin(conn)?;
        let Some(target) = self.registry.by_name(user) else {
            return Err(Rejection::new(
                ErrorCode::NoSuchUser,
                format!("{user} has no account"),
            ));
        };
        let (id, name) = (target.id, target.name.clone());
        self.moderation.suspensions.remove(&id);
        self.persist(StoreJob::Moderation(ModerationWrite::Unsuspend {
            account_id: id,
        }));
        let json = Event::Unsuspended {
            user: &name,
            reference,
        }
        .to_json();
        self.send(conn, &json);
        let entry = self.audit(actor, "unsuspend", Some(&name), None, None);
        self.record(entry);
        Ok(())
    }

    /// `Some(until)` while `account` is suspended (`until` `None`: until `unsuspend`).
    pub(super) fn suspended(&self, account: AccountId) -> Option<Option<u64>> {
        let until = *self.moderation.suspensions.get(&account)?;
        let now_ms = self.clock.millis(Instant::now());
        until.is_none_or(|u| u > now_ms).then_some(until)
    }

    /// The refusal a suspended account's sign-in gets.
    pub(super) fn suspended_refusal(&self, account: AccountId) -> Option<Rejection> {
        self.suspended(account).map(|until| {
            forbidden(format!(
                "this account is suspended {}",
                until_text(until, "until the admin lifts the suspension")
            ))
        })
    }

    /// Once a minute: bans and suspensions that have ended are forgotten, here and on disk.
    pub(super) fn expire_moderation(&mut self, now: Instant) {
        let now_ms = self.clock.millis(now);
        let mut ended = 0;
        for bans in self.moderation.bans.values_mut() {
            let before = bans.len();
            bans.retain(|b| b.live(now_ms));
            ended += before - bans.len();
        }
        self.moderation.bans.retain(|_, bans| !bans.is_empty());
        let before = self.moderation.suspensions.len();
        self.moderation
            .suspensions
            .retain(|_, until| until.is_none_or(|u| u > now_ms));
        ended += before - self.moderation.suspensions.len();
        if ended > 0 {
            self.persist(StoreJob::Moderation(ModerationWrite::Expire {
                now: now_ms,
            }));
        }
    }
}

/// Two bans on the same user: the same account, or the same guest name.
fn same_subject(a: &Subject, b: &Subject) -> bool {
    match (a, b) {
        (Subject::Account(x), Subject::Account(y)) => x == y,
        (Subject::Guest { name_key: x, .. }, Subject::Guest { name_key: y, .. }) => x == y,
        _ => false,
    }
}
