//! The authenticated party that submitted a request ([`Principal`]), as the subject it was
//! published on proves it; see [`crate::identity`] for how each kind is proven. Below every
//! other module that names a principal: requests, tokens, subjects.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The suffix of unauthenticated submissions (deployments without NATS authentication).
pub const ANONYMOUS: &str = "anonymous";
/// The submit-subject token under which the API names the key that submitted.
pub const API_TOKEN: &str = "api";
/// Longest principal name (a NATS user or an API key name).
pub const MAX_NAME: usize = 64;

/// The authenticated party that submitted a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Principal {
    /// A NATS user, proven by the server's publish permissions.
    Nats(String),
    /// An API key (by its name), proven by the API's key check.
    ApiKey(String),
    /// Nothing proven: a deployment without NATS authentication.
    #[default]
    Anonymous,
}

impl Principal {
    /// The user or key name (`None` for anonymous).
    pub fn name(&self) -> Option<&str> {
        match self {
            Principal::Nats(name) | Principal::ApiKey(name) => Some(name),
            Principal::Anonymous => None,
        }
    }

    /// Reads the principal from the subject a request was published on; `base` is
    /// `<prefix>.requests.submitted` (`Subjects::submitted_base`).
    ///
    /// # Errors
    /// When the subject is not `<prefix>.requests.submitted.<user>` or
    /// `<prefix>.requests.submitted.api.<key>` with valid names.
    pub fn from_submit_subject(base: &str, subject: &str) -> Result<Self, String> {
        let rest = subject
            .strip_prefix(base)
            .and_then(|rest| rest.strip_prefix('.'))
            .ok_or_else(|| {
                format!("subject `{subject}`: requests are submitted on {base}.<your NATS user>")
            })?;
        let tokens: Vec<&str> = rest.split('.').collect();
        match tokens.as_slice() {
            [ANONYMOUS] => Ok(Principal::Anonymous),
            [API_TOKEN, key] => check_name(key).map(|()| Principal::ApiKey((*key).to_string())),
            [API_TOKEN] => Err(format!(
                "subject `{subject}`: the API submits on {base}.api.<key name>"
            )),
            [user] => check_name(user).map(|()| Principal::Nats((*user).to_string())),
            _ => Err(format!(
                "subject `{subject}`: requests are submitted on {base}.<your NATS user>"
            )),
        }
    }

    /// The subject token(s) this principal submits on (the inverse of
    /// [`Principal::from_submit_subject`]).
    pub fn submit_suffix(&self) -> String {
        match self {
            Principal::Nats(user) => user.clone(),
            Principal::ApiKey(key) => format!("{API_TOKEN}.{key}"),
            Principal::Anonymous => ANONYMOUS.to_string(),
        }
    }
}

/// A principal name must be one subject token: `[A-Za-z0-9_-]`, 1 to 64 characters, and not
/// a reserved word.
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        return Err(format!(
            "`{}` is not a valid principal name (1 to {MAX_NAME} of A-Z a-z 0-9 _ -)",
            name.chars().take(80).collect::<String>()
        ));
    }
    if name == ANONYMOUS || name == API_TOKEN {
        return Err(format!("`{name}` is a reserved name"));
    }
    Ok(())
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Nats(name) => write!(f, "nats:{name}"),
            Principal::ApiKey(name) => write!(f, "api:{name}"),
            Principal::Anonymous => f.write_str(ANONYMOUS),
        }
    }
}

impl FromStr for Principal {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == ANONYMOUS {
            return Ok(Principal::Anonymous);
        }
        let (kind, name) = text
            .split_once(':')
            .ok_or_else(|| format!("`{text}` is not a principal (nats:<user>, api:<key>)"))?;
        check_name(name)?;
        match kind {
            "nats" => Ok(Principal::Nats(name.to_string())),
            "api" => Ok(Principal::ApiKey(name.to_string())),
            _ => Err(format!(
                "`{text}` is not a principal (nats:<user>, api:<key>)"
            )),
        }
    }
}

impl TryFrom<String> for Principal {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<Principal> for String {
    fn from(principal: Principal) -> String {
        principal.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::subjects::Subjects;

    fn subjects() -> Subjects {
        Subjects::new("wingman").unwrap()
    }

    #[test]
    fn the_submit_subject_names_the_principal() {
        let parse =
            |subject: &str| Principal::from_submit_subject(&subjects().submitted_base(), subject);
        assert_eq!(
            parse("wingman.requests.submitted.ci-bot"),
            Ok(Principal::Nats("ci-bot".into()))
        );
        assert_eq!(
            parse("wingman.requests.submitted.api.alice-laptop"),
            Ok(Principal::ApiKey("alice-laptop".into()))
        );
        assert_eq!(
            parse("wingman.requests.submitted.anonymous"),
            Ok(Principal::Anonymous)
        );
        for bad in [
            "wingman.requests.submitted",
            "wingman.requests.submitted.api",
            "wingman.requests.submitted.a.b",
            "wingman.requests.submitted.api.a.b",
            "wingman.requests.accepted",
            "other.requests.submitted.ci",
        ] {
            assert!(parse(bad).is_err(), "{bad} must not name a principal");
        }
    }

    #[test]
    fn a_principal_round_trips_through_its_text_and_its_subject() {
        for principal in [
            Principal::Nats("ops_7".into()),
            Principal::ApiKey("deploy-ci".into()),
            Principal::Anonymous,
        ] {
            assert_eq!(
                principal.to_string().parse::<Principal>(),
                Ok(principal.clone())
            );
            let subject = format!("wingman.requests.submitted.{}", principal.submit_suffix());
            assert_eq!(
                Principal::from_submit_subject(&subjects().submitted_base(), &subject),
                Ok(principal)
            );
        }
    }

    #[test]
    fn reserved_and_malformed_names_are_refused() {
        assert!(check_name("anonymous").is_err());
        assert!(check_name("api").is_err());
        assert!(check_name("").is_err());
        assert!(check_name("a*b").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
        assert!("nats:api".parse::<Principal>().is_err());
        assert!("telegram:42".parse::<Principal>().is_err());
    }
}
