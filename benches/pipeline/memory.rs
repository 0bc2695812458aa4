//! Resident memory: each worker idle (just started), at the end of the full-load phase and
//! at its peak (VmHWM), and the nats-server this pipeline uses before and after the run.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::harness::Pipeline;
use crate::procs;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Memory {
    /// MiB per worker.
    pub idle: BTreeMap<String, f64>,
    pub at_load: BTreeMap<String, f64>,
    pub peak: BTreeMap<String, f64>,
    pub nats_server_before: Option<f64>,
    pub nats_server_after: Option<f64>,
}

/// The RSS of the nats-server the run talks to, MiB.
pub fn nats_rss(run: &Pipeline) -> Option<f64> {
    let port = run.nats_url.rsplit(':').next()?.parse().ok()?;
    procs::listening_pid(port).map(|pid| procs::status_mib(pid, "VmRSS:"))
}

/// Each worker's figure, keyed by its name, in name order.
pub fn owned(rss: std::collections::HashMap<&'static str, f64>) -> BTreeMap<String, f64> {
    rss.into_iter()
        .map(|(name, mib)| (name.to_string(), mib))
        .collect()
}

impl Memory {
    pub fn idle(run: &Pipeline) -> Self {
        Self {
            idle: owned(run.rss()),
            nats_server_before: nats_rss(run),
            ..Self::default()
        }
    }

    pub fn at_load(&mut self, run: &Pipeline) {
        self.at_load = owned(run.rss());
    }

    pub fn end(&mut self, run: &Pipeline) {
        self.peak = owned(run.rss_peak());
        self.nats_server_after = nats_rss(run);
    }

    pub fn print(&self) {
        println!("worker RSS (MiB):       idle  at load   peak");
        for (name, idle) in &self.idle {
            println!(
                "  {name:<12}       {idle:>6.1} {:>8.1} {:>6.1}",
                self.at_load.get(name).copied().unwrap_or(f64::NAN),
                self.peak.get(name).copied().unwrap_or(f64::NAN)
            );
        }
        let mib =
            |value: Option<f64>| value.map_or("unknown".into(), |mib| format!("{mib:.1} MiB"));
        println!(
            "nats-server RSS: {} before the run, {} after (shared with anything else using it)",
            mib(self.nats_server_before),
            mib(self.nats_server_after)
        );
    }
}
