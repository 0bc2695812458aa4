//! Redaction of what the read-only operations read, before it leaves the gateway.
//!
//! `inspect` and `logs` are allowed in every environment because they change nothing, but
//! their output travels far: into the status event every publisher may read, the permanent
//! audit and the Telegram chat. A container's environment is where services keep their
//! passwords (`POSTGRES_PASSWORD=…`), so:
//! - every value of `Config.Env` becomes `NAME=<redacted>`, whatever the name;
//! - anywhere in the inspect JSON, the value of a key that looks secret (`password`,
//!   `token`, `secret`, `api_key`, …, see [`SECRET_WORDS`]) becomes `<redacted>`, and so
//!   does the value of a `NAME=value` string whose name looks secret (a command line's
//!   `--db-password=…`, a label);
//! - log text gets the same `name=value` / `name: value` treatment, line by line (best
//!   effort: a secret printed without a telling name cannot be recognised).
//!
//! Redaction happens on the JSON before any `--format` template renders it, so no template
//! can reach around it.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

/// What a redacted value is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Words that make a key name look secret, compared with the name's words (split at
/// non-alphanumerics and lower-to-upper case changes), so `DB_PASSWORD`, `apiKey` and
/// `com.example.token` match and `Tokenizer` or `monkey` do not.
pub const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "pass",
    "secret",
    "secrets",
    "token",
    "tokens",
    "key",
    "apikey",
    "credential",
    "credentials",
    "auth",
    "authorization",
    "private",
    "cookie",
    "session",
    "signature",
    "dsn",
];

/// `name=value` or `name: value` with a name made of word characters, dots and dashes.
static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"([A-Za-z_][A-Za-z0-9_.\-]*)(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;&"']+)"#)
        .expect("the assignment pattern compiles")
});

/// Redacts an inspect response in place (see the module header).
pub fn inspect(value: &mut Value) {
    if let Some(environment) = value
        .get_mut("Config")
        .and_then(|config| config.get_mut("Env"))
        .and_then(Value::as_array_mut)
    {
        for entry in environment.iter_mut() {
            if let Some(text) = entry.as_str() {
                let name = text.split_once('=').map_or(text, |(name, _)| name);
                *entry = Value::String(format!("{name}={REDACTED}"));
            }
        }
    }
    redact_secret_keys(value);
}

/// Redacts `name=value` and `name: value` pairs whose name looks secret in free text.
pub fn text(text: &str) -> String {
    ASSIGNMENT
        .replace_all(text, |found: &regex::Captures<'_>| {
            if looks_secret(&found[1]) {
                format!("{}{}{REDACTED}", &found[1], &found[2])
            } else {
                found[0].to_string()
            }
        })
        .into_owned()
}

/// True when one of the words of `name` is in [`SECRET_WORDS`].
pub fn looks_secret(name: &str) -> bool {
    words(name).any(|word| SECRET_WORDS.contains(&word.as_str()))
}

fn redact_secret_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if looks_secret(key) {
                    redact_all(inner);
                } else {
                    redact_secret_keys(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_secret_keys),
        Value::String(string) => {
            let redacted = text(string);
            if redacted != *string {
                *string = redacted;
            }
        }
        _ => {}
    }
}

/// Every scalar inside `value` becomes [`REDACTED`] (null and booleans say nothing).
fn redact_all(value: &mut Value) {
    match value {
        Value::Object(map) => map.values_mut().for_each(redact_all),
        Value::Array(items) => items.iter_mut().for_each(redact_all),
        Value::String(_) | Value::Number(_) => *value = Value::String(REDACTED.to_string()),
        Value::Null | Value::Bool(_) => {}
    }
}

/// The lowercase words of a name: `apiKey` → `api`, `key`; `DB_PASSWORD` → `db`, `password`.
fn words(name: &str) -> impl Iterator<Item = String> + '_ {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for character in name.chars() {
        if !character.is_ascii_alphanumeric() {
            words.push(std::mem::take(&mut current));
            previous_lower = false;
            continue;
        }
        if character.is_ascii_uppercase() && previous_lower {
            words.push(std::mem::take(&mut current));
        }
        previous_lower = character.is_ascii_lowercase() || character.is_ascii_digit();
        current.push(character.to_ascii_lowercase());
    }
    words.push(current);
    words.into_iter().filter(|word| !word.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_environment_value_is_redacted_whatever_its_name() {
        let mut inspected = json!({
            "Config": {"Env": ["PATH=/usr/bin", "SECRET=hunter2", "EMPTY=", "BARE"]}
        });
        inspect(&mut inspected);
        assert_eq!(
            inspected["Config"]["Env"],
            json!([
                "PATH=<redacted>",
                "SECRET=<redacted>",
                "EMPTY=<redacted>",
                "BARE=<redacted>"
            ])
        );
    }

    #[test]
    fn values_of_secret_looking_keys_are_redacted_anywhere() {
        let mut inspected = json!({
            "Name": "/db",
            "Config": {
                "Labels": {
                    "com.example.db-password": "hunter2",
                    "com.example.apiKey": "k-123",
                    "com.docker.compose.service": "db"
                },
                "Cmd": ["postgres", "--auth-token=hunter2", "-c", "shared_buffers=128MB"]
            },
            "Extra": {"Credentials": {"user": "u", "port": 5432}, "Private": null}
        });
        inspect(&mut inspected);
        let labels = &inspected["Config"]["Labels"];
        assert_eq!(labels["com.example.db-password"], REDACTED);
        assert_eq!(labels["com.example.apiKey"], REDACTED);
        assert_eq!(labels["com.docker.compose.service"], "db");
        assert_eq!(
            inspected["Config"]["Cmd"],
            json!([
                "postgres",
                "--auth-token=<redacted>",
                "-c",
                "shared_buffers=128MB"
            ])
        );
        assert_eq!(
            inspected["Extra"]["Credentials"],
            json!({"user": REDACTED, "port": REDACTED})
        );
        assert_eq!(inspected["Extra"]["Private"], Value::Null);
        assert_eq!(inspected["Name"], "/db");
    }

    #[test]
    fn log_lines_lose_the_values_of_secret_looking_names() {
        let log = "connecting with password=hunter2 to db\n\
                   DB_TOKEN: \"abc def\" ok\n\
                   api_key='xyz', retries=3\n\
                   monkey=banana tokenizer=fast";
        assert_eq!(
            text(log),
            "connecting with password=<redacted> to db\n\
             DB_TOKEN: <redacted> ok\n\
             api_key=<redacted>, retries=3\n\
             monkey=banana tokenizer=fast"
        );
    }

    #[test]
    fn names_are_compared_word_by_word() {
        for secret in [
            "PASSWORD",
            "db_password",
            "apiKey",
            "ApiKey",
            "x-auth-token",
            "com.example.secret",
            "AWS_SECRET_ACCESS_KEY",
            "sessionId",
        ] {
            assert!(looks_secret(secret), "{secret}");
        }
        for plain in [
            "Tokenizer",
            "monkey",
            "PATH",
            "HOSTNAME",
            "Image",
            "passenger",
            "",
        ] {
            assert!(!looks_secret(plain), "{plain}");
        }
    }
}
