//! Once-only writes to a JetStream key-value bucket, and the claims bucket's typed keys.
//!
//! Every stage's effect is claimed once per request in the claims bucket (`wingman_claims`):
//! the first writer of a key wins, a redelivery or a second replica finds the winner's value
//! and acts on it. [`create_once`] is that pattern, written once; [`Key`] names every key the
//! bucket holds, so no stage formats one by hand; [`DecisionClaim`] is the decision the
//! approvals stage (or the watcher, on expiry) claims and the authority checks.
//!
//! This module sits below the stages: it depends on the bus (to open the bucket and read the
//! consume loop's horizon), the envelope ids and the status word only.

use std::fmt;
use std::time::Duration;

use async_nats::jetstream::kv;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::bus::consume::LoopOptions;
use crate::envelope::RequestId;
use crate::status::Status;

/// The claims bucket, as declared in `nats/kv/claims.json` (localised by the subject prefix).
pub const BUCKET: &str = "wingman_claims";

/// Opens the deployment's claims bucket.
///
/// # Errors
/// When the bucket does not exist (no topology yet) or NATS cannot be reached.
pub async fn open(bus: &crate::bus::Bus) -> anyhow::Result<kv::Store> {
    crate::bus::topology::open_bucket(&bus.js, &bus.subjects.localize_name(BUCKET)).await
}

/// How long a claim lives: the bucket's key lifetime as the server holds it (`None`: forever).
/// A stage hands it to its consume loop ([`crate::bus::consume::LoopOptions::claims_life`]),
/// which refuses a message old enough that a claim an earlier handling made may be gone.
pub fn life(bucket: &kv::Store) -> Option<Duration> {
    let max_age = bucket.stream.cached_info().config.max_age;
    (!max_age.is_zero()).then_some(max_age)
}

/// `options` for a stage whose effects rest on claims in `bucket`: its consume loop refuses a
/// message older than the claims' horizon ([`crate::bus::consume::claims_horizon`]).
pub fn guarding(options: LoopOptions, bucket: &kv::Store) -> LoopOptions {
    LoopOptions {
        claims_life: life(bucket),
        ..options
    }
}

/// Refuses to start a stage that would act on a claim after it may have expired: `wait` (how
/// long the setting `what` lets a request wait before the stage acts on it) must end within
/// the claims' horizon.
///
/// # Errors
/// When the claims do not live long enough, naming the setting and both durations.
pub fn ensure_outlives(bucket: &kv::Store, wait: Duration, what: &str) -> anyhow::Result<()> {
    let Some(life) = life(bucket) else {
        return Ok(());
    };
    let horizon = crate::bus::consume::claims_horizon(life);
    anyhow::ensure!(
        wait < horizon,
        "{what} ({}) must be shorter than nine tenths of how long the claims bucket keeps a claim \
         ({} of {}): lower {what}, or keep claims longer (`max_age_secs` in nats/kv/claims.json; \
         WINGMAN_REQUEST_RETENTION, when set, caps it)",
        crate::duration::show(wait),
        crate::duration::show(horizon),
        crate::duration::show(life),
    );
    Ok(())
}

/// A key of the claims bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// Intake's claim of a request id (`intake.<request_id>`): its stream sequence and a
    /// fingerprint of who sent what, so a replay is told from a conflicting reuse of the id.
    Intake(RequestId),
    /// The first decision on a request (`decision.<request_id>`): a human's, or the
    /// watcher's expiry.
    Decision(RequestId),
    /// The one token minted for a request (`minted.<request_id>`).
    Minted(RequestId),
    /// The gateway's execution claim of a token (`exec.<token_id>`).
    Exec(Uuid),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Intake(id) => write!(f, "intake.{id}"),
            Key::Decision(id) => write!(f, "decision.{id}"),
            Key::Minted(id) => write!(f, "minted.{id}"),
            Key::Exec(token_id) => write!(f, "exec.{token_id}"),
        }
    }
}

/// The decision claim (`decision.<request_id>`): the first decision wins.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecisionClaim {
    pub decision: Status,
    pub approvers: Vec<String>,
    pub at: DateTime<Utc>,
}

/// What [`create_once`] found.
#[derive(Debug)]
pub enum Created<T> {
    /// Our value is stored, at this revision.
    Ours(u64),
    /// Another writer was first: its value and revision.
    Theirs(T, u64),
}

/// Stores `value` under `key` unless the key exists; when it does, reads the value that won.
///
/// `what` names the value in errors ("the approver roster", "claim intake.…").
pub async fn create_once<T>(
    bucket: &kv::Store,
    key: &str,
    value: &T,
    what: &str,
) -> anyhow::Result<Created<T>>
where
    T: Serialize + DeserializeOwned,
{
    let bytes = serde_json::to_vec(value)?;
    match bucket.create(key, bytes.into()).await {
        Ok(revision) => Ok(Created::Ours(revision)),
        Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {
            let (theirs, revision) = read(bucket, key, what)
                .await?
                .ok_or_else(|| anyhow::anyhow!("{what}: {key} was there, then vanished"))?;
            Ok(Created::Theirs(theirs, revision))
        }
        Err(error) => Err(anyhow::anyhow!("{what}: store {key}: {error}")),
    }
}

/// The value stored under `key` and its revision; `None` when absent or deleted.
pub async fn read<T: DeserializeOwned>(
    bucket: &kv::Store,
    key: &str,
    what: &str,
) -> anyhow::Result<Option<(T, u64)>> {
    let entry = bucket
        .entry(key)
        .await
        .map_err(|error| anyhow::anyhow!("{what}: read {key}: {error}"))?;
    match entry.filter(|entry| entry.operation == kv::Operation::Put) {
        None => Ok(None),
        Some(entry) => serde_json::from_slice(&entry.value)
            .map(|value| Some((value, entry.revision)))
            .map_err(|error| anyhow::anyhow!("{what}: decode {key}: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_keeps_the_spelling_stored_buckets_already_hold() {
        let id: RequestId = "0191e5a0-0000-7000-8000-000000000001".parse().unwrap();
        let token = Uuid::parse_str("0191e5a0-0000-7000-8000-000000000002").unwrap();
        assert_eq!(
            Key::Intake(id).to_string(),
            "intake.0191e5a0-0000-7000-8000-000000000001"
        );
        assert_eq!(
            Key::Decision(id).to_string(),
            "decision.0191e5a0-0000-7000-8000-000000000001"
        );
        assert_eq!(
            Key::Minted(id).to_string(),
            "minted.0191e5a0-0000-7000-8000-000000000001"
        );
        assert_eq!(
            Key::Exec(token).to_string(),
            "exec.0191e5a0-0000-7000-8000-000000000002"
        );
    }
}
