//! `edit` and `delete` of a message (PROTOCOL.md 1.1, "Moderation").
//!
//! Not every message is in memory (a room keeps its newest 50), so who wrote message 17,
//! and where, is asked of the store (`StoreJob::LookupMessage`). The store answers in its
//! own order, after every message queued before the lookup, and the hub hears back with
//! `StoreDone::MessageLooked`. Meanwhile the connection's later commands wait behind the
//! lookup exactly as they wait behind a room password's check (`held`), so replies keep
//! the order of requests. The hub keeps every message id in memory (each room's
//! `message_ids`, each conversation's in the registry, for unread counts): a message
//! found on disk but no longer there was deleted meanwhile, and is no message.
//!
//! An allowed change is kept before anyone hears of it (`StoreJob::ChangeMessage`, answered
//! by `StoreDone::MessageChanged`), the connection still waiting: a deletion told as done
//! but lost with a failing disk would bring the message back at the next start, unseen by
//! the moderator who removed it. Not kept, the asker alone hears `unavailable`. The cost is
//! one store batch (milliseconds) before the room sees an edit; edits are rare.
//!
//! Who may: the author edits (in a room, while still a member of it: someone kicked or
//! banned cannot put its words back in front of the room) and deletes, a moderator of the
//! room deletes. An account is the author of what it sent signed in. A guest is the author
//! of what it sent on this connection: a message under its name, sent by no account, with
//! an id above the last one handed out when it said `hello` (its name was nobody else's
//! since). Someone who cannot read a message (a DM between others, a room they are not in
//! and do not moderate) is told there is no such message, not that they may not touch it.

use super::Hub;
use crate::accounts::AccountId;
use crate::ids::{ConnId, RoomId};
use crate::outbox::EncodedFrame;
use crate::protocol::{fold, ErrorCode, Event, Ref, Rejection};
use crate::store::moderation::{
    AuditEntry, FoundMessage, MessageAction, MessageAnswer, MessageChange, MessageQuery,
};
use crate::store::StoreJob;
use serde_json::value::RawValue;
use std::cell::OnceCell;
use std::time::Instant;

/// Where a found message lives, as the hub knows it.
enum Place {
    /// A room the hub still has, holding the message.
    Room(RoomId),
    /// A DM between two accounts: (sender, recipient).
    Dm(AccountId, AccountId),
}

fn no_such_message(id: u64) -> Rejection {
    Rejection::new(
        ErrorCode::NoSuchMessage,
        format!("there is no message {id}"),
    )
}

impl Hub {
    /// Asks the store for message `id`; `conn`'s later commands wait for the answer.
    pub(super) fn look_up_message(
        &mut self,
        conn: ConnId,
        id: u64,
        action: MessageAction,
        reference: Option<&Ref>,
    ) -> Result<(), Rejection> {
        let Some(c) = self.conns.get_mut(&conn) else {
            return Ok(());
        };
        c.checking = true;
        let job = StoreJob::LookupMessage(MessageQuery {
            conn,
            id,
            action,
            reference: reference.cloned(),
            found: OnceCell::new(),
        });
        // A message in a new protected room whose hash is not back yet is not stored yet:
        // the lookup waits behind it with the room's other jobs.
        match self.unstored_room_holding(id) {
            Some(index) => self.persist_for_room(index, job),
            None => self.persist(job),
        }
        Ok(())
    }

    fn unstored_room_holding(&self, id: u64) -> Option<RoomId> {
        self.unstored
            .keys()
            .filter_map(|key| self.room_index.get(key).copied())
            .find(|&index| self.rooms[index].message_ids.binary_search(&id).is_ok())
    }

