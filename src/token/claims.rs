//! What a token says, and how that is laid out in its PASETO payload.
//!
//! The payload is a JSON object with PASETO's registered claims and Wingman's own:
//!
//! | key           | value                                                        |
//! |---------------|--------------------------------------------------------------|
//! | `iss`         | `"wingman-authority"`                                        |
//! | `aud`         | `"wingman-gateway"`                                          |
//! | `sub`         | the request id                                               |
//! | `jti`         | the token id (UUID v7), what the gateway claims once         |
//! | `iat`, `nbf`  | issue time (RFC 3339, UTC); `nbf` equals `iat`               |
//! | `exp`         | expiry time (RFC 3339, UTC)                                  |
//! | `environment` | `"dev"`, `"test"` or `"prd"`                                 |
//! | `argv_hash`   | hex SHA-256 of the canonical argv                            |
//! | `approvers`   | who approved (`"validator"` for an auto-approval)            |
//! | `requester`   | who asked                                                    |
//! | `holder`      | manual execution only: the principal that may present it     |
//!
//! Without `holder` the token is for the pipeline (`wingman.exec.jobs`); with it, only that
//! principal runs it at `POST /gateway/execute`, and the pipeline never does
//! ([`check_presenter`]). An automatic token is byte for byte what it was before the claim.
//!
//! Times keep their full precision, so every claim round-trips exactly.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::RequestId;
use crate::principal::Principal;
use crate::request::Environment;
use crate::token::TokenError;

/// Who a token is for: the `aud` claim.
pub const AUDIENCE: &str = "wingman-gateway";
/// Who makes tokens: the `iss` claim.
pub const ISSUER: &str = "wingman-authority";

/// The permission a token carries: run this command, for this request, in this
/// environment, between these times, once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Unique per token (UUID v7); the gateway claims it atomically so a token runs once.
    pub token_id: Uuid,
    pub request_id: RequestId,
    pub environment: Environment,
    /// Hex SHA-256 of the canonical argv, computed by the caller.
    pub argv_hash: String,
    /// Who approved; `"validator"` for an auto-approval.
    pub approvers: Vec<String>,
    pub requester: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// `None`: the pipeline runs it (automatic execution). `Some`: a manual execution, run
    /// only by this principal (the one that submitted the request) over HTTP.
    pub holder: Option<Principal>,
}

/// Who presents a token to the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presenter<'a> {
    /// A job from `wingman.exec.jobs` (only the authority publishes there).
    Pipeline,
    /// A client at `POST /gateway/execute`, authenticated as this principal.
    Client(&'a Principal),
}

/// Whether `presenter` may run a token with these claims: an automatic token only from the
/// pipeline, a manual one only by its holder. Pure; the gateway calls it after [`super::verify`].
pub fn check_presenter(claims: &Claims, presenter: Presenter<'_>) -> Result<(), TokenError> {
    match (&claims.holder, presenter) {
        (None, Presenter::Pipeline) => Ok(()),
        (None, Presenter::Client(_)) => Err(TokenError::AutomaticToken),
        (Some(holder), Presenter::Pipeline) => Err(TokenError::ManualToken {
            holder: holder.to_string(),
        }),
        (Some(holder), Presenter::Client(caller)) if holder == caller => Ok(()),
        (Some(holder), Presenter::Client(caller)) => Err(TokenError::NotTheHolder {
            holder: holder.to_string(),
            caller: caller.to_string(),
        }),
    }
}

/// The payload as it is signed. Only trusted after the signature has been checked.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Payload {
    pub(super) iss: String,
    pub(super) aud: String,
    pub(super) sub: String,
    pub(super) jti: String,
    pub(super) iat: String,
    pub(super) nbf: String,
    pub(super) exp: String,
    pub(super) environment: Environment,
    pub(super) argv_hash: String,
    pub(super) approvers: Vec<String>,
    pub(super) requester: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) holder: Option<Principal>,
}

/// Signed claims, with the `nbf` time that is not part of [`Claims`].
pub(super) struct SignedClaims {
    pub(super) claims: Claims,
    pub(super) not_before: DateTime<Utc>,
}

impl Payload {
    pub(super) fn from_claims(claims: &Claims) -> Self {
        Self {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: claims.request_id.to_string(),
            jti: claims.token_id.to_string(),
            iat: format_time(claims.issued_at),
            nbf: format_time(claims.issued_at),
            exp: format_time(claims.expires_at),
            environment: claims.environment,
            argv_hash: claims.argv_hash.clone(),
            approvers: claims.approvers.clone(),
            requester: claims.requester.clone(),
            holder: claims.holder.clone(),
        }
    }

    /// Parses the registered claims' text; `iss` and `aud` are checked by the caller.
    pub(super) fn into_signed_claims(self) -> Result<SignedClaims, TokenError> {
        let request_id = self
            .sub
            .parse()
            .map_err(|_| TokenError::malformed("`sub` is not a request id"))?;
        let token_id = Uuid::parse_str(&self.jti)
            .map_err(|_| TokenError::malformed("`jti` is not a token id"))?;
        let claims = Claims {
            token_id,
            request_id,
            environment: self.environment,
            argv_hash: self.argv_hash,
            approvers: self.approvers,
            requester: self.requester,
            issued_at: parse_time(&self.iat, "iat")?,
            expires_at: parse_time(&self.exp, "exp")?,
            holder: self.holder,
        };
        Ok(SignedClaims {
            claims,
            not_before: parse_time(&self.nbf, "nbf")?,
        })
    }
}

fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn parse_time(text: &str, claim: &str) -> Result<DateTime<Utc>, TokenError> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| TokenError::malformed(format!("`{claim}` is not an RFC 3339 time")))
}
