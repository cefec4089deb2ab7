//! Giving freed memory back to the system after a burst of big frames.
//!
//! glibc's malloc keeps what it frees for reuse. Once a big block is freed it raises its
//! mmap threshold (up to 32 MiB), so the next big frames come from the heap of the thread
//! that builds them, and a heap gives back only its free top: one small block still in use
//! above the freed frames keeps them all resident. After a burst of large replies (0.8 MB
//! `joined`s, 1.6 MB `history`s) papo stayed 1 to 61 MB above idle for the whole minute
//! after the clients that asked for them were gone (benches/load `amplify`, four runs).
//!
//! Fixing the mmap threshold at its initial 128 KiB (`mallopt`) returns every big frame at
//! once, but then each one is built in fresh pages: about 450 page faults for an 805 KB
//! `joined`, measured at 1.5 to 4.4 ms on this VM against 43 µs from the heap, on the hub
//! thread. Instead a thread of its own calls `malloc_trim(0)` every `TRIM_PERIOD`, which
//! hands back the free pages inside every heap, not only at its top: big frames keep
//! coming from the heap at heap speed, and memory freed in a burst goes back within one
//! period (within 2 MB of idle in every run). A trim took 30 to 110 µs with 10,000 idle
//! connections, 0.4 to 0.7 ms after the attack, and once 18 ms right after 10,000
//! connections closed; it locks one arena at a time, never the whole allocator.

use crossbeam_channel::{RecvTimeoutError, Sender};
use std::io;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often free memory is handed back.
pub const TRIM_PERIOD: Duration = Duration::from_secs(10);
/// The trimming thread's stack: it makes one library call.
const TRIM_STACK: usize = 64 * 1024;

/// The thread that trims; it stops when this is dropped.
pub struct Trimmer {
    /// Dropped to tell the thread to stop.
    stop: Option<Sender<()>>,
    /// Joined on drop, so a stopped server leaves no thread behind.
    thread: Option<JoinHandle<()>>,
}

impl Trimmer {
    /// Starts trimming every `period`. Where malloc is not glibc's there is nothing to
    /// trim and no thread is started.
    pub fn start(period: Duration) -> io::Result<Trimmer> {
        if !cfg!(all(target_os = "linux", target_env = "gnu")) {
            return Ok(Trimmer {
                stop: None,
                thread: None,
            });
        }
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name("papo-trim".into())
            .stack_size(TRIM_STACK)
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(period) {
                    let started = Instant::now();
                    let released = trim();
                    log::debug!(
                        "malloc_trim took {} µs (memory released: {released})",
                        started.elapsed().as_micros()
                    );
                }
            })?;
        Ok(Trimmer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Trimmer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Returns the free pages of every malloc arena to the system; true if any were.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() -> bool {
    // SAFETY: malloc_trim takes no pointers and locks each arena itself; glibc documents
    // it as safe to call from any thread at any time (MT-Safe).
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trimmer_stops_when_dropped() {
        let trimmer = Trimmer::start(Duration::from_millis(1)).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        // Joins the thread: a trimmer that did not stop would hang here.
        drop(trimmer);
    }
}
