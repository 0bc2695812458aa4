//! Validation: the second half of intake's one step — scores each accepted request and decides
//! what happens next.
//!
//! 1. Runs the five validators ([`crate::validation`]) on every request and enforces the
//!    composite's decision (AUTO_APPROVED, AUTO_REJECTED or PENDING) for the validated cohort
//!    (the live rollout flags, kept current by a KV watch, decide who is in it). Requests
//!    outside the cohort go to PENDING with `validation_applied = false` and carry what
//!    validation would have decided as their shadow decision, in the audit only (shadow mode:
//!    the rollout is judged before the first phase, and humans are not told it).
//! 2. Consumes nothing itself: intake hands it the requests of a batch and publishes what it
//!    returns (`wingman.requests.validated.<route>`, the `request_validated` audit record and
//!    the status event).
//! 3. Its result is a pure function of the request, the flags and the publish time (derived
//!    ids: a redelivery decides the same).
//! 4. A validator that errors, panics or times out never approves: the request goes to a human
//!    and the error is counted and audited.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::events::payload::{Payload as _, RequestValidated, Shadow};
use crate::events::{Route, Validated};
use crate::metrics;
use crate::request::Request;
use crate::rollout::{Cohort, Rollout, RolloutView};
use crate::status::Status;
use crate::validation::{Decision, Validation, Validator};

/// One request's score, or why there is none (a short code and a sentence): a validator that
/// panicked, or a batch that took too long.
pub type Score = Result<Validation, (&'static str, String)>;

/// The score of a request whose validation came back without it (fewer scores than
/// requests): decided like a failed validation, never approved.
pub fn lost_score() -> Score {
    Err(("lost", "validation lost its result".into()))
}

/// What validation needs: the compiled validators, the live flags, the deadlines.
pub struct Scoring {
    /// The compiled validators and their configuration.
    pub validator: Arc<Validator>,
    /// The live rollout flags (a KV watch), so a change applies to the next request.
    pub rollout: RolloutView,
    /// How long a PENDING request waits for a human (`WINGMAN_APPROVAL_TTL`).
    pub approval_ttl: Duration,
    /// A batch's validation taking longer than this counts as an error for each of its
    /// requests (they go to a human).
    pub timeout: Duration,
}

/// The decision on one request, with everything the audit, the status event and the next
/// stage are told about it.
#[derive(Debug, Clone)]
pub struct Decided {
    pub status: Status,
    pub validation: Option<Validation>,
    pub error: Option<String>,
    pub cohort: Cohort,
    pub rollout: Rollout,
    pub expires_at: Option<DateTime<Utc>>,
    /// Outside the cohort: what validation would have decided (not enforced, not shown to
    /// approvers), or why it could not say.
    pub shadow: Option<Result<Validation, String>>,
}

impl Scoring {
    /// Decides each request (with the publish time of the message that carried it); the
    /// cohort's requests are validated together off the async threads, bounded in time.
    pub async fn decide_all(
        &self,
        rollout: &Rollout,
        requests: &[(&Request, DateTime<Utc>)],
    ) -> Vec<Decided> {
        let all: Vec<&Request> = requests.iter().map(|(request, _)| *request).collect();
        let validations = self.validate_all(&all).await;
        self.decide_validated(rollout, requests, validations)
    }

    /// Scores each request (every one: outside the cohort too, for shadow mode), off the
    /// async threads and bounded in time. Pure: nothing is counted until
    /// [`Scoring::decide_validated`], so a batch may be scored while its ids are still being
    /// claimed, and a duplicate's score dropped.
    pub async fn validate_all(&self, requests: &[&Request]) -> Vec<Score> {
        let all: Vec<Request> = requests.iter().map(|request| (*request).clone()).collect();
        self.validate_guarded(all).await
    }

    /// Decides each request (with the publish time of the message that carried it) from its
    /// score ([`Scoring::validate_all`], in the same order); only the cohort's decision is
    /// enforced.
    pub fn decide_validated(
        &self,
        rollout: &Rollout,
        requests: &[(&Request, DateTime<Utc>)],
        validations: Vec<Score>,
    ) -> Vec<Decided> {
        let mut validations = validations.into_iter();
        requests
            .iter()
            .map(|(request, published)| {
                let cohort = rollout.cohort(request.request_id);
                let outcome = validations.next().unwrap_or_else(lost_score);
                if cohort.applied {
                    self.decided(rollout, request, *published, cohort, Some(outcome))
                } else {
                    let mut decided = self.decided(rollout, request, *published, cohort, None);
                    decided.shadow = Some(shadow_of(request, outcome));
                    decided
                }
            })
            .collect()
    }

    fn decided(
        &self,
        rollout: &Rollout,
        request: &Request,
        published: DateTime<Utc>,
        cohort: Cohort,
        outcome: Option<Result<Validation, (&'static str, String)>>,
    ) -> Decided {
        let (status, validation, error) = match outcome {
            Some(Ok(validation)) => (status_of(validation.decision), Some(validation), None),
            Some(Err((code, reason))) => {
                metrics::validation_error(code);
                tracing::warn!(request_id = %request.request_id, reason, "validation failed; the request goes to a human");
                (Status::Pending, None, Some(reason))
            }
            None => (Status::Pending, None, None),
        };
        let profile = validation
            .as_ref()
            .map_or("none", |v| v.validator_scores.composite.profile.as_str());
        metrics::validation_outcome(profile, status.as_str(), cohort.applied);
        if let Some(validation) = &validation {
            record_scores(validation);
        }
        // A human's answer has a deadline, an override of an auto-rejection included.
        let expires_at = matches!(status, Status::Pending | Status::AutoRejected).then(|| {
            published
                + chrono::Duration::from_std(self.approval_ttl)
                    .unwrap_or(chrono::Duration::hours(1))
        });
        Decided {
            status,
            validation,
            error,
            cohort,
            rollout: rollout.clone(),
            expires_at,
            shadow: None,
        }
    }

    /// Runs the validators off the async threads, bounded in time; a panic or a timeout is
    /// an error, never an approval.
    async fn validate_guarded(&self, requests: Vec<Request>) -> Vec<Score> {
        if requests.is_empty() {
            return Vec::new();
        }
        let count = requests.len();
        let validator = Arc::clone(&self.validator);
        let task = tokio::task::spawn_blocking(move || {
            requests
                .iter()
                .map(|request| {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        validator.validate(request)
                    }))
                    .map_err(|_| ("panic", "a validator panicked".to_string()))
                })
                .collect::<Vec<_>>()
        });
        match tokio::time::timeout(self.timeout, task).await {
            Ok(Ok(results)) => results,
            Ok(Err(_)) => vec![Err(("panic", "a validator panicked".to_string())); count],
            Err(_) => vec![
                Err((
                    "timeout",
                    format!(
                        "validation took longer than {} ms",
                        self.timeout.as_millis()
                    ),
                ));
                count
            ],
        }
    }
}

