//! The load generator behind `cargo bench --bench load -- SCENARIO [flags]`: flags, the
//! papo server it starts (or the `--url` it drives), the client runtime, and the dispatch to
//! the scenarios (`chat`: fanout and rooms; `shootout`; `joinstorm`; `idle`; `amplify`;
//! `pwflood`; `accounts`: signin and attack).

pub mod accounts;
pub mod amplify;
pub mod chat;
pub mod client;
pub mod idle;
pub mod joinstorm;
pub mod pwflood;
pub mod shootout;
pub mod stats;

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use client::{Proto, Result, Target};
pub use stats::Report;

pub const USAGE: &str = "\
usage: cargo bench --bench load -- SCENARIO [flags]

scenarios (defaults in brackets):
  fanout     --members 1000 --senders 10 --rate 5 (msg/s per sender, 0 = closed loop)
             --duration 10 --drain 10
  rooms      --rooms 100 --members 10 (per room) --rate 5000 (total msg/s) --senders 10
             (per room) --duration 10 --drain 10
  shootout   --start 500 --step 500 --max 10000 --broadcasts 100 --in-flight 4
             --limit-ms 500 (p95 limit) --timeout 10 (s, per broadcast)
  joinstorm  --clients 5000 --timeout 120
  idle       --clients 10000 --room-size 100 --duration 10
  amplify    --attackers 3 (never read, repeat join) --history-attackers 1 (repeat history
             limit 100) --messages 100 --chars 4000 (four-byte characters a message)
             --rate 20 --burst 50 (commands per attacker, like papo's default limit)
             --duration 20 --after 60 (s watched after the attackers are dropped)
  pwflood    --attackers 5 --attack-addresses 5 (127.0.0.2, .3, ...) --attack-rate 20
             (wrong-password joins/s each) --joins 5 (right-password joins by another
             client, spread over the run) --members 200 --senders 5 --rate 5 (a busy room,
             as fanout) --duration 20 --drain 10; without --url papo runs twice on one
             database file (the rooms' passwords unverified in the measured run) with
             --rate-limit 20
  signin     --accounts 1000 --runs 3: N guests vs N accounts with session cookies, all
             welcomed at once (the papo started here allows unlimited registrations)
  attack     --members 200 --senders 5 --rate 10 --duration 10 --attackers 5 --runs 3:
             fan-out latency without and with attackers posting wrong passwords
             (add --server-arg --sign-in-failures --server-arg 0 to hash every attempt)

common flags:
  --url ws://127.0.0.1:PORT[/path]  drive that server instead of starting papo
  --proto papo|socketio             wire protocol [papo]
  --pid PID                         server pid, for its CPU, memory and threads
  --label NAME                      server name in the report [papo, or peer]
  --workers N                       client runtime threads, 0 = current-thread [1]
  --concurrency N                   connection setups in flight [64]
  --papo-bin PATH                   the papo to start [the one cargo built]
  --server-arg ARG                  extra argument for the papo started here (repeatable);
                                    it runs with --port P --db :memory: --rate-limit 0
                                    --log-level warn --max-connections 20000, and
                                    --max-connections-per-ip 0, --rooms-per-connection 0
                                    and --rooms-per-address 0 if it knows those flags

Every client here comes from 127.0.0.1: a papo driven with --url needs
--max-connections-per-ip 0 (or more than the scenario opens), or it turns them away with 429,
and for `rooms` past 10 rooms --rooms-per-connection 0 --rooms-per-address 0.
";

/// Parsed command line: the scenario and its `--flag value` pairs.
#[derive(Clone, Debug, Default)]
pub struct Opts {
    pub scenario: String,
    flags: HashMap<String, String>,
    pub server_args: Vec<String>,
}

impl Opts {
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Opts> {
        let mut o = Opts::default();
        let mut it = args.iter().map(|s| s.as_ref());
        while let Some(a) = it.next() {
            if a == "--bench" {
                continue; // cargo bench appends it
            }
            if let Some(key) = a.strip_prefix("--") {
                let v = it.next().ok_or(format!("--{key} needs a value"))?;
                if key == "server-arg" {
                    o.server_args.push(v.to_string());
                } else {
                    o.flags.insert(key.to_string(), v.to_string());
                }
            } else if o.scenario.is_empty() {
                o.scenario = a.to_string();
            } else {
                return Err(format!("unexpected argument {a}").into());
            }
        }
        Ok(o)
    }

    pub fn get<T: FromStr>(&self, key: &str, default: T) -> Result<T> {
        match self.flags.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{key}: cannot parse {v:?}").into()),
        }
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.flags.get(key).map(String::as_str)
    }

    pub fn secs(&self, key: &str, default: f64) -> Result<Duration> {
        Ok(Duration::from_secs_f64(self.get(key, default)?))
    }
}

/// What a scenario runs against.
pub struct Env {
    pub target: Target,
    pub server_pid: Option<u32>,
    pub label: String,
    /// Unique per run, so names and rooms never collide with an earlier run's.
    pub tag: String,
    pub concurrency: usize,
}

impl Env {
    pub fn new(target: Target, server_pid: Option<u32>, label: &str, concurrency: usize) -> Env {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let tag = format!(
            "{:05x}",
            (nanos as u64 ^ u64::from(std::process::id())) & 0xfffff
        );
        Env {
            target,
            server_pid,
            label: label.to_string(),
            tag,
            concurrency: concurrency.max(1),
        }
    }

    /// A user name unique to this run (at most 32 code points).
    pub fn user(&self, kind: &str, i: usize) -> String {
        format!("{kind}{}-{i}", self.tag)
    }

    pub fn room(&self, kind: &str, i: usize) -> String {
        format!("{kind}-{}-{i}", self.tag)
    }

    pub fn report(&self, scenario: &str) -> Report {
        Report::new(scenario, &self.label, self.target.proto.name())
    }
}

/// Runs one scenario to its report.
pub async fn run(env: &Env, opts: &Opts) -> Result<Report> {
    match opts.scenario.as_str() {
        "fanout" => chat::fanout(env, opts).await,
        "rooms" => chat::rooms(env, opts).await,
        "shootout" => shootout::run(env, opts).await,
        "joinstorm" => joinstorm::run(env, opts).await,
        "idle" => idle::run(env, opts).await,
        "amplify" => amplify::run(env, opts).await,
        "pwflood" => pwflood::run(env, opts).await,
        "signin" => accounts::signin(env, opts).await,
        "attack" => accounts::attack(env, opts).await,
        "" => Err("no scenario given".into()),
        other => Err(format!("unknown scenario {other}").into()),
    }
}

/// Nanoseconds since the Unix epoch: the send time carried inside message texts.
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64
}

