//! The hub: the one thread that owns every room, member and name. Each command is decided
//! here in arrival order, which is what makes PROTOCOL.md's ordering guarantees hold
//! without locks. The decisions are plain methods on `Hub` (state + input → new state +
//! frames queued on outboxes), so they are tested without threads or sockets; `run` is
//! the loop around them.
//!
//! The decisions live by concern, one file each: `users` (names online), `rooms` (create,
//! join, leave, who), `creation` (limits on making rooms), `directory` (rooms in name
//! order, `list`), `removal` (long-empty rooms), `passwords` (checks handed to the
//! password pool in fair turns, the failure limits, the pool's answers), `held` (a
//! connection's commands waiting behind its password check), `presence` (joins and leaves
//! gathered per window), `messages` (text, history, DMs, typing), `search` (full-text
//! search, run off the hub), `delivery` (queues and the store), `accounts` (sign-in, sessions, read marks, the HTTP API's questions). This
//! file holds the state they share, the dispatch and the run loop.

use crate::accounts::calls::AccountCall;
use crate::accounts::registry::Registry;
use crate::accounts::AccountId;
use crate::ids::{ConnId, RoomId};
use crate::metrics::{Limit, Metrics};
use crate::outbox::{close_code, Outbox};
use crate::password::{AttemptLimits, ConnAttempts, PasswordDone, PasswordJob, Secret};
use crate::protocol::{fold, Command, ErrorCode, Ref, Rejection, Request};
use crate::ratelimit::RateLimiter;
use crate::room::{Access, Room, Rooms};
use crate::store::{Loaded, StoreDone, StoreJob};
use creation::AddressAllowances;
use crossbeam_channel::{Receiver, Sender};
use directory::Directory;
use removal::{IdleRooms, WallClock};
use serde_json::value::RawValue;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A user's `typing` events reach a room at most once per this interval.
pub const TYPING_INTERVAL: Duration = Duration::from_secs(2);

/// Everything that reaches the hub.
pub enum HubInput {
    /// A WebSocket connection opened; `outbox` is how to reach it.
    Connect {
        conn: ConnId,
        /// The client's address, which limits per address count by.
        addr: IpAddr,
        /// The SHA-256 of the session token in the upgrade's cookie, if it had one: a
        /// valid session signs the connection in.
        session: Option<[u8; 32]>,
        outbox: Outbox,
    },
    /// A frame that parsed as a request.
    Request { conn: ConnId, request: Request },
    /// A frame the reader refused itself (over the rate limit, or not a request at all).
    /// Its error goes through the hub so that it keeps its place among the connection's
    /// replies, behind a password check still running.
    Refused {
        conn: ConnId,
        reference: Option<Ref>,
        rejection: Rejection,
    },
    /// The password pool checked a join's password or hashed a new room's.
    Password(PasswordDone),
    /// The store kept a room or reserved ids, or could not.
    Store(StoreDone),
    /// The connection closed.
    Disconnect { conn: ConnId },
    /// A question from the HTTP API about accounts and sessions.
    Account(AccountCall),
    /// The pool checked a `hello`'s password.
    PasswordSignIn(accounts::PasswordSignIn),
    /// The operator changed accounts on the command line.
    AccountsChanged(Vec<crate::store::accounts::AccountChange>),
    /// The server is stopping.
    Shutdown,
}

struct Conn {
    outbox: Outbox,
    /// Where the client connects from: limits per address (password attempts, room
    /// creation) count by it.
    addr: IpAddr,
    /// True while the pool checks this connection's join password: its later inputs wait
    /// in `held` until the answer, so replies keep the order of requests and a connection
    /// never has more than one check running.
    checking: bool,
    /// True while a search of this connection runs: like `checking`, its later inputs wait
    /// in `held`, so the search's reply keeps its place among the connection's replies.
    searching: bool,
    /// Inputs that arrived while `checking` or `searching`, in order (and a disconnect, if
    /// one came).
    held: held::Held,
    /// Searches this connection may still run (`search::SEARCH_RATE`).
    searches: RateLimiter,
    /// This connection's failed password attempts, for the per-connection limit.
    attempts: ConnAttempts,
    /// Set once `hello` succeeds.
    name: Option<Arc<str>>,
    /// The account it is signed in to, once `hello` succeeded as one.
    account: Option<AccountId>,
    /// The session its cookie named: when that session ends the connection closes (4001).
    session: Option<crate::accounts::SessionId>,
    /// The session's account, known from the upgrade on, before `hello`.
    cookie_account: Option<AccountId>,
    /// Rooms joined, by id. Only empty rooms are ever removed, so these always exist.
    rooms: Vec<RoomId>,
    /// The last message id handed out when this connection became a guest: its messages
    /// are the ones under its name above it, which `edit` and `delete` let it touch.
    guest_since_id: u64,
    /// Rooms this connection may still make (`RoomRules::per_connection`).
    room_allowance: RateLimiter,
}

