//! The store's answers when jobs or the database fail, driven through `Store::apply` on
//! real SQLite files: a job that breaks fails alone, a failing database answers every job
//! at once and turns `/healthz` to 503, and reserved ids outlive a crash.

use super::*;
use crate::outbox::{self, Inbox, Outbound};
use serde_json::Value;

/// A store on a fresh file in a directory of its own, removed on drop.
struct FileStore {
    store: Store,
    path: std::path::PathBuf,
}

impl FileStore {
    fn new(tag: &str) -> FileStore {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("papo-store-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("papo.db");
        let store = Store::open(path.to_str().unwrap()).unwrap();
        FileStore { store, path }
    }

    /// Opens the same file again, as a restart would (the old connection is dropped
    /// without anything else written, as a crash would leave it).
    fn reopen(&mut self) {
        self.store = Store::open(self.path.to_str().unwrap()).unwrap();
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn room(id: i64, name: &str) -> StoreJob {
    StoreJob::CreateRoom(NewRoom {
        id,
        name: name.into(),
        key: name.into(),
        password_hash: None,
        creator: "Ana".into(),
        created_at: 0,
    })
}

/// A room message from Ana with `ref` = its id, acked to `author`.
fn message(id: u64, text: &str, author: &Outbox) -> StoreJob {
    StoreJob::Append {
        record: MessageRecord {
            id,
            room_id: Some(1),
            sender: "Ana".into(),
            recipient: None,
            sender_account: None,
            recipient_account: None,
            text: text.into(),
            ts: 1_764_000_000_000 + id,
            files: Vec::new(),
        },
        author: author.clone(),
        ack: Some(Ref::Int(id as i64)),
    }
}

fn history(reply: &Outbox) -> StoreJob {
    StoreJob::History {
        room_id: 1,
        room_name: "sala".into(),
        before: None,
        limit: 100,
        reference: Some(Ref::Str("h".into())),
        reply: reply.clone(),
    }
}

fn frames(inbox: &Inbox) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(Outbound::Frame(frame)) = inbox.try_recv() {
        out.push(serde_json::from_str(frame.json()).unwrap());
    }
    out
}

fn stored_texts(store: &Store) -> Vec<String> {
    store
        .conn
        .prepare("SELECT text FROM messages ORDER BY id")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Acks and `unavailable` errors among the frames, by ref.
fn answers(frames: &[Value]) -> (Vec<i64>, Vec<i64>) {
    let by = |kind: &str| {
        frames
            .iter()
            .filter(|f| f["type"] == kind)
            .map(|f| f["ref"].as_i64().unwrap())
            .collect()
    };
    for f in frames.iter().filter(|f| f["type"] == "error") {
        assert_eq!(f["code"], "unavailable", "{f}");
    }
    (by("ack"), by("error"))
}

#[test]
fn a_job_that_breaks_fails_alone_and_its_batch_is_kept() {
    let mut s = FileStore::new("one-job");
    s.store.apply(vec![room(1, "sala")]);
    // ABORT undoes the statement; ROLLBACK makes SQLite cancel the whole transaction.
    s.store
        .conn
        .execute_batch(
            "CREATE TRIGGER refuse_abort BEFORE INSERT ON messages WHEN NEW.text = 'aborta'
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;
             CREATE TRIGGER refuse_rollback BEFORE INSERT ON messages WHEN NEW.text = 'desfaz'
             BEGIN SELECT RAISE(ROLLBACK, 'refused by the test'); END;",
        )
        .unwrap();
    let (author, inbox) = outbox::channel(10_000);
    let jobs: Vec<StoreJob> = (1..=4000)
        .map(|id| {
            let text = match id {
                1000 => "aborta".to_string(),
                3000 => "desfaz".to_string(),
                _ => format!("m{id}"),
            };
            message(id, &text, &author)
        })
        .collect();
    s.store.apply(jobs);
    let (acks, errors) = answers(&frames(&inbox));
    assert_eq!(errors, vec![1000, 3000]);
    assert_eq!(acks.len(), 3998);
    assert_eq!(stored_texts(&s.store).len(), 3998);
    assert!(
        s.store.health().writable(),
        "a job at fault is not a failing database"
    );
}

#[test]
fn a_full_disk_answers_every_job_and_health_comes_back_with_a_write() {
    let mut s = FileStore::new("full");
    s.store.apply(vec![room(1, "sala")]);
    let (author, inbox) = outbox::channel(10_000);
    s.store.apply(vec![message(1, "antes", &author)]);
    frames(&inbox);
    // The file may not grow: a full disk, as SQLite sees it.
    let pages: i64 = s
        .store
        .conn
        .pragma_query_value(None, "page_count", |r| r.get(0))
        .unwrap();
    s.store
        .conn
        .pragma_update(None, "max_page_count", pages)
        .unwrap();
    let big = "x".repeat(3000);
    let mut jobs: Vec<StoreJob> = (2..=200).map(|id| message(id, &big, &author)).collect();
    jobs.push(history(&author));
    s.store.apply(jobs);
    let replies = frames(&inbox);
    let (acks, errors) = answers(&replies);
    assert_eq!(acks.len() + errors.len(), 199, "every message answered");
    assert!(!errors.is_empty());
    assert!(!s.store.health().writable(), "healthz fails");
    let page = replies
        .iter()
        .find(|f| f["type"] == "history")
        .expect("the history still answered: reading works on a full disk");
    assert_eq!(page["messages"][0]["text"], "antes");

    s.store
        .conn
        .pragma_update(None, "max_page_count", 1_000_000_000)
        .unwrap();
    s.store.apply(vec![message(500, "depois", &author)]);
    assert_eq!(answers(&frames(&inbox)), (vec![500], vec![]));
    assert!(s.store.health().writable(), "healthy again after a write");
}

#[test]
fn a_history_that_cannot_be_read_is_answered_unavailable() {
    let mut s = FileStore::new("unreadable");
    s.store.apply(vec![room(1, "sala")]);
    s.store
        .conn
        .execute_batch("ALTER TABLE messages RENAME TO elsewhere;")
        .unwrap();
    let (reply, inbox) = outbox::channel(16);
    s.store
        .apply(vec![history(&reply), message(1, "m", &reply)]);
    let replies = frames(&inbox);
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert!(replies
        .iter()
        .all(|f| f["type"] == "error" && f["code"] == "unavailable"));
    assert_eq!(replies[0]["ref"], "h");
    assert_eq!(replies[1]["ref"], 1);
}

#[test]
fn a_room_that_cannot_be_kept_is_reported_to_the_hub() {
    let mut s = FileStore::new("room");
    s.store
        .conn
        .execute_batch(
            "CREATE TRIGGER refuse_room BEFORE INSERT ON rooms WHEN NEW.name = 'nao'
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
        )
        .unwrap();
    let done = s.store.apply(vec![room(1, "sim"), room(2, "nao")]);
    assert_eq!(
        done,
        vec![
            StoreDone::RoomStored {
                id: 1,
                stored: true
            },
            StoreDone::RoomStored {
                id: 2,
                stored: false
            }
        ]
    );
}

#[test]
fn reserved_ids_outlive_a_crash_and_a_clean_stop_gives_back_the_rest() {
    let mut s = FileStore::new("ids");
    let loaded = s.store.load(50).unwrap();
    assert_eq!(loaded.last_message_id, 0);
    assert_eq!(loaded.ids_reserved_up_to, ID_BLOCK);
    s.store.apply(vec![room(1, "sala")]);
    let (author, _inbox) = outbox::channel(16);
    s.store.apply(vec![message(5, "guardada", &author)]);

    // A crash: ids up to the reservation may have been seen; the next start is past them.
    s.reopen();
    let loaded = s.store.load(50).unwrap();
    assert_eq!(loaded.last_message_id, ID_BLOCK);
    assert_eq!(loaded.ids_reserved_up_to, 2 * ID_BLOCK);
    assert_eq!(
        s.store.apply(vec![StoreJob::ReserveIds {
            up_to: 3 * ID_BLOCK
        }]),
        vec![StoreDone::IdsReserved {
            up_to: Some(3 * ID_BLOCK)
        }]
    );

    // A clean stop after using up to id ID_BLOCK + 7: the next start goes on from there.
    s.store.apply(vec![StoreJob::Finish {
        last_id: ID_BLOCK + 7,
    }]);
    s.reopen();
    assert_eq!(s.store.load(50).unwrap().last_message_id, ID_BLOCK + 7);
}

#[test]
fn a_message_for_a_room_that_is_not_kept_fails_alone() {
    let mut s = FileStore::new("orphan");
    s.store.apply(vec![room(1, "sala")]);
    let (author, inbox) = outbox::channel(16);
    let mut elsewhere = message(2, "para nenhuma sala", &author);
    if let StoreJob::Append { record, .. } = &mut elsewhere {
        record.room_id = Some(99);
    }
    s.store.apply(vec![
        message(1, "m1", &author),
        elsewhere,
        message(3, "m3", &author),
    ]);
    assert_eq!(answers(&frames(&inbox)), (vec![1, 3], vec![2]));
    assert_eq!(stored_texts(&s.store), ["m1", "m3"]);
}
