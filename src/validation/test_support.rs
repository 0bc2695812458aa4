//! Helpers for the validation unit tests: requests built through the public contract.

use serde_json::json;

use crate::envelope::RequestId;
use crate::request::{Request, parse_request};
use crate::validation::{Finding, Validation, Validator};

/// A request as a publisher would send it, parsed by `parse_request`.
///
/// # Panics
/// If the request is invalid (for example an unsupported command).
pub(crate) fn request(
    environment: &str,
    command: Option<&str>,
    title: &str,
    description: &str,
) -> Request {
    let mut value = json!({
        "requester": "agent-7",
        "environment": environment,
        "title": title,
        // An empty description is refused by intake; a dot stands for "nothing said".
        "description": if description.is_empty() { "." } else { description },
    });
    if let Some(command) = command {
        value["command"] = json!(command);
    }
    parse_request(value.to_string().as_bytes(), RequestId::generate)
        .unwrap_or_else(|error| panic!("invalid test request: {error}"))
}

/// Validates with the shipped defaults.
pub(crate) fn validate(
    environment: &str,
    command: Option<&str>,
    title: &str,
    description: &str,
) -> Validation {
    Validator::with_defaults().validate(&request(environment, command, title, description))
}

/// The codes of every finding, for assertions.
pub(crate) fn codes(validation: &Validation) -> Vec<String> {
    validation
        .findings()
        .map(|finding| finding.code.to_string())
        .collect()
}

/// The finding with this code.
///
/// # Panics
/// If there is none.
pub(crate) fn finding<'v>(validation: &'v Validation, code: &str) -> &'v Finding {
    validation
        .findings()
        .find(|finding| finding.code == code)
        .unwrap_or_else(|| panic!("no finding `{code}` in {:?}", codes(validation)))
}

/// A free-text description that explains itself well: reason, targets, rollback, checks.
pub(crate) const GOOD_DESCRIPTION: &str = "The api container leaks memory after the 2.3 release \
    and answers slowly since this morning (incident 4411). Restart the api container to free \
    the memory; nothing else is touched and no data is lost. Rollback: start it again with \
    docker start api if it does not come back. Verify: the /health endpoint answers 200 and the \
    error rate in Grafana drops within five minutes.";
