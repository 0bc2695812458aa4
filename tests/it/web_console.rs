//! The web console in a real browser: headless chromium driven through WebDriver
//! (chromedriver), against the real pipeline (NATS, Postgres, the stages, and for the
//! execution the real Docker Engine). `scripts/lib.sh ensure_chromium` installs both.
//!
//! With `WINGMAN_SCREENSHOTS=<dir>`, the tests also save full-page screenshots of the pending
//! list, a request's page and the overview at desktop (1280) and phone (390) widths; every run
//! checks that those pages do not scroll sideways on a phone.

use std::net::SocketAddr;
use std::time::Duration;

use fantoccini::Locator;
use serde_json::{Value, json};
use uuid::Uuid;
use wingman::access::{ApiKeys, Role};
use wingman::cli::approvers::Credentials;
use wingman::request::Environment;

use crate::browser::{Browser, PHONE_WIDTH};
use crate::docker;
use crate::fake_telegram::FakeTelegram;
use crate::helpers::TestEnv;

/// The keys of these tests: three approvers (alice, bob; carol also submits), an operator's
/// read key, and a decide key the roster does not know.
pub const ALICE: &str = "wmk_web_alice";
pub const BOB: &str = "wmk_web_bob";
pub const CAROL: &str = "wmk_web_carol";
pub const READER: &str = "wmk_web_reader";
pub const STRANGER: &str = "wmk_web_stranger";

/// The real pipeline with the API (and its console) on a loopback port.
pub struct Console {
    pub env: TestEnv,
    pub base: String,
}

impl Console {
    /// Intake (validation off: every request waits for a human), recorder, approvals (prd
    /// needs `prd_approvals`), authority, the API; with `engine`, the gateway on the real
    /// Docker Engine.
    pub async fn start(prd_approvals: usize, engine: bool) -> Self {
        Self::start_with(prd_approvals, engine, None).await
    }

    /// Like [`Console::start`], with the approvals stage prompting on the fake Telegram and
    /// linking its prompts to this console.
    pub async fn start_with(
        prd_approvals: usize,
        engine: bool,
        telegram: Option<&FakeTelegram>,
    ) -> Self {
        let mut env = TestEnv::start().await;
        env.api_keys = ApiKeys::from_keys(&[
            ("alice", ALICE, &[Role::Decide]),
            ("bob", BOB, &[Role::Decide]),
            ("carol", CAROL, &[Role::Submit, Role::Decide]),
            ("reader", READER, &[Role::Read]),
            ("stranger", STRANGER, &[Role::Decide]),
        ]);
        for name in ["alice", "bob", "carol"] {
            env.register_approver(
                name,
                Credentials {
                    api_keys: vec![name.to_string()],
                    ..Default::default()
                },
            )
            .await;
        }
        let address: SocketAddr = env.spawn_api().await;
        env.console_url = Some(format!("http://{address}"));
        env.spawn_intake().await;
        env.spawn_recorder().await;
        env.spawn_approvals(telegram, &[], prd_approvals).await;
        env.spawn_authority().await;
        if engine {
            env.spawn_gateway(&[Environment::Dev, Environment::Test, Environment::Prd])
                .await;
        }
        Self {
            env,
            base: format!("http://{address}"),
        }
    }

    /// Submits a request through the API with `key`; returns its id once it waits for a human.
    pub async fn submit_as(
        &self,
        key: &str,
        environment: &str,
        command: &str,
        description: &str,
    ) -> String {
        self.submit(
            key,
            json!({
                "requester": "agent-web",
                "environment": environment,
                "command": command,
                "title": format!("Web console check: {}", command.chars().take(60).collect::<String>()),
                "description": description,
            }),
        )
        .await
    }

