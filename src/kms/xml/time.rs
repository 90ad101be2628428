//! `xsd:dateTime` values of the KMS documents (`Time`, `ValidFrom`, `ValidTo`).
//!
//! Parsing accepts a zone designator (`Z` or `±hh:mm`) or none; a value without a zone is
//! taken as UTC, which is what the real clients that omit it mean (their samples are UTC wall
//! clock). Fractional seconds are accepted. Rendering is always UTC, whole seconds, with `Z`
//! (e.g. `2026-11-28T03:19:08Z`), so every node renders the same instant the same way.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use super::XmlError;

/// Parses an `xsd:dateTime` into a UTC instant.
pub fn parse_date_time(field: &'static str, text: &str) -> Result<OffsetDateTime, XmlError> {
    let text = text.trim();
    let invalid = || XmlError::invalid(field, "not an xsd:dateTime");
    // The zone, if any, follows the time part; a '-' before the 'T' belongs to the date.
    let time_part = text.split_once(['T', 't']).ok_or_else(invalid)?.1;
    let zoned = time_part.ends_with(['Z', 'z']) || time_part.contains(['+', '-']);
    let instant = if zoned {
        OffsetDateTime::parse(text, &Rfc3339).map_err(|_| invalid())?
    } else {
        let format = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
        );
        PrimitiveDateTime::parse(text, &format)
            .map_err(|_| invalid())?
            .assume_utc()
    };
    Ok(instant.to_offset(UtcOffset::UTC))
}

/// Renders an instant as UTC `YYYY-MM-DDThh:mm:ssZ` (sub-seconds dropped).
pub fn format_date_time(field: &'static str, at: OffsetDateTime) -> Result<String, XmlError> {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    at.to_offset(UtcOffset::UTC)
        .format(&format)
        .map_err(|_| XmlError::invalid(field, "instant cannot be rendered as xsd:dateTime"))
}

/// A Unix time as a date-time, if it is one (`None` beyond the calendar's range).
pub fn odt(unix: u64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(i64::try_from(unix).ok()?).ok()
}