impl Decided {
    fn composite(&self) -> Option<&crate::validation::CompositeResult> {
        self.validation
            .as_ref()
            .map(|v| &v.validator_scores.composite)
    }

    fn scores(&self) -> Option<Value> {
        self.validation
            .as_ref()
            .map(|v| serde_json::to_value(&v.validator_scores).unwrap_or(Value::Null))
    }

    /// Where the decision goes next: approvals for a human, the authority for an approved
    /// command, nowhere for an auto-approved instruction (the audit records it).
    pub fn route(&self, request: &Request) -> Option<Route> {
        match self.status {
            Status::Pending | Status::AutoRejected => Some(Route::Human),
            Status::AutoApproved if request.command.is_some() => Some(Route::Auto),
            _ => None,
        }
    }

    /// The shadow decision's word, when the request was outside the cohort and scored.
    pub fn shadow_decision(&self) -> Option<Status> {
        match &self.shadow {
            Some(Ok(validation)) => Some(status_of(validation.decision)),
            _ => None,
        }
    }

    /// The `request_validated` audit record's payload. Outside the cohort it carries the
    /// shadow decision (`shadow_decision`, `shadow_score`, `shadow_profile`,
    /// `shadow_reasons`); a shadow validation that failed is a validation error too.
    pub fn audit(&self) -> RequestValidated {
        let composite = self.composite();
        let shadow_error = match &self.shadow {
            Some(Err(error)) => Some(error.as_str()),
            _ => None,
        };
        RequestValidated {
            validator_scores: self.scores(),
            profile: composite.map(|c| c.profile),
            composite_score: composite.map(|c| c.score),
            reasons: composite.map(|c| c.reasons.clone()),
            validation_applied: Some(self.cohort.applied),
            validation_decision: self.validation.as_ref().map(|_| self.status),
            validation_error: Some(self.error.is_some() || shadow_error.is_some()),
            error: self.error.as_deref().or(shadow_error).map(str::to_string),
            rollout_bucket: Some(self.cohort.bucket),
            rollout: self.rollout.describe(),
            expires_at: self.expires_at,
            // Only outside the cohort: the cohort's records (every one at 100 %) stay as small
            // as before shadow mode, for the recorder that hashes and stores each of them.
            shadow: self.shadow.as_ref().map(|shadow| {
                let composite = shadow
                    .as_ref()
                    .ok()
                    .map(|validation| &validation.validator_scores.composite);
                Shadow {
                    shadow_decision: self.shadow_decision(),
                    shadow_score: composite.map(|c| c.score),
                    shadow_profile: composite.map(|c| c.profile),
                    shadow_reasons: composite.map(|c| c.reasons.clone()),
                }
            }),
        }
    }