    /// Submits `body` through the API with `key`; returns its id once it waits for a human.
    pub async fn submit(&self, key: &str, body: Value) -> String {
        let (status, answer) = crate::api::call_with_key(
            "POST",
            &format!("{}/requests", self.base),
            Some(body),
            Some(key),
        )
        .await;
        assert_eq!(status, 202, "{answer}");
        let request_id = answer["request_id"].as_str().unwrap().to_string();
        self.env
            .wait_for_count(
                "SELECT count(*) FROM approval_requests WHERE request_id = $1 AND status = 'PENDING'",
                Some(Uuid::parse_str(&request_id).unwrap()),
                1,
            )
            .await;
        request_id
    }

    pub async fn stop(self) {
        self.env.stop().await;
    }
}

/// Posts the vote form of `request_id` as a forger would: with the given cookie and token.
async fn forged_post(
    base: &str,
    request_id: &str,
    cookie: Option<&str>,
    csrf: Option<&str>,
) -> (u16, String) {
    post_vote(base, request_id, cookie, csrf, "forged").await
}

/// Posts an approval of `request_id` with `reason`, the given cookie and token (following the
/// redirect to the request's page).
async fn post_vote(
    base: &str,
    request_id: &str,
    cookie: Option<&str>,
    csrf: Option<&str>,
    reason: &str,
) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut form = vec![("verdict", "approve"), ("reason", reason)];
    if let Some(csrf) = csrf {
        form.push(("csrf", csrf));
    }
    let mut request = client
        .post(format!("{base}/console/requests/{request_id}/decide"))
        .form(&form);
    if let Some(cookie) = cookie {
        request = request.header("cookie", format!("wingman_session={cookie}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn two_approvers_approve_a_prd_request_in_the_browser_and_its_timeline_reaches_succeeded_live()
 {
    let console = Console::start(2, true).await;
    let name = docker::unique("wt-web");
    docker::start_container(&name, None).await;
    let (_, started_before) = docker::state(&name).await.unwrap();
    let hostile = "<script>document.title='pwned'</script><img src=x id=\"injected\"> Restart to reload the config. Rollback: docker start it. Verify: docker inspect.";
    let request_id = console
        .submit_as(CAROL, "prd", &format!("docker restart {name}"), hostile)
        .await;
    let page = format!("{}/console/requests/{request_id}", console.base);

    let browser = Browser::start().await;
    browser.login(&console.base, ALICE).await;
    let pending = browser
        .wait_for_text("main", &format!("docker restart {name}"))
        .await;
    assert!(pending.contains("prd"), "{pending}");
    browser.assert_fits_a_phone("the pending list").await;
    browser.screenshot("pending", 1280).await;
    browser.screenshot("pending", PHONE_WIDTH).await;
    browser
        .client
        .find(Locator::Css(&format!(
            "a[href=\"/console/requests/{request_id}\"]"
        )))
        .await
        .expect("the pending list links to the request")
        .click()
        .await
        .unwrap();
    browser.wait_for_text("#decision-h", "Decision").await;

    // The description is untrusted text: shown as typed, never run or rendered as markup.
    let description = browser.text(".description").await;
    assert!(
        description.contains("<script>document.title='pwned'</script>"),
        "{description}"
    );
    assert!(
        !browser.exists("#injected").await,
        "the description's markup was rendered"
    );
    assert_ne!(browser.client.title().await.unwrap(), "pwned");
    let command = browser.text("pre.command").await;
    assert_eq!(command, format!("docker restart {name}"));
    let operation = browser.text("#operation").await;
    assert!(
        operation.contains("allowed by the prd policy"),
        "{operation}"
    );
    assert!(operation.contains("container_restart"), "{operation}");
    assert_eq!(
        browser.text("#approvals").await,
        "0 of 2 approvals: 2 different approvers must approve"
    );
    browser.assert_fits_a_phone("the request's page").await;
    browser.screenshot("request", 1280).await;
    browser.screenshot("request", PHONE_WIDTH).await;

    browser.vote("approve", "config reviewed").await;
    let flash = browser.wait_for_text(".flash", "Counted").await;
    assert!(flash.contains("another approver is needed"), "{flash}");
    // Alice's approval is counted: she may not approve again (she may still reject).
    assert_eq!(browser.text("#approvals").await, "1 of 2 approvals: alice");
    assert!(!browser.exists("button.approve").await);
    assert!(browser.exists("button.reject").await);
    browser.logout().await;

    // Bob sees that one approval is in, and whose.
    browser.login(&console.base, BOB).await;
    browser.goto(&page).await;
    assert_eq!(browser.text("#approvals").await, "1 of 2 approvals: alice");
    browser.vote("approve", "second pair of eyes").await;
    let flash = browser.wait_for_text(".flash", "Done").await;
    assert!(flash.contains("APPROVED by alice, bob"), "{flash}");
    // The page is not reloaded: the timeline follows the status stream until the end,
    // appending the new steps and leaving the ones shown alone (a screen reader announces
    // only what is new).
    browser.mark_first_step().await;
    let timeline = browser.wait_for_text("#timeline", "SUCCEEDED").await;
    assert!(timeline.contains("APPROVED"), "{timeline}");
    assert!(
        browser.first_step_kept().await,
        "the timeline was redrawn, not appended to"
    );
    browser.wait_until_timeline_settled().await;
    let (running, started_after) = docker::state(&name).await.unwrap();
    assert!(running);
    assert_ne!(
        started_before, started_after,
        "the container was really restarted"
    );

    // After a reload the audit trail has the whole story and its chain holds.
    console.env.settle_all().await;
    browser.goto(&page).await;
    let chain = browser.text("#chain").await;
    assert!(chain.contains("each hash matches its content"), "{chain}");
    let audit = browser.text("ol.audit").await;
    for kind in [
        "request_received",
        "approval_decided",
        "token_minted",
        "execution_finished",
    ] {
        assert!(
            audit.contains(kind),
            "{kind} missing from the audit trail: {audit}"
        );
    }
    docker::remove(&name).await;
    browser.close().await;
    console.stop().await;
}

#[tokio::test]
async fn an_instruction_is_approved_with_a_reason_on_two_lines_and_its_timeline_stops_at_the_decision()
 {
    let console = Console::start(1, false).await;
    let request_id = console
        .submit(
            CAROL,
            json!({
                "requester": "agent-web",
                "environment": "dev",
                "title": "Hand the on-call pager to Dana",
                "description": "An instruction, nothing to execute. Rollback: hand it back. Verify: the rota shows Dana.",
            }),
        )
        .await;
    let page = format!("{}/console/requests/{request_id}", console.base);
    let browser = Browser::start().await;
    browser.login(&console.base, ALICE).await;
    browser.goto(&page).await;
    browser.wait_for_text("#decision-h", "Decision").await;

    // While it waits, the page follows the timeline without redrawing steps that did not
    // change (the list is a live region: a screen reader would read it all out again).
    browser.count_timeline_polls().await;
    browser.mark_first_step().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while browser.timeline_polls().await < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the page does not follow the timeline"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        browser.first_step_kept().await,
        "an unchanged timeline was redrawn"
    );

    // A reason the rules refuse (a control character) is refused and audited, as the API's
    // are.
    let (cookie, csrf) = browser.session().await;
    let (status, body) = post_vote(
        &console.base,
        &request_id,
        Some(&cookie),
        Some(&csrf),
        "fine\u{7}",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("Your vote was not applied: reason: contains control characters"),
        "{body}"
    );
    let id = Uuid::parse_str(&request_id).unwrap();
    console
        .env
        .wait_for_count(
            "SELECT count(*) FROM audit_events WHERE request_id = $1 AND kind = 'message_rejected'
               AND data->>'source' = 'console' AND data->>'key_name' = 'alice'
               AND data->>'field' = 'reason'",
            Some(id),
            1,
        )
        .await;

    // A reason typed on two lines (the browser sends the line break as CRLF) is accepted.
    let reason = "Checked with Dana.\nThe rota is updated.";
    browser.goto(&page).await;
    browser.vote("approve", reason).await;
    let flash = browser.wait_for_text(".flash", "Done").await;
    assert!(flash.contains("APPROVED by alice"), "{flash}");
    // An instruction has nothing to execute: its decision ends the timeline.
    browser.wait_until_timeline_settled().await;
    let timeline = browser.text("#timeline").await;
    assert!(timeline.contains("The rota is updated."), "{timeline}");
    // Once recorded, the page shows the reason as typed, on two lines.
    console
        .env
        .wait_for_count(
            "SELECT count(*) FROM approval_requests WHERE request_id = $1 AND decided_by = 'alice'",
            Some(id),
            1,
        )
        .await;
    let note: Option<String> =
        sqlx::query_scalar("SELECT decision_note FROM approval_requests WHERE request_id = $1")
            .bind(id)
            .fetch_one(&console.env.pool)
            .await
            .unwrap();
    assert_eq!(note.as_deref(), Some(reason));
    browser.goto(&page).await;
    assert_eq!(browser.text(".decided .note").await, reason);
    assert!(browser.exists("#timeline[data-settled=\"1\"]").await);
    browser.close().await;
    console.stop().await;
}

#[tokio::test]
async fn the_pending_list_shows_the_oldest_requests_first_however_long_the_backlog() {
    let console = Console::start(1, false).await;
    // 502 requests waiting, `waiting-502` the oldest: more than the list shows (500).
    sqlx::query(
        "INSERT INTO approval_requests (request_id, requester, environment, title, description, status,
            created_at, updated_at)
         SELECT gen_random_uuid(), 'seed', 'dev', 'waiting-' || i, 'd', 'PENDING',
                now() - make_interval(mins => i), now() - make_interval(mins => i)
         FROM generate_series(1, 502) AS i",
    )
    .execute(&console.env.pool)
    .await
    .unwrap();
    let browser = Browser::start().await;
    browser.login(&console.base, READER).await;
    let count = browser.wait_for_text("#count", "waiting").await;
    assert_eq!(
        count,
        "500 of 502 waiting, oldest first: the newer ones appear as these are decided."
    );
    let mut titles = Vec::new();
    for link in browser
        .client
        .find_all(Locator::Css("table.list tbody tr td:first-child a"))
        .await
        .unwrap()
    {
        titles.push(link.text().await.unwrap());
    }
    assert_eq!(titles.len(), 500);
    assert_eq!(
        (titles[0].as_str(), titles[499].as_str()),
        ("waiting-502", "waiting-3"),
        "the 500 oldest, oldest first"
    );
    assert!(
        titles.windows(2).all(|pair| {
            let minutes = |title: &str| title["waiting-".len()..].parse::<u32>().unwrap();
            minutes(&pair[0]) > minutes(&pair[1])
        }),
        "oldest first: {titles:?}"
    );
    browser.close().await;
    console.stop().await;
}

#[tokio::test]
async fn a_late_approver_is_told_who_decided_and_the_requester_can_neither_see_nor_forge_a_vote() {
    let console = Console::start(1, false).await;
    let first = console
        .submit_as(
            CAROL,
            "dev",
            "docker stop web-1",
            "Stop web-1. Rollback: start it. Verify: ps.",
        )
        .await;
    let own = console
        .submit_as(
            CAROL,
            "dev",
            "docker stop web-2",
            "Stop web-2. Rollback: start it. Verify: ps.",
        )
        .await;

    // Bob's pending list: oldest first, every waiting request counted.
    let browser = Browser::start().await;
    browser.login(&console.base, BOB).await;
    let count = browser.wait_for_text("#count", "waiting").await;
    assert_eq!(count, "2 of 2 waiting, oldest first.");
    let mut listed = Vec::new();
    for link in browser
        .client
        .find_all(Locator::Css("table.list tbody tr td:first-child a"))
        .await
        .unwrap()
    {
        listed.push(link.attr("href").await.unwrap().unwrap());
    }
    assert_eq!(
        listed,
        [
            format!("/console/requests/{first}"),
            format!("/console/requests/{own}")
        ]
    );
    // The keyboard focus is drawn in a colour that stands out (3:1 or more, WCAG 2.2) on the
    // white page and on the dark header alike.
    for selector in ["header.top a.brand", "table.list a"] {
        let contrast = browser.focus_ring_contrast(selector).await;
        assert!(
            contrast >= 3.0,
            "the focus ring of {selector} has a contrast of {contrast:.2}:1"
        );
    }

    // Bob opens the page while the request waits; Alice decides first, through the API.
    browser
        .goto(&format!("{}/console/requests/{first}", console.base))
        .await;
    assert!(browser.exists("button.approve").await);
    let (_, bob_csrf) = browser.session().await;
    let (status, answer) = crate::api::call_with_key(
        "POST",
        &format!("{}/requests/{first}/approve", console.base),
        None,
        Some(ALICE),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    browser.vote("approve", "looks fine").await;
    let flash = browser.wait_for_text(".flash", "Already decided").await;
    assert!(flash.contains("by alice"), "{flash}");
    browser.logout().await;

    // The requester sees their request but no vote buttons, and is told why.
    browser.login(&console.base, CAROL).await;
    browser
        .goto(&format!("{}/console/requests/{own}", console.base))
        .await;
    assert!(
        !browser.exists("button.approve").await,
        "the requester got an Approve button"
    );
    let panel = browser.text(".decision").await;
    assert!(
        panel.contains("You (carol) submitted this request"),
        "{panel}"
    );
    let (carol_cookie, carol_csrf) = browser.session().await;

    // Forged POSTs: no token, another session's token, no session — all refused (403).
    for (cookie, csrf, reason) in [
        (Some(carol_cookie.as_str()), None, "csrf_mismatch"),
        (
            Some(carol_cookie.as_str()),
            Some(bob_csrf.as_str()),
            "csrf_mismatch",
        ),
        (None, Some(carol_csrf.as_str()), "no_session"),
    ] {
        let (status, body) = forged_post(&console.base, &own, cookie, csrf).await;
        assert_eq!(status, 403, "{reason}: {body}");
        assert!(body.contains(reason), "{body}");
    }
    // With her own session and token, the rules still refuse her own request.
    let (status, body) =
        forged_post(&console.base, &own, Some(&carol_cookie), Some(&carol_csrf)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Refused (own_request)"), "{body}");

    console.env.settle_all().await;
    let own_id = Uuid::parse_str(&own).unwrap();
    assert_eq!(
        console.env.status_of(own_id).await.as_deref(),
        Some("PENDING")
    );
    let denied: Vec<Value> = sqlx::query_scalar(
        "SELECT data FROM audit_events WHERE request_id = $1 AND kind = 'access_denied' ORDER BY seq",
    )
    .bind(own_id)
    .fetch_all(&console.env.pool)
    .await
    .unwrap();
    let reasons: Vec<&str> = denied
        .iter()
        .filter_map(|data| data["reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        ["csrf_mismatch", "csrf_mismatch", "no_session"],
        "{denied:?}"
    );
    let refused: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE request_id = $1 AND kind = 'decision_refused' AND data->>'code' = 'own_request'",
    )
    .bind(own_id)
    .fetch_one(&console.env.pool)
    .await
    .unwrap();
    assert_eq!(refused, 1);

    // An operator's read key sees the overview and its chart, and no vote forms.
    browser.logout().await;
    browser.login(&console.base, READER).await;
    browser
        .goto(&format!("{}/console/requests/{own}", console.base))
        .await;
    assert!(!browser.exists("form.vote").await);
    assert!(
        browser
            .text(".decision")
            .await
            .contains("lacks the decide role")
    );
    // The read key's own session and token do not make a vote: refused by role, audited.
    let (reader_cookie, reader_csrf) = browser.session().await;
    let (status, body) = forged_post(
        &console.base,
        &own,
        Some(&reader_cookie),
        Some(&reader_csrf),
    )
    .await;
    assert_eq!(status, 403, "a read key voted: {body}");
    assert!(body.contains("wrong_role"), "{body}");
    // The refusal's audit row goes through the recorder: wait for it rather than race it.
    console
        .env
        .wait_for_count(
            "SELECT count(*) FROM audit_events WHERE request_id = $1 AND kind = 'access_denied' AND data->>'reason' = 'wrong_role'",
            Some(own_id),
            1,
        )
        .await;
    browser
        .goto(&format!("{}/console/overview", console.base))
        .await;
    let overview = browser.wait_for_text("main", "Human backlog").await;
    assert!(overview.contains("1 waiting"), "{overview}");
    let chart_loaded = browser
        .client
        .execute(
            "const img = document.querySelector('img.chart'); return img.complete && img.naturalWidth > 0;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(chart_loaded, json!(true), "the rates chart did not load");
    browser.close().await;

    // Every console response carries the strict policy.
    let response = reqwest::get(format!("{}/console/login", console.base))
        .await
        .unwrap();
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    console.stop().await;
}

#[tokio::test]
async fn the_overview_shows_the_rates_per_day_the_rollout_phases_and_flags_indeterminate_runs() {
    let console = Console::start(1, false).await;
    let pool = &console.env.pool;
    // Six days of validated requests (10 % auto-rejected, 20 % auto-approved, 70 % to a
    // human), two rollout changes, and one execution that ended INDETERMINATE.
    sqlx::query(
        "INSERT INTO approval_requests (request_id, requester, environment, title, description, status,
            created_at, updated_at, validation_applied, validation_decision)
         SELECT gen_random_uuid(), 'seed', 'dev', 'seeded', 'd',
                CASE WHEN i % 10 < 1 THEN 'AUTO_REJECTED' WHEN i % 10 < 3 THEN 'AUTO_APPROVED' ELSE 'APPROVED' END,
                now() - make_interval(days => d), now() - make_interval(days => d), true,
                CASE WHEN i % 10 < 1 THEN 'AUTO_REJECTED' WHEN i % 10 < 3 THEN 'AUTO_APPROVED' ELSE 'PENDING' END
         FROM generate_series(1, 6) AS d, generate_series(0, 19) AS i",
    )
    .execute(pool)
    .await
    .unwrap();
    let lost = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO approval_requests (request_id, requester, environment, title, description, status,
            execution_status, created_at, updated_at)
         VALUES ($1, 'seed', 'prd', 'Restart the payment worker', 'd', 'APPROVED', 'INDETERMINATE', now(), now())",
    )
    .bind(lost)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO executions (token_id, request_id, environment, operation, argv, status, started_at, error)
         VALUES (gen_random_uuid(), $1, 'prd', 'container_restart', '[]', 'INDETERMINATE', now(),
                 'the gateway stopped after claiming the token')",
    )
    .bind(lost)
    .execute(pool)
    .await
    .unwrap();
    for (seq, days, percent) in [(1_000_001_i64, 5, 10), (1_000_002, 2, 50)] {
        sqlx::query(
            "INSERT INTO audit_events (seq, event_id, kind, stage, actor, at, data, prev_hash, hash)
             VALUES ($1, gen_random_uuid(), 'rollout_changed', 'watcher', 'watcher@test',
                     now() - make_interval(days => $2), $3, 'seeded', 'seeded')",
        )
        .bind(seq)
        .bind(days)
        .bind(json!({ "by": "ops-anna", "new": { "enabled": true, "percent": percent } }))
        .execute(pool)
        .await
        .unwrap();
    }

    let browser = Browser::start().await;
    // A guessed key gets the login page again, no session, and an audited refusal.
    browser
        .submit_login(&console.base, "wmk_guessed_0000")
        .await;
    let refused = browser
        .wait_for_text("main", "That API key is not valid.")
        .await;
    assert!(!refused.contains("Signed in as"), "{refused}");
    browser
        .goto(&format!("{}/console/overview", console.base))
        .await;
    browser.wait_for_text("main", "Log in").await;
    console
        .env
        .wait_for_count(
            "SELECT count(*) FROM audit_events WHERE kind = 'access_denied'
               AND data->>'route' = '/console/login' AND data->>'reason' = 'invalid_api_key'",
            None,
            1,
        )
        .await;
    browser.login(&console.base, READER).await;
    browser
        .goto(&format!("{}/console/overview", console.base))
        .await;
    let page = browser.wait_for_text("main", "Rates per day").await;
    assert!(
        page.contains("10 % by ops-anna") && page.contains("50 % by ops-anna"),
        "{page}"
    );
    // The current phase is judged like `wingman rollout report` judges it, with its gate.
    let phase = page
        .split("Current phase")
        .nth(1)
        .and_then(|rest| rest.split("Report, last").next())
        .unwrap_or_else(|| panic!("no current phase on the overview: {page}"));
    assert!(phase.contains("Phase 2: 50 % enforced"), "{phase}");
    assert!(phase.contains("Promote"), "{phase}");
    let days = browser.text("table.compact tbody").await;
    assert_eq!(days.matches("10.0 %").count(), 6, "{days}");
    assert_eq!(days.matches("70.0 %").count(), 6, "{days}");
    // Today has no validated request (only the INDETERMINATE one): no rates, rather than 0 %.
    assert_eq!(days.matches('–').count(), 4, "{days}");
    let flagged = browser.text("tr.indeterminate").await;
    assert!(flagged.contains("Restart the payment worker"), "{flagged}");
    assert!(flagged.contains("needs a human"), "{flagged}");
    let chart_loaded = browser
        .client
        .execute(
            "const img = document.querySelector('img.chart'); return img.complete && img.naturalWidth > 0;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(chart_loaded, json!(true), "the rates chart did not load");
    browser.assert_fits_a_phone("the overview").await;
    // On a phone the chart scrolls in its own box, and shows its newest days first.
    let chart = browser
        .on_a_phone(
            "const wrap = document.querySelector('.chart-wrap');
             const chart = document.querySelector('img.chart');
             return { scrolls: wrap.scrollWidth > wrap.clientWidth,
                      shown_right: wrap.getBoundingClientRect().right,
                      chart_right: chart.getBoundingClientRect().right };",
        )
        .await;
    assert_eq!(chart["scrolls"], json!(true), "{chart}");
    let (shown, drawn) = (
        chart["shown_right"].as_f64().unwrap(),
        chart["chart_right"].as_f64().unwrap(),
    );
    assert!(
        (shown - drawn).abs() < 2.0,
        "the chart's newest days are out of sight: {chart}"
    );
    browser.screenshot("overview", 1280).await;
    browser.screenshot("overview", PHONE_WIDTH).await;
    browser.close().await;
    console.stop().await;
}

#[tokio::test]
async fn a_telegram_prompt_links_to_the_requests_page_which_opens_after_the_login() {
    let fake = FakeTelegram::start().await;
    let console = Console::start_with(1, false, Some(&fake)).await;
    let targets: Vec<String> = (0..60)
        .map(|i| format!("worker-{i:03}-of-the-batch-fleet"))
        .collect();
    let command = format!("docker stop {}", targets.join(" "));
    let request_id = console
        .submit_as(
            CAROL,
            "dev",
            &command,
            "Stop the batch fleet. Rollback: start it. Verify: ps.",
        )
        .await;
    let prompt = fake
        .wait_for_sent(
            |sent| sent.text.contains(&request_id),
            Duration::from_secs(30),
        )
        .await;
    let page = format!("{}/console/requests/{request_id}", console.base);
    assert!(
        prompt.text.contains(&format!("<a href=\"{page}\">")),
        "{}",
        prompt.text
    );
    assert!(
        !prompt.text.contains(&targets[59]),
        "the prompt clips the command"
    );

    // On the phone: the link, the login, and straight back to the request's full evidence.
    let browser = Browser::start().await;
    browser.goto(&page).await;
    browser.fill_login(ALICE).await;
    let shown = browser.wait_for_text("pre.command", "docker stop").await;
    assert_eq!(shown, command, "the page shows the whole command");
    assert!(browser.exists("button.approve").await);
    browser.close().await;
    console.stop().await;
}
