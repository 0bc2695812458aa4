//! Where the CPU goes: user + system time of every process that serves the pipeline (each
//! worker, nats-server, the PostgreSQL processes, this bench as the publisher), read from
//! `/proc/<pid>/stat` before and after a phase (Linux scales those ticks to the scheduler's
//! exact run time); the machine's busy time as the wall time of every core minus the idle time
//! `/proc/stat` gives, and so the CPU of everything else (busy time minus the listed
//! processes'). Not `/proc/stat`'s user and system columns: on a tickless kernel with tick
//! accounting (this VM) they only count the busy time a 4 ms tick happens to land in, and at
//! 500 requests/s, where cores wake for bursts far shorter than a tick, they missed about half
//! of the machine's time (measured: the columns summed to 0.55 s of every 1.0 s of two cores'
//! time while the pipeline's processes alone ran 0.95 cores). Also how long
//! their threads were runnable but waiting for a core (`/proc/<pid>/task/*/schedstat`, the
//! scheduler's run-queue wait): on a 2-core machine, the share of latency no code path shows;
//! and how many times they were put on a core (the same file's count of time slices: one per
//! context switch in), the wake-ups a request costs each process when batches hold one.

use std::collections::BTreeMap;
use std::process::Command;

use serde::Serialize;

/// CPU seconds per process group, and the machine's idle time when it was read.
#[derive(Debug, Clone)]
pub struct Sample {
    groups: BTreeMap<String, f64>,
    /// Seconds the group's threads waited on a run queue.
    waits: BTreeMap<String, f64>,
    /// Times the group's threads were put on a core.
    slices: BTreeMap<String, u64>,
    /// Idle + iowait of all cores, in ticks (tickless kernels measure it exactly).
    idle_ticks: u64,
    at: std::time::Instant,
    ticks_per_second: f64,
}

fn ticks_per_second() -> f64 {
    // Asked once: a `getconf` process at every sample was CPU the bench charged to itself.
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0)
    })
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

/// Seconds the threads of a process (those alive now) have waited on a run queue, and the
/// times they were put on a core (`schedstat`: run time, run-queue wait, time slices).
fn scheduled(pid: &str) -> Option<(f64, u64)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let (nanos, slices) = tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|line| {
            let mut fields = line.split_whitespace().skip(1);
            let waited = fields.next()?.parse::<u64>().ok()?;
            let slices = fields.next()?.parse::<u64>().ok()?;
            Some((waited, slices))
        })
        .fold((0, 0), |(nanos, slices), (waited, more)| {
            (nanos + waited, slices + more)
        });
    Some((nanos as f64 / 1e9, slices))
}

/// Idle + iowait of all cores from `/proc/stat`, in ticks.
fn idle_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|line| line.starts_with("cpu ")) else {
        return 0;
    };
    // idle and iowait are the 4th and 5th columns.
    line.split_whitespace()
        .skip(4)
        .take(2)
        .filter_map(|value| value.parse::<u64>().ok())
        .sum()
}

/// Reads the CPU time of the listed processes, by group, of this process (the publisher),
/// and the machine's busy and total time.
pub fn sample(listed: &[(String, u32)]) -> Sample {
    let per_second = ticks_per_second();
    let mut groups = BTreeMap::new();
    let mut waits = BTreeMap::new();
    let mut slices = BTreeMap::new();
    let own = (PUBLISHER.to_string(), std::process::id());
    for (group, pid) in listed.iter().chain(std::iter::once(&own)) {
        if let Some((_, ticks)) = process_ticks(&pid.to_string()) {
            *groups.entry(group.clone()).or_insert(0.0) += ticks as f64 / per_second;
        }
        if let Some((wait, put_on)) = scheduled(&pid.to_string()) {
            *waits.entry(group.clone()).or_insert(0.0) += wait;
            *slices.entry(group.clone()).or_insert(0) += put_on;
        }
    }
    Sample {
        groups,
        waits,
        slices,
        idle_ticks: idle_ticks(),
        at: std::time::Instant::now(),
        ticks_per_second: per_second,
    }
}

/// What a phase cost, from two samples.
#[derive(Debug, Clone, Serialize)]
pub struct Spent {
    /// CPU µs per request, by group, largest first.
    pub per_request_us: Vec<(String, f64)>,
    pub total_per_request_us: f64,
    /// µs per request the listed processes' threads were runnable but waiting for a core.
    pub run_queue_wait_per_request_us: f64,
    /// Context switches per request (times a thread was put on a core), by group, most
    /// first.
    pub switches_per_request: Vec<(String, f64)>,
    /// The machine's busy share of all its cores, percent.
    pub machine_busy_percent: f64,
    /// CPU of every process not listed (the machine's busy time minus the listed groups'),
    /// in cores (1.0 = one core busy all the time) over the phase.
    pub everything_else_cores: f64,
    pub seconds: f64,
}

