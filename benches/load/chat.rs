//! The chatting scenarios: `fanout` (one room, N members, S senders) and `rooms` (many small
//! rooms with a total message rate). Both measure deliveries/s, send-to-receipt latency,
//! and deliveries missing after a drain.
//!
//! Each message's text is `t:<sender>:<seq>:<unix nanos at send>`, so a receiver computes
//! latency with no bookkeeping. Every member counts a message as delivered when its id is
//! above the last id it saw in that room (the protocol delivers a room's messages in id
//! order), and as a duplicate otherwise. Expected deliveries = messages sent into a room ×
//! that room's members (the sender included); missing = expected − delivered once the
//! drain ends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Semaphore};
use tokio::time::MissedTickBehavior;

use super::client::{Cmd, Conn, Event, Target};
use super::stats::{add_latency, round, CpuWindow, Report};
use super::{quiesce, unix_nanos, wait_until, Env, Failures, Opts, Result};

/// The shape of a chat run.
#[derive(Clone, Debug)]
pub struct ChatParams {
    pub rooms: usize,
    /// Members per room.
    pub members: usize,
    /// Senders per room (the first `senders` members).
    pub senders: usize,
    /// Messages per second per sender; 0 = closed loop (send again on receipt of your own).
    pub rate: f64,
    pub duration: Duration,
    /// How long to wait after the run for outstanding deliveries.
    pub drain: Duration,
}

pub async fn fanout(env: &Env, o: &Opts) -> Result<Report> {
    let p = ChatParams {
        rooms: 1,
        members: o.get("members", 1000)?,
        senders: o.get("senders", 10)?,
        rate: o.get("rate", 5.0)?,
        duration: o.secs("duration", 10.0)?,
        drain: o.secs("drain", 10.0)?,
    };
    chat(env, "fanout", p).await
}

pub async fn rooms(env: &Env, o: &Opts) -> Result<Report> {
    let rooms: usize = o.get("rooms", 100)?;
    let members: usize = o.get("members", 10)?;
    let senders: usize = o.get::<usize>("senders", members)?.min(members);
    let total: f64 = o.get("rate", 5000.0)?;
    let p = ChatParams {
        rooms,
        members,
        senders,
        rate: total / (rooms * senders).max(1) as f64,
        duration: o.secs("duration", 10.0)?,
        drain: o.secs("drain", 10.0)?,
    };
    chat(env, "rooms", p).await
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Debug)]
enum Phase {
    Setup,
    Run,
    Drain,
    Stop,
}

#[derive(Default)]
struct Counters {
    ready: AtomicU64,
    /// Senders that have seen the run end and will send no more.
    done_sending: AtomicU64,
    frames: AtomicU64,
    delivered: AtomicU64,
    duplicates: AtomicU64,
    errors: AtomicU64,
    closed: AtomicU64,
    unparsed: AtomicU64,
}

struct Member {
    target: Target,
    name: String,
    room_name: String,
    room: usize,
    /// Global sender number, if this member sends.
    sender: Option<usize>,
    /// Start offset of an open-loop sender's ticks, to spread senders over a period.
    offset: Duration,
}

pub async fn chat(env: &Env, scenario: &str, p: ChatParams) -> Result<Report> {
    chat_with(env, scenario, p, || {}).await
}

