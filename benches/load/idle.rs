//! `idle`: N connections, each identified and joined to a room (`--room-size` members per
//! room, so N / room-size rooms), then left alone. Reports the server's RSS and threads
//! before and after, per connection, and its CPU over `--duration` seconds of idleness.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Semaphore};

use super::client::Target;
use super::stats::{round, sample, CpuWindow, Report};
use super::{quiesce, wait_until, Env, Failures, Opts, Result};

pub async fn run(env: &Env, o: &Opts) -> Result<Report> {
    let n: usize = o.get("clients", 10_000)?;
    let room_size: usize = o.get::<usize>("room-size", 100)?.max(1);
    let duration = o.secs("duration", 10.0)?;
    let n_rooms = n.div_ceil(room_size);
    let rooms: Vec<String> = (0..n_rooms).map(|i| env.room("idle", i)).collect();
    let owner = super::client::create_rooms(&env.target, &env.user("own", 0), &rooms).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let base = env.server_pid.and_then(sample);
    let client_base = sample(0);

    let ready = Arc::new(AtomicU64::new(0));
    let frames = Arc::new(AtomicU64::new(0));
    let fails = Arc::new(Failures::default());
    let sem = Arc::new(Semaphore::new(env.concurrency));
    let (stop_tx, stop_rx) = watch::channel(false);
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            tokio::spawn(member(
                env.target.clone(),
                env.user("i", i),
                rooms[i / room_size].clone(),
                sem.clone(),
                ready.clone(),
                frames.clone(),
                fails.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    let all = wait_until(Duration::from_secs(600), || {
        ready.load(Ordering::Relaxed) + fails.n() >= n as u64
    })
    .await;
    let setup_s = t0.elapsed().as_secs_f64();
    quiesce(
        &frames,
        Duration::from_millis(1000),
        Duration::from_secs(120),
    )
    .await;
    let connected = ready.load(Ordering::Relaxed);

    let loaded = env.server_pid.and_then(sample);
    let cpu = CpuWindow::start(env.server_pid);
    let frames0 = frames.load(Ordering::Relaxed);
    tokio::time::sleep(duration).await;
    let cpu_rows = cpu.finish("idle_");
    let idle_frames = frames.load(Ordering::Relaxed) - frames0;
    let client_now = sample(0);
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    owner.abort();

    let mut r = env.report("idle");
    r.add("clients", n);
    r.add("connected", connected);
    r.add("failed", fails.n());
    r.add("all_connected", all && fails.n() == 0);
    r.add("room_size", room_size);
    r.add("setup_s", round(setup_s, 2));
    if let (Some(b), Some(l)) = (base, loaded) {
        let per = |a: u64, b: u64| round((b as f64 - a as f64) / connected.max(1) as f64, 2);
        r.add("server_rss_base_mib", round(b.rss_kib as f64 / 1024.0, 1));
        r.add("server_rss_loaded_mib", round(l.rss_kib as f64 / 1024.0, 1));
        r.add("server_rss_per_conn_kib", per(b.rss_kib, l.rss_kib));
        r.add("server_threads_base", b.threads);
        r.add("server_threads_loaded", l.threads);
        r.add("server_threads_per_conn", per(b.threads, l.threads));
    }
    if let (Some(b), Some(l)) = (client_base, client_now) {
        r.add("client_rss_mib", round(l.rss_kib as f64 / 1024.0, 1));
        r.add(
            "client_rss_per_conn_kib",
            round(
                (l.rss_kib as f64 - b.rss_kib as f64) / connected.max(1) as f64,
                2,
            ),
        );
    }
    r.add("idle_s", duration.as_secs_f64());
    r.add("idle_frames_received", idle_frames);
    r.extend(cpu_rows);
    if fails.n() > 0 {
        r.notes.push(fails.summary());
    }
    Ok(r)
}

#[allow(clippy::too_many_arguments)]
async fn member(
    target: Target,
    name: String,
    room: String,
    sem: Arc<Semaphore>,
    ready: Arc<AtomicU64>,
    frames: Arc<AtomicU64>,
    fails: Arc<Failures>,
    mut stop: watch::Receiver<bool>,
) {
    let Some((mut conn, _)) = super::join_member(&target, &name, &room, &sem, &fails).await else {
        return;
    };
    ready.fetch_add(1, Ordering::Relaxed);
    loop {
        tokio::select! {
            frame = conn.recv() => {
                if !matches!(frame, Some(Ok(_))) {
                    break;
                }
                frames.fetch_add(1, Ordering::Relaxed);
            }
            _ = stop.changed() => break,
        }
    }
}
