//! Unit tests for capability tokens: minting and verifying (`tokens`), keys and key files
//! (`keys`). Shared fixtures live here.

mod keys;
mod tokens;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::envelope::RequestId;
use crate::request::Environment;
use crate::token::{Claims, Expected};

const ARGV_HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const OTHER_ARGV_HASH: &str = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";
const ALL_ENVIRONMENTS: &[Environment] = &Environment::ALL;

/// A fixed "now" with sub-second precision, so round-trips are checked to the nanosecond.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_772_000_000, 123_456_789).expect("a valid fixed timestamp")
}

fn sample_claims() -> Claims {
    Claims {
        token_id: Uuid::now_v7(),
        request_id: RequestId::generate(),
        environment: Environment::Prd,
        argv_hash: ARGV_HASH.to_owned(),
        approvers: vec!["alice".to_owned(), "bob".to_owned()],
        requester: "deploy-bot".to_owned(),
        issued_at: now(),
        expires_at: now() + Duration::minutes(5),
        holder: None,
    }
}

/// What a gateway running `claims`' job at `now()` expects, with every environment allowed.
fn expected_for(claims: &Claims) -> Expected<'_> {
    Expected {
        request_id: claims.request_id,
        environment: claims.environment,
        argv_hash: &claims.argv_hash,
        allowed_environments: ALL_ENVIRONMENTS,
        now: now(),
        max_clock_skew: Duration::seconds(30),
    }
}

/// Base64url without padding, as PASETO uses, so tests can rebuild altered tokens.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut text = String::new();
    for chunk in bytes.chunks(3) {
        let group = chunk.iter().enumerate().fold(0u32, |group, (index, byte)| {
            group | u32::from(*byte) << (16 - 8 * index)
        });
        for position in 0..=chunk.len() {
            let sextet = (group >> (18 - 6 * position)) & 0x3f;
            text.push(char::from(ALPHABET[sextet as usize]));
        }
    }
    text
}