    /// The `request_validated` record's data: [`Decided::audit`] as JSON.
    pub fn audit_data(&self) -> Value {
        self.audit().to_data()
    }

    /// Adds what a publisher is told about the decision to its status event.
    pub fn add_details(&self, details: &mut Map<String, Value>) {
        details.insert("validation_applied".into(), json!(self.cohort.applied));
        if let Some(composite) = self.composite() {
            details.insert("composite_score".into(), json!(composite.score));
            details.insert("profile".into(), json!(composite.profile.as_str()));
            details.insert("reasons".into(), json!(composite.reasons));
        }
        if let Some(expires_at) = self.expires_at {
            details.insert("expires_at".into(), json!(expires_at));
        }
    }

    /// The event for the next stage.
    pub fn event(&self, request: Request) -> Validated {
        Validated {
            request,
            status: self.status,
            validation_applied: self.cohort.applied,
            rollout_bucket: self.cohort.bucket,
            validator_scores: self.scores(),
            validation_error: self.error.clone(),
            expires_at: self.expires_at,
        }
    }
}

/// A shadow outcome: counted like an enforced one, by its own metric, and never acted on.
fn shadow_of(
    request: &Request,
    outcome: Result<Validation, (&'static str, String)>,
) -> Result<Validation, String> {
    match outcome {
        Ok(validation) => {
            metrics::shadow_decision(status_of(validation.decision).as_str());
            Ok(validation)
        }
        Err((code, reason)) => {
            metrics::validation_error(code);
            tracing::warn!(request_id = %request.request_id, reason, "shadow validation failed (not enforced)");
            Err(reason)
        }
    }
}

fn status_of(decision: Decision) -> Status {
    match decision {
        Decision::AutoApproved => Status::AutoApproved,
        Decision::AutoRejected => Status::AutoRejected,
        Decision::Pending => Status::Pending,
    }
}

fn record_scores(validation: &Validation) {
    let scores = &validation.validator_scores;
    for (name, result) in scores.results() {
        metrics::validator_score(name.as_str(), f64::from(result.score));
    }
    metrics::validator_score("composite", f64::from(scores.composite.score));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::test_support::{GOOD_DESCRIPTION, request};

    fn everyone() -> Rollout {
        Rollout {
            enabled: true,
            percent: 100,
            updated_by: "test".into(),
            updated_at: Utc::now(),
        }
    }

    fn scoring() -> Scoring {
        Scoring {
            validator: Arc::new(Validator::with_defaults()),
            rollout: RolloutView::fixed(everyone()),
            approval_ttl: Duration::from_secs(3600),
            timeout: Duration::from_secs(30),
        }
    }

    /// ARCHITECTURE.md: "A validator that fails never approves". A request the validators
    /// auto-approve when they work goes to a human, with the error, when they panic, time out
    /// or lose its result — in the cohort and in the shadow run alike.
    #[tokio::test]
    async fn a_validator_that_fails_never_approves() {
        let scoring = scoring();
        let rollout = everyone();
        let request = request(
            "dev",
            Some("docker restart api"),
            "Restart the api container after the memory leak",
            GOOD_DESCRIPTION,
        );
        let published = Utc::now();
        let working = scoring.decide_all(&rollout, &[(&request, published)]).await;
        assert_eq!(working[0].status, Status::AutoApproved, "the control case");

        let cohort = rollout.cohort(request.request_id);
        assert!(cohort.applied);
        for (code, reason) in [
            ("panic", "a validator panicked"),
            ("timeout", "validation took longer than 30000 ms"),
            ("lost", "validation lost its result"),
        ] {
            let failed = scoring.decided(
                &rollout,
                &request,
                published,
                cohort,
                Some(Err((code, reason.to_string()))),
            );
            assert_eq!(failed.status, Status::Pending, "{code}");
            assert!(
                failed.expires_at.is_some(),
                "{code}: a human has a deadline"
            );
            assert_eq!(failed.route(&request), Some(Route::Human), "{code}");
            let event = failed.event(request.clone());
            assert_eq!(event.validation_error.as_deref(), Some(reason), "{code}");
            assert_eq!(
                failed.audit_data()["validation_error"],
                json!(true),
                "{code}"
            );

            // Outside the cohort the shadow run's failure is never a shadow approval either.
            let shadow = shadow_of(&request, Err((code, reason.to_string())));
            let mut outside = scoring.decided(
                &rollout,
                &request,
                published,
                Cohort {
                    applied: false,
                    ..cohort
                },
                None,
            );
            outside.shadow = Some(shadow);
            assert_eq!(outside.status, Status::Pending, "{code}");
            assert_eq!(outside.shadow_decision(), None, "{code}");
            assert_eq!(
                outside.audit_data()["validation_error"],
                json!(true),
                "{code}"
            );
        }
    }

    /// The `request_validated` data as this stage wrote it with `json!` before its payload
    /// was typed (verbatim): the typed payload must write the very same JSON, which the audit
    /// chain hashes.
    fn old_audit_data(decided: &Decided) -> Value {
        let composite = decided.composite();
        let shadow = match &decided.shadow {
            Some(Ok(validation)) => Some(&validation.validator_scores.composite),
            _ => None,
        };
        let shadow_error = match &decided.shadow {
            Some(Err(error)) => Some(error.as_str()),
            _ => None,
        };
        let mut data = json!({
            "validator_scores": decided.scores(),
            "profile": composite.map(|c| c.profile.as_str()),
            "composite_score": composite.map(|c| c.score),
            "reasons": composite.map(|c| c.reasons.clone()),
            "validation_applied": decided.cohort.applied,
            "validation_decision": decided.validation.as_ref().map(|_| decided.status.as_str()),
            "validation_error": decided.error.is_some() || shadow_error.is_some(),
            "error": decided.error.as_deref().or(shadow_error),
            "rollout_bucket": decided.cohort.bucket,
            "rollout": decided.rollout.describe(),
            "expires_at": decided.expires_at,
        });
        if decided.shadow.is_some() {
            data["shadow_decision"] = json!(decided.shadow_decision().map(Status::as_str));
            data["shadow_score"] = json!(shadow.map(|c| c.score));
            data["shadow_profile"] = json!(shadow.map(|c| c.profile.as_str()));
            data["shadow_reasons"] = json!(shadow.map(|c| c.reasons.clone()));
        }
        data
    }

    #[tokio::test]
    async fn the_typed_record_is_the_json_written_before_in_and_outside_the_cohort() {
        let scoring = scoring();
        let published = Utc::now();
        let approved = request(
            "dev",
            Some("docker restart api"),
            "Restart the api container after the memory leak",
            GOOD_DESCRIPTION,
        );
        let removal = request("prd", Some("docker rm -f db"), "x", "");
        let shadow_only = Rollout {
            enabled: false,
            ..everyone()
        };
        let mut decisions = Vec::new();
        for rollout in [everyone(), shadow_only] {
            decisions.extend(
                scoring
                    .decide_all(&rollout, &[(&approved, published), (&removal, published)])
                    .await,
            );
        }
        let cohort = everyone().cohort(approved.request_id);
        let mut failed_shadow = scoring.decided(
            &everyone(),
            &approved,
            published,
            Cohort {
                applied: false,
                ..cohort
            },
            None,
        );
        failed_shadow.shadow = Some(shadow_of(
            &approved,
            Err(("panic", "a validator panicked".into())),
        ));
        decisions.push(failed_shadow);
        decisions.push(scoring.decided(
            &everyone(),
            &approved,
            published,
            cohort,
            Some(Err((
                "timeout",
                "validation took longer than 30000 ms".into(),
            ))),
        ));
        let shapes: Vec<(bool, bool, Option<Status>)> = decisions
            .iter()
            .map(|decided| {
                (
                    decided.cohort.applied,
                    decided.shadow.is_some(),
                    decided.validation.as_ref().map(|_| decided.status),
                )
            })
            .collect();
        assert_eq!(
            shapes,
            [
                (true, false, Some(Status::AutoApproved)),
                (true, false, Some(Status::AutoRejected)),
                (false, true, None),
                (false, true, None),
                (false, true, None),
                (true, false, None),
            ],
            "every shape of the record is covered"
        );
        for decided in &decisions {
            assert_eq!(decided.audit_data(), old_audit_data(decided), "{decided:?}");
        }
    }
}