/// The CPU between two samples; `requests` divides it.
pub fn spent(before: &Sample, after: &Sample, requests: usize, cores: usize) -> Spent {
    let mut groups: Vec<(String, f64)> = after
        .groups
        .iter()
        .map(|(group, seconds)| {
            let earlier = before.groups.get(group).copied().unwrap_or(0.0);
            (group.clone(), (seconds - earlier).max(0.0))
        })
        .collect();
    groups.sort_by(|a, b| b.1.total_cmp(&a.1));
    let listed: f64 = groups.iter().map(|(_, seconds)| seconds).sum();
    let wall = after
        .at
        .saturating_duration_since(before.at)
        .as_secs_f64()
        .max(f64::MIN_POSITIVE);
    let all = wall * cores.max(1) as f64;
    let idle = after.idle_ticks.saturating_sub(before.idle_ticks) as f64 / after.ticks_per_second;
    let busy = (all - idle).max(0.0);
    let per_request = |seconds: f64| seconds * 1e6 / requests.max(1) as f64;
    let waited: f64 = after
        .waits
        .iter()
        .map(|(group, seconds)| {
            (seconds - before.waits.get(group).copied().unwrap_or(0.0)).max(0.0)
        })
        .sum();
    let mut switches: Vec<(String, f64)> = after
        .slices
        .iter()
        .map(|(group, count)| {
            let earlier = before.slices.get(group).copied().unwrap_or(0);
            (
                group.clone(),
                count.saturating_sub(earlier) as f64 / requests.max(1) as f64,
            )
        })
        .collect();
    switches.sort_by(|a, b| b.1.total_cmp(&a.1));
    Spent {
        switches_per_request: switches,
        total_per_request_us: per_request(listed),
        run_queue_wait_per_request_us: per_request(waited),
        per_request_us: groups
            .into_iter()
            .map(|(group, seconds)| (group, per_request(seconds)))
            .collect(),
        machine_busy_percent: busy * 100.0 / all,
        everything_else_cores: (busy - listed).max(0.0) / wall,
        seconds: wall,
    }
}

/// The group names of the processes beside the workers (`wingman-<name>`): the bench's own
/// process, the nats-server on the pipeline's port, the Postgres processes serving the
/// bench's database.
pub const PUBLISHER: &str = "bench (publisher)";
pub const NATS_SERVER: &str = "nats-server";
pub const POSTGRES: &str = "postgres";

/// Above this share of one core, the rest of the machine was not idle.
pub const NOT_IDLE_CORES: f64 = 0.05;

impl Spent {
    pub fn print(&self, what: &str) {
        println!(
            "CPU of {what}: machine {:.0} % busy over {:.1} s; {:.0} µs of CPU per request in the pipeline's processes:",
            self.machine_busy_percent, self.seconds, self.total_per_request_us
        );
        for (group, micros) in &self.per_request_us {
            println!(
                "  {group:<22} {micros:>7.0} µs/request  {:>5.1} %",
                micros * 100.0 / self.total_per_request_us.max(f64::MIN_POSITIVE)
            );
        }
        println!(
            "  everything else on the machine: {:.2} cores ({:.0} % of one core)",
            self.everything_else_cores,
            self.everything_else_cores * 100.0
        );
        println!(
            "  runnable but waiting for a core (run queue), summed over the pipeline's threads: {:.0} µs/request",
            self.run_queue_wait_per_request_us
        );
        println!("  context switches per request: {}", self.switches());
    }

    /// The groups' context switches per request, most first.
    fn switches(&self) -> String {
        let groups: Vec<String> = self
            .switches_per_request
            .iter()
            .filter(|(_, count)| *count >= 0.05)
            .map(|(group, count)| format!("{group} {count:.1}"))
            .collect();
        groups.join(", ")
    }

    /// One line: the machine's load and the CPU per request at a rate.
    pub fn line(&self) -> String {
        let top: Vec<String> = self
            .per_request_us
            .iter()
            .take(4)
            .map(|(group, micros)| format!("{group} {micros:.0}"))
            .collect();
        format!(
            "machine {:.0} % busy; {:.0} µs of CPU per request ({}); waiting for a core {:.0} µs/request; context switches per request: {}",
            self.machine_busy_percent,
            self.total_per_request_us,
            top.join(", "),
            self.run_queue_wait_per_request_us,
            self.switches()
        )
    }
}

/// Prints a warning when the rest of the machine was busy; true when it was.
pub fn warn_if_busy(what: &str, cores_used: f64) -> bool {
    let busy = cores_used > NOT_IDLE_CORES;
    if busy {
        println!(
            "WARNING: the machine was not idle {what}: other processes used {:.0} % of a core \
             (above {:.0} %); these figures include their interference",
            cores_used * 100.0,
            NOT_IDLE_CORES * 100.0
        );
    }
    busy
}
