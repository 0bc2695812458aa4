//! The pipeline bench's pure parts, which `main.rs` includes from `benches/pipeline/`: its
//! flags, the soak's memory figures, the CPU sampler's context switches and a step's batches
//! (a `harness = false` bench's own tests never run).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::bench_args::{Options, try_parse_from};
use crate::bench_batches::mean_batches;
use crate::bench_cpu::{PUBLISHER, sample, spent};
use crate::bench_growth::{Growth, MEDIAN_OF, Memory};

fn parse(args: &[&str]) -> Result<Options, String> {
    try_parse_from(std::iter::once("pipeline").chain(args.iter().copied()))
        .map_err(|error| error.to_string())
}

#[test]
fn the_full_run_and_the_quick_one_have_their_own_defaults_and_cargos_flag_is_ignored() {
    let full = parse(&["--bench"]).unwrap();
    assert_eq!(
        (
            full.requests,
            full.sweep.as_slice(),
            full.rate_seconds,
            full.command_rate
        ),
        (50_000, &[500, 1000, 2000, 5000][..], 20.0, 1000)
    );
    assert_eq!(full.sample_every, Duration::from_secs(60));
    let quick = parse(&["--quick", "--bench"]).unwrap();
    assert_eq!(
        (quick.requests, quick.rate_seconds, quick.executions),
        (2_000, 2.0, 3)
    );
    let soak = parse(&["--soak", "30m", "--rate", "500", "--sample-every", "15s"]).unwrap();
    assert_eq!(
        (soak.soak, soak.rate, soak.sample_every),
        (
            Some(Duration::from_secs(1800)),
            500,
            Duration::from_secs(15)
        )
    );
}

/// A value that would make a phase measure nothing, or forever, stops the bench with the
/// flag named.
#[test]
fn a_bad_value_is_refused_naming_its_flag() {
    for (args, flag, problem) in [
        (&["--sweep", "500,0"][..], "--sweep", "must be above 0"),
        (&["--requests", "0"], "--requests", "must be above 0"),
        (
            &["--requests", "many"],
            "--requests",
            "is not a whole number",
        ),
        (&["--rate-seconds", "0"], "--rate-seconds", "above 0"),
        (&["--warmup-seconds", "NaN"], "--warmup-seconds", "above 0"),
        (
            &["--command-share", "101"],
            "--command-share",
            "is not a percentage",
        ),
        (&["--soak", "soon"], "--soak", "soon"),
        (
            &["--faults-rate", "-5"],
            "--faults-rate",
            "is not a whole number",
        ),
        (&["--no-such-flag"], "--no-such-flag", ""),
    ] {
        let error = parse(args).expect_err(&format!("{args:?} is refused"));
        assert!(
            error.contains(flag) && error.contains(problem),
            "{args:?}: {error}"
        );
    }
}

/// A soak's samples of one worker, one a minute: RSS and its anonymous part, MiB.
fn minutes(rss: &[f64], anon: &[f64]) -> Vec<Memory> {
    rss.iter()
        .zip(anon)
        .enumerate()
        .map(|(minute, (rss, anon))| Memory {
            at_s: 60.0 * (minute + 1) as f64,
            rss_mib: BTreeMap::from([("recorder".to_string(), *rss)]),
            anon_mib: BTreeMap::from([("recorder".to_string(), *anon)]),
        })
        .collect()
}

/// What a batch in flight does to one sample: the last one is 12 % above the one at 5
/// minutes while nothing grows, and the medians say so.
#[test]
fn a_heap_that_rises_and_falls_reads_as_no_growth_in_the_medians() {
    let rss = [
        14.0, 14.5, 15.0, 14.0, 13.0, 15.0, 13.0, 15.0, 13.0, 15.0, 13.0, 14.0, 13.0, 13.0, 14.56,
    ];
    let anon = [
        3.0, 3.5, 4.0, 3.0, 2.0, 4.0, 2.0, 4.0, 2.0, 4.0, 2.0, 3.0, 2.0, 2.0, 3.56,
    ];
    let growth = Growth::of(&minutes(&rss, &anon), 300.0);
    assert_eq!(
        growth.settled_at, 300.0,
        "from the first sample at 5 minutes"
    );
    assert_eq!(growth.window, MEDIAN_OF);
    assert!(
        (growth.single["recorder"] - 12.0).abs() < 0.01,
        "{:?}",
        growth.single
    );
    assert!(
        growth.medians["recorder"].abs() < 0.01,
        "{:?}",
        growth.medians
    );
    assert_eq!(growth.anon["recorder"], (2.0, 2.0));
}

