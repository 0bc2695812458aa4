//! The dashboards proven: Debian's Prometheus scrapes the real workers of a pipeline run
//! (auto-approved, human-approved, human-rejected, overridden and refused by the gateway,
//! invalid, executed on the real Docker Engine, read on the API), with the recording and alert rules loaded, and every panel query of every
//! dashboard in `grafana/dashboards/` must return data. Prints each panel with what it got.
//! Before that, while the phase and the window hold fewer than 30 validated requests, the rate
//! panels must return nothing (blank, not 33 % of 3), and the rollout dashboard's annotation
//! query must mark a rollout change.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::compose::wingman;
use crate::docker;
use crate::fake_telegram::FakeTelegram;
use crate::helpers::{APPROVER_CHAT, READ_KEY, TestEnv, text, wait_for_status, well_explained};
use crate::observability::{Prometheus, WorkerProcess, free_port, poll, repo_path, spawn_workers};

/// The rollout dashboard's panel of the current phase's rates, blank below the minimum.
const PHASE_RATES: &str = "Rates of the current phase";
/// One of the rollout dashboard's rate panels over the window, blank below the minimum.
const WINDOW_RATE: &str = "Auto-approve rate ($window)";

/// Grafana's variables, replaced the way a Grafana over this short run would resolve them.
const VARIABLES: [(&str, &str); 4] = [
    ("$__rate_interval", "5m"),
    ("$__interval", "1h"),
    ("$window", "24h"),
    ("$stage", ".*"),
];

/// What one round adds, at least, to series the dashboards read: the metric, what follows its
/// name in the selector (labels, or a histogram's `_count`), and by how much.
const ROUND_SERIES: [(&str, &str, f64); 7] = [
    (wingman::metrics::EXECUTIONS, "{result=\"succeeded\"}", 2.0),
    (wingman::metrics::APPROVAL_DECISIONS, "", 3.0),
    (wingman::metrics::TOKEN_REJECTIONS, "", 1.0),
    (wingman::metrics::REQUESTS_INVALID, "", 1.0),
    (wingman::metrics::API_REQUESTS, "", 1.0),
    (wingman::metrics::APPROVAL_LATENCY, "_count", 3.0),
    (wingman::metrics::TELEGRAM_SENDS, "{kind=\"prompt\"}", 3.0),
];

/// A prd request removing `container`: a human decides (the deployment profile's bar).
fn prd_removal(request_id: Uuid, container: &str) -> Value {
    json!({
        "request_id": request_id, "requester": "agent-7", "environment": "prd",
        "command": format!("docker rm -f {container}"),
        "title": "Remove the retired reporting container",
        "description": "The reporting service was retired last week (ticket OPS-481); its container only \
            holds stale caches. Rollback: recreate from the compose file in git. Verify: docker ps shows it gone.",
    })
}

/// A careless request the validators auto-reject, in `test`, where this run's gateway may
/// not act: overridden by a human, its token is refused (`wingman_token_rejections_total`).
fn careless(request_id: Uuid) -> Value {
    json!({
        "request_id": request_id, "requester": "agent-7", "environment": "test",
        "command": "docker compose -p scratch down -v", "title": "cleanup", "description": "cleanup stuff",
    })
}

/// At `percent`, `count` well-explained instruction approvals in dev (no command: nothing
/// runs), recorded before it returns.
async fn bulk(env: &TestEnv, percent: u8, count: usize) {
    env.set_rollout(true, percent).await;
    // Intake follows the bucket by a watch: let it see the change before the requests.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut ids = Vec::new();
    for _ in 0..count {
        let request_id = Uuid::new_v4();
        let mut request = well_explained(request_id, "dev", "docker restart api", "api");
        request.as_object_mut().unwrap().remove("command");
        env.publish_raw(
            &format!("{}.requests.submitted.anonymous", env.prefix),
            request.to_string(),
        )
        .await;
        ids.push(request_id);
    }
    for request_id in ids {
        env.wait_for_count(
            "SELECT count(*) FROM approval_requests WHERE request_id = $1",
            Some(request_id),
            1,
        )
        .await;
    }
}

