//! Why a token was refused, and why a key could not be used.
//!
//! Every [`TokenError`] is permanent: the same token will never verify later (an expired
//! token only gets older), so the gateway refuses the job rather than retrying it.
//! [`TokenError::code`] is the fixed label for metrics and the audit log; the message is
//! for people.

use std::io;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::envelope::RequestId;
use crate::request::Environment;

/// A token that cannot be minted, or that the gateway must refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token: {reason}")]
    Malformed { reason: String },

    #[error("bad token signature: the token was forged, altered, or signed by another key")]
    BadSignature,

    #[error("token expired at {expires_at}")]
    Expired { expires_at: DateTime<Utc> },

    #[error("token is not valid yet: it starts at {valid_from}, beyond the allowed clock skew")]
    NotYetValid { valid_from: DateTime<Utc> },

    #[error("token is for request {found}, not {expected}")]
    WrongRequest {
        expected: RequestId,
        found: RequestId,
    },

    #[error("token is for environment {found}, not {expected}")]
    WrongEnvironment {
        expected: Environment,
        found: Environment,
    },

    #[error("environment {environment} is not allowed on this gateway")]
    EnvironmentNotAllowed { environment: Environment },

    #[error("token was minted for another command: argv hash {found}, expected {expected}")]
    CommandMismatch { expected: String, found: String },

    #[error("token audience is {found:?}, expected {:?}", crate::token::AUDIENCE)]
    WrongAudience { found: String },

    #[error("token issuer is {found:?}, expected {:?}", crate::token::ISSUER)]
    WrongIssuer { found: String },

    #[error(
        "token is for automatic execution: the pipeline runs it, no client may present it (submit with \"execution\": \"manual\" to run it yourself)"
    )]
    AutomaticToken,

    #[error("token is for manual execution by {holder}: the pipeline never runs it")]
    ManualToken { holder: String },

    #[error(
        "token may be presented only by {holder}, the principal that submitted the request, not {caller}"
    )]
    NotTheHolder { holder: String, caller: String },

    #[error("cannot mint token: {reason}")]
    Mint { reason: &'static str },
}

impl TokenError {
    /// A short fixed label for metrics and the audit log (never error text or ids).
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Malformed { .. } => "malformed",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired { .. } => "expired",
            TokenError::NotYetValid { .. } => "not_yet_valid",
            TokenError::WrongRequest { .. } => "wrong_request",
            TokenError::WrongEnvironment { .. } => "wrong_environment",
            TokenError::EnvironmentNotAllowed { .. } => "environment_not_allowed",
            TokenError::CommandMismatch { .. } => "command_mismatch",
            TokenError::WrongAudience { .. } => "wrong_audience",
            TokenError::WrongIssuer { .. } => "wrong_issuer",
            TokenError::AutomaticToken => "automatic_token",
            TokenError::ManualToken { .. } => "manual_token",
            TokenError::NotTheHolder { .. } => "not_the_holder",
            TokenError::Mint { .. } => "mint_failed",
        }
    }

    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        TokenError::Malformed {
            reason: reason.into(),
        }
    }
}

/// A key that cannot be generated, written, read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a {expected} key (expected PASERK text `{expected}.…`)")]
    Invalid { expected: &'static str },

    #[error(
        "invalid key name {name:?}: use letters, digits, `-`, `_` and `.`, not starting with `.`"
    )]
    InvalidName { name: String },

    #[error("{} already exists: refusing to overwrite a key file", .path.display())]
    AlreadyExists { path: PathBuf },

    #[error(
        "signing key file {} is readable by group or others (mode {mode:04o}): run `chmod 600 {}`",
        .path.display(),
        .path.display()
    )]
    InsecurePermissions { path: PathBuf, mode: u32 },

    #[error("cannot {action} key file {}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}
