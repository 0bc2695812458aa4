//! The seed's monitoring queries, exactly as README "The seed's monitoring queries: what each
//! one counts" prints them (the seed's four as written, and the first-decision ones beside
//! them), over a mix of requests with known counts: auto-approved and executed,
//! auto-rejected, auto-rejected then overridden, expired, approved by a human inside and
//! outside the validated cohort, rejected by a human. The rates are asserted before the
//! humans decide (when both families agree) and after (when the seed's, which read the
//! decision now, drift from the seed's meaning, the first decision).

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::types::BigDecimal;
use uuid::Uuid;
use wingman::request::Environment;

use crate::compose::wingman;
use crate::docker;
use crate::execution::{
    SEED_AUTO_APPROVE_RATE, SEED_AUTO_REJECT_RATE, SEED_AUTO_REJECTED_SCORES,
    SEED_MANUAL_REVIEW_RATE,
};
use crate::helpers::{TestEnv, text, wait_for_status, well_explained};
use crate::readme::{code_blocks, section};
use crate::runbook::id_in_cohort;

/// The validated cohort of this test: half of the requests, so some go to a human without
/// validation deciding (their `validation_decision` is NULL).
const PERCENT: u8 = 50;

/// The README's monitoring queries by their label (the comment before each, up to its colon):
/// `Auto-reject rate, as the seed writes it`, `Manual review rate, by the first decision`, ….
fn readme_queries() -> HashMap<String, String> {
    let text = section("#### The seed's monitoring queries: what each one counts");
    let mut queries = HashMap::new();
    for block in code_blocks(&text, "sql") {
        let mut label: Option<String> = None;
        let mut sql = Vec::new();
        for line in block.lines() {
            if let Some(comment) = line.strip_prefix("-- ") {
                let (name, _) = comment
                    .split_once(':')
                    .expect("`-- <label>: <what it counts>`");
                label = Some(name.to_string());
                continue;
            }
            sql.push(line);
            if line.trim_end().ends_with(';') {
                let name = label.take().expect("a label before each query");
                queries.insert(name, sql.join("\n"));
                sql.clear();
            }
        }
    }
    queries
}

/// Whitespace-insensitive: the README may wrap a query differently from the seed.
fn words(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What the README's queries say, by label: each rate as a number (`None` for SQL NULL), each
/// scores query as its rows.
#[derive(Debug, PartialEq)]
struct Seen {
    rates: HashMap<String, Option<f64>>,
    /// Rows of the scores queries: (has the validators' scores, overridden).
    scores: HashMap<String, Vec<(bool, Option<bool>)>>,
}

async fn run_queries(env: &TestEnv, queries: &HashMap<String, String>) -> Seen {
    let mut seen = Seen {
        rates: HashMap::new(),
        scores: HashMap::new(),
    };
    for (label, sql) in queries {
        let statement = sqlx::AssertSqlSafe(sql.clone());
        if label.starts_with("Auto-rejected scores") {
            let rows: Vec<sqlx::postgres::PgRow> =
                sqlx::query(statement).fetch_all(&env.pool).await.unwrap();
            use sqlx::Row as _;
            let rows = rows
                .iter()
                .map(|row| {
                    let scores: Option<Value> = row.get(0);
                    let overridden: Option<bool> = (row.len() > 1).then(|| row.get::<bool, _>(1));
                    (
                        scores.is_some_and(|s| s.get("code_scanner").is_some()),
                        overridden,
                    )
                })
                .collect();
            seen.scores.insert(label.clone(), rows);
        } else {
            let rate: Option<BigDecimal> = sqlx::query_scalar(statement)
                .fetch_one(&env.pool)
                .await
                .unwrap();
            let rate = rate.map(|rate| rate.to_string().parse::<f64>().unwrap());
            seen.rates.insert(label.clone(), rate);
        }
    }
    seen
}

/// `count` of `total`, in percent, as the queries compute it.
fn percent(count: u32, total: u32) -> Option<f64> {
    Some(f64::from(count) * 100.0 / f64::from(total))
}

fn assert_rates(seen: &Seen, expected: &[(&str, Option<f64>)]) {
    let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() < 1e-9,
        (a, b) => a == b,
    };
    for (label, rate) in expected {
        let got =
            seen.rates.get(*label).copied().unwrap_or_else(|| {
                panic!("README has no query `{label}`: {:?}", seen.rates.keys())
            });
        assert!(close(got, *rate), "{label}: {got:?}, expected {rate:?}");
    }
    assert_eq!(
        seen.rates.len(),
        expected.len(),
        "every rate checked: {seen:?}"
    );
}