/// `chat`, calling `run_started` the moment the measured run begins (after setup), so a
/// scenario can do something else during exactly that time (`pwflood` attacks).
pub async fn chat_with(
    env: &Env,
    scenario: &str,
    p: ChatParams,
    run_started: impl FnOnce(),
) -> Result<Report> {
    let total = p.rooms * p.members;
    let room_names: Vec<String> = (0..p.rooms).map(|r| env.room("chat", r)).collect();
    let owner = super::client::create_rooms(&env.target, &env.user("own", 0), &room_names).await?;

    let c = Arc::new(Counters::default());
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..p.rooms).map(|_| AtomicU64::new(0)).collect());
    let fails = Arc::new(Failures::default());
    let closes = Arc::new(Failures::default());
    let sem = Arc::new(Semaphore::new(env.concurrency));
    let (phase_tx, phase_rx) = watch::channel(Phase::Setup);
    let period = if p.rate > 0.0 {
        Duration::from_secs_f64(1.0 / p.rate)
    } else {
        Duration::ZERO
    };
    let n_senders = p.rooms * p.senders;
    let mut tasks = Vec::with_capacity(total);
    let t_setup = Instant::now();
    for i in 0..p.members {
        for (r, room_name) in room_names.iter().enumerate() {
            let sender = (i < p.senders).then_some(r * p.senders + i);
            let m = Member {
                target: env.target.clone(),
                name: env.user("m", r * p.members + i),
                room_name: room_name.clone(),
                room: r,
                sender,
                offset: period.mul_f64(sender.unwrap_or(0) as f64 / n_senders.max(1) as f64),
            };
            tasks.push(tokio::spawn(member(
                m,
                p.rate,
                period,
                sem.clone(),
                c.clone(),
                sent.clone(),
                fails.clone(),
                closes.clone(),
                phase_rx.clone(),
            )));
        }
    }
    let all_ready = wait_until(Duration::from_secs(300), || {
        c.ready.load(Ordering::Relaxed) + fails.n() >= total as u64
    })
    .await;
    if fails.n() > 0 || !all_ready {
        let _ = phase_tx.send(Phase::Stop);
        owner.abort();
        return Err(format!(
            "setup: {} of {total} joined; {}",
            c.ready.load(Ordering::Relaxed),
            fails.summary()
        )
        .into());
    }
    let setup_s = t_setup.elapsed().as_secs_f64();
    // Let presence settle so the run measures messages, not the joins.
    quiesce(
        &c.frames,
        Duration::from_millis(300),
        Duration::from_secs(60),
    )
    .await;

    let cpu = CpuWindow::start(env.server_pid);
    let t0 = Instant::now();
    let _ = phase_tx.send(Phase::Run);
    run_started();
    tokio::time::sleep(p.duration).await;
    let _ = phase_tx.send(Phase::Drain);
    let run_s = t0.elapsed().as_secs_f64();
    let delivered_run = c.delivered.load(Ordering::Relaxed);
    let cpu_rows = cpu.finish("");
    // Only count what is expected once no sender can add to it.
    wait_until(Duration::from_secs(10), || {
        c.done_sending.load(Ordering::Relaxed) >= n_senders as u64
    })
    .await;
    let expected = || -> u64 {
        sent.iter().map(|s| s.load(Ordering::Relaxed)).sum::<u64>() * p.members as u64
    };
    let t_drain = Instant::now();
    wait_until(p.drain, || {
        c.delivered.load(Ordering::Relaxed) >= expected()
    })
    .await;
    let drain_s = t_drain.elapsed().as_secs_f64();
    let _ = phase_tx.send(Phase::Stop);
    let mut lat = Vec::new();
    for t in tasks {
        if let Ok(mut v) = t.await {
            lat.append(&mut v);
        }
    }
    owner.abort();

    let sent_total: u64 = sent.iter().map(|s| s.load(Ordering::Relaxed)).sum();
    let delivered = c.delivered.load(Ordering::Relaxed);
    let mut rows = env.report(scenario);
    rows.add("rooms", p.rooms);
    rows.add("members_per_room", p.members);
    rows.add("senders_per_room", p.senders);
    rows.add(
        "rate_per_sender",
        if p.rate > 0.0 {
            format!("{:.2}", p.rate)
        } else {
            "closed loop".into()
        },
    );
    rows.add("duration_s", round(run_s, 2));
    rows.add("setup_s", round(setup_s, 2));
    rows.add("sent", sent_total);
    rows.add("sent_per_s", round(sent_total as f64 / run_s, 1));
    rows.add("deliveries", delivered);
    rows.add("deliveries_per_s", round(delivered_run as f64 / run_s, 1));
    rows.add(
        "missing",
        (sent_total * p.members as u64).saturating_sub(delivered),
    );
    rows.add("duplicates", c.duplicates.load(Ordering::Relaxed));
    rows.add("errors", c.errors.load(Ordering::Relaxed));
    rows.add("closed_early", c.closed.load(Ordering::Relaxed));
    rows.add("drain_s", round(drain_s, 2));
    add_latency(&mut rows, "latency_", &mut lat, false);
    rows.add("latency_samples", lat.len());
    rows.extend(cpu_rows);
    if closes.n() > 0 {
        rows.notes
            .push(format!("closed early: {}", closes.summary()));
    }
    Ok(rows)
}

