//! The hub: the one thread that owns every room, member and name. Each command is decided
//! here in arrival order, which is what makes PROTOCOL.md's ordering guarantees hold
//! without locks. The decisions are plain methods on `Hub` (state + input → new state +
//! frames queued on outboxes), so they are tested without threads or sockets; `run` is
//! the loop around them.

use crate::outbox::{close_code, EncodedFrame, Outbox, Push};
use crate::password::{PasswordDone, PasswordJob, Secret, VerifyJob};
use crate::protocol::{
    fold, Command, ErrorCode, Event, Ref, Rejection, Request, RoomSummary, JOINED_MEMBERS_CAP,
};
use crate::room::{Access, ConnId, Room};
use crate::store::{Loaded, MessageRecord, StoreJob};
use crossbeam_channel::{Receiver, Sender};
use serde_json::value::RawValue;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A user's `typing` events reach a room at most once per this interval.
pub const TYPING_INTERVAL: Duration = Duration::from_secs(2);

/// Everything that reaches the hub.
pub enum HubInput {
    /// A WebSocket connection opened; `outbox` is how to reach it.
    Connect { conn: ConnId, outbox: Outbox },
    /// A frame that parsed as a request.
    Request { conn: ConnId, request: Request },
    /// The verifier thread checked a join's password or hashed a new room's.
    Password(PasswordDone),
    /// The connection closed.
    Disconnect { conn: ConnId },
    /// The server is stopping.
    Shutdown,
}

struct Conn {
    outbox: Outbox,
    /// Set once `hello` succeeds.
    name: Option<Arc<str>>,
    /// Rooms joined, by index into `Hub::rooms`.
    rooms: Vec<usize>,
}

pub struct Hub {
    presence_window: Duration,
    conns: HashMap<ConnId, Conn>,
    /// Online users: folded name → connection.
    names: HashMap<String, ConnId>,
    /// Rooms in creation order; never removed, so an index names a room for good.
    rooms: Vec<Room>,
    room_index: HashMap<String, usize>,
    /// Rooms with presence changes waiting, by when they are due (the window is constant,
    /// so pushing at the back keeps it ordered).
    presence_queue: VecDeque<(Instant, usize)>,
    /// Connections found too slow while sending; removed once the current input is done.
    evicted: Vec<ConnId>,
    last_message_id: u64,
    verifier: Sender<PasswordJob>,
    /// New protected rooms waiting for their password's hash before they are stored, each
    /// with its own store jobs (messages, history queries) held back in order, so nothing
    /// of the room is committed, or acked, before the room itself.
    unstored: HashMap<String, (StoreJob, Vec<StoreJob>)>,
    /// Where rooms and messages go to be kept; the store thread also answers `history`.
    store: Sender<StoreJob>,
}

impl Hub {
    /// A hub starting from what the store loaded.
    pub fn new(
        presence_window: Duration,
        verifier: Sender<PasswordJob>,
        store: Sender<StoreJob>,
        loaded: Loaded,
    ) -> Self {
        let mut hub = Hub {
            presence_window,
            conns: HashMap::new(),
            names: HashMap::new(),
            rooms: Vec::new(),
            room_index: HashMap::new(),
            presence_queue: VecDeque::new(),
            evicted: Vec::new(),
            last_message_id: loaded.last_message_id,
            verifier,
            unstored: HashMap::new(),
            store,
        };
        for stored in loaded.rooms {
            let access = match &stored.password_hash {
                Some(phc) => Access::Protected(Secret::from_phc(phc)),
                None => Access::Public,
            };
            let mut room = Room::new(stored.id, stored.name.into(), access);
            for (_, json) in stored.recent {
                if let Ok(message) = RawValue::from_string(json) {
                    room.remember(message);
                }
            }
            hub.room_index.insert(fold(&room.name), hub.rooms.len());
            hub.rooms.push(room);
        }
        hub
    }