pub struct Hub {
    presence_window: Duration,
    conns: HashMap<ConnId, Conn>,
    /// Online guests: folded name → connection.
    names: HashMap<String, ConnId>,
    /// Online accounts → their connections.
    online: HashMap<AccountId, Vec<ConnId>>,
    /// Every account, session and invite.
    registry: Registry,
    /// Account policy, the hashing pool, the failure limits.
    accounts: accounts::AccountsState,
    /// Every room, by id (its database id, never reused while the server runs).
    rooms: Rooms,
    /// Folded name → room, for the commands that name one.
    room_index: HashMap<String, RoomId>,
    /// Rooms in the order `list` shows them.
    directory: Directory,
    /// The id the next new room gets.
    next_room_id: RoomId,
    /// Rooms with presence changes waiting, by when they are due (the window is constant,
    /// so pushing at the back keeps it ordered). A room removed meanwhile is skipped.
    presence_queue: VecDeque<(Instant, RoomId)>,
    /// Rooms with no members, oldest first: the ones long-empty rooms are removed from.
    idle: IdleRooms,
    /// Reads the wall clock (which stored times are in) through the hub's `now`.
    clock: WallClock,
    /// The operator's limits on rooms.
    room_rules: creation::RoomRules,
    /// Rooms each client address may still make.
    address_allowances: AddressAllowances,
    /// Connections found too slow while sending; removed once the current input is done.
    evicted: Vec<ConnId>,
    last_message_id: u64,
    /// Message ids up to this one are reserved durably (see `store::ids`): the hub never
    /// hands out an id above it, so no id is given twice, even across a crash.
    ids_reserved_up_to: u64,
    /// A reservation of more ids is on its way to the store.
    reserving_ids: bool,
    /// Rooms handed to the store and not confirmed kept yet, with who made each: if the
    /// store cannot keep one, the room is removed and its creator told (`on_room_stored`).
    storing: HashMap<RoomId, ConnId>,
    /// The password pool: its queue, the jobs waiting their turn, the failure limits.
    passwords: passwords::PasswordWork,
    /// New protected rooms waiting for their password's hash before they are stored, each
    /// with its own store jobs (messages, history queries) held back in order, so nothing
    /// of the room is committed, or acked, before the room itself.
    unstored: HashMap<String, (StoreJob, Vec<StoreJob>)>,
    /// Searches handed to the store and not answered yet, server-wide (bounded by
    /// `SEARCHES_IN_FLIGHT`, which keeps the search pool's queue from ever filling).
    searches_in_flight: usize,
    /// Where rooms and messages go to be kept; the store thread also answers `history`.
    store: Sender<StoreJob>,
    /// Every stored file, shared with the uploads and the file server: what `files` on
    /// `text` and `dm` are checked against.
    files: crate::files::index::FileIndex,
    /// When files no message refers to are deleted.
    file_sweep: files::FileSweep,
    /// Rooms' owners, bans and suspensions.
    moderation: moderation::Moderation,
    /// The operator's counters (`/metrics`): the hub counts what it decides.
    metrics: Arc<Metrics>,
}

impl Hub {
    /// A hub starting from what the store loaded.
    pub fn new(
        presence_window: Duration,
        password_pool: Sender<PasswordJob>,
        store: Sender<StoreJob>,
        loaded: Loaded,
    ) -> Self {
        let registry = Registry::load(&loaded.accounts);
        let moderation = moderation::Moderation::new(&loaded.moderation);
        let mut hub = Hub {
            presence_window,
            conns: HashMap::new(),
            names: HashMap::new(),
            online: HashMap::new(),
            registry,
            accounts: accounts::AccountsState::new(Default::default(), None, None),
            rooms: Rooms::default(),
            room_index: HashMap::new(),
            directory: Directory::default(),
            next_room_id: 1,
            presence_queue: VecDeque::new(),
            idle: IdleRooms::default(),
            clock: WallClock::start(),
            room_rules: creation::RoomRules::default(),
            address_allowances: AddressAllowances::default(),
            evicted: Vec::new(),
            last_message_id: loaded.last_message_id,
            ids_reserved_up_to: loaded.ids_reserved_up_to,
            reserving_ids: false,
            storing: HashMap::new(),
            passwords: passwords::PasswordWork::new(password_pool, AttemptLimits::default()),
            unstored: HashMap::new(),
            searches_in_flight: 0,
            store,
            // The server shares one index with the uploads and the file server
            // (`with_files`); a hub on its own starts with none.
            files: crate::files::index::FileIndex::default(),
            file_sweep: files::FileSweep::default(),
            moderation,
            metrics: Arc::default(),
        };
        for stored in loaded.rooms {
            // Names written by an older papo may now be one name (stricter rules: Cyrillic
            // `Аna` and `Ana`). The first room keeps the name; a later one is left in the
            // database untouched, unreachable, and the operator is told which.
            let key = fold(&stored.name);
            if let Some(&first) = hub.room_index.get(&key) {
                log::warn!(
                    "room {:?} (id {}) is the same name as room {:?} (id {first}) under the \
                     stricter name rules; it is not served (its messages stay in the database)",
                    stored.name,
                    stored.id,
                    hub.rooms[first].name
                );
                continue;
            }
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
            let id = room.id;
            hub.next_room_id = hub.next_room_id.max(id + 1);
            hub.room_index.insert(key, id);
            hub.directory.insert(&room.name, id);
            hub.rooms.insert(room);
            hub.mark_idle(id, stored.last_active);
        }
        for &(room_id, id) in &loaded.accounts.room_message_ids {
            if let Some(room) = hub.rooms.get_mut(room_id) {
                room.message_ids.push(id);
            }
        }
        hub
    }

