//! The recorder: idempotent, ordered, chained.

use serde_json::json;
use uuid::Uuid;
use wingman::bus::publish::{Outgoing, publish_all};
use wingman::envelope::{Envelope, RequestId};
use wingman::events::{AUDIT_OWNERS, AuditKind, AuditRecord, Stage};
use wingman::status::Status;

use crate::helpers::{TestEnv, request_json};

/// The stage that owns `kind`: the recorder admits an event only from it.
fn owner(kind: AuditKind) -> Stage {
    AUDIT_OWNERS
        .iter()
        .find(|(_, kinds)| kinds.contains(&kind))
        .map(|(stage, _)| *stage)
        .unwrap()
}

fn audit(
    request_id: RequestId,
    kind: AuditKind,
    status: Option<Status>,
    data: serde_json::Value,
) -> Envelope<AuditRecord> {
    Envelope::derived(
        request_id,
        chrono::Utc::now(),
        &format!("{request_id}:test:{}", kind.as_str()),
        AuditRecord {
            kind,
            stage: owner(kind),
            status,
            actor: "test".into(),
            data,
            then: Vec::new(),
        },
    )
}

/// An audit event of `kind` with an id of its own (the recorder keeps one row per id and
/// stage).
fn fresh_audit(
    request_id: RequestId,
    kind: AuditKind,
    status: Option<Status>,
    data: serde_json::Value,
) -> Envelope<AuditRecord> {
    let mut event = audit(request_id, kind, status, data);
    event.event_id = Uuid::now_v7();
    event
}

/// Publishes an audit event on the subject of the stage that owns its kind.
async fn publish_audit(env: &TestEnv, event: &Envelope<AuditRecord>) {
    let subject = env
        .bus
        .subjects
        .audit(owner(event.body.kind), event.body.kind);
    publish_all(
        &env.bus.js,
        &[Outgoing::json(subject, event.event_id.to_string(), event)],
    )
    .await
    .unwrap();
}

/// A request's decision and its execution's state (`status`, `execution_status`).
async fn decision_and_execution(env: &TestEnv, request_id: Uuid) -> (String, Option<String>) {
    sqlx::query_as("SELECT status, execution_status FROM approval_requests WHERE request_id = $1")
        .bind(request_id)
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

/// Intake and the recorder running, and one anonymous request submitted: its id.
async fn with_one_request() -> (TestEnv, Uuid) {
    let mut env = TestEnv::start().await;
    env.spawn_intake().await;
    env.spawn_recorder().await;
    let request_id = Uuid::new_v4();
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        request_json(request_id, None).to_string(),
    )
    .await;
    (env, request_id)
}

#[tokio::test]
async fn a_redelivered_audit_event_is_recorded_once() {
    let (env, request_id) = with_one_request().await;
    env.settle_all().await;

    let event = audit(
        RequestId::from_uuid(request_id),
        AuditKind::ApprovalDecided,
        Some(Status::Approved),
        json!({"decided_by": "alice", "note": "checked"}),
    );
    let subject = env
        .bus
        .subjects
        .audit(Stage::Approvals, AuditKind::ApprovalDecided);
    // Two publishes with different message ids get past JetStream's dedup: the database must hold.
    for attempt in 0..2 {
        let outgoing = Outgoing::json(
            subject.clone(),
            format!("{}-{attempt}", event.event_id),
            &event,
        );
        publish_all(&env.bus.js, &[outgoing]).await.unwrap();
    }
    env.settle_all().await;
    // Received and validated (one message from intake), then the decision once.
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE request_id = $1",
        Some(request_id),
        3,
    )
    .await;
    assert_eq!(env.status_of(request_id).await.as_deref(), Some("APPROVED"));
    let decided_by: Option<String> =
        sqlx::query_scalar("SELECT decided_by FROM approval_requests WHERE request_id = $1")
            .bind(request_id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(decided_by.as_deref(), Some("alice"));
    env.stop().await;
}

#[tokio::test]
async fn an_event_that_overtakes_its_request_waits_for_it_and_a_move_against_the_state_machine_is_only_audited()
 {
    let mut env = TestEnv::start().await;
    env.spawn_recorder().await;
    let request_id = Uuid::new_v4();
    let id = RequestId::from_uuid(request_id);
    let early = audit(
        id,
        AuditKind::ApprovalDecided,
        Some(Status::Approved),
        json!({"decided_by": "alice"}),
    );
    let subject = env
        .bus
        .subjects
        .audit(Stage::Approvals, AuditKind::ApprovalDecided);
    publish_all(
        &env.bus.js,
        &[Outgoing::json(subject, early.event_id.to_string(), &early)],
    )
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(env.status_of(request_id).await, None);

    env.spawn_intake().await;
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        request_json(request_id, None).to_string(),
    )
    .await;
    env.settle_all().await;
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE request_id = $1",
        Some(request_id),
        3,
    )
    .await;
    assert_eq!(env.status_of(request_id).await.as_deref(), Some("APPROVED"));

    // EXPIRED may only follow PENDING: recorded in the audit log, the row stays.
    let late = audit(
        id,
        AuditKind::RequestExpired,
        Some(Status::Expired),
        json!({}),
    );
    let subject = env
        .bus
        .subjects
        .audit(Stage::Watcher, AuditKind::RequestExpired);
    publish_all(
        &env.bus.js,
        &[Outgoing::json(subject, late.event_id.to_string(), &late)],
    )
    .await
    .unwrap();
    env.settle_all().await;
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE request_id = $1",
        Some(request_id),
        4,
    )
    .await;
    assert_eq!(env.status_of(request_id).await.as_deref(), Some("APPROVED"));
    env.stop().await;
}

