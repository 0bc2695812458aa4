//! The audit says what happened: every principal of `nats/auth.conf` tries every forgery it
//! can on the audit subjects, against a nats-server with the production permissions, the
//! real recorder and Postgres. Each is refused by NATS or dead-lettered by the recorder
//! (audited and counted), `wingman pending` and the request row do not change, a planted id
//! does not suppress the real event, and `wingman audit verify` still passes.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::HeaderMap;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;
use wingman::envelope::{ENVELOPE_VERSION, Envelope, RequestId, derive_uuid_v7};
use wingman::events::{AuditKind, AuditRecord, Stage};
use wingman::stages::watcher::{self, GuardSettings};
use wingman::status::Status;

use crate::helpers::{TestEnv, request_json, run_wingman, text, wait_for_status};
use crate::nats_server::{NatsServer, USERS, credentials, password};

/// A principal's own connection, with the server's error messages.
struct Principal {
    user: &'static str,
    client: async_nats::Client,
    server_errors: mpsc::UnboundedReceiver<String>,
}

impl Principal {
    async fn connect(server: &NatsServer, user: &'static str) -> Self {
        let (sender, server_errors) = mpsc::unbounded_channel();
        let client =
            async_nats::ConnectOptions::with_user_and_password(user.into(), password(user))
                .custom_inbox_prefix(credentials(user).inbox_prefix())
                .event_callback(move |event| {
                    let sender = sender.clone();
                    async move {
                        if let async_nats::Event::ServerError(error) = event {
                            let _ = sender.send(error.to_string());
                        }
                    }
                })
                .connect(server.url())
                .await
                .unwrap_or_else(|error| panic!("connect as {user}: {error}"));
        Self {
            user,
            client,
            server_errors,
        }
    }

    /// The stage this principal may publish audit events as (`None`: publisher, operator).
    fn stage(&self) -> Option<Stage> {
        Stage::parse(self.user).filter(|stage| !stage.audit_kinds().is_empty())
    }

    /// Publishes `event` on `subject` with `Nats-Msg-Id` = `msg_id`, as a client may.
    async fn plant(&self, subject: &str, msg_id: Uuid, event: &Envelope<AuditRecord>) {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", msg_id.to_string().as_str());
        self.client
            .publish_with_headers(
                subject.to_string(),
                headers,
                serde_json::to_vec(event).unwrap().into(),
            )
            .await
            .unwrap();
        self.client.flush().await.unwrap();
    }

    /// NATS refused the publish on `subject`: the server says so.
    async fn assert_refused(&mut self, subject: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let error = tokio::time::timeout_at(deadline, self.server_errors.recv())
                .await
                .unwrap_or_else(|_| panic!("{}: no permissions violation for {subject}", self.user))
                .unwrap();
            if error.contains("Permissions Violation") && error.contains(subject) {
                return;
            }
        }
    }
}

fn forged(
    request_id: RequestId,
    event_id: Uuid,
    stage: Stage,
    kind: AuditKind,
    status: Option<Status>,
    data: Value,
) -> Envelope<AuditRecord> {
    Envelope {
        version: ENVELOPE_VERSION,
        event_id,
        request_id,
        at: wingman::envelope::now(),
        body: AuditRecord {
            kind,
            stage,
            status,
            actor: "mallory".into(),
            data,
            then: Vec::new(),
        },
    }
}

/// A planted `request_received` for `request_id`, with a request that looks real.
fn planted_request(request_id: RequestId, stage: Stage) -> Envelope<AuditRecord> {
    let request = wingman::request::parse_request(
        request_json(request_id.as_uuid(), None)
            .to_string()
            .as_bytes(),
        RequestId::generate,
    )
    .unwrap();
    forged(
        request_id,
        Uuid::now_v7(),
        stage,
        AuditKind::RequestReceived,
        Some(Status::Received),
        json!({ "request": request }),
    )
}

