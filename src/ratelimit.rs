//! Token buckets: the per-connection one behind `--rate-limit` and `--rate-burst`, and the
//! slower allowances (rooms created per connection and per address).

use std::time::{Duration, Instant};

/// Allows `rate` frames a second on average and up to `burst` at once; a rate of 0 allows
/// everything.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        RateLimiter {
            rate: f64::from(rate),
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Allows `count` per `window` on average, all of them at once if saved up; a count of
    /// 0 allows everything.
    pub fn per_window(count: u32, window: Duration, now: Instant) -> Self {
        RateLimiter {
            rate: f64::from(count) / window.as_secs_f64().max(1e-9),
            burst: f64::from(count.max(1)),
            tokens: f64::from(count.max(1)),
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub fn allow(&mut self, now: Instant) -> bool {
        if self.has_token(now) {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether a token is there now, without taking it (for a check that must pass
    /// several limits before it spends any).
    pub fn has_token(&mut self, now: Instant) -> bool {
        if self.rate == 0.0 {
            self.tokens = self.burst;
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.tokens >= 1.0
    }

    /// Whether the bucket has filled up again: it remembers nothing recent, and a limiter
    /// kept per client may be forgotten.
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.has_token(now);
        self.tokens >= self.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(20, 50, start);
        assert_eq!((0..60).filter(|_| limiter.allow(start)).count(), 50);
        let later = start + Duration::from_millis(500);
        assert_eq!((0..60).filter(|_| limiter.allow(later)).count(), 10);
    }

    #[test]
    fn per_window_saves_up_to_its_count() {
        let start = Instant::now();
        let hour = Duration::from_secs(3600);
        let mut limiter = RateLimiter::per_window(10, hour, start);
        assert!(limiter.is_full(start));
        assert_eq!((0..20).filter(|_| limiter.allow(start)).count(), 10);
        assert!(!limiter.has_token(start));
        let later = start + hour / 10;
        assert!(limiter.has_token(later) && limiter.has_token(later));
        assert!(limiter.allow(later) && !limiter.allow(later));
        assert!(limiter.is_full(start + 2 * hour));
        let mut off = RateLimiter::per_window(0, hour, start);
        assert!((0..1000).all(|_| off.allow(start)));
    }

    #[test]
    fn zero_rate_is_off() {
        let now = Instant::now();
        let mut limiter = RateLimiter::new(0, 1, now);
        assert!((0..10_000).all(|_| limiter.allow(now)));
    }
}