/// Events that arrive together are recorded together (one transaction, a few statements):
/// each request still takes its moves in order and keeps every field they set.
#[tokio::test]
async fn a_backlog_of_many_requests_each_with_several_moves_is_recorded_in_order() {
    let mut env = TestEnv::start().await;
    let ids: Vec<RequestId> = (0..40)
        .map(|_| RequestId::from_uuid(Uuid::new_v4()))
        .collect();
    let mut outgoing = Vec::new();
    for id in &ids {
        let request = wingman::request::parse_request(
            request_json(id.as_uuid(), None).to_string().as_bytes(),
            RequestId::generate,
        )
        .unwrap();
        let events = [
            audit(
                *id,
                AuditKind::RequestReceived,
                Some(Status::Received),
                json!({ "request": request }),
            ),
            audit(
                *id,
                AuditKind::RequestValidated,
                Some(Status::Pending),
                json!({"profile": "operational", "composite_score": 61}),
            ),
            audit(
                *id,
                AuditKind::ApprovalDecided,
                Some(Status::Approved),
                json!({"decided_by": "alice", "note": "checked the runbook"}),
            ),
            // Too late: EXPIRED may only follow PENDING. Audited, the row stays APPROVED.
            audit(
                *id,
                AuditKind::RequestExpired,
                Some(Status::Expired),
                json!({}),
            ),
        ];
        for event in events {
            outgoing.push(Outgoing::json(
                env.bus.subjects.audit(event.body.stage, event.body.kind),
                event.event_id.to_string(),
                &event,
            ));
        }
    }
    // All 160 events wait in the stream before the recorder starts, so they come in batches.
    publish_all(&env.bus.js, &outgoing).await.unwrap();
    env.spawn_recorder().await;
    env.wait_for_count("SELECT count(*) FROM audit_events", None, 160)
        .await;
    type Row = (
        String,
        Option<String>,
        Option<i32>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT status, profile, composite_score, decided_by, decision_note
             FROM approval_requests ORDER BY request_id",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 40);
    for row in rows {
        assert_eq!(
            row,
            (
                "APPROVED".to_string(),
                Some("operational".to_string()),
                Some(61),
                Some("alice".to_string()),
                Some("checked the runbook".to_string())
            )
        );
    }
    let chain = wingman::store::chain::verify(&env.pool).await.unwrap();
    assert_eq!((chain.rows, chain.broken), (160, None));
    env.stop().await;
}

#[tokio::test]
async fn the_audit_log_refuses_updates_and_deletes() {
    let mut env = TestEnv::start().await;
    env.spawn_intake().await;
    env.spawn_recorder().await;
    let request_id = Uuid::new_v4();
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        request_json(request_id, None).to_string(),
    )
    .await;
    env.settle_all().await;
    env.wait_for_count("SELECT count(*) FROM audit_events", None, 2)
        .await;
    let update = sqlx::query("UPDATE audit_events SET actor = 'mallory'")
        .execute(&env.pool)
        .await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = sqlx::query("DELETE FROM audit_events")
        .execute(&env.pool)
        .await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    env.stop().await;
}

/// The append-only trigger also stands in the way of emptying the log in one statement.
#[tokio::test]
async fn the_audit_log_refuses_truncate_and_keeps_its_rows() {
    let mut env = TestEnv::start().await;
    env.spawn_intake().await;
    env.spawn_recorder().await;
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        request_json(Uuid::new_v4(), None).to_string(),
    )
    .await;
    env.wait_for_count("SELECT count(*) FROM audit_events", None, 2)
        .await;
    let truncate = sqlx::query("TRUNCATE audit_events")
        .execute(&env.pool)
        .await;
    assert!(truncate.unwrap_err().to_string().contains("append-only"));
    env.wait_for_count("SELECT count(*) FROM audit_events", None, 2)
        .await;
    env.stop().await;
}

