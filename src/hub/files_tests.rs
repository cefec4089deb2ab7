//! The hub's attachment decisions, driven directly: a message's `files` are checked
//! against the shared index (own files only), carried on the event and the stored record,
//! and the sweep takes only old files no message refers to.

use super::test_harness::{ana_with_a_session, hub_knowing, ANA};
use super::*;
use crate::files::index::FileIndex;
use crate::outbox::{self, Inbox, Outbound};
use crate::protocol::parse_request;
use crate::store::files::FileRow;
use serde_json::{json, Value};

const HOUR_MS: u64 = 3_600_000;

fn row(id: &str, owner: i64, created: u64) -> FileRow {
    FileRow {
        id: id.into(),
        owner,
        name: format!("{id}.txt"),
        kind: "text/plain".into(),
        size: 5,
        width: None,
        height: None,
        created,
        sha256: "00".into(),
        preview: None,
        preview_kind: None,
    }
}

/// A hub with Ana signed in on connection 1 and a member of "sala", sharing `index`.
fn hub_with(index: &FileIndex) -> (Hub, Inbox, Receiver<StoreJob>) {
    let (accounts, token_hash) = ana_with_a_session(now_millis());
    let (hub, store_rx) = hub_knowing(accounts);
    let mut hub = hub.with_files(
        index.clone(),
        files::FileSweep::new(Duration::from_secs(3600), Duration::from_secs(60)),
    );
    let (outbox, inbox) = outbox::channel(1000);
    let now = Instant::now();
    let addr = std::net::Ipv4Addr::LOCALHOST.into();
    hub.handle(
        HubInput::Connect {
            conn: 1,
            addr,
            session: Some(token_hash),
            outbox,
        },
        now,
    );
    for command in [
        json!({"type": "hello"}),
        json!({"type": "create", "room": "sala"}),
        json!({"type": "join", "room": "sala"}),
    ] {
        send(&mut hub, command);
    }
    drain(&inbox);
    while store_rx.try_recv().is_ok() {}
    (hub, inbox, store_rx)
}

fn send(hub: &mut Hub, command: Value) {
    let request = parse_request(&command.to_string()).expect("well-formed frame");
    hub.handle(HubInput::Request { conn: 1, request }, Instant::now());
    hub.flush_due(Instant::now() + Duration::from_secs(1));
}

fn drain(inbox: &Inbox) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(item) = inbox.try_recv() {
        if let Outbound::Frame(frame) = item {
            out.push(serde_json::from_str(frame.json()).unwrap());
        }
    }
    out
}

#[test]
fn only_own_stored_files_are_attached_and_they_travel_with_the_message() {
    let index = FileIndex::default();
    index.insert(row("mine", ANA, now_millis()));
    index.insert(row("theirs", 8, now_millis()));
    let (mut hub, inbox, store_rx) = hub_with(&index);

    send(
        &mut hub,
        json!({"type": "text", "room": "sala", "files": ["mine", "theirs"], "ref": 1}),
    );
    let frames = drain(&inbox);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["code"], "no_such_file");
    assert!(store_rx.try_recv().is_err(), "nothing is kept");

    send(
        &mut hub,
        json!({"type": "text", "room": "sala", "text": "", "files": ["mine"]}),
    );
    let frames = drain(&inbox);
    let message = frames
        .iter()
        .find(|f| f["type"] == "message")
        .expect("the message");
    assert_eq!(
        message["files"],
        json!([{"id": "mine", "name": "mine.txt", "type": "text/plain", "size": 5}])
    );
    match store_rx.try_recv() {
        Ok(StoreJob::Append { record, .. }) => assert_eq!(record.files, ["mine"]),
        _ => panic!("the message goes to the store with its files"),
    }
    assert!(index.get("mine").unwrap().attached());
}

#[test]
fn the_sweep_takes_old_unattached_files_only() {
    let index = FileIndex::default();
    let old = now_millis() - 2 * HOUR_MS;
    index.insert(row("old-lonely", ANA, old));
    index.insert(row("old-used", ANA, old));
    index.insert(row("new-lonely", ANA, now_millis()));
    let (mut hub, _inbox, store_rx) = hub_with(&index);
    send(
        &mut hub,
        json!({"type": "text", "room": "sala", "files": ["old-used"]}),
    );
    while store_rx.try_recv().is_ok() {}

    hub.sweep_files();
    match store_rx.try_recv() {
        Ok(StoreJob::DeleteFiles { ids }) => assert_eq!(ids, ["old-lonely"]),
        _ => panic!("the sweep asks the store to delete the old unattached file"),
    }
    assert!(
        index.get("old-lonely").is_none(),
        "nobody can attach it any more"
    );
    assert!(index.get("old-used").is_some() && index.get("new-lonely").is_some());
    hub.sweep_files();
    assert!(store_rx.try_recv().is_err(), "nothing more to sweep");
}
