use serde_json::json;

use super::*;

fn parse(value: Value) -> Result<Request, InvalidRequest> {
    parse_request(value.to_string().as_bytes(), RequestId::generate)
}

fn valid() -> Value {
    json!({
        "requester": "agent-7",
        "environment": "prd",
        "command": "docker compose -f docker-compose.prd.yml -p wingman-prd down",
        "title": "Stop the PRD stack for the gateway deployment",
        "description": "Stage A of the runbook. Rollback: up -d. Verify: health endpoint.",
    })
}

fn with(field: &str, value: Value) -> Value {
    let mut request = valid();
    request[field] = value;
    request
}

#[test]
fn a_complete_request_parses_with_its_typed_command() {
    let request = parse(valid()).unwrap();
    assert_eq!(request.environment, Environment::Prd);
    assert_eq!(request.requester, "agent-7");
    let command = request.command.unwrap();
    assert_eq!(command.operation.name(), "compose_down");
}

#[test]
fn a_request_without_a_command_is_an_instruction_approval() {
    let mut request = valid();
    request.as_object_mut().unwrap().remove("command");
    assert!(parse(request).unwrap().command.is_none());
}

#[test]
fn the_given_request_id_is_kept_and_a_missing_one_comes_from_the_fallback() {
    let id = "0190a6f2-7c4e-7a51-9d2b-5c1f3e8a9b10";
    let request = parse(with("request_id", json!(id))).unwrap();
    assert_eq!(request.request_id.to_string(), id);
    let fallback = RequestId::generate();
    let request = parse_request(valid().to_string().as_bytes(), || fallback).unwrap();
    assert_eq!(request.request_id, fallback);
}

#[test]
fn each_required_field_is_named_when_missing() {
    for field in ["requester", "environment", "title", "description"] {
        let mut request = valid();
        request.as_object_mut().unwrap().remove(field);
        let error = parse(request).unwrap_err();
        assert_eq!(error.field.as_deref(), Some(field));
        assert_eq!(error.code, "missing_field");
        assert_eq!(error.to_string(), format!("field `{field}`: is required"));
    }
}

#[test]
fn an_unknown_field_is_named() {
    let error = parse(with("priority", json!("urgent"))).unwrap_err();
    assert_eq!(error.code, "unknown_field");
    assert!(
        error
            .to_string()
            .starts_with("field `priority`: unknown field"),
        "{error}"
    );
}

#[test]
fn oversized_fields_say_how_long_they_are() {
    let error = parse(with("title", json!("x".repeat(201)))).unwrap_err();
    assert_eq!(
        error.to_string(),
        "field `title`: too long (201 characters, at most 200)"
    );
    let error = parse(with(
        "description",
        json!("y".repeat(MAX_DESCRIPTION_BYTES + 1)),
    ))
    .unwrap_err();
    assert_eq!(error.code, "too_long");
    assert_eq!(error.field.as_deref(), Some("description"));
}

#[test]
fn wrong_types_empty_text_and_bad_values_are_explained() {
    let error = parse(with("title", json!(42))).unwrap_err();
    assert_eq!(
        error.to_string(),
        "field `title`: expected a string, found a number"
    );
    let error = parse(with("requester", json!("   "))).unwrap_err();
    assert_eq!(error.to_string(), "field `requester`: must not be empty");
    let error = parse(with("environment", json!("staging"))).unwrap_err();
    assert_eq!(
        error.to_string(),
        "field `environment`: unknown environment `staging` (expected dev, test or prd)"
    );
    let error = parse(with("risk_level", json!("extreme"))).unwrap_err();
    assert_eq!(error.field.as_deref(), Some("risk_level"));
    let error = parse(with("request_id", json!("not-a-uuid"))).unwrap_err();
    assert_eq!(
        error.to_string(),
        "field `request_id`: `not-a-uuid` is not a UUID"
    );
}

#[test]
fn a_command_the_gateway_cannot_perform_is_refused_at_once() {
    let error = parse(with("command", json!("docker stop api; rm -rf /"))).unwrap_err();
    assert_eq!(error.field.as_deref(), Some("command"));
    assert_eq!(error.code, "invalid_command");
    let error = parse(with("command", json!("kubectl delete ns prod"))).unwrap_err();
    assert_eq!(error.code, "invalid_command");
}

#[test]
fn a_rejection_keeps_the_request_id_so_the_publisher_hears_of_it() {
    let id = "0190a6f2-7c4e-7a51-9d2b-5c1f3e8a9b10";
    let mut request = with("request_id", json!(id));
    request.as_object_mut().unwrap().remove("title");
    let error = parse(request).unwrap_err();
    assert_eq!(error.request_id.unwrap().to_string(), id);
}

#[test]
fn non_objects_and_broken_json_are_refused() {
    let error = parse_request(b"{\"requester\":", RequestId::generate).unwrap_err();
    assert_eq!(error.code, "invalid_json");
    let error = parse_request(b"[1,2]", RequestId::generate).unwrap_err();
    assert_eq!(error.code, "not_an_object");
    let huge = vec![b' '; MAX_MESSAGE_BYTES + 1];
    assert_eq!(
        parse_request(&huge, RequestId::generate).unwrap_err().code,
        "too_large"
    );
}

#[test]
fn the_public_json_round_trips() {
    let request = parse(valid()).unwrap();
    let again = parse(request.to_public_json()).unwrap();
    assert_eq!(again, request);
}

#[test]
fn execution_is_automatic_unless_manual_is_asked_for_and_round_trips() {
    assert_eq!(parse(valid()).unwrap().execution, Execution::Automatic);
    assert_eq!(
        parse(with("execution", json!("automatic")))
            .unwrap()
            .execution,
        Execution::Automatic
    );
    let manual = parse(with("execution", json!("manual"))).unwrap();
    assert_eq!(manual.execution, Execution::Manual);
    assert_eq!(manual.to_public_json()["execution"], "manual");
    assert_eq!(parse(manual.to_public_json()).unwrap(), manual);
    // The default leaves the public form as it was before the field existed.
    let automatic = parse(valid()).unwrap().to_public_json();
    assert!(automatic.get("execution").is_none());
}

#[test]
fn a_bad_execution_is_refused_naming_the_field() {
    let error = parse(with("execution", json!("later"))).unwrap_err();
    assert_eq!(error.field.as_deref(), Some("execution"));
    assert_eq!(
        error.to_string(),
        "field `execution`: unknown execution `later` (expected automatic or manual)"
    );
    let error = parse(with("execution", json!(true))).unwrap_err();
    assert_eq!(
        (error.field.as_deref(), error.code),
        (Some("execution"), "wrong_type")
    );
    let mut instruction = with("execution", json!("manual"));
    instruction.as_object_mut().unwrap().remove("command");
    let error = parse(instruction).unwrap_err();
    assert_eq!(error.field.as_deref(), Some("execution"));
    assert!(error.problem.contains("needs a `command`"), "{error}");
}
