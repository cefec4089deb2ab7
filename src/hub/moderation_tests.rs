//! The hub's moderation decisions, driven directly with a hand-moved clock (no threads,
//! no sockets, no store thread): a ban ends by the hub's clock and is forgotten by the
//! housekeeping, and `edit` holds the connection's later commands until the store has
//! said who wrote the message and kept the change; a change not kept is told to nobody.

use super::test_harness::{Harness, ANA};
use super::*;
use crate::store::moderation::{FoundMessage, MessageAnswer, ModerationWrite};
use serde_json::json;

const ADMIN_CONN: ConnId = 1;
const GUEST_CONN: ConnId = 2;

/// A hub where Ana, the admin, is signed in on `ADMIN_CONN` and made room "sala", and the
/// guest Zé is on `GUEST_CONN`.
fn harness() -> Harness {
    let (mut h, token_hash) = Harness::with_ana(now_millis());
    h.connect(ADMIN_CONN, Some(token_hash));
    h.send(ADMIN_CONN, json!({"type": "hello"}));
    h.send(ADMIN_CONN, json!({"type": "create", "room": "sala"}));
    h.send(ADMIN_CONN, json!({"type": "join", "room": "sala"}));
    h.connect(GUEST_CONN, None);
    h.send(GUEST_CONN, json!({"type": "hello", "name": "Zé"}));
    h.frames(ADMIN_CONN);
    h.frames(GUEST_CONN);
    h
}

/// What only these tests ask of the harness: message ids, the store's jobs and answers.
impl Harness {
    fn message_id(&mut self, conn: ConnId) -> u64 {
        let frames = self.frames(conn);
        let message = frames.iter().rev().find(|f| f["type"] == "message");
        message.and_then(|m| m["id"].as_u64()).expect("a message")
    }

    fn jobs(&mut self) -> Vec<StoreJob> {
        self.store_rx.try_iter().collect()
    }

    /// Answers the edit or deletion the hub handed to the store: kept, or not.
    fn settle_change(&mut self, kept: bool) {
        let change = self.jobs().into_iter().find_map(|j| match j {
            StoreJob::ChangeMessage(change) => Some(change),
            _ => None,
        });
        let change = change.expect("an allowed change goes to the store");
        let done = StoreDone::MessageChanged { change, kept };
        self.hub.handle(HubInput::Store(done), self.now);
    }
}

#[test]
fn a_ban_ends_by_the_hubs_clock_and_housekeeping_forgets_it() {
    let mut h = harness();
    h.send(
        ADMIN_CONN,
        json!({"type": "kick", "room": "sala", "user": "zé", "minutes": 2, "ref": 1}),
    );
    let reply = h.frames(ADMIN_CONN).pop().unwrap();
    assert_eq!(reply["type"], "kicked", "{reply}");
    let join = json!({"type": "join", "room": "sala", "ref": 2});
    h.send(GUEST_CONN, join.clone());
    let frames = h.frames(GUEST_CONN);
    assert_eq!(frames.last().unwrap()["code"], "banned", "{frames:?}");

    h.now += Duration::from_secs(119);
    h.send(GUEST_CONN, join.clone());
    assert_eq!(h.frames(GUEST_CONN)[0]["code"], "banned");
    h.now += Duration::from_secs(2);
    h.send(GUEST_CONN, join);
    assert_eq!(h.frames(GUEST_CONN)[0]["type"], "joined");

    h.jobs();
    h.hub.housekeeping(h.now);
    let expired = h
        .jobs()
        .into_iter()
        .any(|j| matches!(j, StoreJob::Moderation(ModerationWrite::Expire { .. })));
    assert!(expired, "an ended ban is dropped from the database too");
    h.send(GUEST_CONN, json!({"type": "leave", "room": "sala"}));
    h.send(
        ADMIN_CONN,
        json!({"type": "kick", "room": "sala", "user": "zé"}),
    );
    h.frames(GUEST_CONN);
    h.send(
        GUEST_CONN,
        json!({"type": "join", "room": "sala", "ref": 3}),
    );
    assert_eq!(
        h.frames(GUEST_CONN)[0]["type"],
        "joined",
        "a kick without minutes bans nothing"
    );
}

