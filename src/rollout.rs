//! The validation rollout: `VALIDATION_ENABLED` and `VALIDATION_ROLLOUT_PERCENT`, live in the
//! NATS KV bucket `rollout` (key `validation`), seeded from the environment on first start and
//! set from it again at a start where it changed ([`environment`]: which wins when).
//!
//! A request is validated when validation is enabled and its bucket (a hash of its id, 0..100)
//! is below the percent: the same request always lands in the same bucket, so raising the
//! percent only adds requests to the cohort. Changes are compare-and-set, so two operators
//! cannot silently overwrite each other. Only the watcher (and `admin`) writes the flags:
//! operators ask it, and every revision is audited by its watch ([`change`]).

use anyhow::Context as _;
use async_nats::jetstream::kv;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::claims::{self, Created};
use crate::envelope::RequestId;

pub mod change;
pub mod environment;

pub use change::{ChangeMark, ChangeNote, ChangeRequest, Stored};
pub use environment::Applied;

pub const BUCKET: &str = "wingman_rollout";
/// The key of the flags in the bucket.
pub const KEY: &str = "validation";
const GUARD_KEY: &str = "guard";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    pub enabled: bool,
    /// 0..=100.
    pub percent: u8,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
}

/// Whether one request is in the validated cohort, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cohort {
    pub applied: bool,
    pub bucket: u8,
}

impl Rollout {
    pub fn cohort(&self, request_id: RequestId) -> Cohort {
        let bucket = request_id.rollout_bucket();
        Cohort {
            applied: self.enabled && bucket < self.percent,
            bucket,
        }
    }

    /// The percent of requests whose validation is enforced: 0 when disabled (shadow mode:
    /// every request is still scored, none is decided by validation).
    pub fn effective_percent(&self) -> u8 {
        if self.enabled { self.percent } else { 0 }
    }

    /// `enabled, 50 %` / `disabled (50 %)`.
    pub fn describe(&self) -> String {
        if self.enabled {
            format!("enabled, {} %", self.percent)
        } else {
            format!("disabled ({} % when enabled)", self.percent)
        }
    }
}

/// The live flags in NATS KV.
#[derive(Clone)]
pub struct RolloutStore {
    kv: kv::Store,
}

impl RolloutStore {
    pub fn new(kv: kv::Store) -> Self {
        Self { kv }
    }

    /// Opens the deployment's rollout bucket (created by `wingman setup-nats`).
    pub async fn open(bus: &crate::bus::Bus) -> anyhow::Result<Self> {
        let name = bus.subjects.localize_name(BUCKET);
        Ok(Self::new(
            crate::bus::topology::open_bucket(&bus.js, &name).await?,
        ))
    }

    /// Writes `initial` unless the flags already exist. Starts apply the environment with
    /// [`apply_environment`](Self::apply_environment); this is for tests and tools that only
    /// need flags to exist.
    pub async fn seed(&self, initial: &Rollout) -> anyhow::Result<()> {
        if let Created::Ours(_) =
            claims::create_once(&self.kv, KEY, initial, "seed the rollout flags").await?
        {
            tracing::info!(rollout = %initial.describe(), "seeded the rollout flags from the environment");
        }
        Ok(())
    }

    /// The current flags and their revision (for compare-and-set).
    pub async fn current(&self) -> anyhow::Result<(Rollout, u64)> {
        let entry = self
            .kv
            .entry(KEY)
            .await
            .map_err(|error| anyhow::anyhow!("read the rollout flags: {error}"))?
            .filter(|entry| entry.operation == kv::Operation::Put)
            .context(
                "the rollout flags are not set (start a validator, or run `wingman rollout set`)",
            )?;
        let rollout = serde_json::from_slice(&entry.value).context("decode the rollout flags")?;
        Ok((rollout, entry.revision))
    }

