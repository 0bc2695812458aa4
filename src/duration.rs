//! One duration syntax everywhere a person writes a duration — `wingman` flags, environment
//! variables, the API's `?since=`, the bot's `/report` — read by `humantime`: `90s`, `30m`,
//! `1h30m`, `2h 15m`, `7d`, `1week`. A bare number means seconds, everywhere (so
//! `--timeout 90` and `WINGMAN_WAIT=90` both wait 90 seconds).

use std::time::Duration;

use chrono::{DateTime, Utc};

/// What the error messages show as examples.
const EXAMPLES: &str = "e.g. 90s, 30m, 1h30m, 7d; a bare number is seconds";

/// Parses a duration; zero is refused (nothing waits for nothing, and nothing is "0 ago").
///
/// # Errors
/// A message naming the text and the accepted forms (clap prefixes the flag's name).
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let duration = match text.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => humantime::parse_duration(text)
            .map_err(|error| format!("`{text}` is not a duration ({error}; {EXAMPLES})"))?,
    };
    if duration.is_zero() {
        return Err(format!(
            "`{text}` is zero; give a positive duration ({EXAMPLES})"
        ));
    }
    Ok(duration)
}

/// `--since`: a duration ago (`24h`) or an RFC 3339 time (`2026-12-01T09:00:00Z`).
///
/// # Errors
/// When the text is neither (the message says both forms).
pub fn since(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(at.with_timezone(&Utc));
    }
    let ago = parse(text).map_err(|error| format!("{error}, or an RFC 3339 time"))?;
    let ago = chrono::Duration::from_std(ago).map_err(|_| format!("`{text}` is too long ago"))?;
    Utc::now()
        .checked_sub_signed(ago)
        .ok_or_else(|| format!("`{text}` is too long ago"))
}

/// A duration as people read it back (`1h 30m`), for messages.
pub fn show(duration: Duration) -> String {
    humantime::format_duration(Duration::from_secs(duration.as_secs())).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them_and_a_bare_number_is_seconds() {
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("2h 15m"), Ok(Duration::from_secs(8100)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse(" 24h "), Ok(Duration::from_secs(86_400)));
    }

    #[test]
    fn a_wrong_duration_says_what_was_wrong_and_what_is_accepted() {
        for text in ["soon", "5 parsecs", "-3m", ""] {
            let error = parse(text).unwrap_err();
            assert!(error.contains(&format!("`{}`", text.trim())), "{error}");
            assert!(error.contains("a bare number is seconds"), "{error}");
        }
        assert!(parse("0").unwrap_err().contains("zero"));
        assert!(parse("0s").unwrap_err().contains("zero"));
    }

    #[test]
    fn since_takes_a_duration_ago_or_a_time() {
        let before = Utc::now();
        let day_ago = since("24h").unwrap();
        let expected = before - chrono::Duration::hours(24);
        assert!((day_ago - expected).num_seconds().abs() < 5, "{day_ago}");
        assert_eq!(
            since("2026-12-01T09:00:00Z").unwrap().to_rfc3339(),
            "2026-12-01T09:00:00+00:00"
        );
        assert!(since("yesterday").unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn durations_are_shown_back_the_same_way() {
        assert_eq!(show(Duration::from_secs(5400)), "1h 30m");
        assert_eq!(show(Duration::from_millis(90_500)), "1m 30s");
    }
}
