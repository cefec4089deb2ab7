//! Measurements and reporting: process CPU and memory from /proc, latency percentiles, and
//! the report every scenario prints (a readable table, then one JSON line).

use std::time::Instant;

use serde_json::{json, Map, Value};

/// Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on Linux x86 and arm).
const TICKS_PER_SEC: f64 = 100.0;

/// One reading of a process's /proc counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcSample {
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    pub rss_kib: u64,
    /// Peak resident set size since the process started (VmHWM).
    pub hwm_kib: u64,
    pub threads: u64,
}

/// Reads /proc/<pid>/stat and /proc/<pid>/status (pid 0 = this process); `None` if the
/// process is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let dir = if pid == 0 {
        "/proc/self".to_string()
    } else {
        format!("/proc/{pid}")
    };
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    if matches!(f.first(), Some(&"Z") | Some(&"X")) {
        return None; // exited, not yet reaped
    }
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some(ProcSample {
        cpu_ticks: utime + stime,
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
        threads: field("Threads:"),
    })
}

/// CPU use of the server (if its pid is known) and of this process over a window.
pub struct CpuWindow {
    server_pid: Option<u32>,
    server0: Option<ProcSample>,
    self0: Option<ProcSample>,
    t0: Instant,
}

impl CpuWindow {
    pub fn start(server_pid: Option<u32>) -> CpuWindow {
        CpuWindow {
            server_pid,
            server0: server_pid.and_then(sample),
            self0: sample(0),
            t0: Instant::now(),
        }
    }

    /// Measures now: `server_cpu_s`, `server_cpu_pct` (100 = one core), `client_cpu_*`,
    /// and the server's memory and threads at the end of the window, as report rows.
    pub fn finish(&self, prefix: &str) -> Vec<(String, Value)> {
        let mut r = Report::default();
        let secs = self.t0.elapsed().as_secs_f64().max(1e-9);
        let cpu = |a: Option<ProcSample>, b: Option<ProcSample>| -> Option<f64> {
            Some((b?.cpu_ticks.saturating_sub(a?.cpu_ticks)) as f64 / TICKS_PER_SEC)
        };
        let server1 = self.server_pid.and_then(sample);
        if self.server_pid.is_some() && server1.is_none() {
            r.add("server_exited", true);
        }
        if let Some(s) = cpu(self.server0, server1) {
            r.add(&format!("{prefix}server_cpu_s"), round(s, 2));
            r.add(
                &format!("{prefix}server_cpu_pct"),
                round(100.0 * s / secs, 1),
            );
        }
        if let Some(s1) = server1 {
            r.add(
                &format!("{prefix}server_rss_mib"),
                round(s1.rss_kib as f64 / 1024.0, 1),
            );
            r.add(&format!("{prefix}server_threads"), s1.threads);
        }
        if let Some(s) = cpu(self.self0, sample(0)) {
            r.add(&format!("{prefix}client_cpu_s"), round(s, 2));
            r.add(
                &format!("{prefix}client_cpu_pct"),
                round(100.0 * s / secs, 1),
            );
        }
        r.rows
    }
}

pub fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

/// Percentile (nearest rank) of sorted samples.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Adds `{prefix}p50_ms`, p90, p99 (and p95 when asked) and max of latencies in µs.
pub fn add_latency(r: &mut Report, prefix: &str, micros: &mut [u64], with_p95: bool) {
    micros.sort_unstable();
    let ms = |us: u64| round(us as f64 / 1000.0, 3);
    r.add(&format!("{prefix}p50_ms"), ms(percentile(micros, 50.0)));
    r.add(&format!("{prefix}p90_ms"), ms(percentile(micros, 90.0)));
    if with_p95 {
        r.add(&format!("{prefix}p95_ms"), ms(percentile(micros, 95.0)));
    }
    r.add(&format!("{prefix}p99_ms"), ms(percentile(micros, 99.0)));
    r.add(
        &format!("{prefix}max_ms"),
        ms(micros.last().copied().unwrap_or(0)),
    );
}

/// What a scenario found: ordered rows for the table, the same as one JSON object.
#[derive(Debug, Default)]
pub struct Report {
    pub rows: Vec<(String, Value)>,
    /// Free-form lines printed under the table (per-step results and the like).
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(scenario: &str, server: &str, proto: &str) -> Report {
        let mut r = Report::default();
        r.add("scenario", scenario);
        r.add("server", server);
        r.add("proto", proto);
        r
    }

    pub fn add(&mut self, key: &str, v: impl Into<Value>) {
        let v = v.into();
        match self.rows.iter_mut().find(|(k, _)| k == key) {
            Some(row) => row.1 = v,
            None => self.rows.push((key.to_string(), v)),
        }
    }

    pub fn extend(&mut self, rows: Vec<(String, Value)>) {
        for (k, v) in rows {
            self.add(&k, v);
        }
    }

    #[allow(dead_code)] // read by tests/bench_smoke.rs
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.rows.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A row as an integer (`u64::MAX` if absent or not one).
    #[allow(dead_code)] // read by tests/bench_smoke.rs
    pub fn u64(&self, key: &str) -> u64 {
        self.get(key).and_then(Value::as_u64).unwrap_or(u64::MAX)
    }

    pub fn json(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in &self.rows {
            m.insert(k.clone(), v.clone());
        }
        json!(m)
    }

    /// The table, then the notes, then the JSON line (last, so scripts can `tail -1`).
    pub fn print(&self) {
        let w = self.rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        println!();
        for (k, v) in &self.rows {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Array(_) | Value::Object(_) => continue, // JSON line only
                other => other.to_string(),
            };
            println!("  {k:<w$}  {v}");
        }
        for n in &self.notes {
            println!("  {n}");
        }
        println!("{}", self.json());
    }
}
