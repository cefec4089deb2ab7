//! The hub's decisions, driven directly: no threads, no sockets, a hand-moved clock.

use super::*;
use crate::outbox::{self, Inbox, Outbound};
use crate::password;
use crate::protocol::parse_request;
use crate::store::{self, Loaded, Store};
use serde_json::{json, Value};

const WINDOW: Duration = Duration::from_millis(50);

struct Harness {
    hub: Hub,
    verify_rx: Receiver<PasswordJob>,
    store_rx: Receiver<StoreJob>,
    store: Store,
    inboxes: HashMap<ConnId, Inbox>,
    now: Instant,
}

impl Harness {
    fn new() -> Self {
        Harness::loaded(Loaded::default())
    }

    /// A hub starting from what a store loaded.
    fn loaded(loaded: Loaded) -> Self {
        Harness::starting_from(loaded, 1)
    }

    /// A hub started from `loaded`, with a password pool `width` threads wide.
    fn starting_from(loaded: Loaded, width: usize) -> Self {
        let (verify_tx, verify_rx) = password::queue(width);
        let (store_tx, store_rx) = store::queue();
        Harness {
            hub: Hub::new(WINDOW, verify_tx, store_tx, loaded),
            verify_rx,
            store_rx,
            store: Store::open(":memory:").unwrap(),
            inboxes: HashMap::new(),
            now: Instant::now(),
        }
    }

    fn connect_with_queue(&mut self, conn: ConnId, capacity: usize) {
        self.connect_from(conn, capacity, std::net::Ipv4Addr::LOCALHOST.into());
    }

    fn connect_from(&mut self, conn: ConnId, capacity: usize, addr: IpAddr) {
        let (outbox, inbox) = outbox::channel(capacity);
        self.inboxes.insert(conn, inbox);
        self.hub.handle(
            HubInput::Connect {
                conn,
                addr,
                session: None,
                outbox,
            },
            self.now,
        );
    }

    /// Connects from `addr` and says hello; the welcome is consumed.
    fn user_from(&mut self, conn: ConnId, name: &str, addr: [u8; 4]) {
        self.connect_from(conn, 10_000, addr.into());
        self.send(conn, json!({"type": "hello", "name": name}));
        assert_eq!(self.next(conn)["type"], "welcome");
    }

    /// Runs the one oldest job handed to the pool, if any; returns whose join it was.
    fn verify_one(&mut self) -> Option<ConnId> {
        let job = self.verify_rx.try_recv().ok()?;
        let conn = match &job {
            PasswordJob::Verify(v) => Some(v.conn),
            PasswordJob::Hash { .. } => None,
        };
        self.hub.handle(HubInput::Password(job.run()), self.now);
        conn
    }

    /// Connects and says hello; the welcome is consumed.
    fn user(&mut self, conn: ConnId, name: &str) {
        self.connect_with_queue(conn, 10_000);
        self.send(conn, json!({"type": "hello", "name": name}));
        assert_eq!(self.next(conn)["type"], "welcome");
    }

    fn send(&mut self, conn: ConnId, command: Value) {
        let request = parse_request(&command.to_string()).expect("well-formed frame");
        self.hub
            .handle(HubInput::Request { conn, request }, self.now);
    }

    /// Runs the password work the hub asked for, as the password pool would.
    fn verify_all(&mut self) {
        while let Ok(job) = self.verify_rx.try_recv() {
            self.hub.handle(HubInput::Password(job.run()), self.now);
        }
    }

    /// The password hash the store holds for a room, if the room is stored.
    fn stored_password_hash(&self, room: &str) -> Option<String> {
        self.store.password_hash(room)
    }

    /// Commits what the hub handed the store, as the store thread would.
    fn run_store(&mut self) {
        let jobs: Vec<StoreJob> = self.store_rx.try_iter().collect();
        for done in self.store.apply(jobs) {
            self.hub.handle(HubInput::Store(done), self.now);
        }
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.hub.flush_due(self.now);
    }

    fn frames(&mut self, conn: ConnId) -> Vec<Value> {
        let inbox = &self.inboxes[&conn];
        let mut out = Vec::new();
        while let Some(item) = inbox.try_recv() {
            out.push(match item {
                Outbound::Frame(frame) => serde_json::from_str(frame.json()).unwrap(),
                Outbound::Close(code, reason) => json!({"close": code, "reason": reason}),
                Outbound::Pong(_) => json!({"pong": true}),
                Outbound::Ping => json!({"ping": true}),
                Outbound::Finish => json!({"finish": true}),
            });
        }
        out
    }

    fn next(&mut self, conn: ConnId) -> Value {
        let mut frames = self.frames(conn);
        assert_eq!(frames.len(), 1, "expected one frame, got {frames:?}");
        frames.remove(0)
    }

    fn error_code(&mut self, conn: ConnId) -> String {
        let frame = self.next(conn);
        assert_eq!(frame["type"], "error", "{frame}");
        frame["code"].as_str().unwrap().to_string()
    }
}

