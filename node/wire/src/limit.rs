//! What one stranger may make a server do: per-client slots (things held at once:
//! connections, requests in flight, uploads) and per-client token buckets (requests a
//! second). The storage node keys them by peer identity, the gateway by IP address.
//!
//! Invariants: memory is bounded whoever connects: slots exist only while held, and
//! buckets live in an LRU of at most `remember` clients (a client forgotten starts
//! again with a full bucket, which costs at most one burst); a limit of `0` means no
//! limit; time is passed in, so the arithmetic is tested without sleeping.

use std::{
    collections::HashMap,
    hash::Hash,
    num::NonZeroUsize,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use lru::LruCache;

/// A sustained rate and a burst above it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens a second; `0.0`: no limit.
    pub per_second: f64,
    /// Tokens that may be spent at once.
    pub burst: u32,
}

/// A token bucket: `tokens` left as of `at`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One token bucket per client, for the clients seen last.
#[derive(Debug)]
pub struct Buckets<K: Hash + Eq> {
    rate: Rate,
    buckets: Mutex<LruCache<K, Bucket>>,
}

impl<K: Hash + Eq> Buckets<K> {
    /// Buckets filling at `rate`, remembering at most `remember` clients.
    pub fn new(rate: Rate, remember: usize) -> Self {
        Self {
            rate,
            buckets: Mutex::new(LruCache::new(
                NonZeroUsize::new(remember.max(1)).expect("at least 1"),
            )),
        }
    }

    /// The rate.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Takes `cost` tokens from `client`'s bucket, or says how long until they are
    /// back (a cost above the burst is charged as the whole burst).
    pub fn admit(&self, client: K, cost: u32, now: Instant) -> Result<(), Duration> {
        let rate = self.rate.per_second;
        if rate <= 0.0 || !rate.is_finite() {
            return Ok(());
        }
        let burst = f64::from(self.rate.burst.max(1));
        let cost = f64::from(cost).min(burst);
        let mut buckets = self.buckets.lock().expect("not poisoned");
        let bucket = buckets.get_or_insert_mut(client, || Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= cost {
            bucket.tokens -= cost;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((cost - bucket.tokens) / rate))
        }
    }
}

/// Things each client holds at once, at most `limit` each.
#[derive(Debug)]
pub struct Slots<K: Hash + Eq + Clone> {
    limit: usize,
    held: Arc<Mutex<HashMap<K, usize>>>,
}

impl<K: Hash + Eq + Clone> Slots<K> {
    /// At most `limit` per client; `0`: no limit.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            held: Default::default(),
        }
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Takes one of `client`'s slots, or `None` if it holds them all.
    pub fn take(&self, client: K) -> Option<Slot<K>> {
        let mut held = self.held.lock().expect("not poisoned");
        let n = held.entry(client.clone()).or_insert(0);
        if self.limit != 0 && *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(Slot {
            held: self.held.clone(),
            client,
        })
    }

    /// Slots `client` holds now.
    pub fn held_by(&self, client: &K) -> usize {
        let held = self.held.lock().expect("not poisoned");
        held.get(client).copied().unwrap_or(0)
    }
}

/// One slot, given back when dropped.
#[derive(Debug)]
pub struct Slot<K: Hash + Eq> {
    held: Arc<Mutex<HashMap<K, usize>>>,
    client: K,
}

impl<K: Hash + Eq> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut held = self.held.lock().expect("not poisoned");
        if let Some(n) = held.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let buckets = Buckets::new(
            Rate {
                per_second: 10.0,
                burst: 5,
            },
            16,
        );
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(buckets.admit("me", 1, t0).is_ok());
        }
        let wait = buckets.admit("me", 1, t0).expect_err("burst spent");
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100));
        assert!(
            buckets.admit("other", 1, t0).is_ok(),
            "others have their own"
        );
        // 100 ms later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(100);
        assert!(buckets.admit("me", 1, t1).is_ok());
        assert!(buckets.admit("me", 1, t1).is_err());
        // A long pause refills up to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..5 {
            assert!(buckets.admit("me", 1, t2).is_ok());
        }
        assert!(buckets.admit("me", 1, t2).is_err());
        // A dear request costs more; one above the burst costs the burst.
        let t3 = t2 + Duration::from_secs(60);
        assert!(buckets.admit("me", 4, t3).is_ok());
        assert_eq!(
            buckets.admit("me", 4, t3),
            Err(Duration::from_millis(300)),
            "1 token left, 3 more needed at 10/s"
        );
        let t4 = t3 + Duration::from_secs(60);
        assert!(buckets.admit("me", 100, t4).is_ok());
        assert!(buckets.admit("me", 1, t4).is_err());
    }

    #[test]
    fn no_rate_means_no_metering_and_memory_is_bounded() {
        let free = Buckets::new(
            Rate {
                per_second: 0.0,
                burst: 1,
            },
            4,
        );
        let t0 = Instant::now();
        for _ in 0..10_000 {
            assert!(free.admit(1u32, 1, t0).is_ok());
        }
        let metered = Buckets::new(
            Rate {
                per_second: 1.0,
                burst: 1,
            },
            4,
        );
        for client in 0..1000u32 {
            assert!(metered.admit(client, 1, t0).is_ok());
        }
        assert_eq!(metered.buckets.lock().expect("lock").len(), 4);
        // The clients seen last are remembered.
        assert!(metered.admit(999, 1, t0).is_err());
    }

    #[test]
    fn slots_are_counted_and_given_back() {
        let slots = Slots::new(2);
        let a = slots.take("me").expect("first");
        let b = slots.take("me").expect("second");
        assert!(slots.take("me").is_none(), "a third is over the limit");
        assert!(slots.take("other").is_some());
        assert_eq!(slots.held_by(&"other"), 0, "given back when dropped");
        drop(a);
        assert_eq!(slots.held_by(&"me"), 1);
        let _c = slots.take("me").expect("a slot came back");
        drop(b);
        assert_eq!(slots.held_by(&"me"), 1);
        assert_eq!(slots.held.lock().expect("lock").len(), 1);
        let unlimited = Slots::new(0);
        let all: Vec<_> = (0..1000).map(|_| unlimited.take(1u8)).collect();
        assert!(all.iter().all(Option::is_some));
    }
}
