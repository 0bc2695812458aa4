//! Verification: the gateway's check of a token against the job in front of it.
//!
//! The order matters. The size and shape are checked first (cheap, and they bound the
//! work), then the Ed25519 signature over the whole token; only then is any claim read.
//! After that come issuer and audience, time, request, environment and command. Passing
//! here is necessary, not sufficient: the gateway must still claim `token_id` atomically so
//! the token runs once.

use chrono::{DateTime, Duration, Utc};
use pasetors::Public;
use pasetors::errors::Error as PasetoError;
use pasetors::token::UntrustedToken;
use pasetors::version4::{PublicToken, V4};

use crate::envelope::RequestId;
use crate::request::Environment;
use crate::token::claims::{Payload, SignedClaims};
use crate::token::{AUDIENCE, Claims, ISSUER, TokenError, VerifyKey};

/// The longest token accepted (and minted), in bytes.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// What the gateway expects a token to say about the job it is about to run.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub request_id: RequestId,
    /// The environment the job asks to run in.
    pub environment: Environment,
    /// Hex SHA-256 of the canonical argv of the job's parsed command.
    pub argv_hash: &'a str,
    /// The gateway's `ALLOWED_ENVIRONMENTS`.
    pub allowed_environments: &'a [Environment],
    /// The time to check against; a parameter so tests need no clock.
    pub now: DateTime<Utc>,
    /// How far apart the authority's and the gateway's clocks may be, applied to both
    /// ends of the validity window. A negative value counts as zero.
    pub max_clock_skew: Duration,
}

/// Checks `token` with `key` and against `expected`, and returns its claims.
pub fn verify(key: &VerifyKey, token: &str, expected: &Expected<'_>) -> Result<Claims, TokenError> {
    let signed = check_signature(key, token)?;
    check_time(&signed, expected)?;
    let claims = signed.claims;
    check_binding(&claims, expected)?;
    Ok(claims)
}

/// Checks shape and signature, then reads the now-trusted payload.
fn check_signature(key: &VerifyKey, token: &str) -> Result<SignedClaims, TokenError> {
    if token.is_empty() {
        return Err(TokenError::malformed("empty token"));
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::malformed(format!(
            "token is {} bytes, longer than the {MAX_TOKEN_BYTES}-byte limit",
            token.len()
        )));
    }
    if !token.starts_with(PublicToken::HEADER) {
        return Err(TokenError::malformed("not a v4.public token"));
    }
    let untrusted = UntrustedToken::<Public, V4>::try_from(token)
        .map_err(|_| TokenError::malformed("bad encoding"))?;
    let trusted = PublicToken::verify(key.as_pasetors(), &untrusted, None, None).map_err(
        |error| match error {
            PasetoError::TokenValidation | PasetoError::Key => TokenError::BadSignature,
            _ => TokenError::malformed("signed payload cannot be read as text"),
        },
    )?;

    // From here on the payload is known to come from the holder of the signing key.
    let payload: Payload = serde_json::from_str(trusted.payload())
        .map_err(|_| TokenError::malformed("payload is not a wingman claim set"))?;
    if payload.iss != ISSUER {
        return Err(TokenError::WrongIssuer { found: payload.iss });
    }
    if payload.aud != AUDIENCE {
        return Err(TokenError::WrongAudience { found: payload.aud });
    }
    payload.into_signed_claims()
}

fn check_time(signed: &SignedClaims, expected: &Expected<'_>) -> Result<(), TokenError> {
    let skew = expected.max_clock_skew.max(Duration::zero());
    let earliest_now = expected
        .now
        .checked_sub_signed(skew)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let latest_now = expected
        .now
        .checked_add_signed(skew)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);

    let expires_at = signed.claims.expires_at;
    if earliest_now >= expires_at {
        return Err(TokenError::Expired { expires_at });
    }
    let valid_from = signed.claims.issued_at.max(signed.not_before);
    if valid_from > latest_now {
        return Err(TokenError::NotYetValid { valid_from });
    }
    Ok(())
}

fn check_binding(claims: &Claims, expected: &Expected<'_>) -> Result<(), TokenError> {
    if claims.request_id != expected.request_id {
        return Err(TokenError::WrongRequest {
            expected: expected.request_id,
            found: claims.request_id,
        });
    }
    if claims.environment != expected.environment {
        return Err(TokenError::WrongEnvironment {
            expected: expected.environment,
            found: claims.environment,
        });
    }
    if !expected.allowed_environments.contains(&claims.environment) {
        return Err(TokenError::EnvironmentNotAllowed {
            environment: claims.environment,
        });
    }
    if claims.argv_hash != expected.argv_hash {
        return Err(TokenError::CommandMismatch {
            expected: expected.argv_hash.to_owned(),
            found: claims.argv_hash.clone(),
        });
    }
    Ok(())
}