#[test]
fn identification_comes_first() {
    let mut h = Harness::new();
    h.connect_with_queue(1, 100);
    h.send(1, json!({"type": "list", "ref": 1}));
    assert_eq!(
        h.next(1),
        json!({"type": "error", "code": "not_identified", "message": "say hello with your name first", "ref": 1})
    );
    h.send(1, json!({"type": "nonsense"}));
    assert_eq!(h.error_code(1), "not_identified");
    h.send(1, json!({"type": "hello", "name": "  Ana  ", "ref": "a"}));
    assert_eq!(
        h.next(1),
        json!({"type": "welcome", "name": "Ana", "rooms": [], "rooms_total": 0, "account": false, "admin": false, "ref": "a"})
    );
    h.send(1, json!({"type": "hello", "name": 5}));
    assert_eq!(h.error_code(1), "already_identified");
    h.send(1, json!({"type": "nonsense"}));
    assert_eq!(h.error_code(1), "unknown_type");
}

#[test]
fn names_are_unique_ignoring_case_and_free_again_after_disconnect() {
    let mut h = Harness::new();
    h.user(1, "Ana");
    h.connect_with_queue(2, 100);
    h.send(2, json!({"type": "hello", "name": "ANA"}));
    assert_eq!(h.error_code(2), "name_taken");
    h.hub.handle(HubInput::Disconnect { conn: 1 }, h.now);
    h.send(2, json!({"type": "hello", "name": "ANA"}));
    assert_eq!(h.next(2)["name"], "ANA");
}

#[test]
fn protected_rooms_check_passwords_off_the_hub() {
    let mut h = Harness::new();
    h.user(1, "Ana");
    h.user(2, "Beto");
    h.user(3, "Caio");
    h.send(
        1,
        json!({"type": "create", "room": "jogos", "password": "123"}),
    );
    assert_eq!(
        h.next(1),
        json!({"type": "created", "room": "jogos", "protected": true})
    );
    assert_eq!(
        h.next(2),
        json!({"type": "room_added", "room": "jogos", "protected": true})
    );
    h.frames(3);

    // Before its hash is back the room already knows its password: no argon2 on join,
    // and a wrong one is refused at once.
    h.send(
        1,
        json!({"type": "join", "room": "JOGOS", "password": "123"}),
    );
    assert_eq!(h.next(1)["type"], "joined");
    h.send(
        3,
        json!({"type": "join", "room": "jogos", "password": "12"}),
    );
    assert_eq!(h.error_code(3), "wrong_password");
    assert_eq!(h.verify_rx.len(), 1, "only the hashing job");
    h.send(
        1,
        json!({"type": "text", "room": "jogos", "text": "cedo", "ref": "e"}),
    );
    h.run_store();
    let early = h.frames(1);
    assert!(
        early.iter().any(|f| f["text"] == "cedo"),
        "delivered at once"
    );
    assert!(
        !early.iter().any(|f| f["type"] == "ack"),
        "acked only once the room itself is stored"
    );
    assert_eq!(
        h.stored_password_hash("jogos"),
        None,
        "stored only once hashed"
    );
    h.verify_all();
    h.run_store();
    let ack = h.next(1);
    assert_eq!(
        (ack["type"].as_str(), ack["ref"].as_str()),
        (Some("ack"), Some("e"))
    );
    let phc = h
        .stored_password_hash("jogos")
        .expect("stored with its hash");
    assert!(phc.starts_with("$argon2id$") && password::verify(&phc, "123"));

    h.send(
        3,
        json!({"type": "join", "room": "jogos", "password": "321", "ref": 9}),
    );
    assert!(h.frames(3).is_empty(), "the answer waits for the verifier");
    h.verify_all();
    assert_eq!(h.next(3)["code"], "wrong_password");
    h.send(3, json!({"type": "join", "room": "jogos"}));
    assert_eq!(h.error_code(3), "wrong_password");

    h.send(
        2,
        json!({"type": "join", "room": "jogos", "password": "123", "ref": 4}),
    );
    h.verify_all();
    let joined = h.next(2);
    assert_eq!(joined["members"], json!(["Ana", "Beto"]));
    assert_eq!(joined["ref"], 4);
    h.advance(WINDOW);
    // Ana's own join went out before her early message; this window holds Beto's.
    let presence = json!({"type": "presence", "room": "jogos", "joined": ["Beto"], "left": [], "member_count": 2});
    assert_eq!(h.next(1), presence);
    assert_eq!(h.next(2), presence);
    assert!(
        h.frames(3).is_empty(),
        "nothing of the room reaches a non-member"
    );
}

