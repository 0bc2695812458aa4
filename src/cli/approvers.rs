//! `wingman approvers`: issue and revoke approver identities without a redeploy.
//!
//! An approver makes their own key (`keygen`: the secret stays on their machine, mode 0600;
//! the public key is printed to hand over); an admin registers it with the person's other
//! credentials (`add`), or revokes them (`remove`). The roster lives in the
//! `wingman_approvers` KV bucket, which only the NATS `admin` may write; the approvals worker
//! reads it at every vote, so a change counts from the next vote on. The bucket keeps the
//! previous revisions (`nats kv history wingman_approvers roster`).

use std::path::{Path, PathBuf};

use chrono::Utc;

use crate::bus::Bus;
use crate::cli::ExitCode;
use crate::config::Settings;
use crate::identity::roster::{Approver, Roster, RosterStore};
use crate::principal::Principal;

/// `wingman approvers`' subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ApproversAction {
    /// Make your approver key (`approver.key`, mode 0600, in --dir) and print its public
    /// key, for an admin to register with `wingman approvers add`.
    Keygen {
        /// Default: ~/.config/wingman (where `wingman approve` looks).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Register an approver, or add credentials to one (as the NATS admin): e.g.
    /// wingman approvers add anna --console-key k4.public.… --telegram 4242
    Add {
        /// The person's name: what audit rows show and what a vote counts as.
        name: String,
        /// A public key from `wingman approvers keygen` (repeatable).
        #[arg(long = "console-key")]
        console_keys: Vec<String>,
        /// A Telegram user id (the bot's /whoami shows it; repeatable).
        #[arg(long = "telegram")]
        telegram_ids: Vec<i64>,
        /// The name of an API key with the decide role that is this person (repeatable).
        #[arg(long = "api-key")]
        api_keys: Vec<String>,
        /// A publisher principal that is this person, beside nats:<name> and api:<name>
        /// (nats:<user> or api:<key>; repeatable): their requests are their own.
        #[arg(long = "publisher")]
        publishers: Vec<Principal>,
        /// Print the approver as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an approver and every credential of theirs (as the NATS admin).
    Remove {
        /// The approver's name, as `wingman approvers list` shows it.
        name: String,
        /// Print {"removed": NAME} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Everyone who may decide, and what proves them.
    List {
        /// Print the roster as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs one `wingman approvers` subcommand; all but `keygen` talk to the bus.
pub async fn run(action: ApproversAction) -> anyhow::Result<ExitCode> {
    match action {
        ApproversAction::Keygen { dir } => {
            let dir = match dir {
                Some(dir) => dir,
                None => crate::cli::approve::config_dir()?,
            };
            println!("{}", keygen(&dir)?);
        }
        ApproversAction::Add {
            name,
            console_keys,
            telegram_ids,
            api_keys,
            publishers,
            json,
        } => {
            let store = store(&crate::cli::connect(&Settings::from_env()?).await?).await?;
            let credentials = Credentials {
                console_keys,
                telegram_ids,
                api_keys,
                publishers,
            };
            let approver = add(&store, &name, credentials).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&approver)?);
            } else {
                println!("{}", describe(&approver));
            }
        }
        ApproversAction::Remove { name, json } => {
            let store = store(&crate::cli::connect(&Settings::from_env()?).await?).await?;
            remove(&store, &name).await?;
            if json {
                println!("{}", serde_json::json!({ "removed": name }));
            } else {
                println!("removed {name}: their credentials no longer decide anything");
            }
        }
        ApproversAction::List { json } => {
            let store = store(&crate::cli::connect(&Settings::from_env()?).await?).await?;
            list(&store, json).await?;
        }
    }
    Ok(ExitCode::Ok)
}

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
