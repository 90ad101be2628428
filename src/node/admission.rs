//! Admission control for cold key issuance (ARCHITECTURE §7): a cold key set costs about a
//! millisecond of CPU (mostly the SAKKE RSK), so at most `max_inflight` run at once and each
//! identity may start at most `burst` per window. Shed work gets a `Retry-After`.
//!
//! Pure bookkeeping: the time is a parameter; the permit releases its slot on drop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Identities tracked before stale windows are pruned.
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
    window_s: u64,
    inflight: Arc<AtomicUsize>,
    windows: Mutex<HashMap<String, (u64, u32)>>,
}

/// Holds one in-flight slot until dropped.
#[derive(Debug)]
pub struct Permit(Arc<AtomicUsize>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission {
    pub fn new(max_inflight: usize, burst: u32, window_s: u64) -> Self {
        Self {
            max_inflight: max_inflight.max(1),
            burst,
            window_s: window_s.max(1),
            inflight: Arc::new(AtomicUsize::new(0)),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one cold issuance for `identity` at `now_unix`, or says when to retry.
    pub fn try_admit(&self, identity: &str, now_unix: u64) -> Result<Permit, Shed> {
        {
            let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
            let window_start = now_unix - now_unix % self.window_s;
            if w.len() >= MAX_TRACKED_IDENTITIES {
                w.retain(|_, (start, _)| *start == window_start);
            }
            let entry = w.entry(identity.to_owned()).or_insert((window_start, 0));
            if entry.0 != window_start {
                *entry = (window_start, 0);
            }
            if entry.1 >= self.burst {
                return Err(Shed::Throttled {
                    retry_after_s: (window_start + self.window_s - now_unix).max(1),
                });
            }
            entry.1 += 1;
        }
        let prev = self.inflight.fetch_add(1, Ordering::AcqRel);
        if prev >= self.max_inflight {
            self.inflight.fetch_sub(1, Ordering::AcqRel);
            return Err(Shed::Busy { retry_after_s: 1 });
        }
        Ok(Permit(self.inflight.clone()))
    }

    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflight_is_bounded_and_released() {
        let a = Admission::new(2, 100, 60);
        let p1 = a.try_admit("a", 0).unwrap();
        let _p2 = a.try_admit("b", 0).unwrap();
        assert_eq!(
            a.try_admit("c", 0).unwrap_err(),
            Shed::Busy { retry_after_s: 1 }
        );
        drop(p1);
        assert!(a.try_admit("c", 0).is_ok());
    }

    #[test]
    fn one_identity_cannot_starve_others() {
        let a = Admission::new(100, 2, 60);
        drop(a.try_admit("greedy", 10).unwrap());
        drop(a.try_admit("greedy", 11).unwrap());
        assert_eq!(
            a.try_admit("greedy", 12).unwrap_err(),
            Shed::Throttled { retry_after_s: 48 }
        );
        assert!(a.try_admit("polite", 12).is_ok());
        // A new window resets the identity's budget.
        assert!(a.try_admit("greedy", 60).is_ok());
    }
}
