//! The state machine of a request: the words of its status events and of its row.
//!
//! The words are the seed's, so its monitoring SQL runs unchanged. They come in two families,
//! each kept in its own column of `approval_requests`, so the decision stays readable after
//! the request ran:
//! - the decision (`status`): `RECEIVED → AUTO_APPROVED | AUTO_REJECTED | PENDING`,
//!   `PENDING → APPROVED | REJECTED | EXPIRED | CANCELLED` (cancelled: withdrawn by the
//!   principal that submitted it, `wingman cancel`), `AUTO_REJECTED → APPROVED` (override);
//! - the execution (`execution_status`, NULL until the gateway starts):
//!   `NULL → EXECUTING → SUCCEEDED | FAILED | INDETERMINATE`, only on an APPROVED or
//!   AUTO_APPROVED row.
//!
//! A request's *state* is its execution word when it has one, else its decision; the
//! predecessors below are states. Status events on `wingman.status.<id>` use the same words.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Received,
    AutoApproved,
    AutoRejected,
    Pending,
    Approved,
    Rejected,
    Expired,
    Cancelled,
    Executing,
    Succeeded,
    Failed,
    Indeterminate,
}

impl Status {
    pub const ALL: [Status; 12] = [
        Status::Received,
        Status::AutoApproved,
        Status::AutoRejected,
        Status::Pending,
        Status::Approved,
        Status::Rejected,
        Status::Expired,
        Status::Cancelled,
        Status::Executing,
        Status::Succeeded,
        Status::Failed,
        Status::Indeterminate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Received => "RECEIVED",
            Status::AutoApproved => "AUTO_APPROVED",
            Status::AutoRejected => "AUTO_REJECTED",
            Status::Pending => "PENDING",
            Status::Approved => "APPROVED",
            Status::Rejected => "REJECTED",
            Status::Expired => "EXPIRED",
            Status::Cancelled => "CANCELLED",
            Status::Executing => "EXECUTING",
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::Indeterminate => "INDETERMINATE",
        }
    }

    /// The statuses a request may be in for a move to `self` to be allowed.
    pub fn predecessors(self) -> &'static [Status] {
        match self {
            Status::Received => &[],
            Status::AutoApproved | Status::AutoRejected | Status::Pending => &[Status::Received],
            Status::Approved => &[Status::Pending, Status::AutoRejected],
            Status::Rejected | Status::Expired | Status::Cancelled => &[Status::Pending],
            Status::Executing => &[Status::Approved, Status::AutoApproved],
            Status::Succeeded | Status::Failed | Status::Indeterminate => &[Status::Executing],
        }
    }

    /// The execution family (EXECUTING, SUCCEEDED, FAILED, INDETERMINATE), kept in
    /// `approval_requests.execution_status`; every other word is a decision, kept in `status`.
    pub fn is_execution(self) -> bool {
        matches!(
            self,
            Status::Executing | Status::Succeeded | Status::Failed | Status::Indeterminate
        )
    }

    /// The column of `approval_requests` that holds this word.
    pub fn column(self) -> &'static str {
        if self.is_execution() {
            "execution_status"
        } else {
            "status"
        }
    }

    pub fn can_follow(self, previous: Status) -> bool {
        self.predecessors().contains(&previous)
    }

    /// True when nothing more will happen to the request without a human starting it again.
    pub fn is_final(self, has_command: bool) -> bool {
        match self {
            Status::Rejected
            | Status::Expired
            | Status::Cancelled
            | Status::Succeeded
            | Status::Failed
            | Status::Indeterminate => true,
            Status::Approved | Status::AutoApproved => !has_command,
            Status::Received | Status::Pending | Status::AutoRejected | Status::Executing => false,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "unknown status `{0}` (expected one of RECEIVED, AUTO_APPROVED, AUTO_REJECTED, PENDING, APPROVED, REJECTED, EXPIRED, CANCELLED, EXECUTING, SUCCEEDED, FAILED, INDETERMINATE)"
)]
pub struct UnknownStatus(String);

impl FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let wanted = text.trim().to_ascii_uppercase();
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == wanted)
            .ok_or_else(|| UnknownStatus(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_may_approve_an_auto_rejected_request() {
        assert!(Status::Approved.can_follow(Status::AutoRejected));
        assert!(!Status::Executing.can_follow(Status::AutoRejected));
    }

    #[test]
    fn nothing_executes_without_an_approval() {
        for status in Status::ALL {
            let allowed = Status::Executing.can_follow(status);
            assert_eq!(
                allowed,
                matches!(status, Status::Approved | Status::AutoApproved)
            );
        }
    }

    #[test]
    fn status_words_round_trip_through_text_and_json() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>().unwrap(), status);
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{status}\""));
        }
        assert!("DONE".parse::<Status>().is_err());
    }

    #[test]
    fn a_decision_never_follows_an_execution_and_an_execution_follows_only_a_decision_to_run() {
        for status in Status::ALL {
            for previous in status.predecessors() {
                if status.is_execution() {
                    assert!(
                        previous.is_execution()
                            || matches!(previous, Status::Approved | Status::AutoApproved),
                        "{status} after {previous}"
                    );
                } else {
                    assert!(!previous.is_execution(), "{status} after {previous}");
                }
            }
        }
    }
}
