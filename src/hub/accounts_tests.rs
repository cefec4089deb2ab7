//! The hub's account decisions, driven directly (no threads, no sockets, no hashing pool):
//! a cookie signs a connection in with no password work, an expired session signs nothing
//! in and is deleted, and an account's connections are one member of a room.

use super::test_harness::Harness;
use super::*;
use crate::store::accounts::AccountWrite;
use serde_json::{json, Value};

/// A hub that knows Ana and one session of hers, `last_seen` at `seen` (ms); it has no
/// hashing pool at all, so anything that needed argon2 would fail.
fn harness(seen: u64) -> (Harness, [u8; 32]) {
    Harness::with_ana(seen)
}

#[test]
fn a_cookie_signs_in_without_any_password_work() {
    let (mut h, session) = harness(now_millis());
    h.connect(1, Some(session));
    h.send(1, json!({"type": "hello", "ref": 1}));
    let frames = h.frames(1);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["type"], "welcome");
    assert_eq!(frames[0]["name"], "Ana");
    assert_eq!(frames[0]["account"], true);
    assert_eq!(frames[0]["admin"], true);
}

#[test]
fn an_expired_session_signs_nothing_in_and_is_deleted() {
    // Unused for longer than the default 30 days.
    let (mut h, session) = harness(now_millis() - 31 * 86_400_000);
    h.connect(1, Some(session));
    h.send(1, json!({"type": "hello"}));
    assert_eq!(
        h.frames(1)[0]["code"],
        "bad_request",
        "no session, so no name: malformed"
    );
    let deleted = h.store_rx.try_iter().any(
        |job| matches!(job, StoreJob::Account(AccountWrite::DeleteSessions(ids)) if ids == vec![1]),
    );
    assert!(deleted, "the expired session is deleted from the store");
}

#[test]
fn housekeeping_ends_sessions_unused_past_their_days() {
    let (mut h, _) = harness(now_millis() - 31 * 86_400_000);
    h.hub.housekeeping(h.now);
    let deleted = h.store_rx.try_iter().any(
        |job| matches!(job, StoreJob::Account(AccountWrite::DeleteSessions(ids)) if ids == vec![1]),
    );
    assert!(deleted);
}

#[test]
fn two_connections_of_an_account_are_one_member_and_one_presence() {
    let (mut h, session) = harness(now_millis());
    h.connect(9, None);
    h.send(9, json!({"type": "hello", "name": "Beto"}));
    h.send(9, json!({"type": "create", "room": "sala"}));
    h.send(9, json!({"type": "join", "room": "sala"}));
    for conn in [1, 2] {
        h.connect(conn, Some(session));
        h.send(conn, json!({"type": "hello"}));
        h.send(conn, json!({"type": "join", "room": "sala"}));
    }
    h.advance(Duration::from_millis(100));
    let beto = h.frames(9);
    let presences: Vec<&Value> = beto.iter().filter(|f| f["type"] == "presence").collect();
    let joined: Vec<&Value> = presences
        .iter()
        .flat_map(|p| p["joined"].as_array().unwrap())
        .collect();
    assert_eq!(joined, vec!["Beto", "Ana"], "{beto:?}");
    assert_eq!(presences.last().unwrap()["member_count"], 2);
    let second = h.frames(2);
    let joined = second.iter().find(|f| f["type"] == "joined").unwrap();
    assert_eq!(joined["member_count"], 2);
    assert_eq!(joined["members"], json!(["Beto", "Ana"]));
    // A message reaches both of Ana's connections.
    h.send(9, json!({"type": "text", "room": "sala", "text": "oi"}));
    for conn in [1, 2, 9] {
        assert!(h.frames(conn).iter().any(|f| f["type"] == "message"));
    }
    // One connection going is no news; the last one is.
    h.hub.handle(HubInput::Disconnect { conn: 1 }, h.now);
    h.advance(Duration::from_millis(100));
    assert!(h.frames(9).is_empty());
    h.hub.handle(HubInput::Disconnect { conn: 2 }, h.now);
    h.advance(Duration::from_millis(100));
    let left = h.frames(9);
    assert_eq!(left[0]["left"], json!(["Ana"]), "{left:?}");
    assert_eq!(left[0]["member_count"], 1);
}
