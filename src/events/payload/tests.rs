//! Each payload is pinned to the JSON its stage wrote with `json!` before it was typed (the
//! audit chain hashes that JSON, and rows already stored must keep reading), and every shape
//! written before, or made by hand in the recorder's tests, still reads.

use serde_json::json;

use super::*;
use crate::validation::test_support::{GOOD_DESCRIPTION, request};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn token() -> Uuid {
    Uuid::parse_str("0193a5e0-0000-7000-8000-0000000000aa").unwrap()
}

/// The payload writes exactly `old`, and `old` reads back to what writes it again.
fn pinned<P: Payload + std::fmt::Debug + PartialEq>(payload: &P, old: Value) {
    assert_eq!(payload.to_data(), old, "what {:?} writes", P::KIND);
    let read = P::from_data(&old).unwrap_or_else(|error| panic!("{:?}: {error}", P::KIND));
    assert_eq!(read.to_data(), old, "what {:?} reads back", P::KIND);
}

#[test]
fn request_received_is_the_request_under_its_key() {
    let request = request(
        "prd",
        Some("docker compose -p shop down"),
        "Take the shop down for the migration",
        GOOD_DESCRIPTION,
    );
    let received = RequestReceived {
        request: request.clone(),
    };
    // Before: `json!({ "request": request })`.
    pinned(&received, json!({ "request": request }));
    assert_eq!(
        RequestReceived::from_data(&received.to_data()).unwrap(),
        received
    );
    assert!(RequestReceived::from_data(&json!({})).is_err());
}

#[test]
fn request_validated_in_the_cohort_writes_every_key_and_no_shadow() {
    let scores = json!({
        "code_scanner": {"score": 100, "findings": []},
        "composite": {"score": 91, "profile": "operational", "decision": "AUTO_APPROVED",
                      "reasons": ["score 91 ≥ 85 (operational)"]},
    });
    let validated = RequestValidated {
        validator_scores: Some(scores.clone()),
        profile: Some(Profile::Operational),
        composite_score: Some(91),
        reasons: Some(vec!["score 91 ≥ 85 (operational)".into()]),
        validation_applied: Some(true),
        validation_decision: Some(Status::AutoApproved),
        validation_error: Some(false),
        error: None,
        rollout_bucket: Some(7),
        rollout: "enabled, 100 %".into(),
        expires_at: None,
        shadow: None,
    };
    pinned(
        &validated,
        json!({
            "validator_scores": scores,
            "profile": "operational",
            "composite_score": 91,
            "reasons": ["score 91 ≥ 85 (operational)"],
            "validation_applied": true,
            "validation_decision": "AUTO_APPROVED",
            "validation_error": false,
            "error": null,
            "rollout_bucket": 7,
            "rollout": "enabled, 100 %",
            "expires_at": null,
        }),
    );
}

#[test]
fn request_validated_outside_the_cohort_writes_the_four_shadow_keys_null_when_it_failed() {
    let scored = RequestValidated {
        validator_scores: None,
        profile: None,
        composite_score: None,
        reasons: None,
        validation_applied: Some(false),
        validation_decision: None,
        validation_error: Some(false),
        error: None,
        rollout_bucket: Some(63),
        rollout: "enabled, 10 %".into(),
        expires_at: Some(at("2026-12-04T15:00:00.250Z")),
        shadow: Some(Shadow {
            shadow_decision: Some(Status::AutoRejected),
            shadow_score: Some(20),
            shadow_profile: Some(Profile::Deployment),
            shadow_reasons: Some(vec!["critical finding: mass removal".into()]),
        }),
    };
    let old = json!({
        "validator_scores": null,
        "profile": null,
        "composite_score": null,
        "reasons": null,
        "validation_applied": false,
        "validation_decision": null,
        "validation_error": false,
        "error": null,
        "rollout_bucket": 63,
        "rollout": "enabled, 10 %",
        "expires_at": "2026-12-04T15:00:00.250Z",
        "shadow_decision": "AUTO_REJECTED",
        "shadow_score": 20,
        "shadow_profile": "deployment",
        "shadow_reasons": ["critical finding: mass removal"],
    });
    pinned(&scored, old.clone());
    let read = RequestValidated::from_data(&old).unwrap();
    assert_eq!(read.shadow, scored.shadow);
    // JSON null stays JSON null (the column held it); an absent key is no value at all.
    assert_eq!(read.validator_scores, Some(Value::Null));

    let failed = RequestValidated {
        validation_error: Some(true),
        error: Some("a validator panicked".into()),
        shadow: Some(Shadow {
            shadow_decision: None,
            shadow_score: None,
            shadow_profile: None,
            shadow_reasons: None,
        }),
        ..scored
    };
    let old = json!({
        "validator_scores": null,
        "profile": null,
        "composite_score": null,
        "reasons": null,
        "validation_applied": false,
        "validation_decision": null,
        "validation_error": true,
        "error": "a validator panicked",
        "rollout_bucket": 63,
        "rollout": "enabled, 10 %",
        "expires_at": "2026-12-04T15:00:00.250Z",
        "shadow_decision": null,
        "shadow_score": null,
        "shadow_profile": null,
        "shadow_reasons": null,
    });
    pinned(&failed, old.clone());
    assert_eq!(
        RequestValidated::from_data(&old).unwrap().shadow,
        failed.shadow,
        "a failed shadow run is still a shadow"
    );
}