    /// Applies `change` to the current flags atomically (compare-and-set), marked as written
    /// by the watcher for `author` (asked on `via`); returns (old, new). Only the watcher
    /// calls this: it is the one writer the audit takes at its word.
    pub async fn change_as(
        &self,
        author: &str,
        via: &str,
        change: impl Fn(&Rollout) -> Rollout,
    ) -> anyhow::Result<(Rollout, Rollout)> {
        self.write(author, via, &ChangeNote::default(), false, change)
            .await
    }

    /// Like [`change_as`](Self::change_as), with the operator's reason and what the promote
    /// gate said (and whether it was forced), for the audit and the phase history.
    pub async fn change_noted(
        &self,
        author: &str,
        via: &str,
        note: &ChangeNote,
        change: impl Fn(&Rollout) -> Rollout,
    ) -> anyhow::Result<(Rollout, Rollout)> {
        self.write(author, via, note, false, change).await
    }

    /// Like [`change_as`](Self::change_as) for the watcher's rollout guard, which may only
    /// lower the rollout ([`change::lowers`]): a change that would raise it is refused here,
    /// where the flags are written.
    pub async fn lower_as(
        &self,
        author: &str,
        reason: &str,
        change: impl Fn(&Rollout) -> Rollout,
    ) -> anyhow::Result<(Rollout, Rollout)> {
        let note = ChangeNote {
            reason: Some(reason.to_string()),
            ..ChangeNote::default()
        };
        self.write(author, "guard", &note, true, change).await
    }

    async fn write(
        &self,
        author: &str,
        via: &str,
        note: &ChangeNote,
        only_lower: bool,
        change: impl Fn(&Rollout) -> Rollout,
    ) -> anyhow::Result<(Rollout, Rollout)> {
        for _ in 0..5 {
            let (old, revision) = self.current().await?;
            let mut new = change(&old);
            new.updated_by = author.to_string();
            new.updated_at = crate::envelope::now();
            anyhow::ensure!(
                !only_lower || change::lowers(&old, &new),
                "the rollout guard may only lower the rollout: {} → {} refused",
                old.describe(),
                new.describe()
            );
            let stored = Stored {
                flags: new.clone(),
                change: Some(ChangeMark {
                    author: author.to_string(),
                    via: via.to_string(),
                    replaces: revision,
                    reason: note.reason.clone(),
                    forced: note.forced,
                    gate: note.gate.clone(),
                }),
            };
            match self
                .kv
                .update(KEY, serde_json::to_vec(&stored)?.into(), revision)
                .await
            {
                Ok(_) => return Ok((old, new)),
                Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => continue,
                Err(error) => return Err(anyhow::anyhow!("update the rollout flags: {error}")),
            }
        }
        anyhow::bail!("the rollout flags kept changing under us; try again")
    }

    /// Every revision of the flags from `revision` on (history first, then live).
    pub async fn watch_from(&self, revision: u64) -> anyhow::Result<kv::Watch> {
        self.kv
            .watch_from_revision(KEY, revision.max(1))
            .await
            .map_err(|error| anyhow::anyhow!("watch the rollout flags: {error}"))
    }
}

/// The live flags as a KV watch keeps them: read once at start, then each revision as the
/// server announces it, so a decision costs no read on its path and the rollout gauges follow
/// the bucket at once, whichever process changed it.
#[derive(Clone)]
pub struct RolloutView {
    flags: tokio::sync::watch::Receiver<Option<Rollout>>,
}

impl RolloutView {
    /// A view of flags that never change (a tool, or a test that sets the flags itself).
    pub fn fixed(flags: Rollout) -> Self {
        let (_, flags) = tokio::sync::watch::channel(Some(flags));
        Self { flags }
    }

    /// The flags as last announced (`None` until they are set at all).
    pub fn current(&self) -> Option<Rollout> {
        self.flags.borrow().clone()
    }
}

