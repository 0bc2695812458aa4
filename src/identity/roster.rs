//! The approver roster: who may decide, and which credentials prove each of them.
//!
//! One document (`roster` in the `wingman_approvers` KV bucket) lists every approver. Only the
//! NATS `admin` may write the bucket (`wingman approvers add|remove`, compare-and-set, so two
//! admins never lose each other's change); the approvals worker reads it at every vote, so an
//! approver added or removed counts from the next vote on — no restart, no redeploy. The
//! bucket keeps a history of revisions.
//!
//! The rule that makes "one principal, one vote" hold: a console key, a Telegram user id, an
//! API key name or a publisher principal belongs to at most one approver ([`Roster::check`]
//! refuses a roster that breaks it, on write and on read).
//!
//! `TELEGRAM_APPROVER_IDS` still works: each listed id not in the roster is an approver of its
//! own, named `telegram:<id>` ([`Roster::with_telegram_ids`]).

use std::collections::HashSet;

use async_nats::jetstream::kv;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::claims::{self, Created};
use crate::principal::{Principal, check_name};
use crate::token::VerifyKey;

/// The bucket, as declared in `nats/kv/approvers.json`.
pub const BUCKET: &str = "wingman_approvers";
/// The one key of the bucket.
pub const KEY: &str = "roster";

/// One person who may decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approver {
    /// The person's name: what audit rows and prompts show, and what a vote counts as.
    pub name: String,
    /// Public keys (`k4.public.…`) whose signed votes are this person's (`wingman approve`).
    #[serde(default)]
    pub console_keys: Vec<String>,
    /// Telegram user ids that are this person.
    #[serde(default)]
    pub telegram_ids: Vec<i64>,
    /// Names of API keys (role `decide`) that are this person.
    #[serde(default)]
    pub api_keys: Vec<String>,
    /// Publisher principals that are this person when they request something, beside the
    /// ones named like them (`nats:<name>`, `api:<name>`): their requests are their own.
    #[serde(default)]
    pub publishers: Vec<Principal>,
    pub added_at: DateTime<Utc>,
}

impl Approver {
    /// Whether a request submitted by `principal` is this person's own.
    pub fn submitted(&self, principal: &Principal) -> bool {
        principal.name() == Some(self.name.as_str()) || self.publishers.contains(principal)
    }
}

/// Every approver.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roster {
    pub approvers: Vec<Approver>,
}

impl Roster {
    pub fn by_name(&self, name: &str) -> Option<&Approver> {
        self.approvers.iter().find(|approver| approver.name == name)
    }

    pub fn by_telegram(&self, user_id: i64) -> Option<&Approver> {
        self.approvers
            .iter()
            .find(|approver| approver.telegram_ids.contains(&user_id))
    }

    pub fn by_api_key(&self, key_name: &str) -> Option<&Approver> {
        self.approvers
            .iter()
            .find(|approver| approver.api_keys.iter().any(|name| name == key_name))
    }

    /// Adds the Telegram ids of `TELEGRAM_APPROVER_IDS` that no roster entry holds, each as an
    /// approver of its own named `telegram:<id>`.
    pub fn with_telegram_ids(mut self, ids: &[i64]) -> Self {
        for &id in ids {
            if self.by_telegram(id).is_none() {
                self.approvers.push(Approver {
                    name: format!("telegram:{id}"),
                    console_keys: Vec::new(),
                    telegram_ids: vec![id],
                    api_keys: Vec::new(),
                    publishers: Vec::new(),
                    added_at: DateTime::<Utc>::UNIX_EPOCH,
                });
            }
        }
        self
    }

