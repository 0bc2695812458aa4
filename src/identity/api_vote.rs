//! Votes through the HTTP API (JSON routes and the web console), in the name of a `decide` key.
//!
//! The API worker checks the key (`crate::access`), then asks the approvals worker on
//! `wingman.api.decisions`, a subject only the API's NATS user may publish (`nats/auth.conf`):
//! the subject proves the key was checked, and the vote names the key, never a person. The
//! approvals worker resolves the key to an approver with
//! [`crate::identity::roster::Roster::by_api_key`] and applies the
//! same rules as every other channel ([`crate::approval::Desk::vote_api`]).
//!
//! [`VoteAnswer`] is what the approvals worker says back (`crate::approval::answer` makes it): applied, counted (prd needs another
//! approver), or refused with the rule (and, when someone else was first, who).

use serde::{Deserialize, Serialize};

use crate::envelope::RequestId;
use crate::identity::Verdict;
use crate::status::Status;

/// Longest reason a vote may carry (the same cut as every note in the audit trail).
pub const MAX_NOTE: usize = 2000;

/// What travels on `wingman.api.decisions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiVote {
    /// The name of the `decide` key the API authenticated: the proven identity.
    pub key_name: String,
    pub request_id: RequestId,
    pub verdict: Verdict,
    pub note: Option<String>,
}

/// What a vote did, as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The request is decided now.
    Applied,
    /// Recorded; another approver is needed (prd).
    Counted,
    /// Changed nothing; `code` names the rule.
    Refused,
}

/// The approvals worker's answer to an [`ApiVote`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteAnswer {
    pub outcome: Outcome,
    /// For a human: "APPROVED by alice", "already APPROVED by alice at …".
    pub message: String,
    /// The rule that refused it (`own_request`, `already_decided`, `not_authorized`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The decision now standing (applied, or already taken by someone else).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Who took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
}

impl VoteAnswer {
    /// An answer for a vote that never reached the rules (undecodable, a bad note).
    pub fn invalid(code: &str, message: String) -> Self {
        Self {
            outcome: Outcome::Refused,
            message,
            code: Some(code.to_string()),
            status: None,
            decided_by: None,
        }
    }
}

/// Checks a vote's note before it travels.
///
/// # Errors
/// Names the field (`reason`) and the problem: too long, or control characters.
pub fn check_note(note: Option<&str>) -> Result<Option<String>, String> {
    let Some(note) = note.map(str::trim).filter(|note| !note.is_empty()) else {
        return Ok(None);
    };
    if note.chars().count() > MAX_NOTE {
        return Err(format!("reason: longer than {MAX_NOTE} characters"));
    }
    if note
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("reason: contains control characters".to_string());
    }
    Ok(Some(note.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_is_trimmed_and_bounded() {
        assert_eq!(check_note(Some("  ok  ")).unwrap().as_deref(), Some("ok"));
        assert_eq!(check_note(Some("   ")).unwrap(), None);
        let long = "x".repeat(MAX_NOTE + 1);
        assert!(check_note(Some(&long)).unwrap_err().starts_with("reason:"));
        assert!(check_note(Some("a\u{7}b")).unwrap_err().contains("control"));
    }
}
