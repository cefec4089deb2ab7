//! The accounts scenarios (issue 10, item 6).
//!
//! `signin`: N accounts are registered once (argon2, off the clock); then, alternating
//! `--runs` times, N guests connect and say `hello` at once, and N accounts connect with
//! their session cookies and say `hello` at once. A cookie sign-in costs a SHA-256 and a
//! map lookup, no password hashing, so both should take about the same time.
//!
//! `attack`: the fan-out of a busy room (as `fanout`), measured alternately without and
//! with `--attackers` threads posting wrong passwords to `/api/login` as fast as they can,
//! each attempt under a fresh name (so the per-account limit never stops them; the
//! per-address limit does, unless the server runs with `--sign-in-failures 0`, which makes
//! every attempt cost an argon2 run). Meanwhile a legitimate client signs in by password
//! once a second; its answers and latency are reported.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::chat::{chat, ChatParams};
use super::client::{Conn, Target};
use super::stats::{percentile, round, Report};
use super::{Env, Failures, Opts, Result};

const PASSWORD: &str = "benchmark password";

/// One blocking HTTP/1.1 POST with `Connection: close`: (status, `papo_session=…` if set).
fn post(addr: SocketAddr, path: &str, body: &str) -> std::io::Result<(u16, Option<String>)> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let cookie = text
        .lines()
        .find_map(|l| l.strip_prefix("Set-Cookie: "))
        .and_then(|c| c.split(';').next())
        .map(str::to_string);
    Ok((status, cookie))
}

fn credentials(name: &str, password: &str) -> String {
    serde_json::json!({"name": name, "password": password}).to_string()
}

/// Registers `n` accounts (retrying when the hashing pool is busy); their cookies.
async fn register_all(env: &Env, n: usize) -> Result<Vec<String>> {
    let addr = env.target.addr;
    let sem = Arc::new(Semaphore::new(8));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let name = env.user("a", i);
            let sem = sem.clone();
            tokio::spawn(async move {
                let _permit = sem.acquire().await;
                tokio::task::spawn_blocking(move || {
                    for _ in 0..100 {
                        match post(addr, "/api/register", &credentials(&name, PASSWORD)) {
                            Ok((201, Some(cookie))) => return Ok(cookie),
                            Ok((429, _)) => std::thread::sleep(Duration::from_millis(100)),
                            Ok((status, _)) => return Err(format!("register {name}: {status}")),
                            Err(e) => return Err(format!("register {name}: {e}")),
                        }
                    }
                    Err(format!("register {name}: always busy"))
                })
                .await
                .map_err(|e| e.to_string())?
            })
        })
        .collect();
    let mut cookies = Vec::with_capacity(n);
    for t in tasks {
        cookies.push(t.await??);
    }
    Ok(cookies)
}

