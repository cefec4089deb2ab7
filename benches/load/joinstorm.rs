//! `joinstorm`: N clients connect, say hello and join one room as fast as they can (at most
//! `--concurrency` setups in flight); the time until all are in and presence has settled.
//!
//! Each client keeps a view of the room: the names it has been told of (its `joined.members`
//! snapshot, capped at 100 by papo's protocol, then `presence` joined/left applied as set
//! operations) and the latest `member_count` (from `joined`, then from each `presence`).
//! "Settled", for papo's protocol: every client's latest `member_count` equals N (a client
//! that joined after the first 100 can never be told the names of those between the first
//! 100 and itself, so a full name set is not the criterion). For Socket.IO peers, whose
//! events carry no count and whose `joined.members` is the full list: every client's name
//! set has N names. The report adds how many names clients know (min and median) and how
//! many frames the storm cost them: the quadratic term that presence batching removes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Semaphore};

use super::client::{Event, Proto, Target};
use super::stats::{percentile, round, CpuWindow, Report};
use super::{wait_until, Env, Failures, Opts, Result};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    Storm,
    Snapshot,
    Stop,
}

#[derive(Default)]
struct Shared {
    snapshots: AtomicU64,
    joined: AtomicU64,
    settled: AtomicU64,
    frames: AtomicU64,
    presence: AtomicU64,
}

/// What one client knows when the storm is over.
#[derive(Clone, Copy, Default)]
struct View {
    known: usize,
    member_count: u64,
}