    /// Checks the roster's one rule: every name and every credential belongs to one approver.
    ///
    /// # Errors
    /// Says which name or credential is held twice, or which key does not parse.
    pub fn check(&self) -> Result<(), String> {
        let mut names = HashSet::new();
        let mut credentials = HashSet::new();
        for approver in &self.approvers {
            if !approver.name.starts_with("telegram:") {
                check_name(&approver.name).map_err(|error| format!("approver name: {error}"))?;
            }
            if !names.insert(approver.name.as_str()) {
                return Err(format!("approver `{}` is listed twice", approver.name));
            }
            for key in &approver.console_keys {
                VerifyKey::from_text(key).map_err(|_| {
                    format!(
                        "approver `{}`: console key `{key}` is not a k4.public key",
                        approver.name
                    )
                })?;
            }
            let held = approver
                .console_keys
                .iter()
                .map(|key| format!("console key {}", key.trim()))
                .chain(
                    approver
                        .telegram_ids
                        .iter()
                        .map(|id| format!("Telegram user {id}")),
                )
                .chain(
                    approver
                        .api_keys
                        .iter()
                        .map(|name| format!("API key {name}")),
                )
                .chain(
                    approver
                        .publishers
                        .iter()
                        .map(|principal| format!("publisher {principal}")),
                );
            for credential in held {
                if !credentials.insert(credential.clone()) {
                    return Err(format!(
                        "{credential} is held by two approvers (one credential is one person)"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The roster in its KV bucket.
#[derive(Clone)]
pub struct RosterStore {
    pub kv: kv::Store,
}

impl RosterStore {
    /// Opens the deployment's roster bucket (created by `wingman setup-nats`).
    pub async fn open(bus: &crate::bus::Bus) -> anyhow::Result<Self> {
        let name = bus.subjects.localize_name(BUCKET);
        Ok(Self {
            kv: crate::bus::topology::open_bucket(&bus.js, &name).await?,
        })
    }

    /// The roster and its revision (0 when none was ever written).
    ///
    /// # Errors
    /// When the bucket cannot be read, or holds a roster that breaks [`Roster::check`]
    /// (nobody decides on a roster that gives one credential two votes).
    pub async fn load(&self) -> anyhow::Result<(Roster, u64)> {
        let entry = self
            .kv
            .entry(KEY)
            .await
            .map_err(|error| anyhow::anyhow!("read the approver roster: {error}"))?;
        let Some(entry) = entry.filter(|entry| entry.operation == kv::Operation::Put) else {
            return Ok((Roster::default(), 0));
        };
        let roster: Roster = serde_json::from_slice(&entry.value)
            .map_err(|error| anyhow::anyhow!("the approver roster does not parse: {error}"))?;
        roster
            .check()
            .map_err(|problem| anyhow::anyhow!("the approver roster is invalid: {problem}"))?;
        Ok((roster, entry.revision))
    }

    /// Applies `change` to the current roster and writes it (compare-and-set; retried when
    /// someone else wrote in between). Returns the roster written.
    ///
    /// # Errors
    /// What `change` refuses, a roster that breaks [`Roster::check`], or a bucket error.
    pub async fn update(
        &self,
        change: impl Fn(&mut Roster) -> Result<(), String>,
    ) -> anyhow::Result<Roster> {
        for _ in 0..5 {
            let (mut roster, revision) = self.load().await?;
            change(&mut roster).map_err(|problem| anyhow::anyhow!("{problem}"))?;
            roster
                .check()
                .map_err(|problem| anyhow::anyhow!("{problem}"))?;
            // A concurrent write makes the create or the compare-and-set fail: read again.
            if revision == 0 {
                let created: Created<Roster> =
                    claims::create_once(&self.kv, KEY, &roster, "write the approver roster")
                        .await?;
                if let Created::Ours(_) = created {
                    return Ok(roster);
                }
            } else {
                let bytes = serde_json::to_vec(&roster)?;
                match self.kv.update(KEY, bytes.into(), revision).await {
                    Ok(_) => return Ok(roster),
                    Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {}
                    Err(error) => anyhow::bail!("write the approver roster: {error}"),
                }
            }
        }
        anyhow::bail!("the approver roster kept changing under us; try again")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::generate_keypair;

    fn approver(name: &str) -> Approver {
        Approver {
            name: name.into(),
            console_keys: vec![generate_keypair().1.to_text()],
            telegram_ids: Vec::new(),
            api_keys: Vec::new(),
            publishers: Vec::new(),
            added_at: Utc::now(),
        }
    }

    #[test]
    fn one_console_key_under_two_names_is_refused() {
        let alice = approver("alice");
        let mut alias = approver("alice-2");
        alias.console_keys = alice.console_keys.clone();
        let roster = Roster {
            approvers: vec![alice, alias],
        };
        let problem = roster.check().unwrap_err();
        assert!(problem.contains("held by two approvers"), "{problem}");
    }

    #[test]
    fn one_telegram_id_api_key_or_publisher_under_two_names_is_refused() {
        for share in 0..3 {
            let mut alice = approver("alice");
            let mut bob = approver("bob");
            match share {
                0 => {
                    alice.telegram_ids = vec![42];
                    bob.telegram_ids = vec![42];
                }
                1 => {
                    alice.api_keys = vec!["k".into()];
                    bob.api_keys = vec!["k".into()];
                }
                _ => {
                    alice.publishers = vec![Principal::Nats("ci".into())];
                    bob.publishers = vec![Principal::Nats("ci".into())];
                }
            }
            let roster = Roster {
                approvers: vec![alice, bob],
            };
            assert!(roster.check().is_err(), "share {share}");
        }
    }

    #[test]
    fn a_name_twice_or_a_bad_key_is_refused() {
        let roster = Roster {
            approvers: vec![approver("alice"), approver("alice")],
        };
        assert!(roster.check().unwrap_err().contains("listed twice"));
        let mut bad = approver("carol");
        bad.console_keys = vec!["k4.public.nonsense".into()];
        let roster = Roster {
            approvers: vec![bad],
        };
        assert!(roster.check().unwrap_err().contains("not a k4.public key"));
    }

    #[test]
    fn legacy_telegram_ids_become_approvers_unless_the_roster_holds_them() {
        let mut alice = approver("alice");
        alice.telegram_ids = vec![42];
        let roster = Roster {
            approvers: vec![alice],
        }
        .with_telegram_ids(&[42, 7]);
        assert_eq!(roster.by_telegram(42).unwrap().name, "alice");
        assert_eq!(roster.by_telegram(7).unwrap().name, "telegram:7");
        assert!(roster.check().is_ok());
    }

    #[test]
    fn a_publisher_named_like_an_approver_is_that_approver() {
        let mut alice = approver("alice");
        alice.publishers = vec![Principal::ApiKey("alice-laptop".into())];
        assert!(alice.submitted(&Principal::Nats("alice".into())));
        assert!(alice.submitted(&Principal::ApiKey("alice".into())));
        assert!(alice.submitted(&Principal::ApiKey("alice-laptop".into())));
        assert!(!alice.submitted(&Principal::Nats("bob".into())));
        assert!(!alice.submitted(&Principal::Anonymous));
    }
}