#[tokio::test]
async fn an_execution_moves_only_its_own_column_and_only_after_an_approval() {
    let (env, request_id) = with_one_request().await;
    let id = RequestId::from_uuid(request_id);
    let token_id = Uuid::new_v4();
    let mut audited = 2;
    let send = |kind: AuditKind, status: Status, data: serde_json::Value| {
        let event = fresh_audit(id, kind, Some(status), data);
        let env = &env;
        async move { publish_audit(env, &event).await }
    };
    let state = || decision_and_execution(&env, request_id);
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE request_id = $1",
        Some(request_id),
        audited,
    )
    .await;
    let started = json!({"token_id": token_id, "environment": "test", "operation": "container_restart", "argv": []});

    // A start on a PENDING request is audited, not applied.
    send(
        AuditKind::ExecutionStarted,
        Status::Executing,
        started.clone(),
    )
    .await;
    audited += 1;
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE request_id = $1",
        Some(request_id),
        audited,
    )
    .await;
    assert_eq!(state().await, ("PENDING".into(), None));

    send(
        AuditKind::ApprovalDecided,
        Status::Approved,
        json!({"decided_by": "alice"}),
    )
    .await;
    // A finish that no start came before is audited, not applied.
    send(
        AuditKind::ExecutionFinished,
        Status::Succeeded,
        json!({"token_id": token_id}),
    )
    .await;
    audited += 2;
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE request_id = $1",
        Some(request_id),
        audited,
    )
    .await;
    assert_eq!(state().await, ("APPROVED".into(), None));

    // Then the real start and finish move the execution; the decision stays.
    send(AuditKind::ExecutionStarted, Status::Executing, started).await;
    send(
        AuditKind::ExecutionFinished,
        Status::Failed,
        json!({"token_id": token_id, "exit_code": 1}),
    )
    .await;
    audited += 2;
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE request_id = $1",
        Some(request_id),
        audited,
    )
    .await;
    env.settle_all().await;
    assert_eq!(state().await, ("APPROVED".into(), Some("FAILED".into())));
    let executions: Vec<String> =
        sqlx::query_scalar("SELECT status FROM executions WHERE request_id = $1")
            .bind(request_id)
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(executions, ["FAILED"]);
    // A decision never follows an execution.
    send(AuditKind::RequestExpired, Status::Expired, json!({})).await;
    audited += 1;
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE request_id = $1",
        Some(request_id),
        audited,
    )
    .await;
    assert_eq!(state().await, ("APPROVED".into(), Some("FAILED".into())));
    env.stop().await;
}

/// The gateway publishes a start before its finish, but JetStream redelivers a message it was
/// told to retry (the database was down under its batch) after the messages behind it: the
/// finish can be recorded first. Once the start is recorded the finish it was stamped before
/// ends the execution; the row must not stay EXECUTING for good (the fault suite's stuck
/// request).
#[tokio::test]
async fn a_finish_recorded_before_its_start_ends_the_execution_once_the_start_comes() {
    let (env, request_id) = with_one_request().await;
    let id = RequestId::from_uuid(request_id);
    let count = "SELECT count(*) FROM audit_events WHERE request_id = $1";
    env.wait_for_count(count, Some(request_id), 2).await;
    let token_id = Uuid::new_v4();
    let approved = fresh_audit(
        id,
        AuditKind::ApprovalDecided,
        Some(Status::Approved),
        json!({"decided_by": "alice"}),
    );
    publish_audit(&env, &approved).await;
    let started = fresh_audit(
        id,
        AuditKind::ExecutionStarted,
        Some(Status::Executing),
        json!({"token_id": token_id, "environment": "test", "operation": "container_restart", "argv": []}),
    );
    let mut finished = fresh_audit(
        id,
        AuditKind::ExecutionFinished,
        Some(Status::Succeeded),
        json!({"token_id": token_id, "exit_code": 0, "duration_ms": 12}),
    );
    finished.at = started.at + chrono::Duration::milliseconds(15);

    // The finish overtakes its start: audited, nothing to end yet.
    publish_audit(&env, &finished).await;
    env.wait_for_count(count, Some(request_id), 4).await;
    env.settle_all().await;
    let state = || async {
        sqlx::query_as::<_, (String, Option<String>, Option<String>)>(
            "SELECT r.status, r.execution_status, e.status
             FROM approval_requests r LEFT JOIN executions e USING (request_id)
             WHERE r.request_id = $1",
        )
        .bind(request_id)
        .fetch_one(&env.pool)
        .await
        .unwrap()
    };
    assert_eq!(state().await, ("APPROVED".into(), None, None));

    // The start comes: it starts the execution and the finish behind it in the log ends it.
    publish_audit(&env, &started).await;
    env.wait_for_count(count, Some(request_id), 5).await;
    env.settle_all().await;
    assert_eq!(
        state().await,
        (
            "APPROVED".into(),
            Some("SUCCEEDED".into()),
            Some("SUCCEEDED".into())
        )
    );
    env.stop().await;
}

/// 100 000 rows of history in the audit log, with no ANALYZE after them (below the chain's
/// sequence numbers, so the recorder's chain goes on from its own head).
async fn add_audit_history(env: &TestEnv) {
    sqlx::query(
        "INSERT INTO audit_events (seq, event_id, kind, stage, actor, at, data, prev_hash, hash)
         SELECT -g, gen_random_uuid(), 'request_received', 'intake', 'history', now(), '{}', '', ''
         FROM generate_series(1, 100000) AS g",
    )
    .execute(&env.pool)
    .await
    .unwrap();
}

