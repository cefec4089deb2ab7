//! What people say: room `text`, `history`, direct messages and `typing`.

use super::{now_millis, Hub, TYPING_INTERVAL};
use crate::ids::ConnId;
use crate::outbox::EncodedFrame;
use crate::protocol::{fold, ErrorCode, Event, Ref, Rejection};
use crate::store::{MessageRecord, StoreJob};
use serde_json::value::RawValue;
use std::time::Instant;

impl Hub {
    pub(super) fn text(
        &mut self,
        conn: ConnId,
        room_name: &str,
        text: String,
        reference: Option<&Ref>,
    ) -> Result<(), Rejection> {
        let index = self.joined_room(conn, room_name)?;
        let Some(from) = self.conns.get(&conn).and_then(|c| c.name.clone()) else {
            return Ok(());
        };
        self.flush_presence(index);
        let (id, ts) = self.next_message_stamp();
        let room = &self.rooms[index];
        let event = Event::Message {
            room: &room.name,
            id,
            from: &from,
            text: &text,
            ts,
        };
        let json = event.to_json();
        let frame = EncodedFrame::text(&json);
        let room_id = room.id;
        // The event's own JSON, which `to_json` just produced, so nothing can fail here.
        if let Ok(message) = RawValue::from_string(json) {
            self.rooms[index].remember(message);
        }
        // Delivery does not wait for the disk; the ack does, so an acked message is kept.
        self.broadcast(index, frame, None);
        let ack = match (reference, self.conns.get(&conn)) {
            (Some(_), Some(c)) => {
                let json = Event::Ack {
                    id: Some(id),
                    ts: Some(ts),
                    reference,
                }
                .to_json();
                Some((c.outbox.clone(), EncodedFrame::text(&json)))
            }
            _ => None,
        };
        let record = MessageRecord {
            id,
            room_id: Some(room_id),
            sender: from,
            recipient: None,
            text,
            ts,
        };
        self.persist_for_room(index, StoreJob::Append { record, ack });
        Ok(())
    }

    pub(super) fn history(
        &mut self,
        conn: ConnId,
        room_name: &str,
        before: Option<u64>,
        limit: usize,
        reference: Option<&Ref>,
    ) -> Result<(), Rejection> {
        let index = self.joined_room(conn, room_name)?;
        let Some(c) = self.conns.get(&conn) else {
            return Ok(());
        };
        let room = &self.rooms[index];
        // The store answers straight to the connection, after every message before it.
        let job = StoreJob::History {
            room_id: room.id,
            room_name: room.name.clone(),
            before,
            limit,
            reference: reference.cloned(),
            reply: c.outbox.clone(),
        };
        self.persist_for_room(index, job);
        Ok(())
    }

    pub(super) fn dm(
        &mut self,
        conn: ConnId,
        to: &str,
        text: String,
        reference: Option<&Ref>,
    ) -> Result<(), Rejection> {
        let Some(&recipient) = self.names.get(&fold(to)) else {
            let message = format!("{to} is not online");
            return Err(Rejection::new(ErrorCode::NoSuchUser, message));
        };
        let Some(from) = self.conns.get(&conn).and_then(|c| c.name.clone()) else {
            return Ok(());
        };
        let to = self.name_of(recipient).unwrap_or_default().to_string();
        let (id, ts) = self.next_message_stamp();
        let event = |reference| {
            let (from, to, text) = (&*from, to.as_str(), text.as_str());
            Event::Dm {
                id,
                from,
                to,
                text,
                ts,
                reference,
            }
            .to_json()
        };
        if recipient != conn {
            self.send(recipient, &event(None));
        }
        self.send(conn, &event(reference));
        let record = MessageRecord {
            id,
            room_id: None,
            sender: from,
            recipient: Some(to),
            text,
            ts,
        };
        self.persist(StoreJob::Append { record, ack: None });
        Ok(())
    }

    pub(super) fn typing(
        &mut self,
        conn: ConnId,
        room_name: &str,
        reference: Option<&Ref>,
        now: Instant,
    ) -> Result<(), Rejection> {
        let index = self.joined_room(conn, room_name)?;
        if self.rooms[index].typing_allowed(conn, now, TYPING_INTERVAL) {
            self.flush_presence(index);
            let user = self.name_of(conn).unwrap_or_default();
            let json = Event::Typing {
                room: &self.rooms[index].name,
                user,
            }
            .to_json();
            self.broadcast(index, EncodedFrame::text(&json), Some(conn));
        }
        if reference.is_some() {
            let ack = Event::Ack {
                id: None,
                ts: None,
                reference,
            }
            .to_json();
            self.send(conn, &ack);
        }
        Ok(())
    }

    pub(super) fn next_message_stamp(&mut self) -> (u64, u64) {
        self.last_message_id += 1;
        (self.last_message_id, now_millis())
    }
}
