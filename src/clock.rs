//! The only place that reads the time. Everything else takes a [`Clock`] so tests can pin it.
//! [`PeerClocks`] keeps how far the peers' clocks are from this node's (the clock-skew rule).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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

/// The header a node stamps on every Raft batch it POSTs to a peer: its clock, in Unix ms.
pub const CLOCK_HEADER: &str = "Sealkm-Clock-Ms";

/// How far each peer's clock is from this node's, as last seen on the peer transport: the
/// peer's stamp ([`CLOCK_HEADER`]) minus this node's clock when the batch arrived. The
/// one-way delay makes a peer's clock look behind by that delay, never ahead.
///
/// The clock rule (docs/CHAOS.md, "Clock skew"): a follower serves time-dependent keys only
/// while its clock is within a bound of the leader's ([`PeerClocks::offset`]), so all nodes
/// agree on which key period is current.
pub struct PeerClocks {
    clock: Arc<dyn Clock>,
    /// peer id → (offset ms, this node's clock when seen, ms)
    seen: Mutex<HashMap<u64, (i64, u64)>>,
}

impl PeerClocks {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// This node's clock (the one it stamps with and measures against).
    pub fn now_unix_ms(&self) -> u64 {
        self.clock.now_unix_ms()
    }

    /// Records a batch from `peer` stamped `sent_ms` by its clock, arriving now.
    pub fn record(&self, peer: u64, sent_ms: u64) {
        let now = self.clock.now_unix_ms();
        let offset = sent_ms as i128 - now as i128;
        let offset = offset.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer, (offset, now));
    }

    /// `peer`'s clock minus this node's, in ms, from a stamp seen within `max_age_ms`;
    /// `None` when there is none that recent.
    pub fn offset(&self, peer: u64, max_age_ms: u64) -> Option<i64> {
        let now = self.clock.now_unix_ms();
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(&peer)
            .filter(|(_, at)| now.abs_diff(*at) <= max_age_ms)
            .map(|(offset, _)| *offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_offset_is_its_stamp_minus_our_clock_and_goes_stale() {
        let clock = Arc::new(ManualClock::new(1_000));
        let peers = PeerClocks::new(clock.clone());
        assert_eq!(peers.offset(2, 5_000), None);
        peers.record(2, 1_000_000 + 300_000);
        peers.record(3, 1_000_000 - 250);
        assert_eq!(peers.offset(2, 5_000), Some(300_000));
        assert_eq!(peers.offset(3, 5_000), Some(-250));
        clock.advance(5);
        assert_eq!(peers.offset(2, 5_000), Some(300_000));
        clock.advance(1);
        assert_eq!(peers.offset(2, 5_000), None);
        peers.record(2, 1_006_000);
        assert_eq!(peers.offset(2, 5_000), Some(0));
    }
}