/// How many times Postgres has read `table` from end to end, once its backends have
/// reported (they flush their counters at most every 10 s while busy or idle).
async fn whole_table_scans(env: &TestEnv, table: &str) -> i64 {
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    sqlx::query_scalar("SELECT seq_scan FROM pg_stat_user_tables WHERE relname = $1")
        .bind(table)
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

async fn submit_and_record(env: &TestEnv, count: usize, recorded: i64) {
    let ids: Vec<Uuid> = (0..count).map(|_| Uuid::new_v4()).collect();
    env.submit_anonymous(&ids).await;
    env.wait_for_count("SELECT count(*) FROM approval_requests", None, recorded)
        .await;
}

/// The recorder keeps its connections between batches (no round trip to test them); one
/// cut under it (a restarted Postgres, an administrator's `pg_terminate_backend`) costs the
/// batch that meets it a retry, never a request, and is not kept.
#[tokio::test]
async fn a_recorder_whose_connections_are_cut_records_every_later_request_once() {
    let mut env = TestEnv::start().await;
    env.spawn_intake().await;
    // The recorder's connections carry their own name, so the cut below is theirs.
    let recorder_pool = wingman::config::DatabaseSettings::new(format!(
        "{}?application_name=recorder-under-test",
        env.database_url()
    ))
    .pool()
    .unwrap();
    env.spawn_recorder_on(recorder_pool).await;
    submit_and_record(&env, 5, 5).await;
    let cut: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'recorder-under-test')
         AS cut",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(cut >= 1, "the recorder held no connection to cut");
    for round in 1..=3 {
        submit_and_record(&env, 5, 5 + 5 * round).await;
    }
    env.settle_all().await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(rows, 40, "20 requests, each received and validated once");
    env.stop().await;
}

/// An operator reading `pg_stat_activity` sees which worker holds a connection: the real
/// recorder process's connections are named `wingman-recorder`, and the test's own (this
/// test binary's) are not.
#[tokio::test]
async fn the_recorders_connections_are_named_after_it_in_pg_stat_activity() {
    let env = TestEnv::start().await;
    let workers = crate::observability::spawn_workers(&env, &["intake", "recorder"], &[]).await;
    submit_and_record(&env, 3, 3).await;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT application_name FROM pg_stat_activity
         WHERE datname = current_database() ORDER BY 1",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert!(
        names.iter().any(|name| name == "wingman-recorder"),
        "no connection named after the recorder: {names:?}"
    );
    let ours: String = sqlx::query_scalar("SELECT current_setting('application_name')")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert!(ours.starts_with("it"), "the test's own connection: {ours}");
    drop(workers);
    env.stop().await;
}

/// Statistics that are never refreshed (autovacuum off, as on the CI machines, or a table
/// restored without ANALYZE) must not turn the recorder's duplicate check into a scan of the
/// whole audit table per batch: that is what made the 30-minute soak fall behind after three
/// minutes. The recorder keeps probing the unique index as the table grows.
#[tokio::test]
async fn the_recorder_probes_the_index_as_the_audit_table_grows_without_fresh_statistics() {
    let mut env = TestEnv::start().await;
    sqlx::query("ALTER TABLE audit_events SET (autovacuum_enabled = false)")
        .execute(&env.pool)
        .await
        .unwrap();
    env.spawn_intake().await;
    env.spawn_recorder().await;
    // While the table is small, the recorder's statements are prepared and run many times.
    for round in 1..=40 {
        submit_and_record(&env, 1, round).await;
    }
    // Then 100 000 rows of history arrive with no ANALYZE after them.
    add_audit_history(&env).await;
    let before = whole_table_scans(&env, "audit_events").await;
    submit_and_record(&env, 20, 60).await;
    let after = whole_table_scans(&env, "audit_events").await;
    assert_eq!(
        after - before,
        0,
        "the recorder scanned the whole audit table {} times for 20 requests",
        after - before
    );
    env.stop().await;
}

/// The recorder's two statements of every batch (the append, the insert of the received
/// requests) run on plans made once per connection (`audit::begin_locked`), its status moves
/// and lookups after them on plans made with their parameters. Made while the tables were
/// empty and kept as the tables grow with no fresh statistics, none of them may scan a whole
/// table at every batch: a move's plan made once on an empty requests table is a hash join
/// over a scan of that table.
#[tokio::test]
async fn the_recorders_cached_plans_do_not_scan_the_tables_they_were_made_on_when_small() {
    let mut env = TestEnv::start().await;
    for statement in [
        "ALTER TABLE audit_events SET (autovacuum_enabled = false)",
        "ALTER TABLE approval_requests SET (autovacuum_enabled = false)",
    ] {
        sqlx::query(statement).execute(&env.pool).await.unwrap();
    }
    env.spawn_intake().await;
    env.spawn_recorder().await;
    // While the tables are empty or nearly: requests recorded, then each approved (a move).
    submit_and_approve(&env, 10).await;
    // Then 100 000 rows of history in each table, with no ANALYZE after them.
    sqlx::query(
        "INSERT INTO approval_requests
            (request_id, requester, environment, title, description, status, created_at, updated_at)
         SELECT gen_random_uuid(), 'history', 'dev', 'old', 'old', 'APPROVED', now(), now()
         FROM generate_series(1, 100000)",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    add_audit_history(&env).await;
    let before = both_tables_scans(&env).await;
    submit_and_approve(&env, 20).await;
    let after = both_tables_scans(&env).await;
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (0, 0),
        "whole-table scans of (audit_events, approval_requests) while 20 requests were \
         recorded and approved"
    );
    env.stop().await;
}