#[test]
fn a_leak_grows_the_single_figure_the_medians_and_the_anonymous_part() {
    let rss: Vec<f64> = (0..30)
        .map(|minute| 12.0 + 0.1 * f64::from(minute))
        .collect();
    let anon: Vec<f64> = (0..30)
        .map(|minute| 2.0 + 0.1 * f64::from(minute))
        .collect();
    let growth = Growth::of(&minutes(&rss, &anon), 300.0);
    // 12.4 MiB at 5 minutes, 14.9 at 30.
    assert!(
        (growth.single["recorder"] - 20.16).abs() < 0.01,
        "{:?}",
        growth.single
    );
    assert!(growth.medians["recorder"] > 15.0, "{:?}", growth.medians);
    let (from, to) = growth.anon["recorder"];
    assert!(to - from > 2.0, "{from} → {to}");
}

/// A soak shorter than the settling time is measured from its first sample, and a short
/// one takes fewer samples a median, never the same samples at both ends.
#[test]
fn a_short_soak_says_which_window_it_measured() {
    let growth = Growth::of(&minutes(&[10.0, 11.0], &[1.0, 2.0]), 300.0);
    assert_eq!((growth.settled_at, growth.window), (60.0, 1));
    assert!((growth.single["recorder"] - 10.0).abs() < 0.01);
    assert!((growth.medians["recorder"] - 10.0).abs() < 0.01);
    let growth = Growth::of(&minutes(&[10.0; 9], &[1.0; 9]), 300.0);
    assert_eq!(
        (growth.settled_at, growth.window),
        (300.0, 2),
        "5 samples after settling"
    );
    let empty = Growth::of(&[], 300.0);
    assert!(empty.single.is_empty() && empty.window == 0);
}

/// The CPU sampler counts the times a process's threads were put on a core: a thread of this
/// process that naps 2 000 times between two samples (alive at the second, as the sampler
/// reads the threads alive) is at least 2 000 context switches of its group (the bench's
/// own, `PUBLISHER`), and a count, not the nanoseconds beside it in `schedstat`.
#[test]
fn the_cpu_sampler_counts_the_context_switches_of_a_thread_that_naps() {
    const NAPS: u32 = 2_000;
    let (napped, was_napped) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let before = sample(&[]);
    let napper = std::thread::spawn(move || {
        for _ in 0..NAPS {
            std::thread::sleep(Duration::from_micros(50));
        }
        napped.send(()).unwrap();
        let _ = released.recv();
    });
    was_napped.recv().unwrap();
    let after = sample(&[]);
    release.send(()).unwrap();
    napper.join().unwrap();
    let spent = spent(&before, &after, 1, 1);
    let switches = spent
        .switches_per_request
        .iter()
        .find(|(group, _)| group == PUBLISHER)
        .map(|(_, count)| *count)
        .unwrap_or(0.0);
    assert!(
        (f64::from(NAPS)..100_000.0).contains(&switches),
        "{NAPS} naps counted as {switches} context switches"
    );
}

#[test]
fn a_steps_batches_are_the_messages_and_batches_of_that_step_alone() {
    let totals = |intake: (f64, f64), recorder: (f64, f64)| {
        vec![
            ("intake".to_string(), intake.0, intake.1),
            ("recorder".to_string(), recorder.0, recorder.1),
        ]
    };
    // Before the step: a full load's big batches. In the step: intake 3 000 messages in
    // 1 000 batches; the recorder handled nothing.
    let before = totals((20_000.0, 400.0), (20_000.0, 100.0));
    let after = totals((23_000.0, 1_400.0), (20_000.0, 100.0));
    assert_eq!(
        mean_batches(&after, &before),
        vec![("intake".to_string(), 3.0)],
        "the full load's batches must not count in the step's, and an idle worker shows no mean"
    );
    assert_eq!(
        mean_batches(&after, &[]),
        vec![
            ("intake".to_string(), 23_000.0 / 1_400.0),
            ("recorder".to_string(), 200.0)
        ]
    );
}
