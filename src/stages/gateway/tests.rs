//! Unit tests of the gateway's pure decisions: its admission of a job (every refusal code it
//! can answer before claiming anything) and the claim state machine (a token runs once).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::*;
use crate::envelope::RequestId;
use crate::principal::Principal;
use crate::request::parse_request;
use crate::token::{Claims, SigningKey, generate_keypair, mint};

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_772_000_000, 0).expect("a valid fixed time")
}

/// A request in `environment` carrying `line`, as intake parsed it.
fn request(environment: &str, line: &str) -> Request {
    let json = serde_json::json!({
        "request_id": Uuid::now_v7(),
        "requester": "agent-test",
        "environment": environment,
        "title": "Restart the api container after a config change",
        "description": "The api container must reload its config. Rollback: start it again.",
        "command": line,
    });
    parse_request(json.to_string().as_bytes(), RequestId::generate).expect("a valid request")
}

/// The claims the authority mints for `request`, valid from `now()` for ten minutes.
fn claims_for(request: &Request) -> Claims {
    let operation = &request.command.as_ref().expect("a command").operation;
    Claims {
        token_id: Uuid::now_v7(),
        request_id: request.request_id,
        environment: request.environment,
        argv_hash: operation.argv_hash(),
        approvers: vec!["ops-bob".into()],
        requester: "agent-test".into(),
        issued_at: now(),
        expires_at: now() + chrono::Duration::minutes(10),
        holder: None,
    }
}

fn job(request: Request, key: &SigningKey, claims: &Claims) -> ExecJob {
    ExecJob {
        token: mint(key, claims).expect("mint"),
        token_id: claims.token_id,
        expires_at: claims.expires_at,
        request,
    }
}

/// The code the gateway answers `job` with at `at`, presented by `presenter`, on a gateway
/// with the shipped policy that may act on `allowed`.
fn code_at(
    job: &ExecJob,
    presenter: Presenter<'_>,
    verify_key: &VerifyKey,
    allowed: &[Environment],
    at: DateTime<Utc>,
) -> &'static str {
    match admit(
        job,
        presenter,
        verify_key,
        allowed,
        &Policy::default_policy(),
        at,
    ) {
        Ok(_) => "admitted",
        Err(refusal) => refusal.code,
    }
}

