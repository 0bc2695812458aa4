//! The envelope every internal event travels in, and the ids that key the pipeline.
//!
//! Every message a stage publishes is an [`Envelope`] with an `event_id` (UUID v7) that is
//! also its JetStream `Nats-Msg-Id`. Event ids are *derived*, not drawn: the same input
//! handled twice (a redelivery after a crash) yields the same event id, so JetStream drops
//! the republish and the recorder's insert is a no-op.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Version of the envelope layout; a consumer refuses (dead-letters) any other.
pub const ENVELOPE_VERSION: u16 = 1;

/// The id of one approval request, the idempotency key of the whole journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(Uuid);

impl RequestId {
    /// A fresh, time-ordered id (for requests submitted without one).
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// A time-ordered id derived from where a message sits in its stream, so that a
    /// redelivered request without an id gets the same id again.
    pub fn derive(at: DateTime<Utc>, key: &str) -> Self {
        Self(derive_uuid_v7(at, key))
    }

    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// The rollout bucket (0..100) of this request: stable for the life of the id.
    pub fn rollout_bucket(&self) -> u8 {
        let digest = Sha256::digest(self.0.as_bytes());
        (u16::from_be_bytes([digest[0], digest[1]]) % 100) as u8
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for RequestId {
    type Err = uuid::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(text.trim()).map(Self)
    }
}

/// An internal event: what happened, to which request, when, and a payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub version: u16,
    pub event_id: Uuid,
    pub request_id: RequestId,
    pub at: DateTime<Utc>,
    pub body: T,
}

impl<T> Envelope<T> {
    /// Wraps `body`; `origin` is the publish time of the message that caused this event and
    /// `key` names the event uniquely within that cause (e.g. `"{request_id}:intake:accepted"`).
    pub fn derived(request_id: RequestId, origin: DateTime<Utc>, key: &str, body: T) -> Self {
        Self {
            version: ENVELOPE_VERSION,
            event_id: derive_uuid_v7(origin, key),
            request_id,
            at: now(),
            body,
        }
    }
}

/// The current time at the precision Postgres stores (microseconds), so that what we hash
/// before a write is what we read back after it.
pub fn now() -> DateTime<Utc> {
    truncate_to_micros(Utc::now())
}

/// `at` at microsecond precision.
pub fn truncate_to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

/// A UUID v7 whose timestamp is `at` and whose "random" bits are a hash of `key`.
pub fn derive_uuid_v7(at: DateTime<Utc>, key: &str) -> Uuid {
    let digest = Sha256::digest(key.as_bytes());
    let mut bytes = [0u8; 10];
    bytes.copy_from_slice(&digest[..10]);
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_cause_derives_the_same_event_id() {
        let at = Utc::now();
        assert_eq!(
            derive_uuid_v7(at, "a:intake"),
            derive_uuid_v7(at, "a:intake")
        );
        assert_ne!(
            derive_uuid_v7(at, "a:intake"),
            derive_uuid_v7(at, "b:intake")
        );
        assert_eq!(derive_uuid_v7(at, "a").get_version_num(), 7);
    }

    #[test]
    fn a_request_keeps_its_rollout_bucket() {
        let id: RequestId = "0190a6f2-7c4e-7a51-9d2b-5c1f3e8a9b10".parse().unwrap();
        let bucket = id.rollout_bucket();
        assert!(bucket < 100);
        assert_eq!(bucket, id.rollout_bucket());
    }

    #[test]
    fn buckets_spread_over_the_whole_range() {
        let mut seen = [false; 100];
        for _ in 0..5000 {
            seen[RequestId::generate().rollout_bucket() as usize] = true;
        }
        assert!(seen.iter().all(|hit| *hit));
    }
}
