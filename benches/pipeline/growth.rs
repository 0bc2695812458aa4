//! The soak's memory figures, pure: each worker's RSS growth after the first minutes, from
//! the samples the soak took. Tested in `tests/it/bench_parts.rs`, which includes this file:
//! a `harness = false` bench's own tests never run.

use std::collections::BTreeMap;

use serde::Serialize;

/// Each worker's memory at one moment of the soak.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    /// Seconds since the soak's load began.
    pub at_s: f64,
    /// Resident set, MiB, by worker.
    pub rss_mib: BTreeMap<String, f64>,
    /// The anonymous part of `rss_mib` (heap, stacks): what a leak would grow.
    pub anon_mib: BTreeMap<String, f64>,
}

/// How many samples a median takes at each end.
pub const MEDIAN_OF: usize = 5;

/// Each worker's RSS growth after settling, in percent: the figure (the last sample
/// against the first one at or after `settled_at`), and the median of the last
/// [`MEDIAN_OF`] samples against the median of the first [`MEDIAN_OF`] from `settled_at`;
/// with the anonymous MiB (medians) at both ends.
pub struct Growth {
    pub settled_at: f64,
    /// How many samples each median took (fewer than [`MEDIAN_OF`] in a short soak).
    pub window: usize,
    pub single: BTreeMap<String, f64>,
    pub medians: BTreeMap<String, f64>,
    pub anon: BTreeMap<String, (f64, f64)>,
}

impl Growth {
    pub fn of(samples: &[Memory], settled_at: f64) -> Self {
        let from = samples
            .iter()
            .position(|sample| sample.at_s >= settled_at)
            .unwrap_or(0);
        let after = &samples[from..];
        let mut growth = Self {
            settled_at: after.first().map_or(0.0, |sample| sample.at_s),
            window: 0,
            single: BTreeMap::new(),
            medians: BTreeMap::new(),
            anon: BTreeMap::new(),
        };
        let (Some(settled), Some(end)) = (after.first(), after.last()) else {
            return growth;
        };
        let window = MEDIAN_OF.min(after.len() / 2).max(1);
        growth.window = window;
        let (first, last) = (&after[..window], &after[after.len() - window..]);
        let percent = |from: f64, to: f64| (to - from) * 100.0 / from.max(f64::MIN_POSITIVE);
        for (name, mib) in &settled.rss_mib {
            let end_mib = end.rss_mib.get(name).copied().unwrap_or(0.0);
            growth.single.insert(name.clone(), percent(*mib, end_mib));
            let rss = |samples: &[Memory]| median(samples, |sample| &sample.rss_mib, name);
            growth
                .medians
                .insert(name.clone(), percent(rss(first), rss(last)));
            let anon = |samples: &[Memory]| median(samples, |sample| &sample.anon_mib, name);
            growth.anon.insert(name.clone(), (anon(first), anon(last)));
        }
        growth
    }

    pub fn print(&self) {
        let line = |values: &BTreeMap<String, f64>| {
            values
                .iter()
                .map(|(name, percent)| format!("{name} {percent:+.1} %"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "RSS growth after {:.0} s (the last sample against that one): {}",
            self.settled_at,
            line(&self.single)
        );
        println!(
            "  median of the last {0} samples against the first {0} from {1:.0} s: {2}",
            self.window,
            self.settled_at,
            line(&self.medians)
        );
        println!(
            "  anonymous memory (heap, stacks), the same medians: {}",
            self.anon
                .iter()
                .map(|(name, (from, to))| format!("{name} {from:.1} → {to:.1} MiB"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// The median of one worker's figure over `samples` (the upper one of an even count).
fn median(
    samples: &[Memory],
    figure: impl Fn(&Memory) -> &BTreeMap<String, f64>,
    name: &str,
) -> f64 {
    let mut values: Vec<f64> = samples
        .iter()
        .filter_map(|sample| figure(sample).get(name).copied())
        .collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}
