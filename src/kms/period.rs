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

/// The NTP-UTC 64-bit timestamp of the path's time segment / MIKEY T payload → NTP seconds.
/// (The high 32 bits are seconds; the fraction does not affect the period.)
pub fn ntp64_seconds(ntp64: u64) -> u64 {
    ntp64 >> 32
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
