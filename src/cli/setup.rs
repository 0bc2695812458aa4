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
use crate::rollout::{Rollout, RolloutStore};

pub async fn run(bus: &Bus, json: bool) -> anyhow::Result<()> {
    bus.ensure_topology().await?;
    let rollout = RolloutStore::open(bus).await?;
    let applied = rollout.apply_environment(&Rollout::from_env()?).await?;
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
