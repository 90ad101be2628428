//! Admission control for cold key issuance (ARCHITECTURE §7): a cold key set costs about a
//! millisecond of CPU (mostly the SAKKE RSK), so at most `max_inflight` run at once and each
//! identity may start at most `burst` per `window` (a token bucket refilled at `burst / window`,
//! kept as GCRA: one "theoretical arrival time" per identity). Shed work gets a `Retry-After`.
//!
//! The global bound is checked first: a request shed because the node is busy costs its
//! identity nothing. Pure bookkeeping: the time is a parameter, read from a monotonic clock by
//! the caller (no window is aligned to the wall clock); the permit releases its slot on drop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Identities tracked before idle ones are pruned.
const MAX_TRACKED_IDENTITIES: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// Too many issuances in flight: retry after this many seconds.
    Busy { retry_after_s: u64 },
    /// This identity used its burst: retry after this many seconds.
    Throttled { retry_after_s: u64 },
}

impl Shed {
    pub fn retry_after_s(&self) -> u64 {
        match *self {
            Shed::Busy { retry_after_s } | Shed::Throttled { retry_after_s } => retry_after_s,
        }
    }
}

#[derive(Debug)]
pub struct Admission {
    max_inflight: usize,
    burst: u32,
    /// `window / burst`: the time one cold issuance of an identity costs.
    interval: Duration,
    /// `window - interval`: how far ahead of the time an identity may run (its burst).
    tolerance: Duration,
    window: Duration,
    inflight: Arc<AtomicUsize>,
    /// identity → theoretical arrival time (monotonic, since the caller's origin).
    tats: Mutex<HashMap<String, Duration>>,
}

/// Holds one in-flight slot until dropped.
#[derive(Debug)]
pub struct Permit(Arc<AtomicUsize>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whole seconds to wait, at least one.
fn retry_s(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

impl Admission {
    pub fn new(max_inflight: usize, burst: u32, window_s: u64) -> Self {
        let window = Duration::from_secs(window_s.max(1));
        let interval = window / burst.max(1);
        Self {
            max_inflight: max_inflight.max(1),
            burst,
            interval,
            tolerance: window.saturating_sub(interval),
            window,
            inflight: Arc::new(AtomicUsize::new(0)),
            tats: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one cold issuance for `identity` at monotonic time `now`, or says when to retry.
    pub fn try_admit(&self, identity: &str, now: Duration) -> Result<Permit, Shed> {
        let prev = self.inflight.fetch_add(1, Ordering::AcqRel);
        let permit = Permit(self.inflight.clone());
        if prev >= self.max_inflight {
            return Err(Shed::Busy { retry_after_s: 1 });
        }
        if self.burst == 0 {
            return Err(Shed::Throttled {
                retry_after_s: retry_s(self.window),
            });
        }
        let mut tats = self.tats.lock().unwrap_or_else(|p| p.into_inner());
        if tats.len() >= MAX_TRACKED_IDENTITIES {
            // An identity whose time has come is as good as a new one.
            tats.retain(|_, tat| *tat > now);
        }
        let tat = tats.get(identity).copied().unwrap_or(now).max(now);
        let ahead = tat - now;
        if ahead > self.tolerance {
            return Err(Shed::Throttled {
                retry_after_s: retry_s(ahead - self.tolerance),
            });
        }
        tats.insert(identity.to_owned(), tat + self.interval);
        Ok(permit)
    }

    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn inflight_is_bounded_and_released() {
        let a = Admission::new(2, 100, 60);
        let p1 = a.try_admit("a", s(0)).unwrap();
        let _p2 = a.try_admit("b", s(0)).unwrap();
        assert_eq!(
            a.try_admit("c", s(0)).unwrap_err(),
            Shed::Busy { retry_after_s: 1 }
        );
        drop(p1);
        assert!(a.try_admit("c", s(0)).is_ok());
        assert_eq!(a.inflight(), 1);
    }

    #[test]
    fn one_identity_cannot_starve_others() {
        let a = Admission::new(100, 2, 60);
        drop(a.try_admit("greedy", s(10)).unwrap());
        drop(a.try_admit("greedy", s(11)).unwrap());
        // The bucket refills one issuance per 30 s: the next one is due at 40 s.
        assert_eq!(
            a.try_admit("greedy", s(12)).unwrap_err(),
            Shed::Throttled { retry_after_s: 28 }
        );
        assert!(a.try_admit("polite", s(12)).is_ok());
        assert!(a.try_admit("greedy", s(40)).is_ok());
        assert!(a.try_admit("greedy", s(41)).is_err());
    }

    #[test]
    fn a_burst_is_never_reset_by_a_window_boundary() {
        // With wall-clock-aligned windows, the second request at 59.9 s → 60.1 s got through.
        let a = Admission::new(100, 1, 60);
        drop(a.try_admit("x", Duration::from_millis(59_900)).unwrap());
        assert!(matches!(
            a.try_admit("x", Duration::from_millis(60_100)),
            Err(Shed::Throttled { retry_after_s: 60 })
        ));
        assert!(a.try_admit("x", Duration::from_millis(119_900)).is_ok());
    }

    #[test]
    fn a_busy_node_does_not_charge_the_identity() {
        let a = Admission::new(1, 1, 60);
        let held = a.try_admit("a", s(0)).unwrap();
        // Shed as busy: the identity keeps its one issuance.
        assert_eq!(
            a.try_admit("b", s(1)).unwrap_err(),
            Shed::Busy { retry_after_s: 1 }
        );
        drop(held);
        assert!(a.try_admit("b", s(2)).is_ok());
        assert_eq!(a.inflight(), 0);
    }
}
