//! `pwflood`: a password-guessing flood beside ordinary chat (issue 9, finding 2).
//!
//! `--attackers` connections, from `--attack-addresses` loopback addresses (127.0.0.2, .3,
//! …, one each by default: the client binds its socket before connecting), send wrong-password joins to the protected
//! rooms at `--attack-rate` a second each for the whole run. Meanwhile (a) a legitimate
//! client on 127.0.0.1 joins a protected room with the right password `--joins` times,
//! spread evenly over the run, each time a room whose password the server has not verified
//! yet, so every one of those joins needs argon2: its join latency is reported; and (b) a
//! busy room chats exactly as `fanout` does (`--members`, `--senders`, `--rate`), its
//! message latency measured the same way. `--attackers 0` is the calm baseline.
//!
//! Without `--url`, papo is started twice on one database file: the first run makes the
//! rooms and stops cleanly (SIGTERM), the second, measured, starts with only their hashes,
//! as after a restart. It runs with the default rate limit (20 commands a second, bursts
//! of 50), which the attackers then meet. With `--url` (and in the smoke test) the rooms
//! are made on the server being driven, whose memory then knows their password:
//! `passwords_cold` in the report says which.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use super::chat::{chat_with, ChatParams};
use super::client::{Conn, Proto, Target};
use super::stats::{round, Report};
use super::{Env, Opts, PapoServer, Result};

/// The rooms' password (what the legitimate client knows).
const PASSWORD: &str = "certa-123";
/// How long any one setup step may take.
const STEP: Duration = Duration::from_secs(30);
/// How long the legitimate client waits for one join's reply before it counts it as lost
/// (and stops: its later joins would only measure the same queue).
const JOIN_PATIENCE: Duration = Duration::from_secs(60);

/// The protected rooms to join, and whether the server has yet to verify their password.
struct Plan {
    rooms: Vec<String>,
    cold: bool,
}

/// What the attackers sent and what came back.
#[derive(Default)]
struct AttackCounts {
    connected: AtomicU64,
    sent: AtomicU64,
    wrong_password: AtomicU64,
    rate_limited: AtomicU64,
    other: AtomicU64,
}

/// The `--url` (or in-process) path: the rooms are made on that server now.
pub async fn run(env: &Env, o: &Opts) -> Result<Report> {
    let rooms = room_names(env, o)?;
    make_rooms(&env.target, &env.user("pwown", 0), &rooms).await?;
    measure(env, o, Plan { rooms, cold: false }).await
}