#[test]
fn approval_decided_writes_a_null_note_when_there_is_none() {
    let decided = ApprovalDecided {
        decided_by: Some("telegram:42, cli:ben".into()),
        decided_at: Some(at("2026-12-04T14:00:00.123456Z")),
        note: None,
        false_positive: Some(true),
        overrides_auto_reject: true,
        approvers: vec!["telegram:42".into(), "cli:ben".into()],
    };
    pinned(
        &decided,
        json!({
            "decided_by": "telegram:42, cli:ben",
            "decided_at": "2026-12-04T14:00:00.123456Z",
            "note": null,
            "false_positive": true,
            "overrides_auto_reject": true,
            "approvers": ["telegram:42", "cli:ben"],
        }),
    );
    let noted = ApprovalDecided {
        note: Some("checked the runbook".into()),
        false_positive: Some(false),
        overrides_auto_reject: false,
        ..decided
    };
    assert_eq!(noted.to_data()["note"], "checked the runbook");
}

#[test]
fn request_cancelled_names_the_principal_twice() {
    let cancelled = RequestCancelled {
        cancelled_by: "nats:ops".into(),
        decided_by: Some("nats:ops".into()),
        decided_at: Some(at("2026-12-04T14:00:00Z")),
        note: Some("wrong container".into()),
        environment: Some(Environment::Prd),
    };
    pinned(
        &cancelled,
        json!({
            "cancelled_by": "nats:ops",
            "decided_by": "nats:ops",
            "decided_at": "2026-12-04T14:00:00Z",
            "note": "wrong container",
            "environment": "prd",
        }),
    );
}

#[test]
fn request_expired_is_its_deadline() {
    pinned(
        &RequestExpired {
            expires_at: Some(at("2026-12-04T14:00:00Z")),
        },
        json!({ "expires_at": "2026-12-04T14:00:00Z" }),
    );
}

#[test]
fn execution_started_writes_null_for_no_probe_and_no_project() {
    let started = ExecutionStarted {
        token_id: Some(token()),
        operation: "container_restart".into(),
        argv: Some(vec!["container".into(), "restart".into(), "api".into()]),
        environment: Some(Environment::Test),
        approvers: vec!["validators".into()],
        resolved: json!({"kind": "containers", "targets": [
            {"typed": "api", "resolution": "found", "id": "abc", "name": "api",
             "project": null, "service": null}
        ]}),
        probe: Value::Null,
        compose_project_directory: None,
        compose_files: Vec::new(),
        env_file: None,
    };
    pinned(
        &started,
        json!({
            "token_id": "0193a5e0-0000-7000-8000-0000000000aa",
            "operation": "container_restart",
            "argv": ["container", "restart", "api"],
            "environment": "test",
            "approvers": ["validators"],
            "resolved": {"kind": "containers", "targets": [
                {"typed": "api", "resolution": "found", "id": "abc", "name": "api",
                 "project": null, "service": null}
            ]},
            "probe": null,
            "compose_project_directory": null,
        }),
    );
}

