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
//! Who may: the author edits and deletes, a moderator of the room deletes. An account is
//! the author of what it sent signed in. A guest is the author of what it sent on this
//! connection: a message under its name, sent by no account, with an id above the last
//! one handed out when it said `hello` (its name was nobody else's since). Someone who
//! cannot read a message (a DM between others, a room they are not in and do not
//! moderate) is told there is no such message, not that they may not touch it.

use super::Hub;
use crate::accounts::AccountId;
use crate::ids::{ConnId, RoomId};
use crate::outbox::EncodedFrame;
use crate::protocol::{fold, ErrorCode, Event, Ref, Rejection};
use crate::store::moderation::{
    AuditEntry, FoundMessage, MessageAction, MessageAnswer, MessageQuery, ModerationWrite,
};
use crate::store::StoreJob;
use serde_json::value::RawValue;
use std::cell::OnceCell;
use std::time::Instant;

/// Where a found message lives, as the hub knows it.
enum Place {
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

    /// The store's answer: act on it, then run what the connection sent meanwhile.
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
            Ok(Some(found)) => self.act_on_message(conn, found, answer.action, reference),
        };
        if let Err(rejection) = result {
            self.reply_error(conn, &rejection, reference);
        }
        self.release_held(conn, now);
    }

    fn act_on_message(
        &mut self,
        conn: ConnId,
        found: FoundMessage,
        action: MessageAction,
        reference: Option<&Ref>,
    ) -> Result<(), Rejection> {
        let id = found.id;
        let place = match (found.room_id, found.sender_account, found.recipient_account) {
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
        .ok_or_else(|| no_such_message(id))?;
        let Some(c) = self.conns.get(&conn) else {
            return Ok(());
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
        let action_name = match &action {
            MessageAction::Edit { .. } => "edit",
            MessageAction::Delete => "delete",
        };
        match action {
            MessageAction::Edit { text } => {
                if !author {
                    return Err(Rejection::new(
                        ErrorCode::Forbidden,
                        "only its author may edit a message",
                    ));
                }
                self.apply_edit(conn, &found, &place, &text, reference);
            }
            MessageAction::Delete => {
                if !author && moderator.is_none() {
                    return Err(Rejection::new(
                        ErrorCode::Forbidden,
                        "only its author or a moderator of the room may delete a message",
                    ));
                }
                self.apply_delete(conn, &found, &place, reference);
            }
        }
        let actor = match (me, self.name_of(conn)) {
            (Some(account), _) => self.registry.get(account).map(|a| a.name.to_string()),
            (None, name) => name.map(|n| format!("{n} (guest)")),
        };
        let room = match place {
            Place::Room(index) => self.rooms.get(index).map(|r| r.name.to_string()),
            Place::Dm(..) => None,
        };
        self.record(AuditEntry {
            at: super::now_millis(),
            actor: actor.unwrap_or_default(),
            action: action_name,
            target: Some(found.sender.clone()),
            room,
            message_id: Some(id),
            until: None,
        });
        Ok(())
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
        reference: Option<&Ref>,
    ) {
        let (id, edited_ts) = (found.id, super::now_millis());
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
                let write = ModerationWrite::EditMessage {
                    id,
                    text: text.to_string(),
                    edited_ts,
                };
                self.persist_for_room(index, StoreJob::Moderation(write));
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
                let write = ModerationWrite::EditMessage {
                    id,
                    text: text.to_string(),
                    edited_ts,
                };
                self.persist(StoreJob::Moderation(write));
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
                let write = ModerationWrite::DeleteMessage { id };
                self.persist_for_room(index, StoreJob::Moderation(write));
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
                self.persist(StoreJob::Moderation(ModerationWrite::DeleteMessage { id }));
            }
        }
    }
}
