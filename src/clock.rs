//! The only place that reads the time. Everything else takes a [`Clock`] so tests can pin it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync + 'static {
    /// Seconds since the Unix epoch.
    fn now_unix(&self) -> u64;
    fn now_unix_ms(&self) -> u64 {
        self.now_unix().saturating_mul(1000)
    }
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
    fn now_unix_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn new(unix_s: u64) -> Self {
        Self(AtomicU64::new(unix_s))
    }
    pub fn set(&self, unix_s: u64) {
        self.0.store(unix_s, Ordering::SeqCst);
    }
    pub fn advance(&self, s: u64) {
        self.0.fetch_add(s, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_unix(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The system clock shifted by a fixed offset (the test-only `test_clock_offset_s` setting).
#[derive(Debug, Clone, Copy)]
pub struct OffsetClock(pub i64);

impl Clock for OffsetClock {
    fn now_unix(&self) -> u64 {
        SystemClock.now_unix().saturating_add_signed(self.0)
    }
    fn now_unix_ms(&self) -> u64 {
        SystemClock
            .now_unix_ms()
            .saturating_add_signed(self.0.saturating_mul(1000))
    }
}
