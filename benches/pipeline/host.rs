//! The host's own floor, beside JetStream's: how long this machine's cores stop when nothing
//! runs on them. One thread pinned to each core sleeps 0.5 ms again and again with the machine
//! idle and records how much later than asked it woke: on the virtual machines it was written
//! on, ~0.06–0.08 ms at the median, but a core stopped for 2–6 ms up to three times a second
//! (their host takes it away; no steal time is reported to the guest), and every request with
//! a step on that core at that moment waits it out. So these stalls bound from below what the
//! latency tail at light load can be, whatever the pipeline does.

use std::time::{Duration, Instant};

use serde::Serialize;

/// How long each probe thread asks to sleep.
const NAP: Duration = Duration::from_micros(500);

/// The wake-ups of one core's probe thread.
#[derive(Debug, Clone, Serialize)]
pub struct CoreStalls {
    pub core: usize,
    pub naps: usize,
    /// How much later than asked the thread woke, ms.
    pub late_p50_ms: f64,
    pub late_p99_ms: f64,
    pub late_p999_ms: f64,
    pub late_max_ms: f64,
    /// Wake-ups at least 1 ms / 2 ms late, per second of the probe.
    pub stalls_1ms_per_s: f64,
    pub stalls_2ms_per_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostFloor {
    pub seconds: f64,
    pub cores: Vec<CoreStalls>,
}

impl HostFloor {
    pub fn print(&self) {
        println!(
            "host, idle, a thread per core napping {:.1} ms for {:.0} s: how late it woke (p50 / p99 / p99.9 / max), stalls ≥ 1 ms and ≥ 2 ms",
            NAP.as_secs_f64() * 1e3,
            self.seconds
        );
        for core in &self.cores {
            println!(
                "  core {}: {:>6.3} {:>6.3} {:>6.3} {:>6.2} ms | {:>5.2}/s ≥ 1 ms, {:>5.2}/s ≥ 2 ms",
                core.core,
                core.late_p50_ms,
                core.late_p99_ms,
                core.late_p999_ms,
                core.late_max_ms,
                core.stalls_1ms_per_s,
                core.stalls_2ms_per_s
            );
        }
    }
}

/// Probes every core for `seconds` (blocking: call it from `spawn_blocking`).
pub fn measure(seconds: f64, cores: usize) -> HostFloor {
    let probes: Vec<_> = (0..cores)
        .map(|core| std::thread::spawn(move || probe(core, seconds)))
        .collect();
    HostFloor {
        seconds,
        cores: probes
            .into_iter()
            .filter_map(|probe| probe.join().ok())
            .collect(),
    }
}

fn probe(core: usize, seconds: f64) -> CoreStalls {
    pin_to(core);
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let mut late = Vec::with_capacity((seconds * 2_000.0) as usize);
    while Instant::now() < end {
        let asleep = Instant::now();
        std::thread::sleep(NAP);
        late.push(asleep.elapsed().saturating_sub(NAP).as_secs_f64() * 1e3);
    }
    late.sort_by(f64::total_cmp);
    let at = |share: f64| {
        late.get(((late.len() as f64 * share) as usize).min(late.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    let per_second = |bound: f64| late.iter().filter(|&&ms| ms >= bound).count() as f64 / seconds;
    CoreStalls {
        core,
        naps: late.len(),
        late_p50_ms: at(0.5),
        late_p99_ms: at(0.99),
        late_p999_ms: at(0.999),
        late_max_ms: late.last().copied().unwrap_or(0.0),
        stalls_1ms_per_s: per_second(1.0),
        stalls_2ms_per_s: per_second(2.0),
    }
}

/// Pins the calling thread to one core, so each probe watches its own.
fn pin_to(core: usize) {
    // SAFETY: `set` is a zeroed `cpu_set_t` (a plain bit array) that CPU_SET fills in range;
    // sched_setaffinity(0, …) reads it and changes only the calling thread's affinity.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!("host floor: could not pin the probe to core {core}; it may wander");
        }
    }
}