    /// The store's answer: if the change is allowed it goes to the store (and the
    /// connection keeps waiting for it); else the refusal, and what the connection sent
    /// meanwhile runs.
    pub(super) fn on_message_looked(&mut self, answer: MessageAnswer, now: Instant) {
        let conn = answer.conn;
        match self.conns.get_mut(&conn) {
            Some(c) if c.checking => c.checking = false,
            _ => return,
        }
        let reference = answer.reference.as_ref();
        let result = match answer.found {
            Err(()) => Err(Rejection::new(
                ErrorCode::Unavailable,
                format!(
                    "message {} cannot be read: the server's storage is failing",
                    answer.id
                ),
            )),
            Ok(None) => Err(no_such_message(answer.id)),
            Ok(Some(found)) => self.allow_change(conn, found, answer.action, reference),
        };
        match result {
            Ok(change) => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.checking = true;
                }
                let room = change
                    .found
                    .room_id
                    .filter(|&r| self.rooms.get(r).is_some());
                let job = StoreJob::ChangeMessage(change);
                match room {
                    Some(index) => self.persist_for_room(index, job),
                    None => self.persist(job),
                }
                return;
            }
            Err(rejection) => self.reply_error(conn, &rejection, reference),
        }
        self.release_held(conn, now);
    }

    /// Where a found message lives, if the hub still has it.
    fn place_of(&self, found: &FoundMessage) -> Option<Place> {
        let id = found.id;
        match (found.room_id, found.sender_account, found.recipient_account) {
            (Some(room), _, _) => self
                .rooms
                .get(room)
                .filter(|r| r.message_ids.binary_search(&id).is_ok())
                .map(|_| Place::Room(room)),
            (None, Some(from), Some(to)) => self
                .registry
                .conversation(from, to)
                .binary_search(&id)
                .is_ok()
                .then_some(Place::Dm(from, to)),
            _ => None,
        }
    }

    /// Whether `conn` may make this change: the change, ready for the store, or why not.
    fn allow_change(
        &mut self,
        conn: ConnId,
        found: FoundMessage,
        action: MessageAction,
        reference: Option<&Ref>,
    ) -> Result<MessageChange, Rejection> {
        let id = found.id;
        let place = self.place_of(&found).ok_or_else(|| no_such_message(id))?;
        let Some(c) = self.conns.get(&conn) else {
            return Err(no_such_message(id));
        };
        let me = c.account;
        let author = match me {
            Some(account) => found.sender_account == Some(account),
            None => {
                found.sender_account.is_none()
                    && c.name
                        .as_deref()
                        .is_some_and(|n| fold(n) == fold(&found.sender))
                    && id > c.guest_since_id
            }
        };
        let moderator = match place {
            Place::Room(index) => self.moderator_of(conn, index),
            Place::Dm(..) => None,
        };
        let can_read = author
            || moderator.is_some()
            || match place {
                Place::Room(index) => {
                    self.rooms[index].is_member(conn) || self.is_account_member(conn, index)
                }
                Place::Dm(from, to) => me == Some(from) || me == Some(to),
            };
        if !can_read {
            return Err(no_such_message(id));
        }
        match action {
            MessageAction::Edit { .. } => {
                if !author {
                    return Err(Rejection::new(
                        ErrorCode::Forbidden,
                        "only its author may edit a message",
                    ));
                }
                if let Place::Room(index) = place {
                    self.require_speaker(conn, index)?;
                }
            }
            MessageAction::Delete => {
                if !author && moderator.is_none() {
                    return Err(Rejection::new(
                        ErrorCode::Forbidden,
                        "only its author or a moderator of the room may delete a message",
                    ));
                }
            }
        }
        let actor = match (me, self.name_of(conn)) {
            (Some(account), _) => self.registry.get(account).map(|a| a.name.to_string()),
            (None, name) => name.map(|n| format!("{n} (guest)")),
        };
        Ok(MessageChange {
            conn,
            found,
            action,
            edited_ts: super::now_millis(),
            actor: actor.unwrap_or_default(),
            reference: reference.cloned(),
        })
    }

    /// The store kept an allowed change, or could not. Kept: the room (or the DM's two
    /// accounts) and the asker hear it now, and it is logged; not kept: nobody hears of it
    /// but the asker, `unavailable`. Then what the connection sent meanwhile runs.
    pub(super) fn on_message_changed(&mut self, change: MessageChange, kept: bool, now: Instant) {
        let conn = change.conn;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.checking = false;
        }
        let reference = change.reference.as_ref();
        let id = change.found.id;
        // Another change of the same message kept just before (a moderator's deletion)
        // leaves this one about no message.
        let result = match (kept, self.place_of(&change.found)) {
            (false, _) => Err(Rejection::new(
                ErrorCode::Unavailable,
                format!("message {id} cannot be changed: the server's storage is failing"),
            )),
            (true, None) => Err(no_such_message(id)),
            (true, Some(place)) => {
                self.announce_change(&change, &place);
                Ok(())
            }
        };
        if let Err(rejection) = result {
            self.reply_error(conn, &rejection, reference);
        }
        self.release_held(conn, now);
    }

    /// Tells everyone who can see the message, and logs the action.
    fn announce_change(&mut self, change: &MessageChange, place: &Place) {
        let (conn, found, reference) = (change.conn, &change.found, change.reference.as_ref());
        let action = match &change.action {
            MessageAction::Edit { text } => {
                self.apply_edit(conn, found, place, text, change.edited_ts, reference);
                "edit"
            }
            MessageAction::Delete => {
                self.apply_delete(conn, found, place, reference);
                "delete"
            }
        };
        let room = match *place {
            Place::Room(index) => self.rooms.get(index).map(|r| r.name.to_string()),
            Place::Dm(..) => None,
        };
        self.record(AuditEntry {
            at: super::now_millis(),
            actor: change.actor.clone(),
            action,
            target: Some(found.sender.clone()),
            room,
            message_id: Some(found.id),
            until: None,
        });
    }

    /// An edit shows new text to the room, so its author must still be one who may speak
    /// there: a member (this connection, or its account's membership). Someone kicked or
    /// banned is not, or its old messages would carry its spam straight back to the room.
    fn require_speaker(&self, conn: ConnId, index: RoomId) -> Result<(), Rejection> {
        if self.rooms[index].is_member(conn) || self.is_account_member(conn, index) {
            return Ok(());
        }
        Err(Rejection::new(
            ErrorCode::NotInRoom,
            format!(
                "you are not in room {}: only a member edits its messages there",
                self.rooms[index].name
            ),
        ))
    }

    /// The DM's two accounts' connections, each with the name of the other end (`with` as
    /// that connection sees it).
    fn dm_audience(
        &self,
        from: AccountId,
        to: AccountId,
        found: &FoundMessage,
    ) -> Vec<(ConnId, String)> {
        let name = |account: AccountId, fallback: &str| {
            self.registry
                .get(account)
                .map(|a| a.name.to_string())
                .unwrap_or_else(|| fallback.to_string())
        };
        let sender = name(from, &found.sender);
        let recipient = name(to, found.recipient.as_deref().unwrap_or_default());
        let mut audience: Vec<(ConnId, String)> = self
            .conns_of_account(from)
            .into_iter()
            .map(|c| (c, recipient.clone()))
            .collect();
        if to != from {
            audience.extend(
                self.conns_of_account(to)
                    .into_iter()
                    .map(|c| (c, sender.clone())),
            );
        }
        audience
    }

    fn apply_edit(
        &mut self,
        conn: ConnId,
        found: &FoundMessage,
        place: &Place,
        text: &str,
        edited_ts: u64,
        reference: Option<&Ref>,
    ) {
        let id = found.id;
        match *place {
            Place::Room(index) => {
                self.flush_presence(index);
                let room = self.rooms[index].name.clone();
                // What `joined.history` serves from memory shows the new text too.
                let message = Event::Message {
                    room: &room,
                    id,
                    from: &found.sender,
                    text,
                    ts: found.ts,
                    edited_ts: Some(edited_ts),
                    files: found
                        .files
                        .as_deref()
                        .and_then(|json| serde_json::from_str::<&RawValue>(json).ok()),
                }
                .to_json();
                if let Ok(message) = RawValue::from_string(message) {
                    self.rooms[index].replace_recent(id, message);
                }
                let event = |reference| {
                    Event::Edited {
                        room: Some(&room),
                        with: None,
                        id,
                        text,
                        edited_ts,
                        reference,
                    }
                    .to_json()
                };
                self.broadcast(index, EncodedFrame::text(&event(None)), Some(conn));
                self.send(conn, &event(reference));
            }
            Place::Dm(from, to) => {
                let audience = self.dm_audience(from, to, found);
                for (c, with) in audience {
                    let r = if c == conn { reference } else { None };
                    let json = Event::Edited {
                        room: None,
                        with: Some(&with),
                        id,
                        text,
                        edited_ts,
                        reference: r,
                    }
                    .to_json();
                    self.send(c, &json);
                }
            }
        }
    }

    fn apply_delete(
        &mut self,
        conn: ConnId,
        found: &FoundMessage,
        place: &Place,
        reference: Option<&Ref>,
    ) {
        let id = found.id;
        match *place {
            Place::Room(index) => {
                self.flush_presence(index);
                self.rooms[index].forget_message(id);
                let room = self.rooms[index].name.clone();
                let event = |reference| {
                    Event::Deleted {
                        room: Some(&room),
                        with: None,
                        id,
                        reference,
                    }
                    .to_json()
                };
                self.broadcast(index, EncodedFrame::text(&event(None)), Some(conn));
                self.send(conn, &event(reference));
            }
            Place::Dm(from, to) => {
                self.registry.forget_dm(id, from, to);
                let audience = self.dm_audience(from, to, found);
                for (c, with) in audience {
                    let r = if c == conn { reference } else { None };
                    let json = Event::Deleted {
                        room: None,
                        with: Some(&with),
                        id,
                        reference: r,
                    }
                    .to_json();
                    self.send(c, &json);
                }
            }
        }
    }
}