fn code(job: &ExecJob, presenter: Presenter<'_>, verify_key: &VerifyKey) -> &'static str {
    code_at(job, presenter, verify_key, &Environment::ALL, now())
}

#[test]
fn a_job_whose_token_was_minted_for_it_is_admitted_with_its_operation_and_claims() {
    let (key, verify_key) = generate_keypair();
    let request = request("prd", "docker restart api");
    let claims = claims_for(&request);
    let job = job(request, &key, &claims);
    let admitted = admit(
        &job,
        Presenter::Pipeline,
        &verify_key,
        &[Environment::Prd],
        &Policy::default_policy(),
        now(),
    )
    .expect("admitted");
    assert_eq!(admitted.claims.token_id, claims.token_id);
    assert_eq!(admitted.operation.name(), "container_restart");
}

#[test]
fn a_job_without_a_command_or_with_one_that_does_not_match_is_refused() {
    let (key, verify_key) = generate_keypair();
    let with_command = request("test", "docker restart api");
    let claims = claims_for(&with_command);

    let mut no_command = job(with_command.clone(), &key, &claims);
    no_command.request.command = None;
    assert_eq!(
        code(&no_command, Presenter::Pipeline, &verify_key),
        "no_command"
    );

    let mut unparseable = job(with_command.clone(), &key, &claims);
    unparseable.request.command.as_mut().unwrap().line = "docker restart api; rm -rf /".into();
    assert_eq!(
        code(&unparseable, Presenter::Pipeline, &verify_key),
        "unparseable_command"
    );

    // The line says restart; the operation the job carries says stop.
    let stop = request("test", "docker stop api");
    let mut mismatch = job(with_command, &key, &claims);
    mismatch.request.command.as_mut().unwrap().operation = stop.command.unwrap().operation;
    assert_eq!(
        code(&mismatch, Presenter::Pipeline, &verify_key),
        "command_mismatch"
    );
}

#[test]
fn a_token_that_is_not_for_exactly_this_job_now_is_refused_with_its_code() {
    let (key, verify_key) = generate_keypair();
    let request = request("prd", "docker restart api");
    let claims = claims_for(&request);
    let good = job(request.clone(), &key, &claims);

    // Signed by another key (a forged authority).
    let (other_key, _) = generate_keypair();
    let forged = job(request.clone(), &other_key, &claims);
    assert_eq!(
        code(&forged, Presenter::Pipeline, &verify_key),
        "bad_signature"
    );

    let mut garbage = good.clone();
    garbage.token = "v4.public.not-a-token".into();
    assert_eq!(
        code(&garbage, Presenter::Pipeline, &verify_key),
        "malformed"
    );

    let late = now() + chrono::Duration::minutes(11);
    let early = now() - chrono::Duration::minutes(5);
    let all = Environment::ALL;
    assert_eq!(
        code_at(&good, Presenter::Pipeline, &verify_key, &all, late),
        "expired"
    );
    assert_eq!(
        code_at(&good, Presenter::Pipeline, &verify_key, &all, early),
        "not_yet_valid"
    );
    assert_eq!(
        code_at(
            &good,
            Presenter::Pipeline,
            &verify_key,
            &[Environment::Dev],
            now()
        ),
        "environment_not_allowed"
    );

    // The token of one request presented with another (same command, same environment).
    let mut other_request = good.clone();
    other_request.request.request_id = RequestId::generate();
    assert_eq!(
        code(&other_request, Presenter::Pipeline, &verify_key),
        "wrong_request"
    );

    // A test token presented for the same request claimed to be in prd.
    let test_request = Request {
        environment: Environment::Test,
        ..request.clone()
    };
    let test_job = job(
        test_request,
        &key,
        &claims_for(&Request {
            environment: Environment::Test,
            ..request.clone()
        }),
    );
    let mut as_prd = test_job;
    as_prd.request.environment = Environment::Prd;
    assert_eq!(
        code(&as_prd, Presenter::Pipeline, &verify_key),
        "wrong_environment"
    );

    // The token of `restart api` presented with `stop api`.
    let mut other_command = good.clone();
    other_command.request.command = request_for_line(&request, "docker stop api").command;
    assert_eq!(
        code(&other_command, Presenter::Pipeline, &verify_key),
        "command_mismatch"
    );
}

fn request_for_line(request: &Request, line: &str) -> Request {
    Request {
        command: self::request(request.environment.as_str(), line).command,
        ..request.clone()
    }
}

#[test]
fn an_automatic_token_runs_only_from_the_pipeline_and_a_manual_one_only_for_its_holder() {
    let (key, verify_key) = generate_keypair();
    let request = request("prd", "docker restart api");
    let alice = Principal::ApiKey("alice".into());
    let mallory = Principal::ApiKey("mallory".into());

    let automatic = job(request.clone(), &key, &claims_for(&request));
    assert_eq!(
        code(&automatic, Presenter::Pipeline, &verify_key),
        "admitted"
    );
    assert_eq!(
        code(&automatic, Presenter::Client(&alice), &verify_key),
        "automatic_token"
    );

    let manual_claims = Claims {
        holder: Some(alice.clone()),
        ..claims_for(&request)
    };
    let manual = job(request, &key, &manual_claims);
    assert_eq!(
        code(&manual, Presenter::Client(&alice), &verify_key),
        "admitted"
    );
    assert_eq!(
        code(&manual, Presenter::Pipeline, &verify_key),
        "manual_token"
    );
    assert_eq!(
        code(&manual, Presenter::Client(&mallory), &verify_key),
        "not_the_holder"
    );
}

#[test]
fn an_operation_the_policy_forbids_in_the_environment_is_refused_even_with_a_valid_token() {
    let (key, verify_key) = generate_keypair();
    // The shipped policy: no kill in production, allowed in test.
    let prd = request("prd", "docker kill api");
    let refused = job(prd.clone(), &key, &claims_for(&prd));
    let refusal = admit(
        &refused,
        Presenter::Pipeline,
        &verify_key,
        &Environment::ALL,
        &Policy::default_policy(),
        now(),
    )
    .unwrap_err();
    assert_eq!(refusal.code, "policy");
    assert!(
        refusal.reason.contains("container_kill"),
        "{}",
        refusal.reason
    );
    let test = request("test", "docker kill api");
    assert_eq!(
        code(
            &job(test.clone(), &key, &claims_for(&test)),
            Presenter::Pipeline,
            &verify_key
        ),
        "admitted"
    );
}

fn claim(job: &str, state: ClaimState, started_at: DateTime<Utc>) -> ExecClaim {
    ExecClaim {
        state,
        request_id: RequestId::generate(),
        job: job.into(),
        started_at,
        result: None,
        duration_ms: None,
    }
}

#[test]
fn a_claimed_token_runs_once_whatever_presents_it_again() {
    let lease = Duration::from_secs(150);
    let started = now();
    // Another job with the same token: refused, however the first one ended.
    for state in [ClaimState::Started, ClaimState::Finished] {
        assert_eq!(
            existing_claim(&claim("job-1", state, started), "job-2", lease, now()),
            ExistingClaim::Reused
        );
    }
    // The same job redelivered: its outcome again once finished …
    let finished = claim("job-1", ClaimState::Finished, started);
    assert_eq!(
        existing_claim(&finished, "job-1", lease, now()),
        ExistingClaim::Finished
    );
    // … a retry while it may still run in another copy …
    let running = claim("job-1", ClaimState::Started, started);
    let within = now() + chrono::Duration::seconds(149);
    assert_eq!(
        existing_claim(&running, "job-1", lease, within),
        ExistingClaim::MayStillRun
    );
    // … and INDETERMINATE once the lease is over: never run a second time.
    let after = now() + chrono::Duration::seconds(151);
    assert_eq!(
        existing_claim(&running, "job-1", lease, after),
        ExistingClaim::Indeterminate
    );
}

#[test]
fn a_retry_while_the_claim_may_still_run_comes_back_once_the_lease_is_over() {
    let lease = Duration::from_secs(150);
    let running = claim("job-1", ClaimState::Started, now());
    // Redelivered after the consumer's ack wait (120 s): back once the lease has run out, and
    // then past it, so that delivery decides.
    let redelivered = now() + chrono::Duration::seconds(120);
    let after = super::lease_left(&running, lease, redelivered);
    assert!(
        after > Duration::from_secs(30) && after <= Duration::from_secs(31),
        "{after:?}"
    );
    assert_eq!(
        existing_claim(
            &running,
            "job-1",
            lease,
            redelivered + chrono::Duration::from_std(after).unwrap()
        ),
        ExistingClaim::Indeterminate
    );
    // Past the lease already (a clock step): retried soon, not never.
    let late = super::lease_left(&running, lease, now() + chrono::Duration::seconds(200));
    assert!(
        late > Duration::ZERO && late < Duration::from_secs(1),
        "{late:?}"
    );
}
