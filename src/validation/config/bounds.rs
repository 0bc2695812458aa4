//! The value checks every section of the config uses, each error naming its key.

use crate::validation::config::ConfigError;
use crate::validation::config::validator_sections::EnvPoints;

pub(super) fn env_points(key: &str, points: &EnvPoints) -> Result<(), ConfigError> {
    percent(&format!("{key}.dev"), points.dev)?;
    percent(&format!("{key}.test"), points.test)?;
    percent(&format!("{key}.prd"), points.prd)
}

pub(super) fn keywords(key: &str, list: &[String]) -> Result<(), ConfigError> {
    if list.is_empty() {
        return Err(invalid(key, "must not be empty"));
    }
    for word in list {
        let bare = word.strip_suffix('*').unwrap_or(word);
        if bare.trim().is_empty() {
            return Err(invalid(key, "has an empty keyword"));
        }
        if bare.trim() != bare {
            return Err(invalid(
                key,
                format!("has a keyword with outer spaces: `{word}`"),
            ));
        }
    }
    Ok(())
}

pub(super) fn percent(key: &str, value: i64) -> Result<(), ConfigError> {
    between(key, value, 0, 100)
}

pub(super) fn between(key: &str, value: i64, low: i64, high: i64) -> Result<(), ConfigError> {
    if (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("must be between {low} and {high}, got {value}"),
        ))
    }
}

pub(super) fn at_least(key: &str, value: i64, low: i64) -> Result<(), ConfigError> {
    if value >= low {
        Ok(())
    } else {
        Err(invalid(key, format!("must be at least {low}, got {value}")))
    }
}

pub(super) fn not_blank(key: &str, value: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        Err(invalid(key, "must not be empty"))
    } else {
        Ok(())
    }
}

pub(super) fn invalid(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        problem: problem.into(),
    }
}
