//! Failure limits: at most N events per key in a sliding window (failed sign-ins per
//! address and per account name, registrations per address). The hub keeps them, so the
//! check and the count happen in one place and one order; an attempt is counted when it
//! starts (so a burst of parallel guesses cannot slip past the check), and a sign-in that
//! succeeds is given back: success costs nothing against the limit.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Keys kept before a sweep of expired ones is forced.
const SWEEP_ABOVE: usize = 10_000;

pub struct WindowLimit<K> {
    /// Events allowed per key in `window`; 0 turns the limit off.
    max: u32,
    window: Duration,
    /// Each key's events in the window, oldest first; never longer than `max`.
    events: HashMap<K, VecDeque<Instant>>,
}

impl<K: Hash + Eq + Clone> WindowLimit<K> {
    pub fn new(max: u32, window: Duration) -> Self {
        WindowLimit {
            max,
            window,
            events: HashMap::new(),
        }
    }

    /// Counts an event for `key` if the limit allows it; otherwise how long until it will.
    pub fn take(&mut self, key: &K, now: Instant) -> Result<(), Duration> {
        if self.max == 0 {
            return Ok(());
        }
        if self.events.len() > SWEEP_ABOVE {
            self.sweep(now);
        }
        let window = self.window;
        let events = self.events.entry(key.clone()).or_default();
        while events
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            events.pop_front();
        }
        if events.len() >= self.max as usize {
            let oldest = events[0];
            return Err((oldest + window).saturating_duration_since(now));
        }
        events.push_back(now);
        Ok(())
    }

    /// Gives back the newest event of `key` (an attempt that succeeded).
    pub fn give_back(&mut self, key: &K) {
        if let Some(events) = self.events.get_mut(key) {
            events.pop_back();
            if events.is_empty() {
                self.events.remove(key);
            }
        }
    }

    /// Forgets keys whose events have all left the window.
    pub fn sweep(&mut self, now: Instant) {
        let window = self.window;
        self.events.retain(|_, events| {
            events
                .back()
                .is_some_and(|t| now.duration_since(*t) < window)
        });
    }
}

/// Whole seconds to tell a client to wait, at least one.
pub fn retry_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_allows_max_then_refuses_until_the_oldest_leaves() {
        let start = Instant::now();
        let s = Duration::from_secs(1);
        let mut limit = WindowLimit::new(2, 60 * s);
        assert!(limit.take(&"a", start).is_ok());
        assert!(limit.take(&"a", start + s).is_ok());
        assert_eq!(limit.take(&"a", start + 2 * s), Err(58 * s));
        assert!(limit.take(&"b", start + 2 * s).is_ok(), "keys are apart");
        limit.give_back(&"a");
        assert!(
            limit.take(&"a", start + 3 * s).is_ok(),
            "success is given back"
        );
        assert!(limit.take(&"a", start + 60 * s).is_ok(), "the oldest left");
        let mut off = WindowLimit::new(0, s);
        for _ in 0..100 {
            assert!(off.take(&1, start).is_ok());
        }
        assert_eq!(retry_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_secs(Duration::ZERO), 1);
    }
}
