//! `amplify`: the memory amplification attack of issue 9 (finding 3). A room holds
//! `--messages` texts of `--chars` four-byte characters ('😀'), so its `joined` carries 50
//! of them (0.8 MB at the defaults) and a `history` of 100 twice that. `--attackers`
//! clients join it, stop reading and repeat `join`, and `--history-attackers` more repeat
//! `history` with limit 100, each paced like papo's default rate limit (`--rate` 20/s,
//! bursts of `--burst` 50), for `--duration` seconds; then they are dropped and the server
//! is watched for `--after` seconds.
//!
//! Reports the server's RSS when idle (room filled, nobody attacking), its peak during the
//! attack (VmHWM, and the highest VmRSS sampled every 100 ms), and its RSS after the
//! attackers are gone. Meanwhile a bystander, a member of the big room, receives a tick
//! from the room's owner every 100 ms in a second room (ticks in the big room would push
//! its long messages out of `joined` and weaken the attack): it must miss none, and it
//! counts the attackers the server drops (their `presence` left in the big room).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::watch;

use super::client::{Conn, Proto, Target};
use super::stats::{round, sample, CpuWindow, Report};
use super::{Env, Opts, Result};

/// Everything the attack's tasks count, read at the end.
#[derive(Default)]
struct Counts {
    /// Commands the attackers sent.
    commands: AtomicU64,
    /// Attackers whose setup (hello, join) failed.
    failed: AtomicU64,
    /// Attackers the bystander saw leave the room, and when the last one did (ms after the
    /// attack began).
    dropped: AtomicU64,
    last_drop_ms: AtomicU64,
    /// Ticks the owner sent and the bystander received.
    ticks_sent: AtomicU64,
    ticks_received: AtomicU64,
    /// Ticks that arrived out of order or twice.
    ticks_disordered: AtomicU64,
}