/// (`audit_events`, `approval_requests`) whole-table scans so far (after the statistics
/// flush, as [`whole_table_scans`]).
async fn both_tables_scans(env: &TestEnv) -> (i64, i64) {
    let audit = whole_table_scans(env, "audit_events").await;
    let requests: i64 = sqlx::query_scalar(
        "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'approval_requests'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    (audit, requests)
}

/// Submits `count` requests, waits until each is PENDING, approves each (an audit event of
/// the approvals stage: a status move), and waits until each is APPROVED.
async fn submit_and_approve(env: &TestEnv, count: usize) {
    let ids: Vec<Uuid> = (0..count).map(|_| Uuid::new_v4()).collect();
    env.submit_anonymous(&ids).await;
    wait_for_statuses(env, &ids, "PENDING").await;
    for id in &ids {
        let approval = fresh_audit(
            RequestId::from_uuid(*id),
            AuditKind::ApprovalDecided,
            Some(Status::Approved),
            json!({"decided_by": "alice"}),
        );
        publish_audit(env, &approval).await;
    }
    wait_for_statuses(env, &ids, "APPROVED").await;
}

/// Polls until every request of `ids` has `status`, by the primary key (sequential scans
/// off on the polling connection: the test counts the recorder's scans, not its own).
async fn wait_for_statuses(env: &TestEnv, ids: &[Uuid], status: &str) {
    let mut probe = env.pool.acquire().await.unwrap();
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut *probe)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let seen: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM approval_requests WHERE request_id = ANY($1) AND status = $2",
        )
        .bind(ids)
        .bind(status)
        .fetch_one(&mut *probe)
        .await
        .unwrap();
        if seen == ids.len() as i64 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{seen} of {} requests {status} after 20 s",
            ids.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    sqlx::query("RESET enable_seqscan")
        .execute(&mut *probe)
        .await
        .unwrap();
}

/// Backends of this test's database waiting for an advisory lock.
async fn chain_waiters(env: &TestEnv) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
         WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap()
}

/// How many deliveries the recorder's consumer has made, redeliveries included.
async fn recorder_deliveries(env: &TestEnv) -> u64 {
    let declared = env.bus.topology.consumer("recorder").unwrap();
    let stream = env.bus.js.get_stream(&declared.stream).await.unwrap();
    let mut consumer: async_nats::jetstream::consumer::PullConsumer =
        stream.get_consumer("recorder").await.unwrap();
    consumer.info().await.unwrap().delivered.consumer_sequence
}

/// The recorder's messages delivered and not yet acknowledged.
async fn recorder_unacked(env: &TestEnv) -> usize {
    let declared = env.bus.topology.consumer("recorder").unwrap();
    let stream = env.bus.js.get_stream(&declared.stream).await.unwrap();
    let mut consumer: async_nats::jetstream::consumer::PullConsumer =
        stream.get_consumer("recorder").await.unwrap();
    consumer.info().await.unwrap().num_ack_pending
}

/// Polls until (lock waiters, recorder messages unacknowledged) is `expected`.
async fn wait_for_waiters(env: &TestEnv, expected: (i64, usize)) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let seen = (chain_waiters(env).await, recorder_unacked(env).await);
        if seen == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expected (lock waiters, unacked) = {expected:?}, saw {seen:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The recorder appends a batch as if all its events were new (no lookup first) and learns
/// of a copy recorded already from the unique key; a copy of an event can then be in a batch
/// queued behind the batch that records it (republished while the first was in flight).
/// Played here: the chain's lock is held from outside, the first copy's batch queues for it,
/// the second copy's batch is taken behind it; then the lock goes. The event is one row, the
/// request moves once, nothing is dead-lettered or left unacknowledged, the chain verifies.
#[tokio::test]
async fn an_event_in_two_batches_at_once_is_recorded_once() {
    let (env, request_id) = with_one_request().await;
    env.settle_all().await;
    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE request_id = $1",
        Some(request_id),
        2,
    )
    .await;
    let mut holder = env.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(wingman::store::audit::CHAIN_LOCK)
        .execute(&mut *holder)
        .await
        .unwrap();

    let event = audit(
        RequestId::from_uuid(request_id),
        AuditKind::ApprovalDecided,
        Some(Status::Approved),
        json!({"decided_by": "alice", "note": "checked"}),
    );
    let subject = env
        .bus
        .subjects
        .audit(Stage::Approvals, AuditKind::ApprovalDecided);
    let copy = |attempt: u8| {
        Outgoing::json(
            subject.clone(),
            format!("{}-{attempt}", event.event_id),
            &event,
        )
    };
    publish_all(&env.bus.js, &[copy(0)]).await.unwrap();
    wait_for_waiters(&env, (1, 1)).await;
    publish_all(&env.bus.js, &[copy(1)]).await.unwrap();
    wait_for_waiters(&env, (1, 2)).await;
    holder.commit().await.unwrap();
    env.settle_all().await;

    env.wait_for_count(
        "SELECT count(*) FROM audit_events WHERE request_id = $1",
        Some(request_id),
        3,
    )
    .await;
    let copies: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE event_id = $1")
        .bind(event.event_id)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(copies, 1, "the event was recorded {copies} times");
    assert_eq!(env.status_of(request_id).await.as_deref(), Some("APPROVED"));
    let letters = env
        .stream_messages("WINGMAN_DLQ", &format!("{}.dlq.recorder", env.prefix))
        .await;
    assert!(letters.is_empty(), "dead-lettered: {letters:?}");
    let chain = wingman::store::chain::verify(&env.pool).await.unwrap();
    assert_eq!(chain.broken, None);
    assert_eq!(chain.rows, 3);
    env.stop().await;
}

