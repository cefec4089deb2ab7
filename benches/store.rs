//! Store benchmark: the sustained rate at which the store thread's code path commits
//! messages to a file (batched transactions, WAL, synchronous FULL) against `:memory:`,
//! and how long `history` takes for the newest 50 messages of a room of a million.
//!
//! Run: `cargo bench --bench store [-- --messages N]`

use papo::outbox;
use papo::protocol::Ref;
use papo::store::{MessageRecord, NewRoom, Store, StoreJob};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Jobs per transaction, as the store thread takes them when busy.
const BATCH: usize = 1024;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let messages: u64 = args
        .iter()
        .position(|a| a == "--messages")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("papo-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("bench.db").to_string_lossy().into_owned();

    let memory_rate = write_rate(":memory:", 200_000);
    let file_rate = write_rate(&file, 200_000);
    let _ = std::fs::remove_file(&file);

    let mut store = Store::open(&file).expect("open");
    create_room(&mut store, 1, "grande");
    create_room(&mut store, 2, "outra");
    let fill_start = Instant::now();
    // Every eleventh message goes to another room, so the big room holds `messages` of
    // its own among others'.
    let total = messages + messages / 10;
    append(&mut store, 1, total, |i| if i % 11 == 0 { 2 } else { 1 });
    let fill = fill_start.elapsed();
    let newest = history_latency(&mut store, 1, None);
    let middle = history_latency(&mut store, 1, Some(messages / 2));

    println!("papo store benchmark ({})", std::env::consts::ARCH);
    println!("{:<44} {:>14}", "what", "figure");
    println!(
        "{:<44} {:>11.0}/s",
        "messages committed, :memory:", memory_rate
    );
    println!(
        "{:<44} {:>11.0}/s",
        "messages committed, file (WAL, sync FULL)", file_rate
    );
    println!(
        "{:<44} {:>14.2}",
        "file rate / memory rate",
        file_rate / memory_rate
    );
    println!(
        "{:<44} {:>12.1} s",
        format!("fill {total} messages ({messages} in one room)"),
        fill.as_secs_f64()
    );
    println!(
        "{:<44} {:>11.3} ms",
        "history newest 50, median",
        ms(newest.0)
    );
    println!("{:<44} {:>11.3} ms", "history newest 50, p99", ms(newest.1));
    println!(
        "{:<44} {:>11.3} ms",
        "history 50 before the middle, median",
        ms(middle.0)
    );
    println!(
        "{{\"bench\":\"store\",\"memory_msgs_per_s\":{memory_rate:.0},\"file_msgs_per_s\":{file_rate:.0},\
         \"room_messages\":{messages},\"history_newest50_median_ms\":{:.3},\"history_newest50_p99_ms\":{:.3},\
         \"history_middle50_median_ms\":{:.3}}}",
        ms(newest.0),
        ms(newest.1),
        ms(middle.0)
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn create_room(store: &mut Store, id: i64, name: &str) {
    store.apply(vec![StoreJob::CreateRoom(NewRoom {
        id,
        name: name.into(),
        key: name.into(),
        password_hash: None,
        creator: "bench".into(),
        created_at: 0,
    })]);
}

/// Appends `count` messages in batches; `room_of(i)` picks each one's room.
fn append(store: &mut Store, first_id: u64, count: u64, room_of: impl Fn(u64) -> i64) {
    let sender: Arc<str> = "Ana".into();
    // No ack is asked for, so nothing reaches this queue unless a write fails.
    let (author, _inbox) = outbox::channel(16);
    let mut id = first_id;
    while id < first_id + count {
        let end = (id + BATCH as u64).min(first_id + count);
        let jobs = (id..end)
            .map(|i| StoreJob::Append {
                record: MessageRecord {
                    id: i,
                    room_id: Some(room_of(i)),
                    sender: sender.clone(),
                    recipient: None,
                    sender_account: None,
                    recipient_account: None,
                    text: format!("mensagem número {i}, com um pouco de texto para ter o tamanho de uma frase"),
                    ts: 1_764_000_000_000 + i,
                    files: Vec::new(),
                },
                author: author.clone(),
                ack: None,
            })
            .collect();
        store.apply(jobs);
        id = end;
    }
}

/// Messages a second committed through `Store::apply`, batch by batch.
fn write_rate(path: &str, count: u64) -> f64 {
    let _ = std::fs::remove_file(path);
    let mut store = Store::open(path).expect("open");
    create_room(&mut store, 1, "sala");
    let start = Instant::now();
    append(&mut store, 1, count, |_| 1);
    count as f64 / start.elapsed().as_secs_f64()
}

/// (median, p99) of a `history` of 50 answered by the store, reply encoded and queued.
fn history_latency(store: &mut Store, room_id: i64, before: Option<u64>) -> (Duration, Duration) {
    let (outbox, inbox) = outbox::channel(16);
    let mut times: Vec<Duration> = (0..200)
        .map(|i| {
            let start = Instant::now();
            store.apply(vec![StoreJob::History {
                room_id,
                room_name: "grande".into(),
                before,
                limit: 50,
                reference: Some(Ref::Int(i)),
                reply: outbox.clone(),
            }]);
            let reply = inbox.try_recv().expect("a history reply");
            let elapsed = start.elapsed();
            assert!(
                matches!(reply, outbox::Outbound::Frame(f) if f.json().contains("\"messages\":[{"))
            );
            elapsed
        })
        .collect();
    times.sort();
    (times[times.len() / 2], times[times.len() * 99 / 100])
}
