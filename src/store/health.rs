//! Whether the database can be written, for `/healthz` and for the log.
//!
//! A failing database (a full disk, a read-only or locked file) must be loud without
//! drowning the log: one error when writes start failing, one line when they work again,
//! and `/healthz` answers 503 in between, so a load balancer or a monitor sees it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Shared with `/healthz`: false while the database cannot be written.
#[derive(Debug, Clone)]
pub struct Health(Arc<AtomicBool>);

impl Health {
    pub fn new() -> Health {
        Health(Arc::new(AtomicBool::new(true)))
    }

    /// Whether the last write to the database succeeded.
    pub fn writable(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, writable: bool) {
        self.0.store(writable, Ordering::Relaxed);
    }
}

impl Default for Health {
    fn default() -> Self {
        Health::new()
    }
}

/// The store's own view: the shared flag and the failure streak being logged.
#[derive(Debug, Default)]
pub(super) struct Condition {
    /// What `/healthz` reads.
    pub(super) health: Health,
    /// Set from a batch's first failed job until a batch succeeds entirely.
    streak: Option<Streak>,
}

#[derive(Debug)]
struct Streak {
    /// When the first job failed, for the recovery line.
    since: Instant,
    /// Jobs failed since then, for the recovery line.
    failed_jobs: u64,
}

impl Condition {
    /// `jobs` failed with `error`; `database` says the database itself is failing (not
    /// only these jobs), which turns `/healthz` to 503.
    pub(super) fn failed(&mut self, jobs: usize, error: &str, database: bool) {
        if database {
            self.health.set(false);
        }
        match &mut self.streak {
            Some(streak) => {
                streak.failed_jobs += jobs as u64;
                log::debug!("database: {jobs} more jobs failed: {error}");
            }
            None => {
                log::error!(
                    "database write failed ({jobs} jobs answered `unavailable`): {error}; {}",
                    if database {
                        "every job fails until it can be written again (/healthz answers 503)"
                    } else {
                        "the rest of the batch is kept"
                    }
                );
                self.streak = Some(Streak {
                    since: Instant::now(),
                    failed_jobs: jobs as u64,
                });
            }
        }
    }

    /// A batch went through without a failed job; `wrote` says it wrote something.
    pub(super) fn succeeded(&mut self, wrote: bool) {
        if !wrote {
            return;
        }
        self.health.set(true);
        if let Some(streak) = self.streak.take() {
            log::warn!(
                "database writes succeed again, after {} failed jobs over {:.1} s",
                streak.failed_jobs,
                streak.since.elapsed().as_secs_f64()
            );
        }
    }
}