/// The path without `--url`: two papo runs on one database file (see the module comment).
pub fn standalone(bin: &str, opts: &Opts) -> Result<Report> {
    let dir = std::env::temp_dir().join(format!("papo-pwflood-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("pwflood.db").to_string_lossy().into_owned();
    // The default rate limit (the bench's own papo runs without one); the caller's
    // --server-arg flags may change it; the database file comes last, as it must.
    let mut args: Vec<String> = ["--rate-limit", "20", "--rate-burst", "50"]
        .map(String::from)
        .to_vec();
    args.extend(opts.server_args.iter().cloned());
    args.extend(["--db".to_string(), db]);
    let concurrency = opts.get("concurrency", 64usize)?;
    let rt = super::runtime(opts.get("workers", 1usize)?)?;

    let first = PapoServer::start(bin, &args)?;
    let target = Target::new(&format!("ws://127.0.0.1:{}", first.port), Proto::Papo)?;
    let env = Env::new(target, Some(first.pid()), "papo", concurrency);
    let rooms = room_names(&env, opts)?;
    rt.block_on(make_rooms(&env.target, &env.user("pwown", 0), &rooms))?;
    stop_cleanly(first)?;

    let second = PapoServer::start(bin, &args)?;
    let target = Target::new(&format!("ws://127.0.0.1:{}", second.port), Proto::Papo)?;
    let label = opts.str("label").unwrap_or("papo");
    let env = Env::new(target, Some(second.pid()), label, concurrency);
    eprintln!(
        "load: pwflood against {} (restarted on {}, pid {})",
        env.target.url,
        dir.display(),
        second.pid()
    );
    let report = rt.block_on(measure(&env, opts, Plan { rooms, cold: true }));
    rt.shutdown_timeout(Duration::from_secs(2));
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
    report
}

fn room_names(env: &Env, o: &Opts) -> Result<Vec<String>> {
    let joins = o.get("joins", 5usize)?.max(1);
    Ok((0..joins).map(|i| env.room("pw", i)).collect())
}

/// Creates the protected rooms over one connection.
async fn make_rooms(target: &Target, owner: &str, rooms: &[String]) -> Result<()> {
    let mut c = Conn::connect(target).await?;
    c.send_raw(json!({"type": "hello", "name": owner}).to_string())
        .await?;
    c.expect("welcome", STEP).await?;
    for room in rooms {
        let create = json!({"type": "create", "room": room, "password": PASSWORD});
        c.send_raw(create.to_string()).await?;
        c.expect("created", STEP).await?;
    }
    Ok(())
}

/// SIGTERM, then waits for papo to end: a clean stop stores every room.
fn stop_cleanly(mut server: PapoServer) -> Result<()> {
    std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()?;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(20) {
        if server.child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err("papo did not stop within 20 s of SIGTERM".into())
}

async fn measure(env: &Env, o: &Opts, plan: Plan) -> Result<Report> {
    let attackers: usize = o.get("attackers", 5)?;
    let attack_rate: f64 = o.get("attack-rate", 20.0)?;
    let addresses: usize = o.get("attack-addresses", attackers)?.clamp(1, 250);
    let p = ChatParams {
        rooms: 1,
        members: o.get("members", 200)?,
        senders: o.get("senders", 5)?,
        rate: o.get("rate", 5.0)?,
        duration: o.secs("duration", 20.0)?,
        drain: o.secs("drain", 10.0)?,
    };
    let (go_tx, go_rx) = watch::channel(false);
    let counts = Arc::new(AttackCounts::default());
    let mut attacks = Vec::with_capacity(attackers);
    for i in 0..attackers {
        let from: IpAddr = [127, 0, 0, 2 + (i % addresses) as u8].into();
        attacks.push(tokio::spawn(attacker(
            env.target.clone(),
            from,
            env.user("pwbad", i),
            plan.rooms.clone(),
            attack_rate,
            p.duration,
            go_rx.clone(),
            counts.clone(),
        )));
    }
    let legit = tokio::spawn(legitimate(
        env.target.clone(),
        env.user("pwok", 0),
        plan.rooms.clone(),
        p.duration,
        go_rx,
    ));
    let chat = chat_with(env, "pwflood", p, move || {
        let _ = go_tx.send(true);
    })
    .await;
    for attack in attacks {
        let _ = attack.await;
    }
    let joins = legit.await.map_err(|e| e.to_string())?;
    let mut rows = chat?;
    let joins = joins?;

    rows.add("passwords_cold", plan.cold);
    rows.add("attackers", attackers);
    rows.add("attack_addresses", addresses.min(attackers));
    rows.add(
        "attackers_connected",
        counts.connected.load(Ordering::Relaxed),
    );
    rows.add("attack_rate_per_attacker", attack_rate);
    rows.add("attack_sent", counts.sent.load(Ordering::Relaxed));
    rows.add(
        "attack_wrong_password",
        counts.wrong_password.load(Ordering::Relaxed),
    );
    rows.add(
        "attack_rate_limited",
        counts.rate_limited.load(Ordering::Relaxed),
    );
    rows.add("attack_other", counts.other.load(Ordering::Relaxed));
    let mut sorted = joins.latencies.clone();
    sorted.sort_by(f64::total_cmp);
    rows.add("legit_joins", joins.latencies.len());
    rows.add("legit_join_errors", joins.errors.len());
    rows.notes.extend(joins.errors.iter().take(3).cloned());
    rows.add(
        "legit_join_ms",
        joins
            .latencies
            .iter()
            .map(|ms| format!("{ms:.0}"))
            .collect::<Vec<_>>()
            .join(" "),
    );
    rows.add(
        "legit_join_median_ms",
        round(sorted.get(sorted.len() / 2).copied().unwrap_or(0.0), 1),
    );
    rows.add(
        "legit_join_max_ms",
        round(sorted.last().copied().unwrap_or(0.0), 1),
    );
    Ok(rows)
}

/// Waits until the measured run starts; false if it never will.
async fn wait_for_go(go: &mut watch::Receiver<bool>) -> bool {
    while !*go.borrow_and_update() {
        if go.changed().await.is_err() {
            return false;
        }
    }
    true
}

/// One attacker: wrong-password joins at `rate` a second for `duration`, every reply
/// counted.
#[allow(clippy::too_many_arguments)]
async fn attacker(
    target: Target,
    from: IpAddr,
    name: String,
    rooms: Vec<String>,
    rate: f64,
    duration: Duration,
    mut go: watch::Receiver<bool>,
    counts: Arc<AttackCounts>,
) {
    let setup = async {
        let mut conn = Conn::connect_from(&target, Some(from)).await?;
        conn.send_raw(json!({"type": "hello", "name": name}).to_string())
            .await?;
        conn.expect("welcome", STEP).await?;
        Ok::<_, super::client::Error>(conn)
    };
    let mut conn = match setup.await {
        Ok(conn) => conn,
        Err(e) => {
            eprintln!("pwflood: attacker from {from} could not start: {e}");
            return;
        }
    };
    counts.connected.fetch_add(1, Ordering::Relaxed);
    if !wait_for_go(&mut go).await {
        return;
    }
    // Replies carry the guess's ref; other frames (`room_added`) are not answers.
    let count = |frame: &str| {
        let v: Value = serde_json::from_str(frame).unwrap_or_default();
        if v.get("ref").is_none() {
            return;
        }
        let counter = match (v["type"].as_str(), v["code"].as_str()) {
            (Some("error"), Some("wrong_password")) => &counts.wrong_password,
            (Some("error"), Some("rate_limited")) => &counts.rate_limited,
            _ => &counts.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    };
    let end = tokio::time::Instant::now() + duration;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.001)));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut k = 0usize;
    loop {
        tokio::select! {
            at = tick.tick() => {
                if at >= end {
                    break;
                }
                let guess = json!({
                    "type": "join",
                    "room": rooms[k % rooms.len()],
                    "password": format!("errada-{k}"),
                    "ref": k,
                });
                if conn.send_raw(guess.to_string()).await.is_err() {
                    return;
                }
                counts.sent.fetch_add(1, Ordering::Relaxed);
                k += 1;
            }
            frame = conn.recv() => match frame {
                Some(Ok(frame)) => count(&frame),
                _ => return,
            },
        }
    }
    // The last replies.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(frame)) = conn.recv().await {
            count(&frame);
        }
    })
    .await;
}

