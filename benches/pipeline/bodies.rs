//! The requests the benchmark submits: an instruction the validator auto-approves, and the
//! same with a command the gateway runs.

use serde_json::{Value, json};
use uuid::Uuid;

/// A well-explained instruction approval (no command): the validator auto-approves it.
pub fn instruction(id: Uuid, requester: &str, environment: &str, container: &str) -> Value {
    json!({
        "request_id": id, "requester": requester, "environment": environment,
        "title": format!("Restart the container {container} to reload its config"),
        "description": format!("{container} caches its config at start and the log level changed, so it must restart. \
            Only {container} is touched. Rollback: docker start {container}. Verify: docker inspect shows {container} running."),
    })
}

/// The same request with the command: auto-approved in dev, then executed by the gateway.
pub fn restart(id: Uuid, requester: &str, container: &str) -> Value {
    let mut body = instruction(id, requester, "dev", container);
    body["command"] = Value::String(format!("docker restart {container}"));
    body
}
