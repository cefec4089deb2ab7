//! The search pool: a few threads, each with a read-only connection of its own to the
//! database file, that answer searches beside the store thread. WAL lets them read while
//! the store writes, so a search never holds up a commit and a commit never holds up a
//! search.
//!
//! A search reaches the pool only through the store thread, once every job queued before
//! it is committed: so it sees every message, edit and delete the server accepted before
//! it, and the store thread itself never runs it. A `:memory:` database cannot be opened
//! twice; there the store thread answers searches itself (see `Store::dispatch_search`).
//!
//! The queue is bounded by what the hub lets out at once (`SEARCHES_IN_FLIGHT`), so the
//! store thread's hand-off never waits.

use super::search::{self, SearchAnswer, SearchJob};
use crate::outbox::EncodedFrame;
use crate::protocol::{error_json, ErrorCode, Rejection};
use crossbeam_channel::{Receiver, Sender};
use rusqlite::{Connection, OpenFlags};
use std::io;
use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

/// Searches the hub lets wait or run at once, server-wide; past it `search` is
/// `rate_limited`. Also the depth of the pool's queue.
pub const SEARCHES_IN_FLIGHT: usize = 256;

/// How long a search waits for a lock (a checkpoint resetting the log) before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// Stack for a pool thread: SQLite's own work is on the heap.
const STACK: usize = 256 * 1024;

/// Threads for this machine: searches take milliseconds, so one or two suffice, and they
/// must not take the cores routing needs.
pub fn default_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores / 2).clamp(1, 2)
}

/// The running pool: where the store thread hands searches, and the threads.
pub struct SearchPool {
    /// Closing it (dropping every sender) ends the threads.
    pub jobs: Sender<SearchJob>,
    /// Joined at shutdown.
    pub threads: Vec<JoinHandle<()>>,
}

/// Opens `threads` read-only connections to `path` and starts a thread on each; every
/// answer goes to `done`.
pub fn start(
    path: &str,
    threads: usize,
    done: impl Fn(SearchAnswer) + Send + Sync + Clone + 'static,
) -> io::Result<SearchPool> {
    let (jobs, queue): (Sender<SearchJob>, Receiver<SearchJob>) =
        crossbeam_channel::bounded(SEARCHES_IN_FLIGHT);
    let mut handles = Vec::new();
    for i in 0..threads.max(1) {
        let conn = open_reader(path).map_err(|e| {
            io::Error::other(format!("database {path}: cannot open for search: {e}"))
        })?;
        let queue = queue.clone();
        let done = done.clone();
        handles.push(
            std::thread::Builder::new()
                .name(format!("papo-search-{i}"))
                .stack_size(STACK)
                .spawn(move || {
                    for job in queue {
                        done(run(&conn, &job));
                    }
                })?,
        );
    }
    Ok(SearchPool {
        jobs,
        threads: handles,
    })
}

fn open_reader(path: &str) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(Path::new(path), flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Answers one search: its reply, or `unavailable` when the database cannot be read.
pub fn run(conn: &Connection, job: &SearchJob) -> SearchAnswer {
    let json = match search::answer(conn, job) {
        Ok(json) => json,
        Err(e) => {
            log::warn!("a search failed: {e}");
            let rejection = Rejection::new(
                ErrorCode::Unavailable,
                "the search cannot be run: the server's storage is failing",
            );
            error_json(&rejection, job.reference.as_ref())
        }
    };
    SearchAnswer {
        conn: job.conn,
        frame: EncodedFrame::text(&json),
    }
}