/// One round of the pipeline's kinds of request, and a reader on the HTTP API at `api`.
async fn one_round(env: &TestEnv, dev_container: &str, api: &str) {
    let submit = |request: Value| async move {
        env.publish_raw(
            &format!("{}.requests.submitted.anonymous", env.prefix),
            request.to_string(),
        )
        .await;
    };
    // Auto-approved and run on the real Engine.
    let automatic = Uuid::new_v4();
    submit(well_explained(
        automatic,
        "dev",
        &format!("docker restart {dev_container}"),
        dev_container,
    ))
    .await;
    // A human approves (on the console) and the gateway removes the container.
    let retired = docker::unique("wt-dash-retired");
    docker::start_container(&retired, None).await;
    let approved = Uuid::new_v4();
    submit(prd_removal(approved, &retired)).await;
    // A human rejects.
    let rejected = Uuid::new_v4();
    submit(prd_removal(rejected, &retired)).await;
    // Auto-rejected, then overridden by a human: a false positive.
    let overridden = Uuid::new_v4();
    submit(careless(overridden)).await;
    // Not a request at all.
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        "not json",
    )
    .await;

    wait_for_status(env, automatic, "SUCCEEDED").await;
    wait_for_status(env, approved, "PENDING").await;
    wait_for_status(env, rejected, "PENDING").await;
    wait_for_status(env, overridden, "AUTO_REJECTED").await;
    env.settle_all().await;
    let vote = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = wingman(env, "ops-bob", &args).await;
        assert!(
            output.status.success(),
            "wingman {args:?}: {}{}",
            text(&output.stdout),
            text(&output.stderr)
        );
    };
    vote(vec!["approve".into(), approved.to_string()]).await;
    wait_for_status(env, approved, "SUCCEEDED").await;
    vote(vec![
        "reject".into(),
        rejected.to_string(),
        "--reason".into(),
        "the container is still in use".into(),
    ])
    .await;
    vote(vec![
        "approve".into(),
        overridden.to_string(),
        "--note".into(),
        "scratch is a throw-away project: a false positive".into(),
    ])
    .await;
    wait_for_status(env, rejected, "REJECTED").await;
    wait_for_status(env, overridden, "APPROVED").await;
    wait_for_status(env, overridden, "REFUSED").await;
    env.settle_all().await;
    docker::remove(&retired).await;
    // A reader follows a request on the HTTP API.
    let read = reqwest::Client::new()
        .get(format!("http://{api}/requests/{approved}"))
        .header("x-api-key", READ_KEY)
        .send()
        .await
        .expect("GET /requests/{id} on the API worker");
    assert_eq!(read.status(), 200);
}

/// The rollout dashboard (`grafana/dashboards/rollout.json`).
fn rollout_dashboard() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(repo_path("grafana/dashboards/rollout.json")).unwrap(),
    )
    .unwrap()
}

/// `expr` with Grafana's variables replaced.
fn resolved(expr: &str) -> String {
    VARIABLES
        .iter()
        .fold(expr.to_string(), |expr, (variable, value)| {
            expr.replace(variable, value)
        })
}

/// The queries of the rollout dashboard's panel whose title starts with `title`.
fn panel_queries(title: &str) -> Vec<String> {
    let dashboard = rollout_dashboard();
    let mut panels: Vec<Value> = dashboard["panels"].as_array().cloned().unwrap_or_default();
    let nested: Vec<Value> = panels
        .iter()
        .flat_map(|panel| panel["panels"].as_array().cloned().unwrap_or_default())
        .collect();
    panels.extend(nested);
    let panel = panels
        .iter()
        .find(|panel| {
            panel["title"]
                .as_str()
                .is_some_and(|t| t.starts_with(title))
        })
        .unwrap_or_else(|| panic!("no panel {title:?} in the rollout dashboard"));
    panel["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|target| resolved(target["expr"].as_str().unwrap_or_default()))
        .collect()
}

/// The rollout dashboard's annotation queries (`annotations.list[].expr`): name and query.
fn annotation_queries() -> Vec<(String, String)> {
    rollout_dashboard()["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|annotation| {
            let expr = annotation["expr"].as_str()?;
            Some((
                annotation["name"].as_str().unwrap_or("?").to_string(),
                resolved(expr),
            ))
        })
        .collect()
}

