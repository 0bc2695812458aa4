//! Where the CPU goes: user + system time of every process that serves the pipeline (each
//! worker, nats-server, the PostgreSQL processes, this bench as the publisher), read from
//! `/proc/<pid>/stat` before and after a phase, and the machine's busy share from
//! `/proc/stat`.

use std::collections::BTreeMap;
use std::process::Command;

/// CPU seconds per process group, and the machine's (busy, total) jiffies.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    groups: BTreeMap<String, f64>,
    machine: (u64, u64),
}

fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// (comm, utime + stime in ticks) of one process.
fn process_ticks(pid: &str) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
    // After "pid (comm) ": state is field 0, utime field 11, stime field 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|line| line.starts_with("cpu ")) else {
        return (0, 0);
    };
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|value| value.parse().ok())
        .collect();
    let total: u64 = values.iter().sum();
    // idle and iowait are the 4th and 5th columns.
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Reads the CPU time of the named workers, of nats-server and postgres (all their
/// processes), and of this process.
pub fn sample(workers: &[(String, u32)]) -> Sample {
    let per_second = ticks_per_second();
    let mut groups = BTreeMap::new();
    let own = std::process::id().to_string();
    let worker_pids: BTreeMap<String, &String> = workers
        .iter()
        .map(|(name, pid)| (pid.to_string(), name))
        .collect();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Sample::default();
    };
    for entry in entries.flatten() {
        let pid = entry.file_name().to_string_lossy().to_string();
        if !pid.bytes().all(|byte| byte.is_ascii_digit()) {
            continue;
        }
        let Some((comm, ticks)) = process_ticks(&pid) else {
            continue;
        };
        let group = if let Some(name) = worker_pids.get(&pid) {
            format!("wingman-{name}")
        } else if pid == own {
            "bench (publisher)".to_string()
        } else if comm == "nats-server" {
            comm
        } else if comm.starts_with("postgres") {
            "postgres".to_string()
        } else {
            continue;
        };
        *groups.entry(group).or_insert(0.0) += ticks as f64 / per_second;
    }
    Sample {
        groups,
        machine: machine_ticks(),
    }
}

/// Prints CPU µs per request for each group between two samples, largest first.
pub fn report(before: &Sample, after: &Sample, requests: usize, cores: usize) {
    let mut spent: Vec<(&String, f64)> = after
        .groups
        .iter()
        .map(|(group, seconds)| {
            let earlier = before.groups.get(group).copied().unwrap_or(0.0);
            (group, (seconds - earlier).max(0.0))
        })
        .collect();
    spent.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f64 = spent.iter().map(|(_, seconds)| seconds).sum();
    let busy = after.machine.0.saturating_sub(before.machine.0) as f64;
    let all = after.machine.1.saturating_sub(before.machine.1).max(1) as f64;
    println!(
        "CPU of the decision phase: machine {:.0} % busy ({cores} cores); {:.0} µs of CPU per request in all:",
        busy * 100.0 / all,
        total * 1e6 / requests.max(1) as f64
    );
    for (group, seconds) in spent {
        println!(
            "  {group:<22} {:>7.0} µs/request  {:>5.1} %",
            seconds * 1e6 / requests.max(1) as f64,
            seconds * 100.0 / total.max(f64::MIN_POSITIVE)
        );
    }
}
