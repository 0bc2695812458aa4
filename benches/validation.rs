//! Throughput of `Validator::validate` on one core, on the realistic requests of the
//! labelled corpus (`tests/data/validation-corpus.json`): commands and instruction
//! approvals, free text and the ten-section framework, clean text and secrets.
//!
//! Run with `cargo bench --bench validation`. No criterion: one thread, a warm-up, then
//! timed rounds over the whole corpus for several seconds; the median round is the figure
//! (validations per second on one core), with the slowest and fastest rounds beside it,
//! and the same per label.

use std::hint::black_box;
use std::time::{Duration, Instant};

use wingman::envelope::RequestId;
use wingman::request::{Request, parse_request};
use wingman::validation::Validator;

const CORPUS: &str = include_str!("../tests/data/validation-corpus.json");
const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(6);
const PER_LABEL: Duration = Duration::from_secs(2);
/// Passes over the requests per timed round, so a round lasts a few milliseconds.
const PASSES_PER_ROUND: usize = 20;

fn main() {
    let corpus = load();
    let validator = Validator::with_defaults();
    let requests: Vec<&Request> = corpus.iter().map(|(_, request)| request).collect();
    let bytes: usize = requests
        .iter()
        .map(|request| request.title.len() + request.description.len())
        .sum();
    println!(
        "corpus: {} requests, {} bytes of title and description on average",
        requests.len(),
        bytes / requests.len().max(1)
    );

    let deadline = Instant::now() + WARM_UP;
    while Instant::now() < deadline {
        run_pass(&validator, &requests);
    }

    let rounds = measure(&validator, &requests, MEASURE);
    report("all requests", &rounds);
    for label in ["safe", "risky_legitimate", "dangerous"] {
        let subset: Vec<&Request> = corpus
            .iter()
            .filter(|(item_label, _)| item_label == label)
            .map(|(_, request)| request)
            .collect();
        report(label, &measure(&validator, &subset, PER_LABEL));
    }
}

/// The corpus's requests with their labels, parsed as intake parses them.
fn load() -> Vec<(String, Request)> {
    let items: Vec<serde_json::Value> =
        serde_json::from_str(CORPUS).expect("the corpus is valid JSON");
    items
        .iter()
        .map(|item| {
            let label = item["label"].as_str().unwrap_or_default().to_string();
            let payload = item["request"].to_string();
            let request = parse_request(payload.as_bytes(), RequestId::generate)
                .unwrap_or_else(|error| panic!("corpus item {}: {error}", item["name"]));
            (label, request)
        })
        .collect()
}

fn run_pass(validator: &Validator, requests: &[&Request]) {
    for request in requests {
        black_box(validator.validate(black_box(request)));
    }
}

/// Validations per second of each timed round, sorted.
fn measure(validator: &Validator, requests: &[&Request], duration: Duration) -> Vec<f64> {
    let mut rounds = Vec::new();
    let started = Instant::now();
    while started.elapsed() < duration {
        let round = Instant::now();
        for _ in 0..PASSES_PER_ROUND {
            run_pass(validator, requests);
        }
        let count = (PASSES_PER_ROUND * requests.len()) as f64;
        rounds.push(count / round.elapsed().as_secs_f64());
    }
    rounds.sort_by(f64::total_cmp);
    rounds
}

fn report(what: &str, rounds: &[f64]) {
    let (Some(slowest), Some(fastest)) = (rounds.first(), rounds.last()) else {
        return;
    };
    let median = rounds[rounds.len() / 2];
    println!(
        "{what:>16}: {median:>9.0} validations/s on one core (median of {} rounds; slowest {slowest:.0}, fastest {fastest:.0}; {:.2} µs each)",
        rounds.len(),
        1e6 / median
    );
}
