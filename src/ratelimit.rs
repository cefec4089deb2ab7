//! The per-connection token bucket behind `--rate-limit` and `--rate-burst`.

use std::time::Instant;

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

    /// Takes one token if there is one.
    pub fn allow(&mut self, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(20, 50, start);
        assert_eq!((0..60).filter(|_| limiter.allow(start)).count(), 50);
        let later = start + Duration::from_millis(500);
        assert_eq!((0..60).filter(|_| limiter.allow(later)).count(), 10);
    }

    #[test]
    fn zero_rate_is_off() {
        let now = Instant::now();
        let mut limiter = RateLimiter::new(0, 1, now);
        assert!((0..10_000).all(|_| limiter.allow(now)));
    }
}
