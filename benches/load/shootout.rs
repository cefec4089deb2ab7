//! `shootout`: the hashrocket websocket-shootout method on one room. The room grows step
//! by step (`--start`, `--step`, `--max` members); at each step, once every new member has
//! joined and presence has gone quiet, `--broadcasts` messages are sent, `--in-flight` at a
//! time, by the first members in turn. A broadcast's time runs from its send until its last
//! member (the sender included) has received it. The result is the largest room whose p95
//! stays under `--limit-ms`; the run stops at the first step over it, or when a broadcast
//! is not complete within `--timeout` seconds.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::{mpsc, watch, Semaphore};

use super::client::{Cmd, Event, Target};
use super::stats::{percentile, round, CpuWindow, Report};
use super::{quiesce, wait_until, Env, Failures, Opts, Result};

struct Shared {
    ready: AtomicU64,
    frames: AtomicU64,
    /// Per broadcast (global number): members that have it, and how many must.
    got: Vec<AtomicU32>,
    want: Vec<AtomicU32>,
    done: mpsc::UnboundedSender<(usize, Instant)>,
}

pub async fn run(env: &Env, o: &Opts) -> Result<Report> {
    let start: usize = o.get("start", 500)?;
    let step: usize = o.get("step", 500)?;
    let max: usize = o.get("max", 10_000)?;
    let broadcasts: usize = o.get("broadcasts", 100)?;
    let in_flight: usize = o.get::<usize>("in-flight", 4)?.clamp(1, start.max(1));
    let limit_ms: f64 = o.get("limit-ms", 500.0)?;
    let timeout = o.secs("timeout", 10.0)?;
    let mut sizes = Vec::new();
    let mut s = start.max(in_flight);
    while s <= max {
        sizes.push(s);
        s += step.max(1);
    }

    let room = env.room("shoot", 0);
    let owner = super::client::create_rooms(
        &env.target,
        &env.user("own", 0),
        std::slice::from_ref(&room),
    )
    .await?;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let n_total = sizes.len() * broadcasts;
    let sh = Arc::new(Shared {
        ready: AtomicU64::new(0),
        frames: AtomicU64::new(0),
        got: (0..n_total).map(|_| AtomicU32::new(0)).collect(),
        want: (0..n_total).map(|_| AtomicU32::new(u32::MAX)).collect(),
        done: done_tx,
    });
    let fails = Arc::new(Failures::default());
    let sem = Arc::new(Semaphore::new(env.concurrency));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut senders: Vec<mpsc::UnboundedSender<String>> = Vec::new();
    let mut tasks = Vec::new();

    let mut r = env.report("shootout");
    let mut best = 0usize;
    let mut steps = Vec::new();
    let mut k0 = 0usize;
    let mut stopped_by = "max reached".to_string();
    for &size in &sizes {
        let t_grow = Instant::now();
        while tasks.len() < size {
            let i = tasks.len();
            let (tx, rx) = mpsc::unbounded_channel();
            if i < in_flight {
                senders.push(tx);
            }
            tasks.push(tokio::spawn(member(
                env.target.clone(),
                env.user("s", i),
                room.clone(),
                (i < in_flight).then_some(rx),
                sem.clone(),
                sh.clone(),
                fails.clone(),
                stop_rx.clone(),
            )));
        }
        let ok = wait_until(Duration::from_secs(300), || {
            sh.ready.load(Ordering::Relaxed) + fails.n() >= size as u64
        })
        .await;
        if fails.n() > 0 || !ok {
            stopped_by = format!("setup at {size}: {}", fails.summary());
            break;
        }
        quiesce(
            &sh.frames,
            Duration::from_millis(300),
            Duration::from_secs(120),
        )
        .await;
        let grow_s = t_grow.elapsed().as_secs_f64();

        let cpu = CpuWindow::start(env.server_pid);
        let mut started: Vec<Option<Instant>> = vec![None; broadcasts];
        let mut times: Vec<u64> = Vec::with_capacity(broadcasts);
        let mut next = 0usize;
        let mut pending: VecDeque<usize> = VecDeque::new();
        let mut timed_out = false;
        while times.len() < broadcasts {
            while next < broadcasts && pending.len() < in_flight {
                let k = k0 + next;
                sh.want[k].store(size as u32, Ordering::Relaxed);
                started[next] = Some(Instant::now());
                let _ = senders[next % in_flight].send(format!("b:{k}"));
                pending.push_back(next);
                next += 1;
            }
            match tokio::time::timeout(timeout, done_rx.recv()).await {
                Ok(Some((k, at))) if k >= k0 && k < k0 + broadcasts => {
                    let j = k - k0;
                    if let Some(t) = started[j] {
                        times.push(at.saturating_duration_since(t).as_micros() as u64);
                        pending.retain(|&x| x != j);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    timed_out = true;
                    break;
                }
            }
        }
        let cpu_rows = cpu.finish("");
        k0 += broadcasts;
        times.sort_unstable();
        let ms = |us: u64| round(us as f64 / 1000.0, 1);
        let p95 = if timed_out {
            f64::INFINITY
        } else {
            ms(percentile(&times, 95.0))
        };
        let row = |name: &str| {
            cpu_rows
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or(serde_json::Value::Null)
        };
        let (cpu_pct, client_pct) = (row("server_cpu_pct"), row("client_cpu_pct"));
        r.notes.push(format!(
            "room {size:>6}: p50 {:>8} ms  p95 {:>8} ms  max {:>8} ms  cpu server {}% client {}%  (grew in {:.1} s){}",
            ms(percentile(&times, 50.0)),
            if timed_out { "timeout".to_string() } else { p95.to_string() },
            ms(times.last().copied().unwrap_or(0)),
            cpu_pct,
            client_pct,
            grow_s,
            if timed_out { "  broadcast timed out" } else { "" }
        ));
        steps.push(json!({
            "members": size,
            "p50_ms": ms(percentile(&times, 50.0)),
            "p95_ms": if timed_out { serde_json::Value::Null } else { json!(p95) },
            "max_ms": ms(times.last().copied().unwrap_or(0)),
            "server_cpu_pct": cpu_pct,
            "client_cpu_pct": client_pct,
            "timed_out": timed_out,
        }));
        if timed_out {
            stopped_by = format!("a broadcast to {size} members took over {timeout:?}");
            break;
        }
        if p95 >= limit_ms {
            stopped_by = format!("p95 {p95} ms >= {limit_ms} ms at {size} members");
            break;
        }
        best = size;
    }
    let server_now = env.server_pid.and_then(super::stats::sample);
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    owner.abort();
    r.add("broadcasts_per_step", broadcasts);
    r.add("in_flight", in_flight);
    r.add("limit_p95_ms", limit_ms);
    r.add("largest_room_under_limit", best);
    r.add("stopped_by", stopped_by);
    if let Some(s) = server_now {
        r.add("server_rss_mib_at_end", round(s.rss_kib as f64 / 1024.0, 1));
        r.add("server_threads_at_end", s.threads);
    }
    r.add("steps", json!(steps));
    Ok(r)
}

#[allow(clippy::too_many_arguments)]
async fn member(
    target: Target,
    name: String,
    room: String,
    mut outbox: Option<mpsc::UnboundedReceiver<String>>,
    sem: Arc<Semaphore>,
    sh: Arc<Shared>,
    fails: Arc<Failures>,
    mut stop: watch::Receiver<bool>,
) {
    let Some((mut conn, _)) = super::join_member(&target, &name, &room, &sem, &fails).await else {
        return;
    };
    sh.ready.fetch_add(1, Ordering::Relaxed);
    let proto = conn.proto;
    loop {
        tokio::select! {
            frame = conn.recv() => {
                let Some(Ok(frame)) = frame else { break };
                sh.frames.fetch_add(1, Ordering::Relaxed);
                let Some(ev) = Event::parse(proto, &frame) else { continue };
                if ev.kind != "message" {
                    continue;
                }
                let Some(k) = ev.text.as_deref().and_then(|t| t.strip_prefix("b:")).and_then(|k| k.parse::<usize>().ok()) else {
                    continue;
                };
                if k < sh.got.len() {
                    let n = sh.got[k].fetch_add(1, Ordering::Relaxed) + 1;
                    if n == sh.want[k].load(Ordering::Relaxed) {
                        let _ = sh.done.send((k, Instant::now()));
                    }
                }
            }
            text = async { outbox.as_mut()?.recv().await }, if outbox.is_some() => {
                let Some(text) = text else { outbox = None; continue };
                if conn.send(Cmd::Text(&room, &text)).await.is_err() {
                    break;
                }
            }
            _ = stop.changed() => break,
        }
    }
}