/// A prd request: read-only and well explained (`docker inspect`), destructive and well
/// explained (`docker restart`: prd never auto-approves it), or careless (auto-rejected).
fn request(request_id: Uuid, kind: &str, target: &str) -> Value {
    match kind {
        "inspect" => json!({
            "request_id": request_id, "requester": "ops-anna", "environment": "prd",
            "command": format!("docker inspect {target}"),
            "title": format!("Inspect the container {target} to check its restart policy"),
            "description": format!(
                "Read-only: reads the configuration of the container {target} to check its restart \
                 policy before the weekly review. Only {target} is read, nothing changes. Rollback: \
                 none needed. Verify: the output shows the restart policy of {target}."
            ),
        }),
        "restart" => {
            let mut request = well_explained(
                request_id,
                "prd",
                &format!("docker restart {target}"),
                target,
            );
            request["requester"] = json!("ops-anna");
            request
        }
        _ => json!({
            "request_id": request_id, "requester": "agent-7", "environment": "prd",
            "command": "docker compose -p scratch down -v", "title": "cleanup",
            "description": "cleanup stuff",
        }),
    }
}

async fn submit(env: &TestEnv, request_id: Uuid, kind: &str, target: &str) {
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        request(request_id, kind, target).to_string(),
    )
    .await;
}

