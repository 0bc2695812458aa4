//! Every subject name, declared once. Subjects are past-tense events under a prefix
//! (`wingman` in production; tests use a unique prefix each so they never collide).

use crate::envelope::RequestId;
use crate::events::{AuditKind, Stage};
use crate::identity::Principal;

pub const DEFAULT_PREFIX: &str = "wingman";

const SUBMITTED: &str = "requests.submitted";
const ACCEPTED: &str = "requests.accepted";
const VALIDATED: &str = "requests.validated";
const DECIDED: &str = "approvals.decided";
const EXEC_JOBS: &str = "exec.jobs";
const AUDIT: &str = "audit";
const STATUS: &str = "status";
const DLQ: &str = "dlq";
const TOKEN_REQUESTS: &str = "authority.token";
const CONSOLE_DECISIONS: &str = "console.decisions";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    /// # Errors
    /// When the prefix is not a plain lowercase token (`[a-z0-9_]+`).
    pub fn new(prefix: &str) -> anyhow::Result<Self> {
        let valid = !prefix.is_empty()
            && prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        anyhow::ensure!(valid, "subject prefix `{prefix}` must match [a-z0-9_]+");
        Ok(Self {
            prefix: prefix.to_string(),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn subject(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.prefix)
    }

    /// Where `principal` submits: `<prefix>.requests.submitted.<principal>`; the suffix is
    /// what proves who submitted (see [`crate::identity`]).
    pub fn submitted(&self, principal: &Principal) -> String {
        format!("{}.{}", self.submitted_base(), principal.submit_suffix())
    }
    /// `<prefix>.requests.submitted`, the parent of every principal's submit subject.
    pub fn submitted_base(&self) -> String {
        self.subject(SUBMITTED)
    }
    pub fn accepted(&self) -> String {
        self.subject(ACCEPTED)
    }
    pub fn validated(&self) -> String {
        self.subject(VALIDATED)
    }
    pub fn decided(&self) -> String {
        self.subject(DECIDED)
    }
    pub fn exec_jobs(&self) -> String {
        self.subject(EXEC_JOBS)
    }
    pub fn audit(&self, kind: AuditKind) -> String {
        format!("{}.{AUDIT}.{}", self.prefix, kind.as_str())
    }
    pub fn status(&self, request_id: RequestId) -> String {
        format!("{}.{STATUS}.{request_id}", self.prefix)
    }
    /// Core request-reply (not JetStream): the gateway asks the authority for the token of an
    /// approved request.
    pub fn token_requests(&self) -> String {
        self.subject(TOKEN_REQUESTS)
    }
    /// Core request-reply: the console approver (`wingman approve`) asks the approvals worker
    /// to decide; only that worker publishes decisions.
    pub fn console_decisions(&self) -> String {
        self.subject(CONSOLE_DECISIONS)
    }
    pub fn dlq(&self, stage: Stage) -> String {
        format!("{}.{DLQ}.{}", self.prefix, stage.as_str())
    }

    /// Rewrites a subject declared in `nats/` (always spelled with the `wingman` prefix) to
    /// this prefix.
    pub fn localize(&self, declared: &str) -> String {
        match declared.strip_prefix("wingman.") {
            Some(rest) => self.subject(rest),
            None => declared.to_string(),
        }
    }

    /// Rewrites a stream or bucket name declared in `nats/` (`WINGMAN_…`, `wingman_…`).
    pub fn localize_name(&self, declared: &str) -> String {
        if let Some(rest) = declared.strip_prefix("WINGMAN_") {
            format!("{}_{rest}", self.prefix.to_ascii_uppercase())
        } else if let Some(rest) = declared.strip_prefix("wingman_") {
            format!("{}_{rest}", self.prefix)
        } else {
            declared.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_subjects_are_the_designed_ones() {
        let subjects = Subjects::new(DEFAULT_PREFIX).unwrap();
        assert_eq!(
            subjects.submitted(&Principal::Nats("ci".into())),
            "wingman.requests.submitted.ci"
        );
        assert_eq!(
            subjects.audit(AuditKind::RequestReceived),
            "wingman.audit.request_received"
        );
        assert_eq!(subjects.dlq(Stage::Intake), "wingman.dlq.intake");
        assert_eq!(
            subjects.localize_name("WINGMAN_REQUESTS"),
            "WINGMAN_REQUESTS"
        );
    }

    #[test]
    fn a_test_prefix_rewrites_every_declared_name() {
        let subjects = Subjects::new("wt_1a2b").unwrap();
        assert_eq!(
            subjects.localize("wingman.requests.>"),
            "wt_1a2b.requests.>"
        );
        assert_eq!(subjects.localize_name("WINGMAN_AUDIT"), "WT_1A2B_AUDIT");
        assert_eq!(subjects.localize_name("wingman_claims"), "wt_1a2b_claims");
        assert!(Subjects::new("Bad.Prefix").is_err());
    }
}