#[test]
fn presence_is_batched_per_window_and_flushed_before_messages() {
    let mut h = Harness::new();
    for (conn, name) in [(1, "Ana"), (2, "Beto"), (3, "Caio")] {
        h.user(conn, name);
    }
    h.send(1, json!({"type": "create", "room": "sala"}));
    h.frames(1);
    h.frames(2);
    h.frames(3);
    h.send(1, json!({"type": "join", "room": "sala"}));
    h.advance(WINDOW);
    h.frames(1);

    h.send(2, json!({"type": "join", "room": "sala"}));
    h.send(3, json!({"type": "join", "room": "sala"}));
    h.send(3, json!({"type": "leave", "room": "sala"}));
    assert_eq!(h.frames(1), Vec::<Value>::new(), "gathered, not sent yet");
    h.send(
        2,
        json!({"type": "text", "room": "sala", "text": " oi \n tudo bem? "}),
    );
    let ana = h.frames(1);
    assert_eq!(
        ana[0],
        json!({"type": "presence", "room": "sala", "joined": ["Beto"], "left": ["Caio"], "member_count": 2})
    );
    assert_eq!(ana[1]["type"], "message");
    assert_eq!(ana[1]["text"], "oi \n tudo bem?");
    let caio = h.frames(3);
    assert_eq!(
        caio.iter()
            .map(|f| f["type"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["joined", "left"]
    );
    h.advance(WINDOW * 3);
    assert!(
        h.frames(1).is_empty(),
        "an early flush leaves nothing behind"
    );
}

#[test]
fn joined_lists_at_most_100_members_and_who_lists_all() {
    let mut h = Harness::new();
    h.user(1000, "dono");
    h.send(1000, json!({"type": "create", "room": "grande"}));
    for conn in 0..105 {
        h.user(conn, &format!("u{conn}"));
        h.send(conn, json!({"type": "join", "room": "grande"}));
    }
    let joined = h
        .frames(104)
        .into_iter()
        .find(|f| f["type"] == "joined")
        .unwrap();
    assert_eq!(joined["member_count"], 105);
    assert_eq!(joined["members"].as_array().unwrap().len(), 100);
    assert_eq!(joined["members"][0], "u0");
    h.advance(WINDOW);
    let presences: Vec<Value> = h
        .frames(0)
        .into_iter()
        .filter(|f| f["type"] == "presence")
        .collect();
    assert_eq!(presences.len(), 1, "one presence for the whole crowd");
    assert_eq!(presences[0]["joined"].as_array().unwrap().len(), 105);
    h.frames(7);
    h.send(7, json!({"type": "who", "room": "grande"}));
    let members = h.next(7);
    assert_eq!(members["members"].as_array().unwrap().len(), 105);
    assert_eq!(members["members"][104], "u104");
}

#[test]
fn history_pages_backwards_through_stored_messages() {
    let mut h = Harness::new();
    h.user(1, "Ana");
    h.send(1, json!({"type": "create", "room": "r"}));
    h.send(1, json!({"type": "join", "room": "r"}));
    for i in 0..60 {
        h.send(
            1,
            json!({"type": "text", "room": "r", "text": format!("m{i}"), "ref": i}),
        );
    }
    let frames = h.frames(1);
    let acks_now = frames.iter().filter(|f| f["type"] == "ack").count();
    assert_eq!(acks_now, 0, "acks wait for the commit");
    h.run_store();
    let frames = h.frames(1);
    let acks: Vec<&Value> = frames.iter().filter(|f| f["type"] == "ack").collect();
    assert_eq!(acks.len(), 60);
    let first_id = acks[0]["id"].as_u64().unwrap();
    assert!(acks
        .windows(2)
        .all(|w| w[0]["id"].as_u64() < w[1]["id"].as_u64()));

    h.send(1, json!({"type": "history", "room": "r", "limit": 5}));
    h.run_store();
    let page = h.next(1);
    let texts: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["m55", "m56", "m57", "m58", "m59"]);
    h.send(
        1,
        json!({"type": "history", "room": "r", "before": first_id + 3}),
    );
    h.run_store();
    let page = h.next(1);
    let texts: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["m0", "m1", "m2"]);

    h.send(1, json!({"type": "join", "room": "r"}));
    let joined = h.next(1);
    assert_eq!(joined["history"].as_array().unwrap().len(), 50);
    assert_eq!(joined["history"][49]["text"], "m59");
}

#[test]
fn typing_is_throttled_per_user_and_room() {
    let mut h = Harness::new();
    h.user(1, "Ana");
    h.user(2, "Beto");
    h.send(1, json!({"type": "create", "room": "r"}));
    h.send(1, json!({"type": "join", "room": "r"}));
    h.send(2, json!({"type": "join", "room": "r"}));
    h.advance(WINDOW);
    h.frames(1);
    h.frames(2);
    h.send(1, json!({"type": "typing", "room": "r"}));
    h.send(1, json!({"type": "typing", "room": "r", "ref": 3}));
    assert_eq!(
        h.next(1),
        json!({"type": "ack", "ref": 3}),
        "a throttled typing still gets its ack"
    );
    assert_eq!(
        h.next(2),
        json!({"type": "typing", "room": "r", "user": "Ana"})
    );
    h.advance(TYPING_INTERVAL);
    h.send(1, json!({"type": "typing", "room": "r"}));
    assert_eq!(h.next(2)["type"], "typing");
}

