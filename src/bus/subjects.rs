//! Every subject name, declared once. Subjects are past-tense events under a prefix
//! (`wingman` in production; tests use a unique prefix each so they never collide).

use crate::envelope::RequestId;
use crate::events::{AuditKind, Route, Stage};
use crate::principal::Principal;

pub use crate::config::DEFAULT_PREFIX;

const SUBMITTED: &str = "requests.submitted";
const CANCEL: &str = "requests.cancel";
const VALIDATED: &str = "requests.validated";
const DECIDED: &str = "approvals.decided";
const EXEC_JOBS: &str = "exec.jobs";
const AUDIT: &str = "audit";
const STATUS: &str = "status";
const OUTPUT: &str = "output";
const DLQ: &str = "dlq";
const TOKEN_REQUESTS: &str = "authority.token";
const CONSOLE_DECISIONS: &str = "console.decisions";
const API_DECISIONS: &str = "api.decisions";
const ROLLOUT_CHANGE: &str = "rollout.change";

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
    /// Core request-reply: where `principal` asks to withdraw a request it submitted,
    /// `<prefix>.requests.cancel.<principal>`; as for submissions, the suffix proves who asks
    /// (each NATS user may publish only on its own, the API only on `api.<key>`).
    pub fn cancel(&self, principal: &Principal) -> String {
        format!("{}.{}", self.cancel_base(), principal.submit_suffix())
    }
    /// `<prefix>.requests.cancel`, the parent of every principal's cancel subject.
    pub fn cancel_base(&self) -> String {
        self.subject(CANCEL)
    }
    /// `<prefix>.requests.validated.<route>`: a decision for the stage that acts on it.
    pub fn validated(&self, route: Route) -> String {
        self.subject(&format!("{VALIDATED}.{}", route.as_str()))
    }
    pub fn decided(&self) -> String {
        self.subject(DECIDED)
    }
    pub fn exec_jobs(&self) -> String {
        self.subject(EXEC_JOBS)
    }
    /// `wingman.audit.<stage>.<kind>`: the stage that records the event is part of the
    /// subject, so NATS permissions (each stage's user publishes only under its own stage)
    /// prove who sent it.
    pub fn audit(&self, stage: Stage, kind: AuditKind) -> String {
        format!(
            "{}.{AUDIT}.{}.{}",
            self.prefix,
            stage.as_str(),
            kind.as_str()
        )
    }
    /// The (stage, kind) an audit subject names; `None` when it is not one of ours.
    pub fn audit_source(&self, subject: &str) -> Option<(Stage, AuditKind)> {
        let rest = subject
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(&format!(".{AUDIT}."))?;
        let (stage, kind) = rest.split_once('.')?;
        Some((Stage::parse(stage)?, AuditKind::parse(kind)?))
    }
    /// What an executed request printed, readable by the principal that submitted it only:
    /// `<prefix>.output.<principal>.<request_id>`.
    pub fn output(&self, principal: &Principal, request_id: RequestId) -> String {
        format!(
            "{}.{OUTPUT}.{}.{request_id}",
            self.prefix,
            principal.submit_suffix()
        )
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
    /// Core request-reply: the HTTP API, having authenticated a `decide` key, asks the
    /// approvals worker to decide in that key's name. Only the API's NATS user may publish
    /// here (`nats/auth.conf`), so the subject proves the key was checked.
    pub fn api_decisions(&self) -> String {
        self.subject(API_DECISIONS)
    }
    /// Core request-reply: an operator asks the watcher to change the rollout on the subject
    /// of its own NATS user (`nats/auth.conf` lets only that user publish there), so the
    /// subject proves the author.
    ///
    /// # Errors
    /// When `author` cannot be one subject token.
    pub fn rollout_change(&self, author: &str) -> anyhow::Result<String> {
        let valid = !author.is_empty()
            && author
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '@'));
        anyhow::ensure!(
            valid,
            "rollout author `{author}` must match [A-Za-z0-9_@-]+ (it is a subject token)"
        );
        Ok(format!("{}.{ROLLOUT_CHANGE}.{author}", self.prefix))
    }
    /// What the watcher listens on: every operator's change subject.
    pub fn rollout_changes(&self) -> String {
        self.subject(&format!("{ROLLOUT_CHANGE}.*"))
    }
    /// The author a change subject names.
    pub fn rollout_author<'a>(&self, subject: &'a str) -> Option<&'a str> {
        let author = subject
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(&format!(".{ROLLOUT_CHANGE}."))?;
        (!author.is_empty() && !author.contains('.')).then_some(author)
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
            subjects.audit(Stage::Intake, AuditKind::RequestReceived),
            "wingman.audit.intake.request_received"
        );
        assert_eq!(
            subjects.rollout_change("operator").unwrap(),
            "wingman.rollout.change.operator"
        );
        assert_eq!(subjects.rollout_changes(), "wingman.rollout.change.*");
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

    #[test]
    fn an_audit_subject_names_its_stage_and_kind_or_nothing() {
        let subjects = Subjects::new("wt_1a2b").unwrap();
        for stage in Stage::ALL {
            for kind in AuditKind::ALL {
                let subject = subjects.audit(stage, kind);
                assert_eq!(subjects.audit_source(&subject), Some((stage, kind)));
            }
        }
        for bad in [
            "wt_1a2b.audit.request_received",
            "wt_1a2b.audit.intake.request_received.x",
            "wt_1a2b.audit.mallory.request_received",
            "wt_1a2b.audit.intake.nonsense",
            "wingman.audit.intake.request_received",
            "wt_1a2bx.audit.intake.request_received",
            "wt_1a2b.status.intake.request_received",
        ] {
            assert_eq!(subjects.audit_source(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_rollout_change_subject_names_one_author() {
        let subjects = Subjects::new("wt_1a2b").unwrap();
        let subject = subjects.rollout_change("ops-carol").unwrap();
        assert_eq!(subjects.rollout_author(&subject), Some("ops-carol"));
        assert_eq!(subjects.rollout_author("wt_1a2b.rollout.change."), None);
        assert_eq!(subjects.rollout_author("wt_1a2b.rollout.change.a.b"), None);
        for bad in ["", "a.b", "a*", ">", "a b"] {
            assert!(subjects.rollout_change(bad).is_err(), "{bad:?}");
        }
    }
}
