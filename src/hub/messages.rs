//! What people say: room `text`, `history`, direct messages and `typing`.

use super::{now_millis, Hub, TYPING_INTERVAL};
use crate::ids::ConnId;
use crate::outbox::EncodedFrame;
use crate::protocol::{fold, ErrorCode, Event, Ref, Rejection};
use crate::store::{MessageRecord, StoreJob, ID_BLOCK};
use serde_json::value::RawValue;
use std::time::Instant;

impl Hub {
    pub(super) fn text(
        &mut self,
        conn: ConnId,
        room_name: &str,
        text: String,
        files: &[String],
        reference: Option<&Ref>,
    ) -> Result<(), Rejection> {
        let index = self.joined_room(conn, room_name)?;
        let Some(from) = self.conns.get(&conn).and_then(|c| c.name.clone()) else {
            return Ok(());
        };
        let attached = self.attach(conn, files)?;
        let (id, ts) = self.next_message_stamp()?;
        self.flush_presence(index);
        let room = &self.rooms[index];
        let event = Event::Message {
            room: &room.name,
            id,
            from: &from,
            text: &text,
            ts,
            edited_ts: None,
            files: attached.as_ref().map(|a| &*a.json),
        };
        let json = event.to_json();
        let frame = EncodedFrame::text(&json);
        let room_id = room.id;
        // The event's own JSON, which `to_json` just produced, so nothing can fail here.
        if let Ok(message) = RawValue::from_string(json) {
            self.rooms[index].remember(message);
        }
        self.rooms[index].message_ids.push(id);
        let sender_account = self.conns.get(&conn).and_then(|c| c.account);
        // Delivery does not wait for the disk; the ack does, so an acked message is kept.
        let delivered = self.broadcast(index, frame, None);
        self.metrics.messages_in.inc();
        self.metrics.deliveries_out.inc_by(delivered as u64);
        let Some(author) = self.conns.get(&conn).map(|c| c.outbox.clone()) else {
            return Ok(());
        };
        if let Some(attached) = &attached {
            attached.mark_kept();
        }
        let record = MessageRecord {
            id,
            room_id: Some(room_id),
            sender: from,
            recipient: None,
            sender_account,
            recipient_account: None,
            text,
            ts,
            files: attached.map(|a| a.ids()).unwrap_or_default(),
        };
        let job = StoreJob::Append {
            record,
            author,
            ack: reference.cloned(),
        };
        self.persist_for_room(index, job);
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

    /// A DM. Between two accounts it is kept, and reaches the recipient even offline
    /// (`dm_history`, `welcome.dms`), on every connection, and the sender's other
    /// connections. With a guest at either end it goes only to whoever is online and is not
    /// kept: a guest's name is nobody's for good.
    pub(super) fn dm(
        &mut self,
        conn: ConnId,
        to: &str,
        text: String,
        files: &[String],
        reference: Option<&Ref>,
    ) -> Result<(), Rejection> {
        let Some(sender) = self.conns.get(&conn) else {
            return Ok(());
        };
        let (Some(from), sender_account) = (sender.name.clone(), sender.account) else {
            return Ok(());
        };
        let author = sender.outbox.clone();
        let (recipients, to, recipient_account) = match self.registry.by_name(to) {
            Some(account) => {
                let online = self.conns_of_account(account.id);
                if sender_account.is_none() && online.is_empty() {
                    let message = format!("{} is not online", account.name);
                    return Err(Rejection::new(ErrorCode::NoSuchUser, message));
                }
                (online, account.name.to_string(), Some(account.id))
            }
            None => match self.names.get(&fold(to)) {
                Some(&guest) => {
                    let name = self.name_of(guest).unwrap_or_default().to_string();
                    (vec![guest], name, None)
                }
                None => {
                    let message = format!("{to} is not online");
                    return Err(Rejection::new(ErrorCode::NoSuchUser, message));
                }
            },
        };
        let attached = self.attach(conn, files)?;
        let (id, ts) = self.next_message_stamp()?;
        let event = |reference| {
            let (from, to, text) = (&*from, to.as_str(), text.as_str());
            Event::Dm {
                id,
                from,
                to,
                text,
                ts,
                edited_ts: None,
                files: attached.as_ref().map(|a| &*a.json),
                reference,
            }
            .to_json()
        };
        let copy = event(None);
        let senders = match sender_account {
            Some(account) => self.conns_of_account(account),
            None => vec![conn],
        };
        // The sender's own copy (with its ref) is a delivery too, as in a room.
        let mut delivered = 1;
        for c in recipients
            .iter()
            .chain(senders.iter().filter(|c| !recipients.contains(c)))
        {
            if *c != conn {
                self.send(*c, &copy);
                delivered += 1;
            }
        }
        self.send(conn, &event(reference));
        self.metrics.messages_in.inc();
        self.metrics.deliveries_out.inc_by(delivered);
        if let (Some(sender_account), Some(recipient_account)) = (sender_account, recipient_account)
        {
            self.registry.note_dm(id, sender_account, recipient_account);
            if let Some(attached) = &attached {
                attached.mark_kept();
            }
            let record = MessageRecord {
                id,
                room_id: None,
                sender: from,
                recipient: Some(to),
                sender_account: Some(sender_account),
                recipient_account: Some(recipient_account),
                text,
                ts,
                files: attached.map(|a| a.ids()).unwrap_or_default(),
            };
            // The DM itself was the reply: if it cannot be kept, its author hears so
            // without a ref.
            self.persist(StoreJob::Append {
                record,
                author,
                ack: None,
            });
        } else {
            self.persist(StoreJob::UsedId(id));
        }
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

    /// The next message id and the time. Only ids the store has reserved are handed out
    /// (see `store::ids`); more are asked for while half a block is left, so this waits
    /// for the disk only when the disk has stopped answering.
    pub(super) fn next_message_stamp(&mut self) -> Result<(u64, u64), Rejection> {
        if self.last_message_id >= self.ids_reserved_up_to {
            self.reserve_ids();
            return Err(Rejection::new(
                ErrorCode::Unavailable,
                "the message cannot be kept now: the server's storage is failing",
            ));
        }
        self.last_message_id += 1;
        if self.ids_reserved_up_to - self.last_message_id < ID_BLOCK / 2 {
            self.reserve_ids();
        }
        Ok((self.last_message_id, now_millis()))
    }

    fn reserve_ids(&mut self) {
        if !self.reserving_ids {
            self.reserving_ids = true;
            self.persist(StoreJob::ReserveIds {
                up_to: self.last_message_id + ID_BLOCK,
            });
        }
    }

    /// The store's answer to `reserve_ids`.
    pub(super) fn on_ids_reserved(&mut self, up_to: Option<u64>) {
        self.reserving_ids = false;
        if let Some(up_to) = up_to {
            self.ids_reserved_up_to = self.ids_reserved_up_to.max(up_to);
        }
    }
}
