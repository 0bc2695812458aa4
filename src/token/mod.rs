//! Capability tokens: the authority's permission slip for one execution.
//!
//! Sits between the authority and the gateway. The authority, the only holder of the
//! [`SigningKey`], [`mint`]s a token for an APPROVED or AUTO_APPROVED request; the gateway,
//! which holds only the [`VerifyKey`], [`verify`]s it before touching Docker. A token binds
//! one request, one environment and one exact command (the hash of its canonical argv), and
//! is short-lived. Its `token_id` is what the gateway claims atomically to make it single
//! use; that claim is the gateway's job, not this module's.
//!
//! The format is PASETO `v4.public` (Ed25519) through the `pasetors` crate, with keys as
//! PASERK text (`k4.secret.…`, `k4.public.…`). No home-made format.
//!
//! Layout:
//! - `keys`: [`SigningKey`], [`VerifyKey`], [`generate_keypair`]
//! - `key_files`: key files on disk, with their permissions checked
//! - `claims`: [`Claims`], how they are laid out in the token, and [`check_presenter`] (who
//!   may present it: the pipeline, or the one holder of a manual token)
//! - `mint` and `verify`: the two operations
//! - `error`: [`TokenError`] (with a metrics `code()`) and [`KeyError`]

mod claims;
mod document;
mod error;
mod key_files;
mod keys;
mod mint;
mod verify;

#[cfg(test)]
mod tests;

pub use claims::{AUDIENCE, Claims, ISSUER, Presenter, check_presenter};
pub use document::{open_document, sign_document};
pub use error::{KeyError, TokenError};
pub use key_files::{read_signing_key, read_verify_key, write_keypair};
pub use keys::{SigningKey, VerifyKey, generate_keypair};
pub use mint::mint;
pub use verify::{Expected, MAX_TOKEN_BYTES, verify};
