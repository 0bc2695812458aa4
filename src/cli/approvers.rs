//! `wingman approvers`: issue and revoke approver identities without a redeploy.
//!
//! An approver makes their own key (`keygen`: the secret stays on their machine, mode 0600;
//! the public key is printed to hand over); an admin registers it with the person's other
//! credentials (`add`), or revokes them (`remove`). The roster lives in the
//! `wingman_approvers` KV bucket, which only the NATS `admin` may write; the approvals worker
//! reads it at every vote, so a change counts from the next vote on. The bucket keeps the
//! previous revisions (`nats kv history wingman_approvers roster`).

use std::path::Path;

use chrono::Utc;

use crate::bus::Bus;
use crate::identity::roster::{Approver, Roster, RosterStore};
use crate::principal::Principal;

/// The credentials to add to (or create) one approver's entry.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub console_keys: Vec<String>,
    pub telegram_ids: Vec<i64>,
    pub api_keys: Vec<String>,
    pub publishers: Vec<Principal>,
}

pub async fn store(bus: &Bus) -> anyhow::Result<RosterStore> {
    RosterStore::open(bus).await
}

/// Writes a new approver key pair as `<dir>/approver.key` (0600) and `approver.pub`; returns
/// the public key text.
pub fn keygen(dir: &Path) -> anyhow::Result<String> {
    std::fs::create_dir_all(dir)
        .map_err(|error| anyhow::anyhow!("create {}: {error}", dir.display()))?;
    let (secret, public) = crate::token::write_keypair(dir, "approver")?;
    let key = crate::token::read_verify_key(&public)?;
    eprintln!(
        "your approver key (keep it; mode 0600): {}",
        secret.display()
    );
    Ok(key.to_text())
}

/// Adds `credentials` to the approver `name` (created when new).
pub async fn add(
    store: &RosterStore,
    name: &str,
    credentials: Credentials,
) -> anyhow::Result<Approver> {
    let roster = store
        .update(|roster| {
            let index = match roster.approvers.iter().position(|a| a.name == name) {
                Some(index) => index,
                None => {
                    roster.approvers.push(Approver {
                        name: name.to_string(),
                        console_keys: Vec::new(),
                        telegram_ids: Vec::new(),
                        api_keys: Vec::new(),
                        publishers: Vec::new(),
                        added_at: Utc::now(),
                    });
                    roster.approvers.len() - 1
                }
            };
            let entry = &mut roster.approvers[index];
            merge(
                &mut entry.console_keys,
                credentials
                    .console_keys
                    .iter()
                    .map(|k| k.trim().to_string()),
            );
            merge(
                &mut entry.telegram_ids,
                credentials.telegram_ids.iter().copied(),
            );
            merge(&mut entry.api_keys, credentials.api_keys.iter().cloned());
            merge(
                &mut entry.publishers,
                credentials.publishers.iter().cloned(),
            );
            Ok(())
        })
        .await?;
    roster
        .by_name(name)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("approver `{name}` vanished from the roster"))
}

/// Removes the approver `name` and every credential of theirs.
pub async fn remove(store: &RosterStore, name: &str) -> anyhow::Result<()> {
    store
        .update(|roster| {
            let before = roster.approvers.len();
            roster.approvers.retain(|approver| approver.name != name);
            if roster.approvers.len() == before {
                return Err(format!("no approver `{name}` in the roster"));
            }
            Ok(())
        })
        .await?;
    Ok(())
}

pub async fn list(store: &RosterStore, json: bool) -> anyhow::Result<Roster> {
    let (roster, _) = store.load().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&roster)?);
    } else if roster.approvers.is_empty() {
        println!("no approvers (add one with `wingman approvers add <name> --console-key …`)");
    } else {
        for approver in &roster.approvers {
            println!("{}", describe(approver));
        }
    }
    Ok(roster)
}

/// One line per approver: name, then what proves them.
pub fn describe(approver: &Approver) -> String {
    let mut parts = vec![approver.name.clone()];
    parts.extend(approver.console_keys.iter().map(|key| {
        let short: String = key.chars().take(24).collect();
        format!("console key {short}…")
    }));
    parts.extend(
        approver
            .telegram_ids
            .iter()
            .map(|id| format!("telegram {id}")),
    );
    parts.extend(
        approver
            .api_keys
            .iter()
            .map(|name| format!("api key {name}")),
    );
    parts.extend(approver.publishers.iter().map(|p| format!("publisher {p}")));
    parts.join("  ")
}

fn merge<T: PartialEq>(into: &mut Vec<T>, items: impl Iterator<Item = T>) {
    for item in items {
        if !into.contains(&item) {
            into.push(item);
        }
    }
}