/// Waits until `counter` has not moved for `quiet`, at most `limit`; true if it went quiet.
pub async fn quiesce(counter: &AtomicU64, quiet: Duration, limit: Duration) -> bool {
    let t0 = Instant::now();
    let mut last = counter.load(Ordering::Relaxed);
    let mut since = Instant::now();
    while t0.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = counter.load(Ordering::Relaxed);
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return true;
        }
    }
    false
}

/// Polls `done` every 10 ms until it holds or `limit` passes; true if it held.
pub async fn wait_until(limit: Duration, done: impl Fn() -> bool) -> bool {
    let t0 = Instant::now();
    loop {
        if done() {
            return true;
        }
        if t0.elapsed() >= limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Setup failures collected from member tasks (the first few messages, and a count).
#[derive(Default)]
pub struct Failures {
    pub count: AtomicU64,
    first: std::sync::Mutex<Vec<String>>,
}

impl Failures {
    pub fn add(&self, e: impl std::fmt::Display) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut v) = self.first.lock() {
            if v.len() < 3 {
                v.push(e.to_string());
            }
        }
    }
    pub fn n(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
    pub fn summary(&self) -> String {
        let first = self.first.lock().map(|v| v.join("; ")).unwrap_or_default();
        format!("{} connection(s) failed: {first}", self.n())
    }
}

/// Connects, says hello and joins `room`, holding one of the `sem` setup slots meanwhile
/// (so connection bursts stay bounded). A failure is recorded in `fails`.
pub async fn join_member(
    target: &client::Target,
    name: &str,
    room: &str,
    sem: &tokio::sync::Semaphore,
    fails: &Failures,
) -> Option<(client::Conn, tokio_tungstenite::tungstenite::Utf8Bytes)> {
    let _permit = sem.acquire().await;
    let setup = async {
        let mut conn = client::Conn::connect(target).await?;
        let joined = conn.hello_join(name, room).await?;
        Ok::<_, client::Error>((conn, joined))
    };
    match setup.await {
        Ok(pair) => Some(pair),
        Err(e) => {
            fails.add(e);
            None
        }
    }
}

/// A papo server started by the benchmark; killed when dropped (on panic too).
pub struct PapoServer {
    child: Child,
    pub port: u16,
}

impl PapoServer {
    pub fn start(bin: &str, extra: &[String]) -> Result<PapoServer> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(bin)
            .args(["--port", &port.to_string(), "--db", ":memory:"])
            .args(["--rate-limit", "0", "--log-level", "warn"])
            // Room for `idle --clients 10000` plus the rooms' creator (default: 10,000).
            .args(["--max-connections", "20000"])
            .args(client_limits_off(bin))
            .args(extra)
            .stdout(std::process::Stdio::null()) // its banner; warnings go to stderr
            .spawn()
            .map_err(|e| format!("cannot start {bin}: {e}"))?;
        let mut s = PapoServer { child, port };
        let t0 = Instant::now();
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(s);
            }
            if let Some(status) = s.child.try_wait()? {
                return Err(format!("papo exited at start: {status}").into());
            }
            if t0.elapsed() > Duration::from_secs(20) {
                return Err("papo did not listen within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// The per-client limits `bin` has, turned off: every benchmark client comes from
/// 127.0.0.1, and thousands of them would pass `--max-connections-per-ip`'s default (256);
/// one client makes every room of `rooms --rooms 100`, past the default allowances for
/// making rooms. A papo built before a flag existed (an old build given with `--papo-bin`)
/// has no such limit, and would refuse to start on a flag it does not know, so its help
/// text decides.
fn client_limits_off(bin: &str) -> Vec<&'static str> {
    let help = Command::new(bin).arg("--help").output();
    let help = match &help {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(_) => String::new(),
    };
    [
        "--max-connections-per-ip",
        "--rooms-per-connection",
        "--rooms-per-address",
    ]
    .into_iter()
    .filter(|flag| help.contains(flag))
    .flat_map(|flag| [flag, "0"])
    .collect()
}

impl Drop for PapoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds the client runtime: `workers` = 0 is a current-thread runtime.
pub fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if workers == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
}

/// The bench binary's main: returns the process exit code.
pub fn main_cli(args: &[String], papo_bin: &str) -> i32 {
    match main_inner(args, papo_bin) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("load: {e}");
            if e.to_string().contains("scenario") || e.to_string().contains("--") {
                eprint!("{USAGE}");
            }
            1
        }
    }
}