    /// The same hub with other limits on failed password attempts.
    pub fn with_attempt_limits(mut self, limits: AttemptLimits) -> Self {
        self.passwords = passwords::PasswordWork::new(self.passwords.pool.clone(), limits);
        self
    }

    /// The same hub counting into the server's metrics rather than a registry of its own.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Puts the hub's counts of users and rooms where `/metrics` reads them: two relaxed
    /// stores per input, cheaper than keeping them right at every place that changes them.
    fn publish_counts(&self) {
        let users = self.names.len() + self.online.len();
        self.metrics
            .users_online
            .set(i64::try_from(users).unwrap_or(i64::MAX));
        let rooms = self.room_index.len();
        self.metrics
            .rooms
            .set(i64::try_from(rooms).unwrap_or(i64::MAX));
    }

    /// Handles one input; `now` drives presence windows and typing throttles.
    pub fn handle(&mut self, input: HubInput, now: Instant) {
        match input {
            HubInput::Connect {
                conn,
                addr,
                session,
                outbox,
            } => {
                let session = session
                    .and_then(|hash| self.resolve_session(&hash))
                    .map(|s| (s.id, s.account));
                self.conns.insert(
                    conn,
                    Conn {
                        outbox,
                        addr,
                        checking: false,
                        searching: false,
                        held: held::Held::default(),
                        searches: search::allowance(now),
                        attempts: ConnAttempts::default(),
                        name: None,
                        account: None,
                        session: session.map(|(id, _)| id),
                        cookie_account: session.map(|(_, account)| account),
                        rooms: Vec::new(),
                        guest_since_id: 0,
                        room_allowance: self.room_rules.connection_allowance(now),
                    },
                );
            }
            HubInput::Request { conn, request } => {
                if self.is_checking(conn) {
                    self.hold(conn, held::HeldInput::Request(request), now);
                } else {
                    self.on_request(conn, request, now);
                }
            }
            HubInput::Refused {
                conn,
                reference,
                rejection,
            } => {
                if rejection.code == ErrorCode::RateLimited {
                    self.metrics.rate_limited(Limit::Commands);
                }
                if self.is_checking(conn) {
                    let input = held::HeldInput::Refused {
                        rejection,
                        reference,
                    };
                    self.hold(conn, input, now);
                } else {
                    self.reply_error(conn, &rejection, reference.as_ref());
                }
            }
            HubInput::Password(done) => self.on_password_done(done, now),
            HubInput::Store(StoreDone::RoomStored { id, stored }) => {
                self.on_room_stored(id, stored, now)
            }
            HubInput::Store(StoreDone::IdsReserved { up_to }) => self.on_ids_reserved(up_to),
            HubInput::Store(StoreDone::MessageLooked(answer)) => {
                self.on_message_looked(answer, now)
            }
            HubInput::Store(StoreDone::Searched(answer)) => self.on_searched(answer, now),
            HubInput::Store(StoreDone::MessageChanged { change, kept }) => {
                self.on_message_changed(change, kept, now)
            }
            HubInput::Disconnect { conn } => {
                if self.is_checking(conn) {
                    self.hold_disconnect(conn);
                } else {
                    self.remove_conn(conn, now);
                }
            }
            HubInput::Account(call) => self.on_account_call(call, now),
            HubInput::PasswordSignIn(done) => self.on_password_sign_in(done, now),
            HubInput::AccountsChanged(changes) => self.on_account_changes(changes),
            HubInput::Shutdown => self.shutdown(),
        }
        self.drop_evicted(now);
        self.publish_counts();
    }

