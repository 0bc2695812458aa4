//! Minting: the authority turns [`Claims`] into a signed `v4.public` token.
//!
//! Only the authority calls this, and only for a request that is APPROVED or
//! AUTO_APPROVED and neither expired nor already used; those checks are the authority's.
//! Here we refuse claims that could never verify.

use pasetors::version4::PublicToken;

use crate::token::claims::Payload;
use crate::token::{Claims, MAX_TOKEN_BYTES, SigningKey, TokenError};

/// Signs `claims` into a `v4.public.…` token for the gateway.
pub fn mint(key: &SigningKey, claims: &Claims) -> Result<String, TokenError> {
    check(claims)?;
    let payload =
        serde_json::to_vec(&Payload::from_claims(claims)).map_err(|_| TokenError::Mint {
            reason: "claims do not serialize to json",
        })?;
    let token = PublicToken::sign(key.as_pasetors(), &payload, None, None).map_err(|_| {
        TokenError::Mint {
            reason: "signing failed",
        }
    })?;
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Mint {
            reason: "token would be longer than the gateway accepts (too many approvers?)",
        });
    }
    Ok(token)
}

fn check(claims: &Claims) -> Result<(), TokenError> {
    let reason = if claims.expires_at <= claims.issued_at {
        "expires_at must be after issued_at"
    } else if !is_sha256_hex(&claims.argv_hash) {
        "argv_hash must be 64 lowercase hex digits"
    } else if claims.approvers.is_empty() {
        "a token needs at least one approver"
    } else {
        return Ok(());
    };
    Err(TokenError::Mint { reason })
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}
