//! The Ed25519 key pair: the authority signs with the [`SigningKey`], the gateway checks
//! with the [`VerifyKey`].
//!
//! Both travel as PASERK text: `k4.secret.<base64url>` (the 32-byte seed followed by the
//! 32-byte public key) and `k4.public.<base64url>` (the 32-byte public key). Text is trimmed
//! before parsing, so a key file may end with a newline.

use std::fmt;

use pasetors::keys::{AsymmetricKeyPair, AsymmetricPublicKey, AsymmetricSecretKey, Generate};
use pasetors::paserk::FormatAsPaserk;
use pasetors::version4::V4;

use crate::token::KeyError;

/// The authority's secret key. Its bytes are wiped on drop, and it never prints.
pub struct SigningKey {
    secret: AsymmetricSecretKey<V4>,
    /// Kept beside the secret so that [`SigningKey::verify_key`] cannot fail.
    public: VerifyKey,
}

/// The gateway's public key: it can check tokens but not make them.
#[derive(Clone, PartialEq)]
pub struct VerifyKey(AsymmetricPublicKey<V4>);

/// A fresh key pair from the operating system's random generator.
///
/// # Panics
/// If the operating system's random generator fails (ed25519-compact panics then); there is
/// no safe key to return in that case. The `Result` pasetors wraps the pair in only checks
/// key lengths, which are right by construction.
pub fn generate_keypair() -> (SigningKey, VerifyKey) {
    let pair = AsymmetricKeyPair::<V4>::generate()
        .expect("an Ed25519 key pair of the right length is always valid");
    let verify_key = VerifyKey(pair.public);
    let signing_key = SigningKey {
        secret: pair.secret,
        public: verify_key.clone(),
    };
    (signing_key, verify_key)
}

impl SigningKey {
    /// The key as PASERK text, `k4.secret.…`. Treat the result as the secret it is.
    pub fn to_pem_or_text(&self) -> String {
        paserk_text(&self.secret)
    }

    /// Parses `k4.secret.…` text; pasetors checks that the embedded public key matches
    /// the seed.
    pub fn from_text(text: &str) -> Result<Self, KeyError> {
        let invalid = || KeyError::Invalid {
            expected: "k4.secret",
        };
        let secret = AsymmetricSecretKey::<V4>::try_from(text.trim()).map_err(|_| invalid())?;
        let public = AsymmetricPublicKey::<V4>::try_from(&secret).map_err(|_| invalid())?;
        Ok(Self {
            secret,
            public: VerifyKey(public),
        })
    }

    /// The public half, for the gateway.
    pub fn verify_key(&self) -> VerifyKey {
        self.public.clone()
    }

    pub(crate) fn as_pasetors(&self) -> &AsymmetricSecretKey<V4> {
        &self.secret
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(…)")
    }
}

impl VerifyKey {
    /// The key as PASERK text, `k4.public.…`.
    pub fn to_text(&self) -> String {
        paserk_text(&self.0)
    }

    /// Parses `k4.public.…` text.
    pub fn from_text(text: &str) -> Result<Self, KeyError> {
        AsymmetricPublicKey::<V4>::try_from(text.trim())
            .map(Self)
            .map_err(|_| KeyError::Invalid {
                expected: "k4.public",
            })
    }

    pub(crate) fn as_pasetors(&self) -> &AsymmetricPublicKey<V4> {
        &self.0
    }
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyKey({})", self.to_text())
    }
}

fn paserk_text(key: &dyn FormatAsPaserk) -> String {
    let mut text = String::new();
    // Writing to a String cannot fail, and base64 of a fixed-length key cannot either.
    let written = key.fmt(&mut text);
    debug_assert!(written.is_ok(), "PASERK formatting failed");
    text
}