impl RolloutStore {
    /// Follows the flags until `shutdown`: the returned view holds the current ones (read
    /// before this returns, when they are set) and a task keeps it current from a KV watch,
    /// reopening the watch when it ends. Each announced revision sets the rollout gauges.
    pub async fn follow(&self, shutdown: tokio_util::sync::CancellationToken) -> RolloutView {
        let initial = self.current().await.ok().map(|(flags, revision)| {
            crate::metrics::rollout(flags.enabled, flags.percent);
            crate::metrics::rollout_revision(revision);
            flags
        });
        let (sender, flags) = tokio::sync::watch::channel(initial);
        let kv = self.kv.clone();
        tokio::spawn(async move {
            use futures::StreamExt as _;
            while !shutdown.is_cancelled() {
                let mut watch = match kv.watch(KEY).await {
                    Ok(watch) => watch,
                    Err(error) => {
                        tracing::warn!(%error, "cannot watch the rollout flags; retrying");
                        tokio::select! {
                            () = shutdown.cancelled() => break,
                            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                        }
                    }
                };
                loop {
                    let entry = tokio::select! {
                        () = shutdown.cancelled() => return,
                        entry = watch.next() => entry,
                    };
                    let Some(Ok(entry)) = entry else { break };
                    if entry.operation != kv::Operation::Put {
                        continue;
                    }
                    match serde_json::from_slice::<Rollout>(&entry.value) {
                        Ok(flags) => {
                            crate::metrics::rollout(flags.enabled, flags.percent);
                            crate::metrics::rollout_revision(entry.revision);
                            sender.send_replace(Some(flags));
                        }
                        Err(error) => {
                            tracing::warn!(%error, revision = entry.revision, "undecodable rollout flags ignored");
                        }
                    }
                }
                tracing::warn!("the rollout watch ended; reopening");
            }
        });
        RolloutView { flags }
    }
}

/// The rollout guard's last look, kept in the rollout bucket (key `guard`) for
/// `wingman rollout report`; the watcher's guard writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardAction {
    pub at: DateTime<Utc>,
    /// `lowered`, `insufficient_data` or `ok`.
    pub action: String,
    pub detail: String,
}

impl RolloutStore {
    /// Keeps the rollout guard's last look (key `guard`).
    pub async fn record_guard(&self, action: &GuardAction) -> anyhow::Result<()> {
        self.kv
            .put(GUARD_KEY, serde_json::to_vec(action)?.into())
            .await
            .map_err(|error| anyhow::anyhow!("record the guard's action: {error}"))?;
        Ok(())
    }

    /// The rollout guard's last look, if it ever looked.
    pub async fn last_guard(&self) -> anyhow::Result<Option<GuardAction>> {
        let value = self
            .kv
            .get(GUARD_KEY)
            .await
            .map_err(|error| anyhow::anyhow!("read the guard's action: {error}"))?;
        Ok(value.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(enabled: bool, percent: u8) -> Rollout {
        Rollout {
            enabled,
            percent,
            updated_by: "test".into(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn the_cohort_grows_with_the_percent_and_never_loses_a_request() {
        let ids: Vec<RequestId> = (0..2000).map(|_| RequestId::generate()).collect();
        let mut previous = 0;
        for percent in [0u8, 10, 50, 100] {
            let in_cohort: Vec<bool> = ids
                .iter()
                .map(|id| rollout(true, percent).cohort(*id).applied)
                .collect();
            let count = in_cohort.iter().filter(|applied| **applied).count();
            assert!(count >= previous);
            previous = count;
            if percent == 0 {
                assert_eq!(count, 0);
            }
            if percent == 100 {
                assert_eq!(count, ids.len());
            }
            if percent == 50 {
                assert!((800..1200).contains(&count), "{count} of 2000 at 50 %");
            }
        }
    }

    #[test]
    fn disabled_validation_validates_nothing() {
        let id = RequestId::generate();
        assert!(!rollout(false, 100).cohort(id).applied);
        assert_eq!(rollout(false, 100).cohort(id).bucket, id.rollout_bucket());
    }
}