#[allow(clippy::too_many_arguments)]
async fn member(
    m: Member,
    rate: f64,
    period: Duration,
    sem: Arc<Semaphore>,
    c: Arc<Counters>,
    sent: Arc<Vec<AtomicU64>>,
    fails: Arc<Failures>,
    closes: Arc<Failures>,
    mut phase: watch::Receiver<Phase>,
) -> Vec<u64> {
    let Some((mut conn, _)) =
        super::join_member(&m.target, &m.name, &m.room_name, &sem, &fails).await
    else {
        return Vec::new();
    };
    c.ready.fetch_add(1, Ordering::Relaxed);

    let proto = conn.proto;
    let mut lat: Vec<u64> = Vec::new();
    let mut last_id = 0u64;
    let mut seq = 0u64;
    let mut now_phase = Phase::Setup;
    let mut ticker = tokio::time::interval(Duration::from_secs(3600));
    let mut ticking = false;
    let closed_loop = rate <= 0.0;
    let me = m.sender.unwrap_or(usize::MAX);
    let mut frames_seen = 0u64;

    loop {
        tokio::select! {
            frame = conn.recv() => {
                let frame = match frame {
                    Some(Ok(f)) => f,
                    _ => {
                        if now_phase != Phase::Stop {
                            c.closed.fetch_add(1, Ordering::Relaxed);
                            closes.add(conn.ended.as_deref().unwrap_or("?"));
                        }
                        if m.sender.is_some() && now_phase < Phase::Drain {
                            c.done_sending.fetch_add(1, Ordering::Relaxed);
                        }
                        break;
                    }
                };
                if now_phase == Phase::Setup {
                    c.frames.fetch_add(conn.frames - frames_seen, Ordering::Relaxed);
                    frames_seen = conn.frames;
                }
                let Some(ev) = Event::parse(proto, &frame) else {
                    c.unparsed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                match ev.kind.as_ref() {
                    "message" => {
                        if ev.id > last_id || (ev.id == 0 && last_id == 0) {
                            last_id = ev.id;
                            c.delivered.fetch_add(1, Ordering::Relaxed);
                        } else {
                            c.duplicates.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        let Some((s, q, t)) = ev.text.as_deref().and_then(parse_text) else {
                            c.unparsed.fetch_add(1, Ordering::Relaxed);
                            continue;
                        };
                        lat.push(unix_nanos().saturating_sub(t) / 1000);
                        if closed_loop && s == me && q == seq && now_phase == Phase::Run {
                            seq += 1;
                            if send_text(&mut conn, &m, seq, &sent).await.is_err() {
                                break;
                            }
                        }
                    }
                    "error" => {
                        c.errors.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
            changed = phase.changed() => {
                if changed.is_err() {
                    break;
                }
                now_phase = *phase.borrow_and_update();
                match now_phase {
                    Phase::Run if m.sender.is_some() => {
                        if closed_loop {
                            if send_text(&mut conn, &m, seq, &sent).await.is_err() {
                                break;
                            }
                        } else {
                            ticker = tokio::time::interval_at(tokio::time::Instant::now() + m.offset, period);
                            ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
                            ticking = true;
                        }
                    }
                    Phase::Drain => {
                        ticking = false;
                        if m.sender.is_some() {
                            c.done_sending.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Phase::Stop => break,
                    _ => {}
                }
            }
            _ = ticker.tick(), if ticking => {
                if send_text(&mut conn, &m, seq, &sent).await.is_err() {
                    break;
                }
                seq += 1;
            }
        }
    }
    lat
}

async fn send_text(conn: &mut Conn, m: &Member, seq: u64, sent: &[AtomicU64]) -> Result<()> {
    let text = format!("t:{}:{}:{}", m.sender.unwrap_or(0), seq, unix_nanos());
    sent[m.room].fetch_add(1, Ordering::Relaxed);
    conn.send(Cmd::Text(&m.room_name, &text)).await
}

/// `t:<sender>:<seq>:<nanos>` → (sender, seq, nanos).
fn parse_text(t: &str) -> Option<(usize, u64, u64)> {
    let mut it = t.strip_prefix("t:")?.split(':');
    let s = it.next()?.parse().ok()?;
    let q = it.next()?.parse().ok()?;
    let n = it.next()?.parse().ok()?;
    Some((s, q, n))
}