#[test]
fn dms_reach_sender_and_recipient_with_one_id() {
    let mut h = Harness::new();
    h.user(1, "Ana");
    h.user(2, "Beto");
    h.send(
        1,
        json!({"type": "dm", "to": "beto", "text": "oi", "ref": 1}),
    );
    let mine = h.next(1);
    let theirs = h.next(2);
    assert_eq!(mine["to"], "Beto");
    assert_eq!(mine["ref"], 1);
    assert!(theirs.get("ref").is_none());
    assert_eq!(mine["id"], theirs["id"]);
    h.send(1, json!({"type": "dm", "to": "Zeca", "text": "oi"}));
    assert_eq!(h.error_code(1), "no_such_user");
}

#[test]
fn state_errors_name_the_room_problem() {
    let mut h = Harness::new();
    h.user(1, "Ana");
    h.send(1, json!({"type": "leave", "room": "nada"}));
    assert_eq!(h.error_code(1), "no_such_room");
    h.send(1, json!({"type": "create", "room": "Sala"}));
    h.frames(1);
    h.send(1, json!({"type": "create", "room": "SALA"}));
    assert_eq!(h.error_code(1), "room_exists");
    for command in ["leave", "who", "history", "typing"] {
        h.send(1, json!({"type": command, "room": "sala"}));
        assert_eq!(h.error_code(1), "not_in_room", "{command}");
    }
    h.send(1, json!({"type": "text", "room": "sala", "text": "x"}));
    assert_eq!(h.error_code(1), "not_in_room");
}

#[test]
fn a_full_queue_drops_the_member_and_tells_the_room() {
    let mut h = Harness::new();
    h.user(1, "Ana");
    h.connect_with_queue(2, 4);
    h.send(2, json!({"type": "hello", "name": "Lento"}));
    h.send(1, json!({"type": "create", "room": "r"}));
    h.send(1, json!({"type": "join", "room": "r"}));
    h.send(2, json!({"type": "join", "room": "r"}));
    h.advance(WINDOW);
    h.frames(1);
    for i in 0..10 {
        h.send(
            1,
            json!({"type": "text", "room": "r", "text": format!("m{i}")}),
        );
    }
    h.advance(WINDOW);
    let ana = h.frames(1);
    assert_eq!(ana.iter().filter(|f| f["type"] == "message").count(), 10);
    let presence = ana
        .iter()
        .find(|f| f["type"] == "presence")
        .expect("a presence for the slow member");
    assert_eq!(presence["left"], json!(["Lento"]));
    assert!(h.inboxes[&2].is_slow());
    h.send(1, json!({"type": "dm", "to": "Lento", "text": "x"}));
    assert_eq!(
        h.error_code(1),
        "no_such_user",
        "a slow consumer is gone for everyone"
    );
}

#[test]
fn shutdown_closes_every_connection_as_going_away() {
    let mut h = Harness::new();
    h.user(1, "Ana");
    h.hub.handle(HubInput::Shutdown, h.now);
    assert_eq!(h.next(1)["close"], close_code::GOING_AWAY);
}

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// The frames of `conn` that are not presence (joins and leaves are not the point here).
fn without_presence(frames: Vec<Value>) -> Vec<Value> {
    frames
        .into_iter()
        .filter(|f| f["type"] != "presence")
        .collect()
}

/// The hub's timer is set for `expected`, to the millisecond stored times are kept in.
fn assert_due(h: &Harness, expected: Instant) {
    let due = h.hub.next_deadline().expect("a timer");
    let early = expected.saturating_duration_since(due);
    assert!(
        due <= expected && early < Duration::from_millis(1),
        "due {due:?}, expected {expected:?}"
    );
}

