//! Alerts reach people: a real Prometheus evaluates Wingman's rules against the real workers
//! of a pipeline, the real Alertmanager (configured by the shipped `render-config`) sends to
//! the approvers' chat on the fake Bot API and to a webhook. And the human-backlog gauges the
//! `ApprovalsAboutToExpire` alert reads follow what waits in Postgres.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::Value;
use uuid::Uuid;
use wingman::metrics;

use crate::fake_telegram::FakeTelegram;
use crate::helpers::{APPROVER_CHAT, TestEnv, request_json, wait_for_status};
use crate::observability::{Alertmanager, Prometheus, poll, repo_path, spawn_workers};

/// The shipped rules with every `for:` cut to 1 s, so a test sees an alert fire in seconds;
/// what each rule means (its expression, labels and annotations) is unchanged.
pub fn rules_with_short_for() -> String {
    let shipped = std::fs::read_to_string(repo_path("grafana/alerts/wingman.rules.yml")).unwrap();
    shipped
        .lines()
        .map(|line| match line.trim_start().strip_prefix("for: ") {
            Some(_) => format!("{}for: 1s", &line[..line.len() - line.trim_start().len()]),
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A webhook receiver on loopback: every JSON body POSTed to it, in order.
struct Webhook {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
    _server: tokio::task::JoinHandle<()>,
}

impl Webhook {
    async fn start() -> Webhook {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route(
                "/hook",
                post(
                    |State(bodies): State<Arc<Mutex<Vec<Value>>>>,
                     axum::Json(body): axum::Json<Value>| async move {
                        bodies.lock().unwrap().push(body);
                    },
                ),
            )
            .with_state(bodies.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Webhook {
            url,
            bodies,
            _server: server,
        }
    }
}

#[tokio::test]
async fn a_worker_that_goes_down_is_announced_in_the_approvers_telegram_chat_with_its_runbook() {
    let env = TestEnv::start().await;
    env.set_rollout(true, 100).await;
    let telegram = FakeTelegram::start().await;
    let webhook = Webhook::start().await;
    let mut workers = spawn_workers(&env, &["intake", "recorder", "watcher"], &[]).await;
    // A real pipeline run: a request goes through intake and is recorded.
    let request_id = Uuid::new_v4();
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        request_json(request_id, None).to_string(),
    )
    .await;
    env.wait_for_count(
        "SELECT count(*) FROM approval_requests WHERE request_id = $1",
        Some(request_id),
        1,
    )
    .await;

    let token_file = env.keys_dir.path().join("telegram_bot_token");
    std::fs::write(&token_file, format!("{}\n", telegram.token())).unwrap();
    let chat = APPROVER_CHAT.to_string();
    let api_url = telegram.api_url();
    let alertmanager = Alertmanager::start(&[
        ("TELEGRAM_BOT_TOKEN_FILE", token_file.to_str().unwrap()),
        ("TELEGRAM_CHAT_ID", &chat),
        ("TELEGRAM_API_URL", &api_url),
        ("WINGMAN_ALERT_WEBHOOK_URL", &webhook.url),
        (
            "WINGMAN_RUNBOOK_BASE_URL",
            "https://git.example/wingman/blob/main/",
        ),
        ("WINGMAN_ALERT_GROUP_WAIT", "1s"),
        ("WINGMAN_ALERT_GROUP_INTERVAL", "1s"),
    ])
    .await;
    let prometheus = Prometheus::start(
        &workers,
        &rules_with_short_for(),
        Some(&alertmanager.address),
    )
    .await;
    prometheus.wait_until_all_up(&workers).await;
    // Evaluated with every worker up: WorkerDown is not firing, nobody was told of one.
    // (WorkerMissing does fire, for the workers this test does not start.)
    poll("the rules to be evaluated", 30, || async {
        let rules = reqwest::get(format!("{}/api/v1/rules", prometheus.url))
            .await
            .ok()?
            .json::<Value>()
            .await
            .ok()?;
        let evaluated = rules["data"]["groups"]
            .as_array()?
            .iter()
            .find(|group| group["name"] == "wingman-operations")?["lastEvaluation"]
            .as_str()?
            .to_string();
        (!evaluated.starts_with("0001")).then_some(())
    })
    .await;
    assert!(
        prometheus
            .query("ALERTS{alertname=\"WorkerDown\"}")
            .await
            .is_empty(),
        "WorkerDown fired while every worker was up"
    );
    assert!(
        !telegram
            .sent()
            .iter()
            .any(|sent| sent.text.contains("WorkerDown")),
        "{:#?}",
        telegram.sent()
    );

    let watcher = workers
        .iter_mut()
        .find(|worker| worker.job == "watcher")
        .unwrap();
    watcher.child.kill().await.unwrap();

    let sent = telegram
        .wait_for_sent(
            |sent| sent.chat_id == APPROVER_CHAT && sent.text.contains("WorkerDown"),
            Duration::from_secs(90),
        )
        .await;
    println!("the approvers' chat got:\n{}", sent.text);
    assert_eq!(sent.parse_mode.as_deref(), Some("HTML"));
    assert!(
        sent.text.contains("Worker watcher is down (127.0.0.1:"),
        "the summary names the worker: {}",
        sent.text
    );
    assert!(
        sent.text
            .contains("Runbook: https://git.example/wingman/blob/main/README.md#workerdown"),
        "the runbook link: {}",
        sent.text
    );
    assert!(
        sent.text.contains("(critical)"),
        "the severity: {}",
        sent.text
    );
    for alive in ["intake", "recorder"] {
        assert!(
            !sent.text.contains(&format!("Worker {alive} is down")),
            "{alive} is up: {}",
            sent.text
        );
    }
    // The same alert reached the webhook, as Alertmanager's JSON.
    let alert = poll("WorkerDown at the webhook", 60, || async {
        webhook
            .bodies
            .lock()
            .unwrap()
            .iter()
            .flat_map(|body| body["alerts"].as_array().cloned().unwrap_or_default())
            .find(|alert| alert["labels"]["alertname"] == "WorkerDown")
    })
    .await;
    assert_eq!(alert["labels"]["job"], "watcher", "{alert}");
    assert_eq!(alert["status"], "firing", "{alert}");
    assert_eq!(
        alert["annotations"]["runbook_url"], "README.md#workerdown",
        "{alert}"
    );
    drop(workers);
    env.stop().await;
}

/// One gauge's value for `environment` in a scrape, if the scrape has it.
fn gauge(scrape: &str, name: &str, environment: &str) -> Option<f64> {
    let prefix = format!("{name}{{environment=\"{environment}\"}} ");
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
}

#[tokio::test]
async fn the_human_backlog_gauges_follow_what_waits_in_postgres() {
    let mut env = TestEnv::start().await;
    // Validation outside the cohort for every request: each goes to a human, PENDING, with
    // its deadline 20 minutes away (outside the 15-minute warning).
    env.spawn_intake_with_ttl(0, Duration::from_secs(20 * 60))
        .await;
    env.spawn_recorder().await;
    let workers = spawn_workers(&env, &["watcher"], &[("WINGMAN_WATCH_INTERVAL", "1")]).await;
    let metrics_url = format!("http://127.0.0.1:{}/metrics", workers[0].port);
    let scrape_until = |what: &'static str, wanted: (f64, f64)| {
        let metrics_url = metrics_url.clone();
        async move {
            poll(what, 60, || async {
                let scrape = reqwest::get(&metrics_url).await.ok()?.text().await.ok()?;
                let pending = gauge(&scrape, metrics::APPROVALS_PENDING, "test")?;
                let expiring = gauge(&scrape, metrics::APPROVALS_EXPIRING_SOON, "test")?;
                let oldest = gauge(&scrape, metrics::APPROVALS_OLDEST_PENDING_AGE, "test")?;
                ((pending, expiring) == wanted).then_some((scrape, oldest))
            })
            .await
        }
    };
    let (scrape, oldest) = scrape_until("an empty backlog", (0.0, 0.0)).await;
    assert_eq!(oldest, 0.0);
    for environment in ["dev", "prd"] {
        assert_eq!(
            gauge(&scrape, metrics::APPROVALS_PENDING, environment),
            Some(0.0),
            "every environment is exported: {scrape}"
        );
    }

    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    for request_id in [first, second] {
        env.publish_raw(
            &format!("{}.requests.submitted.anonymous", env.prefix),
            request_json(request_id, None).to_string(),
        )
        .await;
    }
    env.wait_for_count(
        "SELECT count(*) FROM approval_requests WHERE status = 'PENDING'",
        None,
        2,
    )
    .await;
    let (_, oldest) = scrape_until("two PENDING requests", (2.0, 0.0)).await;
    assert!(oldest > 0.0, "the oldest has waited: {oldest}");

    // Time passes for the first: its deadline is now 5 minutes away.
    sqlx::query(
        "UPDATE approval_requests SET expires_at = now() + interval '5 minutes' WHERE request_id = $1",
    )
    .bind(first)
    .execute(&env.pool)
    .await
    .unwrap();
    scrape_until("one request about to expire", (2.0, 1.0)).await;

    // Its deadline passes: the watcher expires it (default deny), and the backlog follows.
    sqlx::query(
        "UPDATE approval_requests SET expires_at = now() - interval '1 second' WHERE request_id = $1",
    )
    .bind(first)
    .execute(&env.pool)
    .await
    .unwrap();
    wait_for_status(&env, first, "EXPIRED").await;
    scrape_until("the expired request gone from the backlog", (1.0, 0.0)).await;
    drop(workers);
    env.stop().await;
}

#[tokio::test]
async fn a_prompt_telegram_refuses_is_counted_and_fires_telegram_send_failures_at_the_webhook() {
    let env = TestEnv::start().await;
    let telegram = FakeTelegram::start().await;
    let webhook = Webhook::start().await;
    let chat = APPROVER_CHAT.to_string();
    let api_url = telegram.api_url();
    // The bot was removed from the approvers' chat: Telegram refuses the first prompt.
    telegram.fail_next(
        "sendMessage",
        403,
        "Forbidden: bot was kicked from the supergroup chat",
    );
    let workers = spawn_workers(
        &env,
        &["intake", "approvals", "recorder"],
        &[
            ("VALIDATION_ENABLED", "0"),
            ("TELEGRAM_BOT_TOKEN", telegram.token()),
            ("TELEGRAM_CHAT_ID", &chat),
            ("TELEGRAM_API_URL", &api_url),
        ],
    )
    .await;
    let alertmanager = Alertmanager::start(&[
        ("WINGMAN_ALERT_WEBHOOK_URL", &webhook.url),
        ("WINGMAN_ALERT_GROUP_WAIT", "1s"),
        ("WINGMAN_ALERT_GROUP_INTERVAL", "1s"),
    ])
    .await;
    let prometheus = Prometheus::start(
        &workers,
        &rules_with_short_for(),
        Some(&alertmanager.address),
    )
    .await;
    prometheus.wait_until_all_up(&workers).await;

    let request_id = Uuid::new_v4();
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        request_json(request_id, None).to_string(),
    )
    .await;
    wait_for_status(&env, request_id, "PENDING").await;

    let approvals = workers
        .iter()
        .find(|worker| worker.job == "approvals")
        .unwrap();
    let metrics_url = format!("http://127.0.0.1:{}/metrics", approvals.port);
    let failed_prompt = format!(
        "{}{{kind=\"prompt\",result=\"failed\"}} 1",
        metrics::TELEGRAM_SENDS
    );
    poll(&failed_prompt, 60, || async {
        let scrape = reqwest::get(&metrics_url).await.ok()?.text().await.ok()?;
        scrape
            .lines()
            .any(|line| line == failed_prompt)
            .then_some(())
    })
    .await;
    let alert = poll("TelegramSendFailures at the webhook", 90, || async {
        webhook
            .bodies
            .lock()
            .unwrap()
            .iter()
            .flat_map(|body| body["alerts"].as_array().cloned().unwrap_or_default())
            .find(|alert| alert["labels"]["alertname"] == "TelegramSendFailures")
    })
    .await;
    assert_eq!(alert["labels"]["kind"], "prompt", "{alert}");
    assert_eq!(alert["labels"]["severity"], "critical", "{alert}");
    assert_eq!(
        alert["annotations"]["summary"],
        "Telegram refuses the bot's prompt messages: approvers may see nothing"
    );
    assert_eq!(
        alert["annotations"]["runbook_url"],
        "README.md#telegramsendfailures"
    );
    drop(workers);
    env.stop().await;
}

/// The renderer writes a secret into YAML: a value that could break out of its quotes (and
/// add a receiver, say) is refused, naming the setting, and nothing is written.
#[test]
fn render_config_refuses_a_malformed_setting_by_name_and_writes_nothing() {
    let cases: [(&[(&str, &str)], &str); 5] = [
        (
            &[
                ("TELEGRAM_BOT_TOKEN", "123:abc'\n  evil: x"),
                ("TELEGRAM_CHAT_ID", "-1"),
            ],
            "TELEGRAM_BOT_TOKEN",
        ),
        (
            &[
                ("TELEGRAM_BOT_TOKEN", "123:abc"),
                ("TELEGRAM_CHAT_ID", "-1,2; rm -rf /"),
            ],
            "TELEGRAM_CHAT_ID",
        ),
        (&[("TELEGRAM_BOT_TOKEN", "123:abc")], "TELEGRAM_CHAT_ID"),
        (
            &[(
                "WINGMAN_ALERT_WEBHOOK_URL",
                "http://hooks.example/x'}\n- url: http://evil",
            )],
            "WINGMAN_ALERT_WEBHOOK_URL",
        ),
        (
            &[("WINGMAN_ALERT_GROUP_WAIT", "soon")],
            "WINGMAN_ALERT_GROUP_WAIT",
        ),
    ];
    for (settings, named) in cases {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        let output = std::process::Command::new("sh")
            .arg(repo_path("grafana/alertmanager/render-config"))
            .arg(&config)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(settings.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{settings:?}: {stderr}");
        assert!(
            stderr.starts_with(&format!("render-config: {named}")),
            "{settings:?}: {stderr}"
        );
        assert!(!config.exists(), "{settings:?}: a config was written");
    }
}
