//! Token-bucket rate limiting and fault injection.

use crate::rng::Rng;
use parking_lot::Mutex;
use std::time::Instant;

/// A token bucket refilled at `rate` tokens/s with a burst of `rate` tokens.
pub struct RateLimiter {
    rate: f64,
    inner: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    /// `rate == 0` disables limiting.
    pub fn new(rate: u32) -> Self {
        RateLimiter {
            rate: rate as f64,
            inner: Mutex::new((rate as f64, Instant::now())),
        }
    }

    /// Takes one token; false when the bucket is empty.
    pub fn try_acquire(&self) -> bool {
        self.try_acquire_at(Instant::now())
    }

    pub fn try_acquire_at(&self, now: Instant) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let mut g = self.inner.lock();
        let elapsed = now.saturating_duration_since(g.1).as_secs_f64();
        g.0 = (g.0 + elapsed * self.rate).min(self.rate);
        g.1 = now.max(g.1);
        if g.0 >= 1.0 {
            g.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Decides, deterministically from a seed, which requests fail with 500/503.
pub struct Faults {
    rate: f64,
    rng: Mutex<Rng>,
}

impl Faults {
    pub fn new(rate: f64, seed: u64) -> Self {
        Faults {
            rate: rate.clamp(0.0, 1.0),
            rng: Mutex::new(Rng::new(seed)),
        }
    }

    /// `Some(500 | 503)` when this request should fail.
    pub fn pick(&self) -> Option<u16> {
        if self.rate <= 0.0 {
            return None;
        }
        let mut r = self.rng.lock();
        if r.chance(self.rate) {
            Some(if r.chance(0.5) { 500 } else { 503 })
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_empties_and_refills() {
        let rl = RateLimiter::new(5);
        let t0 = Instant::now();
        let ok = (0..10).filter(|_| rl.try_acquire_at(t0)).count();
        assert_eq!(ok, 5);
        assert!(rl.try_acquire_at(t0 + Duration::from_millis(250)));
        assert!(!rl.try_acquire_at(t0 + Duration::from_millis(250)));
        assert!(RateLimiter::new(0).try_acquire());
    }

    #[test]
    fn faults_are_deterministic() {
        let a = Faults::new(0.3, 9);
        let b = Faults::new(0.3, 9);
        let xs: Vec<_> = (0..200).map(|_| a.pick()).collect();
        let ys: Vec<_> = (0..200).map(|_| b.pick()).collect();
        assert_eq!(xs, ys);
        let n = xs.iter().filter(|x| x.is_some()).count();
        assert!(n > 30 && n < 90, "{n}");
        assert!(Faults::new(0.0, 1).pick().is_none());
    }
}