/// What the legitimate client saw: each successful join's latency in milliseconds, and the
/// errors that refused the others.
#[derive(Default)]
struct Joins {
    latencies: Vec<f64>,
    errors: Vec<String>,
}

/// The legitimate client: joins each room once with the right password, spread over the
/// run.
async fn legitimate(
    target: Target,
    name: String,
    rooms: Vec<String>,
    duration: Duration,
    mut go: watch::Receiver<bool>,
) -> Result<Joins> {
    let mut conn = Conn::connect(&target).await?;
    conn.send_raw(json!({"type": "hello", "name": name}).to_string())
        .await?;
    conn.expect("welcome", STEP).await?;
    if !wait_for_go(&mut go).await {
        return Ok(Joins::default());
    }
    let t0 = tokio::time::Instant::now();
    let mut joins = Joins::default();
    for (i, room) in rooms.iter().enumerate() {
        let at = t0 + duration.mul_f64((i as f64 + 0.5) / rooms.len() as f64);
        tokio::time::sleep_until(at).await;
        let sent = Instant::now();
        let join = json!({"type": "join", "room": room, "password": PASSWORD, "ref": i});
        conn.send_raw(join.to_string()).await?;
        // The reply carries the join's ref; a late one is still this join's.
        let reply = tokio::time::timeout(JOIN_PATIENCE, async {
            while let Some(frame) = conn.recv().await {
                let v: Value = serde_json::from_str(&frame?).unwrap_or_default();
                if v["ref"] == json!(i) {
                    return Ok(v);
                }
            }
            Err::<Value, super::client::Error>("closed while joining".into())
        })
        .await;
        match reply {
            Ok(Ok(v)) if v["type"] == "joined" => {
                joins.latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                let leave = json!({"type": "leave", "room": room});
                conn.send_raw(leave.to_string()).await?;
            }
            // A server that refuses a right password (a full queue) or never answers: counted.
            Ok(Ok(v)) => joins.errors.push(format!("join {room}: {v}")),
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                joins
                    .errors
                    .push(format!("join {room}: no reply within {JOIN_PATIENCE:?}"));
                return Ok(joins);
            }
        }
    }
    Ok(joins)
}
