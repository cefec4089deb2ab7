//! Rooms: `create`, `join`, `leave`, `who`, and the lookups every room command starts with.

use super::{now_millis, Hub};
use crate::ids::{ConnId, RoomId};
use crate::outbox::EncodedFrame;
use crate::password::{PasswordJob, Secret};
use crate::protocol::{fold, ErrorCode, Event, Ref, Rejection, JOINED_MEMBERS_CAP};
use crate::room::{Access, Room};
use crate::store::{NewRoom, StoreJob};
use serde_json::value::RawValue;
use std::time::Instant;

impl Hub {
    pub(super) fn create(
        &mut self,
        conn: ConnId,
        name: String,
        password: String,
        reference: Option<&Ref>,
        now: Instant,
    ) -> Result<(), Rejection> {
        let key = fold(&name);
        if let Some(&existing) = self.room_index.get(&key) {
            let existing = &self.rooms[existing].name;
            return Err(Rejection::new(
                ErrorCode::RoomExists,
                format!("room {existing} already exists"),
            ));
        }
        // Before anything that costs, a password's hashing included.
        self.check_room_limits(conn, now)?;
        let id = self.next_room_id;
        let creator = self.name_of(conn).unwrap_or_default().to_string();
        // Who made which room, never its password.
        log::info!(
            "room {name:?} created by {creator} (connection {conn}, {})",
            if password.is_empty() {
                "public"
            } else {
                "with a password"
            }
        );
        let record = StoreJob::CreateRoom(NewRoom {
            id,
            name: name.clone(),
            key: key.clone(),
            password_hash: None,
            creator,
            created_at: now_millis(),
        });
        let access = if password.is_empty() {
            self.persist(record);
            Access::Public
        } else {
            // The room exists at once (its password is known in memory); the password pool
            // hashes the password, in the creator's address's turn, and the room is stored
            // once the hash is back. Only a create that succeeds costs argon2, never on
            // the hub.
            let job = PasswordJob::Hash {
                room_id: id,
                room_key: key.clone(),
                password: password.clone(),
            };
            self.submit_password_job(self.address_of(conn), job);
            self.unstored.insert(key.clone(), (record, Vec::new()));
            Access::Protected(Secret::unhashed(&password))
        };
        self.next_room_id += 1;
        self.storing.insert(id, conn);
        self.spend_room_allowance(conn, now);
        let room = Room::new(id, name.into(), access);
        let protected = room.is_protected();
        self.directory.insert(&room.name, id);
        self.rooms.insert(room);
        self.room_index.insert(key, id);
        self.note_owner(conn, id);
        self.mark_idle(id, self.clock.millis(now));
        let name = &self.rooms[id].name;
        let reply = Event::Created {
            room: name,
            protected,
            reference,
        }
        .to_json();
        let added = EncodedFrame::text(
            &Event::RoomAdded {
                room: name,
                protected,
            }
            .to_json(),
        );
        self.send(conn, &reply);
        let others: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(id, c)| **id != conn && c.name.is_some())
            .map(|(id, _)| *id)
            .collect();
        for other in others {
            self.push(other, added.clone());
        }
        Ok(())
    }

    /// The store kept a new room, or could not. `created` went out at once (as in version
    /// 1, so a client may send `join` right behind its `create`); a room the store cannot
    /// keep must not live on in memory alone, to vanish at the next start: it is removed
    /// now, every identified connection hears `room_removed` (members leave with it), and
    /// its creator gets `unavailable`.
    pub(super) fn on_room_stored(&mut self, id: RoomId, stored: bool, now: Instant) {
        let creator = self.storing.remove(&id);
        if stored || self.rooms.get(id).is_none() {
            return;
        }
        let name = self.rooms[id].name.clone();
        log::warn!("room {name} removed: the database could not keep it");
        let members: Vec<ConnId> = self.rooms[id].members().collect();
        for member in members {
            self.part(member, id, now);
        }
        self.remove_room(id);
        if let Some(creator) = creator {
            let message = format!("room {name} could not be kept: the server's storage is failing");
            let rejection = Rejection::new(ErrorCode::Unavailable, message);
            self.reply_error(creator, &rejection, None);
        }
    }

    pub(super) fn join(
        &mut self,
        conn: ConnId,
        room_name: &str,
        password: String,
        reference: Option<&Ref>,
        now: Instant,
    ) -> Result<(), Rejection> {
        let index = self.room_by_name(room_name)?;
        let room = &self.rooms[index];
        if room.is_member(conn) {
            self.send_joined(conn, index, reference);
            return Ok(());
        }
        self.check_ban(conn, index, now)?;
        // An account's membership outlives its connections: a member needs no password.
        if room.is_protected() && !self.is_account_member(conn, index) {
            // Limited, then checked on the password pool (argon2 takes tens of
            // milliseconds); the answer comes back as `HubInput::Password`.
            return self.join_protected(conn, index, password, reference, now);
        }
        self.admit(conn, index, reference, now);
        Ok(())
    }

    /// Makes `conn` a member, answers `joined`, and queues the presence change.
    pub(super) fn admit(
        &mut self,
        conn: ConnId,
        index: RoomId,
        reference: Option<&Ref>,
        now: Instant,
    ) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let (Some(name), account) = (c.name.clone(), c.account) else {
            return;
        };
        let user = self.user_key(conn);
        let first = self.rooms[index].add(conn, user, name.clone());
        if first == Some(true) && self.rooms[index].member_count() == 1 {
            self.mark_busy(index);
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.rooms.push(index);
        }
        if let Some(account) = account {
            self.remember_membership(account, index);
        }
        self.send_joined(conn, index, reference);
        // Presence counts users: an account's second connection is no news.
        if first == Some(true) {
            self.note_presence(index, name, true, now);
        }
    }

    pub(super) fn send_joined(&mut self, conn: ConnId, index: RoomId, reference: Option<&Ref>) {
        let room = &self.rooms[index];
        let members: Vec<&str> = room.member_names().take(JOINED_MEMBERS_CAP).collect();
        let history: Vec<&RawValue> = room.newest().collect();
        let json = Event::Joined {
            room: &room.name,
            protected: room.is_protected(),
            member_count: room.member_count(),
            members,
            history,
            reference,
        }
        .to_json();
        self.send(conn, &json);
    }

    pub(super) fn leave(
        &mut self,
        conn: ConnId,
        room_name: &str,
        reference: Option<&Ref>,
        now: Instant,
    ) -> Result<(), Rejection> {
        let index = self.joined_room(conn, room_name)?;
        // An account's `leave` ends its membership: every one of its connections leaves.
        let account = self.conns.get(&conn).and_then(|c| c.account);
        let mut leaving = vec![conn];
        if let Some(account) = account {
            self.forget_membership(account, index);
            let others = self.rooms[index].conns_of(crate::room::UserKey::Account(account));
            leaving.extend(others.into_iter().filter(|&c| c != conn));
        }
        for &c in &leaving {
            self.part(c, index, now);
        }
        let room = self.rooms[index].name.clone();
        for c in leaving {
            let reference = if c == conn { reference } else { None };
            let json = Event::Left {
                room: &room,
                reference,
            }
            .to_json();
            self.send(c, &json);
        }
        Ok(())
    }

    /// Takes `conn` out of a room and queues the presence change.
    pub(super) fn part(&mut self, conn: ConnId, index: RoomId, now: Instant) {
        let Some(last) = self.rooms[index].remove(conn) else {
            return;
        };
        if self.rooms[index].member_count() == 0 {
            self.mark_idle(index, self.clock.millis(now));
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.rooms.retain(|&r| r != index);
            match c.name.clone() {
                Some(name) if last => self.note_presence(index, name, false, now),
                _ => {}
            }
        }
    }

    pub(super) fn who(
        &mut self,
        conn: ConnId,
        room_name: &str,
        reference: Option<&Ref>,
    ) -> Result<(), Rejection> {
        let index = self.joined_room(conn, room_name)?;
        let room = &self.rooms[index];
        let members: Vec<&str> = room.member_names().collect();
        let json = Event::Members {
            room: &room.name,
            member_count: room.member_count(),
            members,
            reference,
        }
        .to_json();
        self.send(conn, &json);
        Ok(())
    }

    // ----- lookups -----

    pub(super) fn room_by_name(&self, room_name: &str) -> Result<RoomId, Rejection> {
        self.room_index
            .get(&fold(room_name))
            .copied()
            .ok_or_else(|| {
                Rejection::new(
                    ErrorCode::NoSuchRoom,
                    format!("there is no room {room_name}"),
                )
            })
    }

    /// The room, which must exist and have `conn` as a member.
    pub(super) fn joined_room(&self, conn: ConnId, room_name: &str) -> Result<RoomId, Rejection> {
        let index = self.room_by_name(room_name)?;
        if self.rooms[index].is_member(conn) {
            Ok(index)
        } else {
            let name = &self.rooms[index].name;
            Err(Rejection::new(
                ErrorCode::NotInRoom,
                format!("you have not joined room {name}"),
            ))
        }
    }
}