#[test]
fn long_empty_rooms_are_removed_everywhere_and_announced() {
    let mut h = Harness::new();
    h.hub.room_rules.remove_after = Some(DAY);
    h.user(1, "Ana");
    h.user(2, "Beto");
    h.connect_with_queue(3, 100); // not identified: hears nothing of rooms
    assert_eq!(h.hub.next_deadline(), None, "no room, no timer");
    for room in ["velha", "viva"] {
        h.send(1, json!({"type": "create", "room": room}));
    }
    h.frames(1);
    h.frames(2);
    let created = h.now;
    assert_due(&h, created + DAY);
    // Ana stays in "viva"; "velha" has a member and a message for an hour, then none.
    h.send(1, json!({"type": "join", "room": "viva"}));
    h.send(1, json!({"type": "join", "room": "velha"}));
    h.send(1, json!({"type": "text", "room": "velha", "text": "olá"}));
    h.advance(HOUR);
    h.send(1, json!({"type": "leave", "room": "velha"}));
    let left = h.now;
    h.advance(WINDOW); // the leave's presence goes out
    h.frames(1);
    h.run_store();
    assert_due(&h, left + DAY);

    h.advance(DAY - WINDOW - Duration::from_millis(1));
    assert_eq!(without_presence(h.frames(1)), Vec::<Value>::new());
    assert_eq!(h.frames(2), Vec::<Value>::new());
    h.advance(Duration::from_millis(1));
    let removed = json!({"type": "room_removed", "room": "velha"});
    assert_eq!(h.frames(1), vec![removed.clone()]);
    assert_eq!(h.frames(2), vec![removed]);
    assert_eq!(h.frames(3), Vec::<Value>::new());
    assert_eq!(
        h.hub.next_deadline(),
        None,
        "the one room left has a member"
    );

    // Gone from the hub, the directory and the database; its name is free again.
    h.send(2, json!({"type": "list"}));
    let rooms = h.next(2);
    assert_eq!(rooms["rooms"].as_array().unwrap().len(), 1);
    assert_eq!(
        (rooms["rooms"][0]["room"].as_str(), rooms["total"].as_u64()),
        (Some("viva"), Some(1))
    );
    h.send(2, json!({"type": "join", "room": "velha"}));
    assert_eq!(h.error_code(2), "no_such_room");
    h.run_store();
    let stored = h.store.load(50).unwrap();
    let names: Vec<&str> = stored.rooms.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["viva"]);
    h.advance(DAY * 30);
    assert_eq!(without_presence(h.frames(1)), Vec::<Value>::new());
    h.send(2, json!({"type": "create", "room": "VELHA"}));
    assert_eq!(h.next(2)["type"], "created");
    h.run_store();
    let again = h.store.load(50).unwrap();
    let velha = again.rooms.iter().find(|r| r.name == "VELHA").unwrap();
    assert!(
        velha.recent.is_empty(),
        "a new room under the old name has no old messages"
    );
}

#[test]
fn loaded_rooms_count_idle_from_creation_or_newest_message() {
    let mut store = Store::open(":memory:").unwrap();
    let now_ms = now_millis();
    let room = |id: i64, name: &str, created_at: u64| {
        StoreJob::CreateRoom(store::NewRoom {
            id,
            name: name.into(),
            key: name.into(),
            password_hash: None,
            creator: "Ana".into(),
            created_at,
        })
    };
    let day_ms = DAY.as_millis() as u64;
    let record = store::MessageRecord {
        id: 1,
        room_id: Some(2),
        sender: "Ana".into(),
        recipient: None,
        sender_account: None,
        recipient_account: None,
        text: "ainda aqui".into(),
        ts: now_ms - day_ms / 2,
        files: Vec::new(),
    };
    store.apply(vec![
        room(1, "esquecida", now_ms - 3 * day_ms),
        room(2, "falada", now_ms - 3 * day_ms),
        room(3, "nova", now_ms - day_ms / 4),
        StoreJob::Append {
            record,
            author: outbox::channel(16).0,
            ack: None,
        },
    ]);
    let loaded = store.load(50).unwrap();
    let mut h = Harness::loaded(loaded);
    h.hub.room_rules.remove_after = Some(DAY);
    h.user(1, "Ana");
    h.advance(Duration::ZERO);
    assert_eq!(
        h.frames(1),
        vec![json!({"type": "room_removed", "room": "esquecida"})]
    );
    h.advance(DAY / 2 + Duration::from_secs(60));
    assert_eq!(
        h.frames(1),
        vec![json!({"type": "room_removed", "room": "falada"})]
    );
    h.send(1, json!({"type": "create", "room": "outra"}));
    h.frames(1);
    assert_eq!(h.hub.rooms.len(), 2, "nova, outra");
    // Ids are never given twice in a run, even after the highest room went.
    assert_eq!(h.hub.room_index["outra"], 4);
}