/// What a row and `wingman pending` show about the request.
async fn snapshot(env: &TestEnv, request_id: Uuid) -> (Value, String, i64) {
    let row: Value =
        sqlx::query_scalar("SELECT to_jsonb(r) FROM approval_requests r WHERE request_id = $1")
            .bind(request_id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    let pending = run_wingman(env, &[], &["pending", "--json"]).await;
    assert!(pending.status.success(), "{}", text(&pending.stderr));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM approval_requests")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    (row, text(&pending.stdout), rows)
}

#[tokio::test]
async fn no_principal_can_forge_plant_or_pre_empt_an_audit_event() {
    let metrics = wingman::metrics::install().unwrap();
    let server = NatsServer::single().await;
    let mut env = TestEnv::on_server(&server).await;
    for stage in ["intake", "recorder", "watcher"] {
        env.connect_stage_as(stage, credentials(stage)).await;
    }
    // Rollout 0 %: the request waits for a human, and expires in 3 s.
    env.spawn_intake_with_ttl(0, Duration::from_secs(3)).await;
    env.spawn_recorder().await;

    let request_id = Uuid::new_v4();
    let id = RequestId::from_uuid(request_id);
    let publisher = Principal::connect(&server, "publisher").await;
    publisher
        .client
        .publish(
            "wingman.requests.submitted.publisher",
            request_json(request_id, None).to_string().into(),
        )
        .await
        .unwrap();
    let pending_event = wait_for_status(&env, request_id, "PENDING").await;
    env.settle_all().await;
    let before = snapshot(&env, request_id).await;
    assert!(before.1.contains(&request_id.to_string()), "{}", before.1);

    // The id of the watcher's `request_expired` to come: derived from the request id and the
    // deadline, which the status event shows every publisher.
    let expires_at: DateTime<Utc> =
        serde_json::from_value(pending_event["expires_at"].clone()).unwrap();
    let real_expiry_id =
        derive_uuid_v7(expires_at, &format!("{request_id}:watcher:request_expired"));

    let mut dead_letters: Vec<(String, &str)> = Vec::new();
    let mut planted_requests = Vec::new();
    let mut pre_empted_by = Vec::new();
    for user in USERS.iter().copied().filter(|user| *user != "admin") {
        let mut principal = Principal::connect(&server, user).await;
        let own = principal.stage();
        // A planted `request_received`, on the owner's subject and on its own.
        let planted = RequestId::generate();
        planted_requests.push(planted.as_uuid());
        if own != Some(Stage::Intake) {
            let subject = "wingman.audit.intake.request_received";
            let event = planted_request(planted, Stage::Intake);
            principal.plant(subject, event.event_id, &event).await;
            principal.assert_refused(subject).await;
        }
        // Another stage's subject, for every other stage.
        for (stage, kinds) in wingman::events::AUDIT_OWNERS {
            if Some(*stage) == own || kinds.is_empty() {
                continue;
            }
            let subject = format!("wingman.audit.{}.{}", stage.as_str(), kinds[0].as_str());
            let event = forged(id, Uuid::now_v7(), *stage, kinds[0], None, json!({}));
            principal.plant(&subject, event.event_id, &event).await;
            principal.assert_refused(&subject).await;
        }
        // The pre-empting id on the watcher's own subject.
        if own != Some(Stage::Watcher) {
            let subject = "wingman.audit.watcher.request_expired";
            let event = forged(
                id,
                real_expiry_id,
                Stage::Watcher,
                AuditKind::RequestExpired,
                Some(Status::Expired),
                json!({}),
            );
            principal.plant(subject, real_expiry_id, &event).await;
            principal.assert_refused(subject).await;
        }
        // Publishers and operators publish no audit event at all (refused above).
        let Some(own) = own else {
            continue;
        };
        // On its own subjects, NATS lets it through: the recorder must refuse.
        let harmless = own
            .audit_kinds()
            .iter()
            .copied()
            .find(|kind| kind.moves().is_empty())
            .expect("every stage owns a kind that sets no status");
        let own_subject = format!("wingman.audit.{}.{}", own.as_str(), harmless.as_str());
        let mut refused_by_recorder = Vec::new();
        if own != Stage::Intake {
            // A kind it does not own: a planted request_received under its own stage.
            let subject = format!("wingman.audit.{}.request_received", own.as_str());
            let event = planted_request(planted, own);
            refused_by_recorder.push((subject, event, "audit_kind_not_owned"));
        }
        let liar = if own == Stage::Intake {
            Stage::Api
        } else {
            Stage::Intake
        };
        refused_by_recorder.extend([
            // A body that lies about its stage.
            (
                own_subject.clone(),
                forged(id, Uuid::now_v7(), liar, harmless, None, json!({})),
                "audit_stage_mismatch",
            ),
            // A body that lies about its kind (a status move on a harmless subject).
            (
                own_subject.clone(),
                forged(
                    id,
                    Uuid::now_v7(),
                    own,
                    AuditKind::ApprovalDecided,
                    Some(Status::Approved),
                    json!({ "decided_by": "mallory" }),
                ),
                "audit_kind_mismatch",
            ),
            // A kind it owns, moving the request where that kind never does.
            (
                own_subject.clone(),
                forged(
                    id,
                    Uuid::now_v7(),
                    own,
                    harmless,
                    Some(Status::Approved),
                    json!({ "decided_by": "mallory" }),
                ),
                "audit_status_not_owned",
            ),
            // A harmless event of its own carrying, in the same message, a record of a kind
            // its stage does not own that would move the request (a chained record).
            (
                own_subject.clone(),
                {
                    let smuggled = if own == Stage::Gateway {
                        (AuditKind::ApprovalDecided, Status::Approved)
                    } else {
                        (AuditKind::ExecutionFinished, Status::Succeeded)
                    };
                    let mut event = forged(id, Uuid::now_v7(), own, harmless, None, json!({}));
                    event.body.then.push(wingman::events::ChainedRecord {
                        event_id: Uuid::now_v7(),
                        kind: smuggled.0,
                        status: Some(smuggled.1),
                        data: json!({ "decided_by": "mallory" }),
                    });
                    event
                },
                "audit_kind_not_owned",
            ),
            // A subject that does not parse, under its own stage.
            (
                format!("wingman.audit.{}.nonsense", own.as_str()),
                forged(id, Uuid::now_v7(), own, harmless, None, json!({})),
                "audit_subject_unparsable",
            ),
        ]);
        for (subject, event, code) in refused_by_recorder {
            principal.plant(&subject, event.event_id, &event).await;
            dead_letters.push((subject, code));
        }
        // The pre-empting id on its own subject: admissible, so it is recorded, as its own
        // stage's event, and must not suppress the watcher's.
        if own != Stage::Watcher {
            let event = forged(
                id,
                real_expiry_id,
                own,
                harmless,
                None,
                json!({ "planted": true }),
            );
            principal.plant(&own_subject, real_expiry_id, &event).await;
            pre_empted_by.push(own.as_str());
        }
    }
    env.settle_all().await;

    // Dead-lettered by the recorder, each with its reason, audited and counted.
    let letters = env
        .stream_messages("WINGMAN_DLQ", "wingman.dlq.recorder")
        .await;
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for letter in &letters {
        let key = (
            letter["subject"].as_str().unwrap().to_string(),
            letter["code"].as_str().unwrap().to_string(),
        );
        *seen.entry(key).or_default() += 1;
    }
    let mut expected: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (subject, code) in &dead_letters {
        *expected
            .entry((subject.clone(), code.to_string()))
            .or_default() += 1;
    }
    assert_eq!(seen, expected, "the recorder's dead letters");
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE stage = 'recorder' AND kind = 'message_rejected'
             AND data->>'code' LIKE 'audit_%'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(audited as usize, dead_letters.len());
    let scrape = metrics.render();
    for code in wingman::stages::admission::Forgery::CODES {
        assert!(
            scrape
                .lines()
                .any(|line| line.starts_with(wingman::metrics::DLQ_TOTAL)
                    && line.contains("stage=\"recorder\"")
                    && line.contains(&format!("reason=\"{code}\""))),
            "{code} not counted:\n{scrape}"
        );
    }

    // Nothing the forgeries said reached the request tables.
    let after = snapshot(&env, request_id).await;
    assert_eq!(
        after, before,
        "the request row or `wingman pending` changed"
    );
    let planted_rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM approval_requests WHERE request_id = ANY($1)")
            .bind(&planted_requests)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(planted_rows, 0, "a planted request_received was recorded");
    let stored_forgeries: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE actor = 'mallory' AND data->>'planted' IS NULL",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(stored_forgeries, 0);

    // The real expiry, with the id every principal tried to take first, is recorded.
    let deps = env
        .watcher_deps(
            None,
            GuardSettings {
                enabled: false,
                ..Default::default()
            },
        )
        .await;
    let wait = (expires_at - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(200)).await;
    assert_eq!(watcher::expire_due(&deps).await.unwrap(), 1);
    env.settle_all().await;
    env.wait_for_count(
        "SELECT count(*) FROM approval_requests WHERE request_id = $1 AND status = 'EXPIRED'",
        Some(request_id),
        1,
    )
    .await;
    let holders: Vec<(String, String)> =
        sqlx::query_as("SELECT stage, kind FROM audit_events WHERE event_id = $1 ORDER BY stage")
            .bind(real_expiry_id)
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert!(
        holders.contains(&("watcher".into(), "request_expired".into())),
        "the real expiry was suppressed: {holders:?}"
    );
    // JetStream kept the first plant (the later ones share its message id); the real event,
    // published without one, is a row of its own next to it.
    assert!(!pre_empted_by.is_empty());
    assert_eq!(holders.len(), 2, "{holders:?}");

    let verify = run_wingman(&env, &[], &["audit", "verify"]).await;
    assert!(
        verify.status.success() && text(&verify.stdout).starts_with("audit chain OK"),
        "{}",
        text(&verify.stdout)
    );
    env.stop().await;
}