fn main_inner(args: &[String], papo_bin: &str) -> Result<()> {
    let opts = Opts::parse(args)?;
    if opts.scenario.is_empty() || opts.scenario == "help" {
        print!("{USAGE}");
        return Ok(());
    }
    if opts.scenario == "pwflood" && opts.str("url").is_none() {
        let bin = opts.str("papo-bin").unwrap_or(papo_bin);
        pwflood::standalone(bin, &opts)?.print();
        return Ok(());
    }
    let proto =
        Proto::parse(opts.str("proto").unwrap_or("papo")).ok_or("--proto: papo or socketio")?;
    let mut server = None;
    let (url, pid, label) = match opts.str("url") {
        Some(url) => (url.to_string(), opts.get("pid", 0u32)?, "peer"),
        None => {
            let bin = opts.str("papo-bin").unwrap_or(papo_bin);
            let mut extra = opts.server_args.clone();
            if opts.scenario == "signin" {
                // Every account is registered from 127.0.0.1.
                extra.extend(["--registrations-per-hour".to_string(), "0".to_string()]);
            }
            let s = PapoServer::start(bin, &extra)?;
            let url = format!("ws://127.0.0.1:{}", s.port);
            let pid = s.pid();
            server = Some(s);
            (url, pid, "papo")
        }
    };
    let target = Target::new(&url, proto)?;
    let label = opts.str("label").unwrap_or(label).to_string();
    let pid = (pid != 0).then_some(pid);
    let env = Env::new(target, pid, &label, opts.get("concurrency", 64usize)?);
    let rt = runtime(opts.get("workers", 1usize)?)?;
    eprintln!(
        "load: {} against {} ({}, pid {})",
        opts.scenario,
        env.target.url,
        label,
        pid.map_or("unknown".to_string(), |p| p.to_string())
    );
    let report = rt.block_on(run(&env, &opts));
    // Close the client's connections before the server goes away.
    rt.shutdown_timeout(Duration::from_secs(2));
    drop(server);
    report?.print();
    Ok(())
}
