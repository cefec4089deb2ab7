//! Smoke test of the load benchmark (benches/load): every scenario at a tiny size against an
//! in-process papo, so the benchmark cannot rot; asserts nothing goes missing.

#[allow(dead_code)]
#[path = "../benches/load/mod.rs"]
mod load;

use std::sync::Mutex;

use load::{Env, Opts, Proto, Report, Target};

/// One scenario at a time: they measure CPU, and in parallel they starve each other.
static SERIAL: Mutex<()> = Mutex::new(());

/// Starts a papo, runs one scenario against it with the bench's own code, stops the papo.
fn run(args: &[&str]) -> Report {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = papo::Config {
        port: 0,
        db: ":memory:".into(),
        rate_limit: 0,
        // A debug build on a busy machine can leave writer threads unscheduled for a
        // while; this test checks the benchmark's bookkeeping, not the slow-consumer limit.
        queue_frames: 16_384,
        ..papo::Config::default()
    };
    let server = papo::start(c).expect("papo starts");
    let url = format!("ws://{}", server.local_addr());
    let opts = Opts::parse(args).expect("flags parse");
    let target = Target::new(&url, Proto::Papo).expect("target");
    // The server runs in this process: its CPU figures include the client's.
    let env = Env::new(target, Some(std::process::id()), "papo-in-process", 16);
    let rt = load::runtime(1).expect("runtime");
    let report = rt.block_on(load::run(&env, &opts));
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    server.shutdown();
    let report = report.unwrap_or_else(|e| panic!("{args:?}: {e}"));
    report.print();
    report
}

#[test]
fn fanout_open_loop_delivers_everything() {
    let r = run(&[
        "fanout",
        "--members",
        "20",
        "--senders",
        "3",
        "--rate",
        "20",
        "--duration",
        "1",
    ]);
    assert!(r.u64("sent") > 0, "nothing was sent");
    assert_eq!(r.u64("deliveries"), r.u64("sent") * 20);
    assert_eq!(r.u64("missing"), 0);
    assert_eq!(r.u64("duplicates"), 0);
    assert_eq!(r.u64("errors"), 0);
    assert_eq!(r.u64("latency_samples"), r.u64("deliveries"));
}

#[test]
fn fanout_closed_loop_delivers_everything() {
    let r = run(&[
        "fanout",
        "--members",
        "10",
        "--senders",
        "2",
        "--rate",
        "0",
        "--duration",
        "1",
    ]);
    assert!(r.u64("sent") >= 2);
    assert_eq!(r.u64("missing"), 0);
    assert_eq!(r.u64("duplicates"), 0);
}

#[test]
fn rooms_delivers_everything() {
    let r = run(&[
        "rooms",
        "--rooms",
        "5",
        "--members",
        "4",
        "--rate",
        "100",
        "--duration",
        "1",
    ]);
    assert!(r.u64("sent") > 0);
    assert_eq!(r.u64("missing"), 0);
    assert_eq!(r.u64("duplicates"), 0);
}

#[test]
fn shootout_grows_to_its_max() {
    let r = run(&[
        "shootout",
        "--start",
        "10",
        "--step",
        "10",
        "--max",
        "20",
        "--broadcasts",
        "10",
    ]);
    assert_eq!(r.u64("largest_room_under_limit"), 20);
}

#[test]
fn joinstorm_settles() {
    let r = run(&["joinstorm", "--clients", "120", "--timeout", "20"]);
    assert_eq!(r.get("settled"), Some(&serde_json::Value::Bool(true)));
    assert_eq!(r.u64("failed"), 0);
    assert_eq!(r.u64("member_count_min"), 120);
    // Everyone knows at least the first 100 (the capped snapshot) or everyone before them.
    assert!(r.u64("known_names_min") >= 100);
}

#[test]
fn idle_holds_its_connections() {
    let r = run(&[
        "idle",
        "--clients",
        "50",
        "--room-size",
        "10",
        "--duration",
        "1",
    ]);
    assert_eq!(r.u64("connected"), 50);
    assert_eq!(r.u64("failed"), 0);
}

#[test]
fn amplify_runs_and_the_bystander_misses_nothing() {
    let r = run(&[
        "amplify",
        "--attackers",
        "1",
        "--history-attackers",
        "1",
        "--messages",
        "5",
        "--chars",
        "100",
        "--duration",
        "1",
        "--after",
        "1",
    ]);
    assert_eq!(r.u64("attackers_failed"), 0);
    assert!(r.u64("commands_sent") > 0, "the attackers sent nothing");
    assert!(r.u64("bystander_ticks_sent") > 0);
    assert_eq!(r.u64("bystander_missing"), 0);
    assert_eq!(r.u64("bystander_disordered"), 0);
}

#[test]
fn pwflood_answers_every_guess_and_every_join() {
    let r = run(&[
        "pwflood",
        "--attackers",
        "2",
        "--attack-rate",
        "20",
        "--joins",
        "2",
        "--members",
        "5",
        "--senders",
        "1",
        "--rate",
        "5",
        "--duration",
        "2",
    ]);
    assert_eq!(r.u64("attackers_connected"), 2);
    assert_eq!(r.u64("legit_joins"), 2);
    assert_eq!(r.u64("legit_join_errors"), 0);
    assert!(r.u64("attack_wrong_password") > 0);
    // Two seconds at 20 a second is more than five failures a connection may make.
    assert!(r.u64("attack_rate_limited") > 0);
    assert_eq!(r.u64("attack_other"), 0);
    assert_eq!(
        r.u64("attack_sent"),
        r.u64("attack_wrong_password") + r.u64("attack_rate_limited"),
        "every guess answered"
    );
    assert_eq!(r.u64("missing"), 0);
}

#[test]
fn signin_welcomes_guests_and_cookies() {
    // Five accounts: the in-process server keeps the default of 5 registrations an hour.
    let r = run(&["signin", "--accounts", "5", "--runs", "1"]);
    assert_eq!(r.u64("accounts"), 5);
    assert!(r.get("cookies_all_welcomed_s").is_some());
}

#[test]
fn attack_measures_fanout_beside_wrong_passwords() {
    let r = run(&[
        "attack",
        "--members",
        "5",
        "--senders",
        "1",
        "--rate",
        "5",
        "--duration",
        "1",
        "--drain",
        "1",
        "--attackers",
        "1",
        "--runs",
        "1",
    ]);
    assert!(r.u64("attempts_401") + r.u64("attempts_429") > 0);
    assert_eq!(r.u64("attempts_other"), 0);
    assert!(r.u64("legit_sign_ins") >= 1);
}
