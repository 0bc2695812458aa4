//! `wingman setup-nats`: creates (or updates) the declared streams, consumers and KV buckets,
//! and applies `VALIDATION_ENABLED` / `VALIDATION_ROLLOUT_PERCENT` to the rollout flags when
//! they are not set yet or changed since last applied (an unchanged environment keeps a live
//! `wingman rollout set`; see `rollout::environment`).
//!
//! In production this is the only code that changes the topology. It runs once per deploy as
//! the NATS `admin` user (the compose service `setup-nats`), and workers run with
//! `WINGMAN_ENSURE_TOPOLOGY=0`: they open what this created and need no right to create,
//! update or delete a stream (see `nats/server-prd.conf`).

use crate::bus::Bus;
use crate::cli::ExitCode;
use crate::config::Settings;
use crate::rollout::RolloutStore;

/// `wingman setup-nats`'s arguments.
#[derive(Debug, clap::Args)]
pub struct SetupNatsArgs {
    /// Print the counts, the rollout flags and what the environment did, as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Connects with the environment's settings and sets the topology up.
pub async fn run(args: SetupNatsArgs) -> anyhow::Result<ExitCode> {
    let bus = crate::cli::connect(&Settings::from_env()?).await?;
    setup(&bus, args.json).await?;
    Ok(ExitCode::Ok)
}

/// Ensures the topology on `bus` and applies the environment's rollout flags.
pub async fn setup(bus: &Bus, json: bool) -> anyhow::Result<()> {
    bus.ensure_topology().await?;
    let rollout = RolloutStore::open(bus).await?;
    let applied = rollout
        .apply_environment(&crate::settings::rollout()?)
        .await?;
    let (current, _) = rollout.current().await?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "streams": bus.topology.streams.len(),
                "consumers": bus.topology.consumers.len(),
                "buckets": bus.topology.buckets.len(),
                "rollout": current,
                "environment": applied.describe(),
            })
        );
        return Ok(());
    }
    println!(
        "topology ready: {} streams, {} consumers, {} buckets; validation {}",
        bus.topology.streams.len(),
        bus.topology.consumers.len(),
        bus.topology.buckets.len(),
        current.describe()
    );
    println!("rollout: {}", applied.describe());
    Ok(())
}
