//! The deployment's say in the rollout: `VALIDATION_ENABLED` / `VALIDATION_ROLLOUT_PERCENT`
//! applied at start, so the seed's procedure (edit `.env.prd`, restart) works as written.
//!
//! Which wins when: the bucket remembers, under its own key (`environment`), the values last
//! applied from the environment. At start ([`RolloutStore::apply_environment`], called by
//! `wingman setup-nats` and by intake when it sets up the topology itself):
//! - no flags yet: the environment seeds them;
//! - the environment is what was last applied: nothing is written, so a live
//!   `wingman rollout set` (or the guard's lowering) made since survives the restart;
//! - the environment changed (or none was recorded yet, e.g. the first start of this version):
//!   the flags become the environment's, written by compare-and-set with a mark naming the
//!   author `deployment` via `environment`, so the watcher audits it as a proven rollout change
//!   (old → new) like an operator's.
//!
//! It never writes when the flags already hold the environment's values (no empty revision).

use async_nats::jetstream::kv;
use serde::{Deserialize, Serialize};

use super::{ChangeMark, KEY, Rollout, RolloutStore, Stored};
use crate::claims::{self, Created};

/// The key under which the bucket keeps the values last applied from the environment.
pub const ENVIRONMENT_KEY: &str = "environment";
/// The author of a rollout change the environment made, as the audit names it.
pub const DEPLOYMENT_AUTHOR: &str = "deployment";
/// Where the deployment's change came from (the audit's `via`).
pub const VIA_ENVIRONMENT: &str = "environment";

/// The rollout values an environment asks for (what `environment` stores).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentValues {
    pub enabled: bool,
    pub percent: u8,
}

impl EnvironmentValues {
    pub fn of(flags: &Rollout) -> Self {
        Self {
            enabled: flags.enabled,
            percent: flags.percent,
        }
    }
}

/// What [`RolloutStore::apply_environment`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// There were no flags: the environment seeded them.
    Seeded(Rollout),
    /// The environment is what was last applied: the live flags stay as they are.
    Unchanged { live: Rollout },
    /// The environment changed and the flags already held its values: only recorded.
    AlreadyLive(Rollout),
    /// The environment changed: the flags went from `old` to `new`.
    Changed { old: Rollout, new: Rollout },
}

impl Applied {
    /// One line for the log and for `wingman setup-nats`.
    pub fn describe(&self) -> String {
        match self {
            Applied::Seeded(flags) => format!("seeded from the environment: {}", flags.describe()),
            Applied::Unchanged { live } => format!(
                "environment unchanged since last applied; live flags kept: {} (set by {})",
                live.describe(),
                live.updated_by
            ),
            Applied::AlreadyLive(flags) => {
                format!("environment already live: {}", flags.describe())
            }
            Applied::Changed { old, new } => format!(
                "environment changed: {} → {} (audited as {DEPLOYMENT_AUTHOR})",
                old.describe(),
                new.describe()
            ),
        }
    }
}

impl RolloutStore {
    /// Applies the environment's flags at start when they changed since last applied (see
    /// the module header for which wins when), and records them as last applied.
    pub async fn apply_environment(&self, environment: &Rollout) -> anyhow::Result<Applied> {
        let wanted = EnvironmentValues::of(environment);
        let applied = self.apply_if_changed(environment, wanted).await?;
        if !matches!(applied, Applied::Unchanged { .. }) {
            self.kv
                .put(ENVIRONMENT_KEY, serde_json::to_vec(&wanted)?.into())
                .await
                .map_err(|error| {
                    anyhow::anyhow!(
                        "record the rollout values applied from the environment: {error}"
                    )
                })?;
        }
        tracing::info!(rollout = %applied.describe(), "rollout flags at start");
        Ok(applied)
    }

    /// The values last applied from the environment, if any were recorded.
    pub async fn last_applied_environment(&self) -> anyhow::Result<Option<EnvironmentValues>> {
        let value = self.kv.get(ENVIRONMENT_KEY).await.map_err(|error| {
            anyhow::anyhow!("read the rollout values applied from the environment: {error}")
        })?;
        value
            .map(|bytes| serde_json::from_slice(&bytes))
            .transpose()
            .map_err(|error| {
                anyhow::anyhow!("decode the rollout values applied from the environment: {error}")
            })
    }

    async fn apply_if_changed(
        &self,
        environment: &Rollout,
        wanted: EnvironmentValues,
    ) -> anyhow::Result<Applied> {
        // Compare-and-set, retried: two processes applying at once write one revision.
        for _ in 0..5 {
            let entry = self
                .kv
                .entry(KEY)
                .await
                .map_err(|error| anyhow::anyhow!("read the rollout flags: {error}"))?
                .filter(|entry| entry.operation == kv::Operation::Put);
            let Some(entry) = entry else {
                let seed = Rollout {
                    updated_by: VIA_ENVIRONMENT.into(),
                    ..environment.clone()
                };
                match claims::create_once(&self.kv, KEY, &seed, "seed the rollout flags").await? {
                    Created::Ours(_) => return Ok(Applied::Seeded(seed)),
                    Created::Theirs(..) => continue,
                }
            };
            let old: Rollout = serde_json::from_slice(&entry.value)
                .map_err(|error| anyhow::anyhow!("decode the rollout flags: {error}"))?;
            if self.last_applied_environment().await? == Some(wanted) {
                return Ok(Applied::Unchanged { live: old });
            }
            if EnvironmentValues::of(&old) == wanted {
                return Ok(Applied::AlreadyLive(old));
            }
            let new = Rollout {
                enabled: wanted.enabled,
                percent: wanted.percent,
                updated_by: DEPLOYMENT_AUTHOR.into(),
                updated_at: crate::envelope::now(),
            };
            let stored = Stored {
                flags: new.clone(),
                change: Some(ChangeMark {
                    author: DEPLOYMENT_AUTHOR.into(),
                    via: VIA_ENVIRONMENT.into(),
                    replaces: entry.revision,
                    reason: Some(
                        "VALIDATION_ENABLED / VALIDATION_ROLLOUT_PERCENT changed since last applied"
                            .into(),
                    ),
                    forced: false,
                    gate: Some("not checked: a deployment's environment".into()),
                }),
            };
            match self
                .kv
                .update(KEY, serde_json::to_vec(&stored)?.into(), entry.revision)
                .await
            {
                Ok(_) => return Ok(Applied::Changed { old, new }),
                Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => continue,
                Err(error) => anyhow::bail!("update the rollout flags: {error}"),
            }
        }
        anyhow::bail!(
            "the rollout flags kept changing while the environment was applied; try again"
        )
    }
}