pub async fn run(env: &Env, o: &Opts) -> Result<Report> {
    let n: usize = o.get("clients", 5000)?;
    let timeout = o.secs("timeout", 120.0)?;
    let room = env.room("storm", 0);
    let owner = super::client::create_rooms(
        &env.target,
        &env.user("own", 0),
        std::slice::from_ref(&room),
    )
    .await?;
    let sh = Arc::new(Shared::default());
    let fails = Arc::new(Failures::default());
    let sem = Arc::new(Semaphore::new(env.concurrency));
    let (stop_tx, stop_rx) = watch::channel(Stage::Storm);

    let cpu = CpuWindow::start(env.server_pid);
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            tokio::spawn(client(
                env.target.clone(),
                env.user("j", i),
                room.clone(),
                n,
                sem.clone(),
                sh.clone(),
                fails.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    let all_in = wait_until(timeout, || {
        sh.joined.load(Ordering::Relaxed) + fails.n() >= n as u64
    })
    .await;
    let joined_s = t0.elapsed().as_secs_f64();
    let settled = fails.n() == 0
        && all_in
        && wait_until(timeout.saturating_sub(t0.elapsed()), || {
            sh.settled.load(Ordering::Relaxed) >= n as u64
        })
        .await;
    let settled_s = t0.elapsed().as_secs_f64();
    let cpu_rows = cpu.finish("");
    // Views are taken while every connection is still open (closing them makes leaves).
    let _ = stop_tx.send(Stage::Snapshot);
    let in_room = sh.joined.load(Ordering::Relaxed);
    wait_until(Duration::from_secs(30), || {
        sh.snapshots.load(Ordering::Relaxed) >= in_room
    })
    .await;
    let _ = stop_tx.send(Stage::Stop);
    let mut views = Vec::with_capacity(n);
    for t in tasks {
        if let Ok(Some(v)) = t.await {
            views.push(v);
        }
    }
    owner.abort();

    let mut known: Vec<u64> = views.iter().map(|v| v.known as u64).collect();
    known.sort_unstable();
    let mut r = env.report("joinstorm");
    r.add("clients", n);
    r.add("concurrency", env.concurrency);
    r.add("joined", sh.joined.load(Ordering::Relaxed));
    r.add("failed", fails.n());
    r.add("all_joined_s", round(joined_s, 3));
    r.add("settled", settled);
    r.add("settled_clients", sh.settled.load(Ordering::Relaxed));
    r.add(
        "settled_s",
        if settled {
            round(settled_s, 3).into()
        } else {
            serde_json::Value::Null
        },
    );
    r.add("frames_after_joined", sh.frames.load(Ordering::Relaxed));
    r.add("presence_events", sh.presence.load(Ordering::Relaxed));
    r.add(
        "presence_per_client",
        round(
            sh.presence.load(Ordering::Relaxed) as f64 / n.max(1) as f64,
            1,
        ),
    );
    r.add("known_names_min", known.first().copied().unwrap_or(0));
    r.add("known_names_median", percentile(&known, 50.0));
    r.add(
        "member_count_min",
        views.iter().map(|v| v.member_count).min().unwrap_or(0),
    );
    r.extend(cpu_rows);
    if fails.n() > 0 {
        r.notes.push(fails.summary());
    }
    Ok(r)
}

/// The client's index if `name` is one of this storm's (`j<tag>-<i>`).
fn index_of(name: &str, prefix: &str) -> Option<usize> {
    name.strip_prefix(prefix)?.parse().ok()
}

#[allow(clippy::too_many_arguments)]
async fn client(
    target: Target,
    name: String,
    room: String,
    n: usize,
    sem: Arc<Semaphore>,
    sh: Arc<Shared>,
    fails: Arc<Failures>,
    mut stage: watch::Receiver<Stage>,
) -> Option<View> {
    let prefix = match name.rfind('-') {
        Some(i) => name[..=i].to_string(),
        None => String::new(),
    };
    let (mut conn, joined) = super::join_member(&target, &name, &room, &sem, &fails).await?;
    sh.joined.fetch_add(1, Ordering::Relaxed);
    let proto = conn.proto;
    // Names known, as a bitset over client indices.
    let mut bits = vec![0u64; n.div_ceil(64)];
    let mut known = 0usize;
    let mut count = 0u64;
    // Adds or removes a name; returns the change in the number known.
    let apply = |bits: &mut [u64], who: &str, add: bool| -> isize {
        let Some(i) = index_of(who, &prefix).filter(|&i| i < n) else {
            return 0;
        };
        let (w, b) = (i / 64, 1u64 << (i % 64));
        if add && bits[w] & b == 0 {
            bits[w] |= b;
            1
        } else if !add && bits[w] & b != 0 {
            bits[w] &= !b;
            -1
        } else {
            0
        }
    };
    if let Some(ev) = Event::parse(proto, &joined) {
        for m in ev.members.iter().flatten() {
            known = known.wrapping_add_signed(apply(&mut bits, m, true));
        }
        count = ev.member_count.unwrap_or(0);
    }
    let is_settled = |count: u64, known: usize| match proto {
        Proto::Papo => count == n as u64,
        Proto::SocketIo => known == n,
    };
    let mut settled = false;
    let mut frames = 0u64;
    let mut presence = 0u64;
    let mut snapshot = None;
    loop {
        if !settled && is_settled(count, known) {
            settled = true;
            sh.settled.fetch_add(1, Ordering::Relaxed);
        }
        tokio::select! {
            frame = conn.recv() => {
                let Some(Ok(frame)) = frame else { break };
                frames += 1;
                let Some(ev) = Event::parse(proto, &frame) else { continue };
                if ev.kind != "presence" {
                    continue;
                }
                presence += 1;
                for m in ev.joined.iter().flatten() {
                    known = known.wrapping_add_signed(apply(&mut bits, m, true));
                }
                for m in ev.left.iter().flatten() {
                    known = known.wrapping_add_signed(apply(&mut bits, m, false));
                }
                if let Some(c) = ev.member_count {
                    count = c;
                }
            }
            changed = stage.changed() => {
                let now = *stage.borrow_and_update();
                if changed.is_err() || now == Stage::Stop {
                    break;
                }
                if now == Stage::Snapshot && snapshot.is_none() {
                    snapshot = Some(View { known, member_count: count });
                    sh.frames.fetch_add(frames, Ordering::Relaxed);
                    sh.presence.fetch_add(presence, Ordering::Relaxed);
                    sh.snapshots.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    snapshot
}
