//! `metadata.creationTimestamp`: RFC 3339 parsed into an orderable instant.
//!
//! Only ordering matters (route and Gateway age), so the value is seconds since the Unix
//! epoch plus nanoseconds, with the UTC offset applied.

use std::fmt;

/// An instant, ordered by time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    secs: i64,
    nanos: u32,
}

/// A timestamp that is not RFC 3339 (`2024-05-01T12:00:00Z`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadTimestamp;

impl fmt::Display for BadTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an RFC 3339 timestamp (e.g. 2024-05-01T12:00:00Z)")
    }
}

impl Timestamp {
    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
    ///
    /// # Errors
    /// [`BadTimestamp`] when the text is not of that form or a field is out of range.
    pub fn parse(text: &str) -> Result<Self, BadTimestamp> {
        let b = text.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return Err(BadTimestamp);
        }
        if b[13] != b':' || b[16] != b':' {
            return Err(BadTimestamp);
        }
        let num = |r: std::ops::Range<usize>| -> Result<i64, BadTimestamp> {
            let s = text.get(r).ok_or(BadTimestamp)?;
            if !s.bytes().all(|c| c.is_ascii_digit()) {
                return Err(BadTimestamp);
            }
            s.parse::<i64>().map_err(|_| BadTimestamp)
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return Err(BadTimestamp);
        }
        if hour > 23 || minute > 59 || second > 60 {
            return Err(BadTimestamp);
        }
        let mut rest = &text[19..];
        let mut nanos = 0u32;
        if let Some(frac) = rest.strip_prefix('.') {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(BadTimestamp);
            }
            let mut scale = 100_000_000u32;
            for c in frac[..digits].bytes().take(9) {
                nanos += u32::from(c - b'0') * scale;
                scale /= 10;
            }
            rest = &frac[digits..];
        }
        let offset_secs = match rest {
            "Z" | "z" => 0,
            _ => {
                let ob = rest.as_bytes();
                if ob.len() != 6 || !matches!(ob[0], b'+' | b'-') || ob[3] != b':' {
                    return Err(BadTimestamp);
                }
                let h: i64 = rest[1..3].parse().map_err(|_| BadTimestamp)?;
                let m: i64 = rest[4..6].parse().map_err(|_| BadTimestamp)?;
                let sign = if ob[0] == b'-' { -1 } else { 1 };
                sign * (h * 3600 + m * 60)
            }
        };
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
        Ok(Timestamp { secs, nanos })
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_known_dates() {
        assert_eq!(
            Timestamp::parse("1970-01-01T00:00:00Z"),
            Ok(Timestamp { secs: 0, nanos: 0 })
        );
        assert_eq!(
            Timestamp::parse("2024-05-01T12:00:00Z").map(|t| t.secs),
            Ok(1_714_564_800)
        );
    }

    #[test]
    fn offsets_and_fractions_order_correctly() {
        let utc = Timestamp::parse("2024-05-01T12:00:00Z");
        let plus2 = Timestamp::parse("2024-05-01T14:00:00+02:00");
        assert_eq!(utc, plus2);
        let later = Timestamp::parse("2024-05-01T12:00:00.5Z");
        assert!(later.clone().ok() > utc.clone().ok());
        assert_eq!(later.map(|t| t.nanos), Ok(500_000_000));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "2024-05-01T25:00:00Z",
            "2024-05-01T12:00:00",
            "2024-05-01T12:00:00.Z",
            "２０２４-05-01T12:00:00Z",
        ] {
            assert_eq!(Timestamp::parse(bad), Err(BadTimestamp), "{bad}");
        }
    }
}