/// The gateway runs a command only on a token minted after the approval, but JetStream
/// redelivers a message the recorder could not record (the database down under its batch)
/// after the messages behind it: the gateway's start and finish can be recorded before the
/// approval, and were audited only. Once the approval is recorded, the start the gateway
/// stamped after it, and that start's finish, move the execution; a start stamped before
/// the approval is no execution of it and stays audited only.
#[tokio::test]
async fn a_start_recorded_before_its_approval_moves_the_execution_once_the_approval_comes() {
    let (env, request_id) = with_one_request().await;
    let id = RequestId::from_uuid(request_id);
    let token_id = Uuid::new_v4();
    let audited = |count: i64| {
        let env = &env;
        async move {
            env.wait_for_count(
                "SELECT count(*) FROM audit_events WHERE request_id = $1",
                Some(request_id),
                count,
            )
            .await;
        }
    };
    let state = || decision_and_execution(&env, request_id);
    audited(2).await;
    let approval = fresh_audit(
        id,
        AuditKind::ApprovalDecided,
        Some(Status::Approved),
        json!({"decided_by": "alice"}),
    );
    let stamped = |mut event: Envelope<AuditRecord>, millis: i64| {
        event.at = approval.at + chrono::Duration::milliseconds(millis);
        event
    };
    let started = |token: Uuid| json!({"token_id": token, "environment": "test", "operation": "container_restart", "argv": []});
    let before = stamped(
        fresh_audit(
            id,
            AuditKind::ExecutionStarted,
            Some(Status::Executing),
            started(Uuid::new_v4()),
        ),
        -1000,
    );
    let start = stamped(
        fresh_audit(
            id,
            AuditKind::ExecutionStarted,
            Some(Status::Executing),
            started(token_id),
        ),
        10,
    );
    let finish = stamped(
        fresh_audit(
            id,
            AuditKind::ExecutionFinished,
            Some(Status::Succeeded),
            json!({"token_id": token_id, "exit_code": 0}),
        ),
        20,
    );
    for event in [&before, &start, &finish] {
        publish_audit(&env, event).await;
    }
    audited(5).await;
    env.settle_all().await;
    assert_eq!(state().await, ("PENDING".into(), None));

    publish_audit(&env, &approval).await;
    audited(6).await;
    env.settle_all().await;
    assert_eq!(state().await, ("APPROVED".into(), Some("SUCCEEDED".into())));
    let executions: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT token_id, status FROM executions WHERE request_id = $1")
            .bind(request_id)
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(executions, [(token_id, "SUCCEEDED".to_string())]);
    let chain = wingman::store::chain::verify(&env.pool).await.unwrap();
    assert_eq!(chain.broken, None);
    env.stop().await;
}

/// An append names the head it follows, and the insert checks it: an append after a head
/// that is not the chain's — one a recorder remembered from a commit that then failed (ahead
/// of the chain), or from before another recorder appended (behind it) — writes nothing, and
/// the chain stays whole.
#[tokio::test]
async fn an_append_after_a_head_that_is_not_the_chains_writes_nothing() {
    use wingman::store::audit::{self, Appended, Head};

    let env = TestEnv::start().await;
    let id = RequestId::from_uuid(Uuid::new_v4());
    let first = audit(id, AuditKind::RequestReceived, None, json!({}));
    let second = audit(id, AuditKind::RequestExpired, None, json!({}));
    let mut connection = env.pool.acquire().await.unwrap();
    let append = |head: Head, event: Envelope<AuditRecord>| {
        let pool = env.pool.clone();
        async move {
            let mut connection = pool.acquire().await.unwrap();
            let mut transaction = audit::begin_locked(&mut connection).await.unwrap();
            let appended = audit::append(&mut transaction, &[event], &[true], &head)
                .await
                .unwrap();
            transaction.commit().await.unwrap();
            appended
        }
    };

    // Not empty, as a remembered head would have it: nothing written.
    let ahead = Head {
        seq: 1,
        hash: "1".repeat(64),
    };
    assert!(matches!(
        append(ahead, first.clone()).await,
        Appended::NotAtHead
    ));
    let Appended::Done { head: one, .. } = append(Head::genesis(), first).await else {
        panic!("the first row follows the genesis head");
    };
    assert_eq!(one.seq, 1);
    // Behind the chain (the genesis head again), beside it (right seq, wrong hash) and ahead
    // of it: nothing written.
    let beside = Head {
        seq: 1,
        hash: "0".repeat(64),
    };
    let ahead = Head {
        seq: 2,
        hash: one.hash.clone(),
    };
    for head in [Head::genesis(), beside, ahead] {
        let refused = append(head.clone(), second.clone()).await;
        assert!(
            matches!(refused, Appended::NotAtHead),
            "appended after {head:?}: {refused:?}"
        );
    }
    assert_eq!(audit::head(&mut connection).await.unwrap(), one);
    drop(connection);
    let Appended::Done { head: two, .. } = append(one, second).await else {
        panic!("the second row follows the first");
    };
    assert_eq!(two.seq, 2);
    let chain = wingman::store::chain::verify(&env.pool).await.unwrap();
    assert_eq!((chain.rows, chain.broken), (2, None));
    env.stop().await;
}