/// Opens `n` connections at once (at most `concurrency` handshakes in flight), each saying
/// `hello` as `hello(i)` says; returns (seconds until all were welcomed, per-connection
/// µs from connect to welcome). The connections close after the last welcome.
async fn welcome_all(
    target: &Target,
    n: usize,
    concurrency: usize,
    cookie: impl Fn(usize) -> Option<String>,
    hello: impl Fn(usize) -> String,
) -> Result<(f64, Vec<u64>)> {
    let sem = Arc::new(Semaphore::new(concurrency));
    let fails = Arc::new(Failures::default());
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (target, sem, fails) = (target.clone(), sem.clone(), fails.clone());
            let (cookie, hello) = (cookie(i), hello(i));
            tokio::spawn(async move {
                let _permit = sem.acquire().await;
                let started = Instant::now();
                let setup = async {
                    let mut conn = match cookie {
                        Some(c) => Conn::connect_with_cookie(&target, &c).await?,
                        None => Conn::connect(&target).await?,
                    };
                    conn.send_raw(hello).await?;
                    conn.expect("welcome", Duration::from_secs(60)).await?;
                    Ok::<_, super::client::Error>(conn)
                };
                match setup.await {
                    Ok(conn) => Some((conn, started.elapsed().as_micros() as u64)),
                    Err(e) => {
                        fails.add(e);
                        None
                    }
                }
            })
        })
        .collect();
    let mut conns = Vec::with_capacity(n);
    let mut micros = Vec::with_capacity(n);
    for t in tasks {
        if let Some((conn, us)) = t.await? {
            conns.push(conn);
            micros.push(us);
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    if fails.n() > 0 {
        return Err(fails.summary().into());
    }
    drop(conns);
    // Let the server see them go before the next round.
    tokio::time::sleep(Duration::from_millis(500)).await;
    micros.sort_unstable();
    Ok((secs, micros))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

pub async fn signin(env: &Env, o: &Opts) -> Result<Report> {
    let n: usize = o.get("accounts", 1000)?;
    let runs: usize = o.get("runs", 3)?;
    let t0 = Instant::now();
    let cookies = register_all(env, n).await?;
    let register_s = t0.elapsed().as_secs_f64();
    let (mut guests, mut accounts) = (Vec::new(), Vec::new());
    let (mut guests_p99, mut accounts_p99) = (Vec::new(), Vec::new());
    let mut r = env.report("signin");
    for run in 0..runs {
        let (s, us) = welcome_all(
            &env.target,
            n,
            env.concurrency,
            |_| None,
            |i| {
                serde_json::json!({"type": "hello", "name": env.user(&format!("g{run}-"), i)})
                    .to_string()
            },
        )
        .await?;
        guests.push(s);
        guests_p99.push(percentile(&us, 99.0) as f64 / 1000.0);
        let (s, us) = welcome_all(
            &env.target,
            n,
            env.concurrency,
            |i| Some(cookies[i].clone()),
            |_| r#"{"type":"hello"}"#.to_string(),
        )
        .await?;
        accounts.push(s);
        accounts_p99.push(percentile(&us, 99.0) as f64 / 1000.0);
        r.notes.push(format!(
            "run {run}: guests {:.3} s, accounts by cookie {:.3} s",
            guests[run], accounts[run]
        ));
    }
    r.add("accounts", n);
    r.add("register_all_s", round(register_s, 2));
    r.add("runs", runs);
    let (g, a) = (median(&mut guests), median(&mut accounts));
    r.add("guests_all_welcomed_s", round(g, 3));
    r.add("cookies_all_welcomed_s", round(a, 3));
    r.add("cookies_over_guests", round(a / g.max(1e-9), 3));
    r.add("guests_p99_ms", round(median(&mut guests_p99), 2));
    r.add("cookies_p99_ms", round(median(&mut accounts_p99), 2));
    Ok(r)
}

/// What the attackers and the legitimate client saw.
#[derive(Default)]
struct AttackCounts {
    attempts: AtomicU64,
    unauthorized: AtomicU64,
    limited: AtomicU64,
    other: AtomicU64,
    /// The legitimate client's sign-ins: (status, ms).
    legit: Mutex<Vec<(u16, f64)>>,
}

/// Starts the attackers and the legitimate client; they run until `stop`.
fn start_attack(
    addr: SocketAddr,
    attackers: usize,
    tag: String,
    victim: String,
    stop: Arc<AtomicBool>,
    counts: Arc<AttackCounts>,
) -> Vec<std::thread::JoinHandle<()>> {
    let mut threads = Vec::new();
    for a in 0..attackers {
        let (stop, counts, tag) = (stop.clone(), counts.clone(), tag.clone());
        threads.push(std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let name = format!("x{tag}-{a}-{i}");
                let status = post(addr, "/api/login", &credentials(&name, "wrong guess!"));
                counts.attempts.fetch_add(1, Ordering::Relaxed);
                let counter = match status {
                    Ok((401, _)) => &counts.unauthorized,
                    Ok((429, _)) => &counts.limited,
                    _ => &counts.other,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    threads.push(std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            let status = post(addr, "/api/login", &credentials(&victim, PASSWORD))
                .map(|(s, _)| s)
                .unwrap_or(0);
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            if let Ok(mut legit) = counts.legit.lock() {
                legit.push((status, ms));
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }));
    threads
}

pub async fn attack(env: &Env, o: &Opts) -> Result<Report> {
    let p = ChatParams {
        rooms: 1,
        members: o.get("members", 200)?,
        senders: o.get("senders", 5)?,
        rate: o.get("rate", 10.0)?,
        duration: o.secs("duration", 10.0)?,
        drain: o.secs("drain", 5.0)?,
    };
    let attackers: usize = o.get("attackers", 5)?;
    let runs: usize = o.get("runs", 3)?;
    let victim = env.user("victim", 0);
    let addr = env.target.addr;
    let v = victim.clone();
    let registered = tokio::task::spawn_blocking(move || {
        post(addr, "/api/register", &credentials(&v, PASSWORD))
    })
    .await??;
    if registered.0 != 201 {
        return Err(format!("cannot register the legitimate account: {}", registered.0).into());
    }
    let mut r = env.report("attack");
    let (mut quiet_p99, mut attacked_p99) = (Vec::new(), Vec::new());
    let (mut quiet_p50, mut attacked_p50) = (Vec::new(), Vec::new());
    let counts = Arc::new(AttackCounts::default());
    let mut attack_secs = 0.0;
    // Each fan-out gets names of its own: the previous one's may still be leaving.
    let fresh = || {
        Env::new(
            env.target.clone(),
            env.server_pid,
            &env.label,
            env.concurrency,
        )
    };
    for run in 0..runs {
        let quiet = chat(&fresh(), "fanout", p.clone()).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let t = Instant::now();
        let threads = start_attack(
            addr,
            attackers,
            format!("{}{run}", env.tag),
            victim.clone(),
            stop.clone(),
            counts.clone(),
        );
        let attacked = chat(&fresh(), "fanout", p.clone()).await;
        stop.store(true, Ordering::Relaxed);
        attack_secs += t.elapsed().as_secs_f64();
        for th in threads {
            let _ = th.join();
        }
        let attacked = attacked?;
        let get = |rep: &Report, k: &str| rep.get(k).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
        quiet_p99.push(get(&quiet, "latency_p99_ms"));
        attacked_p99.push(get(&attacked, "latency_p99_ms"));
        quiet_p50.push(get(&quiet, "latency_p50_ms"));
        attacked_p50.push(get(&attacked, "latency_p50_ms"));
        r.notes.push(format!(
            "run {run}: p50 / p99 ms quiet {} / {}, attacked {} / {}",
            quiet_p50[run], quiet_p99[run], attacked_p50[run], attacked_p99[run]
        ));
    }
    r.add("members", p.members);
    r.add("senders", p.senders);
    r.add("rate_per_sender", p.rate);
    r.add("attackers", attackers);
    r.add("runs", runs);
    let (q99, a99) = (median(&mut quiet_p99), median(&mut attacked_p99));
    r.add("quiet_p50_ms", round(median(&mut quiet_p50), 3));
    r.add("quiet_p99_ms", round(q99, 3));
    r.add("attacked_p50_ms", round(median(&mut attacked_p50), 3));
    r.add("attacked_p99_ms", round(a99, 3));
    r.add("p99_change_pct", round((a99 / q99 - 1.0) * 100.0, 1));
    let attempts = counts.attempts.load(Ordering::Relaxed);
    r.add(
        "attempts_per_s",
        round(attempts as f64 / attack_secs.max(1e-9), 1),
    );
    r.add("attempts_401", counts.unauthorized.load(Ordering::Relaxed));
    r.add("attempts_429", counts.limited.load(Ordering::Relaxed));
    r.add("attempts_other", counts.other.load(Ordering::Relaxed));
    let legit = counts.legit.lock().map(|l| l.clone()).unwrap_or_default();
    let ok: Vec<f64> = legit
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, ms)| *ms)
        .collect();
    r.add("legit_sign_ins", legit.len());
    r.add("legit_ok", ok.len());
    r.add(
        "legit_statuses",
        format!("{:?}", legit.iter().map(|(s, _)| *s).collect::<Vec<_>>()),
    );
    let mut ok_sorted = ok.clone();
    r.add("legit_ok_median_ms", round(median(&mut ok_sorted), 1));
    r.add(
        "legit_ok_max_ms",
        round(ok.iter().copied().fold(0.0, f64::max), 1),
    );
    Ok(r)
}