    /// Handles one input; `now` drives presence windows and typing throttles.
    pub fn handle(&mut self, input: HubInput, now: Instant) {
        match input {
            HubInput::Connect { conn, outbox } => {
                self.conns.insert(
                    conn,
                    Conn {
                        outbox,
                        name: None,
                        rooms: Vec::new(),
                    },
                );
            }
            HubInput::Request { conn, request } => self.on_request(conn, request, now),
            HubInput::Password(PasswordDone::Verified { job, ok }) => {
                self.on_verified(job, ok, now)
            }
            HubInput::Password(PasswordDone::Hashed { room_key, phc }) => {
                self.on_hashed(&room_key, &phc)
            }
            HubInput::Disconnect { conn } => self.remove_conn(conn, now),
            HubInput::Shutdown => self.shutdown(),
        }
        self.drop_evicted(now);
    }

    /// When the next batch of presence changes is due, if any is waiting.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.presence_queue.front().map(|(due, _)| *due)
    }

    /// Sends the presence changes whose window has closed.
    pub fn flush_due(&mut self, now: Instant) {
        while let Some(&(due, room)) = self.presence_queue.front() {
            if due > now {
                break;
            }
            self.presence_queue.pop_front();
            // A room flushed early (before a message) may have newer changes queued later.
            if self.rooms[room].presence_due == Some(due) {
                self.flush_presence(room);
            }
        }
        self.drop_evicted(now);
    }

    /// Closes every connection: the server is stopping.
    pub fn shutdown(&mut self) {
        for conn in self.conns.values() {
            conn.outbox
                .close(close_code::GOING_AWAY, "server shutting down");
        }
        self.conns.clear();
        self.names.clear();
        // Rooms created moments ago whose hash has not come back: hash them here, once,
        // so a clean stop never loses a room.
        let unstored: Vec<String> = self.unstored.keys().cloned().collect();
        for key in unstored {
            let password = self
                .room_index
                .get(&key)
                .and_then(|&i| match &self.rooms[i].access {
                    Access::Protected(secret) => secret.unhashed_password().map(str::to_string),
                    Access::Public => None,
                });
            if let Some(password) = password {
                self.on_hashed(&key, &crate::password::hash(&password));
            }
        }
    }

    fn on_request(&mut self, conn_id: ConnId, request: Request, now: Instant) {
        let Some(conn) = self.conns.get(&conn_id) else {
            return;
        };
        let reference = request.reference;
        let identified = conn.name.is_some();
        let result = if !identified && !request.is_hello {
            Err(Rejection::new(
                ErrorCode::NotIdentified,
                "say hello with your name first",
            ))
        } else if identified && request.is_hello {
            Err(Rejection::new(
                ErrorCode::AlreadyIdentified,
                "this connection already has a name",
            ))
        } else {
            request
                .command
                .and_then(|command| self.run_command(conn_id, command, reference.as_ref(), now))
        };
        if let Err(rejection) = result {
            self.reply_error(conn_id, &rejection, reference.as_ref());
        }
    }

    fn run_command(
        &mut self,
        conn: ConnId,
        command: Command,
        reference: Option<&Ref>,
        now: Instant,
    ) -> Result<(), Rejection> {
        match command {
            Command::Hello { name } => self.hello(conn, name, reference),
            Command::Create { room, password } => self.create(conn, room, password, reference),
            Command::Join { room, password } => self.join(conn, &room, password, reference, now),
            Command::Leave { room } => self.leave(conn, &room, reference, now),
            Command::Text { room, text } => self.text(conn, &room, text, reference),
            Command::List => {
                let json = Event::Rooms {
                    rooms: self.summaries(),
                    reference,
                }
                .to_json();
                self.send(conn, &json);
                Ok(())
            }
            Command::Who { room } => self.who(conn, &room, reference),
            Command::History {
                room,
                before,
                limit,
            } => self.history(conn, &room, before, limit, reference),
            Command::Dm { to, text } => self.dm(conn, &to, text, reference),
            Command::Typing { room } => self.typing(conn, &room, reference, now),
        }
    }

    fn hello(
        &mut self,
        conn: ConnId,
        name: String,
        reference: Option<&Ref>,
    ) -> Result<(), Rejection> {
        let key = fold(&name);
        if self.names.contains_key(&key) {
            return Err(Rejection::new(
                ErrorCode::NameTaken,
                format!("{name} is already online"),
            ));
        }
        let name: Arc<str> = name.into();
        self.names.insert(key, conn);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.name = Some(name.clone());
        }
        let json = Event::Welcome {
            name: &name,
            rooms: self.summaries(),
            reference,
        }
        .to_json();
        self.send(conn, &json);
        Ok(())
    }

    fn create(
        &mut self,
        conn: ConnId,
        name: String,
        password: String,
        reference: Option<&Ref>,
    ) -> Result<(), Rejection> {
        let key = fold(&name);
        if let Some(&existing) = self.room_index.get(&key) {
            let existing = &self.rooms[existing].name;
            return Err(Rejection::new(
                ErrorCode::RoomExists,
                format!("room {existing} already exists"),
            ));
        }
        let id = self.rooms.last().map_or(1, |r| r.id + 1);
        let creator = self.name_of(conn).unwrap_or_default().to_string();
        let record = StoreJob::CreateRoom {
            id,
            name: name.clone(),
            key: key.clone(),
            password_hash: None,
            creator,
            created_at: now_millis(),
        };
        let access = if password.is_empty() {
            self.persist(record);
            Access::Public
        } else {
            // The room exists at once (its password is known in memory); the verifier
            // thread hashes the password and the room is stored once the hash is back.
            // Only a create that succeeds costs argon2, and never on the hub.
            let job = PasswordJob::Hash {
                room_key: key.clone(),
                password: password.clone(),
            };
            self.verifier.try_send(job).map_err(|_| busy_verifier())?;
            self.unstored.insert(key.clone(), (record, Vec::new()));
            Access::Protected(Secret::unhashed(&password))
        };
        let room = Room::new(id, name.into(), access);
        let protected = room.is_protected();
        let index = self.rooms.len();
        self.rooms.push(room);
        self.room_index.insert(key, index);
        let name = &self.rooms[index].name;
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

    fn join(
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
        if let Access::Protected(secret) = &room.access {
            if password.is_empty() {
                return Err(wrong_password(&room.name));
            }
            if !secret.recognises(&password) {
                // A room whose hash is not back yet knows its one password already.
                let Some(phc) = secret.phc() else {
                    return Err(wrong_password(&room.name));
                };
                // argon2 takes tens of milliseconds: the verifier thread does it and hands
                // the result back as `HubInput::Password`.
                let job = PasswordJob::Verify(VerifyJob {
                    conn,
                    room_key: fold(&room.name),
                    password,
                    phc: phc.clone(),
                    reference: reference.cloned(),
                });
                return self.verifier.try_send(job).map_err(|_| busy_verifier());
            }
        }
        self.admit(conn, index, reference, now);
        Ok(())
    }

    /// A new protected room's hash is back: keep it, forget the password, store the room.
    fn on_hashed(&mut self, room_key: &str, phc: &str) {
        let Some(&index) = self.room_index.get(room_key) else {
            return;
        };
        if let Access::Protected(secret) = &mut self.rooms[index].access {
            secret.set_phc(phc);
        }
        let Some((mut record, held)) = self.unstored.remove(room_key) else {
            return;
        };
        if let StoreJob::CreateRoom { password_hash, .. } = &mut record {
            *password_hash = Some(phc.to_string());
        }
        self.persist(record);
        for job in held {
            self.persist(job);
        }
    }

    /// Hands a job about room `index` to the store, or holds it while the room itself
    /// waits to be stored.
    fn persist_for_room(&mut self, index: usize, job: StoreJob) {
        if !self.unstored.is_empty() {
            if let Some((_, held)) = self.unstored.get_mut(&fold(&self.rooms[index].name)) {
                held.push(job);
                return;
            }
        }
        self.persist(job);
    }

    fn on_verified(&mut self, job: VerifyJob, ok: bool, now: Instant) {
        if !self.conns.contains_key(&job.conn) {
            return;
        }
        let Some(&index) = self.room_index.get(&job.room_key) else {
            return;
        };
        if !ok {
            let rejection = wrong_password(&self.rooms[index].name);
            self.reply_error(job.conn, &rejection, job.reference.as_ref());
            return;
        }
        if let Access::Protected(secret) = &mut self.rooms[index].access {
            secret.remember(&job.password);
        }
        if self.rooms[index].is_member(job.conn) {
            self.send_joined(job.conn, index, job.reference.as_ref());
        } else {
            self.admit(job.conn, index, job.reference.as_ref(), now);
        }
    }

    /// Makes `conn` a member, answers `joined`, and queues the presence change.
    fn admit(&mut self, conn: ConnId, index: usize, reference: Option<&Ref>, now: Instant) {
        let Some(name) = self.conns.get(&conn).and_then(|c| c.name.clone()) else {
            return;
        };
        self.rooms[index].add(conn);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.rooms.push(index);
        }
        self.send_joined(conn, index, reference);
        self.note_presence(index, name, true, now);
    }

    fn send_joined(&mut self, conn: ConnId, index: usize, reference: Option<&Ref>) {
        let room = &self.rooms[index];
        let members: Vec<&str> = room
            .members()
            .take(JOINED_MEMBERS_CAP)
            .filter_map(|m| self.name_of(m))
            .collect();
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

    fn leave(
        &mut self,
        conn: ConnId,
        room_name: &str,
        reference: Option<&Ref>,
        now: Instant,
    ) -> Result<(), Rejection> {
        let index = self.joined_room(conn, room_name)?;
        self.part(conn, index, now);
        let json = Event::Left {
            room: &self.rooms[index].name,
            reference,
        }
        .to_json();
        self.send(conn, &json);
        Ok(())
    }

    /// Takes `conn` out of a room and queues the presence change.
    fn part(&mut self, conn: ConnId, index: usize, now: Instant) {
        if !self.rooms[index].remove(conn) {
            return;
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.rooms.retain(|&r| r != index);
            if let Some(name) = c.name.clone() {
                self.note_presence(index, name, false, now);
            }
        }
    }

    fn note_presence(&mut self, index: usize, name: Arc<str>, joined: bool, now: Instant) {
        let room = &mut self.rooms[index];
        if room.note_presence(name, joined) {
            let due = now + self.presence_window;
            room.presence_due = Some(due);
            self.presence_queue.push_back((due, index));
        }
    }

    /// Sends a room's pending presence changes to its current members.
    fn flush_presence(&mut self, index: usize) {
        let room = &mut self.rooms[index];
        if !room.has_pending_presence() {
            return;
        }
        let (joined, left) = room.take_presence();
        let json = Event::Presence {
            room: &room.name,
            joined: joined.iter().map(|n| &**n).collect(),
            left: left.iter().map(|n| &**n).collect(),
            member_count: room.member_count(),
        }
        .to_json();
        self.broadcast(index, EncodedFrame::text(&json), None);
    }

    fn text(
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

    fn who(
        &mut self,
        conn: ConnId,
        room_name: &str,
        reference: Option<&Ref>,
    ) -> Result<(), Rejection> {
        let index = self.joined_room(conn, room_name)?;
        let room = &self.rooms[index];
        let members: Vec<&str> = room.members().filter_map(|m| self.name_of(m)).collect();
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

    fn history(
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

    fn dm(
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

    fn typing(
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

    /// A disconnect: a leave from every room, and the name is free again.
    fn remove_conn(&mut self, conn: ConnId, now: Instant) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let rooms = c.rooms.clone();
        for index in rooms {
            self.part(conn, index, now);
        }
        if let Some(c) = self.conns.remove(&conn) {
            if let Some(name) = c.name {
                self.names.remove(&fold(&name));
            }
        }
    }

    fn drop_evicted(&mut self, now: Instant) {
        while let Some(conn) = self.evicted.pop() {
            log::info!("connection {conn} dropped as a slow consumer");
            self.remove_conn(conn, now);
        }
    }

    // ----- lookups -----

    fn room_by_name(&self, room_name: &str) -> Result<usize, Rejection> {
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
    fn joined_room(&self, conn: ConnId, room_name: &str) -> Result<usize, Rejection> {
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

    fn name_of(&self, conn: ConnId) -> Option<&str> {
        self.conns.get(&conn).and_then(|c| c.name.as_deref())
    }

    fn summaries(&self) -> Vec<RoomSummary<'_>> {
        self.rooms
            .iter()
            .map(|r| RoomSummary {
                room: &r.name,
                protected: r.is_protected(),
                member_count: r.member_count(),
            })
            .collect()
    }

    fn next_message_stamp(&mut self) -> (u64, u64) {
        self.last_message_id += 1;
        (self.last_message_id, now_millis())
    }

    // ----- delivery -----

    /// Hands a job to the store thread. Its queue is large; only if the disk falls that far
    /// behind does the hub wait, because losing a message is worse than slowing down.
    fn persist(&self, job: StoreJob) {
        match self.store.try_send(job) {
            Ok(()) => {}
            Err(crossbeam_channel::TrySendError::Full(job)) => {
                log::warn!("the database is falling behind; waiting for it");
                let _ = self.store.send(job);
            }
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => {
                log::error!("the store thread is gone")
            }
        }
    }

    fn reply_error(&mut self, conn: ConnId, rejection: &Rejection, reference: Option<&Ref>) {
        let json = crate::protocol::error_json(rejection, reference);
        self.send(conn, &json);
    }

    fn send(&mut self, conn: ConnId, json: &str) {
        self.push(conn, EncodedFrame::text(json));
    }

    fn push(&mut self, conn: ConnId, frame: Arc<EncodedFrame>) {
        if let Some(c) = self.conns.get(&conn) {
            if c.outbox.push(frame) == Push::Slow {
                self.evicted.push(conn);
            }
        }
    }

    /// Queues one shared frame for every member of a room (but `except`).
    ///
    /// Every frame is queued before any writer is woken: a woken writer tends to preempt
    /// the hub, and waking as it goes would interleave the fan-out with the writes.
    fn broadcast(&mut self, index: usize, frame: Arc<EncodedFrame>, except: Option<ConnId>) {
        let members = || self.rooms[index].members().filter(|m| Some(*m) != except);
        for member in members() {
            if let Some(c) = self.conns.get(&member) {
                if c.outbox.push_unwoken(frame.clone()) == Push::Slow {
                    self.evicted.push(member);
                }
            }
        }
        for member in members() {
            if let Some(c) = self.conns.get(&member) {
                c.outbox.wake();
            }
        }
    }
}

fn busy_verifier() -> Rejection {
    Rejection::new(
        ErrorCode::RateLimited,
        "too many password checks at once; try again shortly",
    )
}

fn wrong_password(room: &str) -> Rejection {
    Rejection::new(
        ErrorCode::WrongPassword,
        format!("wrong password for room {room}"),
    )
}

pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The hub's thread: handles inputs in order, and sends presence when its window closes.
/// Blocks without a timer when nothing is pending, so an idle server uses no CPU.
pub fn run(mut hub: Hub, inputs: Receiver<HubInput>) {
    loop {
        let timer = match hub.next_deadline() {
            Some(due) => crossbeam_channel::at(due),
            None => crossbeam_channel::never(),
        };
        crossbeam_channel::select! {
            recv(inputs) -> input => match input {
                Ok(HubInput::Shutdown) | Err(_) => {
                    hub.shutdown();
                    return;
                }
                Ok(input) => hub.handle(input, Instant::now()),
            },
            recv(timer) -> _ => hub.flush_due(Instant::now()),
        }
    }
}

#[cfg(test)]
mod tests;
