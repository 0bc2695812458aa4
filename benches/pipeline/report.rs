//! What the bench prints and saves: exact percentiles of a set of latencies, and every
//! figure of the run collected by phase, written with `--json FILE` so runs can be compared.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

/// Exact percentiles (nearest rank over the sorted samples) of a set of latencies.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latencies {
    pub count: usize,
    /// Samples per second over `elapsed`.
    pub throughput: f64,
    #[serde(rename = "elapsed_s", serialize_with = "as_seconds")]
    pub elapsed: Duration,
    #[serde(rename = "p50_ms")]
    pub p50: f64,
    #[serde(rename = "p99_ms")]
    pub p99: f64,
    #[serde(rename = "max_ms")]
    pub max: f64,
}

fn as_seconds<S: serde::Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(value.as_secs_f64())
}

impl Latencies {
    /// "p50 … p99 … max …" in milliseconds, for a table cell.
    pub fn cells(&self) -> String {
        if self.count == 0 {
            return format!("{:>34}", "no samples");
        }
        format!("{:>9.2} {:>9.2} {:>9.2} ms", self.p50, self.p99, self.max)
    }
}

pub fn percentiles(mut millis: Vec<f64>, elapsed: Duration) -> Latencies {
    millis.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| {
        millis
            .get(((millis.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Latencies {
        count: millis.len(),
        throughput: millis.len() as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE),
        elapsed,
        p50: at(0.5),
        p99: at(0.99),
        max: at(1.0),
    }
}

/// Every figure of one run, by phase.
#[derive(Default)]
pub struct Report {
    phases: Map<String, Value>,
}

impl Report {
    pub fn put(&mut self, phase: &str, figures: impl Serialize) {
        let value = serde_json::to_value(figures).unwrap_or_else(|error| {
            Value::String(format!("the figures did not serialize: {error}"))
        });
        self.phases.insert(phase.to_string(), value);
    }

    pub fn write(&self, path: &std::path::Path) -> anyhow::Result<()> {
        std::fs::write(path, serde_json::to_string_pretty(&self.phases)?)
            .map_err(|error| anyhow::anyhow!("write {}: {error}", path.display()))?;
        println!("figures written to {}", path.display());
        Ok(())
    }
}

/// A phase's title line.
pub fn heading(title: &str) {
    println!();
    println!(
        "── {title} {}",
        "─".repeat(78usize.saturating_sub(title.len()))
    );
}
