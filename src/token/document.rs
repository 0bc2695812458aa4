//! Signed documents other than capability tokens (the audit checkpoint): PASETO v4.public
//! with an implicit assertion naming the purpose, so one kind can never pass for another.

use pasetors::Public;
use pasetors::token::UntrustedToken;
use pasetors::version4::{PublicToken, V4};

use crate::token::{SigningKey, TokenError, VerifyKey};

/// Signs `payload` for `purpose`.
pub fn sign_document(
    key: &SigningKey,
    purpose: &str,
    payload: &[u8],
) -> Result<String, TokenError> {
    PublicToken::sign(key.as_pasetors(), payload, None, Some(purpose.as_bytes())).map_err(|_| {
        TokenError::Mint {
            reason: "signing failed",
        }
    })
}

/// Checks the signature and purpose; returns the payload.
pub fn open_document(key: &VerifyKey, purpose: &str, document: &str) -> Result<String, TokenError> {
    let untrusted = UntrustedToken::<Public, V4>::try_from(document.trim())
        .map_err(|_| TokenError::malformed("not a v4.public document"))?;
    let trusted = PublicToken::verify(
        key.as_pasetors(),
        &untrusted,
        None,
        Some(purpose.as_bytes()),
    )
    .map_err(|_| TokenError::BadSignature)?;
    Ok(trusted.payload().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::generate_keypair;

    #[test]
    fn a_document_opens_only_with_its_key_and_purpose() {
        let (key, verify) = generate_keypair();
        let document = sign_document(&key, "audit-checkpoint", b"{\"seq\":3}").unwrap();
        assert_eq!(
            open_document(&verify, "audit-checkpoint", &document).unwrap(),
            "{\"seq\":3}"
        );
        assert!(open_document(&verify, "capability", &document).is_err());
        let (_, other) = generate_keypair();
        assert!(open_document(&other, "audit-checkpoint", &document).is_err());
    }
}
