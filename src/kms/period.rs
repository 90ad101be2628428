//! Key periods (TS 33.180 D.3.2.2 `UserKeyPeriod` / `UserKeyOffset`, F.2.1 key period number).
//!
//! A key period number counts periods of `UserKeyPeriod` seconds from `UserKeyOffset` seconds
//! after the NTP epoch (00:00 UTC, 1 January 1900). The same arithmetic is used by clients when
//! they derive a sender's UID from the MIKEY timestamp, so it must agree to the second.

use serde::{Deserialize, Serialize};

/// Seconds between the NTP epoch (1900-01-01) and the Unix epoch (1970-01-01).
pub const NTP_UNIX_OFFSET_S: u64 = 2_208_988_800;

/// The period parameters of one community.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodParams {
    pub period_s: u64,
    pub offset_s: u64,
}

impl PeriodParams {
    /// The period holding `unix_s`, or `None` for a time before the offset (or period 0).
    pub fn period_at_unix(&self, unix_s: u64) -> Option<u64> {
        self.period_at_ntp(unix_s.checked_add(NTP_UNIX_OFFSET_S)?)
    }

    /// The period holding NTP second `ntp_s`.
    pub fn period_at_ntp(&self, ntp_s: u64) -> Option<u64> {
        if self.period_s == 0 {
            return None;
        }
        Some(ntp_s.checked_sub(self.offset_s)? / self.period_s)
    }

    /// Start of period `n` in Unix seconds (`None` if it lies before 1970 or overflows).
    pub fn start_unix(&self, n: u64) -> Option<u64> {
        n.checked_mul(self.period_s)?
            .checked_add(self.offset_s)?
            .checked_sub(NTP_UNIX_OFFSET_S)
    }

    /// End (exclusive) of period `n` in Unix seconds.
    pub fn end_unix(&self, n: u64) -> Option<u64> {
        self.start_unix(n.checked_add(1)?)
    }
}

/// Seconds of one NTP era (the 32-bit seconds field wraps every 2^32 s; era 1 begins
/// 2036-02-07 06:28:16 UTC).
pub const NTP_ERA_S: u64 = 1 << 32;

/// The NTP-UTC 64-bit timestamp of the path's time segment / MIKEY T payload → seconds since
/// the NTP epoch of era 0 (1900), so key periods keep counting across the 2036 rollover.
/// The 32-bit seconds field does not say its era: as RFC 4330 §3 (and RFC 5905 §6) suggest,
/// a value with its most significant bit clear lies in era 1 (2036-02-07 to 2104), a value with
/// it set in era 0 (1968 to 2036). (The fraction does not affect the period.)
pub fn ntp64_seconds(ntp64: u64) -> u64 {
    crate::crypto::kdf::ntp64_seconds(ntp64)
}

/// The NTP-UTC 64-bit timestamp (no fraction) of `unix_s`, for writers: the seconds field
/// is taken modulo the era, which [`ntp64_seconds`] undoes for 1968–2104.
pub fn unix_to_ntp64(unix_s: u64) -> u64 {
    (unix_s.wrapping_add(NTP_UNIX_OFFSET_S) % NTP_ERA_S) << 32
}

/// Parses the 16-hex-digit NTP-UTC time of a `keyprov/<uri>/<time>` path (either case).
pub fn parse_ntp64_hex(s: &str) -> Option<u64> {
    if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interop_timestamp_gives_the_published_period() {
        // mikey-sakke-interop.json: T = EC898DA800000000, period 16777215 s, offset 0 → 236.
        let p = PeriodParams {
            period_s: 16_777_215,
            offset_s: 0,
        };
        let ntp = parse_ntp64_hex("ec898da800000000").unwrap();
        assert_eq!(p.period_at_ntp(ntp64_seconds(ntp)), Some(236));
    }

    #[test]
    fn boundaries() {
        let p = PeriodParams {
            period_s: 2_592_000,
            offset_s: 0,
        };
        let n = p.period_at_unix(1_700_000_000).unwrap();
        let start = p.start_unix(n).unwrap();
        let end = p.end_unix(n).unwrap();
        assert!(start <= 1_700_000_000 && 1_700_000_000 < end);
        assert_eq!(p.period_at_unix(end), Some(n + 1));
        assert_eq!(p.period_at_unix(end - 1), Some(n));
    }

    #[test]
    fn periods_keep_counting_across_the_2036_era_rollover() {
        // 2036-02-07 06:28:16 UTC: the NTP seconds field wraps to 0 (era 1).
        let rollover_unix = NTP_ERA_S - NTP_UNIX_OFFSET_S;
        assert_eq!(rollover_unix, 2_085_978_496);
        let day = PeriodParams {
            period_s: 86_400,
            offset_s: 0,
        };
        let before = unix_to_ntp64(rollover_unix - 1);
        let after = unix_to_ntp64(rollover_unix);
        assert_eq!(before >> 32, 0xFFFF_FFFF);
        assert_eq!(after >> 32, 0);
        assert_eq!(ntp64_seconds(before) + 1, ntp64_seconds(after));
        let (pb, pa) = (
            day.period_at_ntp(ntp64_seconds(before)).unwrap(),
            day.period_at_ntp(ntp64_seconds(after)).unwrap(),
        );
        // The same periods as computed from the Unix clock, on both sides.
        assert_eq!(Some(pb), day.period_at_unix(rollover_unix - 1));
        assert_eq!(Some(pa), day.period_at_unix(rollover_unix));
        assert!(pa >= pb && pa - pb <= 1);
        // A year later still agrees with the Unix clock.
        let later = rollover_unix + 365 * 86_400;
        assert_eq!(
            day.period_at_ntp(ntp64_seconds(unix_to_ntp64(later))),
            day.period_at_unix(later)
        );
        // And today's era-0 times are unchanged.
        let now = 1_700_000_000;
        assert_eq!(ntp64_seconds(unix_to_ntp64(now)), now + NTP_UNIX_OFFSET_S);
    }

    #[test]
    fn bad_hex_times_are_refused() {
        assert_eq!(parse_ntp64_hex("D6B43232"), None);
        assert_eq!(parse_ntp64_hex("D6B432320000000G"), None);
        assert_eq!(
            parse_ntp64_hex("d6b4323200000000"),
            Some(0xD6B4_3232_0000_0000)
        );
    }

    #[test]
    fn time_before_offset_has_no_period() {
        let p = PeriodParams {
            period_s: 10,
            offset_s: 100,
        };
        assert_eq!(p.period_at_ntp(99), None);
        assert_eq!(p.period_at_ntp(100), Some(0));
        assert_eq!(
            PeriodParams {
                period_s: 0,
                offset_s: 0
            }
            .period_at_ntp(5),
            None
        );
    }
}