/// The recorder's common batch (requests received with intake's decision) is one statement
/// outside any transaction, which takes the chain's lock itself: played here with the lock
/// held from outside by a holder that appends a row of its own, as another recorder would. The
/// request's batch waits for the lock in that statement, then finds the head moved under it —
/// not the head it remembered — and appends after the holder's row: on the first delivery (no
/// retry, nothing dead-lettered), and the chain verifies.
#[tokio::test]
async fn a_request_batch_waits_for_the_chain_lock_and_appends_after_what_its_holder_wrote() {
    use wingman::store::audit::{self, Appended};

    let mut env = TestEnv::start().await;
    env.spawn_intake().await;
    env.spawn_recorder().await;
    // The recorder's first batch leaves it knowing the chain's head.
    submit_and_record(&env, 1, 1).await;
    env.settle_all().await;
    let delivered = recorder_deliveries(&env).await;

    let mut holder = env.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(audit::CHAIN_LOCK)
        .execute(&mut *holder)
        .await
        .unwrap();
    let head = audit::head(&mut holder).await.unwrap();
    let outsider = fresh_audit(
        RequestId::from_uuid(Uuid::new_v4()),
        AuditKind::RequestExpired,
        None,
        json!({}),
    );
    let appended = audit::append(&mut holder, &[outsider], &[true], &head)
        .await
        .unwrap();
    assert!(matches!(appended, Appended::Done { .. }), "{appended:?}");

    let id = Uuid::new_v4();
    env.submit_anonymous(&[id]).await;
    wait_for_waiters(&env, (1, 1)).await;
    let waiting: String = sqlx::query_scalar(
        "SELECT a.query FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND NOT l.granted AND a.datname = current_database()",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(
        waiting.contains("wingman_record_received("),
        "the batch waits for the lock in one statement, not in: {waiting}"
    );
    holder.commit().await.unwrap();
    env.wait_for_count("SELECT count(*) FROM approval_requests", None, 2)
        .await;
    env.settle_all().await;

    let seqs: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM audit_events WHERE request_id = $1 ORDER BY seq")
            .bind(id)
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(
        seqs,
        vec![4, 5],
        "the request's rows follow the holder's (seq 3)"
    );
    let chain = wingman::store::chain::verify(&env.pool).await.unwrap();
    assert_eq!((chain.rows, chain.broken), (5, None));
    assert_eq!(
        recorder_deliveries(&env).await - delivered,
        1,
        "the request's audit message was delivered again: recorded on a retry, not when the \
         lock came"
    );
    let letters = env
        .stream_messages("WINGMAN_DLQ", &format!("{}.dlq.recorder", env.prefix))
        .await;
    assert!(letters.is_empty(), "dead-lettered: {letters:?}");
    env.stop().await;
}

/// The one-statement batch checks the head it is given, as the append in a transaction
/// does: after a head that is not the chain's, it writes neither the audit rows nor the
/// requests they project to.
#[tokio::test]
async fn a_one_statement_batch_after_a_head_that_is_not_the_chains_writes_nothing() {
    use wingman::store::audit::{Append, Appended, Head};
    use wingman::store::requests::Received;

    let env = TestEnv::start().await;
    let id = Uuid::new_v4();
    let request =
        wingman::request::parse_request(request_json(id, None).to_string().as_bytes(), || {
            unreachable!("the request names its id")
        })
        .unwrap();
    let events = [audit(
        RequestId::from_uuid(id),
        AuditKind::RequestReceived,
        Some(Status::Received),
        json!({}),
    )];
    let received = [Received {
        request,
        at: chrono::Utc::now(),
        first_move: None,
    }];
    let mut connection = env.pool.acquire().await.unwrap();
    let rows = |pool: sqlx::PgPool| async move {
        sqlx::query_as::<_, (i64, i64)>(
            "SELECT (SELECT count(*) FROM audit_events), (SELECT count(*) FROM approval_requests)",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };

    let ahead = Head {
        seq: 1,
        hash: "1".repeat(64),
    };
    let refused = Append::after(&events, &[true], &ahead)
        .with_received(&mut connection, &received)
        .await
        .unwrap();
    assert!(matches!(refused, Appended::NotAtHead), "{refused:?}");
    assert_eq!(rows(env.pool.clone()).await, (0, 0));

    let done = Append::after(&events, &[true], &Head::genesis())
        .with_received(&mut connection, &received)
        .await
        .unwrap();
    let Appended::Done { head, .. } = done else {
        panic!("the first row follows the genesis head: {done:?}");
    };
    assert_eq!(head.seq, 1);
    assert_eq!(rows(env.pool.clone()).await, (1, 1));
    assert_eq!(env.status_of(id).await.as_deref(), Some("RECEIVED"));
    drop(connection);
    let chain = wingman::store::chain::verify(&env.pool).await.unwrap();
    assert_eq!((chain.rows, chain.broken), (1, None));
    env.stop().await;
}

/// The insert of a received request exists twice: in the one-statement batch
/// (`wingman_record_received`) and in the transaction (`requests::insert_received`). The same
/// request with the same decision, written each way, is the same row: every column, the
/// decision's fields and the command included — also when the one-statement batch takes the
/// validator scores from the decision's audit row in the batch instead of their own copy.
#[tokio::test]
async fn a_received_request_is_the_same_row_whether_recorded_in_one_statement_or_in_a_transaction()
{
    use wingman::store::audit::{Append, Appended, Head};
    use wingman::store::requests::{self, Move, Received, StatusFields};

    let env = TestEnv::start().await;
    let at = chrono::Utc::now();
    let received = |id: Uuid, source: Option<Uuid>| {
        let mut request = wingman::request::parse_request(
            request_json(id, Some("docker compose -p web down"))
                .to_string()
                .as_bytes(),
            || unreachable!("the request names its id"),
        )
        .unwrap();
        request.risk_level = Some(wingman::request::RiskLevel::High);
        Received {
            request,
            at,
            first_move: Some(Move {
                request_id: id,
                status: Status::AutoRejected,
                at: at + chrono::Duration::milliseconds(3),
                fields: StatusFields {
                    validator_scores: Some(json!({"composite": {"score": 12}})),
                    profile: Some("default".into()),
                    composite_score: Some(12),
                    validation_applied: Some(true),
                    rollout_bucket: Some(42),
                    expires_at: Some(at + chrono::Duration::hours(1)),
                    validation_decision: Some("AUTO_REJECTED".into()),
                    validation_error: Some(false),
                    shadow_decision: Some("PENDING".into()),
                    ..StatusFields::default()
                },
                event_id: source,
            }),
        }
    };
    let (one, other, from_rows) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let events = [
        audit(
            RequestId::from_uuid(one),
            AuditKind::RequestReceived,
            Some(Status::Received),
            json!({}),
        ),
        audit(
            RequestId::from_uuid(from_rows),
            AuditKind::RequestReceived,
            Some(Status::Received),
            json!({}),
        ),
        audit(
            RequestId::from_uuid(from_rows),
            AuditKind::RequestValidated,
            Some(Status::AutoRejected),
            json!({"validator_scores": {"composite": {"score": 12}}}),
        ),
    ];
    let mut connection = env.pool.acquire().await.unwrap();
    let done = Append::after(&events, &[true, true, true], &Head::genesis())
        .with_received(
            &mut connection,
            &[
                received(one, None),
                received(from_rows, Some(events[2].event_id)),
            ],
        )
        .await
        .unwrap();
    assert!(matches!(done, Appended::Done { .. }), "{done:?}");
    requests::insert_received(&mut connection, &[received(other, None)])
        .await
        .unwrap();
    drop(connection);

    let row = |id: Uuid| {
        let pool = env.pool.clone();
        async move {
            sqlx::query_scalar::<_, serde_json::Value>(
                "SELECT to_jsonb(r) - 'request_id' FROM approval_requests r WHERE request_id = $1",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let (in_one_statement, in_a_transaction) = (row(one).await, row(other).await);
    assert_eq!(in_one_statement["status"], "AUTO_REJECTED");
    assert_eq!(in_one_statement["shadow_decision"], "PENDING");
    assert_eq!(
        in_one_statement["validator_scores"],
        json!({"composite": {"score": 12}})
    );
    assert_eq!(in_one_statement, in_a_transaction);
    assert_eq!(row(from_rows).await, in_a_transaction);
    env.stop().await;
}

/// Two recorders side by side (replicas sharing the consumer) append to one chain: every
/// request is recorded once and the chain verifies. (It does not prove the head check in the
/// insert: without it a stale head meets the primary key and the batch is retried —
/// `an_append_after_a_head_that_is_not_the_chains_writes_nothing` proves the check.)
#[tokio::test]
async fn two_recorders_side_by_side_keep_one_chain() {
    let mut env = TestEnv::start().await;
    env.spawn_intake().await;
    env.spawn_recorder().await;
    env.spawn_recorder().await;
    submit_and_record(&env, 60, 60).await;
    env.settle_all().await;
    let chain = wingman::store::chain::verify(&env.pool).await.unwrap();
    assert_eq!((chain.rows, chain.broken), (120, None));
    let letters = env
        .stream_messages("WINGMAN_DLQ", &format!("{}.dlq.recorder", env.prefix))
        .await;
    assert!(letters.is_empty(), "dead-lettered: {letters:?}");
    env.stop().await;
}
