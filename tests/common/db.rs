//! Helpers for the tests of database files: the papo binary run on a file (to be
//! SIGKILLed, or expected to refuse to start), and what a file looks like on disk.

use super::WAIT;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A papo process, killed when dropped, so a failing test leaves none behind (nor a pipe
/// that keeps the test harness waiting).
pub struct Papo(pub Child);

impl std::ops::Deref for Papo {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Papo {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Papo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The papo binary on `db`, port 0; returns it and the address it printed.
pub fn spawn_binary(db: &str) -> (Papo, SocketAddr) {
    spawn_binary_with(db, &[])
}

/// The papo binary on `db`, port 0, with `extra` flags; returns it and its address.
pub fn spawn_binary_with(db: &str, extra: &[&str]) -> (Papo, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_papo"))
        .args([
            "--port",
            "0",
            "--db",
            db,
            "--rate-limit",
            "0",
            "--log-level",
            "warn",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("papo starts");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("papo prints its address");
    let url = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("a URL on the first line");
    (Papo(child), url.parse().expect("an address"))
}

/// Runs `papo` as prepared by `command` (its `--db` and any other flags) and expects it to
/// refuse to start, without a panic; returns its stderr.
pub fn refused(mut command: Command) -> String {
    let mut child = command
        .args(["--port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("papo started on a database it should refuse");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "a clean refusal, not a crash: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// Runs the binary on `db` and expects it to refuse to start; returns its stderr.
pub fn refused_start(db: &str) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_papo"));
    command.args(["--db", db]);
    refused(command)
}

/// The file's bytes, and whether SQLite's `-wal` and `-shm` files sit beside it.
pub fn snapshot(db: &str) -> (Vec<u8>, bool, bool) {
    (
        std::fs::read(db).unwrap(),
        std::path::Path::new(&format!("{db}-wal")).exists(),
        std::path::Path::new(&format!("{db}-shm")).exists(),
    )
}