#[test]
fn room_creation_is_limited_per_connection_address_and_server() {
    let mut h = Harness::new();
    h.hub.room_rules.per_connection = 2;
    h.hub.room_rules.per_address = 3;
    h.hub.room_rules.max_rooms = 5;
    h.user(1, "Ana");
    h.user(2, "Beto");
    h.connect_from(3, 10_000, "127.0.0.2".parse().unwrap());
    h.send(3, json!({"type": "hello", "name": "Caio"}));
    h.frames(3);
    let create = |h: &mut Harness, conn: ConnId, room: &str, password: &str| {
        h.send(
            conn,
            json!({"type": "create", "room": room, "password": password}),
        );
        let reply = without_presence(h.frames(conn))
            .into_iter()
            .find(|f| f["type"] != "room_added")
            .unwrap();
        for other in [1, 2, 3] {
            h.frames(other);
        }
        match reply["type"].as_str() {
            Some("created") => "created".to_string(),
            _ => reply["code"].as_str().unwrap().to_string(),
        }
    };
    assert_eq!(create(&mut h, 1, "a", ""), "created");
    assert_eq!(create(&mut h, 1, "b", ""), "created");
    // Refused before any hashing: no job reaches the verifier.
    assert_eq!(create(&mut h, 1, "c", "segredo"), "rate_limited");
    assert!(h.verify_rx.is_empty());
    assert_eq!(
        create(&mut h, 1, "A", ""),
        "room_exists",
        "the name is checked first"
    );
    // Another connection from the same address has its own allowance, not the address's.
    assert_eq!(create(&mut h, 2, "c", ""), "created");
    assert_eq!(create(&mut h, 2, "d", ""), "rate_limited");
    // Another address is not held back.
    assert_eq!(create(&mut h, 3, "d", "segredo"), "created");
    assert_eq!(create(&mut h, 3, "e", ""), "created");
    assert_eq!(create(&mut h, 3, "f", "segredo"), "too_many_rooms");
    assert_eq!(h.verify_rx.len(), 1, "only d's hash");
    // An hour later the allowances are back, but the cap still holds.
    h.now += HOUR;
    assert_eq!(create(&mut h, 1, "f", ""), "too_many_rooms");
    h.hub.room_rules.max_rooms = 0;
    assert_eq!(create(&mut h, 1, "f", ""), "created");
    assert_eq!(create(&mut h, 2, "g", ""), "created");
}

#[test]
fn a_password_check_outlived_by_its_room_does_not_open_the_next_one() {
    let mut store = Store::open(":memory:").unwrap();
    store.apply(vec![StoreJob::CreateRoom(store::NewRoom {
        id: 1,
        name: "cofre".into(),
        key: "cofre".into(),
        password_hash: Some(password::hash("123")),
        creator: "Ana".into(),
        created_at: now_millis(),
    })]);
    let mut h = Harness::loaded(store.load(50).unwrap());
    h.hub.room_rules.remove_after = Some(DAY);
    h.user(1, "Ana");
    h.user(2, "Beto");
    // Loaded rooms know no password yet: the right one goes to the verifier.
    h.send(
        2,
        json!({"type": "join", "room": "cofre", "password": "123", "ref": 5}),
    );
    assert_eq!(h.verify_rx.len(), 1);
    h.advance(DAY);
    let removed = json!({"type": "room_removed", "room": "cofre"});
    assert_eq!(h.frames(2), vec![removed]);
    h.send(1, json!({"type": "create", "room": "cofre"}));
    h.frames(1);
    h.frames(2);
    h.verify_all();
    let reply = h.next(2);
    assert_eq!(
        (reply["code"].as_str(), reply["ref"].as_i64()),
        (Some("no_such_room"), Some(5))
    );
    h.advance(WINDOW);
    assert_eq!(
        h.frames(1),
        Vec::<Value>::new(),
        "nobody joined the new room"
    );
    h.send(2, json!({"type": "join", "room": "cofre"}));
    assert_eq!(h.next(2)["type"], "joined");
}

#[test]
fn stored_rooms_that_are_now_one_name_keep_the_first_and_removal_spares_it() {
    // A database from version 1, which compared names by lower-casing only, may hold
    // rooms the stricter rules call one name: Latin `Ana` and Cyrillic `Аna`.
    let mut store = Store::open(":memory:").unwrap();
    let room = |id: i64, name: &str, created_at: u64| {
        StoreJob::CreateRoom(store::NewRoom {
            id,
            name: name.into(),
            key: name.to_lowercase(),
            password_hash: None,
            creator: "Beto".into(),
            created_at,
        })
    };
    let day_ms = DAY.as_millis() as u64;
    store.apply(vec![
        room(1, "Ana", now_millis() - 3 * day_ms),
        room(2, "\u{410}na", now_millis() - 3 * day_ms),
    ]);
    let mut h = Harness::loaded(store.load(50).unwrap());
    h.user(1, "Beto");
    h.send(1, json!({"type": "join", "room": "\u{410}NA"}));
    let joined = h.next(1);
    assert_eq!(joined["type"], "joined");
    assert_eq!(joined["room"], "Ana", "the first room keeps the name");
    h.send(1, json!({"type": "list"}));
    let rooms = h.next(1);
    assert_eq!(
        rooms["total"], 1,
        "the shadowed room is not served: {rooms}"
    );
    // The first room, joined and then left, is the only one removal may take; the
    // shadowed one is not in the hub, so nothing can remove the first one's name.
    h.send(1, json!({"type": "leave", "room": "Ana"}));
    h.frames(1);
    h.hub.room_rules.remove_after = Some(DAY);
    h.advance(DAY + Duration::from_secs(60));
    assert_eq!(
        h.frames(1),
        vec![json!({"type": "room_removed", "room": "Ana"})]
    );
    assert!(h.hub.room_index.is_empty());
}

