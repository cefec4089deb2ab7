//! The password pool: a few threads that run argon2 so the hub never does.
//!
//! Size: half the cores, at least 1 and at most 4. Half, so that even with every pool
//! thread busy the hub, the readers and the writers keep the other half of the machine
//! (a saturated pool must never be what delays other users' messages); at most 4, because
//! each check holds argon2's 19 MiB of working memory while it runs, and because the
//! failure limits (see `attempts`) leave a flood little to hash. Each thread also runs at
//! a lower scheduling priority (`--password-nice`, default nice 10 on Linux), so that when
//! the pool and the routing threads want the same core, routing gets it. Measured with the
//! limits off (pool saturated by a flood): the busy room's p99 was lower at nice 10 than at
//! 0. The price: on a machine busy with *other* programs the checks yield to them too, and
//! a legitimate join gets slower; an operator sharing the machine can set 0.
//!
//! The queue is as deep as the pool is wide: the hub hands out a job only when a thread is
//! free for it, and keeps the rest in its own fair `Turns`, so the order jobs run in is the
//! hub's choice, not the channel's.

use super::{PasswordDone, PasswordJob};
use crossbeam_channel::{Receiver, Sender};
use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;

/// The nice value pool threads run at by default: below normal (0), above idle (19).
pub const DEFAULT_NICE: i32 = 10;

/// Stack for a pool thread: argon2 keeps its memory blocks on the heap.
const STACK: usize = 256 * 1024;

/// The pool size for this machine (see the module comment).
pub fn default_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores / 2).clamp(1, 4)
}

/// The channel from the hub to a pool of `threads`: one free slot per thread.
pub fn queue(threads: usize) -> (Sender<PasswordJob>, Receiver<PasswordJob>) {
    crossbeam_channel::bounded(threads.max(1))
}

/// Starts `threads` pool threads at nice `nice`, each running jobs until `jobs` closes and
/// handing each answer to `done`.
pub fn start_pool(
    threads: usize,
    nice: i32,
    jobs: Receiver<PasswordJob>,
    done: impl Fn(PasswordDone) + Send + Sync + 'static,
) -> io::Result<Vec<JoinHandle<()>>> {
    let done = Arc::new(done);
    (0..threads.max(1))
        .map(|i| {
            let jobs = jobs.clone();
            let done = done.clone();
            std::thread::Builder::new()
                .name(format!("papo-password-{i}"))
                .stack_size(STACK)
                .spawn(move || {
                    lower_priority(nice);
                    for job in jobs {
                        done(job.run());
                    }
                })
        })
        .collect()
}

/// Lowers the calling thread's scheduling priority (Linux applies `setpriority` to one
/// thread when given its thread id). Failing to is harmless: the pool still works.
fn lower_priority(nice: i32) {
    if nice == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and setpriority take plain integers and touch no memory of ours.
        let result = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS as _, tid, nice)
        };
        if result != 0 {
            log::debug!(
                "password pool: could not lower priority: {}",
                io::Error::last_os_error()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thread_runs_jobs_until_the_queue_closes() {
        let (tx, rx) = queue(2);
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let threads = start_pool(2, DEFAULT_NICE, rx, move |done| {
            let _ = done_tx.send(done);
        })
        .unwrap();
        for i in 0..3 {
            tx.send(PasswordJob::Hash {
                room_id: i,
                room_key: format!("r{i}"),
                password: "x".into(),
            })
            .unwrap();
        }
        drop(tx);
        for t in threads {
            t.join().unwrap();
        }
        let mut rooms: Vec<String> = done_rx
            .try_iter()
            .map(|d| match d {
                PasswordDone::Hashed { room_key, phc, .. } => {
                    assert!(super::super::verify(&phc, "x"));
                    room_key
                }
                other => panic!("{other:?}"),
            })
            .collect();
        rooms.sort();
        assert_eq!(rooms, ["r0", "r1", "r2"]);
    }

    #[test]
    fn the_pool_takes_half_the_cores_at_most_four() {
        let n = default_threads();
        assert!((1..=4).contains(&n));
    }
}