pub async fn run(env: &Env, o: &Opts) -> Result<Report> {
    if env.target.proto != Proto::Papo {
        return Err("amplify speaks papo's protocol only".into());
    }
    let attackers: usize = o.get("attackers", 3)?;
    let history_attackers: usize = o.get("history-attackers", 1)?;
    let messages: usize = o.get("messages", 100)?;
    let chars: usize = o.get::<usize>("chars", 4000)?.clamp(1, 4000);
    let rate: f64 = o.get("rate", 20.0)?;
    let burst: f64 = o.get("burst", 50.0)?;
    let duration = o.secs("duration", 20.0)?;
    let after = o.secs("after", 60.0)?;
    let room = env.room("amp", 0);
    let tick_room = env.room("tick", 0);

    // The room, filled by its owner, who stays to send the ticks.
    let mut owner = Conn::connect(&env.target).await?;
    request(
        &mut owner,
        json!({"type": "hello", "name": env.user("own", 0)}),
    )
    .await?;
    request(&mut owner, json!({"type": "create", "room": room})).await?;
    request(&mut owner, json!({"type": "join", "room": room})).await?;
    request(&mut owner, json!({"type": "create", "room": tick_room})).await?;
    request(&mut owner, json!({"type": "join", "room": tick_room})).await?;
    let text = "😀".repeat(chars);
    for _ in 0..messages {
        request(
            &mut owner,
            json!({"type": "text", "room": room, "text": text}),
        )
        .await?;
    }
    let mut bystander = Conn::connect(&env.target).await?;
    request(
        &mut bystander,
        json!({"type": "hello", "name": env.user("by", 0)}),
    )
    .await?;
    let joined = request(&mut bystander, json!({"type": "join", "room": room})).await?;
    request(&mut bystander, json!({"type": "join", "room": tick_room})).await?;
    let joined_bytes = joined.to_string().len();
    let history = json!({"type": "history", "room": room, "limit": 100});
    let history_bytes = request(&mut bystander, history.clone())
        .await?
        .to_string()
        .len();

    // Idle: the room is full and nobody attacks. Let the setup's frames drain first.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = env.server_pid.and_then(sample);

    let counts = Arc::new(Counts::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    // The bystander stops only once the last tick is sent, so it can wait for that one.
    let (ticks_done_tx, ticks_done_rx) = watch::channel(false);
    let t0 = Instant::now();
    let watcher = tokio::spawn(watch_room(
        bystander,
        room.clone(),
        t0,
        counts.clone(),
        (stop_rx.clone(), ticks_done_rx),
    ));
    let ticker = tokio::spawn(tick(owner, tick_room, counts.clone(), stop_rx.clone()));
    let peak_rss = Arc::new(AtomicU64::new(0));
    let sampler = tokio::spawn(sample_peak(
        env.server_pid,
        peak_rss.clone(),
        stop_rx.clone(),
    ));
    let cpu = CpuWindow::start(env.server_pid);
    let join = json!({"type": "join", "room": room}).to_string();
    let history = history.to_string();
    let tasks: Vec<_> = (0..attackers + history_attackers)
        .map(|i| {
            let command = if i < attackers { &join } else { &history };
            tokio::spawn(attack(
                env.target.clone(),
                env.user("x", i),
                room.clone(),
                command.clone(),
                (rate, burst),
                counts.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(duration).await;
    let cpu_rows = cpu.finish("attack_");
    let _ = stop_tx.send(true);
    // Each attacker drops its connection as it ends.
    for t in tasks {
        let _ = t.await;
    }
    let dropped_at = Instant::now();
    let _ = sampler.await;
    let peak = env.server_pid.and_then(sample);
    let ticks_ok = ticker.await.unwrap_or(false);
    let _ = ticks_done_tx.send(true);
    let watched = watcher.await.unwrap_or(false);

    // After: how much of the peak the server gives back, and how soon.
    let mut timeline = Vec::new();
    let mut last = None;
    while dropped_at.elapsed() < after {
        tokio::time::sleep(Duration::from_secs(1).min(after)).await;
        last = env.server_pid.and_then(sample);
        if let Some(s) = last {
            timeline.push((dropped_at.elapsed().as_secs(), s.rss_kib));
        }
    }

    let mib = |kib: u64| round(kib as f64 / 1024.0, 1);
    let mut r = env.report("amplify");
    r.add("attackers", attackers);
    r.add("history_attackers", history_attackers);
    r.add("messages", messages);
    r.add("joined_bytes", joined_bytes);
    r.add("history_bytes", history_bytes);
    r.add("attack_s", duration.as_secs_f64());
    r.add("attackers_failed", counts.failed.load(Ordering::Relaxed));
    r.add("commands_sent", counts.commands.load(Ordering::Relaxed));
    r.add("attackers_dropped", counts.dropped.load(Ordering::Relaxed));
    r.add(
        "last_drop_s",
        round(
            counts.last_drop_ms.load(Ordering::Relaxed) as f64 / 1000.0,
            2,
        ),
    );
    let sent = counts.ticks_sent.load(Ordering::Relaxed);
    let received = counts.ticks_received.load(Ordering::Relaxed);
    r.add("bystander_ticks_sent", sent);
    r.add("bystander_missing", sent.saturating_sub(received));
    r.add(
        "bystander_disordered",
        counts.ticks_disordered.load(Ordering::Relaxed),
    );
    if !(ticks_ok && watched) {
        r.notes
            .push("the owner or the bystander lost its connection".into());
    }
    if let (Some(idle), Some(peak)) = (idle, peak) {
        let sampled = peak_rss.load(Ordering::Relaxed);
        r.add("server_rss_idle_mib", mib(idle.rss_kib));
        r.add("server_hwm_mib", mib(peak.hwm_kib));
        r.add("server_rss_peak_sampled_mib", mib(sampled));
        r.add(
            "peak_above_idle_mib",
            mib(peak.hwm_kib.saturating_sub(idle.rss_kib)),
        );
        if let Some(last) = last {
            r.add("after_s", after.as_secs_f64());
            r.add("server_rss_after_mib", mib(last.rss_kib));
            r.add(
                "after_above_idle_mib",
                round((last.rss_kib as f64 - idle.rss_kib as f64) / 1024.0, 1),
            );
        }
    }
    r.extend(cpu_rows);
    if !timeline.is_empty() {
        let points: Vec<String> = timeline
            .iter()
            .filter(|(s, _)| *s <= 5 || s % 10 == 0)
            .map(|(s, kib)| format!("{s}s {}", mib(*kib)))
            .collect();
        r.notes.push(format!(
            "RSS MiB after the attackers left: {}",
            points.join(", ")
        ));
    }
    Ok(r)
}

/// Sends `command` (a JSON object) with a fresh `ref` and returns the reply carrying it,
/// reading past everything else. A `rate_limited` reply is waited out and sent again;
/// another error fails.
async fn request(conn: &mut Conn, mut command: Value) -> Result<Value> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    loop {
        let reference = NEXT.fetch_add(1, Ordering::Relaxed);
        command["ref"] = json!(reference);
        conn.send_raw(command.to_string()).await?;
        let reply = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(frame) = conn.recv().await {
                let v: Value = serde_json::from_str(&frame?)?;
                if v["ref"] == reference {
                    return Ok(v);
                }
            }
            Err::<Value, super::client::Error>("closed while waiting for a reply".into())
        })
        .await
        .map_err(|_| format!("no reply to {}", command["type"]))??;
        match reply["code"].as_str() {
            None => return Ok(reply),
            Some("rate_limited") => tokio::time::sleep(Duration::from_millis(200)).await,
            Some(_) => return Err(format!("{} failed: {reply}", command["type"]).into()),
        }
    }
}

/// One attacker: joins, then never reads again and sends `command` as fast as a token
/// bucket of `rate` a second and `burst` allows, until told to stop; its connection is
/// dropped when it returns.
async fn attack(
    target: Target,
    name: String,
    room: String,
    command: String,
    (rate, burst): (f64, f64),
    counts: Arc<Counts>,
    mut stop: watch::Receiver<bool>,
) {
    let setup = async {
        let mut conn = Conn::connect(&target).await?;
        request(&mut conn, json!({"type": "hello", "name": name})).await?;
        request(&mut conn, json!({"type": "join", "room": room})).await?;
        Ok::<_, super::client::Error>(conn)
    };
    let Ok(mut conn) = setup.await else {
        counts.failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let mut tokens = burst;
    let mut refilled = Instant::now();
    loop {
        let now = Instant::now();
        tokens = (tokens + now.duration_since(refilled).as_secs_f64() * rate).min(burst);
        refilled = now;
        let wait = if tokens >= 1.0 {
            tokens -= 1.0;
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - tokens) / rate.max(1e-3))
        };
        tokio::select! {
            _ = stop.changed() => return,
            sent = async {
                tokio::time::sleep(wait).await;
                if wait.is_zero() {
                    conn.send_raw(command.clone()).await
                } else {
                    Ok(())
                }
            } => {
                if sent.is_err() {
                    // The server cut the connection; stay idle until the end.
                    let _ = stop.changed().await;
                    return;
                }
                if wait.is_zero() {
                    counts.commands.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// The owner says a numbered tick every 100 ms until told to stop, reading (and
/// discarding) what it gets meanwhile. False if its connection failed.
async fn tick(
    mut owner: Conn,
    room: String,
    counts: Arc<Counts>,
    mut stop: watch::Receiver<bool>,
) -> bool {
    let mut every = tokio::time::interval(Duration::from_millis(100));
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = stop.changed() => return true,
            frame = owner.recv() => if !matches!(frame, Some(Ok(_))) { return false },
            _ = every.tick() => {
                n += 1;
                let text = json!({"type": "text", "room": room, "text": format!("tick {n}")});
                if owner.send_raw(text.to_string()).await.is_err() {
                    return false;
                }
                counts.ticks_sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The bystander reads everything: ticks (which must come in order, none missing) and
/// the attackers' leaves from `room` until the attack is over (leaves after it are the
/// attackers hanging up). Once the ticks are done it waits briefly for the last of them.
/// False if its connection failed.
async fn watch_room(
    mut conn: Conn,
    room: String,
    t0: Instant,
    counts: Arc<Counts>,
    (attack_over, mut ticks_done): (watch::Receiver<bool>, watch::Receiver<bool>),
) -> bool {
    let mut next = 1u64;
    let mut grace: Option<Instant> = None;
    loop {
        if let Some(until) = grace {
            if Instant::now() >= until
                || counts.ticks_received.load(Ordering::Relaxed)
                    >= counts.ticks_sent.load(Ordering::Relaxed)
            {
                return true;
            }
        }
        let frame = tokio::select! {
            _ = ticks_done.changed(), if grace.is_none() => {
                grace = Some(Instant::now() + Duration::from_secs(5));
                continue;
            }
            _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
            frame = conn.recv() => frame,
        };
        let Some(Ok(frame)) = frame else {
            return false;
        };
        let Ok(v) = serde_json::from_str::<Value>(&frame) else {
            continue;
        };
        match v["type"].as_str() {
            Some("message") => {
                let tick = v["text"]
                    .as_str()
                    .and_then(|t| t.strip_prefix("tick "))
                    .and_then(|n| n.parse::<u64>().ok());
                if let Some(n) = tick {
                    counts.ticks_received.fetch_add(1, Ordering::Relaxed);
                    if n != next {
                        counts.ticks_disordered.fetch_add(1, Ordering::Relaxed);
                    }
                    next = n + 1;
                }
            }
            Some("presence") if v["room"] == room.as_str() => {
                let left = v["left"].as_array().map_or(0, Vec::len) as u64;
                if left > 0 && !*attack_over.borrow() {
                    counts.dropped.fetch_add(left, Ordering::Relaxed);
                    counts
                        .last_drop_ms
                        .store(t0.elapsed().as_millis() as u64, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }
}

/// Samples the server's RSS every 100 ms until told to stop, keeping the highest.
async fn sample_peak(pid: Option<u32>, peak: Arc<AtomicU64>, mut stop: watch::Receiver<bool>) {
    let Some(pid) = pid else {
        return;
    };
    loop {
        if let Some(s) = sample(pid) {
            peak.fetch_max(s.rss_kib, Ordering::Relaxed);
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}