/// `wingman <args>` as the console approver `ops-bob`; asserts it was applied.
async fn decide(env: &TestEnv, args: &[&str]) {
    let output = wingman(env, "ops-bob", args).await;
    assert!(
        output.status.success(),
        "{args:?}: {}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

#[tokio::test]
async fn the_readmes_monitoring_queries_give_known_rates_over_executed_expired_and_overridden_requests()
 {
    let queries = readme_queries();
    // The seed's four, as the seed writes them (tests/it/execution.rs holds them verbatim).
    for (label, seed) in [
        (
            "Auto-reject rate, as the seed writes it",
            SEED_AUTO_REJECT_RATE,
        ),
        (
            "Auto-approve rate, as the seed writes it",
            SEED_AUTO_APPROVE_RATE,
        ),
        (
            "Manual review rate, as the seed writes it",
            SEED_MANUAL_REVIEW_RATE,
        ),
        (
            "Auto-rejected scores, as the seed writes it",
            SEED_AUTO_REJECTED_SCORES,
        ),
    ] {
        let printed = queries
            .get(label)
            .unwrap_or_else(|| panic!("README prints no `{label}`: {:?}", queries.keys()));
        assert_eq!(words(printed), words(seed), "{label}");
    }
    assert_eq!(queries.len(), 8, "{:?}", queries.keys());

    let mut env = TestEnv::start().await;
    env.spawn_recorder().await;
    env.spawn_approvals(None, &["cli:ops-bob"], 1).await;
    env.spawn_authority().await;
    env.spawn_gateway(&[Environment::Prd]).await;
    let target = docker::unique("wt-mon");
    docker::start_container(&target, None).await;

    // The request nobody will decide, while intake gives a human one second.
    let (stop, first_intake) = env
        .spawn_intake_stoppable(PERCENT, Duration::from_secs(1))
        .await;
    let expiring = id_in_cohort(PERCENT, true);
    submit(&env, expiring, "restart", &target).await;
    wait_for_status(&env, expiring, "PENDING").await;
    env.settle_all().await;
    stop.cancel();
    first_intake.await.unwrap().unwrap();

    // The rest with an hour to decide.
    env.spawn_intake_with_ttl(PERCENT, Duration::from_secs(3600))
        .await;
    let auto_approved = [id_in_cohort(PERCENT, true), id_in_cohort(PERCENT, true)];
    let auto_rejected = id_in_cohort(PERCENT, true);
    let overridden = id_in_cohort(PERCENT, true);
    let approved_validated = id_in_cohort(PERCENT, true);
    let approved_unvalidated = id_in_cohort(PERCENT, false);
    let rejected = id_in_cohort(PERCENT, true);
    let batch = [
        (auto_approved[0], "inspect", "AUTO_APPROVED"),
        (auto_approved[1], "inspect", "AUTO_APPROVED"),
        (auto_rejected, "careless", "AUTO_REJECTED"),
        (overridden, "careless", "AUTO_REJECTED"),
        (approved_validated, "restart", "PENDING"),
        (approved_unvalidated, "inspect", "PENDING"),
        (rejected, "restart", "PENDING"),
    ];
    for (request_id, kind, _) in batch {
        submit(&env, request_id, kind, &target).await;
    }
    for (request_id, _, decision) in batch {
        wait_for_status(&env, request_id, decision).await;
    }
    for request_id in auto_approved {
        wait_for_status(&env, request_id, "SUCCEEDED").await;
    }
    env.settle_all().await;
    env.wait_for_count("SELECT count(*) FROM approval_requests", None, 8)
        .await;
    env.wait_for_count(
        "SELECT count(*) FROM approval_requests WHERE execution_status = 'SUCCEEDED'",
        None,
        2,
    )
    .await;
    let unvalidated: (Option<bool>, Option<String>) = sqlx::query_as(
        "SELECT validation_applied, validation_decision FROM approval_requests WHERE request_id = $1",
    )
    .bind(approved_unvalidated)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(unvalidated, (Some(false), None), "outside the cohort");

    // Before any human decides (the expired one is past its deadline, but nobody has
    // expired it yet): of 8, 2 auto-approved, 2 auto-rejected, 4 waiting for a human. Both
    // families agree.
    let seen = run_queries(&env, &queries).await;
    assert_rates(
        &seen,
        &[
            ("Auto-reject rate, as the seed writes it", percent(2, 8)),
            ("Auto-approve rate, as the seed writes it", percent(2, 8)),
            ("Manual review rate, as the seed writes it", percent(4, 8)),
            ("Auto-reject rate, by the first decision", percent(2, 8)),
            ("Manual review rate, by the first decision", percent(4, 8)),
            ("False positive rate, by the first decision", percent(0, 2)),
        ],
    );
    assert_eq!(
        seen.scores["Auto-rejected scores, as the seed writes it"],
        [(true, None), (true, None)]
    );
    assert_eq!(
        seen.scores["Auto-rejected scores, by the first decision"],
        [(true, Some(false)), (true, Some(false))]
    );

    // The humans decide: an override of an auto-rejection, an approval inside the cohort
    // and one outside it, a rejection; the watcher expires the one nobody decided.
    let id = |request_id: Uuid| request_id.to_string();
    decide(
        &env,
        &[
            "approve",
            &id(overridden),
            "--note",
            "a false positive: the scratch project is a throwaway sandbox",
        ],
    )
    .await;
    decide(&env, &["approve", &id(approved_validated)]).await;
    decide(&env, &["approve", &id(approved_unvalidated)]).await;
    decide(
        &env,
        &[
            "reject",
            &id(rejected),
            "--reason",
            "not during the release freeze",
        ],
    )
    .await;
    env.spawn_watcher(None, Default::default()).await;
    wait_for_status(&env, expiring, "EXPIRED").await;
    for request_id in [approved_validated, approved_unvalidated] {
        wait_for_status(&env, request_id, "SUCCEEDED").await;
    }
    env.settle_all().await;
    env.wait_for_count(
        "SELECT count(*) FROM approval_requests WHERE status IN ('APPROVED', 'REJECTED', 'EXPIRED')",
        None,
        5,
    )
    .await;
    let statuses: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT request_id, status FROM approval_requests")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    let statuses: HashMap<Uuid, String> = statuses.into_iter().collect();
    for (request_id, status) in [
        (expiring, "EXPIRED"),
        (overridden, "APPROVED"),
        (approved_validated, "APPROVED"),
        (approved_unvalidated, "APPROVED"),
        (rejected, "REJECTED"),
        (auto_rejected, "AUTO_REJECTED"),
        (auto_approved[0], "AUTO_APPROVED"),
        (auto_approved[1], "AUTO_APPROVED"),
    ] {
        assert_eq!(statuses[&request_id], status, "{request_id}");
    }

    // After: the seed's queries read the decision now. The override left the auto-reject
    // rate (1 of 8, not 2), nothing waits any more (0 %, though 4 went to a human), and the
    // scores query lost the false positive it is meant to find. The first-decision queries
    // still give the seed's meaning: 2 auto-rejected, 4 to a human, 1 of 2 overridden.
    let seen = run_queries(&env, &queries).await;
    assert_rates(
        &seen,
        &[
            ("Auto-reject rate, as the seed writes it", percent(1, 8)),
            ("Auto-approve rate, as the seed writes it", percent(2, 8)),
            ("Manual review rate, as the seed writes it", percent(0, 8)),
            ("Auto-reject rate, by the first decision", percent(2, 8)),
            ("Manual review rate, by the first decision", percent(4, 8)),
            ("False positive rate, by the first decision", percent(1, 2)),
        ],
    );
    assert_eq!(
        seen.scores["Auto-rejected scores, as the seed writes it"],
        [(true, None)]
    );
    let mut first = seen.scores["Auto-rejected scores, by the first decision"].clone();
    first.sort();
    assert_eq!(first, [(true, Some(false)), (true, Some(true))]);
    docker::remove(&target).await;
    env.stop().await;
}
