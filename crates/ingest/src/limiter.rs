//! Per-device and per-tenant rate limits: token buckets, checked for a whole batch at once.
//!
//! A bucket holds up to `burst` events and refills at `per_second`. A batch takes one token
//! per event from its tenant's bucket and from the bucket of each device it names; if any
//! bucket lacks tokens, nothing is taken and the batch is refused with the time after
//! which it would fit. Buckets of idle devices are dropped once full, so memory follows the
//! number of active devices.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ingot_core::{Limits, TenantId};
use parking_lot::Mutex;

/// A sustained rate and a burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Events per second, refilled continuously.
    pub per_second: f64,
    /// The most events available at once.
    pub burst: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refilled(self, rate: Rate, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * rate.per_second).min(rate.burst)
    }
}

/// Why a batch was refused: when to try again.
#[derive(Debug, Clone, PartialEq)]
pub struct Limited {
    /// Whose limit: `device probe-7` or `tenant`.
    pub whose: String,
    /// When the batch would fit.
    pub retry_after: Duration,
    /// The batch can never fit: it is larger than the burst.
    pub too_big: bool,
}

/// A bucket's key: the tenant, and the device (`None` for the tenant's own bucket).
type Key = (TenantId, Option<String>);

/// What a batch asks of one bucket.
struct Want {
    key: Key,
    rate: Rate,
    tokens: f64,
    whose: String,
}

/// The most buckets kept before full (idle) ones are swept.
const SWEEP_AT: usize = 100_000;

/// The token buckets of one server.
#[derive(Debug)]
pub struct Limiter {
    device: Option<Rate>,
    tenant: Option<Rate>,
    buckets: Mutex<HashMap<Key, Bucket>>,
}

impl Limiter {
    /// The limits of `limits` (a rate of 0 is no limit).
    pub fn new(limits: &Limits) -> Limiter {
        let rate = |per_second: f64, burst: u64| {
            (per_second > 0.0).then_some(Rate {
                per_second,
                burst: (burst as f64).max(1.0),
            })
        };
        Limiter {
            device: rate(limits.device_events_per_second, limits.device_burst),
            tenant: rate(limits.tenant_events_per_second, limits.tenant_burst),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether any limit is set.
    pub fn is_active(&self) -> bool {
        self.device.is_some() || self.tenant.is_some()
    }

    /// Takes `total` tokens from the tenant and `n` from each `(device, n)`, all or none.
    pub fn take(
        &self,
        tenant: TenantId,
        devices: &[(&str, usize)],
        total: usize,
        now: Instant,
    ) -> Result<(), Limited> {
        let mut wanted: Vec<Want> = Vec::new();
        if let Some(rate) = self.tenant {
            wanted.push(Want {
                key: (tenant, None),
                rate,
                tokens: total as f64,
                whose: "tenant".to_owned(),
            });
        }
        if let Some(rate) = self.device {
            for &(device, n) in devices {
                let key = (tenant, Some(device.to_owned()));
                wanted.push(Want {
                    key,
                    rate,
                    tokens: n as f64,
                    whose: format!("device {device}"),
                });
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let mut buckets = self.buckets.lock();
        for want in &wanted {
            let available = buckets
                .get(&want.key)
                .map_or(want.rate.burst, |b| b.refilled(want.rate, now));
            if want.tokens > want.rate.burst {
                return Err(Limited {
                    whose: want.whose.clone(),
                    retry_after: Duration::from_secs(1),
                    too_big: true,
                });
            }
            if available < want.tokens {
                let wait = (want.tokens - available) / want.rate.per_second;
                let retry_after = Duration::from_secs_f64(wait.max(0.001));
                return Err(Limited {
                    whose: want.whose.clone(),
                    retry_after,
                    too_big: false,
                });
            }
        }
        for Want {
            key, rate, tokens, ..
        } in wanted
        {
            let available = buckets
                .get(&key)
                .map_or(rate.burst, |b| b.refilled(rate, now));
            buckets.insert(
                key,
                Bucket {
                    tokens: available - tokens,
                    at: now,
                },
            );
        }
        if buckets.len() > SWEEP_AT {
            let (device, tenant) = (self.device, self.tenant);
            buckets.retain(|(_, device_key), b| {
                let rate = if device_key.is_some() { device } else { tenant };
                rate.is_some_and(|rate| b.refilled(rate, now) < rate.burst)
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(device: f64, device_burst: u64, tenant: f64, tenant_burst: u64) -> Limits {
        Limits {
            device_events_per_second: device,
            device_burst,
            tenant_events_per_second: tenant,
            tenant_burst,
            ..Limits::default()
        }
    }

    #[test]
    fn buckets_refill_at_their_rate() {
        let limiter = Limiter::new(&limits(10.0, 20, 0.0, 0));
        let t0 = Instant::now();
        let t = TenantId(1);
        assert!(
            limiter.take(t, &[("d", 20)], 20, t0).is_ok(),
            "a full burst"
        );
        let refused = limiter.take(t, &[("d", 5)], 5, t0).unwrap_err();
        assert_eq!(refused.whose, "device d");
        assert!(
            (refused.retry_after.as_secs_f64() - 0.5).abs() < 1e-6,
            "{refused:?}"
        );
        assert!(
            limiter
                .take(t, &[("d", 5)], 5, t0 + Duration::from_millis(500))
                .is_ok(),
            "refilled"
        );
        assert!(
            limiter.take(t, &[("other", 20)], 20, t0).is_ok(),
            "devices have their own buckets"
        );
        assert!(
            limiter.take(TenantId(2), &[("d", 20)], 20, t0).is_ok(),
            "and tenants too"
        );
        let too_big = limiter.take(t, &[("x", 21)], 21, t0).unwrap_err();
        assert!(too_big.too_big);
    }

    #[test]
    fn a_refused_batch_takes_nothing() {
        let limiter = Limiter::new(&limits(100.0, 10, 1_000.0, 15));
        let t0 = Instant::now();
        let t = TenantId(1);
        // a fits its device bucket, but together with b the tenant's 15 are exceeded.
        let refused = limiter.take(t, &[("a", 8), ("b", 8)], 16, t0).unwrap_err();
        assert_eq!(refused.whose, "tenant");
        assert!(
            limiter.take(t, &[("a", 10)], 10, t0).is_ok(),
            "a's bucket was left whole"
        );
    }

    #[test]
    fn no_limits_means_no_work() {
        let limiter = Limiter::new(&Limits::default());
        assert!(!limiter.is_active());
        assert!(
            limiter
                .take(TenantId(1), &[("d", 1_000_000)], 1_000_000, Instant::now())
                .is_ok()
        );
    }
}
