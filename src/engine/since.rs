//! Turns a `logs --since` value into the unix time the Engine API takes.
//!
//! The docker CLI does this conversion on the client side, so the gateway must too. It
//! accepts what the CLI accepts: a Go duration before now (`10m`, `1h30m`, `1.5h`), a unix
//! time (`1700000000` or `1700000000.5`) or an RFC 3339 date (`2024-01-02`,
//! `2024-01-02T13:23`, `2024-01-02T13:23:37.5Z`, `2024-01-02T13:23:37+02:00`). One
//! difference: a date without a zone is read as UTC, where the CLI would use the local
//! zone of the machine it runs on.

use crate::engine::EngineError;

const OPTION: &str = "logs --since";

/// Unix seconds for `value`, relative to `now` (unix seconds) for durations.
pub(crate) fn unix_seconds(value: &str, now: i64) -> Result<i32, EngineError> {
    let seconds = if let Some(duration) = go_duration_secs(value) {
        now - duration
    } else if let Some(seconds) = unix_time(value) {
        seconds
    } else if let Some(seconds) = rfc3339(value) {
        seconds
    } else {
        return Err(invalid(
            value,
            "expected a duration like 10m, a unix time or a date like 2024-01-02T13:23:37Z",
        ));
    };
    // The API takes an i32; a time past 2038 means "nothing yet", like i32::MAX.
    Ok(i32::try_from(seconds.clamp(0, i64::from(i32::MAX))).unwrap_or(i32::MAX))
}

fn invalid(value: &str, reason: &'static str) -> EngineError {
    EngineError::InvalidOption {
        option: OPTION,
        value: value.to_string(),
        reason,
    }
}

/// Whole seconds of a Go duration such as `1h30m` or `2.5s` (sub-second parts dropped).
fn go_duration_secs(value: &str) -> Option<i64> {
    let mut rest = value.strip_prefix('+').unwrap_or(value);
    if rest.is_empty() || !rest.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let mut total_nanos: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total_nanos += number * nanos_per_unit;
    }
    Some((total_nanos / 1e9) as i64)
}

/// `seconds` or `seconds.fraction`.
fn unix_time(value: &str) -> Option<i64> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, "0"));
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) {
        return None;
    }
    whole.parse().ok()
}

/// `YYYY-MM-DD[THH:MM[:SS[.fraction]]][Z|±HH:MM]`.
fn rfc3339(value: &str) -> Option<i64> {
    let (date, time) = match value.split_once('T') {
        Some((date, time)) => (date, time),
        None => (value, ""),
    };
    let days = days_from_date(date)?;
    let (clock, offset_secs) = split_zone(time)?;
    let clock_secs = if clock.is_empty() {
        0
    } else {
        clock_seconds(clock)?
    };
    Some(days * 86_400 + clock_secs - offset_secs)
}

fn days_from_date(date: &str) -> Option<i64> {
    let mut parts = date.split('-');
    let year: i64 = fixed_digits(parts.next()?, 4)?;
    let month: i64 = fixed_digits(parts.next()?, 2)?;
    let day: i64 = fixed_digits(parts.next()?, 2)?;
    if parts.next().is_some() || !(1..=12).contains(&month) || day < 1 {
        return None;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if day > month_days[(month - 1) as usize] {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let shifted_year = if month <= 2 { year - 1 } else { year };
    let era = shifted_year.div_euclid(400);
    let year_of_era = shifted_year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

/// Splits `13:23:37+02:00` into the clock and the zone offset in seconds.
fn split_zone(time: &str) -> Option<(&str, i64)> {
    if let Some(clock) = time.strip_suffix('Z') {
        return Some((clock, 0));
    }
    if let Some(sign_at) = time.rfind(['+', '-']) {
        let (clock, zone) = time.split_at(sign_at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (hours, minutes) = zone[1..].split_once(':')?;
        let hours: i64 = fixed_digits(hours, 2)?;
        let minutes: i64 = fixed_digits(minutes, 2)?;
        if hours > 23 || minutes > 59 {
            return None;
        }
        return Some((clock, sign * (hours * 3600 + minutes * 60)));
    }
    Some((time, 0))
}

/// `HH:MM` or `HH:MM:SS` with an optional fraction of a second (dropped).
fn clock_seconds(clock: &str) -> Option<i64> {
    let (clock, fraction) = clock.split_once('.').unwrap_or((clock, "0"));
    if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut parts = clock.split(':');
    let hours: i64 = fixed_digits(parts.next()?, 2)?;
    let minutes: i64 = fixed_digits(parts.next()?, 2)?;
    let seconds: i64 = match parts.next() {
        Some(seconds) => fixed_digits(seconds, 2)?,
        None => 0,
    };
    if parts.next().is_some() || hours > 23 || minutes > 59 || seconds > 60 {
        return None;
    }
    Some(hours * 3600 + minutes * 60 + seconds)
}

fn fixed_digits(text: &str, width: usize) -> Option<i64> {
    if text.len() != width || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn durations_count_back_from_now() {
        assert_eq!(unix_seconds("10m", NOW).ok(), Some((NOW - 600) as i32));
        assert_eq!(unix_seconds("1h30m", NOW).ok(), Some((NOW - 5400) as i32));
        assert_eq!(unix_seconds("1.5h", NOW).ok(), Some((NOW - 5400) as i32));
        assert_eq!(unix_seconds("1500ms", NOW).ok(), Some((NOW - 1) as i32));
    }

    #[test]
    fn unix_times_are_taken_as_they_are() {
        assert_eq!(unix_seconds("1600000000", NOW).ok(), Some(1_600_000_000));
        assert_eq!(unix_seconds("1600000000.75", NOW).ok(), Some(1_600_000_000));
    }

    #[test]
    fn dates_are_read_as_rfc3339_in_utc_unless_zoned() {
        assert_eq!(unix_seconds("1970-01-01", NOW).ok(), Some(0));
        assert_eq!(
            unix_seconds("2024-01-02T13:23:37Z", NOW).ok(),
            Some(1_704_201_817)
        );
        assert_eq!(
            unix_seconds("2024-01-02T13:23:37.123456789Z", NOW).ok(),
            Some(1_704_201_817)
        );
        assert_eq!(
            unix_seconds("2024-01-02T15:23:37+02:00", NOW).ok(),
            Some(1_704_201_817)
        );
        assert_eq!(
            unix_seconds("2024-01-02T13:23", NOW).ok(),
            Some(1_704_201_780)
        );
        assert_eq!(unix_seconds("2024-02-29", NOW).ok(), Some(1_709_164_800));
    }

    #[test]
    fn times_past_2038_are_clamped_to_the_apis_range() {
        assert_eq!(unix_seconds("2999-01-01", NOW).ok(), Some(i32::MAX));
    }

    #[test]
    fn impossible_values_are_refused() {
        for value in [
            "2023-02-29",
            "2024-13-01",
            "10x",
            "h",
            "2024-01-02T25:00",
            "-5m",
        ] {
            assert!(
                matches!(
                    unix_seconds(value, NOW),
                    Err(EngineError::InvalidOption { .. })
                ),
                "{value}"
            );
        }
    }
}