/// The value of a query's first series.
fn first_value(result: &[Value]) -> Option<f64> {
    result.first()?["value"][1].as_str()?.parse().ok()
}

/// While the current phase (50 %) and the window hold fewer than 30 validated requests, the
/// phase's rate panel and a window rate panel return no series, although the counts and rates
/// they are gated on are in Prometheus. Returns what each returned, for the report.
async fn rates_are_blank_below_the_minimum(prometheus: &Prometheus) -> Vec<String> {
    let window_query = format!(
        "sum(increase({}{{applied=\"true\"}}[24h]))",
        wingman::metrics::VALIDATION_OUTCOMES
    );
    let (judged, window) = poll(
        "the watcher to judge the 50 % phase and Prometheus to scrape it and the cohort's counts",
        90,
        || async {
            let percent =
                first_value(&prometheus.query("max(wingman_rollout_phase_percent)").await)?;
            let judged = first_value(
                &prometheus
                    .query("max(wingman_rollout_phase_samples{basis=\"judged\"})")
                    .await,
            )?;
            let rates = prometheus
                .query("max by (rate) (wingman_rollout_phase_rate_percent)")
                .await;
            let window = first_value(&prometheus.query(&window_query).await)?;
            (percent == 50.0 && judged > 0.0 && window > 0.0 && rates.len() == 4)
                .then_some((judged, window))
        },
    )
    .await;
    assert!(
        judged < 30.0 && window < 30.0,
        "the check needs fewer than 30 validated requests: {judged} in the phase, {window} in the window"
    );
    // What the panels would read without their minimum: rates of a handful of requests.
    let ungated = [
        (
            PHASE_RATES,
            "max by (rate) (wingman_rollout_phase_rate_percent)".to_string(),
        ),
        (
            WINDOW_RATE,
            format!(
                "sum(increase({0}{{applied=\"true\",decision=\"AUTO_APPROVED\"}}[24h])) / sum(increase({0}{{applied=\"true\"}}[24h]))",
                wingman::metrics::VALIDATION_OUTCOMES
            ),
        ),
    ];
    let mut seen = Vec::new();
    for (title, ungated) in ungated {
        let (has_number, would_read) = describe(&prometheus.query(&ungated).await);
        assert!(has_number, "{title}: nothing to blank: {ungated}");
        for expr in panel_queries(title) {
            let result = prometheus.query(&expr).await;
            assert!(
                result.is_empty(),
                "{title} shows rates of {judged} judged (phase) / {window} validated (window) requests: {}\n{expr}",
                describe(&result).1
            );
            seen.push(format!(
                "Wingman rollout / {title} at {judged} judged in the phase, {window} validated in the window: no series (blank; without the minimum it would read {would_read})"
            ));
        }
    }
    seen
}