#[test]
fn edit_holds_later_commands_until_the_store_answers() {
    let mut h = harness();
    h.send(
        ADMIN_CONN,
        json!({"type": "text", "room": "sala", "text": "oi"}),
    );
    let id = h.message_id(ADMIN_CONN);
    h.jobs();
    h.send(
        ADMIN_CONN,
        json!({"type": "edit", "id": id, "text": "olá", "ref": "e"}),
    );
    h.send(ADMIN_CONN, json!({"type": "list", "ref": "l"}));
    assert!(
        h.frames(ADMIN_CONN).is_empty(),
        "nothing before the lookup is answered"
    );
    let lookup = h.jobs().into_iter().find_map(|j| match j {
        StoreJob::LookupMessage(q) => Some(q),
        _ => None,
    });
    let lookup = lookup.expect("the hub asks the store who wrote it");
    assert_eq!(lookup.id, id);
    let answer = MessageAnswer {
        conn: lookup.conn,
        id,
        action: lookup.action,
        reference: lookup.reference,
        found: Ok(Some(FoundMessage {
            id,
            room_id: Some(1),
            sender: "Ana".into(),
            sender_account: Some(ANA),
            recipient: None,
            recipient_account: None,
            ts: 0,
            files: None,
        })),
    };
    h.hub
        .handle(HubInput::Store(StoreDone::MessageLooked(answer)), h.now);
    assert!(
        h.frames(ADMIN_CONN).is_empty(),
        "nothing before the edit is kept"
    );
    h.settle_change(true);
    let frames = h.frames(ADMIN_CONN);
    let types: Vec<&str> = frames.iter().map(|f| f["type"].as_str().unwrap()).collect();
    assert_eq!(types, vec!["edited", "rooms"], "{frames:?}");
    assert_eq!(frames[0]["text"], "olá");
}

#[test]
fn a_change_the_store_cannot_keep_is_unavailable_and_told_to_nobody_else() {
    let mut h = harness();
    h.send(GUEST_CONN, json!({"type": "join", "room": "sala"}));
    h.send(
        ADMIN_CONN,
        json!({"type": "text", "room": "sala", "text": "oi"}),
    );
    let id = h.message_id(ADMIN_CONN);
    h.now += Duration::from_secs(1);
    h.hub.flush_due(h.now);
    h.frames(GUEST_CONN);
    h.jobs();
    h.send(ADMIN_CONN, json!({"type": "delete", "id": id, "ref": "d"}));
    h.send(ADMIN_CONN, json!({"type": "list", "ref": "l"}));
    let lookup = h.jobs().into_iter().find_map(|j| match j {
        StoreJob::LookupMessage(q) => Some(q),
        _ => None,
    });
    let lookup = lookup.expect("a lookup");
    let answer = MessageAnswer {
        conn: lookup.conn,
        id,
        action: lookup.action,
        reference: lookup.reference,
        found: Ok(Some(FoundMessage {
            id,
            room_id: Some(1),
            sender: "Ana".into(),
            sender_account: Some(ANA),
            recipient: None,
            recipient_account: None,
            ts: 0,
            files: None,
        })),
    };
    h.hub
        .handle(HubInput::Store(StoreDone::MessageLooked(answer)), h.now);
    h.settle_change(false);
    let frames = h.frames(ADMIN_CONN);
    let types: Vec<&str> = frames.iter().map(|f| f["type"].as_str().unwrap()).collect();
    assert_eq!(types, vec!["error", "rooms"], "{frames:?}");
    assert_eq!(frames[0]["code"], "unavailable");
    assert_eq!(frames[0]["ref"], "d");
    assert!(h.frames(GUEST_CONN).is_empty(), "the room heard nothing");
    // The message is still there: a later delete is allowed again.
    h.send(
        ADMIN_CONN,
        json!({"type": "delete", "id": id, "ref": "again"}),
    );
    assert!(h
        .jobs()
        .iter()
        .any(|j| matches!(j, StoreJob::LookupMessage(q) if q.id == id)));
}

#[test]
fn a_message_deleted_while_its_lookup_ran_is_no_message() {
    let mut h = harness();
    h.send(
        ADMIN_CONN,
        json!({"type": "text", "room": "sala", "text": "oi"}),
    );
    let id = h.message_id(ADMIN_CONN);
    let found = FoundMessage {
        id,
        room_id: Some(1),
        sender: "Ana".into(),
        sender_account: Some(ANA),
        recipient: None,
        recipient_account: None,
        ts: 0,
        files: None,
    };
    // Two deletes in flight: both lookups found the row; the first one wins.
    for (n, expected) in [(1, "deleted"), (2, "error")] {
        h.send(ADMIN_CONN, json!({"type": "delete", "id": id, "ref": n}));
        let answer = MessageAnswer {
            conn: ADMIN_CONN,
            id,
            action: crate::store::moderation::MessageAction::Delete,
            reference: Some(Ref::Int(n)),
            found: Ok(Some(found.clone())),
        };
        h.hub
            .handle(HubInput::Store(StoreDone::MessageLooked(answer)), h.now);
        if expected == "deleted" {
            h.settle_change(true);
        }
        let reply = h.frames(ADMIN_CONN).pop().unwrap();
        assert_eq!(reply["type"], expected, "{reply}");
        if expected == "error" {
            assert_eq!(reply["code"], "no_such_message");
        }
    }
}