#[test]
fn execution_started_of_a_compose_up_records_the_digest_of_each_registered_file() {
    let digest = |path: &str, sha256: Option<&str>, error: Option<&str>| FileDigest {
        path: path.into(),
        sha256: sha256.map(str::to_string),
        error: error.map(str::to_string),
    };
    let started = ExecutionStarted {
        token_id: Some(token()),
        operation: "compose_up".into(),
        argv: Some(vec![
            "compose".into(),
            "-p".into(),
            "shop".into(),
            "up".into(),
        ]),
        environment: Some(Environment::Prd),
        approvers: vec!["anna".into()],
        resolved: json!({"kind": "compose", "members": []}),
        probe: Value::Null,
        compose_project_directory: Some("/srv/shop".into()),
        compose_files: vec![
            digest("/srv/shop/docker-compose.yml", Some(&"ab".repeat(32)), None),
            digest(
                "/srv/shop/prd.yml",
                None,
                Some("No such file or directory (os error 2)"),
            ),
        ],
        env_file: Some(digest("/srv/shop/.env.prd", Some(&"cd".repeat(32)), None)),
    };
    pinned(
        &started,
        json!({
            "token_id": "0193a5e0-0000-7000-8000-0000000000aa",
            "operation": "compose_up",
            "argv": ["compose", "-p", "shop", "up"],
            "environment": "prd",
            "approvers": ["anna"],
            "resolved": {"kind": "compose", "members": []},
            "probe": null,
            "compose_project_directory": "/srv/shop",
            "compose_files": [
                {"path": "/srv/shop/docker-compose.yml", "sha256": "ab".repeat(32)},
                {"path": "/srv/shop/prd.yml", "sha256": null,
                 "error": "No such file or directory (os error 2)"},
            ],
            "env_file": {"path": "/srv/shop/.env.prd", "sha256": "cd".repeat(32)},
        }),
    );
    // A record from before the digests reads as "none recorded".
    let before = ExecutionStarted::from_data(&json!({
        "token_id": token(), "operation": "compose_up", "compose_project_directory": "/srv/shop"
    }))
    .unwrap();
    assert_eq!((before.compose_files, before.env_file), (Vec::new(), None));
}

#[test]
fn execution_finished_and_indeterminate_keep_their_two_shapes() {
    let finished = ExecutionFinished {
        token_id: Some(token()),
        operation: "container_stop".into(),
        exit_code: Some(1),
        duration_ms: None,
        summary: "1 of 2 containers stopped".into(),
        output: Some(String::new()),
        targets: vec![TargetResult {
            name: "api".into(),
            outcome: "not found".into(),
            ok: false,
        }],
    };
    pinned(
        &finished,
        json!({
            "token_id": "0193a5e0-0000-7000-8000-0000000000aa",
            "operation": "container_stop",
            "exit_code": 1,
            "duration_ms": null,
            "summary": "1 of 2 containers stopped",
            "output": "",
            "targets": [{"name": "api", "outcome": "not found", "ok": false}],
        }),
    );
    let indeterminate = ExecutionIndeterminate {
        token_id: Some(token()),
        error: Some("the claim is finished but holds no result".into()),
    };
    let old = json!({
        "token_id": "0193a5e0-0000-7000-8000-0000000000aa",
        "error": "the claim is finished but holds no result",
    });
    pinned(&indeterminate, old.clone());
    assert_eq!(
        ExecutionEnd::from_record(Status::Indeterminate, &old).unwrap(),
        ExecutionEnd::Indeterminate(indeterminate)
    );
    assert_eq!(
        ExecutionEnd::from_record(Status::Failed, &finished.to_data()).unwrap(),
        ExecutionEnd::Ran(finished)
    );
}

/// The recorder's own tests publish records with a few keys; they read, the rest absent.
#[test]
fn hand_made_records_with_a_few_keys_read() {
    let started = ExecutionStarted::from_data(&json!({
        "token_id": token(), "environment": "test", "operation": "container_restart", "argv": []
    }))
    .unwrap();
    assert_eq!(
        (started.token_id, started.environment, started.argv),
        (Some(token()), Some(Environment::Test), Some(Vec::new()))
    );
    let end = ExecutionEnd::from_record(
        Status::Failed,
        &json!({"token_id": token(), "exit_code": 1}),
    )
    .unwrap();
    let ExecutionEnd::Ran(ran) = end else {
        panic!("a FAILED record ran")
    };
    assert_eq!(
        (ran.exit_code, ran.output, ran.duration_ms),
        (Some(1), None, None)
    );
    let validated =
        RequestValidated::from_data(&json!({"profile": "operational", "composite_score": 61}))
            .unwrap();
    assert_eq!(
        (
            validated.validator_scores,
            validated.shadow,
            validated.validation_applied
        ),
        (None, None, None)
    );
    assert_eq!(
        RequestExpired::from_data(&json!({})).unwrap().expires_at,
        None
    );
    // A key of another type is an error, not a silent NULL.
    assert!(ApprovalDecided::from_data(&json!({"decided_at": 5})).is_err());
}