/// What one panel query returned: its series, with values, or why nothing.
fn describe(result: &[Value]) -> (bool, String) {
    let values: Vec<String> = result
        .iter()
        .map(|series| {
            let labels = series["metric"]
                .as_object()
                .map(|labels| {
                    labels
                        .iter()
                        .filter(|(name, _)| *name != "instance")
                        .map(|(name, value)| format!("{name}={}", value.as_str().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let value = series["value"][1].as_str().unwrap_or("?").to_string();
            format!("{{{labels}}} {value}")
        })
        .collect();
    let has_number = result.iter().any(|series| {
        series["value"][1]
            .as_str()
            .and_then(|value| value.parse::<f64>().ok())
            .is_some_and(|value| !value.is_nan())
    });
    let summary = if values.is_empty() {
        "no series".to_string()
    } else {
        format!("{} series: {}", values.len(), values.join("; "))
    };
    (has_number, summary)
}

#[tokio::test]
async fn every_dashboard_panel_returns_data_from_a_real_prometheus_scraping_a_real_pipeline() {
    let env = TestEnv::start().await;
    env.register_approver("ops-bob", Default::default()).await;
    let telegram = FakeTelegram::start().await;
    let dev_container = docker::unique("wt-dash-api");
    docker::start_container(&dev_container, None).await;
    let chat = APPROVER_CHAT.to_string();
    let api_url = telegram.api_url();
    let api = format!("127.0.0.1:{}", free_port());
    let api_port = api.rsplit(':').next().unwrap().to_string();
    let every_worker: Vec<&str> = wingman::worker::WORKERS
        .iter()
        .map(|worker| worker.name())
        .collect();
    let workers: Vec<WorkerProcess> = spawn_workers(
        &env,
        &every_worker,
        &[
            ("API_PORT", &api_port),
            ("ALLOWED_ENVIRONMENTS", "dev,prd"),
            ("VALIDATION_ENABLED", "1"),
            ("VALIDATION_ROLLOUT_PERCENT", "100"),
            ("TELEGRAM_BOT_TOKEN", telegram.token()),
            ("TELEGRAM_CHAT_ID", &chat),
            ("TELEGRAM_API_URL", &api_url),
            ("WINGMAN_WATCH_INTERVAL", "1"),
            ("WINGMAN_GUARD_EVERY", "2s"),
        ],
    )
    .await;
    let rules = std::fs::read_to_string(repo_path("grafana/alerts/wingman.rules.yml")).unwrap();
    let prometheus = Prometheus::start(&workers, &rules, None).await;
    prometheus.wait_until_all_up(&workers).await;

    // The rollout panels blank their rates below the seed's 30 samples: a shadow phase at 50 %
    // (requests outside the cohort are only scored), then 100 % with enough instruction
    // approvals that the current phase and the window both have their 30 validated requests.
    // First one validated request at the start's 100 %, scraped before the 50 % phase, so the
    // window's `increase()` counts the 50 % phase's validated requests (a series' first scrape
    // hides the increments before it).
    bulk(&env, 100, 1).await;
    let validated = format!(
        "sum({}{{applied=\"true\",decision=\"AUTO_APPROVED\"}})",
        wingman::metrics::VALIDATION_OUTCOMES
    );
    poll(
        &format!("Prometheus to scrape the cohort's series: {validated}"),
        90,
        || async { (!prometheus.query(&validated).await.is_empty()).then_some(()) },
    )
    .await;
    for attempt in 1..=5 {
        bulk(&env, 50, 12).await;
        let shadowed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM approval_requests WHERE shadow_decision IS NOT NULL",
        )
        .fetch_one(&env.pool)
        .await
        .unwrap();
        if shadowed > 0 {
            break;
        }
        // Intake had not seen 50 % yet (its watch lags on a loaded machine): again.
        assert!(attempt < 5, "no request was shadow-scored at 50 %");
    }
    let mut early = rates_are_blank_below_the_minimum(&prometheus).await;
    // The annotation compares the flags' revision across 15 s steps: the change must come after
    // Prometheus holds a step of the revision before it (this run is seconds old here).
    poll(
        "Prometheus to hold two 15 s steps of the rollout revision",
        60,
        || async {
            let steps = prometheus
                .query("max(wingman_validation_rollout_revision)[2m:15s]")
                .await;
            (steps.first()?["values"].as_array()?.len() >= 2).then_some(())
        },
    )
    .await;
    // Back to 100 %: a rollout change (50 → 100 %), which the dashboard's annotation marks.
    bulk(&env, 100, 1).await;
    for (name, expr) in annotation_queries() {
        let result = poll(
            &format!("the annotation {name:?} to mark the change to 100 %: {expr}"),
            90,
            || async {
                let result = prometheus.query(&expr).await;
                describe(&result).0.then_some(result)
            },
        )
        .await;
        early.push(format!(
            "Wingman rollout / annotation {name} (after 50 → 100 %): {}",
            describe(&result).1
        ));
    }
    assert!(
        early.iter().any(|line| line.contains("annotation")),
        "the rollout dashboard has no annotation query"
    );
    bulk(&env, 100, 32).await;
    let window = format!(
        "sum(increase({}{{applied=\"true\"}}[24h]))",
        wingman::metrics::VALIDATION_OUTCOMES
    );
    poll(
        &format!("Prometheus to count the bulk: {window} >= 30"),
        90,
        || async {
            let result = prometheus.query(&window).await;
            let seen = result.first()?["value"][1].as_str()?.parse::<f64>().ok()?;
            (seen >= 30.0).then_some(())
        },
    )
    .await;

    // Two rounds with a scrape between them, so counters grow while Prometheus watches them
    // (a rate needs two samples of a series that exists).
    for round in 1..=2 {
        one_round(&env, &dev_container, &api).await;
        let wanted = f64::from(round);
        // Every kind of event of this round is in Prometheus before the next round starts
        // (scrapes can lag on a loaded machine), so each series exists before it grows.
        for (metric, selector, per_round) in ROUND_SERIES {
            let query = format!("sum({metric}{selector})");
            poll(
                &format!(
                    "Prometheus to scrape round {round}: {query} >= {}",
                    per_round * wanted
                ),
                90,
                || async {
                    let result = prometheus.query(&query).await;
                    let seen = result.first()?["value"][1].as_str()?.parse::<f64>().ok()?;
                    (seen >= per_round * wanted).then_some(())
                },
            )
            .await;
        }
    }
    // The recording rules evaluated over the run too.
    poll(
        "the recording rules to count the validated requests",
        60,
        || async {
            (!prometheus
                .query("wingman:validation_validated:24h > 0")
                .await
                .is_empty())
            .then_some(())
        },
    )
    .await;

    let mut report = Vec::new();
    let mut empty = Vec::new();
    let mut dashboards: Vec<_> = std::fs::read_dir(repo_path("grafana/dashboards"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    dashboards.sort();
    let mut panels_checked = 0;
    for path in &dashboards {
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        let title = dashboard["title"].as_str().unwrap_or("?").to_string();
        let mut panels: Vec<Value> = dashboard["panels"].as_array().cloned().unwrap_or_default();
        let nested: Vec<Value> = panels
            .iter()
            .flat_map(|panel| panel["panels"].as_array().cloned().unwrap_or_default())
            .collect();
        panels.extend(nested);
        for panel in panels.iter().filter(|panel| panel["type"] != "row") {
            let panel_title = panel["title"].as_str().unwrap_or("?");
            let mut panel_has_data = false;
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = resolved(target["expr"].as_str().unwrap_or_default());
                assert!(
                    !expr.contains('$'),
                    "{title} / {panel_title}: unknown variable in {expr}"
                );
                let (has_data, summary) = describe(&prometheus.query(&expr).await);
                panel_has_data |= has_data;
                report.push(format!(
                    "{title} / {panel_title} [{}]: {summary}",
                    target["refId"].as_str().unwrap_or("?")
                ));
            }
            panels_checked += 1;
            if !panel_has_data {
                empty.push(format!("{title} / {panel_title}"));
            }
        }
    }
    println!("{}", early.join("\n"));
    println!("{}", report.join("\n"));
    assert!(panels_checked > 30, "only {panels_checked} panels found");
    assert!(
        empty.is_empty(),
        "panels that returned no data:\n  {}\n\nevery query:\n{}",
        empty.join("\n  "),
        report.join("\n")
    );
    drop(workers);
    docker::remove(&dev_container).await;
    env.stop().await;
}