/// A hub restarted on protected rooms `cofre` and `caixa` (password `segredo`): their
/// hashes are known, the password not yet verified in this run, so a join needs argon2.
fn restarted(width: usize) -> Harness {
    let phc = password::hash("segredo");
    let rooms = ["cofre", "caixa"]
        .iter()
        .enumerate()
        .map(|(i, name)| store::StoredRoom {
            id: i as i64 + 1,
            name: name.to_string(),
            password_hash: Some(phc.clone()),
            last_active: now_millis(),
            recent: Vec::new(),
        })
        .collect();
    Harness::starting_from(
        Loaded {
            rooms,
            last_message_id: 0,
            ..Loaded::default()
        },
        width,
    )
}

fn join_cofre(password: &str, reference: i64) -> Value {
    json!({"type": "join", "room": "cofre", "password": password, "ref": reference})
}

#[test]
fn commands_behind_a_password_check_wait_for_its_answer() {
    let mut h = restarted(1);
    h.user(1, "Ana");
    h.send(1, join_cofre("segredo", 1));
    h.send(1, json!({"type": "leave", "room": "cofre", "ref": 2}));
    let refused = Rejection::new(ErrorCode::BadRequest, "not JSON");
    h.hub.handle(
        HubInput::Refused {
            conn: 1,
            reference: Some(Ref::Int(3)),
            rejection: refused,
        },
        h.now,
    );
    h.send(1, json!({"type": "list", "ref": 4}));
    assert!(h.frames(1).is_empty(), "everything waits for the check");
    h.verify_all();
    let replies: Vec<(String, i64)> = h
        .frames(1)
        .iter()
        .map(|f| {
            (
                f["type"].as_str().unwrap().to_string(),
                f["ref"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        replies,
        [
            ("joined".to_string(), 1),
            ("left".to_string(), 2),
            ("error".to_string(), 3),
            ("rooms".to_string(), 4)
        ]
    );
    h.send(1, json!({"type": "who", "room": "cofre"}));
    assert_eq!(h.error_code(1), "not_in_room", "the leave took effect");
}

#[test]
fn a_disconnect_waits_for_the_check_and_other_connections_never_wait() {
    let mut h = restarted(1);
    h.user(1, "Ana");
    h.user(2, "Beto");
    h.send(2, join_cofre("segredo", 1));
    h.verify_all();
    assert_eq!(h.next(2)["type"], "joined");
    h.advance(WINDOW);
    h.frames(2);

    h.user(3, "Caio");
    h.send(3, join_cofre("segredo", 1));
    h.send(3, json!({"type": "text", "room": "cofre", "text": "tchau"}));
    h.hub.handle(HubInput::Disconnect { conn: 3 }, h.now);
    h.send(1, json!({"type": "list", "ref": 9}));
    assert_eq!(h.next(1)["type"], "rooms", "Ana is not held behind Caio");
    h.send(1, json!({"type": "hello", "name": "Caio"}));
    assert_eq!(h.error_code(1), "already_identified");

    h.verify_all();
    let seen = h.frames(2);
    let texts: Vec<&str> = seen.iter().filter_map(|f| f["text"].as_str()).collect();
    assert_eq!(
        texts,
        ["tchau"],
        "the held text went out before the disconnect"
    );
    h.advance(WINDOW);
    let presence = h.next(2);
    assert_eq!(presence["left"], json!(["Caio"]));
    assert_eq!(presence["member_count"], 1);
    h.user(4, "Caio");
}

#[test]
fn a_connection_has_one_check_at_a_time() {
    let mut h = restarted(4);
    h.user(1, "Ana");
    h.send(1, join_cofre("errada", 1));
    h.send(
        1,
        json!({"type": "join", "room": "caixa", "password": "segredo", "ref": 2}),
    );
    assert_eq!(
        h.verify_rx.len(),
        1,
        "the second check waits behind the first"
    );
    assert_eq!(h.verify_one(), Some(1));
    assert_eq!(h.error_code(1), "wrong_password");
    assert_eq!(h.verify_rx.len(), 1, "now the second");
    h.verify_all();
    assert_eq!(h.next(1)["room"], "caixa");
}

#[test]
fn failed_attempts_are_limited_per_connection_and_address_before_hashing() {
    let mut h = restarted(1);
    h.user_from(1, "Ana", [10, 0, 0, 1]);
    for i in 0..5 {
        h.send(1, join_cofre("errada", i));
        h.verify_all();
        assert_eq!(h.error_code(1), "wrong_password");
    }
    h.send(1, join_cofre("errada", 5));
    assert_eq!(h.error_code(1), "rate_limited");
    assert!(h.verify_rx.is_empty(), "refused before any hashing");
    h.send(1, join_cofre("segredo", 6));
    assert_eq!(
        h.error_code(1),
        "rate_limited",
        "a limited guesser cannot even test a guess against the cache"
    );

    // Another connection from the same address has five of its own, and the address ten.
    h.user_from(2, "Beto", [10, 0, 0, 1]);
    for i in 0..5 {
        h.send(2, join_cofre("errada", i));
        h.verify_all();
        assert_eq!(h.error_code(2), "wrong_password");
    }
    h.user_from(3, "Caio", [10, 0, 0, 1]);
    h.send(3, join_cofre("segredo", 1));
    assert_eq!(h.error_code(3), "rate_limited");

    // Someone else is not affected, and a success costs nothing.
    h.user_from(4, "Duda", [10, 0, 0, 2]);
    h.send(4, join_cofre("segredo", 1));
    h.verify_all();
    assert_eq!(h.next(4)["type"], "joined");
    // Earned back: one failure every 18 s for the address.
    h.advance(Duration::from_secs(19));
    h.send(3, join_cofre("segredo", 2));
    assert_eq!(
        h.next(3)["type"],
        "joined",
        "remembered now: no hashing needed"
    );
}

#[test]
fn checks_take_turns_by_address() {
    let mut h = restarted(1);
    for conn in 1..=5 {
        h.user_from(conn, &format!("A{conn}"), [10, 0, 0, 1]);
        h.send(conn, join_cofre("errada", 1));
    }
    h.user_from(9, "Beto", [10, 0, 0, 2]);
    h.send(9, join_cofre("segredo", 1));
    let order: Vec<ConnId> = std::iter::from_fn(|| h.verify_one()).collect();
    // 1 was running already; then one turn each: the newcomer waits behind one job of the
    // busy address, not behind all its connections.
    assert_eq!(order, [1, 2, 9, 3, 4, 5]);
    assert_eq!(h.next(9)["type"], "joined");
}

#[test]
fn a_room_the_store_cannot_keep_is_removed_and_its_creator_told() {
    let mut h = Harness::new();
    h.user(1, "Ana");
    h.user(2, "Beto");
    h.send(1, json!({"type": "create", "room": "sala", "ref": "c"}));
    h.send(1, json!({"type": "join", "room": "sala", "ref": "j"}));
    h.send(2, json!({"type": "join", "room": "sala"}));
    let ana = h.frames(1);
    assert_eq!(ana[0]["type"], "created", "at once, as in version 1");
    assert_eq!(ana[1]["type"], "joined");
    h.frames(2);
    let jobs: Vec<StoreJob> = h.store_rx.try_iter().collect();
    let id = match jobs.as_slice() {
        [StoreJob::CreateRoom(room)] => room.id,
        _ => panic!("one job, the room"),
    };
    h.hub.handle(
        HubInput::Store(StoreDone::RoomStored { id, stored: false }),
        h.now,
    );
    let removed = json!({"type": "room_removed", "room": "sala"});
    let ana = h.frames(1);
    assert_eq!(ana[0], removed);
    assert_eq!(
        (ana[1]["code"].as_str(), ana[1].get("ref")),
        (Some("unavailable"), None),
        "the create had its reply; this says the room is gone"
    );
    assert_eq!(h.frames(2), vec![removed]);
    h.send(2, json!({"type": "text", "room": "sala", "text": "x"}));
    assert_eq!(h.error_code(2), "no_such_room");
    h.send(2, json!({"type": "list"}));
    assert_eq!(h.next(2)["rooms"], json!([]));
    h.advance(WINDOW);
    assert_eq!(
        h.frames(1),
        Vec::<Value>::new(),
        "no presence for a room gone"
    );
    h.send(2, json!({"type": "create", "room": "sala"}));
    h.run_store();
    assert_eq!(h.next(2)["type"], "created", "the name is free again");
}

#[test]
fn no_id_is_handed_out_past_the_reservation() {
    let mut store = Store::open(":memory:").unwrap();
    let mut loaded = store.load(crate::room::RECENT_CAPACITY).unwrap();
    loaded.ids_reserved_up_to = loaded.last_message_id + 2;
    let mut h = Harness::loaded(loaded);
    h.user(1, "Ana");
    h.send(1, json!({"type": "create", "room": "r"}));
    h.send(1, json!({"type": "join", "room": "r"}));
    h.run_store();
    h.frames(1);
    for i in 0..3 {
        h.send(
            1,
            json!({"type": "text", "room": "r", "text": format!("m{i}"), "ref": i}),
        );
    }
    let frames = h.frames(1);
    let sent: Vec<&Value> = frames.iter().filter(|f| f["type"] == "message").collect();
    assert_eq!(sent.len(), 2, "two ids were reserved");
    let refused = frames.iter().find(|f| f["type"] == "error").unwrap();
    assert_eq!(
        (refused["code"].as_str(), refused["ref"].as_i64()),
        (Some("unavailable"), Some(2))
    );
    // The hub asked for more ids when it ran low; once they are kept, messages flow again.
    h.run_store();
    h.frames(1);
    h.send(
        1,
        json!({"type": "text", "room": "r", "text": "de novo", "ref": 3}),
    );
    h.run_store();
    let frames = h.frames(1);
    assert!(frames.iter().any(|f| f["text"] == "de novo"), "{frames:?}");
    assert!(frames.iter().any(|f| f["type"] == "ack" && f["ref"] == 3));
}
