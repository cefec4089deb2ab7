//! Named threads with small stacks, counted so that shutdown can wait for every one.

use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Counts live threads; `wait` returns once all have finished.
#[derive(Clone, Default)]
pub struct ThreadCount(Arc<(Mutex<usize>, Condvar)>);

/// Held by a running thread; dropping it (even in a panic) counts the thread out.
pub struct Running(ThreadCount);

impl Drop for Running {
    fn drop(&mut self) {
        let (count, changed) = &*(self.0).0;
        let mut n = count.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        changed.notify_all();
    }
}

impl ThreadCount {
    fn enter(&self) -> Running {
        *self.0 .0.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        Running(self.clone())
    }

    pub fn live(&self) -> usize {
        *self.0 .0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until no counted thread runs, or `timeout` passes; true if none runs.
    pub fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (count, changed) = &*self.0;
        let mut n = count.lock().unwrap_or_else(|e| e.into_inner());
        while *n > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            n = changed
                .wait_timeout(n, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Spawns a counted thread with a name and a stack of `stack` bytes.
    pub fn spawn<F, T>(&self, name: String, stack: usize, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let running = self.enter();
        std::thread::Builder::new()
            .name(name)
            .stack_size(stack)
            .spawn(move || {
                let _running = running;
                f()
            })
        // On a failed spawn the closure, and with it `running`, is dropped: counted out.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_every_thread() {
        let count = ThreadCount::default();
        for i in 0..4 {
            count
                .spawn(format!("t{i}"), 64 * 1024, move || {
                    std::thread::sleep(Duration::from_millis(20 * i))
                })
                .unwrap();
        }
        assert!(count.wait(Duration::from_secs(5)));
        assert_eq!(count.live(), 0);
    }
}