    /// When the hub has timed work next: a batch of presence changes, or a long-empty
    /// room to remove. `None` when there is none, so an idle hub sleeps without a timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        let presence = self.presence_queue.front().map(|(due, _)| *due);
        match (presence, self.next_removal()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Does the timed work that is due: sends the presence changes whose window has
    /// closed, and removes the rooms that have stood empty long enough.
    pub fn flush_due(&mut self, now: Instant) {
        while let Some(&(due, room)) = self.presence_queue.front() {
            if due > now {
                break;
            }
            self.presence_queue.pop_front();
            // A room flushed early (before a message) may have newer changes queued later.
            if self
                .rooms
                .get(room)
                .is_some_and(|r| r.presence_due == Some(due))
            {
                self.flush_presence(room);
            }
        }
        self.remove_idle_rooms(now);
        self.drop_evicted(now);
        self.publish_counts();
    }

    /// Closes every connection: the server is stopping.
    pub fn shutdown(&mut self) {
        for conn in self.conns.values() {
            conn.outbox
                .close(close_code::GOING_AWAY, "server shutting down");
        }
        self.conns.clear();
        self.names.clear();
        self.online.clear();
        // Rooms created moments ago whose hash has not come back: hash them here, once,
        // so a clean stop never loses a room.
        let unstored: Vec<String> = self.unstored.keys().cloned().collect();
        for key in unstored {
            let Some(&index) = self.room_index.get(&key) else {
                continue;
            };
            let password = match &self.rooms[index].access {
                Access::Protected(secret) => secret.unhashed_password().map(str::to_string),
                Access::Public => None,
            };
            if let Some(password) = password {
                self.on_hashed(index, &key, &crate::password::hash(&password));
            }
        }
        // Every id handed out is in a job queued before this one: the store may bring the
        // reservation back down to the last, so a clean restart goes on without a gap.
        self.persist(StoreJob::Finish {
            last_id: self.last_message_id,
        });
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
            Command::Hello { name, password } => self.hello(conn, name, password, reference, now),
            Command::Create { room, password } => self.create(conn, room, password, reference, now),
            Command::Join { room, password } => self.join(conn, &room, password, reference, now),
            Command::Leave { room } => self.leave(conn, &room, reference, now),
            Command::Text { room, text, files } => self.text(conn, &room, text, &files, reference),
            Command::List(query) => {
                self.list(conn, &query, reference);
                Ok(())
            }
            Command::Who { room } => self.who(conn, &room, reference),
            Command::History {
                room,
                before,
                limit,
            } => self.history(conn, &room, before, limit, reference),
            Command::Dm { to, text, files } => self.dm(conn, &to, text, &files, reference),
            Command::Typing { room } => self.typing(conn, &room, reference, now),
            Command::Read { target, id } => self.read(conn, target, id, reference),
            Command::DmHistory {
                with,
                before,
                limit,
            } => self.dm_history(conn, &with, before, limit, reference),
            Command::Moderate(command) => self.moderate(conn, command, reference, now),
            Command::Search(request) => self.search(conn, request, reference, now),
        }
    }
}

pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// How often sessions are touched and expired, and limits swept.
const HOUSEKEEPING: Duration = Duration::from_secs(60);

/// The hub's thread: handles inputs in order, and sends presence when its window closes.
/// Blocks without a timer when nothing is pending (but the minute's housekeeping), so an
/// idle server uses next to no CPU.
///
/// What the store answers comes on a channel of its own: the hub may wait on a full store
/// queue, and the store must never wait on a full hub queue in turn. That channel holds at
/// most one answer per job in the store's queue.
pub fn run(mut hub: Hub, inputs: Receiver<HubInput>, mut stored: Receiver<StoreDone>) {
    let housekeeping = crossbeam_channel::tick(HOUSEKEEPING);
    let file_sweep = crossbeam_channel::tick(hub.file_sweep.every);
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
            recv(stored) -> done => match done {
                Ok(done) => hub.handle(HubInput::Store(done), Instant::now()),
                Err(_) => {
                    log::error!("the store thread is gone");
                    stored = crossbeam_channel::never();
                }
            },
            recv(timer) -> _ => hub.flush_due(Instant::now()),
            recv(housekeeping) -> _ => hub.housekeeping(Instant::now()),
            recv(file_sweep) -> _ => hub.sweep_files(),
        }
    }
}

pub mod accounts;
mod creation;
mod delivery;
mod directory;
pub mod files;
mod held;
mod message_edits;
mod messages;
pub mod moderation;
mod passwords;
mod presence;
mod removal;
mod rooms;
mod search;
mod users;

pub use creation::RoomRules;

#[cfg(test)]
mod accounts_tests;
#[cfg(test)]
mod files_tests;
#[cfg(test)]
mod moderation_tests;
#[cfg(test)]
mod test_harness;
#[cfg(test)]
mod tests;
