//! Token-bucket rate limiting and fault injection.

use crate::rng::Rng;
use parking_lot::Mutex;
use std::time::Instant;

/// A token bucket refilled at `rate` tokens/s with a burst of `rate` tokens.
pub struct RateLimiter {
    /// (rate, tokens, last refill); the rate can change while serving (`/_admin/faults`).
    inner: Mutex<(f64, f64, Instant)>,
}

impl RateLimiter {
    /// `rate == 0` disables limiting.
    pub fn new(rate: u32) -> Self {
        RateLimiter {
            inner: Mutex::new((rate as f64, rate as f64, Instant::now())),
        }
    }

    pub fn rate(&self) -> u32 {
        self.inner.lock().0 as u32
    }

    /// Changes the rate; the bucket starts full at the new rate.
    pub fn set_rate(&self, rate: u32) {
        *self.inner.lock() = (rate as f64, rate as f64, Instant::now());
    }

    /// Takes one token; false when the bucket is empty.
    pub fn try_acquire(&self) -> bool {
        self.try_acquire_at(Instant::now())
    }

    pub fn try_acquire_at(&self, now: Instant) -> bool {
        let mut g = self.inner.lock();
        let (rate, tokens, last) = *g;
        if rate <= 0.0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(last).as_secs_f64();
        g.1 = (tokens + elapsed * rate).min(rate);
        g.2 = now.max(last);
        if g.1 >= 1.0 {
            g.1 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Decides, deterministically from a seed, which requests fail with 500/503.
pub struct Faults {
    /// (rate, generator); the rate can change while serving (`/_admin/faults`).
    inner: Mutex<(f64, Rng)>,
}

impl Faults {
    pub fn new(rate: f64, seed: u64) -> Self {
        Faults {
            inner: Mutex::new((rate.clamp(0.0, 1.0), Rng::new(seed))),
        }
    }

    pub fn rate(&self) -> f64 {
        self.inner.lock().0
    }

    pub fn set_rate(&self, rate: f64) {
        self.inner.lock().0 = rate.clamp(0.0, 1.0);
    }

    /// `Some(500 | 503)` when this request should fail.
    pub fn pick(&self) -> Option<u16> {
        let mut g = self.inner.lock();
        let (rate, r) = &mut *g;
        if *rate <= 0.0 {
            return None;
        }
        if r.chance(*rate) {
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
    fn rate_changes_while_serving() {
        let rl = RateLimiter::new(0);
        let t0 = Instant::now();
        assert_eq!((0..50).filter(|_| rl.try_acquire_at(t0)).count(), 50);
        rl.set_rate(3);
        assert_eq!(rl.rate(), 3);
        let t1 = Instant::now();
        assert_eq!((0..10).filter(|_| rl.try_acquire_at(t1)).count(), 3);
        rl.set_rate(0);
        assert!(rl.try_acquire_at(t1));
        let f = Faults::new(0.0, 3);
        assert!((0..100).all(|_| f.pick().is_none()));
        f.set_rate(1.0);
        assert!((0..100).all(|_| f.pick().is_some()));
        f.set_rate(7.0);
        assert_eq!(f.rate(), 1.0);
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
