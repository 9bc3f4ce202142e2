//! Durations as people type them (`30s`, `10m`, `2h`, `7d`) and as a live countdown shows them.

use sotto_core::policy::MAX_TTL_SECONDS;

/// Why a duration could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was given.
    #[error(
        "a duration is needed: use a number followed by s, m, h or d, such as 30s, 10m, 2h or 7d"
    )]
    Empty,
    /// The text is not a number optionally followed by one of the units.
    #[error("`{0}` is not a duration: use a number followed by s, m, h or d, such as 30s, 10m, 2h or 7d")]
    Invalid(String),
    /// The duration is zero.
    #[error("`{0}` is no time at all: the shortest duration is 1s")]
    Zero(String),
    /// The duration is longer than the longest time-to-live Sotto allows.
    #[error("`{0}` is too long: the longest duration is 365 days (365d)")]
    TooLong(String),
}

/// Parses a duration such as `30s`, `10m`, `2h` or `7d` (a bare number means seconds) into
/// seconds. Surrounding white space is ignored; zero and anything above
/// [`MAX_TTL_SECONDS`] (365 days) are rejected.
pub fn parse_duration(s: &str) -> Result<u32, DurationError> {
    let text = s.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let (digits, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], Some(c)),
        _ => (text, None),
    };
    let multiplier: u64 = match unit {
        None | Some('s') => 1,
        Some('m') => 60,
        Some('h') => 3600,
        Some('d') => 86_400,
        Some(_) => return Err(DurationError::Invalid(text.to_owned())),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DurationError::Invalid(text.to_owned()));
    }
    // Only digits remain, so parsing fails only when the number overflows: far too long.
    let number: u64 = digits
        .parse()
        .map_err(|_| DurationError::TooLong(text.to_owned()))?;
    let seconds = number
        .checked_mul(multiplier)
        .ok_or_else(|| DurationError::TooLong(text.to_owned()))?;
    if seconds == 0 {
        return Err(DurationError::Zero(text.to_owned()));
    }
    match u32::try_from(seconds) {
        Ok(secs) if secs <= MAX_TTL_SECONDS => Ok(secs),
        _ => Err(DurationError::TooLong(text.to_owned())),
    }
}

/// Formats the time left of a countdown with its two most significant units:
/// `45s`, `9m 05s`, `1h 59m`, `6d 23h`.
pub fn format_remaining(seconds: u64) -> String {
    let (days, hours) = (seconds / 86_400, seconds / 3600 % 24);
    let (minutes, secs) = (seconds / 60 % 60, seconds % 60);
    if days > 0 {
        format!("{days}d {hours:02}h")
    } else if hours > 0 {
        format!("{hours}h {minutes:02}m")
    } else if minutes > 0 {
        format!("{minutes}m {secs:02}s")
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse_duration("30s").unwrap(), 30);
        assert_eq!(parse_duration("10m").unwrap(), 600);
        assert_eq!(parse_duration("2h").unwrap(), 7200);
        assert_eq!(parse_duration("7d").unwrap(), 604_800);
        assert_eq!(parse_duration("45").unwrap(), 45);
        assert_eq!(parse_duration(" 5m ").unwrap(), 300);
        assert_eq!(parse_duration("365d").unwrap(), MAX_TTL_SECONDS);
        assert_eq!(parse_duration("31536000").unwrap(), MAX_TTL_SECONDS);
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(parse_duration("   "), Err(DurationError::Empty));
        for bad in [
            "5x", "s", "m5", "-5s", "+5s", "1.5h", "5 s", "5ss", "10M", "5é", "٣s",
        ] {
            assert!(
                matches!(parse_duration(bad), Err(DurationError::Invalid(_))),
                "{bad}"
            );
        }
        assert_eq!(parse_duration("0s"), Err(DurationError::Zero("0s".into())));
        assert_eq!(parse_duration("0"), Err(DurationError::Zero("0".into())));
    }

    #[test]
    fn rejects_too_long_and_overflow() {
        for long in [
            "366d",
            "31536001",
            "8761h",
            "99999999999999999999999999d",
            "18446744073709551615d",
            "4294967296",
        ] {
            assert!(
                matches!(parse_duration(long), Err(DurationError::TooLong(_))),
                "{long}"
            );
        }
    }

    #[test]
    fn error_messages_are_readable() {
        assert_eq!(
            parse_duration("5x").unwrap_err().to_string(),
            "`5x` is not a duration: use a number followed by s, m, h or d, such as 30s, 10m, 2h or 7d"
        );
        assert!(parse_duration("400d")
            .unwrap_err()
            .to_string()
            .contains("365 days"));
    }

    #[test]
    fn formats_two_most_significant_units() {
        assert_eq!(format_remaining(0), "0s");
        assert_eq!(format_remaining(45), "45s");
        assert_eq!(format_remaining(60), "1m 00s");
        assert_eq!(format_remaining(545), "9m 05s");
        assert_eq!(format_remaining(3599), "59m 59s");
        assert_eq!(format_remaining(3600), "1h 00m");
        assert_eq!(format_remaining(7199), "1h 59m");
        assert_eq!(format_remaining(86_399), "23h 59m");
        assert_eq!(format_remaining(86_400), "1d 00h");
        assert_eq!(format_remaining(604_799), "6d 23h");
        assert_eq!(format_remaining(u64::from(MAX_TTL_SECONDS)), "365d 00h");
    }
}
